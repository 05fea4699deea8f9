"""``Add``: the join of two branches by an elementwise sum (a residual connection), requantized
as the graph says; unit :class:`gatemill.hdl.add.AddUnit`, kernel ``gm_add.h``.

Two quantized tensors ``s0 * q0`` and ``s1 * q1`` add up to ``g * (a0 * q0 + a1 * q1)`` with
integers ``a0 = s0 / g`` and ``a1 = s1 / g`` (``g`` the largest value making both integers), so
the sum of the integers weighted by ``coefficients`` is exact; the scale ``g`` and whatever
follows (a ReLU, the next quantizer) fold into thresholds, exactly as after a matrix-vector
layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...hdl.common import pipelined_times
from ..hls.model import Config, bconst, ctype, iconst, ident, uconst
from ..ir.datatypes import BIPOLAR, check_values
from ..ir.fields import check_divisor, divisors, int_tuple
from . import resources as rs
from .base import Layer
from .thresholds import apply_thresholds, check_activation, fold_channels


def sum_range(dtypes, coefficients) -> tuple[int, int]:
    """``(lo, hi)`` of ``sum_k coefficients[k] * x_k`` over all inputs of *dtypes*."""
    lo = hi = 0
    for dt, a in zip(dtypes, coefficients, strict=True):
        ends = (-1, 1) if dt == BIPOLAR else (int(dt.min()), int(dt.max()))
        lo += min(a * ends[0], a * ends[1])
        hi += max(a * ends[0], a * ends[1])
    return lo, hi


@dataclass(frozen=True, kw_only=True, eq=False)
class Add(Layer):
    """``acc = a0 * x0 + a1 * x1`` elementwise, with an optional threshold activation.

    Parameters
    ----------
    shape : tuple of int
        Per-sample shape of both inputs and the output, channels last.
    dtypes : tuple of DataType
        The two inputs' datatypes.
    coefficients : tuple of int
        ``(a0, a1)``, non-zero.
    acc_dtype : DataType
        Holds every sum.
    thresholds, direction, out_dtype, out_base
        As in :class:`~gatemill.flow.kinds.matrix_vector.MatrixVector`: without thresholds the
        output is ``acc``.
    pe : int
        Channels per beat (divides C), on both inputs and the output.
    """

    kind: ClassVar[str] = "Add"
    fold_fields: ClassVar[tuple[str, ...]] = ("pe",)
    arity: ClassVar[int] = 2
    shape: tuple[int, ...]
    dtypes: tuple
    coefficients: tuple[int, int]
    acc_dtype: Any
    thresholds: np.ndarray | None = None
    direction: np.ndarray | None = None
    out_dtype: Any = None
    out_base: int = 0
    pe: int = 1

    def __post_init__(self):
        super().__post_init__()
        int_tuple(self, "shape")
        object.__setattr__(self, "dtypes", tuple(self.dtypes))
        object.__setattr__(self, "coefficients", tuple(int(a) for a in self.coefficients))
        if len(self.dtypes) != 2 or len(self.coefficients) != 2 or 0 in self.coefficients:
            raise ValueError(f"{self.name}: two datatypes and two non-zero coefficients needed")
        lo, hi = sum_range(self.dtypes, self.coefficients)
        check_values(f"{self.name} sum range", [lo, hi], self.acc_dtype)
        check_activation(self, self.channels, "sum")
        check_divisor(self.name, self.channels, self.pe, "pe")

    @property
    def channels(self) -> int:
        return self.shape[-1]

    @property
    def pixels(self) -> int:
        return math.prod(self.shape[:-1])

    @property
    def in_dtype(self):
        return self.dtypes[0]

    @property
    def in_dtypes(self):
        return self.dtypes

    @property
    def in_shape(self):
        return self.shape

    @property
    def in_shapes(self):
        return (self.shape, self.shape)

    @property
    def out_shape(self):
        return self.shape

    def accumulate(self, x0, x1) -> np.ndarray:
        """``a0 * x0 + a1 * x1`` for batches of both inputs."""
        x0 = self.check_input(x0)
        x1 = np.asarray(x1)
        if x1.shape != x0.shape:
            raise ValueError(f"{self.name}: inputs of shapes {x0.shape} and {x1.shape}")
        check_values(f"{self.name} input 1", x1, self.dtypes[1])
        a0, a1 = self.coefficients
        return a0 * x0 + a1 * x1.astype(np.int64)

    def execute(self, x0, x1):
        acc = self.accumulate(x0, x1)
        if self.thresholds is None:
            return acc
        return apply_thresholds(acc, self.thresholds, self.direction, self.out_dtype, self.out_base)

    # -- folding and timing -------------------------------------------------------------------

    def fold_options(self, producer=None):
        return [{"pe": p} for p in divisors(self.channels)]

    def cycles_for(self, fold):
        """A beat of ``pe`` channels from each input a cycle."""
        return self.pixels * (self.channels // fold["pe"])

    def in_lanes_for(self, fold):
        return fold["pe"]

    @property
    def in_lanes(self) -> int:
        return self.pe

    @property
    def input_lanes(self):
        return (self.pe, self.pe)

    @property
    def out_lanes(self) -> int:
        return self.pe

    @property
    def stages(self) -> int:
        """Registers from the inputs to the output: the sum, and the comparison when there
        are thresholds."""
        return 1 + (self.thresholds is not None)

    def take_times(self, a0, a1) -> list[list[int]]:
        """The cycle each input beat is taken by the input's skid buffer: as it arrives, but
        not before the cycle after the sum took the beat before it (the buffer holds one)."""
        summed = pipelined_times([max(x, y) for x, y in zip(a0, a1, strict=True)], 0)
        free = [0] + [s + 1 for s in summed[:-1]]  # the buffer can take beat j from then on
        return [[max(t, f) for t, f in zip(a, free, strict=True)] for a in (a0, a1)]

    def beat_times(self, a0, a1, hold=None):
        """Output beat ``j`` leaves :attr:`stages` advancing cycles after input beat ``j`` is
        taken; no beat is taken while *hold* keeps an output beat."""
        return pipelined_times([max(x, y) for x, y in zip(a0, a1, strict=True)], self.stages, hold)

    def folded_thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """Thresholds ``[NF, PE, T]`` and directions ``[NF, PE]`` in beat order."""
        return fold_channels(self.thresholds, self.pe), fold_channels(self.direction, self.pe)

    # -- cost, hardware, summary --------------------------------------------------------------

    def features(self, family="xc7"):
        from ...hdl.threshold import table_cost

        folds = self.channels // self.pe
        acc_bits = rs.width(self.acc_dtype)
        held = self.pe * sum(rs.width(d) for d in self.dtypes)  # the input skid buffers
        lut = {"base": 1, "acc": self.pe * acc_bits, "skid": held}
        ff = {
            "base": 1,
            "in": self.pe * acc_bits,
            "out": self.pe * rs.width(self.out_dtype),
            "skid": held + 2,
        }
        mems = {}
        if self.thresholds is not None:
            vrange = (int(self.acc_dtype.min()), int(self.acc_dtype.max()))
            table = table_cost(*self.folded_thresholds(), vrange)
            if folds > 1:
                mems["thresholds.bounds"] = rs.map_memory(folds, table.word, "rom")
            if folds > 1 and mems["thresholds.bounds"].how == "logic":
                lut.update(rs.rom_terms([(folds, table.varying)]))
            lut.update(cmp=table.compared, cmp_const=table.constant)
        # an adder and comparators like a matrix-vector unit's accumulator and activation
        return rs.Features(self.kind, lut, ff, mems, coefficients="MatrixVector")

    def unit(self):
        from ...hdl.add import AddUnit

        return AddUnit(layer=self)

    def hls(self, builder):
        name = ident(self.name)
        acc_bits = self.acc_dtype.bitwidth()
        cfg = f"{name}_config"
        a0, a1 = self.coefficients
        builder.plan.configs.append(
            Config(
                cfg,
                f"{name}: Add {a0} * x0 + {a1} * x1, {self.channels} channels, pe {self.pe}",
                (
                    ("in0_t", ctype(self.dtypes[0])),
                    ("in1_t", ctype(self.dtypes[1])),
                    ("acc_t", ctype(self.acc_dtype)),
                ),
                (
                    uconst("PE", self.pe),
                    uconst("BEATS", self.pixels * self.channels // self.pe),
                    bconst("IN0_BIPOLAR", self.dtypes[0] == BIPOLAR),
                    bconst("IN1_BIPOLAR", self.dtypes[1] == BIPOLAR),
                    iconst("A0", a0),
                    iconst("A1", a1),
                ),
            )
        )
        streams = [
            builder.feed_input(k, self.pe, dt.bitwidth()) for k, dt in enumerate(self.dtypes)
        ]
        builder.kernel(
            "gm::add", cfg, (streams[1].name,), streams[0], self.pe, acc_bits, f"{name}: Add",
            self.pixels * self.channels, header="gm_add.h",
        )  # fmt: skip
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

    def describe(self):
        (d0, d1), (a0, a1) = self.dtypes, self.coefficients
        return f"{a0} * {d0.name} + {a1} * {d1.name} -> {self.acc_dtype.name}" + (
            f" -> {self.out_dtype.name}" if self.thresholds is not None else ""
        )

    def details(self):
        d = {"coefficients": list(self.coefficients), "acc_dtype": self.acc_dtype.name}
        if self.thresholds is not None:
            d["thresholds"] = int(self.thresholds.shape[1])
        return d
