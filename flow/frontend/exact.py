"""Exact evaluation of the elementwise chain between an accumulator and its quantizer.

The chain is what QONNX computes in float32 (bias Add, BatchNormalization, Mul, ReLU, Clip,
then Quant or BipolarQuant); here it runs on ``fractions.Fraction`` of the float32 constants,
so a threshold lands exactly where the real-valued graph crosses a rounding boundary (ties
included). The only irrational step is BatchNorm's ``sqrt(var + eps)``: exact when the
rational is a perfect square, otherwise computed to ``SQRT_BITS`` bits, far below any gap
float32 constants can produce.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

SQRT_BITS = 512


def fractions(values) -> list[Fraction]:
    """Exact rationals of a float array (float32 values are exactly representable)."""
    return [Fraction(float(v)) for v in np.asarray(values, dtype=np.float64).ravel()]


def sqrt_fraction(q: Fraction) -> Fraction:
    """``sqrt(q)``: exact for perfect squares, otherwise to ``SQRT_BITS`` bits."""
    if q < 0:
        raise ValueError(f"square root of negative {q}")
    n, d = q.numerator, q.denominator
    rn, rd = math.isqrt(n), math.isqrt(d)
    if rn * rn == n and rd * rd == d:
        return Fraction(rn, rd)
    scale = 1 << SQRT_BITS
    return Fraction(math.isqrt(n * d * scale * scale), d * scale)


def round_exact(v: Fraction, mode: str) -> int:
    """Round like qonnx's ``resolve_rounding_mode``, exactly."""
    mode = mode.upper()
    if mode in ("ROUND", "HALF_EVEN"):
        return round(v)
    if mode == "CEIL":
        return math.ceil(v)
    if mode == "FLOOR":
        return math.floor(v)
    sign = 1 if v >= 0 else -1
    a = abs(v)
    if mode == "UP":
        return sign * math.ceil(a)
    if mode == "DOWN":
        return sign * math.floor(a)
    if mode == "HALF_UP":
        return sign * math.floor(a + Fraction(1, 2))
    if mode == "HALF_DOWN":
        return sign * math.ceil(a - Fraction(1, 2))
    raise ValueError(f"unknown rounding mode {mode!r}")


ROUNDING_MODES = ("ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN")


@dataclass(frozen=True)
class Affine:
    """``v -> a * v + b`` per channel."""

    a: Sequence[Fraction]
    b: Sequence[Fraction]


@dataclass(frozen=True)
class Clamp:
    """``v -> min(max(v, lo), hi)``; ``None`` for an open side (ReLU is ``Clamp(0, None)``)."""

    lo: Fraction | None
    hi: Fraction | None


@dataclass(frozen=True)
class IntQuantizer:
    """QONNX ``Quant`` (per-tensor or per-channel scale, zero point 0) as an integer level."""

    scale: Sequence[Fraction]
    bits: int
    signed: bool
    narrow: bool
    rounding_mode: str

    @property
    def bipolar(self) -> bool:
        # qonnx executes a 1-bit signed Quant as a sign function (-1/+1)
        return self.bits == 1 and self.signed

    @property
    def qmin(self) -> int:
        if self.bipolar:
            return -1
        if not self.signed:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.narrow else 0)

    @property
    def qmax(self) -> int:
        if self.bipolar:
            return 1
        if not self.signed:
            return 2**self.bits - 1 - (1 if self.narrow else 0)
        return 2 ** (self.bits - 1) - 1

    def level(self, v: Fraction, c: int) -> int:
        if self.bipolar:
            return 1 if v >= 0 else -1
        q = round_exact(v / self.scale[c], self.rounding_mode)
        return min(max(q, self.qmin), self.qmax)


@dataclass(frozen=True)
class BipolarQuantizer:
    """QONNX ``BipolarQuant``: -1/+1 by the sign of the input."""

    scale: Sequence[Fraction]
    qmin: int = -1
    qmax: int = 1
    bipolar: bool = True

    def level(self, v: Fraction, c: int) -> int:
        return 1 if v >= 0 else -1


@dataclass(frozen=True)
class TruncQuantizer:
    """QONNX ``Trunc`` (version 2, zero point 0), Brevitas' truncation after an average pool:
    ``round(v / in_scale)`` (half to even), divided by the power of two ``trunc``, clamped,
    rounded with ``rounding_mode``; the output is ``level * out_scale``."""

    in_scale: Fraction
    trunc: Fraction
    bits: int
    signed: bool
    narrow: bool
    rounding_mode: str
    scale: Sequence[Fraction]  # the output scale, per channel
    bipolar: bool = False

    @property
    def qmin(self) -> int:
        if not self.signed:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.narrow else 0)

    @property
    def qmax(self) -> int:
        if not self.signed:
            return 2**self.bits - 1 - (1 if self.narrow else 0)
        return 2 ** (self.bits - 1) - 1

    def level(self, v: Fraction, c: int) -> int:
        y = Fraction(round_exact(v / self.in_scale, "ROUND")) / self.trunc
        return round_exact(
            min(max(y, Fraction(self.qmin)), Fraction(self.qmax)), self.rounding_mode
        )


def evaluate(ops: Sequence, v: Fraction, c: int) -> Fraction:
    """Apply the chain *ops* to the real value *v* of channel *c*."""
    for op in ops:
        if isinstance(op, Affine):
            v = op.a[c] * v + op.b[c]
        elif isinstance(op, Clamp):
            if op.lo is not None and v < op.lo:
                v = op.lo
            if op.hi is not None and v > op.hi:
                v = op.hi
        else:  # pragma: no cover - the streamliner only builds the ops above
            raise TypeError(op)
    return v


def compose_affine(ops: Sequence, channels: int) -> tuple[list[Fraction], list[Fraction]]:
    """The chain as one ``a * v + b`` per channel; raises ``ValueError`` if it clamps."""
    a = [Fraction(1)] * channels
    b = [Fraction(0)] * channels
    for op in ops:
        if not isinstance(op, Affine):
            raise ValueError("the chain is not affine")
        a = [op.a[c] * a[c] for c in range(channels)]
        b = [op.a[c] * b[c] + op.b[c] for c in range(channels)]
    return a, b


def first_true(lo: int, hi: int, pred: Callable[[int], bool]) -> int:
    """Smallest x in [lo, hi] with pred(x) true for a monotone pred; hi + 1 if none."""
    hi += 1
    while lo < hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def thresholds_for_channel(level_of: Callable[[int], int], lo: int, hi: int, levels):
    """Thresholds of a monotone integer function on ``[lo, hi]``.

    Returns ``(direction, thresholds)``, one threshold per entry of *levels* (ascending), so
    that ``level_of(x) >= L`` exactly when x passes the threshold of L: ``x >= t`` for
    direction +1, ``x <= t`` for -1. A level reached everywhere gets ``lo`` (or ``hi``); a level
    never reached gets a threshold just outside the range (``hi + 1`` or ``lo - 1``).
    """
    if level_of(hi) >= level_of(lo):
        ts, start = [], lo
        for level in levels:
            start = first_true(start, hi, lambda x, L=level: level_of(x) >= L)
            ts.append(start)
        return 1, ts
    # decreasing: search the increasing function x -> level_of(-x) and reflect back
    _, ts = thresholds_for_channel(lambda x: level_of(-x), -hi, -lo, levels)
    return -1, [-t for t in ts]
