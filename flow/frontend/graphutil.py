"""Small queries on a qonnx ``ModelWrapper`` used by the support check and the streamliner."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.bipolar_quant import binary_quant
from qonnx.custom_op.general.quant import quant

from .load import QUANT_OPS


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
