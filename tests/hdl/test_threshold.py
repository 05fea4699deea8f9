"""ThresholdUnit against the golden model ``Threshold.execute`` (``apply_thresholds``) and the
kind's timing model (:func:`harness.check_unit`), and every input value against thresholds at
and beyond the ends of its range."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import Shape, UnusedElaboratable
from harness import check_unit, random_values
from qonnx.core.datatype import DataType

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.kinds.threshold import Threshold
from gatemill.hdl.threshold import (
    AFFINE_MIN_LEVELS,
    FoldedThresholds,
    ThresholdUnit,
    affine_count,
    known_comparisons,
    live_comparisons,
    table_bits,
    table_cost,
)

D = DataType


def make_layer(rng, *, shape, pe, in_dtype, out_dtype, out_base=0, direction="inc"):
    """Random thresholds over the input range and a little beyond it, sorted per channel and
    reversed for direction -1."""
    channels = shape[-1]
    levels = 1 if out_dtype == BIPOLAR else int(out_dtype.max()) - out_base
    lo, hi = int(in_dtype.min()), int(in_dtype.max())
    t = np.sort(rng.integers(lo - 2, hi + 3, (channels, levels)), axis=1)
    d = {
        "inc": np.ones(channels, np.int64),
        "dec": -np.ones(channels, np.int64),
        "mixed": rng.choice([-1, 1], channels),
    }[direction]
    t[d < 0] = t[d < 0, ::-1]
    return Threshold(
        name="thr",
        shape=shape,
        in_dtype=in_dtype,
        thresholds=t,
        direction=d,
        out_dtype=out_dtype,
        out_base=out_base,
        pe=pe,
    )


CASES = {
    "pe1": dict(shape=(4,), pe=1, in_dtype=D["INT6"], out_dtype=D["UINT2"]),
    "pe_c": dict(shape=(6,), pe=6, in_dtype=D["UINT5"], out_dtype=D["INT3"], out_base=-4),
    "intermediate_mixed": dict(shape=(8,), pe=2, in_dtype=D["INT8"], out_dtype=D["UINT3"],
                               direction="mixed"),
    "decreasing": dict(shape=(6,), pe=3, in_dtype=D["UINT4"], out_dtype=D["UINT2"],
                       direction="dec"),
    "bipolar_out": dict(shape=(4,), pe=2, in_dtype=D["INT4"], out_dtype=BIPOLAR,
                        direction="mixed"),
    "bipolar_in": dict(shape=(4,), pe=2, in_dtype=BIPOLAR, out_dtype=D["UINT1"]),
    "feature_map_3x3": dict(shape=(3, 3, 4), pe=2, in_dtype=D["INT5"], out_dtype=D["UINT2"]),
    "odd_10": dict(shape=(10,), pe=5, in_dtype=D["INT7"], out_dtype=D["UINT2"],
                   direction="mixed"),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_matches_golden(name):
    rng = np.random.default_rng(sorted(CASES).index(name))
    layer = make_layer(rng, **CASES[name])
    check_unit(layer, random_values(rng, layer.in_dtype, (8, *layer.shape)))


@pytest.mark.parametrize("in_dtype", [D["INT4"], D["UINT3"], D["BINARY"], D["INT1"], BIPOLAR])
def test_every_value_at_range_edges(in_dtype):
    """Every input value against thresholds at, next to and beyond both ends of the input
    range (where the stored bounds are clamped), in both directions."""
    lo, hi = int(in_dtype.min()), int(in_dtype.max())
    edges = [lo - 2, lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, hi + 2]
    rows = [[e] for e in edges]
    thresholds = np.array(rows + rows, np.int64)
    direction = np.array([1] * len(edges) + [-1] * len(edges), np.int64)
    values = np.arange(lo, hi + 1) if in_dtype != BIPOLAR else np.array([-1, 1])
    layer = Threshold(
        name="edges",
        shape=(len(values), len(direction)),
        in_dtype=in_dtype,
        thresholds=thresholds,
        direction=direction,
        out_dtype=D["UINT1"],
        pe=4,
    )
    x = np.repeat(values[:, None], len(direction), axis=1)[None]
    check_unit(layer, np.concatenate([x, x]))


@pytest.mark.parametrize("levels", [1, 2, 3, 7, 8, 15, 63])
@pytest.mark.parametrize("registers", [(), (1,), "all"])
def test_binary_search_counts_every_value(levels, registers):
    """Constant thresholds counted by binary search, unregistered or registered after some
    or every level: every value of the range (and thresholds beyond its ends, repeated
    ones, mixed directions) gives apply_thresholds' count, ``len(registers)`` edges later."""
    from amaranth.sim import Simulator

    from gatemill.flow.kinds.thresholds import apply_thresholds

    rng = np.random.default_rng(levels)
    lo, hi = -20, 17
    t = np.sort(rng.integers(lo - 3, hi + 4, (4, levels)), axis=1)
    d = np.array([1, -1, 1, -1])
    t[d < 0] = t[d < 0, ::-1]
    steps = levels.bit_length()
    cuts = tuple(range(1, steps)) if registers == "all" else registers
    if cuts and max(cuts) >= steps:
        return
    out = D["UINT6"]
    unit = FoldedThresholds(thresholds=t[None], direction=d[None], value_range=(lo, hi),
                            out_dtype=out, out_base=0, search=cuts)  # fmt: skip
    values = np.arange(lo, hi + 1)
    want = apply_thresholds(np.repeat(values[:, None], 4, axis=1), t, d, out, 0)
    got = []

    async def bench(ctx):
        ctx.set(unit.en, 1)
        for k in range(len(values) + len(cuts)):
            v = values[min(k, len(values) - 1)]
            for p in range(4):
                ctx.set(unit.value[p], int(v))
            if k >= len(cuts):
                got.append([ctx.get(unit.result[p]) for p in range(4)])
            await (ctx.tick() if cuts else ctx.delay(1e-6))

    sim = Simulator(unit)
    sim.add_clock(1e-6, if_exists=True)
    sim.add_testbench(bench)
    sim.run()
    assert np.array_equal(np.array(got), want)


