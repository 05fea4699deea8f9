"""GlobalSumUnit against the golden model ``GlobalSum.execute`` and the kind's timing model
(:func:`harness.check_unit`)."""

from __future__ import annotations

import dataclasses
import gc
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from harness import check_unit, random_values, verilog_arrays
from qonnx.core.datatype import DataType
from test_matrix_vector import random_thresholds

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.kinds.global_sum import GlobalSum, sum_dtype
from gatemill.hdl.global_sum import GlobalSumUnit

D = DataType


def make_layer(rng, *, shape, pe, in_dtype, samples=4, out_dtype=None, out_base=0,
               direction="inc"):  # fmt: skip
    """A layer and *samples* random inputs for it; thresholds (with ``out_dtype``) drawn from
    the sums of those inputs."""
    positions = int(np.prod(shape[:-1]))
    raw = GlobalSum(
        name="gsum", shape=shape, in_dtype=in_dtype, acc_dtype=sum_dtype(in_dtype, positions), pe=pe
    )
    x = random_values(rng, in_dtype, (samples, *shape))
    if out_dtype is None:
        return raw, x
    c = shape[-1]
    levels = 1 if out_dtype == BIPOLAR else int(out_dtype.max()) - out_base
    d = {"inc": np.ones(c, np.int64), "dec": -np.ones(c, np.int64),
         "mixed": rng.choice([-1, 1], c)}[direction]  # fmt: skip
    lo, hi = int(raw.acc_dtype.min()), int(raw.acc_dtype.max())
    t = random_thresholds(rng, raw.accumulate(x), levels, d, lo, hi)
    return dataclasses.replace(
        raw, thresholds=t, direction=d, out_dtype=out_dtype, out_base=out_base
    ), x


CASES = {
    # name: make_layer arguments
    "gap_pe1": dict(shape=(3, 3, 4), pe=1, in_dtype=D["UINT4"]),
    "gap_pe_c": dict(shape=(4, 3, 6), pe=6, in_dtype=D["UINT3"]),
    "gap_pe_mid_thresholds": dict(shape=(2, 5, 6), pe=2, in_dtype=D["UINT2"],
                                  out_dtype=D["UINT3"], direction="mixed"),
    "set_signed": dict(shape=(7, 5), pe=1, in_dtype=D["INT4"]),
    "set_decreasing": dict(shape=(6, 4), pe=2, in_dtype=D["INT5"], out_dtype=D["INT3"],
                           out_base=-3, direction="dec"),
    "one_fold_thresholds": dict(shape=(5, 3), pe=3, in_dtype=D["INT3"], out_dtype=BIPOLAR,
                                direction="mixed"),
    "one_position": dict(shape=(1, 4), pe=2, in_dtype=D["INT6"]),
    "one_position_thresholds": dict(shape=(1, 1, 4), pe=1, in_dtype=D["UINT3"],
                                    out_dtype=D["UINT2"]),
    "bipolar": dict(shape=(9, 4), pe=2, in_dtype=BIPOLAR),
    "bipolar_thresholds": dict(shape=(3, 3, 2), pe=2, in_dtype=BIPOLAR, out_dtype=D["UINT2"]),
    "rank4": dict(shape=(2, 2, 3, 4), pe=4, in_dtype=D["INT2"], out_dtype=D["UINT1"]),
    "wide": dict(shape=(16, 16, 2), pe=1, in_dtype=D["INT8"], samples=2),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_matches_golden(name):
    rng = np.random.default_rng(sorted(CASES).index(name))
    check_unit(*make_layer(rng, **CASES[name]), seed=len(name))


def test_refolding_keeps_results():
    rng = np.random.default_rng(5)
    layer, x = make_layer(rng, shape=(3, 4, 12), pe=1, in_dtype=D["UINT4"], samples=2,
                          out_dtype=D["UINT2"], direction="mixed")  # fmt: skip
    for pe in (2, 3, 4, 6, 12):
        check_unit(layer.refold(pe=pe), x, seed=pe)


def test_golden_model_is_the_sum_over_positions():
    rng = np.random.default_rng(1)
    layer, x = make_layer(rng, shape=(3, 4, 5), pe=1, in_dtype=D["INT4"])
    assert np.array_equal(layer.execute(x), x.sum(axis=(1, 2)))
    assert layer.out_shape == (5,) and layer.acc_dtype == D["INT8"]  # 12 * [-8, 7]


def test_timing_model():
    """``positions * C / pe`` cycles; the first output beat two registers after the last
    position's first beat (``(positions - 1) * CF`` beats), three with thresholds."""
    rng = np.random.default_rng(2)
    layer, _ = make_layer(rng, shape=(4, 4, 6), pe=2, in_dtype=D["UINT4"], out_dtype=D["UINT2"])
    assert layer.cycles() == 16 * 3
    assert layer.latency() == 15 * 3 + 2 + 1
    raw = dataclasses.replace(layer, thresholds=None, direction=None, out_dtype=None)
    assert raw.beat_times(list(range(raw.in_beats))) == [47, 48, 49]
    assert raw.fold_options() == [{"pe": p} for p in (1, 2, 3, 6)]


def test_sum_dtype():
    assert sum_dtype(D["UINT4"], 16) == D["UINT8"]
    assert sum_dtype(D["INT4"], 16) == D["INT8"]
    assert sum_dtype(BIPOLAR, 9) == D["INT5"]
    assert sum_dtype(D["BINARY"], 1) == D["BINARY"]


def test_sums_are_a_memory_of_c_over_pe_words():
    rng = np.random.default_rng(3)
    layer, _ = make_layer(rng, shape=(4, 4, 8), pe=2, in_dtype=D["UINT4"])
    arrays = verilog_arrays(verilog.convert(GlobalSumUnit(layer=layer), name="gsum"))
    assert arrays == {"sums": (2 * 8, 4)}
    assert set(layer.features().memories) == {"sums.sums"}
    one_fold = layer.refold(pe=8)
    assert verilog_arrays(verilog.convert(GlobalSumUnit(layer=one_fold), name="gsum")) == {}


def test_rejects_bad_layers():
    with pytest.raises(ValueError, match="cannot hold"):
        GlobalSum(name="g", shape=(4, 4, 2), in_dtype=D["UINT4"], acc_dtype=D["UINT7"])
    with pytest.raises(ValueError, match="shape must be"):
        GlobalSum(name="g", shape=(4,), in_dtype=D["UINT4"], acc_dtype=D["UINT7"])
    with pytest.raises(ValueError, match="pe must be a positive divisor of 6"):
        GlobalSum(name="g", shape=(2, 6), in_dtype=D["UINT4"], acc_dtype=D["UINT5"], pe=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="must be a GlobalSum layer, not 3") as info:
            GlobalSumUnit(layer=3)
        del info
        gc.collect()
