"""VectorVectorUnit against the golden model ``VectorVector.execute`` and the kind's timing model
(:func:`harness.check_unit`), alone and fed by a SlidingWindowUnit (a depthwise convolution)."""

from __future__ import annotations

import dataclasses
import gc
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, UnusedElaboratable
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from harness import check_unit, random_values, verilog_arrays
from qonnx.core.datatype import DataType
from test_matrix_vector import random_thresholds

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.kinds.matrix_vector import min_acc_dtype
from gatemill.flow.kinds.sliding_window import SlidingWindow
from gatemill.flow.kinds.vector_vector import VectorVector
from gatemill.hdl.common import stream_of
from gatemill.hdl.vector_vector import VectorVectorUnit

D = DataType


def make_layer(
    rng,
    *,
    channels,
    taps,
    pe,
    in_dtype,
    w_dtype,
    spatial=(),
    samples=4,
    out_dtype=None,
    out_base=0,
    direction="inc",
    weights=None,
):
    """A random layer and *samples* random inputs for it. ``out_dtype=None`` gives the raw
    accumulator; ``direction`` is ``"inc"``, ``"dec"`` or ``"mixed"``."""
    w = random_values(rng, w_dtype, (channels, taps)) if weights is None else weights
    raw = VectorVector(
        name="vv",
        weights=w,
        in_dtype=in_dtype,
        w_dtype=w_dtype,
        acc_dtype=min_acc_dtype(w, in_dtype, False),
        spatial=spatial,
        pe=pe,
    )
    x = random_values(rng, in_dtype, (samples, *raw.in_shape))
    if out_dtype is None:
        return raw, x
    levels = 1 if out_dtype == BIPOLAR else int(out_dtype.max()) - out_base
    d = {
        "inc": np.ones(channels, np.int64),
        "dec": -np.ones(channels, np.int64),
        "mixed": rng.choice([-1, 1], channels),
    }[direction]
    lo, hi = (int(v) for v in (raw.acc_dtype.min(), raw.acc_dtype.max()))
    t = random_thresholds(rng, raw.accumulate(x), levels, d, lo, hi)
    layer = dataclasses.replace(
        raw, thresholds=t, direction=d, out_dtype=out_dtype, out_base=out_base
    )
    return layer, x


