"""Per-channel running sums and the output stage of the units that reduce a stream channel by
channel: :class:`~gatemill.hdl.vector_vector.VectorVectorUnit` (a dot product per channel)
and :class:`~gatemill.hdl.global_sum.GlobalSumUnit` (a sum per channel over positions).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .common import elem_shape, stream_of
from .threshold import FoldedThresholds

__all__ = ["ChannelSums"]


class ChannelSums(wiring.Component):
    """Running sums of ``pe`` channels in ``folds`` groups, raw or thresholded onto ``o``.

    The unit's last register (its *term stage*) presents one beat: ``pe`` terms of fold
    ``fold``. ``first`` starts a fold's sums afresh, ``last`` ends them: the sums leave on
    ``o``, one beat of ``pe`` channels, raw (``acc_dtype``) one edge later, or through
    :class:`~gatemill.hdl.threshold.FoldedThresholds` two edges later. Everything moves at
    the edges where ``advance`` is high (the output register is free).

    With several folds the sums live in a memory of ``folds`` words, read one edge ahead:
    ``read_fold`` is the fold of the beat entering the term stage at the next advancing edge,
    and a fold's sums are written when its beat leaves the term stage. Beats cycle through the
    folds, so a fold's next beat enters the term stage at least one edge after its last one
    left: no forwarding is needed. With one fold the sums are registers; with one term per sum
    (``terms == 1``) nothing is stored.

    The sums are ``acc_dtype`` wide; two's complement wrap-around of partial sums is harmless
    because the final sum fits.

    Parameters
    ----------
    pe, folds : int
        Channels per beat and beats per group of sums (``C / pe``).
    terms : int
        Terms per sum (beats of a fold from ``first`` to ``last``).
    acc_dtype : DataType
        Datatype of the sums (and of the terms, which fit in it).
    thresholds, direction : ndarray, optional
        Folded ``[folds, pe, T]`` and ``[folds, pe]``: the activation; raw sums without.
    out_dtype : DataType
        ``acc_dtype`` without thresholds.
    out_base : int

    Members
    -------
    advance : ``Out(1)``
        The pipeline moves at the next edge.
    read_fold : ``In(range(folds))``
    valid, first, last : ``In(1)``
        Of the beat in the term stage.
    fold : ``In(range(folds))``
    term : ``In(ArrayLayout(elem_shape(acc_dtype), pe))``
    o : ``Out(stream_of(out_dtype, pe))``
    """

    def __init__(
        self,
        *,
        pe,
        folds,
        terms,
        acc_dtype,
        thresholds=None,
        direction=None,
        out_dtype=None,
        out_base=0,
    ):
        for what, v in (("pe", pe), ("folds", folds), ("terms", terms)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{what} must be a positive integer, not {v!r}")
        self._pe, self._folds, self._terms = pe, folds, terms
        self._acc_dtype = acc_dtype
        self._thresholds, self._direction = thresholds, direction
        self._out_dtype = acc_dtype if thresholds is None else out_dtype
        self._out_base = out_base
        super().__init__(
            {
                "advance": Out(1),
                "read_fold": In(range(folds)),
                "valid": In(1),
                "first": In(1),
                "last": In(1),
                "fold": In(range(folds)),
                "term": In(data.ArrayLayout(elem_shape(acc_dtype), pe)),
                "o": Out(stream_of(self._out_dtype, pe)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        pe, acc_shape = self._pe, elem_shape(self._acc_dtype)
        layout = data.ArrayLayout(acc_shape, pe)
        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.advance.eq(advance)

        if self._terms == 1:
            stored = layout(Const(0, layout.size))
        elif self._folds == 1:
            stored = Signal(layout)
        else:
            m.submodules.sums = sums = memory.Memory(shape=layout, depth=self._folds, init=[])
            rd, wr = sums.read_port(domain="sync"), sums.write_port()
            m.d.comb += [rd.addr.eq(self.read_fold), rd.en.eq(advance)]
            stored = rd.data
        total = Signal(layout)
        m.d.comb += [total[p].eq(Mux(self.first, 0, stored[p]) + self.term[p]) for p in range(pe)]
        write = advance & self.valid
        if self._terms > 1 and self._folds == 1:
            with m.If(write):
                m.d.sync += stored.eq(total)
        elif self._terms > 1:
            m.d.comb += [wr.addr.eq(self.fold), wr.data.eq(total), wr.en.eq(write)]

        final = self.valid & self.last
        if self._thresholds is None:
            with m.If(advance):
                m.d.sync += [self.o.valid.eq(final), self.o.payload.eq(total)]
            return m

        m.submodules.thresholds = thr = FoldedThresholds(
            thresholds=self._thresholds,
            direction=self._direction,
            # the sums' range (the thresholds are clamped to it)
            value_range=(int(self._acc_dtype.min()), int(self._acc_dtype.max())),
            out_dtype=self._out_dtype,
            out_base=self._out_base,
        )
        done, done_valid = Signal(layout), Signal()
        m.d.comb += [thr.fold.eq(self.fold), thr.en.eq(advance)]
        m.d.comb += [thr.value[p].eq(done[p]) for p in range(pe)]
        with m.If(advance):
            m.d.sync += [
                done.eq(total),
                done_valid.eq(final),
                self.o.valid.eq(done_valid),
                self.o.payload.eq(thr.result),
            ]
        return m
