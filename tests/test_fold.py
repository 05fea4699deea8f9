"""The default folding rule and folding files (flow/dse/fold.py), checked against the
units' own cycle estimates."""

from __future__ import annotations

import json

import pytest
from brevitas_models import cnn, export, mlp

from gatemill.flow.dse import apply_folding, default_folding, load_folding
from gatemill.flow.dse.fold import fold_for_ii
from gatemill.flow.errors import GatemillError
from gatemill.flow.frontend import import_qonnx
from gatemill.hdl.top import estimates, plan


@pytest.fixture(scope="module")
def cnn_ir(tmp_path_factory):
    path = export(
        cnn(1, 8, [(16, 3, 1, 1), (32, 3, 1, 1)], [64, 10], seed=1),
        (1, 8, 8),
        tmp_path_factory.mktemp("c") / "c.onnx",
    )
    return import_qonnx(path).ir


@pytest.mark.parametrize("target", [576, 1200, 5000])
def test_every_stage_meets_the_target(cnn_ir, target):
    ir = apply_folding(cnn_ir, fold_for_ii(cnn_ir, target))
    est = estimates(plan(ir))
    assert est["ii_cycles"] <= target
    for stage in plan(ir):
        assert stage.ii <= target, stage


def test_balanced_folding_is_cheaper_for_slower_targets(cnn_ir):
    def lanes(ir):
        return sum(layer.pe * layer.simd for layer in ir.layers if layer.kind == "MatrixVector")

    fast = apply_folding(cnn_ir, fold_for_ii(cnn_ir, 576))
    slow = apply_folding(cnn_ir, fold_for_ii(cnn_ir, 5000))
    assert lanes(slow) < lanes(fast)


def test_default_folding_is_bound_by_the_first_window(cnn_ir):
    ir = apply_folding(cnn_ir, default_folding(cnn_ir))
    # one input channel: the first sliding window emits 8*8*9 single-element beats per sample
    assert estimates(plan(ir))["ii_cycles"] == 8 * 8 * 9


def test_small_mlp_is_fully_parallel(tmp_path):
    ir = import_qonnx(export(mlp([16, 8, 4]), (16,), tmp_path / "m.onnx")).ir
    ir = apply_folding(ir, default_folding(ir))
    assert all(layer.pe == layer.mh and layer.simd == layer.mw for layer in ir.layers)


def test_folding_file_errors(tmp_path, cnn_ir):
    bad = tmp_path / "f.json"
    bad.write_text("{not json")
    with pytest.raises(GatemillError, match="not valid JSON"):
        load_folding(bad)
    bad.write_text(json.dumps({"conv0": 4}))
    with pytest.raises(GatemillError, match="must hold"):
        load_folding(bad)
    conv = next(layer for layer in cnn_ir.layers if layer.kind == "MatrixVector")
    with pytest.raises(GatemillError, match="simd must divide 1"):
        apply_folding(cnn_ir, {conv.name: {"simd": 3}})
    with pytest.raises(GatemillError, match="no option"):
        apply_folding(cnn_ir, {conv.name: {"depth": 3}})