CASES = {
    # name: make_layer arguments
    "pe1_raw": dict(channels=4, taps=9, pe=1, in_dtype=D["INT4"], w_dtype=D["INT3"]),
    "pe_c_raw": dict(channels=4, taps=9, pe=4, in_dtype=D["UINT4"], w_dtype=D["INT4"]),
    "pe2_thresholds": dict(channels=6, taps=4, pe=2, in_dtype=D["UINT3"], w_dtype=D["INT2"],
                           spatial=(2, 3), out_dtype=D["UINT2"]),
    "pe3_mixed": dict(channels=6, taps=9, pe=3, in_dtype=D["INT5"], w_dtype=D["INT4"],
                      spatial=(2,), out_dtype=D["UINT3"], direction="mixed"),
    "decreasing": dict(channels=4, taps=3, pe=1, in_dtype=D["INT4"], w_dtype=D["INT3"],
                       out_dtype=D["INT3"], out_base=-3, direction="dec"),
    "one_tap": dict(channels=4, taps=1, pe=2, in_dtype=D["INT4"], w_dtype=D["INT3"],
                    spatial=(3,)),
    "one_tap_unfolded": dict(channels=3, taps=1, pe=3, in_dtype=D["UINT4"], w_dtype=D["INT4"],
                             spatial=(2, 2), out_dtype=D["UINT2"]),
    "one_fold_thresholds": dict(channels=5, taps=6, pe=5, in_dtype=D["INT3"],
                                w_dtype=D["INT3"], spatial=(2,), out_dtype=BIPOLAR,
                                direction="mixed"),
    "bipolar_w_int8": dict(channels=4, taps=4, pe=2, in_dtype=D["INT8"], w_dtype=BIPOLAR,
                           out_dtype=D["UINT2"], direction="dec"),
    "bipolar_w_uint8_raw": dict(channels=6, taps=3, pe=3, in_dtype=D["UINT8"],
                                w_dtype=BIPOLAR, spatial=(2,)),
    "bipolar_in_int_w": dict(channels=4, taps=9, pe=2, in_dtype=BIPOLAR, w_dtype=D["INT3"],
                             out_dtype=D["UINT2"], direction="mixed"),
    "wide_acc_raw": dict(channels=2, taps=25, pe=1, in_dtype=D["INT8"], w_dtype=D["INT8"]),
    "average_binary": dict(channels=6, taps=4, pe=2, in_dtype=D["UINT4"],
                           w_dtype=D["BINARY"], weights=np.ones((6, 4)), spatial=(2, 2),
                           out_dtype=D["UINT4"]),
    "average_uint1_raw": dict(channels=4, taps=9, pe=4, in_dtype=D["INT3"],
                              w_dtype=D["UINT1"], weights=np.ones((4, 9)), spatial=(2,)),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_matches_golden(name):
    rng = np.random.default_rng(sorted(CASES).index(name))
    check_unit(*make_layer(rng, **CASES[name]), seed=len(name))


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("sign", ["INT", "UINT"])
def test_input_widths(sign, bits):
    """Signed and unsigned inputs of 1..8 bits; thresholds on odd widths, raw on even."""
    rng = np.random.default_rng(200 + 2 * bits + (sign == "INT"))
    layer, x = make_layer(
        rng,
        channels=4,
        taps=3,
        pe=2,
        in_dtype=D[f"{sign}{bits}"] if (sign, bits) != ("UINT", 1) else D["BINARY"],
        w_dtype=D["INT3"],
        samples=3,
        out_dtype=D["UINT2"] if bits % 2 else None,
        direction="mixed",
    )
    check_unit(layer, x, seed=bits)


def test_refolding_keeps_results():
    """Every fold of one layer gives the same outputs."""
    rng = np.random.default_rng(7)
    layer, x = make_layer(
        rng, channels=6, taps=4, pe=1, in_dtype=D["INT3"], w_dtype=D["INT2"], samples=2,
        spatial=(2,), out_dtype=D["UINT2"], direction="mixed",
    )  # fmt: skip
    for pe in (2, 3, 6):
        check_unit(layer.refold(pe=pe), x, seed=pe)


def test_golden_model_is_a_depthwise_convolution():
    """After a sliding window, the layer is PyTorch's ``conv2d(groups=C)`` with the weights
    ``[C, 1, KH, KW]`` flattened to ``[C, KH * KW]``, and with all-ones weights ``K`` times
    ``avg_pool2d`` (float64: exact on these integers)."""
    import torch
    from torch.nn import functional

    rng = np.random.default_rng(11)
    c, kh, kw = 3, 3, 2
    win = SlidingWindow(name="win", ifm=(5, 4, c), kernel=(kh, kw), stride=(2, 1),
                        pad=(1, 0, 1, 1), dtype=D["INT4"])  # fmt: skip
    w = rng.integers(-4, 4, (c, 1, kh, kw))
    vv = VectorVector(
        name="vv",
        weights=w.reshape(c, -1),
        in_dtype=D["INT4"],
        w_dtype=D["INT3"],
        acc_dtype=D["INT12"],
        spatial=win.out_shape[:2],
    )
    x = random_values(rng, D["INT4"], (2, *win.in_shape))
    xt = functional.pad(torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64), (0, 1, 1, 1))
    want = functional.conv2d(xt, torch.tensor(w, dtype=torch.float64), stride=(2, 1), groups=c)
    got = vv.execute(win.execute(x))
    assert np.array_equal(got, want.numpy().transpose(0, 2, 3, 1).astype(np.int64))

    pool = SlidingWindow(name="win", ifm=(4, 6, c), kernel=(2, 3), stride=(2, 3),
                         dtype=D["INT4"])  # fmt: skip
    ones = np.ones((c, 6), np.int64)
    avg = VectorVector(name="vv", weights=ones, in_dtype=D["INT4"], w_dtype=D["BINARY"],
                       acc_dtype=D["INT7"], spatial=pool.out_shape[:2])  # fmt: skip
    x = random_values(rng, D["INT4"], (2, *pool.in_shape))
    xt = torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64)
    want = 6 * functional.avg_pool2d(xt, (2, 3), stride=(2, 3))
    got = avg.execute(pool.execute(x))
    assert np.array_equal(got, want.numpy().transpose(0, 2, 3, 1).astype(np.int64))


