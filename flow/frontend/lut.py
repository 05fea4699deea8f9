"""Mapping LUT-sized neurons of a QONNX graph to :class:`~gatemill.flow.ir.LutLayer`.

Two forms reach the same layer:

- **Sparse dense layers** (LogicNets): after streamlining, a dense ``MatrixVector`` whose every
  neuron reads few inputs (its non-zero weights) is replaced by a ``LutLayer`` when the
  neuron's input bits (fan-in times input width) are at most a limit, ``LUT_BITS`` by default.
  Each truth table is enumerated with the golden model of the layer (a one-neuron
  ``MatrixVector`` with the neuron's own thresholds), so BatchNorm, biases and the quantizer
  are all inside the table. A layer whose neurons read more than half of its inputs stays a
  ``MatrixVector``: it is a dense layer, and folding applies to it.
- **Gather tables** (PoET-BiN heads exported with standard ONNX operators): the pattern
  ``MatMul(x, P) -> [Add(c)] -> Cast(int) -> Gather(table, axis 0)`` where column ``t`` of the
  constant ``P`` selects neuron ``t``'s inputs and packs them into an index. Each neuron's
  table is enumerated by evaluating that subgraph exactly (rationals of the float32
  constants) for every combination of its inputs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from onnx import TensorProto
from qonnx.core.modelwrapper import ModelWrapper

from ..errors import GatemillError
from ..ir import IRGraph, dtype_for_range
from ..ir.datatypes import BIPOLAR
from ..kinds import LutLayer, MatrixVector
from ..kinds.lut_layer import MAX_ADDRESS_BITS, neuron_inputs
from .graphutil import attrs, data_consumer
from .tensors import IntTensor, Probe

LUT_BITS = 12
"""Default limit on a neuron's input bits for it to become a truth table."""

INDEX_TYPES = (TensorProto.INT64, TensorProto.INT32)


def check_lut_bits(lut_bits: int) -> int:
    """Validate the limit: 0 (no sparse layer becomes a table) to ``MAX_ADDRESS_BITS``."""
    if isinstance(lut_bits, bool) or not isinstance(lut_bits, int):
        raise GatemillError(f"the LUT input-bit limit must be an integer, not {lut_bits!r}.")
    if not 0 <= lut_bits <= MAX_ADDRESS_BITS:
        raise GatemillError(
            f"the LUT input-bit limit must be 0 (off) to {MAX_ADDRESS_BITS}, not {lut_bits}."
        )
    return lut_bits


# -- sparse dense layers ---------------------------------------------------------------------


def sparse_fanin(layer, lut_bits: int = LUT_BITS) -> int | None:
    """The fan-in a ``LutLayer`` would need for *layer*, or None if it stays as it is.

    A layer qualifies when it is dense (no spatial dimensions), sparse (every neuron reads at
    most half of the inputs: a neuron reading more is a dense one with a few zero weights,
    better left to a folded matrix-vector unit) and its widest neuron reads at most
    *lut_bits* input bits.
    """
    if not isinstance(layer, MatrixVector) or layer.spatial or layer.binary:
        return None
    fanin = int(np.count_nonzero(layer.weights, axis=1).max())
    if 2 * fanin > layer.mw or fanin * layer.in_dtype.bitwidth() > lut_bits:
        return None
    return max(fanin, 1)


def _padded_indices(weights: np.ndarray, fanin: int) -> np.ndarray:
    """Each row's non-zero columns, padded with unread columns (which the table ignores)."""
    rows = []
    for w in weights:
        used = np.flatnonzero(w)
        spare = np.setdiff1d(np.arange(len(w)), used)[: fanin - len(used)]
        rows.append(np.concatenate([used, spare]))
    return np.array(rows, dtype=np.int64)


