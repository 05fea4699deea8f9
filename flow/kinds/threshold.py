"""``Threshold``: a stand-alone multi-threshold activation (a requantization between two
quantizers), ``pe`` channels a cycle; unit :class:`gatemill.hdl.threshold.ThresholdUnit`,
kernel ``gm_threshold.h``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...hdl.common import pipelined_times
from ..hls.model import ctype, ident
from ..ir.datatypes import BIPOLAR
from ..ir.fields import check_divisor, divisors, int_tuple
from . import resources as rs
from .base import Layer
from .thresholds import apply_thresholds, check_thresholds, fold_channels

# ThresholdUnit's registers: the input beat (while the fold's thresholds are read), the output
LATENCY = 2


@dataclass(frozen=True, kw_only=True, eq=False)
class Threshold(Layer):
    """Stand-alone multi-threshold activation.

    Parameters
    ----------
    shape : tuple of int
        Per-sample shape, channels last.
    in_dtype, out_dtype : DataType
    thresholds, direction, out_base
        As in :class:`~gatemill.flow.kinds.matrix_vector.MatrixVector`, one row per channel.
    pe : int
        Channels processed per cycle.
    """

    kind: ClassVar[str] = "Threshold"
    plain_pipeline: ClassVar[bool] = True
    fold_fields: ClassVar[tuple[str, ...]] = ("pe",)
    shape: tuple[int, ...]
    in_dtype: Any
    thresholds: np.ndarray
    direction: np.ndarray
    out_dtype: Any
    out_base: int = 0
    pe: int = 1

    def __post_init__(self):
        super().__post_init__()
        int_tuple(self, "shape")
        check_thresholds(self, self.shape[-1])
        check_divisor(self.name, self.shape[-1], self.pe, "pe")

    @property
    def in_shape(self):
        return self.shape

    @property
    def out_shape(self):
        return self.shape

    @property
    def channels(self) -> int:
        return self.shape[-1]

    @property
    def pixels(self) -> int:
        return math.prod(self.shape[:-1])

    def execute(self, x):
        x = self.check_input(x)
        return apply_thresholds(x, self.thresholds, self.direction, self.out_dtype, self.out_base)

    # -- folding and timing ---------------------------------------------------------------------

    def fold_options(self, producer=None):
        return [{"pe": p} for p in divisors(self.channels)]

    def cycles_for(self, fold):
        """One beat of ``pe`` channels a cycle."""
        return self.pixels * (self.channels // fold["pe"])

    def in_lanes_for(self, fold):
        return fold["pe"]

    @property
    def in_lanes(self) -> int:
        return self.pe

    @property
    def out_lanes(self) -> int:
        return self.pe

    def beat_times(self, avail, hold=None):
        return pipelined_times(avail, LATENCY, hold)

    def folded_thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """Thresholds ``[NF, PE, T]`` and directions ``[NF, PE]`` in beat order."""
        return fold_channels(self.thresholds, self.pe), fold_channels(self.direction, self.pe)

    # -- cost, hardware, summary ----------------------------------------------------------------

    def features(self, family="xc7"):
        from ...hdl.threshold import table_cost

        folds = self.channels // self.pe
        vrange = (int(self.in_dtype.min()), int(self.in_dtype.max()))
        table = table_cost(*self.folded_thresholds(), vrange)
        mems = {}
        if folds > 1:
            mems["thresholds.bounds"] = rs.map_memory(folds, table.word, "rom")
        thr_logic = folds > 1 and mems["thresholds.bounds"].how == "logic"
        lut = {
            "base": 1,
            **rs.rom_terms([(folds, table.varying)] if thr_logic else []),
            "cmp": table.compared,
            "cmp_const": table.constant,
        }
        ff = {
            "base": 1,
            "in": self.pe * rs.width(self.in_dtype),
            "out": self.pe * rs.width(self.out_dtype),
            "rom": table.varying if thr_logic and folds > rs.SHALLOW_ROM_REGS else 0,
        }
        # the same comparators and ROM as a matrix-vector unit's activation: its coefficients
        return rs.Features(self.kind, lut, ff, mems, coefficients="MatrixVector")

    def unit(self):
        from ...hdl.threshold import ThresholdUnit

        return ThresholdUnit(layer=self)

    def hls(self, builder):
        name = ident(self.name)
        builder.threshold_kernel(
            name=name,
            owner=name,
            layer=self,
            in_type=ctype(self.in_dtype),
            in_bits=self.in_dtype.bitwidth(),
            in_bipolar=self.in_dtype == BIPOLAR,
            pixels=self.pixels,
        )

    def details(self):
        return {"thresholds": int(self.thresholds.shape[1])}
