"""ThresholdUnit against the golden model ``Threshold.execute`` (``apply_thresholds``):
bit-exact under random idle input and backpressure, measured II / latency equal to the
estimates, and every input value against thresholds at and beyond the ends of its range."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable
from qonnx.core.datatype import DataType
from streams import from_beats, run_stream, to_beats

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.ir.layers import Threshold
from gatemill.hdl.threshold import (
    FoldedThresholds,
    ThresholdUnit,
    cycles_per_sample,
    latency_cycles,
    resources,
)

D = DataType


def random_values(rng, dtype, shape):
    if dtype == BIPOLAR:
        return rng.choice([-1, 1], size=shape)
    return rng.integers(int(dtype.min()), int(dtype.max()) + 1, size=shape)


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


def check(layer, x, seed=0):
    """Random idle/stall run bit-exact with ``layer.execute``; a full-rate run with measured II
    (between consecutive samples' first output beats) and latency equal to the estimates."""
    expected = layer.execute(x)
    beats = to_beats(x, layer.in_dtype, layer.pe)
    n_out = len(beats)
    out, _ = run_stream(ThresholdUnit(layer=layer), beats, n_out, seed=seed, idle=0.3, stall=0.3)
    got = from_beats(out, layer.out_dtype, layer.pe, layer.out_shape)
    assert np.array_equal(got, expected), f"{np.count_nonzero(got != expected)} mismatches"

    out, stats = run_stream(ThresholdUnit(layer=layer), beats, n_out)
    got = from_beats(out, layer.out_dtype, layer.pe, layer.out_shape)
    assert np.array_equal(got, expected), f"{np.count_nonzero(got != expected)} mismatches"
    firsts = stats["out_cycles"][:: n_out // len(x)]
    assert np.diff(firsts).tolist() == [cycles_per_sample(layer)] * (len(x) - 1)
    assert stats["first_out"] - stats["first_in"] == latency_cycles(layer)


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
    check(layer, random_values(rng, layer.in_dtype, (8, *layer.shape)))


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
    check(layer, np.concatenate([x, x]))


def test_estimates():
    rng = np.random.default_rng(5)
    layer = make_layer(rng, shape=(3, 3, 4), pe=2, in_dtype=D["INT5"], out_dtype=D["UINT2"],
                       direction="mixed")  # fmt: skip
    assert cycles_per_sample(layer) == 3 * 3 * 4 // 2
    assert latency_cycles(layer) == 2
    # bounds in [-16, 16]: 6 bits, 3 per channel, plus a flip bit per channel (mixed)
    assert resources(layer) == {"threshold_bits": 4 * (3 * 6 + 1), "comparators": 2 * 3}


def test_rejects_bad_arguments():
    with warnings.catch_warnings():
        # the half-built components are never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="must be a Threshold, not 'x'") as info:
            ThresholdUnit(layer="x")
        kw = dict(thresholds=[[1], [2]], direction=[1, 1], value_range=(0, 3),
                  out_dtype=D["UINT1"], out_base=0)  # fmt: skip
        with pytest.raises(ValueError, match="pe must be a positive divisor of 2, not 3"):
            FoldedThresholds(**kw, pe=3)
        with pytest.raises(ValueError, match=r"value_range .* not \(3, 0\)"):
            FoldedThresholds(**{**kw, "value_range": (3, 0)}, pe=1)
        del info
        gc.collect()
