"""WidthConverter against the identity (the element sequence is unchanged): bit-exact under
random idle input and backpressure, and measured II / latency equal to the estimates."""

from __future__ import annotations

import gc
import random
import warnings

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module, UnusedElaboratable
from amaranth.lib import wiring
from amaranth.sim import Simulator
from qonnx.core.datatype import DataType
from streams import from_beats, run_stream, to_beats

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.hdl.width import Intake, WidthConverter, cycles_per_sample, latency_cycles

D = DataType


class Clocked(wiring.Component):
    """A DUT inside a module with a ``sync`` domain: the driver clocks one, and a
    pass-through converter has none of its own."""

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


def random_input(rng, dtype, shape):
    if dtype == BIPOLAR:
        return rng.choice([-1, 1], size=shape)
    return rng.integers(int(dtype.min()), int(dtype.max()) + 1, size=shape)


def check(dtype, n_in, n_out, per_sample, samples=3, seed=0):
    """Random idle/stall run equal to the input (identity); a full-rate run with measured II
    (between consecutive samples' first output beats) and latency equal to the estimates."""
    rng = np.random.default_rng(seed)
    x = random_input(rng, dtype, (samples, per_sample))
    beats = to_beats(x, dtype, n_in)
    n_out_beats = x.size // n_out

    def dut():
        return Clocked(WidthConverter(dtype=dtype, n_in=n_in, n_out=n_out, per_sample=per_sample))

    out, _ = run_stream(dut(), beats, n_out_beats, seed=seed, idle=0.3, stall=0.3)
    assert np.array_equal(from_beats(out, dtype, n_out, (per_sample,)), x)

    out, stats = run_stream(dut(), beats, n_out_beats)
    assert np.array_equal(from_beats(out, dtype, n_out, (per_sample,)), x)
    firsts = stats["out_cycles"][:: n_out_beats // samples]
    ii = cycles_per_sample(dtype, n_in, n_out, per_sample)
    assert np.diff(firsts).tolist() == [ii] * (samples - 1)
    assert stats["first_out"] - stats["first_in"] == latency_cycles(dtype, n_in, n_out, per_sample)

    # the timing model: the samples offered beat by beat with seeded random gaps, each beat held
    # until taken, the output always ready
    gaps = random.Random(seed).choices([0, 0, 1, 3], k=len(beats))
    if n_in != n_out:
        intake, offered = Intake(n_in, n_out, x.size), 0
        model = []
        for gap in gaps:
            model.append(intake.take(offered + gap))
            offered = model[-1] + 1
        assert run_gaps(dut(), beats, gaps, n_out_beats) == (model, intake.out)


def run_gaps(dut, beats, gaps, n_out):
    """Offer ``beats[j]`` ``gaps[j]`` cycles after beat ``j - 1`` is taken, until it is taken;
    the output always ready. Returns the cycles the input beats are taken and the cycles the
    first *n_out* output beats leave."""
    taken, out = [], []

    async def source(ctx):
        cycle = 0
        for beat, gap in zip(beats, gaps, strict=False):
            ctx.set(dut.i.valid, 0)
            for _ in range(gap):
                await ctx.tick()
                cycle += 1
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload.as_value(), beat)
            while True:
                _, _, ready = await ctx.tick().sample(dut.i.ready)
                cycle += 1
                if ready:
                    taken.append(cycle - 1)
                    break
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        cycle = 0
        while len(out) < n_out:
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            if valid:
                out.append(cycle)
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    return taken, out


@pytest.mark.parametrize(
    ("n_in", "n_out", "per_sample"),
    [
        (1, 4, 8),  # widen by a multiple (gather)
        (4, 1, 8),  # narrow by a multiple (scatter)
        (2, 4, 8),
        (4, 2, 8),
        (3, 12, 24),
        (12, 3, 24),
        (4, 6, 12),  # general ratios, both ways
        (6, 4, 24),
        (3, 5, 15),
        (5, 3, 30),
        (2, 9, 18),
        (9, 2, 18),
        (7, 7, 14),  # pass-through
    ],
)
def test_identity(n_in, n_out, per_sample):
    check(D["INT4"], n_in, n_out, per_sample, seed=n_in * 10 + n_out)


@pytest.mark.parametrize("dtype", [BIPOLAR, D["BINARY"], D["INT8"], D["UINT3"]])
def test_datatypes(dtype):
    check(dtype, 4, 6, 24, seed=dtype.bitwidth())


def test_estimates():
    assert cycles_per_sample(D["INT4"], 4, 6, 24) == 6  # input-bound: 6 beats of 4
    assert latency_cycles(D["INT4"], 4, 6, 24) == 2  # 2 input beats fill the first output
    assert cycles_per_sample(D["INT4"], 6, 4, 24) == 6  # output-bound: 6 beats of 4
    assert latency_cycles(D["INT4"], 6, 4, 24) == 1
    assert (cycles_per_sample(D["INT4"], 3, 3, 9), latency_cycles(D["INT4"], 3, 3, 9)) == (3, 0)


def test_rejects_bad_arguments():
    with warnings.catch_warnings():
        # the half-built components are never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError, match=r"multiple of n_in=4 and n_out=6, not 18"):
            WidthConverter(dtype=D["INT4"], n_in=4, n_out=6, per_sample=18)
        with pytest.raises(TypeError, match="n_out must be a positive integer, not 0"):
            WidthConverter(dtype=D["INT4"], n_in=4, n_out=0, per_sample=8)
        with pytest.raises(ValueError, match="not 10"):
            cycles_per_sample(D["INT4"], 4, 2, 10)
        gc.collect()
