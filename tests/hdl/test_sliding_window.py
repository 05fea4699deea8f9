"""SlidingWindowUnit against the golden model ``SlidingWindow.execute`` and the kind's timing
model (:func:`harness.check_unit`), and its line buffer against the schedule."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from harness import check_unit, random_values, verilog_arrays
from qonnx.core.datatype import DataType
from streams import from_beats, run_stream, to_beats

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.kinds.sliding_window import SlidingWindow
from gatemill.hdl.sliding_window import SlidingWindowUnit

D = DataType


CASES = {
    # name: SlidingWindow arguments (name and samples aside)
    "3x3_pad1_simd1": dict(ifm=(4, 5, 3), kernel=(3, 3), pad=(1, 1, 1, 1), dtype=D["INT4"]),
    "3x3_pad1_simd_c": dict(ifm=(4, 5, 3), kernel=(3, 3), pad=(1, 1, 1, 1), dtype=D["INT4"],
                            simd=3),
    "3x3_pad1_stride2": dict(ifm=(5, 6, 4), kernel=(3, 3), stride=(2, 2), pad=(1, 1, 1, 1),
                             dtype=D["UINT3"], simd=2),
    "3x3_valid": dict(ifm=(5, 4, 2), kernel=(3, 3), dtype=D["INT8"], simd=1),
    "kernel_is_input": dict(ifm=(3, 4, 2), kernel=(3, 4), dtype=D["INT3"], simd=1),
    "kernel_over_padded_input": dict(ifm=(2, 3, 1), kernel=(3, 3), pad=(1, 0, 0, 0),
                                     dtype=D["INT2"]),
    "1x1": dict(ifm=(3, 4, 4), kernel=(1, 1), dtype=D["UINT4"], simd=2),
    "1x1_stride2": dict(ifm=(5, 5, 3), kernel=(1, 1), stride=(2, 2), dtype=D["INT4"]),
    "2x3_h_ne_w": dict(ifm=(5, 6, 2), kernel=(2, 3), stride=(1, 2), pad=(1, 0, 0, 2),
                       dtype=D["INT4"]),
    "3x2_odd_channels": dict(ifm=(3, 7, 5), kernel=(3, 2), stride=(2, 1), pad=(1, 1, 1, 0),
                             dtype=D["INT3"]),
    "stride_over_kernel": dict(ifm=(6, 7, 3), kernel=(2, 2), stride=(3, 3), dtype=D["UINT2"],
                               simd=3),
    "1xk_row": dict(ifm=(1, 6, 2), kernel=(1, 3), pad=(0, 1, 0, 1), dtype=D["INT4"], simd=2),
    # rows alternate between output-bound and input-bound: II above max(in, out) beats
    "mixed_bound_rows": dict(ifm=(8, 5, 1), kernel=(3, 1), stride=(2, 1), dtype=D["INT2"]),
    "bipolar": dict(ifm=(4, 4, 3), kernel=(2, 2), dtype=BIPOLAR, simd=3),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_matches_golden(name):
    rng = np.random.default_rng(sorted(CASES).index(name))
    layer = SlidingWindow(name="swu", **CASES[name])
    check_unit(layer, random_values(rng, layer.dtype, (3, *layer.in_shape)), seed=len(name))


@pytest.mark.parametrize("name", CASES)
def test_reads_never_meet_writes(name):
    """The line buffer tells Yosys a read never meets a write to its address (no_rw_check):
    no read whose data leaves the unit does, whether the input or the output waits."""
    rng = np.random.default_rng(100 + sorted(CASES).index(name))
    layer = SlidingWindow(name="swu", **CASES[name])
    x = random_values(rng, layer.dtype, (3, *layer.in_shape))
    beats = to_beats(x, layer.dtype, layer.simd)
    expected = layer.execute(x)
    for seed, (idle, stall) in enumerate([(0.0, 0.0), (0.0, 0.7), (0.5, 0.2), (0.7, 0.0)]):
        unit = layer.unit()
        out, stats = run_stream(
            unit, beats, expected.size // layer.simd, seed=seed, idle=idle, stall=stall,
            never=unit.read_hazard,
        )  # fmt: skip
        assert stats["high"] == []
        assert np.array_equal(from_beats(out, layer.dtype, layer.simd, layer.out_shape), expected)


def test_refolding_keeps_results():
    """Every SIMD of one layer gives the same windows."""
    rng = np.random.default_rng(20)
    layer = SlidingWindow(name="swu", ifm=(4, 4, 6), kernel=(3, 3), stride=(1, 2),
                          pad=(1, 1, 1, 1), dtype=D["INT4"])  # fmt: skip
    x = random_values(rng, layer.dtype, (2, *layer.in_shape))
    for simd in (1, 2, 3, 6):
        check_unit(layer.refold(simd=simd), x, seed=simd)


def test_timing_model():
    """The documented formulas on hand-worked layers."""
    same = SlidingWindow(name="swu", ifm=(8, 8, 4), kernel=(3, 3), pad=(1, 1, 1, 1),
                         dtype=D["INT4"], simd=2)  # fmt: skip
    # output-bound: 8 rows of 8 windows of 9 * 2 beats; first row needs input rows 0..1
    assert same.cycles() == 8 * 8 * 9 * 2
    assert same.latency() == 2 * 8 * 2 + 2  # the read and its register
    # output row k reads rows k-1..k+1 while row k+2 arrives: 4 rows of 8 * 2 words
    assert (same.schedule().rows, same.schedule().irow) == (4, 8 * 2)
    down = SlidingWindow(name="swu", ifm=(6, 6, 2), kernel=(1, 1), stride=(2, 2),
                         dtype=D["UINT2"], simd=2)  # fmt: skip
    # input-bound: 2 input rows of 6 beats per output row of 3 beats
    assert down.cycles() == 6 * 6
    assert down.latency() == 6 + 2
    assert down.schedule().rows == 3
    whole = SlidingWindow(name="swu", ifm=(3, 3, 1), kernel=(3, 3), dtype=D["INT2"])
    # one window: the next sample fills a second frame while the window is read
    assert (whole.cycles(), whole.latency()) == (9, 9 + 2)
    assert whole.schedule().rows == 2 * 3
    mixed = SlidingWindow(name="swu", **CASES["mixed_bound_rows"])
    # rows 0, 1 output-bound (15 beats out, 5 in); the last takes 4 input rows (20 beats)
    assert mixed.cycles() == 15 + 15 + 20


@pytest.mark.parametrize("name", ["3x3_pad1_stride2", "kernel_is_input", "1x1_stride2"])
def test_line_buffer_is_what_the_cost_model_counts(name):
    """The line buffer reaches Verilog as one memory of the schedule's size, the one the cost
    model maps."""
    layer = SlidingWindow(name="swu", **CASES[name])
    arrays = verilog_arrays(verilog.convert(SlidingWindowUnit(layer=layer), name="swu"))
    p = layer.schedule()
    assert arrays == {"lines": (layer.simd * layer.dtype.bitwidth(), p.rows * p.irow)}
    assert set(layer.features().memories) == {"lines"}


def test_rejects_bad_layers():
    with warnings.catch_warnings():
        # the half-built component is never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="must be a SlidingWindow layer, not 3"):
            SlidingWindowUnit(layer=3)
        row_of_pad = SlidingWindow(name="swu", ifm=(3, 3, 1), kernel=(2, 2), pad=(2, 0, 0, 0),
                                   dtype=D["INT2"])  # fmt: skip
        with pytest.raises(ValueError, match=r"smaller than the kernel height 2.*\(2, 0, 0, 0\)"):
            SlidingWindowUnit(layer=row_of_pad)
        with pytest.raises(ValueError, match="smaller than the kernel"):
            row_of_pad.cycles()
        gc.collect()
