"""``LutLayer``: a layer of sparse neurons, each an explicit truth table over a few inputs;
unit :class:`gatemill.hdl.lut_layer.LutLayerUnit` (one sample a clock), kernel
``gm_lut_layer.h``.

One params class serves both published LUT families: LogicNets-style sparse neurons (a dense
layer whose neurons read a few low-bit inputs, enumerated at import) and PoET-BiN heads
(level-shared decision trees and their weighted-majority tables). The hardware implements the
tables directly in FPGA LUTs.

Address convention (shared by the golden model, the import and the RTL): input ``j`` of a
neuron (its ``j``-th index) contributes its code, as :func:`~gatemill.flow.ir.datatypes.encode`
gives it (two's complement, or 1 for +1 / 0 for -1 when BIPOLAR), at address bits
``[j * b, (j + 1) * b)`` where ``b`` is the input width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...hdl.common import pipelined_times
from ..hls.model import Array, Config, ctype, ident, uconst
from ..ir.datatypes import BIPOLAR, check_values, decode, encode
from ..ir.fields import freeze
from . import resources as rs
from .base import Layer

MAX_ADDRESS_BITS = 16
"""Largest table address (fan-in times input bits) the IR accepts: 2**16 entries per neuron."""
LUT_INPUTS = 6
"""Inputs of an FPGA LUT: where a pipelined table is cut, and what the cost counts in."""
MUX_BITS = 3
"""Upper address bits one pipeline stage of a cut table selects on: an 8:1 multiplexer, one
LUT6-sized level (on the ECP5 four LUT4s, two PFUMX and an L6MUX21; on Xilinx parts two LUT6
and a MUXF7)."""
PIPELINE_ABOVE_MHZ = {"ecp5": (88.0, 100.0)}
"""Clocks (MHz) above which :meth:`LutLayer.device_fold` cuts tables wider than an FPGA LUT,
per device family: once after their first LUT level above the first, at every
:data:`MUX_BITS` upper bits above the second. Measured with nextpnr-ecp5 (LFE5U-85F, speed 6)
on the digits LUT network (three layers of 12-bit tables): 88.1 MHz uncut, 100.2 MHz cut once
(the rest of the path is three LUT levels between far LUTs), 124.0 MHz cut twice (one LUT level
and a PFUMX between registers; 7.0 of 8.1 ns are routes: a neuron's upper address register,
which Yosys shares with the other neurons reading that input, to LUTs across the chip). No
other family is measured: they stay uncut."""
HLS_WORD_BITS = 512
"""Widest stream word of the HLS kernel, which takes the whole vector (the IR gives no fold)."""


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


def lut6_per_table(address_bits: int) -> int:
    """LUT6s of one table: the leaves, then a tree of 4:1 multiplexers (one LUT6 each)."""
    leaves = 1 << max(address_bits - LUT_INPUTS, 0)
    total = leaves
    while leaves > 1:
        leaves = -(-leaves // 4)
        total += leaves
    return total


def _is_input_bit(bits: np.ndarray) -> np.ndarray:
    """For truth tables ``[table, address]``: which ones equal one bit of the address (a
    wire, no LUT)."""
    address = np.arange(bits.shape[1])
    copy = np.zeros(bits.shape[0], bool)
    for b in range(max(bits.shape[1] - 1, 0).bit_length()):
        copy |= np.all(bits == ((address >> b) & 1), axis=1)
    return copy


def hls_lanes(n: int, bits: int) -> int:
    """Elements per word of a whole-vector kernel: the largest divisor of *n* that keeps the
    word within :data:`HLS_WORD_BITS`."""
    return max(d for d in range(1, n + 1) if n % d == 0 and (d * bits <= HLS_WORD_BITS or d == 1))


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
    pipeline : int
        Hardware only: registers cutting each table (one more cycle of latency each, a shorter
        clock path for wide tables): the first after its first LUT level (the row of the low
        :attr:`split` address bits), the others between the multiplexer levels selecting on
        the upper bits, which they share out evenly (at most :attr:`max_pipeline`).
    """

    kind: ClassVar[str] = "LutLayer"
    plain_pipeline: ClassVar[bool] = True
    fold_fields: ClassVar[tuple[str, ...]] = ("pipeline",)
    exhaustive: ClassVar[bool] = True
    in_features: int
    indices: np.ndarray
    tables: np.ndarray
    in_dtype: Any
    out_dtype: Any
    pipeline: int = 0

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.in_features, bool) or int(self.in_features) < 1:
            raise ValueError(f"{self.name}: in_features must be >= 1, not {self.in_features!r}")
        object.__setattr__(self, "in_features", int(self.in_features))
        if isinstance(self.pipeline, float) or int(self.pipeline) < 0:
            raise ValueError(f"{self.name}: pipeline must be an int >= 0, not {self.pipeline!r}")
        object.__setattr__(self, "pipeline", int(self.pipeline))
        freeze(self, "indices", self.indices)
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
        freeze(self, "tables", self.tables)
        want = (self.neurons, 1 << self.address_bits)
        if self.tables.shape != want:
            raise ValueError(f"{self.name}: tables must have shape {want}, not {self.tables.shape}")
        check_values(f"{self.name} tables", self.tables, self.out_dtype)
        if self.pipeline > self.max_pipeline:
            raise ValueError(
                f"{self.name}: pipeline {self.pipeline} cuts a table of {self.address_bits} "
                f"address bits more often than it has levels (at most {self.max_pipeline})"
            )

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
        x = self.check_input(x)
        bits = self.in_dtype.bitwidth()
        codes = encode(x[:, self.indices], self.in_dtype)  # (batch, N, K)
        shifts = np.arange(self.fanin, dtype=np.uint64) * np.uint64(bits)
        return (codes << shifts).sum(axis=-1, dtype=np.uint64).astype(np.int64)

    def execute(self, x):
        addr = self.addresses(x)
        return self.tables[np.arange(self.neurons), addr]

    # -- the tables as the hardware stores them -------------------------------------------------

    def codes(self) -> np.ndarray:
        """Output codes of every neuron for every address, ``[neuron, address]`` (uint64)."""
        return encode(self.tables, self.out_dtype)

    def table_bits(self) -> np.ndarray:
        """Truth tables as bits: ``[neuron, output bit, address]`` (uint8)."""
        shifts = np.arange(self.out_dtype.bitwidth(), dtype=np.uint64)
        return ((self.codes()[:, None, :] >> shifts[None, :, None]) & np.uint64(1)).astype(np.uint8)

    @property
    def split(self) -> int:
        """Low address bits that select a row of a neuron's table: the first LUT level."""
        return min(self.address_bits, LUT_INPUTS)

    @property
    def upper_bits(self) -> int:
        """Address bits above the row's: the multiplexer stages select on them."""
        return self.address_bits - self.split

    @property
    def max_pipeline(self) -> int:
        """Most registers a table takes: one after the row, one between each two upper bits
        (one for a table of one row: its output registered twice)."""
        return max(self.upper_bits, 1)

    def mux_bits(self) -> list[int]:
        """Upper address bits each stage after the row selects on (:attr:`pipeline` shares
        them out evenly, the first stages taking the extra ones); one stage uncut."""
        upper = self.upper_bits
        if not upper:
            return []
        stages = max(self.pipeline, 1)
        return [upper // stages + (k < upper % stages) for k in range(stages)]

    # -- timing: one whole sample a beat --------------------------------------------------------

    def device_fold(self, clock_mhz, family):
        """Tables wider than an FPGA LUT are cut by registers (``pipeline``) where the
        family's uncut tables are slower than the clock (:data:`PIPELINE_ABOVE_MHZ`): after
        the first LUT level, then every :data:`MUX_BITS` upper address bits."""
        limits = PIPELINE_ABOVE_MHZ.get(family, ())
        cuts = [1, -(-self.upper_bits // MUX_BITS)]
        passed = sum(clock_mhz > limit for limit in limits)
        return {"pipeline": cuts[passed - 1] if passed and self.upper_bits else 0}

    def cycles_for(self, fold):
        return 1

    @property
    def in_lanes(self) -> int:
        return self.in_features

    @property
    def out_lanes(self) -> int:
        return self.neurons

    def beat_times(self, avail, hold=None):
        """The output register, plus the ``pipeline`` registers."""
        return pipelined_times(avail, 1 + self.pipeline, hold)

    # -- cost, hardware -------------------------------------------------------------------------

    def features(self, family="xc7"):
        """LUTs: ``table``, one per table of at most :data:`LUT_INPUTS` address bits that is
        neither constant nor a copy of one input bit (exactly what it takes), ``lut6``, an
        upper bound of 6-input LUTs of the larger non-constant tables (synthesis shares logic
        and drops unused inputs), ``base``: the enable; ``registers``: the output and pipeline
        registers."""
        bits = self.table_bits().reshape(-1, 1 << self.address_bits)
        live = bits.any(axis=1) & ~bits.all(axis=1)
        out_bits = self.neurons * self.out_dtype.bitwidth()
        registers = out_bits + 1
        # a cut registers the rows of the upper bits still to select, and those bits
        left = self.upper_bits
        for chunk in (self.mux_bits() or [0])[: self.pipeline]:
            registers += out_bits * (1 << left) + self.neurons * left + 1
            left -= chunk
        if self.address_bits <= LUT_INPUTS:
            lut = {"table": int(np.count_nonzero(live & ~_is_input_bit(bits)))}
        else:
            lut = {"lut6": int(np.count_nonzero(live)) * lut6_per_table(self.address_bits)}
        return rs.Features(self.kind, {**lut, "base": 1}, {"registers": registers}, {})

    def unit(self):
        from ...hdl.lut_layer import LutLayerUnit

        return LutLayerUnit(layer=self)

    def check_unit(self):
        """Every neuron's generated logic against its table, for every address."""
        from ...hdl.lut_layer import check_tables

        return check_tables(self)

    def hls(self, builder):
        name = ident(self.name)
        in_bits, out_bits = self.in_dtype.bitwidth(), self.out_dtype.bitwidth()
        in_lanes = hls_lanes(self.in_features, in_bits)
        out_lanes = hls_lanes(self.neurons, out_bits)
        idx_bits = max(1, (self.in_features - 1).bit_length())
        cfg = f"{name}_config"
        builder.plan.configs.append(
            Config(
                cfg,
                f"{name}: LutLayer, {self.neurons} neurons of fan-in {self.fanin}",
                (
                    ("in_t", ctype(self.in_dtype)),
                    ("out_t", ctype(self.out_dtype)),
                    ("idx_t", f"ap_uint<{idx_bits}>"),
                ),
                (
                    uconst("IN_FEATURES", self.in_features),
                    uconst("NEURONS", self.neurons),
                    uconst("FANIN", self.fanin),
                    uconst("ENTRIES", 1 << self.address_bits),
                    uconst("IN_LANES", in_lanes),
                    uconst("OUT_LANES", out_lanes),
                ),
            )
        )
        tables = self.tables
        if self.out_dtype == BIPOLAR:  # stored as the output code
            tables = (tables + 1) // 2
        arrays = [
            Array(f"{name}_indices", f"ap_uint<{idx_bits}>", self.indices),
            Array(f"{name}_tables", ctype(self.out_dtype), tables),
        ]
        builder.plan.params[name] = arrays
        builder.kernel(
            "gm::lut_layer",
            cfg,
            tuple(a.name for a in arrays),
            builder.feed(in_lanes, in_bits),
            out_lanes,
            out_bits,
            f"{name}: LutLayer",
            self.neurons,
            header="gm_lut_layer.h",
        )

    def describe(self):
        return (
            f"{self.in_dtype.name} -> {self.out_dtype.name} (fan-in {self.fanin}, "
            f"{self.address_bits}-bit tables)"
        )

    def details(self):
        return {"neurons": self.neurons, "fanin": self.fanin, "address_bits": self.address_bits}
