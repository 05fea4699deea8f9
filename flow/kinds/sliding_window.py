"""``SlidingWindow``: the convolution input generator (im2col) in front of a matrix-vector
unit; unit :class:`gatemill.hdl.sliding_window.SlidingWindowUnit`, kernel
``gm_sliding_window.h``. Its schedule (:class:`WindowSchedule`) is shared by the unit and the
timing model."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...hdl.common import Backpressure, pipelined_times
from ..ir.datatypes import BIPOLAR
from ..ir.fields import check_divisor, divisors, int_tuple
from . import resources as rs
from .base import DataMover, Layer


def window_out(size: int, k: int, s: int, p0: int, p1: int) -> int:
    """Output positions of a window of *k* with stride *s* over *size* padded by *p0*, *p1*."""
    return (size + p0 + p1 - k) // s + 1


class WindowSchedule:
    """The line buffer's schedule, shared by the unit and the timing model.

    Output row ``k`` reads input rows ``first(k) .. need(k)``; an input row is
    ``irow = W * CF`` beats and an output row ``orow = OW * KH * KW * CF`` beats
    (``CF = C / simd``). ``rows_in[k]`` input rows arrive while output row ``k`` is emitted
    (those output row ``k + 1`` needs; for the last row, the rest of the sample and what the
    next sample's row 0 needs), and the buffer holds ``rows`` rows.
    """

    def __init__(self, layer: SlidingWindow):
        self.h, self.w, c = layer.ifm
        self.kh, self.kw = layer.kernel
        self.sh, self.sw = layer.stride
        self.pt, self.pl, self.pb, self.pr = layer.pad
        self.oh, self.ow, _ = layer.out_shape
        self.cf = c // layer.simd
        self.irow = self.w * self.cf
        self.orow = self.ow * self.kh * self.kw * self.cf
        self.rows_in = [self.need(k + 1) - self.need(k) for k in range(self.oh - 1)]
        self.rows_in.append(self.h - 1 - self.need(self.oh - 1) + self.need(0) + 1)
        live = [self.need(k + 1) - self.first(k) + 1 for k in range(self.oh - 1)]
        live.append(self.h - self.first(self.oh - 1) + self.need(0) + 1)
        # A kernel as tall as the input needs two frames: the next sample arrives while the
        # last one is read.
        self.rows = max(live)

    def need(self, k: int) -> int:
        """Last input row output row *k* reads: ``min(k*SH - PT + KH - 1, H - 1)``."""
        return min(k * self.sh - self.pt + self.kh - 1, self.h - 1)

    def first(self, k: int) -> int:
        """First input row output row *k* reads."""
        return max(k * self.sh - self.pt, 0)


@dataclass(frozen=True, kw_only=True, eq=False)
class SlidingWindow(DataMover, Layer):
    """Every output pixel's window, flattened (im2col).

    Output element order within a window is (ky, kx, channel), matching the weights of the
    following matrix-vector layer. Padding inserts the value 0.

    Parameters
    ----------
    ifm : tuple of int
        Input feature map ``(H, W, C)``.
    kernel, stride : tuple of int
        ``(KH, KW)`` and ``(SH, SW)``.
    pad : tuple of int
        ``(top, left, bottom, right)``; top and bottom smaller than the kernel height.
    dtype : DataType
    simd : int
        Channels per beat (divides C); the matrix-vector layer it feeds sets it.
    in_skid : int
        Hardware only: 1 puts a skid buffer between the unit and the FIFO in front of it
        (:func:`gatemill.hdl.plan.plan`), so that the FIFO's block RAM read enable comes from
        registers, not from this unit's ready through logic (nextpnr-ecp5, residual CNN: 7.1
        ns of route from the ready to the enable). Same timing (the buffer is a wire while
        empty). :meth:`device_fold` sets it above
        :data:`~gatemill.flow.kinds.matrix_vector.SKID_ABOVE_MHZ`.
    """

    kind: ClassVar[str] = "SlidingWindow"
    fold_fields: ClassVar[tuple[str, ...]] = ("simd", "in_skid")
    follows_consumer: ClassVar[bool] = True
    ifm: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    dtype: Any = None
    simd: int = 1
    in_skid: int = 0

    def __post_init__(self):
        super().__post_init__()
        int_tuple(self, "ifm", 3)
        int_tuple(self, "kernel", 2)
        int_tuple(self, "stride", 2)
        int_tuple(self, "pad", 4)
        if min(self.ifm) < 1 or min(self.kernel) < 1 or min(self.stride) < 1:
            raise ValueError(f"{self.name}: sizes, kernel and stride must be >= 1")
        if self.dtype is None:
            raise ValueError(f"{self.name}: dtype is required")
        if any(self.pad) and self.dtype == BIPOLAR:
            raise ValueError(f"{self.name}: zero padding cannot be represented in BIPOLAR")
        if min(self.out_shape[:2]) < 1:
            raise ValueError(f"{self.name}: kernel {self.kernel} larger than padded input")
        check_divisor(self.name, self.ifm[2], self.simd, "simd")
        if self.in_skid not in (0, 1):
            raise ValueError(f"{self.name}: in_skid must be 0 or 1, not {self.in_skid!r}")

    @property
    def out_shape(self):
        h, w, c = self.ifm
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.stride, self.pad
        return (window_out(h, kh, sh, pt, pb), window_out(w, kw, sw, pl, pr), kh * kw * c)

    def execute(self, x):
        x = self.check_input(x)
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.stride, self.pad
        xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        oh, ow, _ = self.out_shape
        win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
        # win: (N, H', W', C, KH, KW) -> stride, then order (ky, kx, c)
        win = win[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]
        return np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(len(x), oh, ow, -1)

    # -- folding: the consumer's simd -----------------------------------------------------------

    def lane_choices(self):
        return divisors(self.ifm[2])

    def tie(self, lanes):
        if self.ifm[2] % lanes:
            raise ValueError(
                f"it reads the windows of {self.name!r} over {self.ifm[2]} channels; its simd "
                f"must divide {self.ifm[2]}, not {lanes}"
            )
        return {"simd": lanes}

    def device_fold(self, clock_mhz, family):
        from .matrix_vector import SKID_ABOVE_MHZ

        return {"in_skid": int(clock_mhz > SKID_ABOVE_MHZ.get(family, math.inf))}

    # -- timing ---------------------------------------------------------------------------------

    @property
    def in_lanes(self) -> int:
        return self.simd

    @property
    def out_lanes(self) -> int:
        return self.simd

    def schedule(self) -> WindowSchedule:
        """The line buffer's schedule (``ValueError`` when a whole output row is padding)."""
        pt, _, pb, _ = self.pad
        if pt >= self.kernel[0] or pb >= self.kernel[0]:
            raise ValueError(
                f"{self.name}: top/bottom padding must be smaller than the kernel height "
                f"{self.kernel[0]} (an output row of padding only), not {self.pad!r}"
            )
        return WindowSchedule(self)

    def cycles_for(self, fold):
        """Output row ``k`` takes ``orow`` cycles while the input rows output row ``k + 1``
        needs arrive (``rows_in[k] * irow``); the next row starts when both are done:
        ``sum_k max(orow, rows_in[k] * irow)``. That is ``max(H*W*CF, OH*OW*KH*KW*CF)`` when
        the same side is the slower one in every row (3x3 "same", valid, strided, 1x1 with a
        stride), more when some rows are input-bound and others output-bound (``H = 8``,
        ``KH = 3``, ``SH = 2``, ``KW = 1``: ``10 * W * CF`` instead of ``9 * W * CF``)."""
        p = self.refold(**fold).schedule() if fold != self.fold else self.schedule()
        return sum(max(p.orow, n * p.irow) for n in p.rows_in)

    def beat_times(self, avail, hold=None):
        """Output row ``k`` starts issuing one cycle after the last input beat it needs (row
        ``need(k)``) is accepted, and not before the previous row has ended; an issued beat
        leaves two advancing cycles later (the read and its register). Input is taken one
        beat a cycle (the line buffer does not block within a sample). The output stages,
        not the input, stall while *hold* keeps an output beat."""
        hold = hold or Backpressure()
        p = self.schedule()
        taken = pipelined_times(avail, 0)
        out, issue = [], None
        for k in range(p.oh):
            ready = taken[(p.need(k) + 1) * p.irow - 1] + 1  # row k's first issue, at the earliest
            for _ in range(p.orow):
                issue = hold.advance(ready if issue is None else max(ready, issue + 1))
                out.append(hold.emit(hold.later(issue, 1) + 1))
        return out

    # -- cost, hardware -------------------------------------------------------------------------

    def features(self, family="xc7"):
        p = self.schedule()
        word_bits = self.simd * rs.width(self.dtype)
        mems = {"lines": rs.map_memory(p.rows * p.irow, word_bits, "sdp")}
        return rs.Features(
            self.kind, {"base": 1, "bits": word_bits}, {"base": 1, "bits": word_bits}, mems
        )

    def unit(self):
        from ...hdl.sliding_window import SlidingWindowUnit

        return SlidingWindowUnit(layer=self)

    def hls(self, builder):
        pt, pl, _, _ = self.pad
        own = {"BITS": self.dtype.bitwidth(), "SIMD": self.simd, "PT": pt, "PL": pl}
        builder.window_kernel(
            self, "gm::sliding_window", "SlidingWindow", self.simd, (), own,
            header="gm_sliding_window.h",
        )  # fmt: skip

    def describe(self):
        kh, kw = self.kernel
        return f"{self.dtype.name}, {kh}x{kw} windows, stride {self.stride[0]}x{self.stride[1]}"

    def details(self):
        return {"kernel": list(self.kernel), "stride": list(self.stride), "pad": list(self.pad)}
