"""``LutLayer``: a layer of sparse neurons, each an explicit truth table over a few inputs.

One params class serves both published LUT families: LogicNets-style sparse neurons (a dense
layer whose neurons read a few low-bit inputs, enumerated at import) and PoET-BiN heads
(level-shared decision trees and their weighted-majority tables). The hardware implements the
tables directly in FPGA LUTs (:mod:`gatemill.hdl.lut_layer`).

Address convention (shared by the golden model, the import and the RTL): input ``j`` of a
neuron (its ``j``-th index) contributes its code, as :func:`~gatemill.flow.ir.datatypes.encode`
gives it (two's complement, or 1 for +1 / 0 for -1 when BIPOLAR), at address bits
``[j * b, (j + 1) * b)`` where ``b`` is the input width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .datatypes import check_values, decode, encode
from .layers import Layer, _freeze

MAX_ADDRESS_BITS = 16
"""Largest table address (fan-in times input bits) the IR accepts: 2**16 entries per neuron."""


def neuron_inputs(in_dtype, fanin: int) -> np.ndarray:
    """Every input combination of a neuron, in address order.

    Parameters
    ----------
    in_dtype : DataType
        Datatype of each input.
    fanin : int
        Inputs per neuron.

    Returns
    -------
    ndarray of int64, shape (2 ** (fanin * bits), fanin)
        Row ``a`` holds the input values whose codes make address ``a``.
    """
    bits = in_dtype.bitwidth()
    addr = np.arange(1 << (fanin * bits), dtype=np.uint64)[:, None]
    shifts = (np.arange(fanin, dtype=np.uint64) * np.uint64(bits))[None, :]
    codes = (addr >> shifts) & np.uint64((1 << bits) - 1)
    return decode(codes, in_dtype)


@dataclass(frozen=True, kw_only=True, eq=False)
class LutLayer(Layer):
    """Sparse neurons given by their input indices and an explicit truth table each.

    Parameters
    ----------
    in_features : int
        Length of the input vector.
    indices : ndarray of int, shape (N, K)
        Input indices of each of the ``N`` neurons (distinct within a neuron); ``K`` is the
        fan-in, the same for every neuron of the layer.
    tables : ndarray of int, shape (N, 2 ** (K * b))
        Output value of each neuron for every address (see the module documentation), as a
        value of ``out_dtype`` (-1/+1 when BIPOLAR).
    in_dtype, out_dtype : DataType
        Datatypes of every input and every output; ``b = in_dtype.bitwidth()``.
    pipeline : bool
        Hardware only: split each table after its first LUT level with a register (one more
        cycle of latency, a shorter clock path for wide tables).
    """

    kind: ClassVar[str] = "LutLayer"
    in_features: int
    indices: np.ndarray
    tables: np.ndarray
    in_dtype: Any
    out_dtype: Any
    pipeline: bool = False

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.in_features, bool) or int(self.in_features) < 1:
            raise ValueError(f"{self.name}: in_features must be >= 1, not {self.in_features!r}")
        object.__setattr__(self, "in_features", int(self.in_features))
        if self.pipeline not in (0, 1, False, True):
            raise ValueError(f"{self.name}: pipeline must be a bool, not {self.pipeline!r}")
        object.__setattr__(self, "pipeline", bool(self.pipeline))
        _freeze(self, "indices", self.indices)
        idx = self.indices
        if idx.ndim != 2 or 0 in idx.shape:
            raise ValueError(f"{self.name}: indices must be a non-empty [N, K] array")
        if idx.min() < 0 or idx.max() >= self.in_features:
            raise ValueError(f"{self.name}: indices must lie in [0, {self.in_features})")
        ordered = np.sort(idx, axis=1)
        if np.any(ordered[:, 1:] == ordered[:, :-1]):
            n = int(np.nonzero(np.any(ordered[:, 1:] == ordered[:, :-1], axis=1))[0][0])
            raise ValueError(f"{self.name}: neuron {n} reads an input twice")
        if self.address_bits > MAX_ADDRESS_BITS:
            raise ValueError(
                f"{self.name}: {self.fanin} inputs of {self.in_dtype.bitwidth()} bits make "
                f"{self.address_bits} address bits, more than {MAX_ADDRESS_BITS}"
            )
        _freeze(self, "tables", self.tables)
        want = (self.neurons, 1 << self.address_bits)
        if self.tables.shape != want:
            raise ValueError(f"{self.name}: tables must have shape {want}, not {self.tables.shape}")
        check_values(f"{self.name} tables", self.tables, self.out_dtype)

    @property
    def neurons(self) -> int:
        """Number of neurons (output length)."""
        return int(self.indices.shape[0])

    @property
    def fanin(self) -> int:
        """Inputs per neuron."""
        return int(self.indices.shape[1])

    @property
    def address_bits(self) -> int:
        """Table address width: fan-in times input bits."""
        return self.fanin * self.in_dtype.bitwidth()

    @property
    def in_shape(self):
        return (self.in_features,)

    @property
    def out_shape(self):
        return (self.neurons,)

    def addresses(self, x: np.ndarray) -> np.ndarray:
        """Table address of every neuron, ``(batch, N)``, for a batch of inputs."""
        x = self._check_input(x)
        bits = self.in_dtype.bitwidth()
        codes = encode(x[:, self.indices], self.in_dtype)  # (batch, N, K)
        shifts = np.arange(self.fanin, dtype=np.uint64) * np.uint64(bits)
        return (codes << shifts).sum(axis=-1, dtype=np.uint64).astype(np.int64)

    def execute(self, x):
        addr = self.addresses(x)
        return self.tables[np.arange(self.neurons), addr]


__all__ = ["MAX_ADDRESS_BITS", "LutLayer", "neuron_inputs"]
