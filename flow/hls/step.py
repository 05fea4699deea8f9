"""``gatemill hls DIR``: the HLS backend as a step on a build folder.

It reads the folded IR (``ir.json``) and the golden vectors (``golden.npz``) of a build folder,
writes ``DIR/hls/`` (see :mod:`.writer`), runs the bit-exact C simulation with g++ into
``DIR/hls/csim.json``, and runs Vitis HLS when it is on PATH. With ``via="hls4ml"`` it instead
converts the build's source QONNX model with hls4ml (``DIR/hls/hls4ml.json``).
"""

from __future__ import annotations

import re
import subprocess
import time
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import GatemillError, ToolError
from ..kinds import load_ir
from ..tools import tool_env, which
from .writer import DEFAULT_PART, check_part, write_hls

VIAS = ("gatemill", "hls4ml")
DEFAULT_PERIOD_NS = 10.0
_BOARD = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")


@dataclass(frozen=True, kw_only=True)
class HlsConfig:
    """Everything ``gatemill hls`` takes.

    Parameters
    ----------
    build : Path
        A build folder made by ``gatemill build`` (``ir.json``, ``golden.npz``).
    via : str
        ``gatemill`` (our templates, g++ C simulation) or ``hls4ml`` (the peer).
    part : str, optional
        Xilinx part; overrides the board's.
    board : str, optional
        A board file ``boards/<board>.toml`` whose ``part`` is used.
    clock_ns : float, optional
        Clock period of the Vitis HLS solution (default: the board's clock, else 10 ns).
    csim : bool
        Run the g++ C simulation.
    vitis : bool
        Run ``vitis_hls`` when it is on PATH.
    """

    build: Path
    via: str = "gatemill"
    part: str | None = None
    board: str | None = None
    clock_ns: float | None = None
    csim: bool = True
    vitis: bool = True

    def __post_init__(self):
        if self.via not in VIAS:
            raise GatemillError(f"--via {self.via!r}: choose {' or '.join(VIAS)}.")
        if self.clock_ns is not None and not 0.5 <= self.clock_ns <= 1000.0:
            raise GatemillError(f"--clock-ns {self.clock_ns}: a period in [0.5, 1000] ns.")
        if self.part is not None:
            try:
                check_part(self.part)
            except ValueError as e:
                raise GatemillError(f"--part: {e}.") from None


def board_settings(name: str, boards: Path | None = None) -> tuple[str, float | None]:
    """The ``part`` and ``clock_mhz`` (None if absent) of ``boards/<name>.toml``.

    Only these two keys are read; the board file's full schema belongs to the board loader.

    Raises
    ------
    GatemillError
        If the name is not a board name, the file does not exist, has no valid ``part``, or
        is an ECP5 board (Vitis HLS targets Xilinx parts only).
    """
    if boards is None:
        boards = Path(str(resources.files("gatemill.boards")))
    known = sorted(p.stem for p in boards.glob("*.toml"))
    listing = ", ".join(known) or "none yet"
    if not (name.isascii() and _BOARD.match(name)) or not (boards / f"{name}.toml").is_file():
        raise GatemillError(f"--board {name!r}: no such board file (boards: {listing}).")
    path = boards / f"{name}.toml"
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise GatemillError(f"board file {path} is not valid TOML: {e}.") from None
    if doc.get("family") == "ecp5":
        raise GatemillError(
            f"--board {name}: an ECP5 board; Vitis HLS targets Xilinx parts only (use the RTL "
            "flow for it)."
        )
    part = doc.get("part")
    try:
        part = check_part(part)
    except ValueError:
        raise GatemillError(f"board file {path} has no valid 'part' (found {part!r}).") from None
    clock = doc.get("clock_mhz")
    if clock is not None and not (isinstance(clock, int | float) and 1 <= clock <= 2000):
        raise GatemillError(f"board file {path}: clock_mhz {clock!r} is not a frequency in MHz.")
    return part, (float(clock) if clock is not None else None)


