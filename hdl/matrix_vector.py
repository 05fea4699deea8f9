"""Matrix-vector unit (MVU): dense layers and lowered convolutions, FINN-style folding.

The layer kind, its golden model and timing: :mod:`gatemill.flow.kinds.matrix_vector`.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Shape, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..flow.ir.datatypes import BIPOLAR, encode
from .common import check_kind, elem_shape, lanes, stream_of
from .pipeline import delayed, sum_levels
from .threshold import FoldedThresholds

__all__ = ["MatrixVectorUnit"]


class MatrixVectorUnit(wiring.Component):
    """Folded matrix-vector product with an optional threshold activation.

    A vector arrives as ``SF = MW / simd`` beats (beat ``sf`` carries columns ``sf * simd ..``)
    and leaves as ``NF = MH / pe`` beats (beat ``nf`` carries channels ``nf * pe ..``); a sample
    of a convolution is ``prod(spatial)`` vectors back to back.

    The schedule visits the steps ``(nf, sf)`` in row-major order, one per cycle. During the
    first neuron fold (``nf = 0``) each step consumes an input beat and stores it in an input
    buffer of ``SF`` words; the other ``NF - 1`` folds read it back, so one vector takes exactly
    ``NF * SF`` cycles with no bubble between vectors. Weight word ``nf * SF + sf`` holds the
    ``pe x simd`` weights of rows ``nf * pe + p``, columns ``sf * simd + s``.

    Pipeline registers (all stall together while the output is held by backpressure):

    1. issue: the step's weight word and buffered input (synchronous memory reads);
    2. product: ``pe`` dot products of ``simd`` lanes (adder trees);
    3. accumulate: ``acc += dot`` (``acc = dot`` at ``sf = 0``), final after ``sf = SF - 1``,
       when the fold's thresholds are read alongside;
    4. output: the thresholded accumulators of ``pe`` channels. Without thresholds the output
       register takes the final sum in place of stage 3 (one stage fewer).

    Products: XNOR for binary layers (``acc`` counts agreements), a conditional negation when
    one operand is BIPOLAR, a multiplier otherwise. The accumulator is ``acc_dtype`` wide;
    two's complement wrap-around of partial sums is harmless because the final sum fits.

    Parameters
    ----------
    layer : :class:`~gatemill.flow.kinds.matrix_vector.MatrixVector`

    Members
    -------
    i : ``In(stream_of(layer.in_dtype, layer.simd))``
    o : ``Out(stream_of(layer.out_dtype, layer.pe))``
    """

    def __init__(self, *, layer):
        self._layer = check_kind(layer, "MatrixVector")
        super().__init__(
            {
                "i": In(stream_of(layer.in_dtype, layer.simd)),
                "o": Out(stream_of(layer.out_dtype, layer.pe)),
            }
        )

    @property
    def layer(self):
        return self._layer

    @property
    def weight_layout(self) -> data.ArrayLayout:
        """One weight word: ``pe`` rows of ``simd`` weights."""
        layer = self._layer
        return data.ArrayLayout(data.ArrayLayout(elem_shape(layer.w_dtype), layer.simd), layer.pe)

    def weight_words(self) -> list[int]:
        """The folded weight memory's contents, word ``nf * SF + sf``, lane ``p * SIMD + s``."""
        layer = self._layer
        bits = elem_shape(layer.w_dtype).width
        folded = layer.folded_weights()  # [NF, SF, PE, SIMD]
        codes = encode(folded.reshape(-1, layer.pe * layer.simd), layer.w_dtype).astype(object)
        return [sum(int(c) << (k * bits) for k, c in enumerate(word)) for word in codes.tolist()]

    def _product(self, x, w):
        layer = self._layer
        if layer.binary:
            return ~(x ^ w)[0]
        if layer.w_dtype == BIPOLAR:
            return Mux(w, x, -x)
        if layer.in_dtype == BIPOLAR:
            return Mux(x, w, -w)
        return x * w

    @staticmethod
    def _register(m, value, en, name):
        reg = Signal(Shape.cast(value.shape()), name=name)
        with m.If(en):
            m.d.sync += reg.eq(value)
        return reg

    def elaborate(self, platform):
        layer, m = self._layer, Module()
        nf_count, sf_count = layer.folds
        steps = nf_count * sf_count
        in_layout = lanes(layer.in_dtype, layer.simd)
        advance = ~self.o.valid | self.o.ready

        # Stage 0: step counters; a step of fold 0 needs an input beat.
        nf = Signal(range(nf_count))
        sf = Signal(range(sf_count))
        step = Signal(range(steps))
        fresh = nf == 0
        issue = advance & (self.i.valid | ~fresh)
        accept = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(advance & fresh)
        with m.If(issue):
            m.d.sync += step.eq(Mux(step == steps - 1, 0, step + 1))
            m.d.sync += sf.eq(Mux(sf == sf_count - 1, 0, sf + 1))
            with m.If(sf == sf_count - 1):
                m.d.sync += nf.eq(Mux(nf == nf_count - 1, 0, nf + 1))

        # Stage 1: weights and input of the issued step.
        words = self.weight_words()
        if steps == 1:
            weights = self.weight_layout(Const(words[0], Shape.cast(self.weight_layout).width))
        else:
            m.submodules.weights = wmem = memory.Memory(
                shape=Shape.cast(self.weight_layout).width, depth=steps, init=words
            )
            wport = wmem.read_port(domain="sync")
            m.d.comb += [wport.addr.eq(step), wport.en.eq(advance)]
            weights = self.weight_layout(wport.data)
        latest = Signal(in_layout)
        with m.If(accept):
            m.d.sync += latest.eq(self.i.payload)
        if nf_count > 1 and sf_count > 1:
            # Fold 0 takes the beat it just accepted; later folds read it back.
            m.submodules.buffer = buf = memory.Memory(shape=in_layout, depth=sf_count, init=[])
            wbuf, rbuf = buf.write_port(), buf.read_port(domain="sync")
            m.d.comb += [
                wbuf.addr.eq(sf),
                wbuf.data.eq(self.i.payload),
                wbuf.en.eq(accept),
                rbuf.addr.eq(sf),
                rbuf.en.eq(advance),
            ]
            s1_fresh = Signal()
            with m.If(advance):
                m.d.sync += s1_fresh.eq(fresh)
            x = in_layout(Mux(s1_fresh, latest.as_value(), rbuf.data.as_value()))
        else:
            # One beat per vector, or one fold: the last accepted beat is the whole input.
            x = latest
        s1 = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1, "nf": range(nf_count)}))
        with m.If(advance):
            m.d.sync += [
                s1.valid.eq(issue),
                s1.first.eq(sf == 0),
                s1.last.eq(sf == sf_count - 1),
                s1.nf.eq(nf),
            ]

        # Stage 2: registered dot products of the step; a pipelined unit registers the
        # products and the partial sums of their adder trees on the way (layer.stages()).
        stages = layer.stages()
        products = [
            [self._product(x[s], weights[p][s]) for s in range(layer.simd)] for p in range(layer.pe)
        ]
        meta = s1
        if stages.products:
            products = [
                [self._register(m, v, advance, f"prod{p}_{s}") for s, v in enumerate(row)]
                for p, row in enumerate(products)
            ]
            meta = delayed(m, meta, 1, advance, "s1")
        dots = [
            sum_levels(row, stages.tree_cuts, m=m, en=advance, name=f"tree{p}")
            for p, row in enumerate(products)
        ]
        meta = delayed(m, meta, len(stages.tree_cuts), advance, "tree")
        s2 = Signal.like(s1)
        s2_dot = [Signal(Shape.cast(d.shape()), name=f"dot{p}") for p, d in enumerate(dots)]
        with m.If(advance):
            m.d.sync += s2.eq(meta)
            m.d.sync += [r.eq(d) for r, d in zip(s2_dot, dots, strict=True)]

        # Stage 3: accumulate; the sum is final after the last step of a fold.
        acc_shape = elem_shape(layer.acc_dtype)
        acc = [Signal(acc_shape, name=f"acc{p}") for p in range(layer.pe)]
        acc_next = [
            Mux(s2.first, 0, a) + d if sf_count > 1 else d for a, d in zip(acc, s2_dot, strict=True)
        ]
        final = s2.valid & s2.last
        with m.If(advance & s2.valid):
            m.d.sync += [a.eq(n) for a, n in zip(acc, acc_next, strict=True)]

        # Stage 4: output register.
        if layer.thresholds is None:
            with m.If(advance):
                m.d.sync += self.o.valid.eq(final)
                m.d.sync += [self.o.payload[p].eq(n) for p, n in enumerate(acc_next)]
            return m

        thresholds, direction = layer.folded_thresholds()
        m.submodules.thresholds = thr = FoldedThresholds(
            thresholds=thresholds,
            direction=direction,
            # the accumulator register's range (the thresholds are clamped to it)
            value_range=(int(layer.acc_dtype.min()), int(layer.acc_dtype.max())),
            out_dtype=layer.out_dtype,
            out_base=layer.out_base,
            split=stages.compare,
        )
        s3_valid = Signal()
        m.d.comb += [thr.fold.eq(s2.nf), thr.en.eq(advance)]
        m.d.comb += [thr.value[p].eq(a) for p, a in enumerate(acc)]
        counted = delayed(m, s3_valid, int(stages.compare), advance, "s3")
        with m.If(advance):
            m.d.sync += [
                s3_valid.eq(final),
                self.o.valid.eq(counted),
                self.o.payload.eq(thr.result),
            ]
        return m
