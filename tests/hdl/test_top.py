"""The Accelerator's chain of stages (:func:`gatemill.hdl.plan.plan`) against the golden model
``IRGraph.execute``: units that take one sample per clock (LUT layers, fully parallel
matrix-vector and threshold layers) run under one clock enable without FIFOs, a skid buffer at
the output; every output equal to the golden model's under random idle input and
backpressure, and at full rate the latency and initiation interval the plan estimates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from harness import random_values
from qonnx.core.datatype import DataType
from streams import from_beats, run_stream, to_beats

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.ir.graph import InputSpec, IRGraph, OutputSpec
from gatemill.flow.kinds import Concat, LutLayer, MatrixVector, Threshold
from gatemill.flow.kinds.matrix_vector import accumulator_range, min_acc_dtype
from gatemill.hdl.plan import estimates, plan
from gatemill.hdl.top import Accelerator

D = DataType
U2 = D["UINT2"]


def graph(name, in_shape, in_dt, layers, inputs=None):
    """The IRGraph of *layers* (a chain unless *inputs* says otherwise)."""
    last = layers[-1]
    c = last.out_shape[-1]
    out = OutputSpec(shape=last.out_shape, dtype=last.out_dtype, scale=np.ones(c),
                     bias=np.zeros(c))  # fmt: skip
    return IRGraph(name=name, input=InputSpec(shape=in_shape, dtype=in_dt),
                   layers=tuple(layers), output=out, inputs=inputs or {})  # fmt: skip


def thresholds(rng, lo, hi, t, direction):
    """*t* monotonic random thresholds per row in ``[lo - 2, hi + 2]``."""
    rows = [np.sort(rng.integers(lo - 2, hi + 3, size=t)) for _ in direction]
    return np.array([r if d > 0 else r[::-1] for r, d in zip(rows, direction, strict=True)])


def mv(rng, name, mh, mw, in_dt, w_dt, *, t=0, pe, simd, pipeline=0):
    """A MatrixVector with random weights and, with *t*, *t* random thresholds a row to
    UINT2."""
    w = random_values(rng, w_dt, (mh, mw))
    kw = {}
    if t:
        lo, hi = accumulator_range(w, in_dt, False)
        direction = rng.choice([-1, 1], size=mh)
        kw = dict(thresholds=thresholds(rng, int(lo.min()), int(hi.max()), t, direction),
                  direction=direction, out_dtype=U2)  # fmt: skip
    return MatrixVector(name=name, weights=w, in_dtype=in_dt, w_dtype=w_dt,
                        acc_dtype=min_acc_dtype(w, in_dt, False), pe=pe, simd=simd,
                        pipeline=pipeline, **kw)  # fmt: skip


def lut(rng, name, in_features, neurons, fanin, in_dtype, out_dtype, pipeline=False):
    """A LutLayer with random distinct indices and random tables."""
    idx = np.array([rng.choice(in_features, fanin, replace=False) for _ in range(neurons)])
    tables = random_values(rng, out_dtype, (neurons, 1 << (fanin * in_dtype.bitwidth())))
    return LutLayer(name=name, in_features=in_features, indices=idx, tables=tables,
                    in_dtype=in_dtype, out_dtype=out_dtype, pipeline=pipeline)  # fmt: skip


def lut_chain(seed=0):
    """16 x UINT2 -> 12 -> 8 (pipelined tables) -> 5 x INT4: the JSC-S shape, smaller."""
    rng = np.random.default_rng(seed)
    layers = [
        lut(rng, "l0", 16, 12, 3, U2, U2),
        lut(rng, "l1", 12, 8, 3, U2, U2, pipeline=True),
        lut(rng, "l2", 8, 5, 2, U2, D["INT4"]),
    ]
    return graph("lut_chain", (16,), U2, layers)


def parallel_mlp(seed=0):
    """A fully parallel MLP: dense (raw sums), a threshold layer, dense with thresholds (a
    pipelined adder tree), dense (raw sums)."""
    rng = np.random.default_rng(seed)
    fc0 = mv(rng, "fc0", 6, 8, U2, D["INT3"], pe=6, simd=8)
    direction = rng.choice([-1, 1], size=6)
    lo, hi = int(fc0.out_dtype.min()), int(fc0.out_dtype.max())
    act = Threshold(name="act", shape=(6,), in_dtype=fc0.out_dtype, pe=6, out_dtype=U2,
                    thresholds=thresholds(rng, lo, hi, 3, direction),
                    direction=direction)  # fmt: skip
    fc1 = mv(rng, "fc1", 8, 6, U2, D["INT2"], t=3, pe=8, simd=6, pipeline=1)
    fc2 = mv(rng, "fc2", 3, 8, U2, D["INT2"], pe=3, simd=8)
    return graph("parallel_mlp", (8,), U2, [fc0, act, fc1, fc2])


def lut_then_folded(seed=0):
    """Two LUT layers chained, then a folded dense layer (its FIFO ends the chain)."""
    rng = np.random.default_rng(seed)
    layers = [
        lut(rng, "l0", 10, 8, 2, U2, U2),
        lut(rng, "l1", 8, 8, 3, U2, U2),
        mv(rng, "fc", 4, 8, U2, D["INT3"], pe=2, simd=4),
    ]
    return graph("lut_then_folded", (10,), U2, layers)


def folded_then_lut(seed=0):
    """A folded dense layer with thresholds, then two LUT layers chained to the output."""
    rng = np.random.default_rng(seed)
    layers = [
        mv(rng, "fc", 8, 6, U2, D["INT3"], t=3, pe=2, simd=3),
        lut(rng, "l0", 8, 6, 3, U2, U2),
        lut(rng, "l1", 6, 4, 2, U2, BIPOLAR),
    ]
    return graph("folded_then_lut", (6,), U2, layers)


def skidded(seed=0):
    """Two folded dense layers, each ending in a skid buffer (``out_skid``: inside the unit,
    not a stage of its own)."""
    rng = np.random.default_rng(seed)
    layers = [
        mv(rng, "fc0", 8, 6, U2, D["INT3"], t=3, pe=2, simd=3, pipeline=1).refold(out_skid=1),
        mv(rng, "fc1", 4, 8, U2, D["INT3"], pe=2, simd=4).refold(out_skid=1),
    ]
    return graph("skidded", (6,), U2, layers)


def forked(seed=0):
    """Two LUT layers chained into a fork: two LUT branches joined by a concatenation."""
    rng = np.random.default_rng(seed)
    layers = [
        lut(rng, "l0", 12, 8, 3, U2, U2),
        lut(rng, "l1", 8, 8, 2, U2, U2),
        lut(rng, "a", 8, 4, 3, U2, U2),
        lut(rng, "b", 8, 6, 2, U2, U2),
        Concat(name="cat", spatial=(), channels=(4, 6), dtypes=(U2, U2), dtype=U2, pe=2),
    ]
    return graph("forked", (12,), U2, layers, {"b": ("l1",), "cat": ("a", "b")})


GRAPHS = {
    "lut_chain": (lut_chain, ["LutLayer"] * 3 + ["Skid"], {"l0", "l1", "l2"}),
    "parallel_mlp": (
        parallel_mlp,
        ["MatrixVector", "Threshold", "MatrixVector", "MatrixVector", "Skid"],
        {"fc0", "act", "fc1", "fc2"},
    ),
    "lut_then_folded": (
        lut_then_folded,
        ["LutLayer", "LutLayer", "WidthConverter", "Fifo", "MatrixVector", "Fifo"],
        {"l0", "l1"},
    ),
    "folded_then_lut": (
        folded_then_lut,
        ["MatrixVector", "WidthConverter", "Fifo", "LutLayer", "LutLayer", "Skid"],
        {"l0", "l1"},
    ),
    "skidded": (
        skidded,
        ["MatrixVector", "WidthConverter", "Fifo", "MatrixVector", "Fifo"],
        set(),
    ),
    "forked": (
        forked,
        [
            *("LutLayer", "LutLayer", "Fork", "Fifo", "LutLayer", "Fifo", "LutLayer"),
            *("WidthConverter", "Fifo", "WidthConverter", "Fifo", "Concat", "Fifo"),
        ],
        {"l0", "l1"},
    ),
}


def run(ir, samples, **kw):
    """Simulate the Accelerator of *ir* on *samples*: ``(outputs, stats)``."""
    stages = plan(ir)
    dut = Accelerator(ir)
    beats = to_beats(samples, ir.input.dtype, stages[0].in_lanes)
    last = ir.layers[-1]
    n_out = samples.size // np.prod(ir.input.shape) * np.prod(last.out_shape)
    out, stats = run_stream(dut, beats, int(n_out) // stages[-1].out_lanes, **kw)
    return from_beats(out, last.out_dtype, stages[-1].out_lanes, last.out_shape), stats


@pytest.mark.parametrize("name", GRAPHS)
def test_plan_chains_one_sample_per_clock_units(name):
    make, kinds, chained = GRAPHS[name]
    stages = plan(make())
    assert [s.kind for s in stages] == kinds
    assert {s.name for s in stages if s.enable} == chained
    # the enable comes from the stage right after the chain
    after = {s.enable for s in stages if s.enable}
    assert len(after) == bool(chained)
    assert after <= {s.name for s in stages if s.kind != "LutLayer"}


def test_units_of_a_chain_take_no_skid_of_their_own():
    """``out_skid`` on a unit that runs under its chain's clock enable is ignored: the chain
    already ends in one skid buffer, and a unit of its own would not follow the enable."""
    ir = parallel_mlp(seed=3)
    layers = tuple(x.refold(out_skid=1) if x.kind == "MatrixVector" else x for x in ir.layers)
    ir = dataclasses.replace(ir, layers=layers)
    assert not any(x.has_skid for x in layers if x.kind == "MatrixVector")
    assert [s.kind for s in plan(ir)] == GRAPHS["parallel_mlp"][1]
    x = random_values(np.random.default_rng(9), ir.input.dtype, (100, *ir.input.shape))
    got, _ = run(ir, x, seed=4, idle=0.3, stall=0.3)
    assert np.array_equal(got, ir.execute(x))


@pytest.mark.parametrize("name", GRAPHS)
def test_matches_golden_under_stalls(name):
    ir = GRAPHS[name][0](seed=1)
    rng = np.random.default_rng(sorted(GRAPHS).index(name))
    x = random_values(rng, ir.input.dtype, (200, *ir.input.shape))
    for seed, (idle, stall) in enumerate([(0.3, 0.3), (0.5, 0.5), (0.0, 0.7), (0.7, 0.0)]):
        got, _ = run(ir, x, seed=seed, idle=idle, stall=stall)
        assert np.array_equal(got, ir.execute(x)), f"seed {seed}: mismatches"


@pytest.mark.parametrize("name", GRAPHS)
def test_full_rate_timing_equals_estimates(name):
    ir = GRAPHS[name][0](seed=2)
    x = random_values(np.random.default_rng(5), ir.input.dtype, (30, *ir.input.shape))
    got, stats = run(ir, x)
    assert np.array_equal(got, ir.execute(x))
    est = estimates(plan(ir))
    stages = plan(ir)
    in_beats = stages[0].in_beats
    out_beats = len(stats["out_cycles"]) // len(x)
    starts = stats["out_cycles"][::out_beats]
    assert starts[0] - stats["first_in"] == est["latency_cycles"]
    gaps = np.diff(starts)
    assert gaps[len(gaps) // 2 :].max() == est["ii_cycles"] >= in_beats