def resolve_target(cfg: HlsConfig, boards: Path | None = None) -> dict:
    """Part and clock period to use, and where each came from.

    ``--part`` and ``--clock-ns`` win; then the board file; then xc7z020clg400-1 at 10 ns.
    """
    part, clock_mhz, source = DEFAULT_PART, None, "default"
    if cfg.board is not None:
        part, clock_mhz = board_settings(cfg.board, boards)
        source = f"boards/{cfg.board}.toml"
    if cfg.part is not None:
        part, source = cfg.part, "--part"
    if cfg.clock_ns is not None:
        period, clock_source = cfg.clock_ns, "--clock-ns"
    elif clock_mhz is not None:
        period, clock_source = round(1000.0 / clock_mhz, 6), f"boards/{cfg.board}.toml"
    else:
        period, clock_source = DEFAULT_PERIOD_NS, "default"
    return {"part": part, "part_source": source, "clock_ns": period, "clock_source": clock_source}


def _check_build(build: Path) -> None:
    missing = [f for f in ("ir.json", "ir.npz", "golden.npz") if not (build / f).is_file()]
    if missing:
        raise GatemillError(
            f"{str(build)!r} is not a gatemill build folder (missing {', '.join(missing)}); "
            "make one with `gatemill build MODEL --out DIR --until rtl`."
        )


def run_vitis(hls_dir: Path, timeout: float = 24 * 3600) -> dict:
    """Run ``vitis_hls -f run_hls.tcl`` in *hls_dir*, or say how to when it is absent."""
    exe = which("vitis_hls")
    command = "vitis_hls -f run_hls.tcl"
    if exe is None:
        return {
            "ran": False,
            "message": f"vitis_hls is not on PATH; to synthesize, run `cd {hls_dir} && ./run.sh` "
            f"(or `{command}`) on a machine with Vitis HLS.",
        }
    log = hls_dir / "vitis_hls.log"
    t0 = time.perf_counter()
    with log.open("w") as f:
        try:
            r = subprocess.run(
                [exe, "-f", "run_hls.tcl"],
                cwd=hls_dir,
                stdout=f,
                stderr=subprocess.STDOUT,
                env=tool_env(),
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise ToolError("vitis_hls", [exe, "-f", "run_hls.tcl"], log, "Timed out.") from None
    if r.returncode:
        raise ToolError("vitis_hls", [exe, "-f", "run_hls.tcl"], log)
    return {"ran": True, "seconds": round(time.perf_counter() - t0, 1), "log": str(log)}


def run_hls(cfg: HlsConfig) -> dict:
    """Run the step; returns ``{"via", "hls_dir", "part", ...}`` with the reports."""
    build = Path(cfg.build)
    _check_build(build)
    hls_dir = build / "hls"
    hls_dir.mkdir(exist_ok=True)
    if cfg.via == "hls4ml":
        from .hls4ml_bridge import run_hls4ml

        return {"via": "hls4ml", "hls_dir": str(hls_dir), "hls4ml": run_hls4ml(build, hls_dir)}
    target = resolve_target(cfg)
    ir = load_ir(build)
    with np.load(build / "golden.npz", allow_pickle=False) as g:
        inputs, outputs = g["inputs"], g["outputs"]
    try:
        manifest = write_hls(
            ir, hls_dir, inputs, outputs, part=target["part"], period_ns=target["clock_ns"]
        )
    except ValueError as e:
        raise GatemillError(f"cannot generate HLS for {build}: {e}.") from None
    result = {
        "via": "gatemill",
        "hls_dir": str(hls_dir),
        **target,
        "manifest": manifest,
    }
    if cfg.csim:
        from .csim import run_csim

        result["csim"] = run_csim(hls_dir)
    result["vitis_hls"] = run_vitis(hls_dir) if cfg.vitis else {"ran": False, "message": "skipped"}
    return result
