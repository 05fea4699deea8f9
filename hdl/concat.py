"""Concat unit: the join of branches by concatenating their channels.

The layer kind, its golden model and timing: :mod:`gatemill.flow.kinds.concat`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .common import check_kind, lanes, stream_of

__all__ = ["ConcatUnit"]


class ConcatUnit(wiring.Component):
    """Per channel vector, the beats of input 0, then of input 1, ..., ``pe`` channels a beat,
    each element widened to the output's datatype (its value unchanged). One output register.

    Parameters
    ----------
    layer : :class:`~gatemill.flow.kinds.concat.Concat`

    Members
    -------
    i0, i1, ... : ``In(stream_of(layer.dtypes[k], layer.pe))``
    o : ``Out(stream_of(layer.dtype, layer.pe))``
    """

    def __init__(self, *, layer):
        self._layer = check_kind(layer, "Concat")
        ports = {f"i{k}": In(stream_of(dt, layer.pe)) for k, dt in enumerate(layer.dtypes)}
        super().__init__({**ports, "o": Out(stream_of(layer.dtype, layer.pe))})

    @property
    def layer(self):
        return self._layer

    def elaborate(self, platform):
        layer, m = self._layer, Module()
        ins = [getattr(self, f"i{k}") for k in range(layer.arity)]
        beats = [c // layer.pe for c in layer.channels]
        sel = Signal(range(layer.arity))
        beat = Signal(range(max(beats)))
        advance = ~self.o.valid | self.o.ready
        valid = Signal()
        payload = Signal(lanes(layer.dtype, layer.pe))
        last = Signal()
        for k, port in enumerate(ins):
            m.d.comb += port.ready.eq(advance & (sel == k))
            with m.If(sel == k):
                m.d.comb += [
                    valid.eq(port.valid),
                    last.eq(beat == beats[k] - 1),
                    *(payload[p].eq(port.payload[p]) for p in range(layer.pe)),
                ]
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(valid), self.o.payload.eq(payload)]
        with m.If(advance & valid):
            m.d.sync += beat.eq(Mux(last, 0, beat + 1))
            with m.If(last):
                m.d.sync += sel.eq(Mux(sel == layer.arity - 1, 0, sel + 1))
        return m
