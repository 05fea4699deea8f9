"""``MatrixVector``: dense layers and lowered convolutions (the matrix-vector unit, MVU).

Golden model, FINN-style folding (``pe`` output rows and ``simd`` input columns a cycle), the
unit's timing, the folded weight and threshold layout shared by the RTL
(:mod:`gatemill.hdl.matrix_vector`) and the HLS kernel (``gm_matrix_vector.h``), and what the
unit costs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...hdl.common import Backpressure
from ...hdl.pipeline import tree_depth
from ..hls.model import Array, Config, bconst, ctype, ident, uconst
from ..ir.datatypes import BIPOLAR, check_values, dtype_for_range
from ..ir.fields import check_divisor, divisors, freeze, int_tuple
from . import resources as rs
from .base import Layer
from .thresholds import apply_thresholds, check_activation, fold_channels


def accumulator_range(weights: np.ndarray, in_dtype, binary: bool):
    """Per-row ``(lo, hi)`` of the accumulator of ``weights @ x`` for x of ``in_dtype``."""
    w = np.asarray(weights, dtype=np.int64)
    if binary:
        mw = w.shape[1]
        return np.zeros(w.shape[0], np.int64), np.full(w.shape[0], mw, np.int64)
    xmin, xmax = int(in_dtype.min()), int(in_dtype.max())
    if in_dtype == BIPOLAR:
        # -1/+1 only; the extremes are still at the ends of the range
        xmin, xmax = -1, 1
    a, b = w * xmin, w * xmax
    return np.minimum(a, b).sum(axis=1), np.maximum(a, b).sum(axis=1)


def min_acc_dtype(weights, in_dtype, binary: bool):
    """Smallest accumulator datatype for every row of *weights* (the IR's minimal width)."""
    lo, hi = accumulator_range(weights, in_dtype, binary)
    return dtype_for_range(min(int(lo.min()), 0), max(int(hi.max()), 1))


# Registers of MatrixVectorUnit after a fold's last input beat: issue, product, output, and the
# accumulator when the output is thresholded (see gatemill.hdl.matrix_vector); a pipelined unit
# (``pipeline`` > 0) has more (:meth:`MatrixVector.stages`).
PIPELINE_TAIL = 3


# The delay of one pipeline stage of the unit on an ECP5 (LFE5U-85F, speed 6; nextpnr-ecp5 out
# of context, flow/synth/fmax.py): a fixed part (clock to output, routing in and out, setup,
# the products or the comparisons) and a part per adder level of the tree, in ns. Fitted by
# bench/pipeline.py on digits layers at 1 to 4 levels per cycle. No Xilinx timing tool runs
# here: other families use the ECP5 figures, which a 7-series -1 fabric beats (deeper
# pipelines than needed: more flip-flops, and fewer LUTs, not a slower clock).
STAGE_NS = {"ecp5": (4.0, 1.5)}


def pipeline_for_clock(clock_mhz: float, family: str = "xc7") -> int:
    """Adder levels per cycle (:attr:`MatrixVector.pipeline`) for a clock of *clock_mhz* on
    a device of *family*: as many as :data:`STAGE_NS` says fit the period, at least one."""
    base, level = STAGE_NS.get(family, STAGE_NS["ecp5"])
    return max(1, int((1000.0 / clock_mhz - base) // level))


MULTIPLIERS = ("dsp", "lut")
# Clocks above which a folded unit's output gets a skid buffer (MatrixVector.out_skid), per
# family: nextpnr-ecp5 placed the digits MLP at 108 MHz with the next unit's ready deciding
# the enable of every register and multiplier of the one before it (4.3 ns to the enable,
# 4.5 ns of its fanout to the MULT18s).
SKID_ABOVE_MHZ = {"ecp5": 100.0}
# Thresholds from which constant ones are counted by binary search. Yosys xc7, 16 channels of
# 17-bit values: 63 levels 195 LUT a channel compared one by one, 69-72 by search; at 15
# levels both take about 46.
SEARCH_LEVELS = 16


def odd_part(v: int) -> tuple[int, int]:
    """``(o, j)`` with ``|v| = o << j`` and ``o`` odd (``(0, 0)`` for 0)."""
    v = abs(int(v))
    if v == 0:
        return 0, 0
    j = (v & -v).bit_length() - 1
    return v >> j, j


def multiple_plan(odds) -> list[tuple[int, int, int, int, int]]:
    """How to build the odd multiples *odds* (> 1) of an input ``x`` with one adder each:
    steps ``(o, a, j, sign, b)`` meaning ``o x = (a x << j) + sign * b x``, where ``a`` and
    ``b`` are 1 (``x`` itself) or built by an earlier step. Of the pairs of built ones that
    give ``o``, the one with the fewest adders in series before it (every ``2**j +- 1`` is
    one adder from ``x``; the first pair found made ``3, 5, 7, 9, ...`` a chain of adders,
    the slowest path of a fully parallel layer). A multiple no such pair gives is reached
    through the odd part of ``o - 1`` (built first)."""
    depth, plan = {1: 0}, []

    def build(o: int) -> None:
        if o in depth:
            return
        best = None
        for a in sorted(depth):
            for j in range(1, o.bit_length() + 1):
                for sign in (1, -1):
                    b = sign * (o - (a << j))
                    if b not in depth:
                        continue
                    below = max(depth[a], depth[b])
                    if best is None or below < best[0]:
                        best = (below, (o, a, j, sign, b))
        if best is None:
            c, j = odd_part(o - 1)
            build(c)
            best = (depth[c], (o, c, j, 1, 1))
        depth[o] = best[0] + 1
        plan.append(best[1])

    for o in sorted(odds):
        build(o)
    return plan


@dataclass(frozen=True)
class Stages:
    """The registers a pipelined :class:`MatrixVector` unit adds to its base stages.

    Parameters
    ----------
    operands : int
        Registers in front of the products that load nothing but the step's weight word and
        input: a block RAM holding the weights takes the first in as its output register, a
        multiplier (DSP48, MULT18X18D) the last as its input register; two with DSP
        products (the ECP5 CNN: 4.6 ns of route from a block RAM to a multiplier's
        unregistered input, then 3.5 ns inside it), three for a buffered input on the ECP5
        (:attr:`MatrixVector.dsp_fabric_reg`), else one. None with LUT products that build
        multiples of the input (their weight word is registered beside the multiples, in the
        same stage), one if their input is buffered.
    multiples : bool
        A register after each input's multiples (``3x`` and ``-x`` of LUT products, the odd
        multiples of a shift-and-add unit).
    products : bool
        A register after the products (before the adder tree).
    fabric_products : bool
        With multipliers (DSP products), a second register after the products: a
        multiplier takes the first in as its output register, and this one, in the fabric
        beside the adder tree, makes the long route from the DSP column a path of its own
        (the ECP5 digits MLP: 5.1 ns of its 8.5 ns critical path without it).
    tree_cuts : tuple of int
        Adder-tree levels (from 1) after which the partial sums are registered; the tree's
        last level feeds the dot-product register of the base stages.
    compare : bool
        A register after the threshold comparisons, before they are counted (the count of
        their thermometer code is a few LUT levels deep: no adder tree).
    search_cuts : tuple of int
        Constant thresholds counted by binary search (:attr:`MatrixVector.threshold_search`):
        the search levels (from 1) after which a register holds the bits found so far.
    """

    operands: int = 0
    multiples: bool = False
    products: bool = False
    fabric_products: bool = False
    tree_cuts: tuple[int, ...] = ()
    compare: bool = False
    search_cuts: tuple[int, ...] = ()

    @property
    def extra(self) -> int:
        """Registers added to the path from a step to its output beat."""
        regs = self.operands + self.multiples + self.products + self.fabric_products
        regs += self.compare
        return regs + len(self.tree_cuts) + len(self.search_cuts)


@dataclass(frozen=True, kw_only=True, eq=False)
class MatrixVector(Layer):
    """Matrix-vector product ``acc = W @ x`` with an optional threshold activation.

    Used for dense layers and, after a
    :class:`~gatemill.flow.kinds.sliding_window.SlidingWindow`, for convolutions (one product
    per output pixel: ``spatial = (OH, OW)``).

    Parameters
    ----------
    weights : ndarray of int, shape (MH, MW)
        Integer weights; -1/+1 when ``w_dtype`` is BIPOLAR.
    in_dtype, w_dtype, acc_dtype : DataType
        Input, weight and accumulator datatypes. When inputs and weights are both BIPOLAR the
        layer is *binary*: ``acc`` is the XNOR-popcount (number of positions where input and
        weight agree, ``0..MW``), FINN-style.
    spatial : tuple of int
        Leading per-sample dimensions; ``()`` for a dense layer.
    thresholds : ndarray of int, shape (MH, T), optional
        The activation (:func:`~gatemill.flow.kinds.thresholds.apply_thresholds`); without
        it the output is ``acc``.
    direction : ndarray of int, shape (MH,), optional
        +1 or -1 per output channel; required with ``thresholds``.
    out_dtype : DataType, optional
        Output datatype with thresholds (defaults to ``acc_dtype`` without).
    out_base : int
        Output value when no threshold is passed.
    pe, simd : int
        Folding: output rows and input columns processed per cycle (divisors of MH and MW).
    pipeline : int
        Hardware only: adder-tree levels per clock cycle. 0 computes the products, their whole
        adder tree and the threshold count in one cycle each; ``k`` > 0 registers the
        products, the partial sums after every ``k`` levels and the threshold comparisons
        (:meth:`stages`), for a faster clock (:func:`pipeline_for_clock`).
    mul : {"dsp", "lut"}
        Hardware only, for products of two multi-bit operands: ``"dsp"`` writes them as
        multiplications, which synthesis maps to DSP blocks where they are wide enough
        (:func:`~gatemill.flow.kinds.resources.dsp_product`); ``"lut"`` builds them from
        LUTs and adders (radix-4 digits of the weight selecting 0, x, 2x, 3x or -2x, -x, 0, x;
        :class:`~gatemill.hdl.matrix_vector.MatrixVectorUnit`), never a DSP block.
    pack : int
        With ``mul="dsp"``: up to this many output rows share one multiplier, their weights
        side by side in one operand, ``pack_shift`` bits apart (:meth:`max_pack` fits the
        device's multiplier ports). 1 for LUT products and XNOR or sign products.
    lut_weight_bits : int
        Hardware only: the top bits of each weight word (:meth:`weight_bits` in all) held in
        a ROM in logic (LUTs) instead of the memory synthesis maps to block RAM. A block RAM
        reads at most 72 bits a cycle, so a fast layer with a shallow weight memory needs
        more block RAMs than its bits fill; the folding moves words into LUTs to fit a
        board's block RAM (:func:`~gatemill.flow.dse.budget.fit_board`). 0: the whole word in
        one memory.
    dsp_fabric_reg : int
        Hardware only, with ``mul="dsp"`` and ``pipeline`` > 0: 1 registers the products a
        second time, in the fabric after the multiplier's own output register
        (:attr:`Stages.fabric_products`), and a buffered input once more before the
        multiplier (:attr:`Stages.operands`). :meth:`device_fold` sets it on the ECP5, where
        the routes to and from the multiplier column are long paths of their own; on the
        Xilinx parts it would keep synthesis from folding the tree's first adds into the
        DSP48's post-adder (about 17 LUT more per DSP). 0 otherwise.
    out_skid : int
        Hardware only: 1 ends the unit in a skid buffer of one beat, and its pipeline's
        enable is then a register (computed a cycle ahead) instead of logic on the next
        stage's ``ready``: no latency, a multiplexer and a flip-flop per output bit.
        :meth:`device_fold` sets it above :data:`SKID_ABOVE_MHZ`. A unit that :attr:`chains`
        (one sample per clock, under the clock enable of its run) has none
        (:attr:`has_skid`).
    in_skid : int
        Hardware only: 1 reads the FIFO in front of the unit through a skid buffer of one
        beat (:func:`gatemill.hdl.plan.plan`), so that the FIFO's memory read enable comes
        from registers, not from this unit's input handshake through logic (nextpnr-ecp5,
        digits CNN: ``conv1``'s enable to its FIFO's block RAM read enable, 3.1 ns of
        route; residual CNN: ``head_fc0``'s handshake, 7.7 ns). Same timing (the buffer is a
        wire while empty). :meth:`device_fold` sets it above :data:`SKID_ABOVE_MHZ`; a unit
        fed without a FIFO (inside a chain) has none.
    thr_mul : str
        Hardware only, with constant thresholds counted by binary search
        (:attr:`threshold_search`): ``"dsp"`` counts each row whose thresholds allow it
        (:attr:`affine_counts`) with one multiplier block, ``value * m + c`` shifted and
        clipped, instead of its search (63 levels of a 17-bit value: about 6 LUT and a
        DSP48 instead of about 63 LUT); ``"lut"`` (default) searches every row. Fitting a
        board, :func:`~gatemill.flow.dse.budget.choose_resources` sets it to save LUTs.
    """

    kind: ClassVar[str] = "MatrixVector"
    plain_pipeline: ClassVar[bool] = True
    fold_fields: ClassVar[tuple[str, ...]] = (
        "pe",
        "simd",
        "pipeline",
        "mul",
        "pack",
        "lut_weight_bits",
        "dsp_fabric_reg",
        "out_skid",
        "in_skid",
        "thr_mul",
    )
    weights: np.ndarray
    in_dtype: Any
    w_dtype: Any
    acc_dtype: Any
    spatial: tuple[int, ...] = ()
    thresholds: np.ndarray | None = None
    direction: np.ndarray | None = None
    out_dtype: Any = None
    out_base: int = 0
    pe: int = 1
    simd: int = 1
    pipeline: int = 0
    mul: str = "dsp"
    pack: int = 1
    lut_weight_bits: int = 0
    dsp_fabric_reg: int = 0
    out_skid: int = 0
    in_skid: int = 0
    thr_mul: str = "lut"

    def __post_init__(self):
        super().__post_init__()
        freeze(self, "weights", self.weights)
        int_tuple(self, "spatial")
        if self.weights.ndim != 2 or 0 in self.weights.shape:
            raise ValueError(f"{self.name}: weights must be a non-empty [MH, MW] matrix")
        check_values(f"{self.name} weights", self.weights, self.w_dtype)
        lo, hi = self.acc_range()
        if lo.min() < self.acc_dtype.min() or hi.max() > self.acc_dtype.max():
            raise ValueError(
                f"{self.name}: accumulator datatype {self.acc_dtype.name} cannot hold the range "
                f"[{lo.min()}, {hi.max()}]"
            )
        check_activation(self, self.mh)
        check_divisor(self.name, self.mh, self.pe, "pe")
        check_divisor(self.name, self.mw, self.simd, "simd")
        if (
            not isinstance(self.pipeline, int)
            or isinstance(self.pipeline, bool)
            or (self.pipeline < 0)
        ):
            raise ValueError(
                f"{self.name}: pipeline must be a non-negative integer (adder levels per "
                f"cycle, 0 for none), not {self.pipeline!r}"
            )
        if self.mul not in MULTIPLIERS:
            raise ValueError(
                f"{self.name}: mul must be one of {', '.join(MULTIPLIERS)}, not {self.mul!r}"
            )
        if self.thr_mul not in MULTIPLIERS:
            raise ValueError(
                f"{self.name}: thr_mul must be one of {', '.join(MULTIPLIERS)}, not "
                f"{self.thr_mul!r}"
            )
        if not isinstance(self.pack, int) or isinstance(self.pack, bool) or self.pack < 1:
            raise ValueError(f"{self.name}: pack must be a positive integer, not {self.pack!r}")
        if not (self.mul == "dsp" and self.multiplies):
            object.__setattr__(self, "pack", 1)  # nothing to pack
        for field in ("dsp_fabric_reg", "out_skid", "in_skid"):
            value = getattr(self, field)
            if value not in (0, 1) or isinstance(value, bool):
                raise ValueError(f"{self.name}: {field} must be 0 or 1, not {value!r}")
        bits = self.lut_weight_bits
        if not isinstance(bits, int) or isinstance(bits, bool) or bits < 0:
            raise ValueError(
                f"{self.name}: lut_weight_bits must be a non-negative integer, not {bits!r}"
            )
        if bits > self.weight_bits:
            raise ValueError(
                f"{self.name}: lut_weight_bits {bits} is more than the {self.weight_bits} bits "
                f"of a weight word at pe {self.pe}, simd {self.simd}"
            )

    # -- shapes and golden model ----------------------------------------------------------------

    @property
    def mh(self) -> int:
        """Output channels (matrix height)."""
        return int(self.weights.shape[0])

    @property
    def mw(self) -> int:
        """Input length (matrix width)."""
        return int(self.weights.shape[1])

    @property
    def binary(self) -> bool:
        """True for XNOR-popcount layers (BIPOLAR inputs and weights)."""
        return self.in_dtype == BIPOLAR and self.w_dtype == BIPOLAR

    @property
    def multiplies(self) -> bool:
        """True when the products multiply two multi-bit operands (no XNOR, no sign flip)."""
        return self.in_dtype != BIPOLAR and self.w_dtype != BIPOLAR

    @property
    def pack_shift(self) -> int:
        """Bits between the products packed into one multiplier (:meth:`shift_for`)."""
        return self.shift_for(self.pack)

    def shift_for(self, pack: int) -> int:
        """Bits between *pack* products packed into one multiplier: the product's width, and
        a guard bit when three or more share it (the borrow of a field from the one below
        never wraps around)."""
        return rs.width(self.in_dtype) + rs.width(self.w_dtype) + (pack >= 3)

    @property
    def constant(self) -> bool:
        """True when the layer is one step (``NF = SF = 1``): its weights are constants in the
        logic."""
        return self.folds == (1, 1)

    @property
    def shift_add(self) -> bool:
        """True when the unit multiplies by its constant weights with shifts and adders
        (constant weights, ``mul="lut"``): zero weights cost nothing, and each input's odd
        multiples are built once for every row (:meth:`multiples`)."""
        return self.constant and self.multiplies and self.mul == "lut"

    @property
    def compares_constants(self) -> bool:
        """True when the unit compares with constant thresholds one by one (one neuron fold,
        fewer than :data:`SEARCH_LEVELS` levels): each row's own range (:meth:`acc_range`)
        decides some of them, which take no comparator
        (:func:`~gatemill.hdl.threshold.live_comparisons`)."""
        return self.thresholds is not None and self.folds[0] == 1 and not self.threshold_search

    @functools.cached_property
    def affine_counts(self) -> list:
        """Per row of a unit that counts its thresholds on multipliers (:attr:`thr_mul`
        ``"dsp"`` and :attr:`threshold_search`) its
        :class:`~gatemill.hdl.threshold.Affine` count, ``None`` where the row searches; all
        ``None`` otherwise. Computed once per layer (a refolded layer is a new one): the
        board fit asks for it with every estimate (~0.4 s for 64 rows of 63 thresholds)."""
        from ...hdl.threshold import affine_count, stored_bounds

        if not (self.threshold_search and self.thr_mul == "dsp"):
            return [None] * self.mh
        bounds = stored_bounds(self.thresholds, self.direction, self.acc_dtype)
        return [
            affine_count(b, d < 0, int(lo), int(hi))
            for b, d, lo, hi in zip(bounds, self.direction, *self.acc_range(), strict=True)
        ]

    @property
    def threshold_search(self) -> bool:
        """True when the unit counts its thresholds by binary search: constant thresholds
        (one neuron fold) of at least :data:`SEARCH_LEVELS` levels, where ``log2(T)``
        comparisons against selected constants take fewer LUTs than ``T`` against fixed
        ones (:class:`~gatemill.hdl.threshold.FoldedThresholds`)."""
        return (
            self.thresholds is not None
            and self.folds[0] == 1
            and int(self.thresholds.shape[1]) >= SEARCH_LEVELS
        )

    @property
    def lut_multiples(self) -> bool:
        """True when LUT products select among multiples of the input (``3x``, ``-x``) built
        once per input lane; not when an operand is a single unsigned bit (a multiplexer)."""
        if not (self.multiplies and self.mul == "lut") or self.shift_add:
            return False
        one_bit = (self.in_dtype.bitwidth() == 1 and not self.in_dtype.signed()) or (
            self.w_dtype.bitwidth() == 1 and not self.w_dtype.signed()
        )
        return not one_bit

    def multiples(self) -> list[list[tuple[int, int, int, int, int]]]:
        """Per input column, the :func:`multiple_plan` of the odd multiples its nonzero
        weights need (the shift-and-add unit)."""
        out = []
        for col in np.asarray(self.weights).T:
            out.append(multiple_plan({odd_part(v)[0] for v in col} - {0, 1}))
        return out

    def shift_add_terms(self) -> list[list[tuple[int, int, int, bool]]]:
        """Per row, the terms of a shift-and-add unit: ``(column, o, j, negative)`` for each
        nonzero weight ``w = +-(o << j)`` (``o`` odd)."""
        rows = []
        for row in np.asarray(self.weights):
            rows.append([(s, *odd_part(w), bool(w < 0)) for s, w in enumerate(row) if w])
        return rows

    def adder_levels(self) -> int:
        """Adder levels of each row's tree: over ``simd`` products, or over the nonzero
        weights of the fullest row of a shift-and-add unit."""
        if self.shift_add:
            return tree_depth(int(np.count_nonzero(self.weights, axis=1).max(initial=0)))
        return tree_depth(self.simd)

    @property
    def groups(self) -> int:
        """Multipliers per input lane: the ``pe`` rows in groups of ``pack``."""
        return -(-self.pe // self.pack)

    @property
    def packed(self) -> bool:
        """Do ``pack`` > 1 output rows share each multiplier?"""
        return self.mul == "dsp" and self.pack > 1 and self.pe > 1

    @property
    def weight_bits(self) -> int:
        """Bits of one word of the folded weight memory (the weights of one step)."""
        if self.packed:
            return self.groups * self.simd * self.packed_bits(min(self.pack, self.pe))
        return self.pe * self.simd * rs.width(self.w_dtype)

    def packed_bits(self, rows: int, pack: int | None = None) -> int:
        """Signed bits of a multiplicand packing the weights of *rows* rows (of a group of
        *pack*, this layer's by default)."""
        if rows == 1:
            return rs.width(self.w_dtype) + (not self.w_dtype.signed())
        shift = self.shift_for(self.pack if pack is None else pack)
        lo = hi = 0
        wmin, wmax = int(self.w_dtype.min()), int(self.w_dtype.max())
        for r in range(rows):
            lo += wmin << (r * shift)
            hi += wmax << (r * shift)
        return max(lo.bit_length(), (-lo - 1).bit_length(), hi.bit_length()) + 1

    def max_pack(self, family: str) -> int:
        """The most products one multiplier of *family* takes (:data:`MULTIPLIER_PORTS`):
        the input, and the weights ``pack_shift`` bits apart, fit its signed ports."""
        if not self.multiplies:
            return 1
        ports = sorted(rs.MULTIPLIER_PORTS.get(family, rs.MULTIPLIER_PORTS["ecp5"]))
        x_bits = rs.width(self.in_dtype) + (not self.in_dtype.signed())
        best = 1
        for pack in range(2, 5):
            wide = self.packed_bits(pack, pack)
            if all(a <= b for a, b in zip(sorted((x_bits, wide)), ports, strict=True)):
                best = pack
        return best

    @property
    def pixels(self) -> int:
        """Vectors per sample: ``prod(spatial)``."""
        return math.prod(self.spatial)

    @property
    def in_shape(self):
        return (*self.spatial, self.mw)

    @property
    def out_shape(self):
        return (*self.spatial, self.mh)

    def acc_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-row minimum and maximum of ``acc`` over all inputs of ``in_dtype``."""
        return accumulator_range(self.weights, self.in_dtype, self.binary)

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        """The accumulator of the layer (before thresholds) for a batch of inputs."""
        x = self.check_input(x)
        dot = x @ self.weights.T
        return (dot + self.mw) // 2 if self.binary else dot

    def execute(self, x):
        acc = self.accumulate(x)
        if self.thresholds is None:
            return acc
        return apply_thresholds(acc, self.thresholds, self.direction, self.out_dtype, self.out_base)

    # -- folding --------------------------------------------------------------------------------

    @property
    def macs(self) -> int:
        return self.pixels * self.mh * self.mw

    def macs_per_cycle(self, fold):
        return fold["pe"] * fold["simd"]

    def fold_options(self, producer=None):
        """Every ``(pe, simd)`` by increasing ``pe * simd``, then decreasing ``simd`` (fewer
        output beats and narrower accumulators per beat); a convolution's ``simd`` divides the
        channels its sliding window delivers."""
        lanes = producer.lane_choices() if producer is not None else None
        simds = [s for s in divisors(self.mw) if lanes is None or s in lanes]
        opts = [{"pe": p, "simd": s} for p in divisors(self.mh) for s in simds]
        return sorted(opts, key=lambda f: (f["pe"] * f["simd"], -f["simd"]))

    def device_fold(self, clock_mhz, family):
        """The pipeline depth for the clock (:func:`pipeline_for_clock`); products on DSP
        blocks, packed as the ports allow, where the device's synthesis maps them there
        (:func:`~gatemill.flow.kinds.resources.dsp_product`), LUT products otherwise (never a
        soft multiplier); on the ECP5, DSP products registered again in the fabric
        (:attr:`dsp_fabric_reg`); skid buffers at the output and after the input FIFO above
        the family's :data:`SKID_ABOVE_MHZ` (:attr:`out_skid`, :attr:`in_skid`)."""
        ab, wb = rs.width(self.in_dtype), rs.width(self.w_dtype)
        dsp = self.multiplies and rs.dsp_product(ab, wb, family)
        skid = int(clock_mhz > SKID_ABOVE_MHZ.get(family, math.inf))
        return {
            "pipeline": pipeline_for_clock(clock_mhz, family),
            "mul": "dsp" if dsp else "lut",
            "pack": self.max_pack(family) if dsp else 1,
            "dsp_fabric_reg": int(dsp and family == "ecp5"),
            "out_skid": skid,
            "in_skid": skid,
        }

    def cycles_for(self, fold):
        """``prod(spatial) * MH / pe * MW / simd``: one step of ``pe x simd`` products a cycle."""
        return self.pixels * (self.mh // fold["pe"]) * (self.mw // fold["simd"])

    def in_lanes_for(self, fold):
        return fold["simd"]

    # -- timing ---------------------------------------------------------------------------------

    @property
    def in_lanes(self) -> int:
        return self.simd

    @property
    def out_lanes(self) -> int:
        return self.pe

    @property
    def folds(self) -> tuple[int, int]:
        """``(NF, SF)``: neuron folds (output beats) and synapse folds (input beats) a vector."""
        return self.mh // self.pe, self.mw // self.simd

    def stages(self) -> Stages:
        """Where the unit has registers beyond its four base stages (see :class:`Stages`)."""
        k = self.pipeline
        if k == 0:
            return Stages()
        search = self.threshold_search
        steps = int(self.thresholds.shape[1]).bit_length() if search else 0
        return Stages(
            operands=self._operand_registers(),
            multiples=self.shift_add or self.lut_multiples,
            products=not self.shift_add,
            fabric_products=bool(
                self.dsp_fabric_reg and self.multiplies and self.mul == "dsp" and not self.constant
            ),
            tree_cuts=tuple(range(k, self.adder_levels(), k)),
            compare=self.thresholds is not None and not search,
            search_cuts=tuple(range(k, steps, k)),
        )

    def _operand_registers(self) -> int:
        """:attr:`Stages.operands` of a pipelined unit. LUT products that build multiples of
        the input register them beside the weight word, and need one register in front only
        for an input read back from the buffer (:attr:`buffered`), at the block RAM's output.
        The ECP5 4096 -> 64 layer (nextpnr): 84.8 MHz without (the EBR's 5.8 ns read, the
        choice of beat and the ``3x`` adder in one cycle), 138.1 with it. A second register,
        after the choice, gave 144.2 MHz but delays the weight word once more: Yosys made
        the 2,048 bits shift registers, +2,048 LUTs on the xc7; with the weight memory read
        a step late instead (its read register the word's first), 134.3 MHz, the same LUTs
        and +268 FF: the slowest path is then a lane's ``3x`` routed to the rows' digit
        choices across the chip (4.5 ns)."""
        if self.constant:
            return 0
        if self.lut_multiples:
            return int(self.buffered)
        dsp = self.mul == "dsp"
        # on the ECP5 (dsp_fabric_reg) the buffered input's choice gets a register in the
        # fabric before the multiplier's own: the digits CNN's slowest path was that choice
        # routed across the chip to a MULT18X18D's input register (6.5 ns, 120.4 MHz)
        return 1 + dsp + (dsp and bool(self.dsp_fabric_reg) and self.buffered)

    @property
    def buffered(self) -> bool:
        """The unit keeps its input vector in a buffer (a memory of SF beats) that later
        folds read back: more than one beat a vector and more than one fold."""
        return min(self.folds) > 1

    @property
    def has_skid(self) -> bool:
        """The unit ends in a skid buffer (:attr:`out_skid`, not in a chain)."""
        return bool(self.out_skid) and not self.chains

    @property
    def tail(self) -> int:
        """Clock edges from a fold's last step to its output beat (the unit's registers)."""
        return PIPELINE_TAIL + (self.thresholds is not None) + self.stages().extra

    def beat_times(self, avail, hold=None):
        """Steps ``(vector, nf, sf)`` issue one per cycle; a step of fold 0 waits for its input
        beat (later folds read the buffered vector); fold ``nf``'s output beat passes
        :attr:`tail` edges after the fold's last step. The whole pipeline stalls while *hold*
        keeps an output beat (seen through the skid buffer, :attr:`has_skid`)."""
        hold = hold or Backpressure()
        if self.has_skid:
            hold = hold.behind_skid()
        nf_count, sf_count = self.folds
        tail = self.tail
        out, t, k = [], None, 0
        if hold.never_stalls:
            # the same schedule without a step per cycle: a convolution's layer takes
            # pixels x NF x SF steps, millions on CNV, and the estimates ask for it often
            for _ in range(self.pixels):
                for _ in range(sf_count):
                    t = avail[k] if t is None else max(t + 1, avail[k])
                    k += 1
                out += [t + nf * sf_count + tail for nf in range(nf_count)]
                t += (nf_count - 1) * sf_count
            return out
        for _ in range(self.pixels):
            for nf in range(nf_count):
                for sf in range(sf_count):
                    t = (avail[k] if t is None else max(t + 1, avail[k])) if nf == 0 else t + 1
                    t = hold.advance(t)
                    k += nf == 0
                    if sf == sf_count - 1:
                        out.append(hold.emit(hold.later(t, tail - 1) + 1))
        return out

    # -- layout ---------------------------------------------------------------------------------

    def folded_weights(self) -> np.ndarray:
        """The weights as ``[NF, SF, PE, SIMD]``: step ``(nf, sf)`` multiplies lane ``(p, s)``
        by ``W[nf * PE + p, sf * SIMD + s]``."""
        nf, sf = self.folds
        return self.weights.reshape(nf, self.pe, sf, self.simd).transpose(0, 2, 1, 3)

    def multiplicands(self) -> np.ndarray:
        """What the multipliers multiply the inputs by, ``[NF, SF, groups, SIMD]`` (Python
        ints): packed (:attr:`packed`), the weights of rows ``nf * PE + g * pack ..`` (at most
        ``pack``, within the fold) ``pack_shift`` bits apart, the first lowest; else the
        folded weights (``groups = PE``)."""
        folded = self.folded_weights().astype(object)
        if not self.packed:
            return folded
        shift, pack = self.pack_shift, self.pack
        out = np.zeros((*self.folds, self.groups, self.simd), dtype=object)
        for g in range(self.groups):
            rows = folded[:, :, g * pack : (g + 1) * pack]
            for r in range(rows.shape[2]):
                out[:, :, g] += rows[:, :, r] << (r * shift)
        return out

    def folded_thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """Thresholds ``[NF, PE, T]`` and directions ``[NF, PE]`` in output-beat order."""
        return fold_channels(self.thresholds, self.pe), fold_channels(self.direction, self.pe)

    # -- cost -----------------------------------------------------------------------------------

    def features(self, family="xc7"):
        from ...hdl.threshold import TableCost, live_comparisons, table_cost

        nf, sf = self.folds
        depth = nf * sf
        pe, simd = self.pe, self.simd
        lanes = pe * simd
        wb, ab = rs.width(self.w_dtype), rs.width(self.in_dtype)
        acc, out = rs.width(self.acc_dtype), rs.width(self.out_dtype)
        one_bipolar = (self.in_dtype == BIPOLAR) != (self.w_dtype == BIPOLAR)
        signed = self.in_dtype != BIPOLAR and self.in_dtype.signed()
        levels = 0 if self.thresholds is None else int(self.thresholds.shape[1])
        table = TableCost()
        if levels:
            acc_range = (int(self.acc_dtype.min()), int(self.acc_dtype.max()))
            table = table_cost(*self.folded_thresholds(), acc_range)
        packed = self.packed
        word_bits = self.weight_bits
        in_lut = self.lut_weight_bits if depth > 1 else 0
        mems = {}
        if depth > 1 and word_bits > in_lut:
            mems["weights"] = rs.map_memory(depth, word_bits - in_lut, "rom")
        if self.buffered:
            mems["buffer"] = rs.map_memory(sf, simd * ab, "sp")
        if levels and nf > 1:
            mems["thresholds.bounds"] = rs.map_memory(nf, table.word, "rom")
        if self.binary:
            prod, mul, sign, xnor = 1, 0, 0, lanes
        elif one_bipolar:
            prod, mul, sign, xnor = max(ab, wb) + 1, 0, lanes, 0
        else:
            prod, mul, sign, xnor = ab + wb, lanes, 0, 0
        sign_lanes = 0
        if sign:
            sign_lanes = simd if self.w_dtype == BIPOLAR else lanes if depth > 1 else 0
        lut_mul = lane_mul = digit_add = unpack = 0
        dsp = 0
        if depth > 1 and mul and self.mul == "lut":
            # radix-4 digits selecting a multiple of the input, summed; 3x and -x per lane
            if min(ab, wb) == 1:
                lut_mul = lanes * max(ab, wb)
            else:
                digits = -(-wb // 2)
                lut_mul, lane_mul = lanes * digits * (ab + 2), simd * (2 * ab + 3)
                digit_add = lanes * (digits - 1) * prod
        elif depth > 1 and mul:
            operand = self.packed_bits(min(self.pack, pe)) if packed else wb
            dsp = self.groups * simd if packed else lanes
            dsp = dsp if rs.dsp_product(ab, operand, family) else 0
            unpack = (pe - self.groups) * simd * (self.pack_shift + 1) if packed else 0
        soft = lanes if depth > 1 and mul and self.mul == "dsp" and not dsp else 0
        const_soft, tree, mcm = 0, pe * (simd - 1) * prod + xnor, 0
        if depth == 1 and mul:  # constant weights: no product for a 0, a shift for a power of 2
            if self.shift_add:  # the adders of each input's odd multiples
                mcm = sum(ab + o.bit_length() for plan in self.multiples() for o, *_ in plan)
            else:
                dsp, const_soft = rs.constant_products(
                    self.multiplicands()[0, 0], ab, signed, family
                )
            if self.shift_add:  # the shifted multiples' adders, their zero low bits wires
                tree = sum(
                    rs.tree_adder_bits([(ab + o.bit_length() + j, j) for _, o, j, _ in row],
                                       [neg for *_, neg in row])
                    for row in self.shift_add_terms()
                )  # fmt: skip
            else:
                nonzero = np.count_nonzero(np.asarray(self.weights), axis=1)
                tree = int(np.maximum(nonzero - 1, 0).sum()) * prod
        rom_logic = "weights" in mems and mems["weights"].how == "logic"
        thr_logic = "thresholds.bounds" in mems and mems["thresholds.bounds"].how == "logic"
        # the weight bits in logic: the word as Yosys maps it, and the lut_weight_bits apart
        logic_bits = word_bits if rom_logic else in_lut
        roms = [(depth, word_bits - in_lut)] if rom_logic else []
        roms += [(nf, table.varying)] if thr_logic else []
        # the adder tree: carry-chain adders where the synthesis unmerges Yosys's $macc cells
        # (rs.CARRY_CHAIN_TREES) but for a popcount; merged, one $macc per cycle that Yosys
        # maps to full adders, or carry-chain adders when every level has its own register
        # (pipeline 1)
        tree_term = "tree"
        if self.binary or family not in rs.CARRY_CHAIN_TREES:
            tree_term = {0: "merged", 1: "merged_chain"}.get(self.pipeline, "merged_stage")
        affine = [a for a in self.affine_counts if a is not None]
        searched = (pe - len(affine)) if self.threshold_search else 0
        thr_dsp = sum(rs.multiplier_blocks(acc, abs(a.m).bit_length() + 1, family) for a in affine)
        live = 0  # constant thresholds that take a comparator
        if self.compares_constants:
            live = live_comparisons(self.thresholds, self.direction, *self.acc_range())
        lut = {
            "base": 1,
            **rs.rom_terms(roms),
            "rom_split": in_lut * rs.rom_luts(depth),
            # Yosys's soft multiplier extends both operands to the product's width: the sign
            # bits of a signed input are not constant and cost more than a zero-extended one's
            "mul": soft * ab * wb if not signed else 0,
            "mul_signed": soft * ab * wb if signed else 0,
            "lut_mul": lut_mul,
            "lut_mul_lane": lane_mul,
            "lut_mul_add": digit_add,
            "unpack": unpack,
            "mcm": mcm,
            "cmul": const_soft * (ab + wb) if not signed else 0,
            "cmul_signed": const_soft * (ab + wb) if signed else 0,
            # +-1 times a multi-bit operand: a multiplexer per product bit between the operand
            # and its negation (none for constant +-1 weights), and the negations: of each
            # input lane once for all rows with +-1 weights (Yosys shares them), of each
            # weight read with +-1 inputs (constant weights: constant negations)
            "sign": sign * prod if depth > 1 or self.w_dtype != BIPOLAR else 0,
            "sign_lane": sign_lanes * prod,
            tree_term: tree,
            "acc": pe * acc if sf > 1 else 0,
            "buf": simd * ab if "buffer" in mems else 0,
            "cmp": table.compared,
            # one fold: constant thresholds, those a row's range decides take no comparator
            "cmp_const": live * table.bound if nf == 1 else table.constant,
            # binary search: a comparison per bit of the count, against selected constants
            "search": searched * levels.bit_length() * table.bound,
            # thr_mul "dsp": a lane's count clipped from its multiplier's product
            "affine": len(affine) * out,
            # out_skid: the held beat's multiplexer per bit
            "skid": pe * out if self.has_skid else 0,
        }
        # read registers of ROMs in logic (weights on a DSP48 go to its own register); Yosys
        # keeps only part of them for a shallow ROM (fitted apart)
        regs = [(0 if dsp else logic_bits, depth)] if logic_bits else []
        regs += [(table.varying, nf)] if thr_logic else []
        pipe, pipe_dsp = self._pipeline_bits(prod, levels, dsp > 0, len(affine))
        ff = {
            "base": 1,
            "in": simd * ab,
            "out": pe * out,
            "buf": simd * ab if "buffer" in mems else 0,
            "dot": pe * (prod + rs.clog2(simd)),
            "acc": pe * acc if levels else 0,
            "rom": sum(w for w, d in regs if d > rs.SHALLOW_ROM_REGS),
            "rom_small": sum(w for w, d in regs if d <= rs.SHALLOW_ROM_REGS),
            "pipe": pipe,
            "pipe_dsp": pipe_dsp,
            # out_skid: the held beat, the full flag and the enable register
            "skid": pe * out + 2 if self.has_skid else 0,
        }
        return rs.Features(self.kind, lut, ff, mems, dsp + thr_dsp)

    def _pipeline_bits(self, prod: int, levels: int, on_dsp: bool, affine: int) -> tuple[int, int]:
        """Bits of the registers :meth:`stages` adds: the operands (or the weight word beside
        the multiples), the products, the partial sums after each cut (``prod + level`` bits
        each), the comparisons and the search's (*affine* rows counted on multipliers); as
        ``(in the fabric, in DSP blocks)``: with products *on_dsp*, the DSP takes the last
        operand register in as its input registers and the first product register as its
        output register (flip-flops Yosys does not count)."""
        st = self.stages()
        ab = rs.width(self.in_dtype)
        leaves, products = [self.simd] * self.pe, self.pe * self.simd * prod
        if self.shift_add:
            leaves = [int(n) for n in np.count_nonzero(self.weights, axis=1)]
            products = sum(
                ab + 1 + sum(ab + o.bit_length() for o, *_ in p) for p in self.multiples()
            )
        elif self.constant:  # a register per distinct product, none for a zero weight
            m = self.multiplicands()[0, 0]
            distinct = {(s, int(v)) for row in m for s, v in enumerate(row) if v}
            products = len(distinct) * prod * (self.pack if self.packed else 1)
        bits = products * (st.products + st.fabric_products)
        # the weight word's registers, the input's
        weight_bits = self.pe * self.simd * rs.width(self.w_dtype)
        bits += weight_bits * (st.operands + (self.lut_multiples and st.multiples))
        # a buffered input's first register is two: the kept beat's and the buffer's read
        bits += self.simd * ab * (st.operands + (self.buffered and st.operands > 0))
        for cut in st.tree_cuts:
            bits += sum(-(-n // 2**cut) for n in leaves) * (prod + cut)
        # the search's registers hold the bits found so far and the value; an affine count's
        # first is its multiplier's own, the others hold the count
        cuts = len(st.search_cuts)
        search = (self.pe - affine) * cuts * (levels.bit_length() + rs.width(self.acc_dtype))
        search += affine * max(cuts - 1, 0) * levels.bit_length()
        bits += self.pe * (levels if st.compare else 0) + search
        in_dsp = 0
        if on_dsp:
            in_dsp = products * st.products + (weight_bits + self.simd * ab) * min(st.operands, 1)
        return bits - in_dsp, in_dsp

    # -- hardware -------------------------------------------------------------------------------

    def unit(self):
        from ...hdl.matrix_vector import MatrixVectorUnit

        return MatrixVectorUnit(layer=self)

    def hls(self, builder):
        name = ident(self.name)
        nf, sf = self.folds
        in_bits = self.in_dtype.bitwidth()
        acc_bits = self.acc_dtype.bitwidth()
        if self.binary:
            # XNOR-popcount compares codes: weights stored as their bipolar code (1 = +1)
            w_type, w_values = "ap_uint<1>", (self.folded_weights() + 1) // 2
        elif self.w_dtype == BIPOLAR:
            w_type, w_values = "ap_int<2>", self.folded_weights()
        else:
            w_type, w_values = ctype(self.w_dtype), self.folded_weights()
        cfg = f"{name}_config"
        builder.plan.configs.append(
            Config(
                cfg,
                f"{name}: MatrixVector {self.mh}x{self.mw}, pe {self.pe}, simd {self.simd}",
                (
                    ("in_t", ctype(self.in_dtype)),
                    ("w_t", w_type),
                    ("acc_t", ctype(self.acc_dtype)),
                ),
                (
                    bconst("IN_BIPOLAR", self.in_dtype == BIPOLAR),
                    bconst("BINARY", self.binary),
                    uconst("MH", self.mh),
                    uconst("MW", self.mw),
                    uconst("PE", self.pe),
                    uconst("SIMD", self.simd),
                    uconst("NF", nf),
                    uconst("SF", sf),
                    uconst("PIXELS", self.pixels),
                ),
            )
        )
        # the kernel reads weights[p][nf * SF + sf][s]
        w = np.asarray(w_values, np.int64).transpose(2, 0, 1, 3)
        weights = Array(f"{name}_weights", w_type, w.reshape(self.pe, nf * sf, self.simd))
        builder.plan.params[name] = [weights]
        builder.kernel(
            "gm::matrix_vector",
            cfg,
            (weights.name,),
            builder.feed(self.simd, in_bits),
            self.pe,
            acc_bits,
            f"{name}: MatrixVector" + (" (xnor-popcount)" if self.binary else ""),
            self.pixels * self.mh,
            header="gm_matrix_vector.h",
        )
        if self.thresholds is not None:
            builder.threshold_kernel(
                name=f"{name}_act",
                owner=name,
                layer=self,
                in_type=ctype(self.acc_dtype),
                in_bits=acc_bits,
                in_bipolar=False,
                pixels=self.pixels,
            )

    # -- summary --------------------------------------------------------------------------------

    def describe(self):
        zeros = self.zero_weights
        return (
            f"{self.in_dtype.name} x {self.w_dtype.name} -> {self.acc_dtype.name}"
            + (" (xnor)" if self.binary else "")
            + (f" -> {self.out_dtype.name}" if self.thresholds is not None else "")
            + (f", {zeros / self.weights.size:.0%} of weights zero" if zeros else "")
        )

    @property
    def zero_weights(self) -> int:
        """Weights equal to 0 (pruned): products a shift-and-add unit does not build."""
        return int(np.count_nonzero(np.asarray(self.weights) == 0))

    def dense_twin(self, seed: int = 0) -> MatrixVector:
        """This layer with every zero weight replaced by one of its nonzero weights drawn at
        random (seeded; +1 if it has none), the accumulator widened to fit: what the layer
        would cost unpruned (the report's "what sparsity saved")."""
        w = np.asarray(self.weights)
        nonzero = w[w != 0] if np.any(w != 0) else np.ones(1, np.int64)
        draw = np.random.default_rng(seed).choice(nonzero, size=w.shape)
        dense = np.where(w == 0, draw, w)
        acc = min_acc_dtype(dense, self.in_dtype, self.binary)
        if self.thresholds is None:
            return dataclasses.replace(self, weights=dense, acc_dtype=acc, out_dtype=acc)
        return dataclasses.replace(self, weights=dense, acc_dtype=acc)

    def details(self):
        d = {
            "mh": self.mh,
            "mw": self.mw,
            "w_dtype": self.w_dtype.name,
            "acc_dtype": self.acc_dtype.name,
            "binary": self.binary,
            "zero_weights": self.zero_weights,
        }
        if self.thresholds is not None:
            d["thresholds"] = int(self.thresholds.shape[1])
        return d
