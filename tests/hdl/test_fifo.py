"""StreamFifo against the identity (beats leave unchanged and in order): under random idle
input and backpressure, full throughput, latency equal to the estimate, exact capacity."""

from __future__ import annotations

import gc
import random
import re
import warnings

import pytest
from amaranth.back import verilog
from amaranth.hdl import ClockDomain, Module, UnusedElaboratable, unsigned
from amaranth.lib import fifo, wiring
from amaranth.sim import Simulator
from streams import run_stream

from gatemill.flow.ir.datatypes import dtype_from_name
from gatemill.hdl.common import lanes
from gatemill.hdl.fifo import StreamFifo, _Queue, latency_cycles

SHAPE = lanes(dtype_from_name("INT4"), 3)
DEPTHS = [0, 1, 2, 3, 5, 16]


class Clocked(wiring.Component):
    """A DUT inside a module with a ``sync`` domain: the driver clocks one, and a depth-0
    FIFO (a wire) has none of its own."""

    def __init__(self, dut):
        self._dut = dut
        super().__init__(dut.signature)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain()
        m.submodules.dut = self._dut
        wiring.connect(m, wiring.flipped(self.i), self._dut.i)
        wiring.connect(m, self._dut.o, wiring.flipped(self.o))
        return m


BEATS = [(k * 2654435761) % (1 << 12) for k in range(300)]


@pytest.mark.parametrize("depth", DEPTHS)
def test_identity_under_backpressure(depth):
    out, _ = run_stream(
        Clocked(StreamFifo(shape=SHAPE, depth=depth)), BEATS, len(BEATS), seed=depth,
        idle=0.3, stall=0.3,
    )  # fmt: skip
    assert out == BEATS


@pytest.mark.parametrize("depth", DEPTHS)
def test_full_rate(depth):
    """One beat per cycle in and out; first beat after ``latency_cycles(depth)``."""
    out, stats = run_stream(Clocked(StreamFifo(shape=SHAPE, depth=depth)), BEATS[:40], 40)
    assert out == BEATS[:40]
    assert stats["first_out"] - stats["first_in"] == latency_cycles(depth)
    assert stats["out_cycles"] == list(range(stats["first_out"], stats["first_out"] + 40))


@pytest.mark.parametrize("depth", [d for d in DEPTHS if d])
def test_capacity(depth):
    """With the output never ready the FIFO takes exactly ``depth`` beats."""
    dut = StreamFifo(shape=SHAPE, depth=depth)
    taken = []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        for cycle in range(depth + 4):
            ctx.set(dut.i.payload.as_value(), cycle)
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            taken.append(ready)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert sum(taken) == depth


def test_memory_when_deep():
    """Deep FIFOs keep their entries in an inferred memory (block RAM when large)."""
    text = verilog.convert(StreamFifo(shape=SHAPE, depth=64), name="fifo")
    # a queue of depth - 1 (depth - 2 entries in memory, one in its read register), then the
    # output register
    assert re.search(r"reg \[11:0\] \w+ \[61:0\];", text)
    assert re.search(r"reg \[11:0\] o__payload\b", text)


@pytest.mark.parametrize("depth", [2, 3, 4, 7])
def test_queue_is_the_library_fifo_cycle_for_cycle(depth):
    """The queue behind the output register behaves as ``SyncFIFOBuffered`` (its flags come
    from registers): the same ready, valid and data on every cycle of seeded random writes and
    reads, filling and draining."""
    ours, lib = _Queue(width=8, depth=depth), fifo.SyncFIFOBuffered(width=8, depth=depth)
    m = Module()
    m.submodules.ours, m.submodules.lib = ours, lib
    rng = random.Random(depth)

    async def bench(ctx):
        for cycle in range(600):
            phase = (cycle // 100) % 3  # filling, draining, mixed
            w_en = rng.random() < (0.9, 0.1, 0.5)[phase]
            r_en = rng.random() < (0.1, 0.9, 0.5)[phase]
            data = rng.randrange(256)
            for q in (ours, lib):
                ctx.set(q.w_en, w_en)
                ctx.set(q.w_data, data)
                ctx.set(q.r_en, r_en)
            mine = [ctx.get(s) for s in (ours.w_rdy, ours.r_rdy)]
            assert mine == [ctx.get(s) for s in (lib.w_rdy, lib.r_rdy)], cycle
            if mine[1]:
                assert ctx.get(ours.r_data) == ctx.get(lib.r_data), cycle
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_payload_shapes():
    """A plain shape works as well as a lane layout."""
    fifo = StreamFifo(shape=unsigned(5), depth=3)
    assert fifo.i.payload.shape() == unsigned(5)
    assert (fifo.shape, fifo.depth) == (unsigned(5), 3)


def test_rejects_bad_arguments():
    with warnings.catch_warnings():
        # the half-built components are never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="depth must be a non-negative integer, not -1"):
            StreamFifo(shape=SHAPE, depth=-1)
        with pytest.raises(TypeError, match="shape must be shape-castable, not 'x'"):
            StreamFifo(shape="x", depth=2)
        with pytest.raises(TypeError, match=r"not 2\.5"):
            latency_cycles(2.5)
        gc.collect()
