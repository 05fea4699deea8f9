"""Global sum unit: per-channel sums over every position of a sample (global average pooling,
the sum or mean over a set's elements).

The layer kind, its golden model and timing: :mod:`gatemill.flow.kinds.global_sum`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..flow.ir.datatypes import BIPOLAR
from .channel_sums import ChannelSums
from .common import check_kind, lanes, stream_of

__all__ = ["GlobalSumUnit"]


class GlobalSumUnit(wiring.Component):
    """Per-channel sums of the ``P`` positions of a ``(..., C)`` sample.

    The input is ``P * CF`` beats of ``pe`` channels (``CF = C / pe``), position-major; beat
    ``pos * CF + cf`` adds to the sums of fold ``cf``
    (:class:`~gatemill.hdl.channel_sums.ChannelSums`: ``CF`` words of ``pe`` sums, registers
    when ``CF = 1``). The beats of the last position end the sums: a sample gives ``CF`` output
    beats of ``pe`` channels, one a cycle. The unit takes one beat a cycle whenever its output
    register is free.

    Registers: the issued beat (the term stage of the sums), then the output (one register
    raw, two thresholded). A BIPOLAR element adds -1 or +1.

    Parameters
    ----------
    layer : :class:`~gatemill.flow.kinds.global_sum.GlobalSum`

    Members
    -------
    i : ``In(stream_of(layer.in_dtype, layer.pe))``
    o : ``Out(stream_of(layer.out_dtype, layer.pe))``
    """

    def __init__(self, *, layer):
        self._layer = check_kind(layer, "GlobalSum")
        super().__init__(
            {
                "i": In(stream_of(layer.in_dtype, layer.pe)),
                "o": Out(stream_of(layer.out_dtype, layer.pe)),
            }
        )

    @property
    def layer(self):
        return self._layer

    def elaborate(self, platform):
        layer, m = self._layer, Module()
        positions, folds = layer.positions, layer.folds
        thresholds, direction = layer.folded_thresholds()
        m.submodules.sums = sums = ChannelSums(
            pe=layer.pe,
            folds=folds,
            terms=positions,
            acc_dtype=layer.acc_dtype,
            thresholds=thresholds,
            direction=direction,
            out_dtype=layer.out_dtype,
            out_base=layer.out_base,
        )
        wiring.connect(m, sums.o, wiring.flipped(self.o))
        advance = sums.advance

        # Stage 0: the beat's position and fold.
        pos, cf = Signal(range(positions)), Signal(range(folds))
        accept = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(advance)
        with m.If(accept):
            m.d.sync += cf.eq(Mux(cf == folds - 1, 0, cf + 1))
            with m.If(cf == folds - 1):
                m.d.sync += pos.eq(Mux(pos == positions - 1, 0, pos + 1))

        # Stage 1: the beat, the term stage of the sums.
        beat = data.StructLayout({"valid": 1, "first": 1, "last": 1, "cf": range(folds)})
        s1, x = Signal(beat), Signal(lanes(layer.in_dtype, layer.pe))
        with m.If(advance):
            m.d.sync += [
                s1.valid.eq(self.i.valid),
                s1.first.eq(pos == 0),
                s1.last.eq(pos == positions - 1),
                s1.cf.eq(cf),
                x.eq(self.i.payload),
            ]
        bipolar = layer.in_dtype == BIPOLAR
        m.d.comb += [
            sums.read_fold.eq(cf),
            sums.valid.eq(s1.valid),
            sums.first.eq(s1.first),
            sums.last.eq(s1.last),
            sums.fold.eq(s1.cf),
        ]
        m.d.comb += [
            sums.term[p].eq(Mux(x[p], 1, -1) if bipolar else x[p]) for p in range(layer.pe)
        ]
        return m
