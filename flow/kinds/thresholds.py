"""Multi-threshold activations: the semantics shared by every kind that ends in one
(:class:`~gatemill.flow.kinds.matrix_vector.MatrixVector`,
:class:`~gatemill.flow.kinds.threshold.Threshold`).

A channel ``c`` with thresholds ``T[c, 0..T-1]`` maps a value to the number of thresholds it
passes: ``value >= T[c, t]`` for direction ``+1``, ``value <= T[c, t]`` for ``-1`` (a negative
scale flips the comparison). The output is ``out_base + count``, or ``2 * count - 1`` for a
BIPOLAR output.
"""

from __future__ import annotations

import numpy as np

from ..ir.datatypes import BIPOLAR, check_values
from ..ir.fields import freeze


def apply_thresholds(acc, thresholds, direction, out_dtype, out_base) -> np.ndarray:
    """Count the thresholds each value of *acc* (channels last) passes (see the module)."""
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


def check_activation(layer, channels: int, raw: str = "accumulator") -> None:
    """Validate the output of a layer that sums: with ``thresholds`` (checked by
    :func:`check_thresholds`) an ``out_dtype`` is needed; without them the output is the
    *raw* value itself, ``acc_dtype`` (filled in when ``out_dtype`` is None)."""
    if layer.thresholds is None:
        if layer.direction is not None:
            raise ValueError(f"{layer.name}: direction given without thresholds")
        if layer.out_dtype is None:
            object.__setattr__(layer, "out_dtype", layer.acc_dtype)
        elif layer.out_dtype != layer.acc_dtype:
            raise ValueError(f"{layer.name}: without thresholds the output is the {raw}")
    else:
        if layer.out_dtype is None:
            raise ValueError(f"{layer.name}: thresholds need an out_dtype")
        check_thresholds(layer, channels)


def check_thresholds(layer, channels: int) -> None:
    """Validate and freeze ``thresholds``, ``direction``, ``out_dtype``, ``out_base`` of
    *layer* for *channels* channels."""
    freeze(layer, "thresholds", layer.thresholds)
    t = layer.thresholds
    if t.ndim != 2 or t.shape[0] != channels or t.shape[1] < 1:
        raise ValueError(f"{layer.name}: thresholds must be [{channels}, T>=1], not {t.shape}")
    freeze(layer, "direction", layer.direction)
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


def fold_channels(values: np.ndarray, pe: int) -> np.ndarray:
    """Per-channel rows ``[C, ...]`` as ``[C / pe, pe, ...]``: fold ``nf``, lane ``p`` holds
    channel ``nf * pe + p`` (the order a unit with *pe* lanes produces its channels in)."""
    values = np.asarray(values)
    return values.reshape(values.shape[0] // pe, pe, *values.shape[1:])
