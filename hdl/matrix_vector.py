"""Matrix-vector unit (MVU): dense layers and lowered convolutions, FINN-style folding.

The layer kind, its golden model and timing: :mod:`gatemill.flow.kinds.matrix_vector`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..flow.ir.datatypes import BIPOLAR, encode
from .common import ROM_ATTRS, check_kind, elem_shape, lanes, stream_of
from .pipeline import delayed, sum_levels, tree_sum
from .skid import StreamSkid
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
    def packed(self) -> bool:
        """True when rows share multipliers (``mul="dsp"``, ``pack`` > 1, ``pe`` > 1)."""
        return self._layer.packed

    @property
    def weight_layout(self) -> data.ArrayLayout:
        """One weight word: ``pe`` rows of ``simd`` weights; packed, ``groups`` rows of
        ``simd`` multiplicands (the weights of up to ``pack`` rows, ``pack_shift`` bits
        apart, the first row lowest)."""
        layer = self._layer
        if self.packed:
            shape = signed(layer.packed_bits(min(layer.pack, layer.pe)))
            return data.ArrayLayout(data.ArrayLayout(shape, layer.simd), layer.groups)
        return data.ArrayLayout(data.ArrayLayout(elem_shape(layer.w_dtype), layer.simd), layer.pe)

    def weight_words(self) -> list[int]:
        """The folded weight memory's contents, word ``nf * SF + sf``: lane ``p * SIMD + s``
        holds ``W[nf * PE + p, sf * SIMD + s]`` (packed: lane ``g * SIMD + s`` holds rows
        ``g * pack ..`` of column ``s``)."""
        layer = self._layer
        if self.packed:
            bits = Shape.cast(self.weight_layout.elem_shape.elem_shape).width
            lanes = layer.multiplicands().reshape(-1, layer.groups * layer.simd)
            codes = [[int(v) & ((1 << bits) - 1) for v in word] for word in lanes]
        else:
            bits = elem_shape(layer.w_dtype).width
            flat = layer.folded_weights().reshape(-1, layer.pe * layer.simd)
            codes = encode(flat, layer.w_dtype).astype(object).tolist()
        return [sum(int(c) << (k * bits) for k, c in enumerate(word)) for word in codes]

    def _product(self, x, w):
        layer = self._layer
        if layer.binary:
            return ~(x ^ w)[0]
        if layer.w_dtype == BIPOLAR:
            return Mux(w, x, -x)
        if layer.in_dtype == BIPOLAR:
            return Mux(x, w, -w)
        return x * w

    def _lut_products(self, m, x, weights, en, register: bool):
        """Rows of products built from LUTs and adders: the weight's radix-4 digits select
        a multiple of the input (0, x, 2x, 3x; the top digit of a signed weight -2x, -x, 0,
        x), shifted and summed. ``3x`` and ``-x`` are computed once per input lane for all
        rows, and registered when *register*, the weight word beside them; a 1-bit operand
        is a multiplexer."""
        layer = self._layer
        w_signed = layer.w_dtype.signed()
        wb = elem_shape(layer.w_dtype).width
        rows = [[] for _ in range(layer.pe)]
        if not layer.lut_multiples:
            for s in range(layer.simd):
                xs = Value.cast(x[s])
                for p in range(layer.pe):
                    if elem_shape(layer.in_dtype).width == 1 and not layer.in_dtype.signed():
                        rows[p].append(Mux(xs, weights[p][s], 0))
                    else:
                        rows[p].append(Mux(weights[p][s], xs, 0))
            return rows
        if register:
            weights = self._register_word(m, weights, en)
        for s in range(layer.simd):
            xs = Value.cast(x[s])
            x3, nx = xs + (xs << 1), -xs
            if register:
                xs, x3, nx = (self._register(m, v, en, f"x{s}_{n}") for v, n in
                              ((xs, "1"), (x3, "3"), (nx, "neg")))  # fmt: skip
            for p in range(layer.pe):
                w = Value.cast(weights[p][s])
                terms = []
                for k in range(0, wb, 2):
                    top = k + 2 >= wb
                    if k + 1 < wb:
                        b0, b1 = w[k], w[k + 1]
                        if top and w_signed:  # b0 - 2 b1: 0, x, -2x, -x
                            t = Mux(b1, Mux(b0, nx, nx << 1), Mux(b0, xs, 0))
                        else:
                            t = Mux(b1, Mux(b0, x3, xs << 1), Mux(b0, xs, 0))
                    else:  # a last single bit: +-1 x
                        t = Mux(w[k], nx if w_signed else xs, 0)
                    terms.append(t << k)
                # the highest term first: the adder's first operand (see the docstring of
                # gatemill.hdl.pipeline) comes from a LUT, the other is merged into its LUTs
                rows[p].append(tree_sum(terms[::-1]))
        return rows

    def _dsp_products(self, m, x, weights, en, stages):
        """Rows of products on multipliers; packed, ``pack`` rows of one group share one
        multiplication by the lane's input, and each row's field of the product is its own
        product plus the borrow of the field below (its sign bit). The multiplier's whole
        product is registered (:attr:`Stages.products`, where a DSP takes it in as its
        output register) and again in the fabric (:attr:`Stages.fabric_products`), before
        the fields are taken apart."""
        layer = self._layer

        def product(a, b, name):
            value = a * b
            for k in range(stages.products + stages.fabric_products):
                value = self._register(m, value, en, f"{name}_r{k}")
            return value

        if not self.packed:
            return [
                [product(x[s], weights[p][s], f"mul{p}_{s}") for s in range(layer.simd)]
                for p in range(layer.pe)
            ]
        shift = layer.pack_shift
        rows = [[] for _ in range(layer.pe)]
        for s in range(layer.simd):
            for g in range(layer.groups):
                prod = product(x[s], weights[g][s], f"mul{g}_{s}")
                members = range(g * layer.pack, min((g + 1) * layer.pack, layer.pe))
                for r, p in enumerate(members):
                    top = r == len(members) - 1
                    field = prod[r * shift : (r + 1) * shift + top].as_signed()
                    rows[p].append(field + prod[r * shift - 1] if r else field)
        return rows

    def _rows(self, m, x, weights, en, stages, x_registered=0):
        """The values each row's adder tree sums for the issued step (``pe`` rows of
        ``simd`` products), with the registers *stages* puts in front of the products (the
        input's first *x_registered* of them are in place already)."""
        layer = self._layer
        for k in range(stages.operands):
            weights = self._register_word(m, weights, en, k)
            if k >= x_registered:
                x = x.shape()(self._register(m, x.as_value(), en, f"x_d{k}"))
        if not layer.multiplies:
            return [
                [self._product(x[s], weights[p][s]) for s in range(layer.simd)]
                for p in range(layer.pe)
            ]
        if layer.mul == "lut":
            return self._lut_products(m, x, weights, en, stages.multiples)
        return self._dsp_products(m, x, weights, en, stages)

    def _shift_add_rows(self, m, x, en, register: bool):
        """Rows of signed terms of a constant layer (:attr:`MatrixVector.shift_add`): per
        input column its odd multiples, one adder each (``layer.multiples()``), registered
        with the input itself when *register*; weight ``+-(o << j)`` adds or subtracts
        multiple ``o`` shifted by ``j``, a weight of 0 nothing. Returns ``(values, negative)``
        per row."""
        layer = self._layer
        built = []
        for s, plan in enumerate(layer.multiples()):
            mult = {1: Value.cast(x[s])}
            for o, a, j, sign, b in plan:
                mult[o] = (mult[a] << j) + mult[b] if sign > 0 else (mult[a] << j) - mult[b]
            if register:
                mult = {o: self._register(m, v, en, f"x{s}_times{o}") for o, v in mult.items()}
            built.append(mult)
        return [
            ([built[s][o] << j for s, o, j, _ in terms], [neg for *_, neg in terms])
            for terms in layer.shift_add_terms()
        ]

    def _register_word(self, m, weights, en, k=0):
        return self.weight_layout(self._register(m, weights.as_value(), en, f"weights_d{k}"))

    @staticmethod
    def _register(m, value, en, name):
        # data path registers need no reset (the valid bits beside them have one), and
        # without it a block RAM or multiplier can take them in (gatemill.flow.synth.ecp5_regs)
        reg = Signal(Shape.cast(value.shape()), name=name, reset_less=True)
        with m.If(en):
            m.d.sync += reg.eq(value)
        return reg

    def elaborate(self, platform):
        layer, m = self._layer, Module()
        nf_count, sf_count = layer.folds
        steps = nf_count * sf_count
        in_layout = lanes(layer.in_dtype, layer.simd)
        # every register of the pipeline loads on advance (see _output)
        advance = Signal(init=1) if layer.has_skid else Signal()
        out_valid = Signal()
        out_payload = Signal.like(self.o.payload)

        # Stage 0: step counters; a step of fold 0 needs an input beat.
        nf = Signal(range(nf_count))
        sf = Signal(range(sf_count))
        step = Signal(range(steps))
        # nf == 0, kept in a register of its own: it gates the input's enables
        fresh = Signal(init=1)
        issue = advance & (self.i.valid | ~fresh)
        # The input register and buffer load whenever the unit is ready, valid or not: a
        # beat that is not valid issues no step and is overwritten before any step reads it.
        # Their enable then comes from this unit's registers only, not from the producer's
        # valid (on the ECP5 the producer's handshake to a 256-bit enable was the digits MLP's
        # slowest path).
        take = advance & fresh
        m.d.comb += self.i.ready.eq(take)
        with m.If(issue):
            m.d.sync += step.eq(Mux(step == steps - 1, 0, step + 1))
            m.d.sync += sf.eq(Mux(sf == sf_count - 1, 0, sf + 1))
            with m.If(sf == sf_count - 1):
                m.d.sync += nf.eq(Mux(nf == nf_count - 1, 0, nf + 1))
                m.d.sync += fresh.eq(nf == nf_count - 1)

        # Stage 1: weights and input of the issued step.
        words = self.weight_words()
        if steps == 1:
            weights = self.weight_layout(Const(words[0], Shape.cast(self.weight_layout).width))
        else:
            # the word's top lut_weight_bits in a ROM in logic, the rest where synthesis
            # puts it (block RAM when it is cheaper)
            width = Shape.cast(self.weight_layout).width
            split = width - layer.lut_weight_bits
            parts = []
            for name, lo, hi, attrs in (
                ("weights", 0, split, None),
                ("weights_lut", split, width, ROM_ATTRS),
            ):
                if hi > lo:
                    mask = (1 << (hi - lo)) - 1
                    m.submodules[name] = wmem = memory.Memory(
                        shape=hi - lo,
                        depth=steps,
                        init=[(w >> lo) & mask for w in words],
                        attrs=attrs,
                    )
                    wport = wmem.read_port(domain="sync")
                    m.d.comb += [wport.addr.eq(step), wport.en.eq(advance)]
                    parts.append(wport.data)
            weights = self.weight_layout(Cat(*parts))
        stages = layer.stages()
        latest = Signal(in_layout, reset_less=True)
        with m.If(take):
            m.d.sync += latest.eq(self.i.payload)
        if layer.buffered:
            # Fold 0 takes the beat it just accepted; later folds read it back. The buffer
            # is read only when it is not written (fold 0's reads would go unused): Yosys
            # then proves the ports never collide and adds no logic after the block RAM for
            # a collision (there was a LUT between the ECP5's EBR and its output register).
            # Tried on the ECP5 4096 -> 64 layer (138.1 MHz): fold 0 reading its beat through
            # the buffer (a transparent port) instead of the choice, 118.2 MHz (the 36-bit
            # EBR has no write-through; Yosys puts the bypass in a LUT after it); a select
            # register per lane (kept apart in Yosys), 121.2 MHz (the slowest path moves to
            # the buffer's write enable, 7.2 ns of route).
            m.submodules.buffer = buf = memory.Memory(shape=in_layout, depth=sf_count, init=[])
            wbuf, rbuf = buf.write_port(), buf.read_port(domain="sync")
            m.d.comb += [
                wbuf.addr.eq(sf),
                wbuf.data.eq(self.i.payload),
                wbuf.en.eq(take),
                rbuf.addr.eq(sf),
                rbuf.en.eq(advance & ~fresh),
            ]
            s1_fresh = Signal()
            with m.If(advance):
                m.d.sync += s1_fresh.eq(fresh)
            kept, read = latest.as_value(), rbuf.data.as_value()
            if stages.operands:
                # the input's first operand register in front of the choice between the kept
                # beat and the buffer's, so that a block RAM takes it in as its output
                # register (the ECP5 4096 -> 64 layer: 5.8 ns from the buffer's EBR output)
                kept, read, s1_fresh = (
                    self._register(m, v, advance, f"x_{n}")
                    for v, n in ((kept, "kept"), (read, "read"), (s1_fresh, "fresh"))
                )
            x = in_layout(Mux(s1_fresh, kept, read))
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
        ahead = stages.operands + stages.multiples + stages.products + stages.fabric_products
        meta = delayed(m, s1, ahead, advance, "s1")
        negated = [False] * layer.pe
        if layer.shift_add:
            depth = layer.adder_levels()
            dots = []
            for p, (values, negative) in enumerate(
                self._shift_add_rows(m, x, advance, stages.multiples)
            ):
                dot, negated[p] = sum_levels(
                    values, stages.tree_cuts, m=m, en=advance, name=f"tree{p}", depth=depth,
                    negative=negative,
                )  # fmt: skip
                dots.append(dot)
        else:
            # a buffered input has passed its first operand register already
            products = self._rows(m, x, weights, advance, stages, int(layer.buffered))
            if stages.products and not (layer.multiplies and layer.mul == "dsp"):
                products = [
                    [self._register(m, v, advance, f"prod{p}_{s}") for s, v in enumerate(row)]
                    for p, row in enumerate(products)
                ]
            dots = [
                sum_levels(row, stages.tree_cuts, m=m, en=advance, name=f"tree{p}")
                for p, row in enumerate(products)
            ]
        meta = s1.shape()(delayed(m, meta, len(stages.tree_cuts), advance, "tree"))
        s2 = Signal.like(s1)
        s2_dot = [Signal(Shape.cast(d.shape()), name=f"dot{p}") for p, d in enumerate(dots)]
        with m.If(advance):
            m.d.sync += s2.eq(meta)
            m.d.sync += [r.eq(d) for r, d in zip(s2_dot, dots, strict=True)]

        # Stage 3: accumulate; the sum is final after the last step of a fold.
        acc_shape = elem_shape(layer.acc_dtype)
        acc = [Signal(acc_shape, name=f"acc{p}") for p in range(layer.pe)]
        acc_next = [
            Mux(s2.first, 0, a) + d if sf_count > 1 else -d if neg else d
            for a, d, neg in zip(acc, s2_dot, negated, strict=True)
        ]
        final = s2.valid & s2.last
        with m.If(advance & s2.valid):
            m.d.sync += [a.eq(n) for a, n in zip(acc, acc_next, strict=True)]

        # Stage 4: output register.
        if layer.thresholds is None:
            with m.If(advance):
                m.d.sync += out_valid.eq(final)
                m.d.sync += [out_payload[p].eq(n) for p, n in enumerate(acc_next)]
            self._output(m, advance, out_valid, out_payload, final)
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
            search=stages.search_cuts if layer.threshold_search else None,
            # pipelined: the fold's thresholds are read as its last step enters stage 2
            ahead=bool(layer.pipeline),
            # constant thresholds: a row's own range decides some of them
            lane_range=layer.acc_range() if layer.compares_constants else None,
            # constant thresholds on multipliers (thr_mul), where a row's thresholds allow it
            affine=layer.affine_counts if layer.threshold_search else None,
        )
        s3_valid = Signal()
        m.d.comb += [thr.fold.eq(meta.nf if layer.pipeline else s2.nf), thr.en.eq(advance)]
        m.d.comb += [thr.value[p].eq(a) for p, a in enumerate(acc)]
        counted = delayed(m, s3_valid, stages.compare + len(stages.search_cuts), advance, "s3")
        with m.If(advance):
            m.d.sync += [
                s3_valid.eq(final),
                out_valid.eq(counted),
                out_payload.eq(thr.result),
            ]
        self._output(m, advance, out_valid, out_payload, counted)
        return m

    def _output(self, m, advance, valid, payload, valid_next):
        """Drive ``o`` from the output register (*valid*, *payload*, loaded with *valid_next*
        on *advance*) and *advance*: the pipeline advances unless the output register holds a
        beat the consumer refuses (``~valid | o.ready``).

        With :attr:`~gatemill.flow.kinds.matrix_vector.MatrixVector.has_skid`, a skid buffer
        (:class:`~gatemill.hdl.skid.StreamSkid`) takes the beat instead, and the pipeline
        advances unless it holds a beat already (``~valid | skid.i.ready``); that is a
        function of registers, so *advance* is itself a register, loaded with the value it
        will have: the consumer's ``ready`` then reaches one flip-flop through logic, not the
        enable of every register and multiplier of the unit."""
        if not self._layer.has_skid:
            m.d.comb += [
                self.o.valid.eq(valid),
                self.o.payload.eq(payload),
                advance.eq(~valid | self.o.ready),
            ]
            return
        m.submodules.skid = skid = StreamSkid(shape=self.o.payload.shape())
        m.d.comb += [skid.i.valid.eq(valid), skid.i.payload.eq(payload)]
        wiring.connect(m, skid.o, wiring.flipped(self.o))
        valid_after = Mux(advance, valid_next, valid)
        m.d.sync += advance.eq(~valid_after | skid.ready_next)
