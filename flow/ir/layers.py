"""Layer parameters of the integer IR, each with its exact golden execution.

Tensors are per-sample channels-last: a feature map is ``(H, W, C)``, a vector ``(C,)``; the
golden model works on batches ``(N, *shape)`` of ``int64``. Every class is a frozen,
keyword-only dataclass validated at construction; arrays are stored read-only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .datatypes import BIPOLAR, check_values, dtype_for_range


def _freeze(obj, name: str, value, dtype=np.int64) -> None:
    arr = np.array(value, dtype=dtype, copy=True)
    arr.flags.writeable = False
    object.__setattr__(obj, name, arr)


def _tuple(obj, name: str, n: int | None = None) -> None:
    value = tuple(int(v) for v in getattr(obj, name))
    if n is not None and len(value) != n:
        raise ValueError(f"{name} must have {n} entries, not {value!r}")
    if any(v < 0 for v in value):
        raise ValueError(f"{name} must be non-negative, not {value!r}")
    object.__setattr__(obj, name, value)


def _check_fold(name: str, total: int, fold: int, what: str) -> None:
    if not isinstance(fold, int) or fold < 1 or total % fold:
        raise ValueError(f"{name}: {what} must be a positive divisor of {total}, not {fold!r}")


@dataclass(frozen=True, kw_only=True, eq=False)
class Layer:
    """Base of all IR layers.

    Parameters
    ----------
    name : str
        A sanitized identifier (letters, digits, ``_``), unique within the graph.
    """

    kind: ClassVar[str] = "Layer"
    name: str

    def __post_init__(self):
        if not (isinstance(self.name, str) and self.name.isidentifier() and self.name.isascii()):
            raise ValueError(f"layer name must be a sanitized identifier, not {self.name!r}")

    @property
    def in_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def out_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def execute(self, x: np.ndarray) -> np.ndarray:
        """Exact integer execution on a batch ``(N, *in_shape)``; returns ``(N, *out_shape)``."""
        raise NotImplementedError

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.shape[1:] != self.in_shape:
            raise ValueError(f"{self.name}: input shape {x.shape[1:]} != {self.in_shape}")
        check_values(f"{self.name} input", x, self.in_dtype)
        return x.astype(np.int64, copy=False)

    def params(self) -> dict[str, Any]:
        """The dataclass fields as a dict (arrays and datatypes as they are)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not (
                    isinstance(a, np.ndarray)
                    and isinstance(b, np.ndarray)
                    and a.dtype == b.dtype
                    and np.array_equal(a, b)
                ):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None


class _DataMover:
    """Layers that move or select values without changing their datatype (``dtype``) and take
    a feature map ``ifm``: sliding window, max-pool, flatten."""

    @property
    def in_dtype(self):
        return self.dtype

    @property
    def out_dtype(self):
        return self.dtype

    @property
    def in_shape(self):
        return self.ifm


def apply_thresholds(acc, thresholds, direction, out_dtype, out_base) -> np.ndarray:
    """Multi-threshold activation: count the thresholds each value passes.

    For channel ``c`` with ``direction[c] = +1`` a value passes threshold ``t`` when
    ``acc >= thresholds[c, t]``; with ``-1`` when ``acc <= thresholds[c, t]`` (a negative
    scale flips the comparison). The result is ``out_base + count``, or ``2 * count - 1``
    for a BIPOLAR output.
    """
    count = np.empty(acc.shape, dtype=np.int64)
    for c in range(thresholds.shape[0]):
        t = thresholds[c]
        a = acc[..., c]
        if direction[c] > 0:
            count[..., c] = np.searchsorted(t, a, side="right")
        else:
            count[..., c] = len(t) - np.searchsorted(t[::-1], a, side="left")
    if out_dtype == BIPOLAR:
        return 2 * count - 1
    return out_base + count


