"""Depthwise convolutions, average pooling and global sums (the streamliner's pooling layers,
:mod:`.streamline`).

A depthwise convolution (``group`` = channels) is a sliding window and a ``VectorVector``
layer; an average pool the same with every weight 1, its ``1 / K`` in the chain's affine, so
it folds exactly into the next thresholds; a global average pool, or a mean or sum over a
set's elements or a map's positions, is a ``GlobalSum`` with its ``1 / N`` folded likewise.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from qonnx.core.datatype import DataType

from ..ir.datatypes import BIPOLAR
from ..kinds import GlobalSum, VectorVector
from ..kinds.global_sum import sum_dtype, value_range
from ..kinds.matrix_vector import accumulator_range, min_acc_dtype
from . import exact
from .exact import Affine
from .graphutil import attrs, const_value, node_error
from .tensors import Chain, IntTensor

GLOBAL_OPS = ("GlobalAveragePool", "ReduceMean", "ReduceSum")
# the axes (of the QONNX tensor) a reduction may sum over, per layout
POSITION_AXES = {"NCHW": {2, 3}, "NCL": {2}, "NSC": {1}}


def _padding_offsets(node, t: IntTensor) -> None:
    if any(attrs(node).get("pads", [0])) and t.has_offsets:
        raise node_error(
            node,
            "its input is the model input after a pre-processing with an offset, and padding "
            "pads with the real value 0, which is no integer of the stated input encoding; "
            "quantize the input first (QuantIdentity) or use padding=0",
        )


def _window_chain(s, node, t, name, weights, w_dtype, ops, sw) -> Chain:
    c = t.shape[-1]
    lo, hi = accumulator_range(weights, t.dtype, False)
    mv = dict(
        name=name,
        weights=weights,
        in_dtype=t.dtype,
        w_dtype=w_dtype,
        acc_dtype=min_acc_dtype(weights, t.dtype, False),
        spatial=sw.out_shape[:2],
    )
    return Chain(t, mv, c, lo, hi, ops, node.output[0], (*sw.out_shape[:2], c), t.layout,
                 make=VectorVector, reads=(sw.name,))  # fmt: skip


def depthwise(s, node, t: IntTensor) -> Chain:
    """A depthwise convolution: ``SlidingWindow`` + ``VectorVector``."""
    c = t.shape[-1]
    w_int, w_scale, w_dtype = s.weights(node)
    group = attrs(node)["group"]
    if group != c or w_int.shape[0] != c or w_int.shape[1] != 1:
        raise node_error(
            node,
            f"grouped convolution (group={group}, {w_int.shape[0]} outputs from {c} channels) "
            "is supported only as a depthwise convolution: groups = in_channels = "
            "out_channels; use groups=1 or groups=channels",
        )
    if t.dtype == BIPOLAR and w_dtype == BIPOLAR:
        raise node_error(
            node,
            "a depthwise convolution of binary (-1/+1) inputs with binary weights is not "
            "supported; use weights or activations of 2 bits or more",
        )
    _padding_offsets(node, t)
    name = s.names.unique(node.name, "layer")
    sw = s.window(node, t, name, kernel=w_int.shape[2:])
    weights = w_int.reshape(c, -1)  # (C, KH * KW), k = ky * KW + kx: the window's order
    ws = exact.fractions(w_scale)
    ops = [Affine([t.scales[i] * ws[i] for i in range(c)], [Fraction(0)] * c)]
    if t.has_offsets:
        rows = weights.sum(axis=1)
        ops.append(Affine([Fraction(1)] * c, [ws[i] * int(rows[i]) * t.offset(i)
                                               for i in range(c)]))  # fmt: skip
    bias_name = node.input[2] if len(node.input) > 2 else ""
    if bias_name:
        bias = np.asarray(const_value(s.model, bias_name))
        ops.append(Affine([Fraction(1)] * c, exact.fractions(bias)))
    return _window_chain(s, node, t, name, weights, w_dtype, ops, sw)


def average_pool(s, node, t: IntTensor) -> Chain:
    """An average pool: ``SlidingWindow`` + ``VectorVector`` of ones; ``1 / K`` in the chain."""
    a = attrs(node)
    if any(a.get("pads", [0])) and not a.get("count_include_pad", 0):
        raise node_error(
            node,
            "padding without count_include_pad: the divisor changes at the borders; use "
            "padding=0, or count_include_pad=True (PyTorch's default)",
        )
    if any(a.get("pads", [0])) and t.dtype == BIPOLAR:
        raise node_error(node, "padding of binary (-1/+1) values; use padding=0")
    _padding_offsets(node, t)
    c, k = t.shape[-1], math.prod(a["kernel_shape"])
    name = s.names.unique(node.name, "avgpool")
    sw = s.window(node, t, name)
    ops = [Affine([t.scales[i] / k for i in range(c)], [t.offset(i) for i in range(c)])]
    weights = np.ones((c, k), np.int64)
    return _window_chain(s, node, t, name, weights, DataType["BINARY"], ops, sw)


def _axes(s, node) -> set[int] | None:
    if node.op_type == "GlobalAveragePool":
        return None
    a = attrs(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = const_value(s.model, node.input[1])
    if axes is None:
        return set()
    rank = len(s.shape(node.input[0]))
    return {int(x) % rank for x in np.ravel(axes)}


def global_sum(s, node, t: IntTensor) -> Chain:
    """A global average pool, or a mean or sum over positions or elements: ``GlobalSum``."""
    axes = _axes(s, node)
    want = POSITION_AXES.get(t.layout)
    if want is None or (axes is not None and axes != want):
        raise node_error(
            node,
            f"a reduction over axes {sorted(axes or [])} of a {t.layout} tensor; gatemill sums "
            "over a set's elements (dim=1 of (N, elements, features)) or over all positions of "
            "a map (dims 2, 3 of (N, C, H, W); dim 2 of (N, C, L))",
        )
    if t.layout == "NSC" and len(s.shape(node.output[0])) != 2:
        raise node_error(node, "a reduction over a set's elements needs keepdim=False")
    if t.perm is not None:
        raise node_error(node, "a reduction of a flattened map; reduce before flattening")
    c, n = t.shape[-1], math.prod(t.shape[:-1])
    mean = node.op_type != "ReduceSum"
    ops = [Affine([t.scales[i] / n if mean else t.scales[i] for i in range(c)],
                  [t.offset(i) * (1 if mean else n) for i in range(c)])]  # fmt: skip
    lo, hi = value_range(t.dtype)
    mv = dict(
        name=s.names.unique(node.name, "globalsum"),
        shape=t.shape,
        in_dtype=t.dtype,
        acc_dtype=sum_dtype(t.dtype, n),
    )
    return Chain(t, mv, c, np.full(c, n * lo), np.full(c, n * hi), ops, node.output[0], (c,),
                 "NC", make=GlobalSum, reads=(t.layer,))  # fmt: skip
