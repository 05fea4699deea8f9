"""StreamSkid against the identity (beats leave unchanged and in order): under random idle
input and backpressure, at full rate with no latency, holding one beat, and with ``i.ready``
independent of ``o.ready`` within a cycle (a register)."""

from __future__ import annotations

import random

from amaranth.sim import Simulator
from streams import run_stream

from gatemill.flow.ir.datatypes import dtype_from_name
from gatemill.hdl.common import lanes
from gatemill.hdl.skid import LATENCY, StreamSkid

SHAPE = lanes(dtype_from_name("INT4"), 3)
BEATS = [(k * 2654435761) % (1 << 12) for k in range(300)]


def test_identity_under_backpressure():
    for seed in range(3):
        out, _ = run_stream(
            StreamSkid(shape=SHAPE), BEATS, len(BEATS), seed=seed, idle=0.3, stall=0.5
        )
        assert out == BEATS


def test_full_rate_without_latency():
    out, stats = run_stream(StreamSkid(shape=SHAPE), BEATS[:40], 40)
    assert out == BEATS[:40]
    assert stats["first_out"] - stats["first_in"] == LATENCY == 0
    assert stats["out_cycles"] == list(range(stats["first_out"], stats["first_out"] + 40))


def test_ready_is_a_register_and_one_beat_is_held():
    """Offered a beat every cycle, the output ready on seeded random cycles: ``i.ready`` is the
    same whatever ``o.ready`` is in that cycle, and a beat the output refuses is held (the
    buffer then refuses input until it has passed the held beat on)."""
    dut = StreamSkid(shape=SHAPE)
    rng = random.Random(7)
    sent, got = [], []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        for cycle in range(400):
            ctx.set(dut.i.payload.as_value(), BEATS[len(sent) % len(BEATS)])
            readies = []
            for ready in (0, 1):
                ctx.set(dut.o.ready, ready)
                readies.append(ctx.get(dut.i.ready))
            assert readies[0] == readies[1], f"cycle {cycle}: i.ready follows o.ready"
            take = rng.random() < 0.5
            ctx.set(dut.o.ready, take)
            if ctx.get(dut.o.valid) and take:
                got.append(ctx.get(dut.o.payload.as_value()))
            if readies[0]:
                sent.append(BEATS[len(sent) % len(BEATS)])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == sent[: len(got)] and len(sent) - len(got) <= 1
