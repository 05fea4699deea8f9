"""``gatemill explore MODEL --board B --out DIR``: many builds of one model.

1. ``DIR`` is a build folder with the model's ``import`` step.
2. The balanced foldings are swept and estimated (:mod:`gatemill.flow.dse.explore`).
3. A spread of the points the estimate puts within the board's LUT and DSP capacity (evenly
   over them, the fastest and the slowest included) is synthesized: each point is a build
   (steps import, fold, rtl, synth) in its own folder ``DIR/points/pNN``, sharing
   ``DIR``'s import (hard links) and folded by the point's folding. The jobs run in parallel
   in local processes, or on a Dask distributed cluster when a scheduler address is given
   (its workers must see ``DIR`` and the model: a shared file system). Being builds, a
   second exploration with the same options skips every synthesis whose inputs are
   unchanged.
4. ``DIR/explore.json`` holds every point (folding, ii, latency, samples/s at the board clock,
   estimated LUTs, FFs, BRAMs and DSPs and, where synthesized, Yosys's LUT/FF/BRAM/DSP and the
   estimate's relative error) and the Pareto fronts; ``DIR/pareto.svg`` and ``.png`` plot
   samples/s against LUTs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import GatemillError

SYNTH_KEYS = ("lut", "ff", "bram", "dsp")
POINT_STEPS = ("import", "fold", "rtl", "synth")


@dataclass(frozen=True, kw_only=True)
class ExploreConfig:
    """Everything ``gatemill explore`` takes.

    Parameters
    ----------
    model : path
        QONNX model.
    board : str
        Board name (``gatemill boards``) or a board ``.toml``; its clock and family are used.
    out : path
        Output folder (created; a non-gatemill folder is refused).
    points : int
        Target initiation intervals swept (distinct foldings may be fewer).
    synth_points : int
        How many of the points are synthesized (spread over the sweep; 0: none).
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``); None runs the jobs in
        local processes.
    workers : int, optional
        Local processes (default: 2); ignored with a scheduler.
    seed : int
        Seeds the random vectors of the import.
    """

    model: Path
    board: str
    out: Path
    points: int = 8
    synth_points: int = 3
    scheduler: str | None = None
    workers: int | None = None
    seed: int = 0

    def __post_init__(self):
        if self.points < 1:
            raise GatemillError(f"--points {self.points}: at least 1 point is needed.")
        if self.synth_points < 0:
            raise GatemillError(f"--synth-points {self.synth_points}: must not be negative.")


def synth_point(cfg: ExploreConfig, folding: dict, out_dir: str) -> dict:
    """One synthesis job: a build of *cfg*'s model under *folding* in *out_dir* (steps
    import, fold, rtl, synth; the import taken from ``cfg.out``).

    Runs on a worker (local process or Dask); returns the ``synth.json`` figures, the RTL
    and synthesis seconds (of the runs that made them, from ``timings.json``), whether the
    build skipped the synthesis, and the worker's host name.
    """
    import socket

    from ..outdir import prepare_out_dir
    from .builder import adopt, run_steps
    from .config import BuildConfig

    out = prepare_out_dir(out_dir)
    adopt(Path(cfg.out), out, "import")
    run = run_steps(
        BuildConfig(
            model=cfg.model,
            out=out,
            seed=cfg.seed,
            folding=folding,
            board=cfg.board,
            steps=POINT_STEPS,
            synth_jobs=1,  # the points run side by side
        )
    )
    rep = run.reports["synth"]
    times = json.loads((out / "timings.json").read_text())["steps"]
    return {
        **{k: rep[k] for k in SYNTH_KEYS},
        "synth_layers": {layer["name"]: layer["lut"] for layer in rep["layers"]},
        "rtl_seconds": round(times["rtl"]["seconds"], 2),
        "synth_seconds": round(times["synth"]["yosys_seconds"], 2),
        "synth_skipped": "synth" in run.skipped,
        "host": socket.gethostname(),
    }


@contextmanager
def job_runner(scheduler: str | None, workers: int | None):
    """Yields ``(submit, as_completed)`` over one pool of workers.

    ``submit(fn, *args)`` returns a future (``.result()``), ``as_completed(futures)`` yields
    them as they finish. With *scheduler*, a :class:`dask.distributed.Client` to that
    address; otherwise a local :class:`concurrent.futures.ProcessPoolExecutor`.
    """
    if scheduler:
        try:
            from dask.distributed import Client, as_completed
        except ImportError:
            raise GatemillError(
                "--scheduler needs dask.distributed: pip install 'dask[distributed]'."
            ) from None
        with Client(scheduler) as client:
            yield (lambda fn, *args: client.submit(fn, *args, pure=False)), as_completed
    else:
        from concurrent.futures import as_completed

        with ProcessPoolExecutor(max_workers=workers or 2) as pool:
            yield pool.submit, as_completed


def run_explore(cfg: ExploreConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Run the exploration (see the module documentation); returns ``explore.json``.

    Raises
    ------
    GatemillError
        For a bad board, model or output folder.
    """
    from ..boards import load_board
    from ..dse.budget import board_limits
    from ..dse.estimate import estimate_point
    from ..dse.explore import pareto_front, plot_pareto, spread, sweep
    from ..kinds import load_ir
    from .builder import run_steps
    from .config import BuildConfig

    say = progress or (lambda _msg: None)
    board = load_board(cfg.board)
    # the workers may run elsewhere (a Dask cluster on a shared file system)
    cfg = replace(cfg, model=Path(cfg.model).resolve(), out=Path(cfg.out).resolve())
    out = cfg.out
    t0 = time.perf_counter()
    run_steps(BuildConfig(model=cfg.model, out=out, seed=cfg.seed, steps=("import",)))
    ir = load_ir(out / "import")
    t_import = time.perf_counter() - t0
    say(f"imported in {t_import:.1f} s")

    t0 = time.perf_counter()
    points = []
    for target, folding in sweep(ir, cfg.points):
        points.append(
            {"target_ii": target, **estimate_point(ir, folding, board.clock_mhz, board.family)}
        )
    t_est = time.perf_counter() - t0
    say(f"{len(points)} foldings estimated in {t_est:.2f} s")

    # only points the estimate puts within the board are worth a synthesis (the multipliers
    # and block RAMs within what gatemill build would use of them)
    cap = board.capacity
    limits = board_limits(cap, board.family)
    fits = [
        i
        for i, p in enumerate(points)
        if p["est_lut"] <= cap["lut"]
        and p["est_dsp"] <= limits["dsp"]
        and p["est_bram"] <= limits["bram"]
    ]
    for i, p in enumerate(points):
        p["est_fits"] = i in fits
    chosen = [fits[k] for k in spread(len(fits), cfg.synth_points)]
    t0 = time.perf_counter()
    if chosen:
        with job_runner(cfg.scheduler, cfg.workers) as (submit, as_completed):
            futures = {
                submit(
                    synth_point,
                    cfg,
                    points[i]["folding"],
                    str(out / "points" / f"p{i:02d}"),
                ): i
                for i in chosen
            }
            for fut in as_completed(list(futures)):
                i = futures[fut]
                p = points[i]
                p["dir"] = f"points/p{i:02d}"
                try:
                    p.update(fut.result())
                except Exception as e:  # one failed job must not lose the others
                    p["synth_error"] = f"{type(e).__name__}: {e}"
                    say(f"p{i:02d}: synthesis failed: {p['synth_error']}")
                    continue
                p["lut_error"] = round((p["est_lut"] - p["lut"]) / max(p["lut"], 1), 3)
                again = " (inputs unchanged: skipped)" if p["synth_skipped"] else ""
                say(f"p{i:02d}: ii {p['ii_cycles']}, {p['lut']} LUT (est {p['est_lut']}){again}")
    t_synth = time.perf_counter() - t0

    synthesized = [p for p in points if "lut" in p]
    errors = [abs(p["lut_error"]) for p in synthesized]
    # one factor, fitted on the synthesized points, corrects the estimate's scale
    scale = None
    if synthesized:
        scale = sum(p["lut"] for p in synthesized) / max(sum(p["est_lut"] for p in synthesized), 1)
        for p in points:
            p["calibrated_lut"] = round(p["est_lut"] * scale)
    report = {
        "model": str(cfg.model),
        "board": board.name,
        "part": board.part,
        "family": board.family,
        "clock_mhz": board.clock_mhz,
        "capacity_lut": board.capacity["lut"],
        "scheduler": cfg.scheduler or f"local processes ({cfg.workers or 2})",
        "points": points,
        "pareto_estimated": pareto_front(points, "est_lut"),
        "pareto_synthesized": pareto_front(points, "lut"),
        "lut_error": {
            "mean_abs": round(sum(errors) / len(errors), 3) if errors else None,
            "max_abs": round(max(errors), 3) if errors else None,
            "calibration_scale": round(scale, 3) if scale else None,
            "convention": "(estimate - yosys) / yosys, LUTs of the whole design",
        },
        "seconds": {
            "import": round(t_import, 2),
            "estimate": round(t_est, 3),
            "synth_wall": round(t_synth, 2),
        },
    }
    (out / "explore.json").write_text(json.dumps(report, indent=1) + "\n")
    plot_pareto(report, out)
    return report