def test_timing_model():
    """The documented formulas: ``prod(spatial) * K * C / pe`` cycles; the first output beat
    after the window's last element arrives (``(K - 1) * CF`` beats) and three registers, four
    with thresholds."""
    rng = np.random.default_rng(8)
    layer, _ = make_layer(
        rng, channels=6, taps=9, pe=2, in_dtype=D["INT4"], w_dtype=D["INT3"], spatial=(2, 2),
        out_dtype=D["UINT2"], direction="mixed",
    )  # fmt: skip
    assert layer.cycles() == 4 * 9 * 3
    assert layer.latency() == 8 * 3 + 3 + 1
    raw = dataclasses.replace(layer, thresholds=None, direction=None, out_dtype=None)
    assert raw.latency() == 8 * 3 + 3
    assert raw.beat_times(list(range(raw.in_beats)))[:4] == [27, 28, 29, 27 + 27]


def test_folded_layout():
    """Beat ``(k, cf)`` multiplies lane ``p`` by ``W[cf * PE + p, k]``."""
    rng = np.random.default_rng(10)
    layer, _ = make_layer(rng, channels=6, taps=4, pe=3, in_dtype=D["INT4"], w_dtype=D["INT3"])
    w = layer.folded_weights()
    assert w.shape == (4, 2, 3)
    for k, cf, p in np.ndindex(*w.shape):
        assert w[k, cf, p] == layer.weights[cf * 3 + p, k]


def test_memories_are_inferred():
    """Weights and the sums reach Verilog as the memories the cost model maps; all-ones
    weights (average pooling) are a constant."""
    rng = np.random.default_rng(9)
    layer, _ = make_layer(
        rng, channels=6, taps=4, pe=2, in_dtype=D["INT4"], w_dtype=D["INT3"],
        out_dtype=D["UINT2"],
    )  # fmt: skip
    arrays = verilog_arrays(verilog.convert(VectorVectorUnit(layer=layer), name="vvu"))
    acc = layer.acc_dtype.bitwidth()
    assert arrays == {
        "weights": (2 * 3, 4 * 3),  # PE x INT3 bits, K x CF words
        "sums": (2 * acc, 3),  # PE sums, CF words
        "bounds": arrays["bounds"],  # the thresholds of the 3 folds
    }
    assert set(layer.features().memories) == {"weights", "sums.sums", "sums.thresholds.bounds"}
    avg, _ = make_layer(rng, **CASES["average_binary"])
    arrays = verilog_arrays(verilog.convert(VectorVectorUnit(layer=avg), name="vvu"))
    assert "weights" not in arrays and avg.uniform_weights()
    assert "weights" not in avg.features().memories


def test_fold_options_follow_the_sliding_window():
    """The window in front delivers any divisor of C a beat: every one is a fold."""
    win = SlidingWindow(name="win", ifm=(4, 4, 6), kernel=(3, 3), dtype=D["INT4"])
    layer, _ = make_layer(np.random.default_rng(0), channels=6, taps=9, pe=1,
                          in_dtype=D["INT4"], w_dtype=D["INT3"], spatial=(2, 2))  # fmt: skip
    assert [o["pe"] for o in layer.fold_options(win)] == [1, 2, 3, 6]
    assert [layer.cycles_for(o) for o in layer.fold_options(win)] == [216, 108, 72, 36]


def test_rejects_bad_layers():
    w = np.ones((2, 3), np.int64)
    with pytest.raises(ValueError, match="XNOR"):
        VectorVector(name="vv", weights=w, in_dtype=BIPOLAR, w_dtype=BIPOLAR, acc_dtype=D["INT3"])
    with pytest.raises(ValueError, match="cannot hold"):
        VectorVector(name="vv", weights=w, in_dtype=D["UINT4"], w_dtype=D["UINT1"],
                     acc_dtype=D["UINT5"])  # fmt: skip
    with pytest.raises(ValueError, match="pe must be a positive divisor of 2"):
        VectorVector(name="vv", weights=w, in_dtype=D["UINT4"], w_dtype=D["UINT1"],
                     acc_dtype=D["UINT6"], pe=3)  # fmt: skip
    with warnings.catch_warnings():
        # the half-built component is never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="must be a VectorVector layer, not 3") as info:
            VectorVectorUnit(layer=3)
        del info
        gc.collect()


# -- with the sliding window in front -------------------------------------------------------


