"""Vivado projects for Zynq boards and the PYNQ driver of an accelerator.

``write_vivado`` renders, from the Jinja2 templates in ``templates/vivado``, the Tcl that
packages the generated Verilog as an IP with AXI4-Stream interfaces, builds the block design
(processing system, AXI DMA, accelerator, clocks and resets, address map), runs synthesis and
implementation and exports the ``.bit`` + ``.hwh`` pair; it runs Vivado when ``vivado`` is on
PATH and otherwise says exactly what to run. ``write_driver`` writes the PYNQ driver package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from .boards import Board
from .errors import GatemillError, ToolError
from .names import sanitize
from .textgen import render

MAX_STREAM_BITS = 1024  # the widest AXI DMA stream
JOBS = 2


def _manifest(out: Path) -> dict:
    path = out / "rtl" / "manifest.json"
    if not path.is_file():
        raise GatemillError(
            f"{out} has no rtl/manifest.json: run `gatemill build MODEL --out "
            f"{out} --until rtl` first."
        )
    return json.loads(path.read_text())


def design_name(out: Path) -> str:
    """The block design's name: the IR's (already sanitized) name, sanitized again."""
    ir = json.loads((out / "ir.json").read_text())
    return sanitize(f"{ir['name']}_accel", "design")


def write_vivado(out: Path, board: Board, run: bool | None = None) -> dict:
    """Write ``out/vivado/`` for *board*; run it when Vivado is on PATH (or *run* is True).

    Returns the contents of ``out/vivado/vivado.json``.
    """
    if board.vendor != "xilinx" or board.ps is None:
        raise GatemillError(
            f"board {board.name!r} has no Zynq processing system; a Vivado "
            "block design needs one (pynq-z1, pynq-z2, ultra96-v2, zcu104)."
        )
    m = _manifest(out)
    in_bits, out_bits = m["input"]["tdata_bits"], m["output"]["tdata_bits"]
    for port, bits in (("input", in_bits), ("output", out_bits)):
        if bits > MAX_STREAM_BITS:
            raise GatemillError(
                f"the accelerator's {port} stream is {bits} bits wide; an AXI DMA takes at "
                f"most {MAX_STREAM_BITS}. Fold the first/last layer more (smaller simd/pe) "
                "with --folding."
            )
    design = design_name(out)
    ctx = {
        "board": board,
        "ps_name": {"ps7": "Zynq-7000 PS7", "zynq_ultra_ps_e": "ZynqMP PS"}[board.ps],
        "design": design,
        "top": m["top"],
        "sources": m["verilog"],
        "part": board.part,
        "clock_mhz": board.clock_mhz,
        "in_bits": in_bits,
        "out_bits": out_bits,
        "mm2s_width": max(32, in_bits),
        "s2mm_width": max(32, out_bits),
        "jobs": JOBS,
    }
    vdir = out / "vivado"
    vdir.mkdir(exist_ok=True)
    for name in ("package_ip.tcl", "build.tcl", "run.sh"):
        (vdir / name).write_text(render(f"vivado/{name}.j2", **ctx))
    (vdir / "run.sh").chmod(0o755)
    write_driver(out, design)
    vivado = shutil.which("vivado")
    report = {
        "board": board.name,
        "part": board.part,
        "ps": board.ps,
        "design": design,
        "tcl": ["vivado/package_ip.tcl", "vivado/build.tcl"],
        "run": "vivado/run.sh",
        "vivado": vivado,
        "ran": False,
        "bitstream": f"vivado/out/{design}.bit",
        "hwh": f"vivado/out/{design}.hwh",
    }
    if run or (run is None and vivado):
        if vivado is None:
            raise GatemillError("vivado is not on PATH.")
        log = vdir / "run.log"
        with open(log, "w") as f:
            r = subprocess.run(
                [str(vdir / "run.sh")], stdout=f, stderr=subprocess.STDOUT, env=dict(os.environ)
            )
        if r.returncode != 0 or not (vdir / "out" / f"{design}.bit").is_file():
            raise ToolError("vivado", [str(vdir / "run.sh")], log)
        report["ran"] = True
        for ext in ("bit", "hwh"):
            shutil.copy(vdir / "out" / f"{design}.{ext}", out / "driver")
    else:
        report["next"] = (
            f"Vivado is not on PATH: on a machine with Vivado 2022.1 or later, run "
            f"{vdir / 'run.sh'}; then copy {out / 'driver'} and vivado/out/"
            f"{design}.bit + .hwh to the board."
        )
    (vdir / "vivado.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def write_driver(out: Path, design: str) -> Path:
    """Write the PYNQ driver package ``out/driver/gatemill_driver``; returns its folder."""
    pkg = out / "driver" / "gatemill_driver"
    pkg.mkdir(parents=True, exist_ok=True)
    templates = resources.files("gatemill.templates")
    (pkg / "__init__.py").write_text((templates / "pynq" / "driver.py").read_text())
    # the same packing code the testbench uses: it needs only numpy
    (pkg / "packing.py").write_text(
        resources.files("gatemill.flow").joinpath("packing.py").read_text()
    )
    shutil.copy(out / "rtl" / "manifest.json", pkg / "manifest.json")
    (pkg / "config.json").write_text(json.dumps({"bitfile": f"{design}.bit"}, indent=1) + "\n")
    return pkg