def _check_thresholds(layer, channels: int) -> None:
    """Validate ``thresholds``, ``direction``, ``out_dtype``, ``out_base`` of *layer*."""
    _freeze(layer, "thresholds", layer.thresholds)
    t = layer.thresholds
    if t.ndim != 2 or t.shape[0] != channels or t.shape[1] < 1:
        raise ValueError(f"{layer.name}: thresholds must be [{channels}, T>=1], not {t.shape}")
    _freeze(layer, "direction", layer.direction)
    d = layer.direction
    if d.shape != (channels,) or not np.all(np.abs(d) == 1):
        raise ValueError(f"{layer.name}: direction must be {channels} values of +1/-1")
    steps = np.diff(t, axis=1) * d[:, None]
    if np.any(steps < 0):
        c = int(np.nonzero(np.any(steps < 0, axis=1))[0][0])
        raise ValueError(f"{layer.name}: thresholds of channel {c} are not monotonic")
    levels = t.shape[1] + 1
    if layer.out_dtype == BIPOLAR:
        if levels != 2:
            raise ValueError(f"{layer.name}: a BIPOLAR output needs exactly 1 threshold")
    else:
        check_values(
            f"{layer.name} output range",
            [layer.out_base, layer.out_base + levels - 1],
            layer.out_dtype,
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class MatrixVector(Layer):
    """Matrix-vector product ``acc = W @ x`` with an optional threshold activation.

    Used for dense layers and, after :class:`SlidingWindow`, for convolutions (one product per
    output pixel: ``spatial = (OH, OW)``).

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
        The activation (see :func:`apply_thresholds`); without it the output is ``acc``.
    direction : ndarray of int, shape (MH,), optional
        +1 or -1 per output channel; required with ``thresholds``.
    out_dtype : DataType, optional
        Output datatype with thresholds (defaults to ``acc_dtype`` without).
    out_base : int
        Output value when no threshold is passed.
    pe, simd : int
        Folding: output rows and input columns processed per cycle (divisors of MH and MW).
    """

    kind: ClassVar[str] = "MatrixVector"
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

    def __post_init__(self):
        super().__post_init__()
        _freeze(self, "weights", self.weights)
        _tuple(self, "spatial")
        if self.weights.ndim != 2 or 0 in self.weights.shape:
            raise ValueError(f"{self.name}: weights must be a non-empty [MH, MW] matrix")
        check_values(f"{self.name} weights", self.weights, self.w_dtype)
        lo, hi = self.acc_range()
        if lo.min() < self.acc_dtype.min() or hi.max() > self.acc_dtype.max():
            raise ValueError(
                f"{self.name}: accumulator datatype {self.acc_dtype.name} cannot hold the range "
                f"[{lo.min()}, {hi.max()}]"
            )
        if self.thresholds is None:
            if self.direction is not None:
                raise ValueError(f"{self.name}: direction given without thresholds")
            if self.out_dtype is None:
                object.__setattr__(self, "out_dtype", self.acc_dtype)
            elif self.out_dtype != self.acc_dtype:
                raise ValueError(f"{self.name}: without thresholds the output is the accumulator")
        else:
            if self.out_dtype is None:
                raise ValueError(f"{self.name}: thresholds need an out_dtype")
            _check_thresholds(self, self.mh)
        _check_fold(self.name, self.mh, self.pe, "pe")
        _check_fold(self.name, self.mw, self.simd, "simd")

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
        x = self._check_input(x)
        dot = x @ self.weights.T
        return (dot + self.mw) // 2 if self.binary else dot

    def execute(self, x):
        acc = self.accumulate(x)
        if self.thresholds is None:
            return acc
        return apply_thresholds(acc, self.thresholds, self.direction, self.out_dtype, self.out_base)


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


@dataclass(frozen=True, kw_only=True, eq=False)
class Threshold(Layer):
    """Stand-alone multi-threshold activation (a requantization between two quantizers).

    Parameters
    ----------
    shape : tuple of int
        Per-sample shape, channels last.
    in_dtype, out_dtype : DataType
    thresholds, direction, out_base
        As in :class:`MatrixVector`, one row per channel.
    pe : int
        Channels processed per cycle.
    """

    kind: ClassVar[str] = "Threshold"
    shape: tuple[int, ...]
    in_dtype: Any
    thresholds: np.ndarray
    direction: np.ndarray
    out_dtype: Any
    out_base: int = 0
    pe: int = 1

    def __post_init__(self):
        super().__post_init__()
        _tuple(self, "shape")
        _check_thresholds(self, self.shape[-1])
        _check_fold(self.name, self.shape[-1], self.pe, "pe")

    @property
    def in_shape(self):
        return self.shape

    @property
    def out_shape(self):
        return self.shape

    def execute(self, x):
        x = self._check_input(x)
        return apply_thresholds(x, self.thresholds, self.direction, self.out_dtype, self.out_base)


def _window_out(size: int, k: int, s: int, p0: int, p1: int) -> int:
    return (size + p0 + p1 - k) // s + 1


@dataclass(frozen=True, kw_only=True, eq=False)
class SlidingWindow(_DataMover, Layer):
    """Convolution input generator (im2col): every output pixel's window, flattened.

    Output element order within a window is (ky, kx, channel), matching the weights of the
    following :class:`MatrixVector`. Padding inserts the value 0.

    Parameters
    ----------
    ifm : tuple of int
        Input feature map ``(H, W, C)``.
    kernel, stride : tuple of int
        ``(KH, KW)`` and ``(SH, SW)``.
    pad : tuple of int
        ``(top, left, bottom, right)``.
    dtype : DataType
    simd : int
        Channels per cycle (divides C).
    """

    kind: ClassVar[str] = "SlidingWindow"
    ifm: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    dtype: Any = None
    simd: int = 1

    def __post_init__(self):
        super().__post_init__()
        _tuple(self, "ifm", 3)
        _tuple(self, "kernel", 2)
        _tuple(self, "stride", 2)
        _tuple(self, "pad", 4)
        if min(self.ifm) < 1 or min(self.kernel) < 1 or min(self.stride) < 1:
            raise ValueError(f"{self.name}: sizes, kernel and stride must be >= 1")
        if self.dtype is None:
            raise ValueError(f"{self.name}: dtype is required")
        if any(self.pad) and self.dtype == BIPOLAR:
            raise ValueError(f"{self.name}: zero padding cannot be represented in BIPOLAR")
        if min(self.out_shape[:2]) < 1:
            raise ValueError(f"{self.name}: kernel {self.kernel} larger than padded input")
        _check_fold(self.name, self.ifm[2], self.simd, "simd")

    @property
    def out_shape(self):
        h, w, c = self.ifm
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.stride, self.pad
        return (_window_out(h, kh, sh, pt, pb), _window_out(w, kw, sw, pl, pr), kh * kw * c)

    def execute(self, x):
        x = self._check_input(x)
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.stride, self.pad
        xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        oh, ow, _ = self.out_shape
        win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
        # win: (N, H', W', C, KH, KW) -> stride, then order (ky, kx, c)
        win = win[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]
        return np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(len(x), oh, ow, -1)


@dataclass(frozen=True, kw_only=True, eq=False)
class MaxPool(_DataMover, Layer):
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
    ifm: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dtype: Any
    pe: int = 1

    def __post_init__(self):
        super().__post_init__()
        _tuple(self, "ifm", 3)
        _tuple(self, "kernel", 2)
        _tuple(self, "stride", 2)
        if min(self.kernel) < 1 or min(self.stride) < 1:
            raise ValueError(f"{self.name}: kernel and stride must be >= 1")
        if min(self.out_shape[:2]) < 1:
            raise ValueError(f"{self.name}: kernel {self.kernel} larger than input {self.ifm}")
        _check_fold(self.name, self.ifm[2], self.pe, "pe")

    @property
    def out_shape(self):
        h, w, c = self.ifm
        (kh, kw), (sh, sw) = self.kernel, self.stride
        return (_window_out(h, kh, sh, 0, 0), _window_out(w, kw, sw, 0, 0), c)

    def execute(self, x):
        x = self._check_input(x)
        (kh, kw), (sh, sw) = self.kernel, self.stride
        oh, ow, _ = self.out_shape
        win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
        win = win[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]
        return win.max(axis=(4, 5))


@dataclass(frozen=True, kw_only=True, eq=False)
class Flatten(_DataMover, Layer):
    """``(H, W, C)`` to ``(H*W*C,)`` in channels-last order (free in hardware: same stream).

    Parameters
    ----------
    ifm : tuple of int
    dtype : DataType
    """

    kind: ClassVar[str] = "Flatten"
    ifm: tuple[int, ...]
    dtype: Any

    def __post_init__(self):
        super().__post_init__()
        _tuple(self, "ifm")

    @property
    def out_shape(self):
        return (int(np.prod(self.ifm)),)

    def execute(self, x):
        x = self._check_input(x)
        return x.reshape(len(x), -1)


LAYER_KINDS: dict[str, type[Layer]] = {
    cls.kind: cls for cls in (MatrixVector, Threshold, SlidingWindow, MaxPool, Flatten)
}

__all__ = [
    "LAYER_KINDS",
    "Flatten",
    "Layer",
    "MatrixVector",
    "MaxPool",
    "SlidingWindow",
    "Threshold",
    "accumulator_range",
    "apply_thresholds",
    "min_acc_dtype",
]
