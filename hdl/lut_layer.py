"""LUT layer: sparse neurons as explicit truth tables, one sample per clock.

The layer kind, its golden model, timing and cost: :mod:`gatemill.flow.kinds.lut_layer`.

Each output bit of each neuron is one constant truth table indexed by the neuron's address
(its inputs' codes side by side, see :mod:`gatemill.flow.kinds.lut_layer`); synthesis maps a
table of up to six address bits to one FPGA LUT. There are no multipliers and no weight memory.

:func:`check_tables` simulates the generated tables for every address of every neuron (the
build's exhaustive check); the cocotb run then checks the whole network.
"""

from __future__ import annotations

import time

import numpy as np
from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from ..flow.ir.datatypes import encode
from .common import KEEP_APART, ROM_ATTRS, check_kind, stream_of

__all__ = ["LutLayerUnit", "LutNeuron", "LutTables", "check_tables"]


def _rows(codes: np.ndarray, address_bits: int, out_bits: int, low: int) -> list[int]:
    """One neuron's table as ``2 ** low`` rows: row ``lo`` holds, for every upper address
    ``hi``, the output code at address ``hi << low | lo`` (at bits ``hi * out_bits``)."""
    cols = codes.reshape(1 << (address_bits - low), 1 << low).T  # [lo, hi]
    shifts = [h * out_bits for h in range(cols.shape[1])]
    return [sum(int(c) << sh for c, sh in zip(row, shifts, strict=True)) for row in cols]