def test_a_lane_range_decides_the_thresholds_beyond_it():
    """Constant thresholds with each lane's own range (a row of a layer whose weights are
    known): thresholds at and beyond the lane's ends are constants, the others compared;
    every value of every lane's range gives apply_thresholds' count."""
    from amaranth.sim import Simulator

    from gatemill.flow.kinds.thresholds import apply_thresholds

    rng = np.random.default_rng(3)
    lo, hi = -20, 17  # the layer's range
    lane_lo, lane_hi = np.array([-20, -3, 5, -9]), np.array([17, 4, 11, -9])
    t = np.sort(rng.integers(lo - 3, hi + 4, (4, 7)), axis=1)
    t[1] = [-4, -3, -1, 0, 4, 5, 9]  # below, at and beyond lane 1's ends
    t[2] = [3, 5, 6, 8, 11, 12, 20]  # and lane 2's
    d = np.array([1, -1, 1, -1])
    t[d < 0] = t[d < 0, ::-1]
    known = known_comparisons(t + (d < 0)[:, None], lane_lo, lane_hi)
    assert (known != 0).any() and (known == 0).any()
    out = D["UINT3"]
    unit = FoldedThresholds(thresholds=t[None], direction=d[None], value_range=(lo, hi),
                            out_dtype=out, out_base=0, lane_range=(lane_lo, lane_hi))  # fmt: skip
    # lane 3 takes one value: all its thresholds are decided
    assert (known[3] != 0).all()
    assert 0 < live_comparisons(t, d, lane_lo, lane_hi) <= (known == 0).sum()
    steps = int((lane_hi - lane_lo).max()) + 1
    values = np.minimum(lane_lo[None] + np.arange(steps)[:, None], lane_hi[None])
    want = apply_thresholds(values, t, d, out, 0)
    got = []

    async def bench(ctx):
        for v in values:
            for p in range(4):
                ctx.set(unit.value[p], int(v[p]))
            await ctx.delay(1e-6)
            got.append([ctx.get(unit.result[p]) for p in range(4)])

    sim = Simulator(unit)
    sim.add_testbench(bench)
    sim.run()
    assert np.array_equal(np.array(got), want)


