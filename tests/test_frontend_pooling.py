"""Depthwise convolutions, average and global average pooling, Conv1d and MaxPool1d through
the frontend: the golden model equals QONNX on every probed tensor, and the built RTL matches
the golden model with ii = estimate."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn as nn
from brevitas_models import export
from graph_models import avgpool_cnn, conv1d_cnn, depthwise_separable, gap_cnn, pot_act
from test_frontend_graph import build, check_golden

from gatemill.flow.errors import GatemillError
from gatemill.flow.frontend import import_qonnx
from gatemill.flow.import_step import run_import
from gatemill.flow.kinds import load_ir
from gatemill.flow.vectors import random_vectors

MODELS = {
    "depthwise": (depthwise_separable, (3, 6, 6)),
    "avgpool": (avgpool_cnn, (3, 6, 6)),
    "gap": (gap_cnn, (3, 5, 5)),
    "conv1d": (conv1d_cnn, (2, 16)),
    "truncavgpool": (lambda: avgpool_cnn(trunc=True), (3, 6, 6)),
}


def imported(name, tmp_path):
    make, shape = MODELS[name]
    path = export(make(), shape, tmp_path / f"{name}.onnx")
    return path, import_qonnx(path)


def kinds(imp):
    return [layer.kind for layer in imp.ir.layers]


def test_depthwise_conv_is_a_window_and_a_vector_vector_layer(tmp_path):
    _, imp = imported("depthwise", tmp_path)
    assert kinds(imp)[2:4] == ["SlidingWindow", "VectorVector"]
    vv = imp.ir.layers[3]
    assert vv.weights.shape == (4, 9) and vv.thresholds is not None
    check_golden(imp)


def test_average_pool_sums_with_ones_and_folds_its_divisor(tmp_path):
    _, imp = imported("avgpool", tmp_path)
    vv = imp.ir.layers[3]
    assert vv.kind == "VectorVector" and np.all(vv.weights == 1)
    assert imp.ir.layers[2].pad == (1, 1, 1, 1)  # count_include_pad: 0s in the sum
    check_golden(imp)


def test_global_average_pool_is_a_global_sum(tmp_path):
    _, imp = imported("gap", tmp_path)
    assert kinds(imp) == ["SlidingWindow", "MatrixVector", "GlobalSum", "MatrixVector"]
    assert imp.ir.layers[2].thresholds is not None  # the 1/N and the quantizer after it
    check_golden(imp)


def test_conv1d_and_maxpool1d_are_maps_of_height_one(tmp_path):
    _, imp = imported("conv1d", tmp_path)
    ir = imp.ir
    assert ir.input.shape == (1, 16, 2) and ir.input.model_shape == (2, 16)
    window, pool = ir.layers[0], ir.layers[2]
    assert window.kernel == (1, 3) and window.stride == (1, 2) and window.pad == (0, 1, 0, 1)
    assert pool.kind == "MaxPool" and pool.kernel == (1, 2)
    # MaxPool1d(3, stride 2, padding 1) over unsigned values: padded with 0 by a 1x1 window
    pad, pool = ir.layers[5], ir.layers[6]
    assert pad.kernel == (1, 1) and pad.pad == (0, 1, 0, 1)
    assert pool.ifm == (1, 6, 4) and pool.out_shape == (1, 2, 4)
    check_golden(imp)


def test_conv1d_imports_without_test_vectors(tmp_path):
    """Without vectors, the import draws seeded random inputs in the model's (C, L) shape."""
    path, _ = imported("conv1d", tmp_path)
    report = run_import(path, tmp_path / "imp", seed=3)
    assert report["golden_vs_qonnx"]["mismatches"] == 0
    x = random_vectors(load_ir(tmp_path / "imp"), 5, seed=3)
    assert x.shape == (5, 2, 16) and x.dtype == np.float32


def test_padded_maxpool1d_of_signed_values_is_refused(tmp_path):
    model = nn.Sequential(pot_act(4, signed=True), nn.MaxPool1d(3, stride=1, padding=1))
    with pytest.raises(GatemillError, match="may be negative"):
        import_qonnx(export(model.eval(), (2, 8), tmp_path / "m.onnx"))


def test_trunc_avg_pool_thresholds_the_truncation(tmp_path):
    """Brevitas' TruncAvgPool2d (AveragePool, then a QONNX Trunc) is a window, a sum and the
    thresholds of the truncation; the QuantReLU after it is a Threshold layer."""
    _, imp = imported("truncavgpool", tmp_path)
    assert kinds(imp)[2:5] == ["SlidingWindow", "VectorVector", "Threshold"]
    assert imp.ir.layers[3].thresholds is not None
    check_golden(imp)


def test_avgpool_padding_without_count_include_pad_is_refused(tmp_path):
    model = nn.Sequential(
        pot_act(4, signed=True), nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    )
    with pytest.raises(GatemillError, match="count_include_pad"):
        import_qonnx(export(model.eval(), (2, 4, 4), tmp_path / "m.onnx"))


@pytest.mark.parametrize("name", list(MODELS))
def test_builds_with_zero_mismatches(name, tmp_path):
    path, imp = imported(name, tmp_path)
    build(path, imp.ir, tmp_path)


def test_signal_input_with_a_stated_encoding(tmp_path):
    """A 1-D signal of raw INT8 integers (x = q / 16): the input quantizer becomes a
    Threshold layer on the (1, L, C) map."""
    from gatemill.flow.frontend import parse_encoding
    from gatemill.flow.frontend.compare import check_against_qonnx

    path = export(conv1d_cnn(), (2, 16), tmp_path / "c.onnx")
    imp = import_qonnx(path, encoding=parse_encoding("INT8", "1/16"))
    ir = imp.ir
    assert ir.input.shape == (1, 16, 2) and ir.input.model_shape == (2, 16)
    q = np.random.default_rng(3).integers(-128, 128, size=(200, 2, 16))
    report, _, _ = check_against_qonnx(ir, imp.model, imp.probes, q)
    assert report["mismatches"] == 0, report
