"""Bit-exact C simulation of the HLS design with g++ and the ap_types headers of hls4ml.

hls4ml's package carries Xilinx's open-source ``ap_types`` (``ap_int.h``, ``hls_stream.h``), so
the design compiles and runs without any vendor tool; ``csim_include`` adds the one header
(``ap_axi_sdata.h``) that only Vitis HLS ships.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import time
from pathlib import Path

from ..errors import GatemillError, ToolError
from ..tools import which

BINARY = "gatemill_csim"
_SUMMARY = re.compile(
    r"gatemill csim: vectors (\d+) mismatches (\d+) framing_errors (\d+) first_bad_sample (-?\d+)"
)


def ap_types_dir() -> Path:
    """The ``ap_types`` folder inside the installed hls4ml package.

    Raises
    ------
    GatemillError
        If hls4ml is not installed (it is found without importing it, which is slow).
    """
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise GatemillError(
            "C simulation needs the ap_types headers that the hls4ml package carries: "
            "pip install hls4ml==1.3.0."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "templates" / "vivado" / "ap_types"
    if not (path / "ap_int.h").is_file():
        raise GatemillError(f"hls4ml is installed but {path} has no ap_int.h; reinstall hls4ml.")
    return path


def compile_command(hls_dir: Path, cxx: str = "g++") -> list[str]:
    """The g++ command building the C simulation (paths relative to *hls_dir*)."""
    return [
        cxx,
        "-std=c++14",
        "-O1",  # the run takes about a second either way; -O2 compiles ~20 % longer
        "-I",
        "csim_include",
        "-I",
        str(ap_types_dir()),
        "src/gatemill_top.cpp",
        "src/gatemill_tb.cpp",
        "-o",
        f"csim/{BINARY}",
    ]


def _run(
    cmd: list[str], cwd: Path, log: Path, tool: str, timeout: float
) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(tool, cmd, log, f"It did not finish in {timeout:.0f} s.") from None
    log.write_text(r.stdout + r.stderr)
    return r


def run_csim(hls_dir: Path, timeout: float = 1800.0) -> dict:
    """Compile and run the C simulation in *hls_dir*; write and return ``csim.json``.

    Returns
    -------
    dict
        ``vectors``, ``mismatches`` (output elements that differ from the golden model),
        ``framing_errors`` (missing/extra beats or a misplaced TLAST), ``first_bad_sample``,
        ``compile_seconds``, ``run_seconds``, ``compiler``, ``command``.

    Raises
    ------
    GatemillError
        When g++ is missing; :class:`ToolError` when compiling or running fails; a
        ``GatemillError`` (after writing ``csim.json``) when an output differs.
    """
    hls_dir = Path(hls_dir)
    cxx = which("g++")
    if cxx is None:
        raise GatemillError(
            "C simulation needs g++ (Debian: apt-get install g++); the sources in "
            f"{hls_dir / 'src'} are written."
        )
    work = hls_dir / "csim"
    work.mkdir(exist_ok=True)
    cmd = compile_command(hls_dir, "g++")
    t0 = time.perf_counter()
    r = _run([cxx, *cmd[1:]], hls_dir, work / "compile.log", "g++", timeout)
    compile_seconds = time.perf_counter() - t0
    if r.returncode:
        raise ToolError("g++", cmd, work / "compile.log", "The generated HLS C++ did not compile.")
    run_cmd = [f"csim/{BINARY}", "tb_data/inputs.txt", "tb_data/outputs.txt"]
    t0 = time.perf_counter()
    # absolute: the binary runs in hls_dir, which may be a path relative to here
    exe = str((work / BINARY).resolve())
    r = _run([exe, *run_cmd[1:]], hls_dir, work / "run.log", BINARY, timeout)
    run_seconds = time.perf_counter() - t0
    m = _SUMMARY.search(r.stdout)
    if m is None:
        raise ToolError(BINARY, run_cmd, work / "run.log", "The testbench printed no summary.")
    vectors, mismatches, framing, first_bad = (int(g) for g in m.groups())
    report = {
        "vectors": vectors,
        "mismatches": mismatches,
        "framing_errors": framing,
        "first_bad_sample": None if first_bad < 0 else first_bad,
        "compile_seconds": round(compile_seconds, 3),
        "run_seconds": round(run_seconds, 3),
        "compiler": _version(cxx),
        "command": " ".join(cmd),
        "log": "csim/run.log",  # in the HLS folder
    }
    (hls_dir / "csim.json").write_text(json.dumps(report, indent=1) + "\n")
    if mismatches or framing or vectors == 0:
        raise GatemillError(
            f"C simulation found {mismatches} outputs that differ from the golden model and "
            f"{framing} framing errors on {vectors} vectors (first bad sample: {first_bad}). "
            f"This is a gatemill bug: please report it with {hls_dir / 'csim.json'} and the model."
        )
    return report


def _version(exe: str) -> str:
    try:
        r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = r.stdout.strip().splitlines()
    return lines[0] if lines else "unknown"