def test_timing_and_table_size():
    rng = np.random.default_rng(5)
    layer = make_layer(rng, shape=(3, 3, 4), pe=2, in_dtype=D["INT5"], out_dtype=D["UINT2"],
                       direction="mixed")  # fmt: skip
    assert layer.cycles() == 3 * 3 * 4 // 2
    assert layer.latency() == 2
    # bounds in [-16, 16]: 6 bits, 3 per channel, plus a flip bit per channel (mixed)
    assert table_bits(layer.thresholds, layer.direction, (-16, 15)) == 4 * (3 * 6 + 1)


@pytest.mark.parametrize("direction", ["inc", "mixed"])
def test_table_cost_counts_the_memory_bits_that_vary(direction):
    """table_cost against the words FoldedThresholds stores: a bit column the same in every
    fold is a constant, a channel whose bounds every fold shares compares with constants."""
    rng = np.random.default_rng(6)
    layer = make_layer(rng, shape=(1, 8), pe=2, in_dtype=D["INT5"], out_dtype=D["UINT2"],
                       direction=direction)  # fmt: skip
    t, d = (a.copy() for a in layer.folded_thresholds())
    t[:, 1] = t[0, 1]  # lane 1: the same bounds in every fold
    d[:, 1] = d[0, 1]
    with warnings.catch_warnings():
        # only its words are read: never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        unit = FoldedThresholds(thresholds=t, direction=d, value_range=(-16, 15),
                                out_dtype=D["UINT2"], out_base=0)  # fmt: skip
        words = np.array(unit._words(), dtype=object)
        width = Shape.cast(unit.word_layout).width
        del unit
        gc.collect()
    columns = [{(int(w) >> k) & 1 for w in words} for k in range(width)]
    cost = table_cost(t, d, (-16, 15))
    assert cost.word == width == table_bits(layer.thresholds, layer.direction, (-16, 15)) // 4
    assert cost.varying == sum(len(c) > 1 for c in columns) > 0
    # lane 1's 3 bounds of 6 bits are constants; lane 0's random ones vary (each level)
    assert cost.bound == 6 and cost.constant == 3 * 6 and cost.compared == 3 * 6


@pytest.mark.parametrize("flip", [False, True])
def test_affine_count_of_a_requantization(flip):
    """A requantization's thresholds (ceilings of an arithmetic progression) have an affine
    count, exact on every value of the range (affine_count checks it itself); random ones,
    or fewer than AFFINE_MIN_LEVELS inside the range, have none."""
    rng = np.random.default_rng(40 + flip)
    lo, hi = -3000, 2500
    for _ in range(20):
        start, step = rng.uniform(-2500, -1000), rng.uniform(1.01, 60)
        bounds = np.ceil(start + step * np.arange(63)).astype(np.int64)
        if flip:
            bounds = bounds[::-1]
        a = affine_count(bounds, flip, lo, hi)
        assert a is not None and (a.m < 0) == flip and a.levels == 63
        value = np.arange(lo, hi + 1)
        want = ((value[:, None] >= bounds[None, :]) ^ flip).sum(axis=1)
        assert np.array_equal(a.base + np.clip((value * a.m + a.c) >> a.shift, 0, 63), want)
    noise = np.sort(rng.integers(lo, hi, 63))
    assert affine_count(noise, False, lo, hi) is None
    few = np.array([-5000] * 60 + [0, 10, 20])  # 3 inside the range
    assert AFFINE_MIN_LEVELS > 3 and affine_count(few, False, lo, hi) is None


def test_rejects_bad_arguments():
    with warnings.catch_warnings():
        # the half-built components are never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="must be a Threshold layer, not 'x'") as info:
            ThresholdUnit(layer="x")
        kw = dict(thresholds=[[[1], [2]]], direction=[[1, 1]], value_range=(0, 3),
                  out_dtype=D["UINT1"], out_base=0)  # fmt: skip
        with pytest.raises(ValueError, match=r"thresholds must be \[NF, PE, T>=1\]"):
            FoldedThresholds(**{**kw, "thresholds": [[1], [2]]})
        with pytest.raises(ValueError, match=r"value_range .* not \(3, 0\)"):
            FoldedThresholds(**{**kw, "value_range": (3, 0)})
        del info
        gc.collect()
