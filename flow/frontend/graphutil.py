"""Small queries on a qonnx ``ModelWrapper`` used by the support check and the streamliner."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.bipolar_quant import binary_quant
from qonnx.custom_op.general.quant import quant

from ..errors import GatemillError
from .load import QUANT_OPS

# the ops that make a 3-D tensor (N, C, L) a 1-D signal; otherwise it is a set (N, S, F)
SIGNAL_OPS = ("Conv", "MaxPool", "AveragePool", "GlobalAveragePool")


def attrs(node) -> dict:
    """A node's attributes as plain Python values (strings decoded)."""
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def const_value(model: ModelWrapper, name: str) -> np.ndarray | None:
    """The value of tensor *name* if it is constant: an initializer, or a quantizer applied to
    constants (a quantized bias), computed as qonnx computes it. ``None`` otherwise."""
    if not name:
        return None
    value = model.get_initializer(name)
    if value is not None:
        return value
    node = model.find_producer(name)
    if node is None or node.op_type not in QUANT_OPS:
        return None
    args = [model.get_initializer(i) for i in node.input]
    if any(a is None for a in args):
        return None
    if node.op_type == "BipolarQuant":
        return binary_quant(*args).astype(np.float32)
    a = attrs(node)
    return quant(*args, a.get("signed", 1), a.get("narrow", 0), a.get("rounding_mode", "ROUND"))


def per_channel(value: np.ndarray, shape: tuple[int, ...], axis: int, what: str) -> np.ndarray:
    """*value* broadcast to *shape*, as one entry per index of *axis*.

    Raises ``ValueError`` naming *what* if the value varies along any other axis.
    """
    v = np.broadcast_to(np.asarray(value), shape)
    v = np.moveaxis(v, axis, 0).reshape(shape[axis], -1)
    if not np.all(v == v[:, :1]):
        raise ValueError(f"{what} varies along an axis other than the channel axis")
    return v[:, 0].copy()


def data_consumer(model: ModelWrapper, tensor: str):
    """The single node reading *tensor*, or ``None`` at the graph output."""
    consumers = model.find_consumers(tensor) or []
    return consumers[0] if consumers else None


def node_error(node, msg: str) -> GatemillError:
    """The error for *node*: its name and operator, then *msg*."""
    return GatemillError(f"node {node.name!r} ({node.op_type}): {msg}")


def layout_of(model: ModelWrapper, tensor: str) -> str:
    """The layout of the data tensor *tensor* (see ``tensors.CHANNEL_AXIS``) by its rank; a
    3-D tensor is a signal (``NCL``) if a convolution or pooling reads it before any dense
    layer does, else a set of elements (``NSC``)."""
    rank = len(model.get_tensor_shape(tensor))
    if rank != 3:
        return {2: "NC", 4: "NCHW"}.get(rank, "")
    todo, seen = [tensor], set()
    while todo:
        for node in model.find_consumers(todo.pop()) or []:
            if node.op_type in SIGNAL_OPS:
                return "NCL"
            if node.op_type in ("MatMul", "Gemm", "ReduceMean", "ReduceSum") or node.name in seen:
                continue
            seen.add(node.name)
            todo.extend(node.output)
    return "NSC"


def ir_shape(shape, layout: str) -> tuple[int, ...]:
    """The IR's per-sample shape (channels last) of a QONNX *shape* (with the batch axis)."""
    if layout == "NCHW":
        return (*shape[2:], shape[1])
    if layout == "NCL":
        return (1, shape[2], shape[1])
    return tuple(shape[1:])