def matrix_vector_to_lut(layer: MatrixVector, fanin: int) -> LutLayer:
    """The ``LutLayer`` computing exactly what *layer* computes, neurons of *fanin* inputs."""
    indices = _padded_indices(layer.weights, fanin)
    inputs = neuron_inputs(layer.in_dtype, fanin)
    tables = np.empty((layer.mh, len(inputs)), np.int64)
    for n, idx in enumerate(indices):
        # the neuron alone, as a one-row layer: its golden model gives its truth table
        row = dict(
            name=layer.name,
            weights=layer.weights[n : n + 1, idx],
            in_dtype=layer.in_dtype,
            w_dtype=layer.w_dtype,
            acc_dtype=layer.acc_dtype,
        )
        if layer.thresholds is not None:
            row.update(
                thresholds=layer.thresholds[n : n + 1],
                direction=layer.direction[n : n + 1],
                out_dtype=layer.out_dtype,
                out_base=layer.out_base,
            )
        tables[n] = MatrixVector(**row).execute(inputs)[:, 0]
    return LutLayer(
        name=layer.name,
        in_features=layer.mw,
        indices=indices,
        tables=tables,
        in_dtype=layer.in_dtype,
        out_dtype=layer.out_dtype,
    )


def lutify(ir: IRGraph, lut_bits: int = LUT_BITS) -> tuple[IRGraph, list[int]]:
    """Replace every qualifying sparse layer of *ir* (see :func:`sparse_fanin`).

    Returns
    -------
    IRGraph
        The graph with the replaced layers (same positions, names and outputs).
    list of int
        Indices of the replaced layers.
    """
    check_lut_bits(lut_bits)
    layers, done = list(ir.layers), []
    for i, layer in enumerate(layers):
        fanin = sparse_fanin(layer, lut_bits)
        if fanin is not None:
            layers[i] = matrix_vector_to_lut(layer, fanin)
            done.append(i)
    if not done:
        return ir, done
    return dataclasses.replace(ir, layers=tuple(layers)), done


# -- Gather tables ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GatherLut:
    """A matched ``MatMul -> [Add] -> Cast -> Gather`` table lookup."""

    nodes: tuple  # the matched nodes, MatMul first, Gather last
    select: np.ndarray  # P: (inputs, neurons)
    offset: np.ndarray  # c: (neurons,)
    table: np.ndarray  # (entries,)

    @property
    def output(self) -> str:
        return self.nodes[-1].output[0]


def _init(model: ModelWrapper, name: str) -> np.ndarray | None:
    return None if not name else model.get_initializer(name)


def match_gather_lut(model: ModelWrapper, node) -> GatherLut | None:
    """The Gather-table pattern starting at the ``MatMul`` *node*, or None."""
    if node.op_type != "MatMul":
        return None
    select = _init(model, node.input[1])
    if select is None or select.ndim != 2 or _init(model, node.input[0]) is not None:
        return None
    nodes, tensor = [node], node.output[0]
    offset = np.zeros(select.shape[1])
    nxt = data_consumer(model, tensor)
    if nxt is not None and nxt.op_type == "Add":
        other = nxt.input[1] if nxt.input[0] == tensor else nxt.input[0]
        c = _init(model, other)
        if c is None or c.size not in (1, select.shape[1]):
            return None
        offset = np.broadcast_to(c.reshape(-1), (select.shape[1],)).astype(np.float64)
        nodes.append(nxt)
        tensor = nxt.output[0]
        nxt = data_consumer(model, tensor)
    if nxt is None or nxt.op_type != "Cast" or attrs(nxt).get("to") not in INDEX_TYPES:
        return None
    nodes.append(nxt)
    gather = data_consumer(model, nxt.output[0])
    if gather is None or gather.op_type != "Gather" or gather.input[1] != nxt.output[0]:
        return None
    table = _init(model, gather.input[0])
    if table is None or table.ndim != 1 or attrs(gather).get("axis", 0) != 0:
        return None
    nodes.append(gather)
    return GatherLut(tuple(nodes), select.astype(np.float64), offset, table.astype(np.float64))


def node_key(node) -> tuple[str, ...]:
    """A node's identity that survives protobuf's wrappers: its output tensors (unique)."""
    return tuple(node.output)


def gather_lut_nodes(model: ModelWrapper) -> set[tuple[str, ...]]:
    """:func:`node_key` of every node in a Gather-table pattern (for the support check)."""
    keys: set[tuple[str, ...]] = set()
    for node in model.graph.node:
        m = match_gather_lut(model, node)
        if m is not None:
            keys.update(node_key(n) for n in m.nodes)
    return keys


def _err(node, msg: str) -> GatemillError:
    return GatemillError(f"node {node.name!r} ({node.op_type}): {msg}")


