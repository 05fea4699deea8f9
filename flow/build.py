"""``gatemill build``: import -> fold -> rtl -> sim, each step writing its files into DIR."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .boards import load_board
from .dse import apply_folding, default_folding, folding_for_rate, folding_of, load_folding
from .dse.budget import fastest_within, fit_multipliers
from .dse.cost import design_estimate
from .dse.estimate import estimate_point
from .dse.fold import for_device
from .errors import GatemillError, VerificationError
from .frontend import parse_encoding
from .frontend.lut import LUT_BITS
from .import_step import run_import
from .kinds import load_ir, save_ir
from .outdir import prepare_out_dir
from .report import write_report
from .rtl_step import TOP, run_rtl
from .synth import run_synth

STEPS = ("import", "fold", "rtl", "sim")


@dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """Everything ``gatemill build`` takes.

    Parameters
    ----------
    model : path
        QONNX model.
    out : path
        Output folder (created; a non-gatemill folder is refused).
    vectors : path, optional
        ``.npz`` with ``x`` (and ``y``); random vectors otherwise.
    folding : path, optional
        ``folding.json`` overriding the default rule per layer.
    until : str
        ``rtl`` skips the simulation, ``sim`` runs it; synthesis follows either way when a
        *board* is given (a resource check without waiting for the simulator).
    simulator : str
        ``verilator`` or ``icarus``.
    waves : bool
        Write an FST waveform of the simulation.
    seed : int
        Seeds the random vectors and the random idle/backpressure of the simulation.
    idle, stall : float
        Probability of an idle input cycle / a backpressure cycle in the stress pass.
    target_fps, clock_mhz : float
        Fold for this many samples per second at this clock (instead of the default rule);
        ``--folding`` entries still override single layers. The clock defaults to the
        board's, or 100 MHz without a board; it also sets the depth of the units' pipelines
        (:meth:`Layer.device_fold <gatemill.flow.kinds.base.Layer.device_fold>`).
    lut_bits : int
        Sparse neurons of at most this many input bits become truth tables (0: none).
    input_type, input_scale : str, optional
        The integer encoding of the model's input (e.g. ``"UINT8"``, ``"1/255"``): the
        hardware takes the raw integers ``q``, the model's input is ``x = scale * q``
        (:func:`gatemill.flow.import_step.run_import`).
    board : str, optional
        Synthesize for this board (name or .toml) with Yosys after simulation: synth.json.
    max_lut : int, optional
        LUT budget of the folding (the resource estimate, for the board's device family or
        xc7): with ``target_fps`` the target must be met within it, alone it picks the fastest
        folding within it.
    """

    model: Path
    out: Path
    vectors: Path | None = None
    folding: Path | None = None
    until: str = "sim"
    simulator: str = "verilator"
    waves: bool = False
    seed: int = 0
    idle: float = 0.3
    stall: float = 0.3
    target_fps: float | None = None
    clock_mhz: float | None = None
    lut_bits: int = LUT_BITS
    board: str | None = None
    max_lut: int | None = None
    input_type: str | None = None
    input_scale: str | None = None

    def __post_init__(self):
        parse_encoding(self.input_type, self.input_scale)  # a typo fails before any work
        if self.until not in ("rtl", "sim"):
            raise GatemillError(f"--until {self.until!r}: choose rtl or sim.")
        for name in ("idle", "stall"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise GatemillError(f"--{name} {v}: a probability in [0, 1) is needed.")
        if self.max_lut is not None and self.max_lut < 1:
            raise GatemillError(f"--max-lut {self.max_lut}: a positive LUT count is needed.")


def _fit_board(
    ir, folding: dict, rule: str, board, cfg: BuildConfig, clock_mhz: float
) -> tuple[dict, str]:
    """*folding* and *rule*, with products moved to LUTs or folded further when the board
    has too few multipliers for it (:func:`gatemill.flow.dse.budget.fit_multipliers`).

    A ``--target-fps`` the board cannot reach is an error naming the fastest rate it can.
    """
    fitted, dsp, limit = fit_multipliers(ir, folding, board.capacity, board.family)
    if fitted is folding:
        return folding, rule
    ii = estimate_point(ir, folding, clock_mhz, board.family)["ii_cycles"]
    est = estimate_point(ir, fitted, clock_mhz, board.family)
    moved = [
        layer.name
        for layer in ir.layers
        if "mul" in layer.fold_fields and fitted[layer.name].get("mul", layer.mul) != layer.mul
    ]
    if est["ii_cycles"] == ii:
        return fitted, (
            f"{rule}, products of {', '.join(moved)} in LUTs to fit the {board.name}'s {limit} "
            f"usable multipliers ({dsp} used)"
        )
    if cfg.target_fps is not None:
        need = design_estimate(apply_folding(ir, folding), board.family)["dsp"]
        raise GatemillError(
            f"--target-fps {cfg.target_fps:g} at {clock_mhz:g} MHz needs {need} "
            f"multipliers (DSP blocks), more than the {limit} a folding may use on the "
            f"{board.name} ({board.capacity['dsp']} in all), and too many LUTs to build the "
            f"products in LUTs instead; within them the fastest folding takes "
            f"{est['ii_cycles']} cycles per sample, i.e. {est['samples_per_s']:,.0f} "
            "samples/s. Lower the target, or choose a board with more DSP blocks."
        )
    return fitted, f"{rule}, folded to {dsp} of the {board.name}'s {limit} usable multipliers"


def run_build(cfg: BuildConfig, step: Callable[[str], None] | None = None) -> dict:
    """Run the steps up to ``cfg.until``; returns ``{step: report}``.

    *step* is called with a description as each step starts (a progress display).
    """
    step = step or (lambda _description: None)
    board = load_board(cfg.board) if cfg.board else None  # a typo fails before any work
    out = prepare_out_dir(cfg.out)
    step("import and golden model")
    reports = {
        "import": run_import(
            cfg.model, out, cfg.vectors, cfg.seed, cfg.lut_bits, cfg.input_type, cfg.input_scale
        )
    }
    ir = load_ir(out)
    family = board.family if board else "xc7"
    clock = cfg.clock_mhz if cfg.clock_mhz is not None else board.clock_mhz if board else 100.0
    ir = for_device(ir, clock, family)  # pipeline depths for the clock
    if cfg.target_fps is not None:
        folding, _ = folding_for_rate(ir, cfg.target_fps, clock, cfg.max_lut, family)
        rule = f"{cfg.target_fps:g} samples/s at {clock:g} MHz"
        if cfg.max_lut is not None:
            rule += f" within {cfg.max_lut} LUTs (estimate)"
    elif cfg.max_lut is not None:
        folding, _ = fastest_within(ir, cfg.max_lut, clock, family)
        rule = f"fastest within {cfg.max_lut} LUTs (estimate, {family})"
    else:
        folding, rule = default_folding(ir), "default rule (gatemill.flow.dse.fold)"
    if board is not None and cfg.folding is None:
        folding, rule = _fit_board(ir, folding, rule, board, cfg, clock)
    ir = apply_folding(ir, folding, rule)
    if cfg.folding is not None:
        ir = apply_folding(ir, load_folding(cfg.folding), str(cfg.folding))
        rule += f", overridden by {cfg.folding}"
    save_ir(ir, out)
    fold = {"rule": rule, "layers": folding_of(ir)}
    if cfg.target_fps is not None:
        fold.update(target_fps=cfg.target_fps, clock_mhz=clock)
    if cfg.max_lut is not None:
        fold["max_lut"] = cfg.max_lut
    (out / "folding.json").write_text(json.dumps(fold, indent=1) + "\n")
    reports["fold"] = fold
    step("RTL")
    reports["rtl"] = run_rtl(ir, out)
    if any(layer.exhaustive for layer in ir.layers):
        step("truth tables, every address")
        reports["lut_check"] = run_lut_check(ir, out)
    if cfg.until == "sim":
        step(f"simulation ({cfg.simulator}: build, then both passes)")
        reports["sim"] = run_sim_step(out, cfg)
    if board is not None:
        step(f"synthesis for {board.name} (Yosys)")
        reports["synth"] = run_synth(out, board)
    step("report")
    write_report(out)
    return reports


def run_lut_check(ir, out: Path) -> dict:
    """The exhaustive check of every layer that has one (truth tables: every neuron's generated
    logic against its table, for every address); writes ``out/lut_check.json``."""
    t0 = time.perf_counter()
    per_layer = [
        {"layer": layer.name, **layer.check_unit()} for layer in ir.layers if layer.exhaustive
    ]
    report = {
        "layers": len(per_layer),
        "neurons": sum(r["neurons"] for r in per_layer),
        "entries_checked": sum(r["entries_checked"] for r in per_layer),
        "mismatches": sum(r["mismatches"] for r in per_layer),
        "seconds": round(time.perf_counter() - t0, 3),
        "per_layer": per_layer,
    }
    (out / "lut_check.json").write_text(json.dumps(report, indent=1) + "\n")
    if report["mismatches"]:
        bad = [r["layer"] for r in report["per_layer"] if r["mismatches"]]
        raise VerificationError(
            f"the generated tables of {', '.join(bad)} differ from the IR in "
            f"{report['mismatches']} entries. This is a gatemill bug: please report it with "
            f"{out / 'lut_check.json'} and the model."
        )
    return report


def run_sim_step(out: Path, cfg: BuildConfig) -> dict:
    """Simulate ``out/rtl`` on ``out/golden.npz`` and write ``out/sim.json``."""
    from ..sim.runner import run_cocotb

    manifest = json.loads((out / "rtl" / "manifest.json").read_text())
    res = run_cocotb(
        sources=[out / "rtl" / v for v in manifest["verilog"]],
        toplevel=manifest.get("top", TOP),
        manifest=out / "rtl" / "manifest.json",
        stimulus=out / "golden.npz",
        work=out / "sim",
        simulator=cfg.simulator,
        seed=cfg.seed,
        idle=cfg.idle,
        stall=cfg.stall,
        waves=cfg.waves,
    )
    full, stress = res["full_rate"], res["stress"]
    est = manifest["estimates"]
    with np.load(out / "golden.npz") as g:
        elements = int(g["outputs"].size)
    report = {
        "simulator": res["simulator"],
        "vectors": res["vectors"],
        "elements": elements,
        "mismatches": full["mismatches"] + stress["mismatches"],
        "latency_cycles": full["latency_cycles"],
        "ii_cycles": full["ii_cycles"],
        "est_latency_cycles": est["latency_cycles"],
        "est_ii_cycles": est["ii_cycles"],
        "bottleneck": est["bottleneck"],
        "full_rate": full,
        "stress": stress,
        "build_seconds": res["build_seconds"],
        "sim_seconds": res["sim_seconds"],
        "waves": res.get("waves"),
        "log": res["log"],
    }
    (out / "sim.json").write_text(json.dumps(report, indent=1) + "\n")
    if report["mismatches"] or full["framing_errors"] or stress["framing_errors"]:
        raise VerificationError(
            f"simulation found {report['mismatches']} outputs that differ from the golden "
            f"model (first bad sample: {full['first_bad_sample'] or stress['first_bad_sample']})."
            f" This is a gatemill bug: please report it with {out / 'sim.json'} and the model."
        )
    return report
