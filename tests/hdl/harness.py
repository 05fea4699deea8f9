"""The one check every unit's RTL test runs: the unit of an IR layer against the layer's golden
model and its timing model."""

from __future__ import annotations

import random

import numpy as np
from amaranth.sim import Simulator
from streams import from_beats, run_streams, to_beats

from gatemill.hdl.common import Backpressure


def check_unit(layer, *xs, seed=0, idle=0.3, stall=0.3, backpressure=True):
    """Check ``layer.unit()`` on the samples *xs* (one batch per input: a join takes several)
    against ``layer.execute`` (the golden model) and the layer kind's timing model.

    1. With random idle input cycles and random backpressure (seeded by *seed*): every output
       equals the golden model's.
    2. At full rate (an input beat offered every cycle, the output always ready): every output
       equals the golden model's; the first sample's output beats leave at exactly the cycles
       ``layer.beat_times`` gives (counted from the first accepted input beat), so the latency
       is ``layer.latency()``; consecutive samples start ``layer.cycles()`` apart.
    3. With every input beat offered at once and the output taken on seeded random cycles:
       the output beats leave when ``layer.beat_times`` says under that backpressure
       (unless *backpressure* is False).
    """
    expected = layer.execute(*xs)
    ports = ["i"] if layer.arity == 1 else [f"i{k}" for k in range(layer.arity)]
    inputs = {
        port: to_beats(x, dt, n)
        for port, x, dt, n in zip(ports, xs, layer.in_dtypes, layer.input_lanes, strict=True)
    }
    n_out = expected.size // layer.out_lanes
    samples = len(xs[0])
    per_sample = n_out // samples

    out, _ = run_streams(layer.unit(), inputs, n_out, seed=seed, idle=idle, stall=stall)
    got = from_beats(out, layer.out_dtype, layer.out_lanes, layer.out_shape)
    assert np.array_equal(got, expected), f"{np.count_nonzero(got != expected)} mismatches"

    out, stats = run_streams(layer.unit(), inputs, n_out)
    got = from_beats(out, layer.out_dtype, layer.out_lanes, layer.out_shape)
    assert np.array_equal(got, expected), f"{np.count_nonzero(got != expected)} mismatches"
    first = [c - stats["first_in"] for c in stats["out_cycles"][:per_sample]]
    assert first == layer.beat_times(*(list(range(n)) for n in layer.input_beats))
    assert first[0] == layer.latency()
    starts = stats["out_cycles"][::per_sample]
    assert np.diff(starts).tolist() == [layer.cycles()] * (samples - 1)

    if not backpressure:
        return
    # 3. At full input rate with the output taken on seeded random cycles: the first sample's
    # output beats are valid at the cycles ``layer.beat_times`` gives with that backpressure.
    firsts = {
        port: beats[:n] for (port, beats), n in zip(inputs.items(), layer.input_beats, strict=True)
    }
    ready = random.Random(seed).choices([0, 1], k=50 * sum(layer.input_beats) + 1000)
    taken = []

    def take(valid):
        taken.append(next(c for c in range(valid, len(ready)) if ready[c]))
        return taken[-1]

    layer.beat_times(*([0] * n for n in layer.input_beats), hold=Backpressure(take))
    assert run_pattern(layer.unit(), firsts, per_sample, ready) == taken


def run_pattern(dut, inputs, n_out, ready) -> list[int]:
    """Offer the beats of *inputs* (``{port: beats}``) from cycle 0 on, one after another on
    each port; take output beats on the cycles where ``ready[cycle]``. Returns the cycles at
    which the first *n_out* output beats leave."""
    out = []

    def source(port, beats):
        stream = getattr(dut, port)

        async def run(ctx):
            ctx.set(stream.valid, 1)
            for beat in beats:
                ctx.set(stream.payload.as_value(), beat)
                # not tick().until(): the simulation may end while this process waits, and an
                # abandoned until() raises when it is collected
                while not (await ctx.tick().sample(stream.ready))[2]:
                    pass
            ctx.set(stream.valid, 0)

        return run

    async def sink(ctx):
        for cycle, r in enumerate(ready):
            ctx.set(dut.o.ready, r)
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            if valid and r:
                out.append(cycle)
                if len(out) == n_out:
                    return
        raise TimeoutError(f"only {len(out)} of {n_out} output beats in {len(ready)} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for port, beats in inputs.items():
        sim.add_testbench(source(port, beats), background=True)
    sim.add_testbench(sink)
    sim.run()
    return out


def random_values(rng, dtype, shape) -> np.ndarray:
    """Uniformly random values of *dtype* (-1/+1 for BIPOLAR)."""
    if dtype.name == "BIPOLAR":
        return rng.choice([-1, 1], size=shape)
    return rng.integers(int(dtype.min()), int(dtype.max()) + 1, size=shape)


def verilog_arrays(text: str) -> dict[str, tuple[int, int]]:
    """``{name: (word bits, words)}`` of the memories in generated Verilog."""
    import re

    return {
        name: (int(msb) + 1, int(last) + 1)
        for msb, name, last in re.findall(r"reg \[(\d+):0\] (\w+) \[(\d+):0\];", text)
    }
