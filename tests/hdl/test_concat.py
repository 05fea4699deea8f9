"""ConcatUnit against the golden model ``Concat.execute`` and the kind's timing model
(:func:`harness.check_unit`), and StreamFork: every copy of every beat under random stalls."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator
from harness import check_unit, random_values
from qonnx.core.datatype import DataType

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.kinds.concat import Concat
from gatemill.hdl.fork import StreamFork

D = DataType

CASES = {
    "vector_two": dict(spatial=(), channels=(4, 6), dtypes=(D["UINT3"], D["UINT3"]),
                       dtype=D["UINT3"], pe=2),
    "map_widened": dict(spatial=(3, 2), channels=(2, 3), dtypes=(D["UINT2"], D["INT4"]),
                        dtype=D["INT4"]),
    "three_inputs": dict(spatial=(2,), channels=(3, 6, 3), dtypes=(D["INT2"],) * 3,
                         dtype=D["INT2"], pe=3),
    "bipolar": dict(spatial=(2,), channels=(4, 4), dtypes=(BIPOLAR, BIPOLAR), dtype=BIPOLAR,
                    pe=4),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_matches_golden(name):
    rng = np.random.default_rng(sorted(CASES).index(name))
    layer = Concat(name="cat", **CASES[name])
    shapes = zip(layer.dtypes, layer.in_shapes, strict=True)
    xs = [random_values(rng, dt, (4, *s)) for dt, s in shapes]
    check_unit(layer, *xs, seed=len(name))


def test_rejects_narrowing():
    with pytest.raises(ValueError, match="range"):
        Concat(name="c", spatial=(), channels=(2, 2), dtypes=(D["UINT4"], D["UINT2"]),
               dtype=D["UINT2"])  # fmt: skip


@pytest.mark.parametrize("n", [2, 3])
def test_fork_copies_every_beat_to_every_reader(n):
    """Each output, stalled at random on its own, receives every beat once and in order."""
    dut = StreamFork(shape=8, n=n)
    beats = list(range(1, 60))
    got = [[] for _ in range(n)]

    async def source(ctx):
        rng = random.Random(1)
        for b in beats:
            while rng.random() < 0.3:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, b)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    def sink(k):
        port = getattr(dut, f"o{k}")

        async def run(ctx):
            rng = random.Random(10 + k)
            while len(got[k]) < len(beats):
                ready = rng.random() > 0.4
                ctx.set(port.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
                if valid and ready:
                    got[k].append(payload)

        return run

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source, background=True)
    for k in range(n):
        sim.add_testbench(sink(k))
    sim.run()
    assert got == [beats] * n
