"""The accelerator: the IR's layers chained by streams, and its AXI4-Stream top level.

:class:`Accelerator` builds the chain of :func:`gatemill.hdl.plan.plan`: each layer's unit
(:meth:`~gatemill.flow.kinds.base.Layer.unit`; a layer without hardware, such as a flatten, is
skipped), width converters where folds differ, FIFOs, and the clock enable of the units that
the plan chains without FIFOs. :class:`AxiStreamTop` is the only
place that speaks AXI4-Stream: plain
``aclk``/``aresetn``, ``s_axis_*`` and ``m_axis_*`` ports (``tlast`` on the last beat of
every output sample) so Vivado and cocotbext-axi bind to it by name.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import ClockDomain, ClockSignal, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..flow.ir import IRGraph
from ..flow.packing import tdata_bits
from .common import lanes, stream_of
from .fifo import StreamFifo
from .fork import StreamFork
from .plan import PORT, Stage, plan
from .skid import StreamSkid
from .width import WidthConverter


class Accelerator(wiring.Component):
    """The IR's layers connected by streams, as :func:`gatemill.hdl.plan.plan` lays them out.

    Parameters
    ----------
    ir : IRGraph
    fifo_depths : dict, optional
        FIFO depths by FIFO stage name (0 for none), overriding the plan's.
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

    @staticmethod
    def _build(stage: Stage):
        if stage.kind == "Fifo":
            return StreamFifo(shape=lanes(stage.dtype, stage.in_lanes), depth=stage.depth)
        if stage.kind == "WidthConverter":
            return WidthConverter(
                dtype=stage.dtype,
                n_in=stage.in_lanes,
                n_out=stage.out_lanes,
                per_sample=stage.per_sample,
            )
        if stage.kind == "Fork":
            return StreamFork(shape=lanes(stage.dtype, stage.in_lanes), n=stage.outputs)
        if stage.kind == "Skid":
            return StreamSkid(shape=lanes(stage.dtype, stage.in_lanes))
        return stage.layer.unit()

    def elaborate(self, platform):
        m = Module()
        built = {}
        for stage in self._stages:
            m.submodules[stage.name] = built[stage.name] = self._build(stage)
        for stage in self._stages:
            unit = built[stage.name]
            sinks = [unit.i] if len(stage.inputs) == 1 else [
                getattr(unit, f"i{k}") for k in range(len(stage.inputs))
            ]  # fmt: skip
            for (src, port), sink in zip(stage.inputs, sinks, strict=True):
                source = wiring.flipped(self.i) if src == PORT else _output(built[src], port)
                if stage.enable:
                    _connect_enabled(m, source, sink, built[stage.enable].i.ready)
                else:
                    wiring.connect(m, source, sink)
        wiring.connect(m, built[self._stages[-1].name].o, wiring.flipped(self.o))
        return m


def _connect_enabled(m, source, sink, enable):
    """*source* into *sink*, a unit of a clock-enable pipeline: a beat passes exactly when
    *enable* is high. The unit's output is taken whenever *enable* is high (its ``o.ready``,
    driven by the same enable from the stage after the pipeline), and its input is then ready
    (:attr:`~gatemill.flow.kinds.base.Layer.plain_pipeline`): so every unit of the pipeline
    moves its beats together, and none waits on another's ``ready`` through logic."""
    m.d.comb += [
        sink.payload.eq(source.payload),
        sink.valid.eq(source.valid & enable),
        source.ready.eq(enable),
    ]


def _output(unit, port: int):
    """Output *port* of a built stage: a fork's ``o<port>``, any other's ``o``."""
    return getattr(unit, f"o{port}") if isinstance(unit, StreamFork) else unit.o


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
