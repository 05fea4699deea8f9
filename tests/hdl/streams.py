"""Amaranth-simulator drivers for template tests: packing, a source with seeded idle
cycles and a sink with seeded backpressure, and a runner returning beats and cycle counts."""

from __future__ import annotations

import random

import numpy as np
from amaranth.sim import Simulator

from gatemill.flow.ir.datatypes import decode, encode


def pack(values, dtype) -> int:
    """One beat: element k in bits [k*b, (k+1)*b)."""
    bits = dtype.bitwidth()
    word = 0
    for k, code in enumerate(encode(np.asarray(values), dtype).tolist()):
        word |= int(code) << (k * bits)
    return word


def unpack(word: int, dtype, n: int) -> np.ndarray:
    bits = dtype.bitwidth()
    codes = np.array([(word >> (k * bits)) & ((1 << bits) - 1) for k in range(n)], np.uint64)
    return decode(codes, dtype)


def to_beats(x: np.ndarray, dtype, per_beat: int) -> list[int]:
    """Samples (N, ...) -> beats of *per_beat* elements in channels-last order."""
    flat = np.asarray(x).reshape(-1)
    assert flat.size % per_beat == 0
    return [pack(flat[i : i + per_beat], dtype) for i in range(0, flat.size, per_beat)]


def from_beats(beats: list[int], dtype, per_beat: int, shape) -> np.ndarray:
    flat = np.concatenate([unpack(b, dtype, per_beat) for b in beats])
    return flat.reshape(-1, *shape)


def run_stream(dut, in_beats, n_out, **kwargs):
    """Feed *in_beats* into ``dut.i`` and collect *n_out* beats from ``dut.o``
    (:func:`run_streams` with one input; the same keyword arguments)."""
    return run_streams(dut, {"i": in_beats}, n_out, **kwargs)


def run_streams(
    dut, inputs, n_out, *, seed=0, idle=0.0, stall=0.0, max_cycles=200_000, vcd=None, never=None
):
    """Feed ``inputs[port]`` (beats) into each input stream ``dut.<port>`` and collect *n_out*
    beats from ``dut.o``; each input has its own seeded idle pattern.

    Returns ``(out_beats, stats)`` where stats has ``cycles`` (to the last output beat),
    ``first_in`` (cycle of the first accepted beat of the first input), ``first_out``,
    ``out_cycles`` (the cycle of every output beat), ``in_cycles`` (per input, the cycle
    each beat was accepted) and ``high`` (the cycles at which the signal *never*, if given,
    was high at a clock edge).
    """
    rng_out = random.Random(seed + 1)
    out = []
    stats = {"out_cycles": [], "in_cycles": {port: [] for port in inputs}, "high": []}
    cycle = [0]

    async def clock_counter(ctx):
        while True:
            if never is None:
                await ctx.tick()
            elif (await ctx.tick().sample(never))[2]:
                stats["high"].append(cycle[0])
            cycle[0] += 1

    def source(port, beats, rng):
        stream = getattr(dut, port)

        width = len(stream.payload.as_value())

        async def run(ctx):
            for beat in beats:
                while idle and rng.random() < idle:
                    # garbage while not valid: a unit must not take a payload without valid
                    ctx.set(stream.valid, 0)
                    ctx.set(stream.payload.as_value(), rng.getrandbits(width))
                    await ctx.tick()
                ctx.set(stream.valid, 1)
                ctx.set(stream.payload.as_value(), beat)
                # not tick().until(): the simulation may end while this process waits (a unit
                # that takes input it makes no output of), and an abandoned until() raises when
                # it is collected
                while not (await ctx.tick().sample(stream.ready))[2]:
                    pass
                stats["in_cycles"][port].append(cycle[0] - 1)
            ctx.set(stream.valid, 0)

        return run

    async def sink(ctx):
        while len(out) < n_out:
            if stall and rng_out.random() < stall:
                ctx.set(dut.o.ready, 0)
                await ctx.tick()
                continue
            ctx.set(dut.o.ready, 1)
            _, _, payload, valid = await ctx.tick().sample(dut.o.payload.as_value(), dut.o.valid)
            if valid:
                out.append(int(payload))
                stats["out_cycles"].append(cycle[0] - 1)
            if cycle[0] > max_cycles:
                raise TimeoutError(f"only {len(out)} of {n_out} output beats in {max_cycles}")
        ctx.set(dut.o.ready, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(clock_counter)
    for k, (port, beats) in enumerate(inputs.items()):
        sim.add_testbench(source(port, beats, random.Random(seed + 2 * k)), background=True)
    sim.add_testbench(sink)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    first_port = next(iter(inputs))
    ins = stats["in_cycles"][first_port]
    stats["first_in"] = ins[0] if ins else None
    stats["cycles"] = stats["out_cycles"][-1] if stats["out_cycles"] else None
    stats["first_out"] = stats["out_cycles"][0] if stats["out_cycles"] else None
    return out, stats