class _Pair(wiring.Component):
    """Two units back to back, the first's output straight into the second's input."""

    def __init__(self, first, second):
        self._first, self._second = first, second
        super().__init__(
            {
                "i": In(stream_of(first.layer.in_dtype, first.layer.in_lanes)),
                "o": Out(stream_of(second.layer.out_dtype, second.layer.out_lanes)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.first, m.submodules.second = self._first, self._second
        wiring.connect(m, wiring.flipped(self.i), self._first.i)
        wiring.connect(m, self._first.o, self._second.i)
        wiring.connect(m, self._second.o, wiring.flipped(self.o))
        return m


@dataclasses.dataclass(frozen=True)
class WindowThenVector:
    """A sliding window feeding a vector-vector layer, as one layer for :func:`check_unit`:
    the golden model and the timing model are the two layers' in sequence (the vector-vector
    unit takes a beat every cycle, so it never holds the window back)."""

    win: SlidingWindow
    vv: VectorVector

    def __getattr__(self, name):
        return getattr(self.vv, name)

    in_dtype = property(lambda self: self.win.in_dtype)
    in_lanes = property(lambda self: self.win.in_lanes)
    in_beats = property(lambda self: self.win.in_beats)
    input_beats = property(lambda self: self.win.input_beats)
    arity = 1

    def execute(self, x):
        return self.vv.execute(self.win.execute(x))

    def unit(self):
        return _Pair(self.win.unit(), self.vv.unit())

    def beat_times(self, avail):
        return self.vv.beat_times(self.win.beat_times(avail))

    def latency(self):
        return self.beat_times(list(range(self.in_beats)))[0]

    def cycles(self):
        return max(self.win.cycles(), self.vv.cycles())


WINDOWED = {
    # name: (SlidingWindow arguments, VectorVector make_layer arguments)
    "3x3_same_depthwise": (dict(ifm=(4, 5, 4), kernel=(3, 3), pad=(1, 1, 1, 1)),
                           dict(w_dtype=D["INT3"], out_dtype=D["UINT2"], direction="mixed")),
    "3x3_stride2_pe_c": (dict(ifm=(5, 6, 3), kernel=(3, 3), stride=(2, 2), pad=(1, 1, 1, 1)),
                         dict(w_dtype=D["INT4"])),
    "2x2_average_pool": (dict(ifm=(4, 6, 4), kernel=(2, 2), stride=(2, 2)),
                         dict(w_dtype=D["BINARY"], out_dtype=D["UINT3"])),
    "3x2_valid": (dict(ifm=(5, 4, 6), kernel=(3, 2)), dict(w_dtype=BIPOLAR)),
}  # fmt: skip


@pytest.mark.parametrize("pe_choice", ["pe1", "pe_mid", "pe_c"])
@pytest.mark.parametrize("name", WINDOWED)
def test_after_a_sliding_window(name, pe_choice):
    """The pair (window, vector-vector) against the two golden models in sequence and the
    two timing models in sequence, for the smallest, a middle and the largest fold."""
    win_args, vv_args = WINDOWED[name]
    rng = np.random.default_rng(sorted(WINDOWED).index(name))
    c = win_args["ifm"][2]
    pe = {"pe1": 1, "pe_mid": [d for d in range(1, c + 1) if c % d == 0][1], "pe_c": c}[pe_choice]
    in_dtype = D["UINT3"] if vv_args["w_dtype"] != BIPOLAR else D["INT4"]
    win = SlidingWindow(name="win", dtype=in_dtype, simd=pe, **win_args)
    taps = win.kernel[0] * win.kernel[1]
    weights = np.ones((c, taps), np.int64) if vv_args["w_dtype"] == D["BINARY"] else None
    vv, _ = make_layer(
        rng,
        channels=c,
        taps=taps,
        pe=pe,
        in_dtype=in_dtype,
        spatial=win.out_shape[:2],
        weights=weights,
        samples=1,
        **vv_args,
    )
    x = random_values(rng, in_dtype, (3, *win.in_shape))
    if vv.thresholds is not None:  # thresholds drawn from this input's sums
        t = random_thresholds(
            rng,
            vv.accumulate(win.execute(x)),
            vv.thresholds.shape[1],
            vv.direction,
            int(vv.acc_dtype.min()),
            int(vv.acc_dtype.max()),
        )
        vv = dataclasses.replace(vv, thresholds=t)
    # no backpressure check: the pair has no FIFO between its units, so the window's timing
    # model would need the vector unit's intake as its consumer
    check_unit(WindowThenVector(win, vv), x, seed=pe, backpressure=False)
