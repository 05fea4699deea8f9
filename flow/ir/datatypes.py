"""Integer datatypes of the IR, reusing qonnx's ``DataType`` (INTn, UINTn, BIPOLAR, BINARY).

BIPOLAR values are the true values -1/+1 everywhere in the IR and the golden model; only the
hardware packs them as one bit (0 for -1, 1 for +1).
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType

BIPOLAR = DataType["BIPOLAR"]


def dtype_from_name(name: str):
    """Return the qonnx ``DataType`` called *name* (e.g. ``"INT4"``, ``"BIPOLAR"``)."""
    return DataType[name]


def dtype_for_range(lo: int, hi: int):
    """Smallest integer datatype holding every value in ``[lo, hi]``.

    Unsigned when ``lo >= 0``; at least 1 bit (``BINARY`` for ``[0, 1]``).
    """
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if lo >= 0:
        bits = max(1, int(hi).bit_length())
        return DataType["BINARY"] if bits == 1 else DataType[f"UINT{bits}"]
    bits = 1 + max((-lo - 1).bit_length(), hi.bit_length())
    return DataType[f"INT{max(bits, 2)}"]


def storage_bits(dt) -> int:
    """Bits one value of *dt* takes on a wire (1 for BIPOLAR)."""
    return dt.bitwidth()


def encode(values: np.ndarray, dt) -> np.ndarray:
    """Two's-complement (or bipolar 0/1) codes of *values* as unsigned integers."""
    v = np.asarray(values, dtype=np.int64)
    if dt == BIPOLAR:
        return ((v + 1) // 2).astype(np.uint64)
    return (v & ((1 << dt.bitwidth()) - 1)).astype(np.uint64)


def decode(codes: np.ndarray, dt) -> np.ndarray:
    """Inverse of :func:`encode`."""
    c = np.asarray(codes, dtype=np.int64)
    if dt == BIPOLAR:
        return 2 * c - 1
    bits = dt.bitwidth()
    if dt.signed():
        return np.where(c >= (1 << (bits - 1)), c - (1 << bits), c)
    return c


def check_values(name: str, values: np.ndarray, dt) -> None:
    """Raise ``ValueError`` if any element of *values* is not representable in *dt*."""
    v = np.asarray(values)
    ok = dt.allowed(v)
    if not np.all(ok):
        bad = v[~ok].flat[0]
        raise ValueError(f"{name}: value {bad!r} is not a {dt.name}")
