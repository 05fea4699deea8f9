"""Validation helpers for the frozen, keyword-only params dataclasses of the IR.

They run in ``__post_init__`` and store the normalized value with ``object.__setattr__``
(the dataclasses are frozen).
"""

from __future__ import annotations

import numpy as np


def freeze(obj, name: str, value, dtype=np.int64) -> None:
    """Store *value* on *obj* as a read-only copy of dtype *dtype*."""
    arr = np.array(value, dtype=dtype, copy=True)
    arr.flags.writeable = False
    object.__setattr__(obj, name, arr)


def int_tuple(obj, name: str, n: int | None = None) -> None:
    """Store ``obj.<name>`` as a tuple of non-negative ints (of length *n* when given)."""
    value = tuple(int(v) for v in getattr(obj, name))
    if n is not None and len(value) != n:
        raise ValueError(f"{name} must have {n} entries, not {value!r}")
    if any(v < 0 for v in value):
        raise ValueError(f"{name} must be non-negative, not {value!r}")
    object.__setattr__(obj, name, value)


def check_divisor(name: str, total: int, fold, what: str) -> None:
    """Raise ``ValueError`` unless *fold* is a positive divisor of *total*."""
    if not isinstance(fold, int) or isinstance(fold, bool) or fold < 1 or total % fold:
        raise ValueError(f"{name}: {what} must be a positive divisor of {total}, not {fold!r}")


def divisors(n: int) -> list[int]:
    """All positive divisors of *n*, ascending."""
    return [d for d in range(1, n + 1) if n % d == 0]
