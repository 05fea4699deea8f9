"""The checks of the generated hardware against the golden model: the cocotb simulation of
``rtl/`` (the ``sim`` step) and the exhaustive check of truth tables (part of ``rtl``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..errors import VerificationError
from ..rtl_step import TOP

SIM_TIMINGS = ("build_seconds", "sim_seconds")
"""Keys of :func:`run_sim_step`'s report that ``sim.json`` leaves out (wall times)."""


def run_lut_check(ir, out: Path) -> dict:
    """The exhaustive check of every layer that has one (truth tables: every neuron's generated
    logic against its table, for every address); writes ``out/lut_check.json``.

    Returns the report; its ``seconds`` (the whole check, and per layer) are left out of
    the file, which holds only the results.

    Raises
    ------
    VerificationError
        If any generated table entry differs from the IR's.
    """
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
    doc = {k: v for k, v in report.items() if k != "seconds"}
    doc["per_layer"] = [{k: v for k, v in r.items() if k != "seconds"} for r in per_layer]
    (out / "lut_check.json").write_text(json.dumps(doc, indent=1) + "\n")
    if report["mismatches"]:
        bad = [r["layer"] for r in report["per_layer"] if r["mismatches"]]
        raise VerificationError(
            f"the generated tables of {', '.join(bad)} differ from the IR in "
            f"{report['mismatches']} entries. This is a gatemill bug: please report it with "
            f"{out / 'lut_check.json'} and the model."
        )
    return report


def run_sim_step(out: Path, cfg) -> dict:
    """Simulate ``out/rtl`` on ``out/golden.npz`` and write ``out/sim.json``.

    *cfg* is a :class:`~gatemill.flow.steps.config.BuildConfig` (its simulator, seed, idle,
    stall and waves). Returns the report: ``sim.json``'s content plus ``build_seconds`` and
    ``sim_seconds`` (:data:`SIM_TIMINGS`), which the file leaves out. Paths in it (the log,
    the waveform) are relative to *out*.

    Raises
    ------
    VerificationError
        If any output differs from the golden model or a sample is framed wrongly.
    """
    from ...sim.runner import run_cocotb

    out = Path(out)
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

    def relative(path):
        return None if path is None else Path(path).relative_to(out).as_posix()

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
        "waves": relative(res.get("waves")),
        "log": relative(res["log"]),
    }
    (out / "sim.json").write_text(json.dumps(report, indent=1) + "\n")
    report.update({k: res[k] for k in SIM_TIMINGS})
    if report["mismatches"] or full["framing_errors"] or stress["framing_errors"]:
        raise VerificationError(
            f"simulation found {report['mismatches']} outputs that differ from the golden "
            f"model (first bad sample: {full['first_bad_sample'] or stress['first_bad_sample']})."
            f" This is a gatemill bug: please report it with {out / 'sim.json'} and the model."
        )
    return report
