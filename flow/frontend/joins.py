"""Where branches meet: a residual ``Add`` of two quantized streams and a ``Concat`` along the
channels (the streamliner's joins, :mod:`.streamline`).

An input of a join is an integer tensor, or a chain that is affine with one scale for every
channel (a branch whose accumulator is not requantized before the join: its layer is built
without thresholds, and its accumulator is the integer). ``s0 * q0 + s1 * q1`` is
``g * (a0 * q0 + a1 * q1)`` with integer coefficients when ``s0 / s1`` is a ratio of small
integers (equal or power-of-two scales), and the Add's accumulator then carries the sum
exactly; the scale ``g``, the offsets and whatever follows fold into the next thresholds.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..ir import dtype_for_range
from ..ir.datatypes import BIPOLAR
from ..kinds import Add, Concat, MatrixVector
from ..kinds.add import sum_range
from . import exact
from .exact import Affine
from .graphutil import attrs, node_error
from .tensors import CHANNEL_AXIS, Chain, IntTensor

MAX_COEFFICIENT = 256
SAME_SCALE = (
    "give the branches the same scale (one quantizer shared by both, e.g. the same "
    "QuantIdentity or act_quant) or power-of-two scales (e.g. Int8ActPerTensorFixedPoint)"
)


def join(s, node, args: list):
    """The value of the join *node* of the values *args* (the streamliner *s* emits layers)."""
    if node.op_type == "Add" and len(args) == 2:
        return add(s, node, *args)
    if node.op_type == "Concat":
        return concat(s, node, args)
    raise node_error(
        node,
        f"it takes {len(args)} computed tensors; branches join only by Add (a residual "
        "connection of two quantized tensors) or by Concat along the channels",
    )


def materialize(s, node, value, what: str) -> IntTensor:
    """*value* as an integer tensor with one scale for every channel (its offsets per
    channel): a chain's pending layer is built without thresholds (its output is the
    accumulator); a chain of a ReLU or Clip, or scaled per channel, is refused, *what* naming
    the value in the message."""
    if isinstance(value, IntTensor):
        if len(set(value.scales)) != 1:
            raise node_error(
                node,
                f"{what} has per-channel scales; use per-tensor activation quantizers on both "
                "branches of a residual Add",
            )
        return value
    try:
        a, b = exact.compose_affine(value.ops, value.channels)
    except ValueError:
        raise node_error(
            node,
            f"{what} passes a ReLU or Clip with no quantizer after it; quantize it "
            "(QuantReLU, QuantIdentity) first",
        ) from None
    if len(set(a)) != 1 or a[0] == 0:
        raise node_error(
            node,
            f"{what} is scaled per channel (a BatchNorm or a per-channel weight scale with no "
            "quantizer after it); quantize it with a per-tensor quantizer (QuantIdentity) first",
        )
    offsets = b if any(b) else None
    if value.mv is None:
        src = value.source
        return IntTensor(value.tensor, src.dtype, a, src.shape, src.layout, src.perm, offsets,
                         layer=src.layer)  # fmt: skip
    layer = (value.make or MatrixVector)(**value.mv)
    index = s.emit(layer, value.reads)
    s.probe(index, value.tensor, a, b, value.layout)
    return IntTensor(value.tensor, layer.out_dtype, a, value.shape, value.layout, None, offsets,
                     layer=layer.name)  # fmt: skip


def coefficients(s0: Fraction, s1: Fraction) -> tuple[Fraction, int, int]:
    """``(g, a0, a1)``: the largest ``g`` with integers ``a0 = s0 / g`` and ``a1 = s1 / g``."""
    n = math.gcd(s0.numerator * s1.denominator, s1.numerator * s0.denominator)
    g = Fraction(n, s0.denominator * s1.denominator)
    return g, int(s0 / g), int(s1 / g)


def add(s, node, x0, x1) -> Chain:
    """A residual Add: an ``Add`` layer whose accumulator waits for the next quantizer."""
    v0, v1 = (materialize(s, node, x, f"input {k}") for k, x in enumerate((x0, x1)))
    shapes = {tuple(s.shape(i)) for i in node.input} | {tuple(s.shape(node.output[0]))}
    if len(shapes) != 1 or v0.shape != v1.shape or v0.layout != v1.layout:
        raise node_error(node, "its inputs differ in shape; an Add joins tensors of one shape")
    if v0.perm is not None or v1.perm is not None:
        raise node_error(node, "its inputs are flattened maps; add the maps before flattening")
    g, a0, a1 = coefficients(v0.scales[0], v1.scales[0])
    if max(abs(a0), abs(a1)) > MAX_COEFFICIENT:
        raise node_error(
            node,
            f"its inputs' scales {float(v0.scales[0]):g} and {float(v1.scales[0]):g} are not "
            f"in a ratio of small integers ({a0}:{a1}; the Add takes integer coefficients up "
            f"to {MAX_COEFFICIENT}); {SAME_SCALE}",
        )
    dtypes = (v0.dtype, v1.dtype)
    lo, hi = sum_range(dtypes, (a0, a1))
    c = v0.shape[-1]
    mv = dict(
        name=s.names.unique(node.name, "add"),
        shape=v0.shape,
        dtypes=dtypes,
        coefficients=(a0, a1),
        acc_dtype=dtype_for_range(min(lo, 0), max(hi, 1)),
    )
    ops = [Affine([g] * c, [v0.offset(i) + v1.offset(i) for i in range(c)])]
    return Chain(None, mv, c, np.full(c, lo), np.full(c, hi), ops, node.output[0], v0.shape,
                 v0.layout, make=Add, reads=(v0.layer, v1.layer))  # fmt: skip


def concat(s, node, args: list) -> IntTensor:
    """A ``Concat`` of quantized tensors of one scale along the channels."""
    for k, v in enumerate(args):
        if not isinstance(v, IntTensor):
            raise node_error(
                node,
                f"input {k} is not quantized; quantize each branch (QuantReLU, QuantIdentity) "
                "before the concatenation",
            )
    layout = args[0].layout
    rank = len(s.shape(node.output[0]))
    axis = attrs(node).get("axis", 1) % rank
    if any(v.layout != layout for v in args) or axis != CHANNEL_AXIS[layout] % rank:
        raise node_error(
            node, f"concatenation along axis {axis}; only the channel axis is supported"
        )
    spatial = args[0].shape[:-1]
    if any(v.shape[:-1] != spatial for v in args):
        raise node_error(node, "its inputs differ in size; concatenate maps of one size")
    scales = [x for v in args for x in v.scales]
    if len(set(scales)) != 1:
        raise node_error(
            node,
            "its inputs have different scales "
            f"({', '.join(f'{float(v.scales[0]):g}' for v in args)}); give the branches one "
            "scale (one quantizer shared by all, or quantizers of equal scale)",
        )
    bipolar = [v.dtype == BIPOLAR for v in args]
    if any(bipolar) and not all(bipolar):
        raise node_error(node, "it joins binary (-1/+1) and integer tensors; quantize alike")
    dtype = BIPOLAR if all(bipolar) else dtype_for_range(
        min(int(v.dtype.min()) for v in args), max(int(v.dtype.max()) for v in args)
    )  # fmt: skip
    offsets = None
    if any(v.has_offsets for v in args):
        offsets = [v.offset(c) for v in args for c in range(v.shape[-1])]
    perm = None
    if any(v.perm is not None for v in args):
        parts, start = [], 0
        for v in args:
            n = v.shape[-1]
            parts.append((np.arange(n) if v.perm is None else v.perm) + start)
            start += n
        perm = np.concatenate(parts)
    layer = Concat(
        name=s.names.unique(node.name, "concat"),
        spatial=spatial,
        channels=tuple(v.shape[-1] for v in args),
        dtypes=tuple(v.dtype for v in args),
        dtype=dtype,
    )
    index = s.emit(layer, tuple(v.layer for v in args))
    s.probe(index, node.output[0], scales, offsets, layout)
    return IntTensor(node.output[0], dtype, scales, layer.out_shape, layout, perm, offsets,
                     layer=layer.name)  # fmt: skip
