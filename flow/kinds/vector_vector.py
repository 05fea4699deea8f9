"""``VectorVector``: depthwise convolutions and average pooling after a sliding window (the
vector-vector unit, VVU).

Golden model, folding (``pe`` channels a beat, the sliding window in front delivering them),
the unit's timing, the folded weight and threshold layout shared by the RTL
(:mod:`gatemill.hdl.vector_vector`) and the HLS kernel (``gm_vector_vector.h``), and what the
unit costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...hdl.common import sum_times
from ..hls.model import Array, Config, bconst, ctype, ident, uconst
from ..ir.datatypes import BIPOLAR, check_values
from ..ir.fields import check_divisor, divisors, freeze, int_tuple
from . import resources as rs
from .base import Layer
from .matrix_vector import accumulator_range
from .thresholds import apply_thresholds, check_activation, fold_channels

# Registers of VectorVectorUnit from accepting a beat to its output beat: the beat, the
# products, the output; and the final sums when the output is thresholded.
PIPELINE_TAIL = 3


@dataclass(frozen=True, kw_only=True, eq=False)
class VectorVector(Layer):
    """Per-channel dot products ``acc[c] = sum_k W[c, k] * x[k, c]`` with an optional threshold
    activation.

    After a :class:`~gatemill.flow.kinds.sliding_window.SlidingWindow` of kernel ``KH x KW``
    over ``C`` channels (its output, ``K = KH * KW`` elements of every channel in ``(k, c)``
    order, is this layer's input), it is a depthwise convolution (``groups = C``); with every
    weight 1 (``w_dtype`` BINARY or UINT1) it is the sum of an average pool, whose ``1 / K``
    belongs in the thresholds that follow.

    Parameters
    ----------
    weights : ndarray of int, shape (C, K)
        Channel ``c``'s weights, in the window's element order (``k = ky * KW + kx``);
        -1/+1 when ``w_dtype`` is BIPOLAR.
    in_dtype, w_dtype, acc_dtype : DataType
        Input, weight and accumulator datatypes; inputs and weights are not both BIPOLAR.
    spatial : tuple of int
        Leading per-sample dimensions, ``(OH, OW)`` after a sliding window.
    thresholds : ndarray of int, shape (C, T), optional
        The activation (:func:`~gatemill.flow.kinds.thresholds.apply_thresholds`); without
        it the output is ``acc``.
    direction : ndarray of int, shape (C,), optional
        +1 or -1 per channel; required with ``thresholds``.
    out_dtype : DataType, optional
        Output datatype with thresholds (defaults to ``acc_dtype`` without).
    out_base : int
        Output value when no threshold is passed.
    pe : int
        Folding: channels per beat (a divisor of C; the sliding window delivers as many).
    """

    kind: ClassVar[str] = "VectorVector"
    fold_fields: ClassVar[tuple[str, ...]] = ("pe",)
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

    def __post_init__(self):
        super().__post_init__()
        freeze(self, "weights", self.weights)
        int_tuple(self, "spatial")
        if self.weights.ndim != 2 or 0 in self.weights.shape:
            raise ValueError(f"{self.name}: weights must be a non-empty [C, K] matrix")
        if self.in_dtype == BIPOLAR and self.w_dtype == BIPOLAR:
            raise ValueError(
                f"{self.name}: BIPOLAR inputs with BIPOLAR weights (XNOR) are not supported by "
                "the vector-vector unit; use integer weights or inputs"
            )
        check_values(f"{self.name} weights", self.weights, self.w_dtype)
        lo, hi = self.acc_range()
        if lo.min() < self.acc_dtype.min() or hi.max() > self.acc_dtype.max():
            raise ValueError(
                f"{self.name}: accumulator datatype {self.acc_dtype.name} cannot hold the range "
                f"[{lo.min()}, {hi.max()}]"
            )
        check_activation(self, self.channels)
        check_divisor(self.name, self.channels, self.pe, "pe")

    # -- shapes and golden model ----------------------------------------------------------------

    @property
    def channels(self) -> int:
        """Channels (C)."""
        return int(self.weights.shape[0])

    @property
    def taps(self) -> int:
        """Window elements per channel (K)."""
        return int(self.weights.shape[1])

    @property
    def pixels(self) -> int:
        """Windows per sample: ``prod(spatial)``."""
        return math.prod(self.spatial)

    @property
    def in_shape(self):
        return (*self.spatial, self.taps * self.channels)

    @property
    def out_shape(self):
        return (*self.spatial, self.channels)

    def acc_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel minimum and maximum of ``acc`` over all inputs of ``in_dtype``."""
        return accumulator_range(self.weights, self.in_dtype, False)

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        """The accumulator of the layer (before thresholds) for a batch of inputs."""
        x = self.check_input(x)
        win = x.reshape(*x.shape[:-1], self.taps, self.channels)
        return np.einsum("...kc,ck->...c", win, self.weights)

    def execute(self, x):
        acc = self.accumulate(x)
        if self.thresholds is None:
            return acc
        return apply_thresholds(acc, self.thresholds, self.direction, self.out_dtype, self.out_base)

    # -- folding --------------------------------------------------------------------------------

    @property
    def macs(self) -> int:
        return self.pixels * self.channels * self.taps

    def macs_per_cycle(self, fold):
        return fold["pe"]

    def fold_options(self, producer=None):
        """Every ``pe`` the producer can deliver (a sliding window: any divisor of C),
        ascending."""
        lanes = producer.lane_choices() if producer is not None else None
        return [{"pe": p} for p in divisors(self.channels) if lanes is None or p in lanes]

    def cycles_for(self, fold):
        """``prod(spatial) * K * C / pe``: one input beat a cycle."""
        return self.pixels * self.taps * (self.channels // fold["pe"])

    def in_lanes_for(self, fold):
        return fold["pe"]

    # -- timing ---------------------------------------------------------------------------------

    @property
    def in_lanes(self) -> int:
        return self.pe

    @property
    def out_lanes(self) -> int:
        return self.pe

    @property
    def folds(self) -> int:
        """``CF = C / pe``: beats per window element, and output beats per window."""
        return self.channels // self.pe

    @property
    def tail(self) -> int:
        """Clock edges from accepting a beat to the output beat it ends."""
        return PIPELINE_TAIL + (self.thresholds is not None)

    def beat_times(self, avail, hold=None):
        """One beat a cycle; the beats of a window's last element (``k = K - 1``) each end
        the sums of a fold, whose output beat passes :attr:`tail` edges later. The whole
        pipeline stalls while *hold* keeps an output beat."""
        per, last = self.taps * self.folds, (self.taps - 1) * self.folds
        return sum_times(avail, lambda k: k % per >= last, self.tail, hold)

    # -- layout ---------------------------------------------------------------------------------

    def folded_weights(self) -> np.ndarray:
        """The weights as ``[K, CF, PE]``: beat ``(k, cf)`` multiplies lane ``p`` by
        ``W[cf * PE + p, k]``."""
        return self.weights.T.reshape(self.taps, self.folds, self.pe)

    def uniform_weights(self) -> bool:
        """True when every beat has the same weights (average pooling: all ones), which the
        unit keeps as a constant instead of a memory."""
        w = self.folded_weights().reshape(-1, self.pe)
        return bool(np.all(w == w[0]))

    def folded_thresholds(self):
        """Thresholds ``[CF, PE, T]`` and directions ``[CF, PE]`` in output-beat order
        (``(None, None)`` without thresholds)."""
        if self.thresholds is None:
            return None, None
        return fold_channels(self.thresholds, self.pe), fold_channels(self.direction, self.pe)

    # -- cost -----------------------------------------------------------------------------------

    def features(self, family="xc7"):
        from ...hdl.threshold import TableCost, table_cost

        pe, folds, taps = self.pe, self.folds, self.taps
        depth = taps * folds
        wb, ab = rs.width(self.w_dtype), rs.width(self.in_dtype)
        acc, out = rs.width(self.acc_dtype), rs.width(self.out_dtype)
        signed = self.in_dtype != BIPOLAR and self.in_dtype.signed()
        levels = 0 if self.thresholds is None else int(self.thresholds.shape[1])
        table = TableCost()
        if levels:
            acc_range = (int(self.acc_dtype.min()), int(self.acc_dtype.max()))
            table = table_cost(*self.folded_thresholds(), acc_range)
        constant = self.uniform_weights()
        mems = {}
        if not constant:
            mems["weights"] = rs.map_memory(depth, pe * wb, "rom")
        if taps > 1 and folds > 1:
            mems["sums.sums"] = rs.map_memory(folds, pe * acc, "sdp")
        if levels and folds > 1:
            mems["sums.thresholds.bounds"] = rs.map_memory(folds, table.word, "rom")
        if BIPOLAR in (self.in_dtype, self.w_dtype):
            prod, mul, sign = max(ab, wb) + 1, 0, pe
        else:
            prod, mul, sign = ab + wb, pe, 0
        dsp = mul if not constant and rs.dsp_product(ab, wb, family) else 0
        const_soft = 0
        if constant and mul:  # no product for a 0, a shift for a power of 2
            word = self.folded_weights()[0, 0].reshape(1, pe)
            dsp, const_soft = rs.constant_products(word, ab, signed, family)
        rom_logic = "weights" in mems and mems["weights"].how == "logic"
        thr_logic = levels and folds > 1 and mems["sums.thresholds.bounds"].how == "logic"
        roms = [(depth, pe * wb)] if rom_logic else []
        roms += [(folds, table.varying)] if thr_logic else []
        lut = {
            "base": 1,
            **rs.rom_terms(roms),
            # Yosys's soft multiplier: see MatrixVector.features
            "mul": (mul - dsp) * ab * wb if not constant and not signed else 0,
            "mul_signed": (mul - dsp) * ab * wb if not constant and signed else 0,
            "cmul": const_soft * (ab + wb) if not signed else 0,
            "cmul_signed": const_soft * (ab + wb) if signed else 0,
            "sign": sign * prod,
            "acc": pe * acc if taps > 1 else 0,
            "buf": pe * acc if "sums.sums" in mems else 0,
            "cmp": table.compared,
            "cmp_const": table.constant,
        }
        regs = [((pe - dsp) * wb, depth)] if rom_logic else []
        regs += [(table.varying, folds)] if thr_logic else []
        ff = {
            "base": 1,
            "in": pe * ab,
            "out": pe * out,
            # the sums memory's read register, like the matrix-vector unit's input buffer's
            "buf": pe * acc if "sums.sums" in mems else 0,
            "dot": pe * prod,
            "acc": pe * acc * ((taps > 1 and folds == 1) + bool(levels)),
            "rom": sum(w for w, d in regs if d > rs.SHALLOW_ROM_REGS),
            "rom_small": sum(w for w, d in regs if d <= rs.SHALLOW_ROM_REGS),
        }
        # the matrix-vector unit's pieces (products, accumulators, ROMs, comparators): its
        # coefficients
        return rs.Features(self.kind, lut, ff, mems, dsp, coefficients="MatrixVector")

    # -- hardware -------------------------------------------------------------------------------

    def unit(self):
        from ...hdl.vector_vector import VectorVectorUnit

        return VectorVectorUnit(layer=self)

    def hls(self, builder):
        name = ident(self.name)
        in_bits, acc_bits = self.in_dtype.bitwidth(), self.acc_dtype.bitwidth()
        w_type = "ap_int<2>" if self.w_dtype == BIPOLAR else ctype(self.w_dtype)
        cfg = f"{name}_config"
        builder.plan.configs.append(
            Config(
                cfg,
                f"{name}: VectorVector {self.channels} channels x {self.taps}, pe {self.pe}",
                (
                    ("in_t", ctype(self.in_dtype)),
                    ("w_t", w_type),
                    ("acc_t", ctype(self.acc_dtype)),
                ),
                (
                    bconst("IN_BIPOLAR", self.in_dtype == BIPOLAR),
                    uconst("C", self.channels),
                    uconst("K", self.taps),
                    uconst("PE", self.pe),
                    uconst("CF", self.folds),
                    uconst("PIXELS", self.pixels),
                ),
            )
        )
        # the kernel reads weights[p][k * CF + cf]
        w = self.folded_weights().reshape(-1, self.pe).T
        weights = Array(f"{name}_weights", w_type, np.ascontiguousarray(w))
        builder.plan.params[name] = [weights]
        builder.kernel(
            "gm::vector_vector",
            cfg,
            (weights.name,),
            builder.feed(self.pe, in_bits),
            self.pe,
            acc_bits,
            f"{name}: VectorVector",
            self.pixels * self.channels,
            header="gm_vector_vector.h",
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
        return (
            f"{self.in_dtype.name} x {self.w_dtype.name} -> {self.acc_dtype.name}, "
            f"{self.taps} taps per channel"
            + (f" -> {self.out_dtype.name}" if self.thresholds is not None else "")
        )

    def details(self):
        d = {
            "channels": self.channels,
            "taps": self.taps,
            "w_dtype": self.w_dtype.name,
            "acc_dtype": self.acc_dtype.name,
        }
        if self.thresholds is not None:
            d["thresholds"] = int(self.thresholds.shape[1])
        return d
