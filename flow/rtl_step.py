"""The ``rtl`` step: Verilog of the accelerator and the manifest a host packs samples with."""

from __future__ import annotations

import json
from pathlib import Path

from .ir import IRGraph
from .packing import port_description

TOP = "gatemill_top"


def run_rtl(ir: IRGraph, out: Path, top: str = TOP) -> dict:
    """Write ``out/rtl/<top>.v`` and ``out/rtl/manifest.json``; returns the manifest.

    The files are deterministic: the same IR gives byte-identical files (the time the step
    took is the builder's, in ``timings.json``).
    """
    from amaranth.back import verilog

    from ..hdl.plan import estimates
    from ..hdl.top import AxiStreamTop

    design = AxiStreamTop(ir)
    text = verilog.convert(design, name=top, emit_src=False)
    rtl = out / "rtl"
    rtl.mkdir(exist_ok=True)
    (rtl / f"{top}.v").write_text(text)
    stages = design.core.stages
    last = ir.layers[-1]
    manifest = {
        "top": top,
        "verilog": [f"{top}.v"],
        "clock": "aclk",
        "reset": "aresetn (active low, synchronous)",
        "input": {
            **port_description(ir.input.shape, ir.input.dtype, stages[0].in_lanes),
            "quantizer": ir.input.port()["quantizer"],
            "tlast": "ignored",
        },
        "output": {
            **port_description(last.out_shape, last.out_dtype, stages[-1].out_lanes),
            "dequantize": {
                "scale": ir.output.scale.tolist(),
                "bias": ir.output.bias.tolist(),
                "formula": "y[c] = scale[c] * out[c] + bias[c]",
            },
            "tlast": "last beat of every sample",
        },
        "estimates": estimates(stages),
        "stages": [
            {
                "name": s.name,
                "kind": s.kind,
                "in_lanes": s.in_lanes,
                "out_lanes": s.out_lanes,
                "ii_cycles": s.ii,
                "latency_cycles": s.latency,
                **({"depth": s.depth} if s.kind == "Fifo" else {}),
            }
            for s in stages
        ],
    }
    (rtl / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
