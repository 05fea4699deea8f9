"""The estimate of one folding: cycles from the chain's timing model
(:func:`gatemill.hdl.plan.estimates`), LUT/FF/BRAM/DSP from :mod:`.cost`."""

from __future__ import annotations

from ...hdl.plan import estimates, plan
from ..ir import IRGraph
from .cost import design_estimate, estimate
from .fold import apply_folding, folding_of


def lut_estimate(layer, family: str = "xc7") -> dict[str, float]:
    """The estimate of one layer's hardware unit under its folding: ``lut``, ``ff``,
    ``bram`` (36 Kb blocks) and ``dsp``, by :mod:`gatemill.flow.dse.cost`.

    The unit alone: its input FIFO and width converter are stages of their own, which
    :func:`estimate_point` adds to the layer.
    """
    return estimate(layer.features(family), family=family)


def estimate_point(ir: IRGraph, folding: dict, clock_mhz: float, family: str = "xc7") -> dict:
    """Cycles, samples/s at *clock_mhz*, and the estimated LUTs, FFs, BRAMs (36 Kb blocks)
    and DSPs of *ir* under *folding*; ``est_lut_layers`` per layer (its unit, FIFO and width
    converter, as ``synth.json`` attributes them)."""
    folded = apply_folding(ir, folding, "explore")
    est = estimates(plan(folded))
    cost = design_estimate(folded, family)
    return {
        "folding": folding_of(folded),
        "ii_cycles": int(est["ii_cycles"]),
        "latency_cycles": int(est["latency_cycles"]),
        "bottleneck": est["bottleneck"],
        "samples_per_s": clock_mhz * 1e6 / est["ii_cycles"],
        "est_lut": round(cost["lut"]),
        "est_ff": round(cost["ff"]),
        "est_bram": cost["bram"],
        "est_dsp": round(cost["dsp"]),
        "est_lut_layers": {n: round(e["lut"], 1) for n, e in cost["layers"].items()},
    }
