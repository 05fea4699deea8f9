"""``Concat``: the join of branches by concatenating their channels (values unchanged, widened
to one datatype); unit :class:`gatemill.hdl.concat.ConcatUnit`, kernel ``gm_concat.h``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...hdl.common import pipelined_times
from ..hls.model import Config, ctype, ident, uconst
from ..ir.datatypes import BIPOLAR, check_values
from ..ir.fields import check_divisor, divisors, int_tuple
from . import resources as rs
from .base import Layer

# The unit registers its output beat.
LATENCY = 1


@dataclass(frozen=True, kw_only=True, eq=False)
class Concat(Layer):
    """Concatenation along the channels: input ``k`` of shape ``(*spatial, channels[k])``.

    Parameters
    ----------
    spatial : tuple of int
        Leading per-sample dimensions, the same for every input.
    channels : tuple of int
        Channels of each input (two or more).
    dtypes : tuple of DataType
        Each input's datatype; every value must be a value of ``dtype``.
    dtype : DataType
        The output's datatype (BIPOLAR only when every input is BIPOLAR).
    pe : int
        Channels per beat, dividing every input's channels.
    """

    kind: ClassVar[str] = "Concat"
    fold_fields: ClassVar[tuple[str, ...]] = ("pe",)
    spatial: tuple[int, ...]
    channels: tuple[int, ...]
    dtypes: tuple
    dtype: Any
    pe: int = 1

    def __post_init__(self):
        super().__post_init__()
        int_tuple(self, "spatial")
        int_tuple(self, "channels")
        object.__setattr__(self, "dtypes", tuple(self.dtypes))
        if len(self.channels) < 2 or len(self.dtypes) != len(self.channels):
            raise ValueError(f"{self.name}: two or more inputs, each with its datatype")
        if min(self.channels) < 1:
            raise ValueError(f"{self.name}: every input needs channels, not {self.channels}")
        for k, dt in enumerate(self.dtypes):
            if (dt == BIPOLAR) != (self.dtype == BIPOLAR):
                raise ValueError(
                    f"{self.name}: input {k} is {dt.name}, the output {self.dtype.name}"
                )
            if dt != BIPOLAR:
                check_values(f"{self.name} input {k} range", [dt.min(), dt.max()], self.dtype)
        for c in self.channels:
            check_divisor(self.name, c, self.pe, "pe")

    @property
    def arity(self) -> int:
        return len(self.channels)

    @property
    def pixels(self) -> int:
        return math.prod(self.spatial)

    @property
    def in_dtype(self):
        return self.dtypes[0]

    @property
    def out_dtype(self):
        return self.dtype

    @property
    def in_dtypes(self):
        return self.dtypes

    @property
    def in_shape(self):
        return (*self.spatial, self.channels[0])

    @property
    def in_shapes(self):
        return tuple((*self.spatial, c) for c in self.channels)

    @property
    def out_shape(self):
        return (*self.spatial, sum(self.channels))

    def execute(self, *xs):
        if len(xs) != self.arity:
            raise ValueError(f"{self.name}: {self.arity} inputs, not {len(xs)}")
        parts = []
        for k, x in enumerate(xs):
            x = np.asarray(x)
            if x.shape[1:] != self.in_shapes[k]:
                raise ValueError(f"{self.name}: input {k} shape {x.shape[1:]}")
            check_values(f"{self.name} input {k}", x, self.dtypes[k])
            parts.append(x.astype(np.int64))
        return np.concatenate(parts, axis=-1)

    # -- folding and timing -------------------------------------------------------------------

    def fold_options(self, producer=None):
        common = math.gcd(*self.channels)
        return [{"pe": p} for p in divisors(common)]

    def cycles_for(self, fold):
        """An output beat a cycle: ``prod(spatial) * sum(channels) / pe``."""
        return self.pixels * sum(self.channels) // fold["pe"]

    def in_lanes_for(self, fold):
        return fold["pe"]

    @property
    def in_lanes(self) -> int:
        return self.pe

    @property
    def input_lanes(self):
        return (self.pe,) * self.arity

    @property
    def out_lanes(self) -> int:
        return self.pe

    def _order(self) -> list[tuple[int, int]]:
        """``(input, beat)`` in the order the unit takes them: per pixel, the beats of input 0,
        then of input 1, ..."""
        beats = [c // self.pe for c in self.channels]
        return [
            (k, p * n + b)
            for p in range(self.pixels)
            for k, n in enumerate(beats)
            for b in range(n)
        ]

    def take_times(self, *avails) -> list[list[int]]:
        """The cycle each input beat is taken, one beat a cycle in :meth:`_order`."""
        order = self._order()
        times = pipelined_times([avails[k][i] for k, i in order], 0)
        out = [[0] * len(a) for a in avails]
        for (k, i), t in zip(order, times, strict=True):
            out[k][i] = t
        return out

    def beat_times(self, *avails, hold=None):
        """An output beat leaves one cycle after its input beat is taken; no beat is taken
        while *hold* keeps an output beat."""
        order = self._order()
        return pipelined_times([avails[k][i] for k, i in order], LATENCY, hold)

    # -- cost, hardware, summary --------------------------------------------------------------

    def features(self, family="xc7"):
        bits = self.pe * rs.width(self.dtype)
        beats = sum(self.channels) // self.pe
        # an output register, an input multiplexer, a beat counter per pixel
        lut = {"base": 1, "mux": bits * (self.arity - 1), "ctrl": rs.clog2(beats)}
        ff = {"base": 1, "out": bits, "ctrl": rs.clog2(beats)}
        return rs.Features(self.kind, lut, ff, {})

    def unit(self):
        from ...hdl.concat import ConcatUnit

        return ConcatUnit(layer=self)

    def hls(self, builder):
        if self.arity != 2:
            raise ValueError(f"{self.name}: the HLS kernel concatenates two inputs")
        name = ident(self.name)
        cfg = f"{name}_config"
        builder.plan.configs.append(
            Config(
                cfg,
                f"{name}: Concat {self.channels[0]} + {self.channels[1]} channels, pe {self.pe}",
                (
                    ("in0_t", ctype(self.dtypes[0])),
                    ("in1_t", ctype(self.dtypes[1])),
                    ("out_t", ctype(self.dtype)),
                ),
                (
                    uconst("PE", self.pe),
                    uconst("PIXELS", self.pixels),
                    uconst("BEATS0", self.channels[0] // self.pe),
                    uconst("BEATS1", self.channels[1] // self.pe),
                ),
            )
        )
        streams = [
            builder.feed_input(k, self.pe, dt.bitwidth()) for k, dt in enumerate(self.dtypes)
        ]
        bits = self.dtype.bitwidth()
        builder.kernel(
            "gm::concat", cfg, (streams[1].name,), streams[0], self.pe, bits, f"{name}: Concat",
            self.pixels * sum(self.channels), header="gm_concat.h",
        )  # fmt: skip

    def describe(self):
        parts = zip(self.channels, self.dtypes, strict=True)
        return " + ".join(f"{c} {dt.name}" for c, dt in parts) + (
            f" -> {sum(self.channels)} {self.dtype.name}"
        )

    def details(self):
        return {"channels": list(self.channels)}
