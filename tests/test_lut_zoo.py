"""LUT models of the zoo (flow/zoo/lutnet.py, poetbin.py): fixed sparse connectivity, the
level-shared boosted trees, the table-lookup head and ``gatemill train`` of both kinds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper

from gatemill.flow.errors import GatemillError
from gatemill.flow.frontend import import_qonnx
from gatemill.flow.frontend.compare import check_against_qonnx
from gatemill.flow.vectors import random_vectors
from gatemill.flow.zoo.lutnet import build_lutnet, connectivity
from gatemill.flow.zoo.poetbin import (
    Ensemble,
    PoetBinHead,
    fit_ensemble,
    fit_tree,
)
from gatemill.flow.zoo.train import load_trained, train


def test_connectivity_is_fixed_and_balanced():
    a = connectivity(20, 13, 6, np.random.default_rng(1))
    assert (a.sum(1) == 6).all()
    used = a.sum(0)
    assert used.max() - used.min() <= 1  # every input read before any is read twice more
    np.testing.assert_array_equal(a, connectivity(20, 13, 6, np.random.default_rng(1)))


def test_masked_weights_stay_zero_in_training(tmp_path):
    report = train(
        "lutnet", out_dir=tmp_path, hidden=(16, 8), fanin=3, epochs=1, progress=False, seed=2
    )
    spec = report["model"]
    assert (spec["fanin"], spec["abits"], spec["in_bits"], spec["mask_seed"]) == (3, 2, 2, 2)
    model = load_trained(tmp_path)
    for name in ("fc0", "fc1", "out"):
        layer = getattr(model, name)
        w = layer.weight.detach()
        assert torch.all(w[layer.fanin_mask == 0] == 0), name
        assert torch.all((w != 0).sum(1) <= 3), name
    assert all(
        layer.kind == "LutLayer" for layer in import_qonnx(tmp_path / "model.onnx").ir.layers
    )


@pytest.mark.parametrize("out_bits", [1, 2])
def test_quantized_logits_make_the_last_layer_a_narrow_table(tmp_path, out_bits):
    train(
        "lutnet",
        out_dir=tmp_path,
        hidden=(16, 8),
        fanin=3,
        out_bits=out_bits,
        epochs=1,
        progress=False,
        seed=1,
    )
    imp = import_qonnx(tmp_path / "model.onnx")
    assert [layer.kind for layer in imp.ir.layers] == ["LutLayer"] * 3
    last = imp.ir.layers[-1]
    assert last.neurons == 10 and last.out_dtype.bitwidth() == out_bits
    x = random_vectors(imp.ir, 100, 0)
    report = check_against_qonnx(imp.ir, imp.model, imp.probes, x)[0]
    assert report["elements"] > 0 and report["mismatches"] == 0, report


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"wbits": 1}, "wbits >= 2"),
        ({"out_bits": 9}, "out_bits must be an integer from 1 to 8"),
        ({"fanin": 9}, r"fanin must be an integer from 1 to 8 \(the narrowest layer input"),
    ],
)
def test_lutnet_rejects_bad_arguments(kwargs, message):
    with pytest.raises(GatemillError, match=message):
        build_lutnet(in_shape=(64,), n_classes=10, hidden=(16, 8), **kwargs)


def test_options_of_other_kinds_are_refused(tmp_path):
    with pytest.raises(GatemillError, match=r"fanin \(3\) applies only to lutnet, not to mlp"):
        train("mlp", out_dir=tmp_path, fanin=3, progress=False)
    with pytest.raises(GatemillError, match=r"depth \(3\) applies only to poetbin, not to lutnet"):
        train("lutnet", out_dir=tmp_path, depth=3, progress=False)
    with pytest.raises(GatemillError, match=r"out_bits \(2\) applies only to lutnet, not to cnn"):
        train("cnn", out_dir=tmp_path, out_bits=2, progress=False)


def test_level_shared_tree_finds_a_conjunction():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (400, 8)).astype(np.uint8)
    y = np.where(bits[:, 3] & bits[:, 5], 1, -1)
    features, leaves = fit_tree(bits, y, np.full(400, 1 / 400), depth=2)
    assert sorted(features) == [3, 5]
    addr = (bits[:, features].astype(np.int64) << np.arange(2)).sum(1)
    assert (leaves[addr] == y).all()
    assert leaves[3] == 1 and (leaves[:3] == -1).all()


def test_boosting_fits_the_training_set():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, (300, 12)).astype(np.uint8)
    labels = bits[:, 0] + 2 * bits[:, 1]  # four classes read off two features
    ens = fit_ensemble(bits, labels, 4, depth=3, trees=3)
    assert ens.shape == (4, 3, 3)
    assert (ens.predict(bits, vote_bits=4) == labels).mean() == 1.0


def test_head_forward_is_the_quantized_vote():
    rng = np.random.default_rng(2)
    c, m, k, f = 3, 5, 4, 16
    feats = np.array([[rng.choice(f, k, replace=False) for _ in range(m)] for _ in range(c)])
    ens = Ensemble(feats, rng.choice([-1, 1], (c, m, 1 << k)), rng.random((c, m)) + 0.05)
    head = PoetBinHead(n_features=f, n_classes=c, depth=k, trees=m, vote_bits=5)
    head.set_ensemble(ens)
    bits = rng.integers(0, 2, (200, f))
    got = head(torch.from_numpy(2.0 * bits - 1).float()).numpy()
    np.testing.assert_array_equal(got, ens.vote_levels(ens.tree_outputs(bits), 5))


def test_train_poetbin_reports_both_heads(tmp_path):
    report = train(
        "poetbin",
        out_dir=tmp_path,
        hidden=(16, 12),
        depth=3,
        trees=4,
        epochs=2,
        progress=False,
    )
    head = report["head"]
    assert (head["depth"], head["trees_per_class"], head["tree_tables"]) == (3, 4, 40)
    for key in ("float_head_accuracy", "trees_accuracy", "trees_real_vote_accuracy"):
        assert 0.0 <= head[key] <= 1.0
    assert report["quant_accuracy"] == head["trees_accuracy"]
    assert report["export_check"]["argmax_agree"] == report["export_check"]["samples"]
    ops = [n.op_type for n in ModelWrapper(str(tmp_path / "model.onnx")).graph.node]
    assert ops.count("Gather") == 2 and ops.count("Cast") == 2
    saved = json.loads((tmp_path / "train.json").read_text())
    assert saved["model"]["depth"] == 3 and "head" in saved
    # the saved model is the tree model
    x = np.load(tmp_path / "vectors.npz")["x"][:20]
    model = load_trained(tmp_path)
    with torch.no_grad():
        levels = model(torch.from_numpy(x)).numpy()
    assert levels.min() >= 0 and levels.max() <= 63 and np.all(levels == np.round(levels))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lutnet", "poetbin"])
def test_digits_accuracy(tmp_path, kind):
    """The issue's figures: lutnet and poetbin (default options) at 90 % or more."""
    report = train(kind, out_dir=tmp_path, progress=False)
    assert report["quant_accuracy"] >= 0.90, report
    if kind == "poetbin":
        assert report["head"]["float_head_accuracy"] >= 0.90
