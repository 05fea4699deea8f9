"""Writing ``DIR/hls/``: the HLS C++ sources, the testbench data and the Vitis HLS scripts.

Layout of the written folder::

    src/gatemill/*.h        the generic kernels (copied from templates/hls/include)
    src/gatemill_config.h   one CONFIG_T struct per kernel               (rendered)
    src/params/<layer>.h    weight / threshold arrays                    (rendered)
    src/gatemill_top.h/.cpp the ports and the DATAFLOW top function      (rendered)
    src/gatemill_tb.cpp     the testbench (copied)
    tb_data/inputs.txt      one sample per line, IR integers, channels last
    tb_data/outputs.txt     the golden model's outputs, same format
    csim_include/           g++-only stand-in for Vitis's ap_axi_sdata.h
    run_hls.tcl, run.sh     Vitis HLS: csim, csynth, cosim, export_design (IP catalog)
    manifest.json           ports (the packing module's format), kernels, streams

Every generated file is a deterministic function of the IR, the vectors and the options.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from importlib import resources
from pathlib import Path

import jinja2
import numpy as np

from ..ir import IRGraph
from .plan import TOP, Plan, ident, plan_design

DEFAULT_PART = "xc7z020clg400-1"
PROJECT = "gatemill_hls"
CFLAGS = "-std=c++14"
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def template_dir() -> Path:
    """``templates/hls`` of the installed package."""
    return Path(str(resources.files("gatemill.templates"))) / "hls"


def tcl_word(value: str) -> str:
    """*value* as one brace-quoted Tcl word; refuses anything braces cannot quote safely."""
    s = str(value)
    if any(ch in s for ch in "{}\\\n\r") or not s.isprintable():
        raise ValueError(f"refusing to put {s!r} into a Tcl script")
    return "{" + s + "}"


def c_initializer(values: np.ndarray, width: int = 96) -> str:
    """A C brace initializer of an integer array, nested like its shape, wrapped at *width*."""
    a = np.asarray(values, dtype=np.int64)

    def nest(x) -> str:
        if x.ndim == 0:
            return str(int(x))
        return "{" + ", ".join(nest(sub) for sub in x) + "}"

    # numbers and braces hold no spaces, so wrapping only ever breaks after a comma
    return textwrap.fill(nest(a), width, break_long_words=False, break_on_hyphens=False)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir() / "jinja")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # C++ and Tcl: every inserted value is an identifier, a number or quoted
    )
    env.filters["ident"] = ident
    env.filters["tcl"] = tcl_word
    env.filters["cinit"] = c_initializer
    return env


def check_part(part: str) -> str:
    """*part* if it looks like a Xilinx part name (letters, digits, ``-``, ``_``, ``.``)."""
    if not (isinstance(part, str) and part.isascii() and _PART.match(part)):
        raise ValueError(f"{part!r} is not a part name like {DEFAULT_PART}")
    return part


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _samples_text(a: np.ndarray) -> str:
    flat = np.asarray(a, dtype=np.int64).reshape(len(a), -1)
    return "".join(" ".join(map(str, row)) + "\n" for row in flat.tolist())


def write_hls(
    ir: IRGraph,
    out: Path,
    inputs: np.ndarray,
    outputs: np.ndarray,
    *,
    part: str = DEFAULT_PART,
    period_ns: float = 10.0,
) -> dict:
    """Write the HLS project of *ir* into *out* (``DIR/hls``); returns the manifest.

    Parameters
    ----------
    ir : IRGraph
        The folded IR (PE/SIMD set).
    out : Path
        The folder to write; its ``src``, ``csim_include`` and ``tb_data`` are replaced.
    inputs, outputs : ndarray of int
        Golden test vectors ``(N, *input shape)`` and ``(N, *output shape)``.
    part : str
        Xilinx part for ``set_part``.
    period_ns : float
        Clock period for ``create_clock``.
    """
    part = check_part(part)
    if not (0.5 <= float(period_ns) <= 1000.0):
        raise ValueError(f"clock period {period_ns} ns is out of range")
    plan = plan_design(ir)
    env = _env()
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("src", "csim_include", "tb_data"):
        shutil.rmtree(out / sub, ignore_errors=True)
    tdir = template_dir()
    shutil.copytree(tdir / "include" / "gatemill", out / "src" / "gatemill")
    shutil.copy(tdir / "tb" / "gatemill_tb.cpp", out / "src" / "gatemill_tb.cpp")
    shutil.copytree(tdir / "csim", out / "csim_include")

    ctx = _context(plan)
    # every kernel of the library (a layer kind's header needs no list entry)
    headers = sorted(p.name for p in (out / "src" / "gatemill").glob("gm_*.h"))
    text = env.get_template("config.h.j2").render(**ctx, headers=headers)
    _write(out / "src" / "gatemill_config.h", text)
    for layer, arrays in plan.params.items():
        text = env.get_template("params.h.j2").render(layer=layer, arrays=arrays)
        _write(out / "src" / "params" / f"{ident(layer)}.h", text)
    _write(out / "src" / "gatemill_top.h", env.get_template("top.h.j2").render(**ctx))
    _write(out / "src" / "gatemill_top.cpp", env.get_template("top.cpp.j2").render(**ctx))
    scripts = {"project": PROJECT, "top": TOP, "part": part, "cflags": CFLAGS}
    period = f"{float(period_ns):g}"
    _write(
        out / "run_hls.tcl", env.get_template("run_hls.tcl.j2").render(**scripts, period_ns=period)
    )
    _write(out / "run.sh", env.get_template("run.sh.j2").render(**scripts))
    (out / "run.sh").chmod(0o755)

    _write(out / "tb_data" / "inputs.txt", _samples_text(inputs))
    _write(out / "tb_data" / "outputs.txt", _samples_text(outputs))

    manifest = {
        "top": TOP,
        "part": part,
        "clock_period_ns": float(period_ns),
        "sources": sorted(str(p.relative_to(out)) for p in (out / "src").rglob("*") if p.is_file()),
        "testbench": "src/gatemill_tb.cpp",
        "vectors": len(inputs),
        "input": {**plan.ports["input"], "tlast": "ignored"},
        "output": {**plan.ports["output"], "tlast": "last beat of every sample"},
        "kernels": [{"call": c.func, "comment": c.comment} for c in plan.calls],
        "streams": [{"name": s.name, "lanes": s.lanes, "bits": s.bits} for s in plan.streams],
        "vitis_hls": "vitis_hls -f run_hls.tcl",
    }
    _write(out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return manifest


def _context(plan: Plan) -> dict:
    ports = []
    for key, short in (("input", "in"), ("output", "out")):
        port = plan.ports[key]
        t, bipolar = plan.port_types[key]
        ports.append(
            (
                short,
                {
                    "port": port,
                    "ctype": t,
                    "bipolar": bipolar,
                    "elems": int(np.prod(port["shape"])),
                },
            )
        )
    return {
        "top": TOP,
        "configs": plan.configs,
        "layers": list(plan.params),
        "streams": plan.streams,
        "calls": plan.calls,
        "ports": ports,
    }
