"""Import of LUT networks (flow/frontend/lut.py): sparse dense layers and Gather-table heads
become LutLayers whose golden model agrees with QONNX and with the layers they replace."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from brevitas_models import act, export, mlp
from onnx import numpy_helper
from qonnx.core.datatype import DataType
from torch import nn

from gatemill.flow.errors import GatemillError
from gatemill.flow.frontend import import_qonnx
from gatemill.flow.frontend.compare import check_against_qonnx
from gatemill.flow.frontend.lut import matrix_vector_to_lut, sparse_fanin
from gatemill.flow.kinds import MatrixVector
from gatemill.flow.vectors import random_vectors
from gatemill.flow.zoo.lutnet import build_lutnet
from gatemill.flow.zoo.poetbin import Ensemble, PoetBinHead

D = DataType


def jsc_s(seed: int = 0) -> nn.Module:
    """The LogicNets JSC-S shape (16 inputs of 2 bits, fan-in 3, 64-32-32, 5 outputs) with
    random weights. BatchNorm statistics and quantizer scales come from random data, then the
    BatchNorm gains (some negative) and biases are drawn at random, so that activations use
    every level (re-drawn statistics would leave most neurons constant)."""
    torch.manual_seed(seed)
    model = build_lutnet(
        in_shape=(16,), n_classes=5, hidden=(64, 32, 32), fanin=3, in_range=(0.0, 1.5),
        mask_seed=seed,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(40):
            model(torch.rand(64, 16, generator=gen) * 1.5)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                sign = torch.where(torch.rand(m.num_features, generator=gen) < 0.2, -1.0, 1.0)
                m.weight.copy_(sign * (torch.rand(m.num_features, generator=gen) + 0.5))
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
    return model.eval()


def check(imp, n=200, seed=0):
    x = random_vectors(imp.ir, n, seed)
    return check_against_qonnx(imp.ir, imp.model, imp.probes, x)[0], x


@pytest.fixture(scope="module")
def jsc_model(tmp_path_factory):
    return export(jsc_s(), (16,), tmp_path_factory.mktemp("jsc") / "jsc_s.onnx")


def test_sparse_layers_become_tables(jsc_model):
    imp = import_qonnx(jsc_model)
    kinds = [layer.kind for layer in imp.ir.layers]
    assert kinds == ["LutLayer"] * 4
    assert [layer.neurons for layer in imp.ir.layers] == [64, 32, 32, 5]
    # a weight may quantize to zero: then the neuron reads fewer inputs than its mask allows
    assert all(layer.fanin <= 3 for layer in imp.ir.layers)
    assert all(layer.in_dtype == DataType["UINT2"] for layer in imp.ir.layers)
    assert not imp.chains  # every threshold is inside a table now
    report, _ = check(imp)
    assert report["elements"] > 0 and report["mismatches"] == 0, report


def test_tables_compute_what_the_matrix_vector_layers_compute(jsc_model):
    tables, dense = import_qonnx(jsc_model), import_qonnx(jsc_model, lut_bits=0)
    assert all(layer.kind == "MatrixVector" for layer in dense.ir.layers)
    x = tables.ir.input.quantize(random_vectors(tables.ir, 500, 1))
    _, got = tables.ir.execute(x, trace=True)
    _, want = dense.ir.execute(x, trace=True)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_limit_on_input_bits(jsc_model):
    # 3 inputs of 2 bits: 6 bits per neuron
    assert all(layer.kind == "MatrixVector" for layer in import_qonnx(jsc_model, 5).ir.layers)
    assert all(layer.kind == "LutLayer" for layer in import_qonnx(jsc_model, 6).ir.layers)
    with pytest.raises(GatemillError, match="0 \\(off\\) to 16, not 17"):
        import_qonnx(jsc_model, 17)


def test_dense_layers_stay_matrix_vector(tmp_path):
    # the last layer's neurons read 6 inputs of 2 bits (12 bits), one weight being zero in
    # every row: 5 of 6 inputs is dense
    model = export(
        mlp([12, 8, 6, 3], wbits=3, abits=2, per_channel=True, seed=5), (12,), tmp_path / "m.onnx"
    )
    assert all(layer.kind == "MatrixVector" for layer in import_qonnx(model).ir.layers)


@pytest.mark.parametrize("direction", [1, -1])
def test_enumeration_keeps_thresholds_and_signed_inputs(direction):
    rng = np.random.default_rng(4)
    w = rng.integers(-3, 4, (5, 9)) * (rng.random((5, 9)) < 0.3)
    w[:, 0] = 1  # every neuron reads something
    t = np.sort(rng.integers(-8, 9, (5, 3)), axis=1)
    mv = MatrixVector(
        name="mv", weights=w, in_dtype=D["INT3"], w_dtype=D["INT3"], acc_dtype=D["INT10"],
        thresholds=t if direction > 0 else t[:, ::-1], direction=np.full(5, direction),
        out_dtype=D["INT2"], out_base=-2,
    )  # fmt: skip
    fanin = sparse_fanin(mv)
    assert fanin == int(np.count_nonzero(w, axis=1).max())
    lut = matrix_vector_to_lut(mv, fanin)
    x = rng.integers(-4, 4, (300, 9))
    np.testing.assert_array_equal(lut.execute(x), mv.execute(x))


def random_ensemble(rng, n_features, classes, trees, depth) -> Ensemble:
    feats = np.array(
        [
            [rng.choice(n_features, depth, replace=False) for _ in range(trees)]
            for _ in range(classes)
        ]
    )
    leaves = rng.choice([-1, 1], (classes, trees, 1 << depth))
    return Ensemble(feats, leaves, rng.random((classes, trees)) + 0.1)


def head_model(rng, n_features=10, classes=3, trees=4, depth=3, vote_bits=3):
    head = PoetBinHead(
        n_features=n_features, n_classes=classes, depth=depth, trees=trees, vote_bits=vote_bits
    )
    ens = random_ensemble(rng, n_features, classes, trees, depth)
    head.set_ensemble(ens)
    return nn.Sequential(act(1), head).eval(), ens


def test_gather_tables_become_lut_layers(tmp_path):
    rng = np.random.default_rng(0)
    model, ens = head_model(rng)
    imp = import_qonnx(export(model, (10,), tmp_path / "head.onnx"))
    trees, votes = imp.ir.layers
    assert (trees.kind, trees.neurons, trees.fanin, trees.out_dtype) == (
        "LutLayer",
        12,
        3,
        D["BIPOLAR"],
    )
    assert (votes.kind, votes.neurons, votes.fanin, votes.out_dtype) == (
        "LutLayer",
        3,
        4,
        D["UINT3"],
    )
    report, x = check(imp)
    assert report["mismatches"] == 0, report
    bits = (imp.ir.input.quantize(x) > 0).astype(np.uint8)
    want = ens.vote_levels(ens.tree_outputs(bits), 3)
    np.testing.assert_array_equal(imp.ir.execute(imp.ir.input.quantize(x)), want)


def _edit_initializer(path, name, fn):
    m = onnx.load(str(path))
    for t in m.graph.initializer:
        if t.name == name:
            t.CopyFrom(numpy_helper.from_array(fn(numpy_helper.to_array(t)), name))
    onnx.save(m, str(path))


@pytest.mark.parametrize(
    ("name", "fn", "message"),
    [
        ("1.tree_select", lambda a: a * 0.75, "is not an integer for every input"),
        ("1.vote_table", lambda a: a + 0.5, "holds non-integer values"),
        ("1.tree_offset", lambda a: a + 1000.0, "indexes outside the table"),
    ],
)
def test_gather_tables_that_do_not_pack_are_refused(tmp_path, name, fn, message):
    model, _ = head_model(np.random.default_rng(1))
    path = export(model, (10,), tmp_path / "head.onnx")
    _edit_initializer(path, name, fn)
    with pytest.raises(GatemillError, match=message):
        import_qonnx(path)


def test_a_gather_outside_the_table_pattern_is_unsupported(tmp_path):
    model, _ = head_model(np.random.default_rng(2))
    path = export(model, (10,), tmp_path / "head.onnx")
    m = onnx.load(str(path))
    cast = next(n for n in m.graph.node if n.op_type == "Cast")
    cast.attribute[0].i = onnx.TensorProto.FLOAT  # no longer an integer index
    onnx.save(m, str(path))
    with pytest.raises(GatemillError, match=r"\(Gather\): operator not supported"):
        import_qonnx(path)