class LutNeuron(wiring.Component):
    """One neuron's truth tables: one table per output bit, read at the neuron's address.

    The tables are stored together as a small ROM of ``2 ** split`` rows (the layer's
    ``split``, one FPGA LUT's inputs at most): the low address bits read a row holding the
    outputs for every value of the upper address bits, which then select one column (a Shannon
    expansion on the upper bits).
    The ROM is marked ``rom_style = "logic"`` so synthesis builds it from LUTs and may minimise
    it; the ROM form keeps the Verilog compact and fast to simulate (a wide constant shifted by
    the address costs Icarus its whole width at every evaluation).

    Without pipelining, ``value`` is a combinational function of ``addr``. With ``mux_bits``
    of more than one stage, or one and ``pipeline``, the row and the upper address bits are
    registered while ``en`` is high (after the first LUT level), and the multiplexer's stages
    each select on their share of the upper bits, a register between each two: ``value``
    follows ``addr`` by as many enabled clock edges as there are registers.

    Parameters
    ----------
    codes : ndarray of int, shape (2 ** address_bits,)
        Output code for every address.
    address_bits, out_bits : int
    split : int
        Low address bits of a row (at most ``address_bits``).
    mux_bits : list of int
        Upper address bits each multiplexer stage selects on, lowest first (``address_bits -
        split`` in all; :meth:`LutLayer.mux_bits
        <gatemill.flow.kinds.lut_layer.LutLayer.mux_bits>`).
    pipeline : int
        Registers: the first after the row, one after each stage but the last (at most
        ``len(mux_bits)``, or 1 without upper bits).

    Members
    -------
    addr : ``In(address_bits)``
    en : ``In(1)``
        Pipeline register enable (unused without pipelining).
    value : ``Out(out_bits)``
    """

    def __init__(
        self,
        *,
        codes,
        address_bits: int,
        out_bits: int,
        split: int,
        mux_bits=(),
        pipeline: int = 0,
    ):
        codes = np.asarray(codes, np.uint64)
        if codes.shape != (1 << address_bits,):
            raise ValueError(f"codes must have 2 ** {address_bits} entries, not {codes.shape}")
        if not 0 < split <= address_bits:
            raise ValueError(f"split must be in [1, {address_bits}], not {split!r}")
        self._codes, self._a_bits, self._o_bits, self._low = codes, address_bits, out_bits, split
        self._mux_bits = [int(b) for b in mux_bits]
        if sum(self._mux_bits) != address_bits - split or min(self._mux_bits, default=1) < 1:
            raise ValueError(f"mux_bits {mux_bits!r} must share out {address_bits - split} bits")
        if not 0 <= pipeline <= max(len(self._mux_bits), 1):
            raise ValueError(f"pipeline must be in [0, {len(self._mux_bits)}], not {pipeline!r}")
        self._pipeline = int(pipeline)
        super().__init__({"addr": In(address_bits), "en": In(1), "value": Out(out_bits)})

    def elaborate(self, platform):
        m, codes = Module(), self._codes
        if np.all(codes == codes[0]):  # a constant neuron needs no table
            m.d.comb += self.value.eq(int(codes[0]))
            return m
        a_bits, o_bits = self._a_bits, self._o_bits
        low = self._low
        width = o_bits << (a_bits - low)
        m.submodules.rom = rom = memory.Memory(
            shape=width, depth=1 << low, init=_rows(codes, a_bits, o_bits, low), attrs=ROM_ATTRS
        )
        port = rom.read_port(domain="comb")
        m.d.comb += port.addr.eq(self.addr[:low])
        row, upper = port.data, self.addr[low:]
        for stage, bits in enumerate([0, *self._mux_bits]):
            if stage:  # select on the low *bits* of the upper address bits left
                sel, upper = upper[:bits], upper[bits:]
                step = o_bits << bits
                row = Cat(
                    row.word_select(hi, step).word_select(sel, o_bits)
                    for hi in range(len(row) // step)
                )
            if stage < self._pipeline:
                # every neuron reading an input keeps its own copy of the upper bits
                row_q = Signal(len(row))
                upper_q = Signal(len(upper), attrs={KEEP_APART: 1})
                with m.If(self.en):
                    m.d.sync += [row_q.eq(row), upper_q.eq(upper)]
                row, upper = row_q, upper_q
        m.d.comb += self.value.eq(row)
        return m


def _neurons(layer) -> list[LutNeuron]:
    o_bits = layer.out_dtype.bitwidth()
    return [
        LutNeuron(
            codes=c,
            address_bits=layer.address_bits,
            out_bits=o_bits,
            split=layer.split,
            mux_bits=layer.mux_bits(),
            pipeline=layer.pipeline,
        )
        for c in layer.codes()
    ]


class LutTables(wiring.Component):
    """Every neuron of a layer side by side, addressed directly (the exhaustive check's view).

    Parameters
    ----------
    layer : :class:`~gatemill.flow.kinds.lut_layer.LutLayer`

    Members
    -------
    addr : ``In(ArrayLayout(unsigned(A), N))``
        Address of each neuron.
    en : ``In(1)``
        Pipeline register enable.
    value : ``Out(ArrayLayout(unsigned(out_bits), N))``
        Output code of each neuron (BIPOLAR: 1 for +1).
    """

    def __init__(self, *, layer):
        self._layer = check_kind(layer, "LutLayer")
        super().__init__(
            {
                "addr": In(data.ArrayLayout(unsigned(layer.address_bits), layer.neurons)),
                "en": In(1),
                "value": Out(data.ArrayLayout(unsigned(layer.out_dtype.bitwidth()), layer.neurons)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        for n, neuron in enumerate(_neurons(self._layer)):
            m.submodules[f"n{n}"] = neuron
            m.d.comb += [
                neuron.addr.eq(self.addr[n]),
                neuron.en.eq(self.en),
                self.value[n].eq(neuron.value),
            ]
        return m


class LutLayerUnit(wiring.Component):
    """A layer of truth-table neurons taking and giving one whole sample per beat.

    The input beat carries all ``in_features`` inputs, the output beat all ``N`` outputs. Each
    neuron (:class:`LutNeuron`) reads its inputs' bits straight from the input beat; the
    outputs are registered together, and ``layer.pipeline`` more registers cut each neuron. The
    whole pipeline advances on the consumer's ready, so it accepts one sample per clock.

    Every neuron is its own component with its own address and value nets: a wide bus
    assigned piece by piece makes Icarus re-evaluate every reader at every piece's change.

    Parameters
    ----------
    layer : :class:`~gatemill.flow.kinds.lut_layer.LutLayer`

    Members
    -------
    i : ``In(stream_of(layer.in_dtype, layer.in_features))``
    o : ``Out(stream_of(layer.out_dtype, layer.neurons))``
    """

    def __init__(self, *, layer):
        self._layer = check_kind(layer, "LutLayer")
        super().__init__(
            {
                "i": In(stream_of(layer.in_dtype, layer.in_features)),
                "o": Out(stream_of(layer.out_dtype, layer.neurons)),
            }
        )

    @property
    def layer(self):
        return self._layer

    def elaborate(self, platform):
        layer, m = self._layer, Module()
        width = layer.in_dtype.bitwidth()
        raw = self.i.payload.as_value()
        # The whole layer advances when the consumer is ready, holding a bubble or not: in a
        # chain of these the enable is then the output skid buffer's ready register itself,
        # with no gate on the way to every flip-flop (filling bubbles would put an OR of the
        # valid bits of every stage after this one there).
        advance = self.o.ready
        m.d.comb += self.i.ready.eq(advance)
        values = []
        for n, (neuron, idx) in enumerate(
            zip(_neurons(layer), layer.indices.tolist(), strict=True)
        ):
            m.submodules[f"n{n}"] = neuron
            m.d.comb += [
                neuron.addr.eq(Cat(raw[q * width : (q + 1) * width] for q in idx)),
                neuron.en.eq(advance),
            ]
            values.append(neuron.value)
        valid = self.i.valid
        for k in range(layer.pipeline):
            valid_q = Signal(name=f"valid_{k}")
            with m.If(advance):
                m.d.sync += valid_q.eq(valid)
            valid = valid_q
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(valid), self.o.payload.as_value().eq(Cat(values))]
        return m


def check_tables(layer) -> dict:
    """Simulate the generated tables for every address and compare with ``layer.tables``.

    All neurons are driven with the same address at once (each table reads only its own
    neuron's address), so one simulated step per address checks the whole layer.

    Returns
    -------
    dict
        ``neurons``, ``address_bits``, ``entries_checked`` (neurons times addresses),
        ``mismatches`` (entries that differ), ``bad_neurons`` (up to ten indices) and
        ``seconds``.
    """
    t0 = time.perf_counter()
    dut = LutTables(layer=layer)
    n, a_bits, o_bits = layer.neurons, layer.address_bits, layer.out_dtype.bitwidth()
    entries = 1 << a_bits
    got = []
    every = sum(1 << (k * a_bits) for k in range(n))  # times a: address a in every lane

    async def bench(ctx):
        for a in range(entries):
            ctx.set(dut.addr.as_value(), a * every)
            ctx.set(dut.en, 1)
            for _ in range(layer.pipeline):
                await ctx.tick()
            got.append(ctx.get(dut.value.as_value()))

    sim = Simulator(dut)
    if layer.pipeline:
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    mask = (1 << o_bits) - 1
    codes = np.array([[(w >> (k * o_bits)) & mask for w in got] for k in range(n)], np.uint64)
    # the specification straight from the IR, not through the code that built the tables
    bad = codes != encode(layer.tables, layer.out_dtype)
    bad_neurons = np.flatnonzero(bad.any(axis=1))
    return {
        "neurons": n,
        "address_bits": a_bits,
        "entries_checked": int(bad.size),
        "mismatches": int(np.count_nonzero(bad)),
        "bad_neurons": bad_neurons[:10].tolist(),
        "seconds": round(time.perf_counter() - t0, 3),
    }