def _integer_combination(coefs: list[Fraction], const: Fraction, inputs: np.ndarray):
    """``inputs @ coefs + const`` exactly, as integers times ``1 / denominator``."""
    den = math.lcm(*(q.denominator for q in [*coefs, const]))
    a = [int(q * den) for q in coefs]
    c = int(const * den)
    bound = (sum(abs(v) for v in a) * int(np.abs(inputs).max(initial=1)) + abs(c)) * 2
    # exact Python integers when int64 might overflow
    dtype = np.int64 if bound < 2**62 else object
    num = inputs.astype(dtype) @ np.array(a, dtype=dtype) + c
    return num, den


def gather_layer(s, match: GatherLut, t):
    """Append the ``LutLayer`` of a matched Gather table to the streamliner *s*.

    *t* is the quantized tensor the ``MatMul`` reads. Returns the quantized tensor at the
    ``Gather`` output (integers, scale 1).
    """
    node, gather = match.nodes[0], match.nodes[-1]
    if not isinstance(t, IntTensor):
        raise _err(node, "a table lookup needs quantized inputs; quantize its input first")
    if t.layout != "NC":
        raise _err(node, "a table lookup needs a flat input; add Flatten before it")
    select = match.select if t.perm is None else match.select[t.perm]
    if select.shape[0] != t.shape[-1]:
        raise _err(node, f"{select.shape[0]} rows for an input of {t.shape[-1]} values")
    neurons, entries = select.shape[1], len(match.table)
    reads = [np.flatnonzero(select[:, n]) for n in range(neurons)]
    fanin = max(1, max(len(r) for r in reads))
    bits = t.dtype.bitwidth()
    if fanin * bits > MAX_ADDRESS_BITS:
        raise _err(
            node,
            f"a neuron reads {fanin} inputs of {bits} bits ({fanin * bits} address bits); "
            f"a table may have at most {MAX_ADDRESS_BITS}",
        )
    if not np.all(np.isfinite(match.table)) or np.any(match.table != np.round(match.table)):
        raise _err(gather, "the table holds non-integer values; store integer levels")
    table = match.table.astype(np.int64)
    inputs = neuron_inputs(t.dtype, fanin)
    indices = np.empty((neurons, fanin), np.int64)
    tables = np.empty((neurons, len(inputs)), np.int64)
    for n, used in enumerate(reads):
        spare = np.setdiff1d(np.arange(t.shape[-1]), used)[: fanin - len(used)]
        indices[n] = np.concatenate([used, spare])
        # index = sum_j P[j, n] * scale_j * x_j + c[n], exactly; unread inputs weigh 0
        coefs = [Fraction(float(select[j, n])) * t.scales[j] for j in indices[n]]
        const = Fraction(float(match.offset[n])) + sum(
            (Fraction(float(select[j, n])) * t.offset(j) for j in indices[n]), Fraction(0)
        )
        num, den = _integer_combination(coefs, const, inputs)
        if np.any(num % den != 0):
            raise _err(
                node,
                f"the index of output {n} is not an integer for every input; the table "
                "lookup needs weights and offsets that pack the inputs into whole numbers",
            )
        index = (num // den).astype(np.int64)
        if index.min() < -entries or index.max() >= entries:
            raise _err(gather, f"output {n} indexes outside the table of {entries} entries")
        tables[n] = table[np.where(index < 0, index + entries, index)]
    lo, hi = int(tables.min()), int(tables.max())
    out_dtype = BIPOLAR if set(np.unique(tables)) <= {-1, 1} else dtype_for_range(lo, hi)
    layer = LutLayer(
        name=s.names.unique(gather.name, "lut"),
        in_features=t.shape[-1],
        indices=indices,
        tables=tables,
        in_dtype=t.dtype,
        out_dtype=out_dtype,
    )
    index = s.emit(layer, (t.layer,))
    ones = np.ones(neurons)
    s.probes.append(Probe(index, match.output, ones, np.zeros(neurons), "NC"))
    return IntTensor(
        match.output, out_dtype, [Fraction(1)] * neurons, (neurons,), "NC", layer=layer.name
    )


__all__ = [
    "LUT_BITS",
    "GatherLut",
    "check_lut_bits",
    "gather_layer",
    "gather_lut_nodes",
    "lutify",
    "match_gather_lut",
    "matrix_vector_to_lut",
    "sparse_fanin",
]
