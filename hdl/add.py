"""Add unit: the join of two branches by a weighted elementwise sum, with an optional threshold
activation.

The layer kind, its golden model and timing: :mod:`gatemill.flow.kinds.add`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..flow.ir.datatypes import BIPOLAR
from .common import check_kind, lanes, stream_of
from .skid import StreamSkid
from .threshold import FoldedThresholds

__all__ = ["AddUnit"]


class AddUnit(wiring.Component):
    """``acc = a0 * x0 + a1 * x1`` on ``pe`` channels a beat, thresholded when the layer says.

    Each input enters through a skid buffer (:class:`~gatemill.hdl.skid.StreamSkid`): an input
    beat waits there, one at most, until the other input's beat is there too; both go on in the
    same cycle. Registers: the sum (while the fold's thresholds are read), then the thresholded
    output; without thresholds the sum register is the output. The whole pipeline stalls while
    the output is held by backpressure.

    Parameters
    ----------
    layer : :class:`~gatemill.flow.kinds.add.Add`

    Members
    -------
    i0, i1 : ``In(stream_of(layer.dtypes[k], layer.pe))``
    o : ``Out(stream_of(layer.out_dtype, layer.pe))``
    """

    def __init__(self, *, layer):
        self._layer = check_kind(layer, "Add")
        d0, d1 = layer.dtypes
        super().__init__(
            {
                "i0": In(stream_of(d0, layer.pe)),
                "i1": In(stream_of(d1, layer.pe)),
                "o": Out(stream_of(layer.out_dtype, layer.pe)),
            }
        )

    @property
    def layer(self):
        return self._layer

    def elaborate(self, platform):
        layer, m = self._layer, Module()
        # Each input enters through a skid buffer, whose ready is a register: a producer's
        # ready does not wait on the other input's valid through logic placed between the two
        # branches (nextpnr-ecp5, residual CNN: a width converter's counter through the join
        # and back, 8.5 ns of route).
        ins = []
        for k, port in enumerate((self.i0, self.i1)):
            m.submodules[f"skid{k}"] = skid = StreamSkid(shape=port.payload.shape())
            wiring.connect(m, wiring.flipped(port), skid.i)
            ins.append(skid.o)
        x0, x1 = ins
        advance = ~self.o.valid | self.o.ready
        both = x0.valid & x1.valid
        m.d.comb += [x0.ready.eq(advance & both), x1.ready.eq(advance & both)]
        (a0, a1), (d0, d1) = layer.coefficients, layer.dtypes

        def value(x, dt):
            return Mux(x, 1, -1) if dt == BIPOLAR else x

        sums = [
            a0 * value(x0.payload[p], d0) + a1 * value(x1.payload[p], d1) for p in range(layer.pe)
        ]
        if layer.thresholds is None:
            with m.If(advance):
                m.d.sync += self.o.valid.eq(both)
                m.d.sync += [self.o.payload[p].eq(s) for p, s in enumerate(sums)]
            return m

        thresholds, direction = layer.folded_thresholds()
        m.submodules.thresholds = thr = FoldedThresholds(
            thresholds=thresholds,
            direction=direction,
            value_range=(int(layer.acc_dtype.min()), int(layer.acc_dtype.max())),
            out_dtype=layer.out_dtype,
            out_base=layer.out_base,
        )
        fold = Signal(range(thr.folds))
        acc = Signal(lanes(layer.acc_dtype, layer.pe))
        valid = Signal()
        m.d.comb += [thr.fold.eq(fold), thr.en.eq(advance)]
        with m.If(advance & both):
            m.d.sync += fold.eq(Mux(fold == thr.folds - 1, 0, fold + 1))
        with m.If(advance):
            m.d.sync += [valid.eq(both), self.o.valid.eq(valid), self.o.payload.eq(thr.result)]
            m.d.sync += [acc[p].eq(s) for p, s in enumerate(sums)]
        m.d.comb += [thr.value[p].eq(acc[p]) for p in range(layer.pe)]
        return m
