"""Vector-vector unit (VVU): depthwise convolutions and average pooling after a sliding window.

The layer kind, its golden model and timing: :mod:`gatemill.flow.kinds.vector_vector`.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Shape, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..flow.ir.datatypes import BIPOLAR, encode
from .channel_sums import ChannelSums
from .common import check_kind, elem_shape, lanes, stream_of

__all__ = ["VectorVectorUnit"]


class VectorVectorUnit(wiring.Component):
    """Per-channel dot products of a window with the channel's own weights.

    A window is ``K`` elements of each of ``C`` channels in ``(k, channel)`` order, as a
    sliding window emits it: ``K * CF`` beats of ``pe`` channels (``CF = C / pe``), beat
    ``k * CF + cf`` carrying element ``k`` of channels ``cf * pe ..``. Each beat multiplies its
    ``pe`` lanes by weight word ``k * CF + cf`` (:meth:`VectorVector.folded_weights
    <gatemill.flow.kinds.vector_vector.VectorVector.folded_weights>`) and adds the products to
    the sums of fold ``cf`` (:class:`~gatemill.hdl.channel_sums.ChannelSums`); the beats of
    the window's last element (``k = K - 1``) end the sums, so a window gives ``CF`` output
    beats of ``pe`` channels, one a cycle. A sample is ``prod(spatial)`` windows back to back;
    the unit takes one beat a cycle whenever its output register is free.

    Registers: the issued beat with its weight word (a synchronous ROM read, or a constant
    when every word is the same: average pooling), the products, then the output
    (:class:`~gatemill.hdl.channel_sums.ChannelSums`: one register raw, two thresholded).

    Products: a conditional negation when one operand is BIPOLAR, a multiplier otherwise.

    Parameters
    ----------
    layer : :class:`~gatemill.flow.kinds.vector_vector.VectorVector`

    Members
    -------
    i : ``In(stream_of(layer.in_dtype, layer.pe))``
    o : ``Out(stream_of(layer.out_dtype, layer.pe))``
    """

    def __init__(self, *, layer):
        self._layer = check_kind(layer, "VectorVector")
        super().__init__(
            {
                "i": In(stream_of(layer.in_dtype, layer.pe)),
                "o": Out(stream_of(layer.out_dtype, layer.pe)),
            }
        )

    @property
    def layer(self):
        return self._layer

    def weight_words(self) -> list[int]:
        """The weight memory's contents: word ``k * CF + cf``, lane ``p``."""
        layer = self._layer
        bits = elem_shape(layer.w_dtype).width
        codes = encode(layer.folded_weights().reshape(-1, layer.pe), layer.w_dtype)
        return [
            sum(int(c) << (p * bits) for p, c in enumerate(word))
            for word in codes.astype(object).tolist()
        ]

    def _product(self, x, w):
        layer = self._layer
        if layer.w_dtype == BIPOLAR:
            return Mux(w, x, -x)
        if layer.in_dtype == BIPOLAR:
            return Mux(x, w, -w)
        return x * w

    def elaborate(self, platform):
        layer, m = self._layer, Module()
        taps, folds = layer.taps, layer.folds
        steps = taps * folds
        w_layout = data.ArrayLayout(elem_shape(layer.w_dtype), layer.pe)
        thresholds, direction = layer.folded_thresholds()
        m.submodules.sums = sums = ChannelSums(
            pe=layer.pe,
            folds=folds,
            terms=taps,
            acc_dtype=layer.acc_dtype,
            thresholds=thresholds,
            direction=direction,
            out_dtype=layer.out_dtype,
            out_base=layer.out_base,
        )
        wiring.connect(m, sums.o, wiring.flipped(self.o))
        advance = sums.advance

        # Stage 0: the beat's position in the window: weight word `step`, tap k, fold cf.
        step, k, cf = Signal(range(steps)), Signal(range(taps)), Signal(range(folds))
        accept = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(advance)
        with m.If(accept):
            m.d.sync += step.eq(Mux(step == steps - 1, 0, step + 1))
            m.d.sync += cf.eq(Mux(cf == folds - 1, 0, cf + 1))
            with m.If(cf == folds - 1):
                m.d.sync += k.eq(Mux(k == taps - 1, 0, k + 1))

        # Stage 1: the beat and its weight word.
        words = self.weight_words()
        if len(set(words)) == 1:
            weights = w_layout(Const(words[0], Shape.cast(w_layout).width))
        else:
            m.submodules.weights = wmem = memory.Memory(
                shape=Shape.cast(w_layout).width, depth=steps, init=words
            )
            wport = wmem.read_port(domain="sync")
            m.d.comb += [wport.addr.eq(step), wport.en.eq(advance)]
            weights = w_layout(wport.data)
        beat = data.StructLayout({"valid": 1, "first": 1, "last": 1, "cf": range(folds)})
        s1, x = Signal(beat), Signal(lanes(layer.in_dtype, layer.pe))
        with m.If(advance):
            m.d.sync += [
                s1.valid.eq(self.i.valid),
                s1.first.eq(k == 0),
                s1.last.eq(k == taps - 1),
                s1.cf.eq(cf),
                x.eq(self.i.payload),
            ]

        # Stage 2: the products, the term stage of the sums.
        s2, prod = Signal(beat), Signal(sums.term.shape())
        with m.If(advance):
            m.d.sync += s2.eq(s1)
            m.d.sync += [prod[p].eq(self._product(x[p], weights[p])) for p in range(layer.pe)]
        m.d.comb += [
            sums.read_fold.eq(s1.cf),
            sums.valid.eq(s2.valid),
            sums.first.eq(s2.first),
            sums.last.eq(s2.last),
            sums.fold.eq(s2.cf),
            sums.term.eq(prod),
        ]
        return m
