"""The accelerator: the IR's layers chained by streams, and its AXI4-Stream top level.

:class:`Accelerator` instantiates one unit per IR layer (``Flatten`` is free: the stream is
already in channels-last order), re-chunks lanes between units whose folds differ, and puts a
FIFO after every unit. :class:`AxiStreamTop` is the only place that speaks AXI4-Stream: plain
``aclk``/``aresetn``, ``s_axis_*`` and ``m_axis_*`` ports (``tlast`` on the last beat of
every output sample) so Vivado and cocotbext-axi bind to it by name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import ClockDomain, ClockSignal, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..flow.ir import IRGraph
from ..flow.packing import tdata_bits
from .common import stream_of

# kind -> (module, unit class, attribute holding the input fold, attribute of the output fold)
UNITS = {
    "MatrixVector": ("matrix_vector", "MatrixVectorUnit", "simd", "pe"),
    "Threshold": ("threshold", "ThresholdUnit", "pe", "pe"),
    "SlidingWindow": ("sliding_window", "SlidingWindowUnit", "simd", "simd"),
    "MaxPool": ("maxpool", "MaxPoolUnit", "pe", "pe"),
    "LutLayer": ("lut_layer", "LutLayerUnit", "in_features", "neurons"),
}


def unit_module(layer):
    """The template module of *layer* (its unit class and estimate functions)."""
    return importlib.import_module(f"{__package__}.{UNITS[layer.kind][0]}")


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

    def beat_times(self, avail) -> list[int]:
        """Cycle of each output beat of one sample given when each input beat is available."""
        from . import fifo, width

        if self.kind == "Fifo":
            return fifo.beat_times(self.depth, avail)
        if self.kind == "WidthConverter":
            return width.beat_times(
                self.layer.in_dtype, self.in_lanes, self.out_lanes, self.per_sample, avail
            )
        return unit_module(self.layer).beat_times(self.layer, avail)


def plan(ir: IRGraph, fifo_depths: dict[str, int] | None = None) -> list[Stage]:
    """The chain of units, width converters and FIFOs for *ir* (no hardware built).

    Every unit after the first is fed by a FIFO holding whole beats of its own input width
    (after the width converter, if the folds differ), one sample plus one beat deep by
    default, so a producer can run a sample ahead of a consumer that takes its input in
    bursts; a last FIFO decouples the output port. *fifo_depths* overrides the depth in front
    of (and, for the last layer, after) a layer, by layer name.
    """
    from . import fifo

    depths = fifo_depths or {}
    stages: list[Stage] = []
    lanes = None
    units = [layer for layer in ir.layers if layer.kind != "Flatten"]
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
        mod = unit_module(layer)
        _, _, fin, fout = UNITS[layer.kind]
        n_in, n_out = getattr(layer, fin), getattr(layer, fout)
        per_sample = int(np.prod(layer.in_shape))
        if lanes is not None:
            if lanes != n_in:
                from . import width

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
            Stage(
                layer.name,
                layer.kind,
                n_in,
                n_out,
                mod.cycles_per_sample(layer),
                mod.latency_cycles(layer),
                layer,
            )
        )
        lanes = n_out
    last = units[-1]
    add_fifo(last, last.out_dtype, lanes, int(np.prod(last.out_shape)) // lanes, f"{last.name}_out")
    return stages


def estimates(stages: list[Stage]) -> dict:
    """Initiation interval (the slowest stage) and latency of the chain at full rate.

    The latency follows one sample's beats through every stage's timing model (each unit's
    ``beat_times``): the input beats are all available at cycle 0, and the estimate is the
    cycle of the first output beat. Summing the units' latencies would undercount: a folded
    unit spaces its output beats, and its consumer may need several of them.
    """
    first = stages[0]
    avail = [0] * (int(np.prod(first.layer.in_shape)) // first.in_lanes)
    for stage in stages:
        avail = stage.beat_times(avail)
    return {
        "ii_cycles": max(s.ii for s in stages),
        "latency_cycles": int(avail[0]) + IO_LATENCY,
        "bottleneck": max(stages, key=lambda s: s.ii).name,
    }


# AxiStreamTop adds no register between the AXI ports and the chain.
IO_LATENCY = 0


class Accelerator(wiring.Component):
    """The IR's layers chained by streams.

    Parameters
    ----------
    ir : IRGraph
    fifo_depths : dict, optional
        FIFO depth after each layer, by layer name (0 for none).
    """

    def __init__(self, ir: IRGraph, fifo_depths: dict[str, int] | None = None):
        self._ir = ir
        self._stages = plan(ir, fifo_depths)
        last = ir.layers[-1]
        super().__init__(
            {
                "i": In(stream_of(ir.input.dtype, self._stages[0].in_lanes)),
                "o": Out(stream_of(last.out_dtype, self._stages[-1].out_lanes)),
            }
        )

    @property
    def stages(self) -> list[Stage]:
        return list(self._stages)

    def _build(self, stage: Stage):
        from .common import lanes
        from .fifo import StreamFifo

        if stage.kind == "Fifo":
            return StreamFifo(shape=lanes(stage.dtype, stage.in_lanes), depth=stage.depth)
        if stage.kind == "WidthConverter":
            from .width import WidthConverter

            nxt = self._stages[self._stages.index(stage) + 1].layer
            return WidthConverter(
                dtype=nxt.in_dtype,
                n_in=stage.in_lanes,
                n_out=stage.out_lanes,
                per_sample=int(np.prod(nxt.in_shape)),
            )
        return getattr(unit_module(stage.layer), UNITS[stage.kind][1])(layer=stage.layer)

    def elaborate(self, platform):
        m = Module()
        prev = self.i
        for stage in self._stages:
            unit = self._build(stage)
            m.submodules[stage.name] = unit
            wiring.connect(m, wiring.flipped(prev) if prev is self.i else prev, unit.i)
            prev = unit.o
        wiring.connect(m, prev, wiring.flipped(self.o))
        return m


class AxiStreamTop(wiring.Component):
    """AXI4-Stream wrapper of :class:`Accelerator` with plain, Vivado-style port names.

    ``aresetn`` is active low and synchronous. ``s_axis_tlast`` is accepted and ignored (the
    design counts beats); ``m_axis_tlast`` marks the last beat of every output sample.
    """

    def __init__(self, ir: IRGraph, fifo_depths: dict[str, int] | None = None):
        self._core = Accelerator(ir, fifo_depths)
        self._in_bits = self._core.i.payload.shape().size
        self._out_bits = self._core.o.payload.shape().size
        last = ir.layers[-1]
        self._out_beats = int(np.prod(last.out_shape)) // self._core.stages[-1].out_lanes
        super().__init__(
            {
                "aclk": In(1),
                "aresetn": In(1),
                "s_axis_tdata": In(tdata_bits(self._in_bits)),
                "s_axis_tvalid": In(1),
                "s_axis_tready": Out(1),
                "s_axis_tlast": In(1),
                "m_axis_tdata": Out(tdata_bits(self._out_bits)),
                "m_axis_tvalid": Out(1),
                "m_axis_tready": In(1),
                "m_axis_tlast": Out(1),
            }
        )

    @property
    def core(self) -> Accelerator:
        return self._core

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.d.comb += [ClockSignal("sync").eq(self.aclk), ResetSignal("sync").eq(~self.aresetn)]
        m.submodules.core = core = self._core
        m.d.comb += [
            core.i.payload.as_value().eq(self.s_axis_tdata[: self._in_bits]),
            core.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(core.i.ready),
            self.m_axis_tdata.eq(core.o.payload.as_value()),
            self.m_axis_tvalid.eq(core.o.valid),
            core.o.ready.eq(self.m_axis_tready),
        ]
        beat = Signal(range(max(self._out_beats, 2)))
        last = beat == self._out_beats - 1
        m.d.comb += self.m_axis_tlast.eq(last)
        with m.If(core.o.valid & core.o.ready):
            m.d.sync += beat.eq(Mux(last, 0, beat + 1))
        return m
