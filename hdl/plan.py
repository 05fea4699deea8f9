"""The accelerator's chain: one unit per IR layer that needs hardware, a width converter where
neighbouring units' lanes differ, a FIFO in front of every unit after the first and one at the
output, and its timing (no hardware built).

:func:`plan` gives the stages, :func:`estimates` the initiation interval and latency of the
whole chain from each stage's timing model: the layer kinds'
(:meth:`gatemill.flow.kinds.base.Layer.beat_times`), :mod:`.fifo`'s and :mod:`.width`'s.
The folding, the estimates of :mod:`gatemill.flow.dse` and :class:`gatemill.hdl.top.Accelerator`
all use this one plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..flow.ir import IRGraph
from . import fifo, width
from .common import Backpressure


@dataclass(frozen=True)
class Stage:
    """One element of the hardware chain, with its stream widths and estimates."""

    name: str
    kind: str  # a layer kind, "WidthConverter" or "Fifo"
    in_lanes: int
    out_lanes: int
    ii: int  # cycles per sample at full rate
    latency: int  # first input beat to first output beat at full rate
    layer: object = None
    dtype: object = None  # FIFOs: the datatype they carry
    depth: int = 0  # FIFOs
    per_sample: int = 0  # width converters: elements per sample

    def beat_times(self, avail, hold=None) -> list[int]:
        """Cycle of each output beat of one sample given when each input beat is available
        (and for a unit, *hold*: when its consumer takes its output beats)."""
        if self.kind == "Fifo":
            return fifo.beat_times(self.depth, avail)
        if self.kind == "WidthConverter":
            return width.beat_times(
                self.layer.in_dtype, self.in_lanes, self.out_lanes, self.per_sample, avail
            )
        return self.layer.beat_times(avail, hold)


def plan(ir: IRGraph, fifo_depths: dict[str, int] | None = None) -> list[Stage]:
    """The chain of units, width converters and FIFOs for *ir* (no hardware built).

    Every unit after the first is fed by a FIFO holding whole beats of its own input width
    (after the width converter, if the folds differ), one sample plus one beat deep by
    default, so a producer can run a sample ahead of a consumer that takes its input in
    bursts; a last FIFO decouples the output port. *fifo_depths* overrides the depth in front
    of (and, for the last layer, after) a layer, by layer name.
    """
    depths = fifo_depths or {}
    stages: list[Stage] = []
    lanes = None
    units = [layer for layer in ir.layers if layer.hardware]
    if not units:
        raise ValueError("the IR has no layer that needs hardware")

    def add_fifo(layer, dtype, n: int, beats: int, key: str) -> None:
        depth = depths.get(key, beats + 1)
        if depth:
            stages.append(
                Stage(
                    f"{key}_fifo",
                    "Fifo",
                    n,
                    n,
                    beats,
                    fifo.latency_cycles(depth),
                    layer,
                    dtype=dtype,
                    depth=depth,
                )
            )

    for layer in units:
        n_in, n_out = layer.in_lanes, layer.out_lanes
        per_sample = math.prod(layer.in_shape)
        if lanes is not None:
            if lanes != n_in:
                stages.append(
                    Stage(
                        f"{layer.name}_width",
                        "WidthConverter",
                        lanes,
                        n_in,
                        width.cycles_per_sample(layer.in_dtype, lanes, n_in, per_sample),
                        width.latency_cycles(layer.in_dtype, lanes, n_in, per_sample),
                        layer,
                        per_sample=per_sample,
                    )
                )
            add_fifo(layer, layer.in_dtype, n_in, per_sample // n_in, layer.name)
        stages.append(
            Stage(layer.name, layer.kind, n_in, n_out, layer.cycles(), layer.latency(), layer)
        )
        lanes = n_out
    last = units[-1]
    add_fifo(last, last.out_dtype, lanes, math.prod(last.out_shape) // lanes, f"{last.name}_out")
    return stages


# AxiStreamTop adds no register between the AXI ports and the chain.
IO_LATENCY = 0


def estimates(stages: list[Stage]) -> dict:
    """Initiation interval (the slowest stage) and latency of the chain at full rate.

    The latency follows one sample's beats through every stage's timing model (each
    ``beat_times``): the input beats are all available at cycle 0, and the estimate is the
    cycle of the first output beat. Summing the units' latencies would undercount: a folded
    unit spaces its output beats, and its consumer may need several of them. A FIFO (a sample
    deep) never refuses a beat, but a width converter right after a unit may (one that narrows
    the beats drains them more slowly than a unit can burst them), and the unit then stalls:
    its timing model follows the converter's intake (:class:`gatemill.hdl.width.Intake`).
    """
    first = stages[0]
    avail = [0] * (math.prod(first.layer.in_shape) // first.in_lanes)
    i = 0
    while i < len(stages):
        stage, nxt = stages[i], stages[i + 1] if i + 1 < len(stages) else None
        if nxt is not None and nxt.kind == "WidthConverter":
            intake = width.Intake(nxt.in_lanes, nxt.out_lanes, nxt.per_sample)
            stage.beat_times(avail, Backpressure(intake.take))
            avail, i = intake.out, i + 2
        else:
            avail, i = stage.beat_times(avail), i + 1
    return {
        "ii_cycles": max(s.ii for s in stages),
        "latency_cycles": int(avail[0]) + IO_LATENCY,
        "bottleneck": max(stages, key=lambda s: s.ii).name,
    }


def layer_of_stages(stages: list[dict]) -> dict[str, str]:
    """``{stage: layer}``: a FIFO or width converter belongs to the unit it feeds.

    The chain is ``unit, [width, fifo, unit]..., fifo`` (see :func:`plan`);
    the last FIFO, which feeds the output port, belongs to the last unit.
    """
    owner, pending, last = {}, [], None
    for s in stages:
        if s["kind"] in ("Fifo", "WidthConverter"):
            pending.append(s["name"])
            continue
        for p in pending:
            owner[p] = s["name"]
        owner[s["name"]] = last = s["name"]
        pending = []
    for p in pending:
        owner[p] = last
    return owner
