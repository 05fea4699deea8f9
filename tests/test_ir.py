"""The IR: validation, golden semantics of each layer, files that load back identically."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qonnx.core.datatype import DataType

from gatemill.flow.ir import InputSpec, IRGraph, OutputSpec, dtype_for_range
from gatemill.flow.ir.datatypes import BIPOLAR, decode, encode
from gatemill.flow.kinds import (
    Flatten,
    MatrixVector,
    MaxPool,
    SlidingWindow,
    Threshold,
    load_ir,
    save_ir,
)
from gatemill.flow.kinds.matrix_vector import min_acc_dtype

D = DataType


def small_cnn(rng):
    sw = SlidingWindow(
        name="sw", ifm=(5, 5, 3), kernel=(3, 3), stride=(2, 2), pad=(1, 1, 1, 1), dtype=D["UINT4"]
    )
    w = rng.integers(-7, 8, (6, 27))
    t = np.sort(rng.integers(-150, 150, (6, 3)), axis=1)
    direction = np.array([1, -1, 1, 1, -1, 1])
    t[direction < 0] = t[direction < 0][:, ::-1]
    mv = MatrixVector(
        name="conv",
        weights=w,
        in_dtype=D["UINT4"],
        w_dtype=D["INT4"],
        acc_dtype=min_acc_dtype(w, D["UINT4"], False),
        spatial=(3, 3),
        thresholds=t,
        direction=direction,
        out_dtype=D["UINT2"],
    )
    mp = MaxPool(name="mp", ifm=(3, 3, 6), kernel=(2, 2), stride=(1, 1), dtype=D["UINT2"])
    fl = Flatten(name="fl", ifm=(2, 2, 6), dtype=D["UINT2"])
    th = Threshold(
        name="th",
        shape=(24,),
        in_dtype=D["UINT2"],
        thresholds=np.full((24, 1), 2),
        direction=np.ones(24),
        out_dtype=BIPOLAR,
        out_base=-1,
    )
    w2 = rng.choice([-1, 1], (4, 24))
    out = MatrixVector(
        name="out",
        weights=w2,
        in_dtype=BIPOLAR,
        w_dtype=BIPOLAR,
        acc_dtype=min_acc_dtype(w2, BIPOLAR, True),
    )
    return IRGraph(
        name="t",
        input=InputSpec(shape=(5, 5, 3), dtype=D["UINT4"], layout="NCHW", scale=0.25),
        layers=(sw, mv, mp, fl, th, out),
        output=OutputSpec(
            shape=(4,), dtype=out.acc_dtype, scale=np.ones(4) * 2, bias=np.arange(4.0)
        ),
    )


def test_conv_lowering_matches_torch():
    rng = np.random.default_rng(0)
    g = small_cnn(rng)
    sw, mv = g.layers[:2]
    x = rng.integers(0, 16, (9, 5, 5, 3))
    w = torch.tensor(mv.weights.reshape(6, 3, 3, 3).transpose(0, 3, 1, 2), dtype=torch.float64)
    ref = (
        torch.nn.functional.conv2d(
            torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64), w, stride=2, padding=1
        )
        .numpy()
        .transpose(0, 2, 3, 1)
    )
    np.testing.assert_array_equal(mv.accumulate(sw.execute(x)), ref.astype(np.int64))


def test_binary_layer_is_xnor_popcount():
    rng = np.random.default_rng(1)
    w = rng.choice([-1, 1], (5, 33))
    mv = MatrixVector(
        name="b",
        weights=w,
        in_dtype=BIPOLAR,
        w_dtype=BIPOLAR,
        acc_dtype=min_acc_dtype(w, BIPOLAR, True),
    )
    x = rng.choice([-1, 1], (20, 33))
    popcount = (x[:, None, :] == w[None]).sum(-1)
    np.testing.assert_array_equal(mv.execute(x), popcount)
    assert mv.acc_dtype == D["UINT6"]


def test_thresholds_both_directions():
    acc = np.array([[-5, -5], [0, 0], [3, 3], [10, 10]])
    t = np.array([[0, 3], [3, 0]])
    got = Threshold(
        name="t",
        shape=(2,),
        in_dtype=D["INT5"],
        thresholds=t,
        direction=np.array([1, -1]),
        out_dtype=D["UINT2"],
    ).execute(acc)
    np.testing.assert_array_equal(got, [[0, 2], [1, 2], [2, 1], [2, 0]])


def test_maxpool_matches_torch():
    rng = np.random.default_rng(2)
    mp = MaxPool(name="mp", ifm=(7, 6, 4), kernel=(3, 2), stride=(2, 2), dtype=D["INT3"])
    x = rng.integers(-4, 4, (3, 7, 6, 4))
    ref = (
        torch.nn.functional.max_pool2d(
            torch.tensor(x.transpose(0, 3, 1, 2)).double(), (3, 2), (2, 2)
        )
        .numpy()
        .transpose(0, 2, 3, 1)
    )
    np.testing.assert_array_equal(mp.execute(x), ref.astype(np.int64))


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    g = small_cnn(rng)
    save_ir(g, tmp_path)
    g2 = load_ir(tmp_path)
    assert g2 == g
    x = rng.integers(0, 16, (4, 5, 5, 3))
    np.testing.assert_array_equal(g2.execute(x), g.execute(x))
    # saving the loaded graph gives byte-identical files
    (tmp_path / "again").mkdir()
    save_ir(g2, tmp_path / "again")
    assert (tmp_path / "ir.json").read_text() == (tmp_path / "again" / "ir.json").read_text()


@pytest.mark.parametrize("name", ["depthwise", "set"])
def test_vector_vector_and_global_sum_round_trip(name, tmp_path):
    """Graphs with VectorVector and GlobalSum layers (raw and thresholded) load back equal,
    and every layer summarizes itself (import.json)."""
    from test_hls import depthwise_graph, set_graph

    g = {"depthwise": depthwise_graph, "set": set_graph}[name]()
    save_ir(g, tmp_path)
    assert load_ir(tmp_path) == g
    summaries = {layer.name: layer.summary() for layer in g.layers}
    assert all(s["describe"] for s in summaries.values())
    if name == "depthwise":
        assert summaries["dw"]["taps"] == 9 and summaries["dw"]["pe"] == 2
        assert summaries["gap"]["positions"] == 6 and summaries["gap"]["out_shape"] == [4]


def test_trace_has_every_layer():
    rng = np.random.default_rng(4)
    g = small_cnn(rng)
    y, trace = g.execute(rng.integers(0, 16, (2, 5, 5, 3)), trace=True)
    assert [t.shape[1:] for t in trace] == [layer.out_shape for layer in g.layers]
    np.testing.assert_array_equal(trace[-1], y)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(weights=[[9, 0]], in_dtype=D["UINT2"], w_dtype=D["INT4"], acc_dtype=D["INT8"]),
            "not a INT4",
        ),
        (
            dict(
                weights=[[1, 0]],
                in_dtype=D["UINT2"],
                w_dtype=D["INT4"],
                acc_dtype=D["INT8"],
                simd=3,
            ),
            "simd must be a positive divisor of 2",
        ),
        (
            dict(weights=[[7, 7]], in_dtype=D["UINT8"], w_dtype=D["INT4"], acc_dtype=D["INT8"]),
            "cannot hold the range",
        ),
        (
            dict(
                weights=[[1, 1]],
                in_dtype=D["UINT2"],
                w_dtype=D["INT4"],
                acc_dtype=D["INT8"],
                thresholds=[[3, 1]],
                direction=[1],
                out_dtype=D["UINT2"],
            ),
            "not monotonic",
        ),
    ],
)
def test_validation_names_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MatrixVector(name="m", **kwargs)


def test_names_must_be_sanitized():
    with pytest.raises(ValueError, match="sanitized identifier"):
        Flatten(name="a;b", ifm=(1, 1, 1), dtype=D["UINT2"])


def test_datatypes():
    assert dtype_for_range(0, 1) == D["BINARY"]
    assert dtype_for_range(0, 16) == D["UINT5"]
    assert dtype_for_range(-8, 7) == D["INT4"]
    assert dtype_for_range(-9, 7) == D["INT5"]
    assert dtype_for_range(-1, 0) == D["INT2"]
    v = np.array([-8, -1, 0, 7])
    np.testing.assert_array_equal(decode(encode(v, D["INT4"]), D["INT4"]), v)
    np.testing.assert_array_equal(encode(np.array([-1, 1]), BIPOLAR), [0, 1])
