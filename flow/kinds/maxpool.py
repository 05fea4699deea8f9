"""``MaxPool``: max-pooling over ``(KH, KW)`` windows with a stride (overlapping or not), no
padding, one input beat of ``pe`` channels a cycle; unit :class:`gatemill.hdl.maxpool.MaxPoolUnit`,
kernel ``gm_maxpool.h``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...hdl.common import Backpressure
from ..hls.model import ctype
from ..ir.fields import check_divisor, divisors, int_tuple
from . import resources as rs
from .base import DataMover, Layer
from .sliding_window import window_out


@dataclass(frozen=True, kw_only=True, eq=False)
class MaxPool(DataMover, Layer):
    """Max-pooling over ``(KH, KW)`` windows with a stride, no padding.

    Parameters
    ----------
    ifm : tuple of int
        ``(H, W, C)``.
    kernel, stride : tuple of int
    dtype : DataType
    pe : int
        Channels per cycle.
    """

    kind: ClassVar[str] = "MaxPool"
    fold_fields: ClassVar[tuple[str, ...]] = ("pe",)
    ifm: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dtype: Any
    pe: int = 1

    def __post_init__(self):
        super().__post_init__()
        int_tuple(self, "ifm", 3)
        int_tuple(self, "kernel", 2)
        int_tuple(self, "stride", 2)
        if min(self.kernel) < 1 or min(self.stride) < 1:
            raise ValueError(f"{self.name}: kernel and stride must be >= 1")
        if min(self.out_shape[:2]) < 1:
            raise ValueError(f"{self.name}: kernel {self.kernel} larger than input {self.ifm}")
        check_divisor(self.name, self.ifm[2], self.pe, "pe")

    @property
    def out_shape(self):
        h, w, c = self.ifm
        (kh, kw), (sh, sw) = self.kernel, self.stride
        return (window_out(h, kh, sh, 0, 0), window_out(w, kw, sw, 0, 0), c)

    def execute(self, x):
        x = self.check_input(x)
        (kh, kw), (sh, sw) = self.kernel, self.stride
        oh, ow, _ = self.out_shape
        win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
        win = win[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]
        return win.max(axis=(4, 5))

    @property
    def banks(self) -> tuple[int, int]:
        """``(NH, NV)``: windows open at once along a row and along a column (the unit keeps
        one partial maximum for each)."""
        (kh, kw), (sh, sw) = self.kernel, self.stride
        oh, ow, _ = self.out_shape
        return min(math.ceil(kw / sw), ow), min(math.ceil(kh / sh), oh)

    # -- folding and timing ---------------------------------------------------------------------

    def fold_options(self, producer=None):
        return [{"pe": p} for p in divisors(self.ifm[2])]

    def cycles_for(self, fold):
        """One input beat a cycle: ``H * W * C / pe``."""
        h, w, c = self.ifm
        return h * w * (c // fold["pe"])

    def in_lanes_for(self, fold):
        return fold["pe"]

    @property
    def in_lanes(self) -> int:
        return self.pe

    @property
    def out_lanes(self) -> int:
        return self.pe

    def beat_times(self, avail, hold=None):
        """A window's beat leaves four cycles after the input beat that completes it (the
        input register, the row maximum, the column maximum, the output register); the unit
        stalls while *hold* keeps an output beat."""
        hold = hold or Backpressure()
        (kh, kw), (sh, sw), (_, w, c) = self.kernel, self.stride, self.ifm
        oh, ow, _ = self.out_shape
        cf = c // self.pe
        last = [  # the input beat completing each window, in output order (increasing)
            ((oy * sh + kh - 1) * w + ox * sw + kw - 1) * cf + f
            for oy in range(oh)
            for ox in range(ow)
            for f in range(cf)
        ]
        out, t = [], None
        for k, a in enumerate(avail[: last[-1] + 1]):
            t = hold.advance(a if t is None else max(a, t + 1))
            if k == last[len(out)]:
                out.append(hold.emit(hold.later(t, 3) + 1))
        return out

    # -- cost, hardware -------------------------------------------------------------------------

    def features(self, family="xc7"):
        nh, nv = self.banks
        h, w, c = self.ifm
        ow = self.out_shape[1]
        cf = c // self.pe
        word = self.pe * rs.width(self.dtype)
        # the position tables are asynchronous ROMs, the banks asynchronous RAMs
        mems = {"x_table": rs.MemoryMap("logic"), "y_table": rs.MemoryMap("logic")}
        mems.update({f"row{j}": rs.map_memory(cf, word, "sp_async") for j in range(nh)})
        mems.update({f"col{j}": rs.map_memory(ow * cf, word, "sp_async") for j in range(nv)})
        ctrl = rs.clog2(h) + rs.clog2(w) + rs.clog2(cf)
        lut = {"base": 1, "bits": (nh + nv) * word, "ctrl": ctrl}
        # the three stages, the banks' reads and the output register
        ff = {"base": 1, "bits": (nh + nv + 4) * word, "ctrl": ctrl}
        return rs.Features(self.kind, lut, ff, mems)

    def unit(self):
        from ...hdl.maxpool import MaxPoolUnit

        return MaxPoolUnit(layer=self)

    def hls(self, builder):
        types = (("elem_t", ctype(self.dtype)),)
        builder.window_kernel(
            self, "gm::maxpool", "MaxPool", self.pe, types, {"PE": self.pe}, header="gm_maxpool.h"
        )

    def describe(self):
        kh, kw = self.kernel
        return f"{self.dtype.name}, max of {kh}x{kw}, stride {self.stride[0]}x{self.stride[1]}"

    def details(self):
        return {"kernel": list(self.kernel), "stride": list(self.stride)}
