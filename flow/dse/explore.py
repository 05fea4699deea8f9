"""Design-space exploration: sweep foldings, estimate each, synthesize a spread, plot the front.

``gatemill explore MODEL.onnx --board B --out DIR`` imports the model once (``DIR/import``),
then:

1. **Sweep.** Target initiation intervals on a geometric range from the fastest reachable
   (every layer as parallel as its shape allows) to the slowest (PE = SIMD = 1); each target
   gives the cheapest balanced folding (:func:`gatemill.flow.dse.fold.fold_for_ii`). Equal
   foldings are kept once.
2. **Estimate.** For every folding, the cycles come from the templates' own timing models
   (:func:`gatemill.hdl.plan.estimates` of :func:`gatemill.hdl.plan.plan`) and the LUTs,
   flip-flops, block RAMs and DSPs from :mod:`gatemill.flow.dse.cost` (Yosys's memory and
   DSP rules, and a few terms per stage fitted to Yosys by ``bench/calibrate.py``; about 8 %
   from Yosys's LUT count on designs it was not fitted on).
3. **Synthesize.** A spread of the points the estimate puts within the board's LUT and DSP
   capacity (evenly over them, the fastest and the slowest included) is synthesized with
   Yosys, each in its own gatemill folder ``DIR/points/pNN``
   (``rtl/`` from :func:`gatemill.flow.rtl_step.run_rtl`, then
   :func:`gatemill.flow.synth.run_synth`). The jobs run in parallel in local processes, or
   on a Dask distributed cluster when a scheduler address is given (its workers must see
   ``DIR``: a shared file system).
4. **Report.** ``DIR/explore.json`` holds every point (folding, ii, latency, samples/s at the
   board clock, estimated LUTs, FFs, BRAMs and DSPs and, where synthesized, Yosys's
   LUT/FF/BRAM/DSP and the estimate's relative error) and the Pareto front;
   ``DIR/pareto.svg`` and ``.png`` plot samples/s against LUTs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ...hdl.plan import estimates, plan
from ..errors import GatemillError
from ..ir import IRGraph
from .budget import multiplier_limit
from .estimate import estimate_point
from .fold import apply_folding, balanced_foldings, fold_for_ii

SYNTH_KEYS = ("lut", "ff", "bram", "dsp")


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


def sweep(ir: IRGraph, points: int) -> list[tuple[int, dict]]:
    """``[(target ii, folding)]``: distinct foldings over a geometric range of target IIs.

    The range runs from the fastest folding's initiation interval to the slowest's (all
    folds 1), both estimated by the templates; ``points`` targets, fewer if foldings repeat.
    """

    def ii(folding) -> int:
        return int(estimates(plan(apply_folding(ir, folding, "explore")))["ii_cycles"])

    fast = ii(fold_for_ii(ir, 1))
    slow = max(fast, ii(fold_for_ii(ir, 2**62)))
    if points == 1 or slow == fast:
        targets = [fast]
    else:
        ratio = (slow / fast) ** (1 / (points - 1))
        targets = sorted({max(fast, round(fast * ratio**i)) for i in range(points)})
    return list(balanced_foldings(ir, targets))


def spread(n: int, k: int) -> list[int]:
    """*k* indices spread evenly over ``range(n)``, the first and the last included."""
    if k <= 0 or n == 0:
        return []
    if k >= n:
        return list(range(n))
    if k == 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def pareto_front(points: list[dict], lut_key: str) -> list[int]:
    """Indices of the points no other point beats in both samples/s (up) and LUTs (down)."""
    idx = [i for i, p in enumerate(points) if p.get(lut_key) is not None]
    front = []
    for i in idx:
        a = points[i]
        dominated = any(
            points[j][lut_key] <= a[lut_key]
            and points[j]["samples_per_s"] >= a["samples_per_s"]
            and (points[j][lut_key] < a[lut_key] or points[j]["samples_per_s"] > a["samples_per_s"])
            for j in idx
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][lut_key])


def synth_point(ir: IRGraph, folding: dict, out_dir: str, board: str) -> dict:
    """One synthesis job: RTL and Yosys for *ir* under *folding* in *out_dir*.

    Runs on a worker (local process or Dask); returns the ``synth.json`` figures, the RTL
    and synthesis seconds and the worker's host name.
    """
    import socket

    from ..boards import load_board
    from ..ir import save_ir
    from ..outdir import prepare_out_dir
    from ..rtl_step import run_rtl
    from ..synth import run_synth

    out = prepare_out_dir(out_dir)
    folded = apply_folding(ir, folding, "explore")
    save_ir(folded, out)
    t0 = time.perf_counter()
    run_rtl(folded, out)
    t_rtl = time.perf_counter() - t0
    rep = run_synth(out, load_board(board), jobs=1)
    return {
        **{k: rep[k] for k in SYNTH_KEYS},
        "synth_layers": {layer["name"]: layer["lut"] for layer in rep["layers"]},
        "rtl_seconds": round(t_rtl, 2),
        "synth_seconds": rep["seconds"],
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
    from ..import_step import run_import
    from ..kinds import load_ir
    from ..outdir import prepare_out_dir

    say = progress or (lambda _msg: None)
    board = load_board(cfg.board)
    out = prepare_out_dir(cfg.out)
    t0 = time.perf_counter()
    run_import(cfg.model, out / "import", seed=cfg.seed)
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
    # within what gatemill build would use of them)
    cap = board.capacity
    dsp_limit = multiplier_limit(cap, board.family)
    fits = [
        i for i, p in enumerate(points) if p["est_lut"] <= cap["lut"] and p["est_dsp"] <= dsp_limit
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
                    ir,
                    points[i]["folding"],
                    str((out / "points" / f"p{i:02d}").resolve()),
                    cfg.board,
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
                say(f"p{i:02d}: ii {p['ii_cycles']}, {p['lut']} LUT (est {p['est_lut']})")
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


def plot_pareto(report: dict, out: Path) -> None:
    """Write ``out/pareto.svg`` and ``out/pareto.png`` (:func:`pareto_figure`)."""
    import matplotlib.pyplot as plt

    fig = pareto_figure(report)
    fig.savefig(out / "pareto.svg")
    fig.savefig(out / "pareto.png", dpi=120)
    plt.close(fig)


def pareto_figure(report: dict, title: str | None = None):
    """Samples/s against LUTs of ``report["points"]`` (``explore.json``'s layout).

    Every point's estimate (hollow), the synthesized points (filled) joined to their
    estimate by a line with the relative error, and each Pareto front as a step line.
    Returns the matplotlib figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = report["points"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(
        [p["est_lut"] for p in pts],
        [p["samples_per_s"] for p in pts],
        facecolors="none",
        edgecolors="tab:blue",
        label="estimate",
    )
    syn = [p for p in pts if "lut" in p]
    if syn:
        ax.scatter(
            [p["lut"] for p in syn],
            [p["samples_per_s"] for p in syn],
            color="tab:orange",
            label=f"Yosys ({report['family']})",
            zorder=3,
        )
        for p in syn:
            ax.plot([p["est_lut"], p["lut"]], [p["samples_per_s"]] * 2, color="grey", lw=0.8)
            ax.annotate(
                f"{p['lut_error']:+.0%}",
                (p["lut"], p["samples_per_s"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
    for p in (p for p in pts if p.get("this_build")):
        ax.scatter(
            [p["est_lut"]],
            [p["samples_per_s"]],
            marker="*",
            s=160,
            color="tab:green",
            zorder=4,
            label="this build (estimate)",
        )
    for key, lut_key, color in (
        ("pareto_estimated", "est_lut", "tab:blue"),
        ("pareto_synthesized", "lut", "tab:orange"),
    ):
        front = [pts[i] for i in report[key]]
        if len(front) > 1:
            ax.step(
                [p[lut_key] for p in front],
                [p["samples_per_s"] for p in front],
                where="post",
                color=color,
                alpha=0.6,
                label=f"Pareto front ({'estimate' if lut_key == 'est_lut' else 'Yosys'})",
            )
    if report.get("capacity_lut"):
        ax.axvline(report["capacity_lut"], color="red", ls="--", lw=0.8, label="board LUTs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("LUTs")
    ax.set_ylabel(f"samples/s at {report['clock_mhz']:g} MHz")
    ax.set_title(title or f"{Path(report['model']).name} on {report['board']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
