"""``GlobalSum``: per-channel sums over every position of a sample (global average pooling,
the sum or mean over a set's elements), ``pe`` channels a beat, with an optional threshold
activation; unit :class:`gatemill.hdl.global_sum.GlobalSumUnit`, kernel ``gm_global_sum.h``.

The ``1 / N`` of a mean is not computed: it belongs in what follows (the thresholds of this
layer, or the scale of the next layer's input).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...hdl.common import sum_times
from ..hls.model import Config, bconst, ctype, ident, uconst
from ..ir.datatypes import BIPOLAR, dtype_for_range
from ..ir.fields import check_divisor, divisors, int_tuple
from . import resources as rs
from .base import Layer
from .thresholds import apply_thresholds, check_activation, fold_channels

# Registers of GlobalSumUnit from accepting a beat to its output beat: the beat, the output;
# and the final sums when the output is thresholded.
PIPELINE_TAIL = 2


def value_range(dtype) -> tuple[int, int]:
    """``(lo, hi)`` of the values of *dtype* (-1, +1 for BIPOLAR)."""
    if dtype == BIPOLAR:
        return -1, 1
    return int(dtype.min()), int(dtype.max())


def sum_dtype(in_dtype, count: int):
    """Smallest datatype holding every sum of *count* values of *in_dtype* (the accumulator a
    :class:`GlobalSum` over *count* positions needs)."""
    lo, hi = value_range(in_dtype)
    return dtype_for_range(min(count * lo, 0), max(count * hi, 1))


@dataclass(frozen=True, kw_only=True, eq=False)
class GlobalSum(Layer):
    """Per-channel sum over all leading positions: ``(..., C) -> (C,)``.

    Global average pooling ``(H, W, C) -> (C,)`` and the sum or mean over a set's elements
    ``(S, F) -> (F,)``, the ``1 / N`` of a mean folded into what follows.

    Parameters
    ----------
    shape : tuple of int
        Per-sample input shape, channels last, rank >= 2.
    in_dtype, acc_dtype : DataType
        Input and sum datatypes; ``acc_dtype`` holds every sum (:func:`sum_dtype`).
    thresholds, direction, out_dtype, out_base
        The activation, as in :class:`~gatemill.flow.kinds.matrix_vector.MatrixVector`, one
        row per channel; without thresholds the output is the sum (``acc_dtype``).
    pe : int
        Channels per beat (a divisor of C).
    """

    kind: ClassVar[str] = "GlobalSum"
    fold_fields: ClassVar[tuple[str, ...]] = ("pe",)
    shape: tuple[int, ...]
    in_dtype: Any
    acc_dtype: Any
    thresholds: np.ndarray | None = None
    direction: np.ndarray | None = None
    out_dtype: Any = None
    out_base: int = 0
    pe: int = 1

    def __post_init__(self):
        super().__post_init__()
        int_tuple(self, "shape")
        if len(self.shape) < 2 or min(self.shape) < 1:
            raise ValueError(
                f"{self.name}: shape must be (positions..., channels) with sizes >= 1, not "
                f"{self.shape!r}"
            )
        lo, hi = value_range(self.in_dtype)
        lo, hi = self.positions * lo, self.positions * hi
        if lo < self.acc_dtype.min() or hi > self.acc_dtype.max():
            raise ValueError(
                f"{self.name}: accumulator datatype {self.acc_dtype.name} cannot hold the range "
                f"[{lo}, {hi}]"
            )
        check_activation(self, self.channels, "sum")
        check_divisor(self.name, self.channels, self.pe, "pe")

    # -- shapes and golden model ----------------------------------------------------------------

    @property
    def channels(self) -> int:
        return self.shape[-1]

    @property
    def positions(self) -> int:
        """Positions summed per channel: ``prod(shape[:-1])``."""
        return math.prod(self.shape[:-1])

    @property
    def in_shape(self):
        return self.shape

    @property
    def out_shape(self):
        return (self.channels,)

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        """The sums (before thresholds) for a batch of inputs."""
        x = self.check_input(x)
        return x.reshape(len(x), self.positions, self.channels).sum(axis=1)

    def execute(self, x):
        acc = self.accumulate(x)
        if self.thresholds is None:
            return acc
        return apply_thresholds(acc, self.thresholds, self.direction, self.out_dtype, self.out_base)

    # -- folding and timing ---------------------------------------------------------------------

    def fold_options(self, producer=None):
        return [{"pe": p} for p in divisors(self.channels)]

    def cycles_for(self, fold):
        """One beat a cycle: ``positions * C / pe``."""
        return self.positions * (self.channels // fold["pe"])

    def in_lanes_for(self, fold):
        return fold["pe"]

    @property
    def in_lanes(self) -> int:
        return self.pe

    @property
    def out_lanes(self) -> int:
        return self.pe

    @property
    def folds(self) -> int:
        """``CF = C / pe``: beats per position, and output beats per sample."""
        return self.channels // self.pe

    @property
    def tail(self) -> int:
        """Clock edges from accepting a beat to the output beat it ends."""
        return PIPELINE_TAIL + (self.thresholds is not None)

    def beat_times(self, avail, hold=None):
        """One beat a cycle; the beats of the last position each end the sums of a fold,
        whose output beat passes :attr:`tail` edges later. The whole pipeline stalls while
        *hold* keeps an output beat."""
        last = (self.positions - 1) * self.folds
        return sum_times(avail, lambda k: k >= last, self.tail, hold)

    def folded_thresholds(self):
        """Thresholds ``[CF, PE, T]`` and directions ``[CF, PE]`` in output-beat order
        (``(None, None)`` without thresholds)."""
        if self.thresholds is None:
            return None, None
        return fold_channels(self.thresholds, self.pe), fold_channels(self.direction, self.pe)

    # -- cost, hardware, summary ----------------------------------------------------------------

    def features(self, family="xc7"):
        from ...hdl.threshold import TableCost, table_cost

        pe, folds = self.pe, self.folds
        acc, out = rs.width(self.acc_dtype), rs.width(self.out_dtype)
        levels = 0 if self.thresholds is None else int(self.thresholds.shape[1])
        table = TableCost()
        if levels:
            acc_range = (int(self.acc_dtype.min()), int(self.acc_dtype.max()))
            table = table_cost(*self.folded_thresholds(), acc_range)
        summing = self.positions > 1
        mems = {}
        if summing and folds > 1:
            mems["sums.sums"] = rs.map_memory(folds, pe * acc, "sdp")
        if levels and folds > 1:
            mems["sums.thresholds.bounds"] = rs.map_memory(folds, table.word, "rom")
        thr_logic = levels and folds > 1 and mems["sums.thresholds.bounds"].how == "logic"
        lut = {
            "base": 1,
            **rs.rom_terms([(folds, table.varying)] if thr_logic else []),
            "acc": pe * acc if summing else 0,
            "buf": pe * acc if "sums.sums" in mems else 0,
            "cmp": table.compared,
            "cmp_const": table.constant,
        }
        ff = {
            "base": 1,
            "in": pe * rs.width(self.in_dtype),
            "out": pe * out,
            # the sums memory's read register, like the matrix-vector unit's input buffer's
            "buf": pe * acc if "sums.sums" in mems else 0,
            "acc": pe * acc * ((summing and folds == 1) + bool(levels)),
            "rom": table.varying if thr_logic and folds > rs.SHALLOW_ROM_REGS else 0,
            "rom_small": table.varying if thr_logic and folds <= rs.SHALLOW_ROM_REGS else 0,
        }
        # accumulators, ROMs and comparators as in a matrix-vector unit: its coefficients
        return rs.Features(self.kind, lut, ff, mems, coefficients="MatrixVector")

    def unit(self):
        from ...hdl.global_sum import GlobalSumUnit

        return GlobalSumUnit(layer=self)

    def hls(self, builder):
        name = ident(self.name)
        acc_bits = self.acc_dtype.bitwidth()
        cfg = f"{name}_config"
        builder.plan.configs.append(
            Config(
                cfg,
                f"{name}: GlobalSum of {self.positions} positions x {self.channels}, pe {self.pe}",
                (("in_t", ctype(self.in_dtype)), ("acc_t", ctype(self.acc_dtype))),
                (
                    bconst("IN_BIPOLAR", self.in_dtype == BIPOLAR),
                    uconst("C", self.channels),
                    uconst("PE", self.pe),
                    uconst("CF", self.folds),
                    uconst("POSITIONS", self.positions),
                ),
            )
        )
        builder.kernel(
            "gm::global_sum",
            cfg,
            (),
            builder.feed(self.pe, self.in_dtype.bitwidth()),
            self.pe,
            acc_bits,
            f"{name}: GlobalSum",
            self.channels,
            header="gm_global_sum.h",
        )
        if self.thresholds is not None:
            builder.threshold_kernel(
                name=f"{name}_act",
                owner=name,
                layer=self,
                in_type=ctype(self.acc_dtype),
                in_bits=acc_bits,
                in_bipolar=False,
                pixels=1,
            )

    def describe(self):
        return (
            f"{self.in_dtype.name} -> {self.acc_dtype.name}, sum of {self.positions} positions"
            + (f" -> {self.out_dtype.name}" if self.thresholds is not None else "")
        )

    def details(self):
        d = {"positions": self.positions, "acc_dtype": self.acc_dtype.name}
        if self.thresholds is not None:
            d["thresholds"] = int(self.thresholds.shape[1])
        return d
