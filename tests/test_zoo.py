"""Tests for flow/zoo: data loading, Brevitas models and their QONNX export, training, CLI."""

import json
import math
from collections import Counter

import numpy as np
import onnx
import pytest
import torch
import typer
from onnx import numpy_helper
from typer.testing import CliRunner

from gatemill.flow.errors import GatemillError
from gatemill.flow.zoo.cli import parse_widths
from gatemill.flow.zoo.cli import train as train_command
from gatemill.flow.zoo.data import load_digits, load_npz, prepare
from gatemill.flow.zoo.models import MODELS
from gatemill.flow.zoo.parts import input_scale
from gatemill.flow.zoo.train import FILES, MARKER, load_trained, train

TINY = {"mlp": {"hidden": (8,)}, "cnn": {"channels": (4,), "hidden": (8,)}}
SHAPES = {"mlp": (64,), "cnn": (1, 8, 8)}


def _export(model, shape, path):
    from brevitas.export import export_qonnx

    torch.manual_seed(0)
    model.train()
    for _ in range(3):  # let the activation quantizers gather statistics
        model(torch.rand(16, *shape))
    model.eval()
    export_qonnx(model, torch.rand(1, *shape), export_path=str(path), dynamo=False)
    return onnx.load(str(path))


def _qonnx_run(path, x):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    model = ModelWrapper(str(path)).transform(InferShapes())
    inits = {t.name for t in model.graph.initializer}
    (name,) = [t.name for t in model.graph.input if t.name not in inits]
    out = model.graph.output[0].name
    return np.concatenate([execute_onnx(model, {name: x[i : i + 1]})[out] for i in range(len(x))])


# -- data -------------------------------------------------------------------------------------


def test_digits_split():
    ds = load_digits()
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_test.shape == (360, 1, 8, 8)
    assert ds.x_train.dtype == np.float32 and ds.y_test.dtype == np.int64
    assert np.array_equal(np.unique(ds.x_train * 16), np.arange(17))
    counts = np.bincount(ds.y_test)  # stratified: each digit about a tenth of the test set
    assert len(counts) == 10 and counts.min() >= 35 and counts.max() <= 37
    assert prepare(ds, kind="mlp", in_bits=8).x_test.shape == (360, 64)
    bipolar = prepare(ds, kind="cnn", in_bits=1).x_train
    assert bipolar.min() == -1.0 and bipolar.max() == 1.0


def _write_npz(path, **overrides):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((40, 6, 6), dtype=np.float32),
        "y_train": np.arange(40) % 3,
        "x_test": rng.random((12, 6, 6), dtype=np.float32),
        "y_test": np.arange(12) % 3,
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"y_test": None}, "missing y_test"),
        ({"y_train": np.zeros((40, 2), dtype=np.int64)}, "y_train has shape"),
        ({"x_test": np.zeros(12, dtype=np.float32)}, "x_test has shape"),
        ({"x_test": np.zeros((12, 5, 6), dtype=np.float32)}, "x_test samples are"),
        ({"y_train": np.arange(40) % 3 - 1}, "negative labels"),
        ({"y_train": (np.arange(40) % 3).astype(np.float32)}, "integers"),
        ({"y_test": np.arange(12) % 5}, "never seen"),
        ({"y_train": np.zeros(40, dtype=np.int64)}, "single class"),
        ({"x_train": np.full((40, 6, 6), np.nan, dtype=np.float32)}, "NaN"),
        ({"y_test": np.arange(11) % 3}, "11 labels"),
        ({"x_train": np.array([None] * 40, dtype=object)}, "pickled"),
    ],
)
def test_broken_npz(tmp_path, override, needle):
    path = _write_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(GatemillError, match=needle) as info:
        load_npz(path)
    assert str(path) in str(info.value)


def test_not_an_npz(tmp_path):
    path = tmp_path / "data.npz"
    path.write_text("not a zip")
    with pytest.raises(GatemillError, match=r"data\.npz"):
        load_npz(path)
    with pytest.raises(GatemillError, match="no such file"):
        load_npz(tmp_path / "missing.npz")


# -- models and export ------------------------------------------------------------------------


def test_input_scale():
    assert input_scale(0.0, 1.0, 8) == (2.0**-7, False)
    assert input_scale(0.0, 255.0, 8) == (1.0, False)
    assert input_scale(0.0, 255.5, 8) == (2.0, False)
    assert input_scale(-1.0, 0.5, 4) == (0.125, True)
    assert input_scale(-0.1, 3.0, 4) == (0.5, True)
    assert input_scale(0.0, 0.0, 8) == (1.0, False)


CONFIGS = [
    ("mlp", 1, 1, "float", True),
    ("mlp", 2, 2, "pot", False),
    ("mlp", 4, 4, "float", False),
    ("mlp", 8, 8, "pot", True),
    ("mlp", 1, 4, "pot", True),
    ("cnn", 1, 1, "pot", False),
    ("cnn", 2, 8, "float", True),
    ("cnn", 4, 4, "pot", False),
    ("cnn", 8, 1, "float", False),
]


@pytest.mark.parametrize(("kind", "wbits", "abits", "scaling", "batchnorm"), CONFIGS)
def test_export_node_types(tmp_path, kind, wbits, abits, scaling, batchnorm):
    model = MODELS[kind](
        in_shape=SHAPES[kind],
        n_classes=10,
        wbits=wbits,
        abits=abits,
        scaling=scaling,
        batchnorm=batchnorm,
        **TINY[kind],
    )
    out = model(torch.rand(2, *SHAPES[kind]))
    assert type(out) is torch.Tensor and out.shape == (2, 10)
    graph = _export(model, SHAPES[kind], tmp_path / "m.onnx").graph
    ops = Counter(n.op_type for n in graph.node)
    weights = 3 if kind == "cnn" else 2
    acts = weights - 1
    biases = 1 if batchnorm else weights
    assert ops["BipolarQuant"] == weights * (wbits == 1) + acts * (abits == 1)
    assert ops["Quant"] == 1 + weights * (wbits > 1) + acts * (abits > 1) + biases
    assert ops["BatchNormalization"] == (acts if batchnorm else 0)
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    quants = [n for n in graph.node if n.op_type in ("Quant", "BipolarQuant")]
    bits = sorted({int(inits[n.input[3]]) for n in quants if n.op_type == "Quant"})
    assert bits == sorted({8, 32} | ({wbits} - {1}) | ({abits} - {1}))
    if scaling == "pot":
        for n in quants:
            for s in inits[n.input[1]].ravel():
                assert math.frexp(float(s))[0] == 0.5, f"{n.name} has scale {s}"


def test_bipolar_input(tmp_path):
    model = MODELS["mlp"](in_shape=(64,), n_classes=10, in_bits=1, **TINY["mlp"])
    graph = _export(model, (64,), tmp_path / "m.onnx").graph
    assert graph.node[0].op_type == "BipolarQuant"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"wbits": 0}, "wbits .* not 0"),
        ({"abits": 9}, "abits .* not 9"),
        ({"in_bits": True}, "in_bits .* not True"),
        ({"hidden": ()}, r"hidden .* not \(\)"),
        ({"hidden": (8, 0)}, "0 in"),
        ({"scaling": "log"}, "'log'"),
        ({"n_classes": 1}, "n_classes .* not 1"),
        ({"in_range": (0.0, float("nan"))}, "in_range"),
    ],
)
def test_builder_rejects(kwargs, needle):
    with pytest.raises(GatemillError, match=needle):
        MODELS["mlp"](**{"in_shape": (64,), "n_classes": 10, **kwargs})


def test_cnn_rejects_too_many_pools():
    with pytest.raises(GatemillError, match="at most 3 stages"):
        MODELS["cnn"](in_shape=(1, 8, 8), n_classes=10, channels=(2, 2, 2, 2))
    with pytest.raises(GatemillError, match=r"\(C, H, W\)"):
        MODELS["cnn"](in_shape=(64,), n_classes=10)


# -- training ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_train_writes_files(tmp_path, kind):
    out = tmp_path / "run"
    report = train(kind, out_dir=out, epochs=1, progress=False, **TINY[kind])
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, MARKER])
    saved = json.loads((out / "train.json").read_text())
    assert saved == report
    for key in ("model", "float_accuracy", "quant_accuracy", "epochs", "seconds", "seed"):
        assert key in saved
    assert saved["train_samples"] == 1437 and saved["test_samples"] == 360
    assert saved["model"]["kind"] == kind and saved["model"]["in_scale"] == 2.0**-7
    assert saved["quant_accuracy"] > 0.2 and saved["float_accuracy"] > 0.2  # chance is 0.1
    vectors = np.load(out / "vectors.npz")
    assert vectors["x"].shape == (360, *SHAPES[kind]) and vectors["x"].dtype == np.float32
    assert vectors["y"].shape == (360,) and vectors["y"].dtype == np.int64
    model = load_trained(out)
    with torch.no_grad():
        pred = model(torch.from_numpy(vectors["x"])).argmax(1).numpy()
    assert (pred == vectors["y"]).mean() == saved["quant_accuracy"]
    assert isinstance(torch.load(out / "model.pt", weights_only=True), dict)
    # gatemill may write again into a directory it made
    train(kind, out_dir=out, epochs=1, progress=False, **TINY[kind])


def test_train_is_deterministic(tmp_path):
    a = train("mlp", out_dir=tmp_path / "a", epochs=1, seed=3, progress=False, **TINY["mlp"])
    b = train("mlp", out_dir=tmp_path / "b", epochs=1, seed=3, progress=False, **TINY["mlp"])
    assert a["quant_accuracy"] == b["quant_accuracy"]
    sa, sb = (torch.load(tmp_path / d / "model.pt", weights_only=True) for d in "ab")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_pruning_schedule():
    """Zhu and Gupta's cubic ramp: none before the start, the target from the end on,
    growing in between, fastest at first."""
    from gatemill.flow.zoo.prune import Pruning

    p = Pruning(0.8, start=0.2, end=0.6)
    assert p.at(0.0) == p.at(0.2) == 0.0
    assert p.at(0.6) == p.at(1.0) == pytest.approx(0.8)
    ramp = [p.at(0.2 + 0.04 * k) for k in range(11)]
    steps = np.diff(ramp)
    assert np.all(steps > 0) and np.all(np.diff(steps) < 0)


def test_train_prunes_by_magnitude(tmp_path):
    """--sparsity 0.75: every layer ends with three quarters of its weights zero, in the
    trained model and exactly in the exported QONNX weights (a zero quantizes to 0)."""
    from qonnx.core.modelwrapper import ModelWrapper

    report = train("mlp", out_dir=tmp_path, epochs=2, sparsity=0.75, progress=False, **TINY["mlp"])
    pruning = report["pruning"]
    assert pruning["sparsity"] == 0.75 and len(pruning["zero_share"]) == 1 + len(
        TINY["mlp"]["hidden"]
    )
    assert all(abs(z - 0.75) < 0.01 for z in pruning["zero_share"])
    model = load_trained(tmp_path)
    for layer in (m for m in model.modules() if getattr(m, "weight", None) is not None):
        if layer.weight.dim() >= 2:
            assert abs(float((layer.weight == 0).float().mean()) - 0.75) < 0.01
    onnx = ModelWrapper(str(tmp_path / "model.onnx"))
    weights = [t for t in onnx.graph.initializer if len(t.dims) == 2]
    for t in weights:
        w = onnx.get_initializer(t.name)
        assert abs(float((w == 0).mean()) - 0.75) < 0.01


def test_pot_without_batchnorm_is_exact_in_qonnx(tmp_path):
    train("mlp", out_dir=tmp_path, epochs=1, scaling="pot", batchnorm=False, progress=False)
    x = np.load(tmp_path / "vectors.npz")["x"][:40]
    with torch.no_grad():
        want = load_trained(tmp_path)(torch.from_numpy(x)).numpy()
    assert np.array_equal(_qonnx_run(tmp_path / "model.onnx", x), want)


def test_train_user_npz(tmp_path):
    data = _write_npz(tmp_path / "mine.npz")
    report = train(
        "cnn",
        out_dir=tmp_path / "run",
        data=data,
        epochs=1,
        progress=False,
        channels=(2,),
        hidden=(4,),
        batch_size=8,
    )
    assert report["data"] == str(data) and report["test_samples"] == 12
    assert report["model"]["n_classes"] == 3 and report["model"]["in_shape"] == [1, 6, 6]
    assert np.load(tmp_path / "run" / "vectors.npz")["x"].shape == (12, 1, 6, 6)
    with pytest.raises(GatemillError, match=r"mine\.npz"):
        flat = _write_npz(
            tmp_path / "mine.npz",
            x_train=np.zeros((40, 36), np.float32),
            x_test=np.zeros((12, 36), np.float32),
        )
        train("cnn", out_dir=tmp_path / "run2", data=flat, epochs=1, progress=False)
    assert not (tmp_path / "run2").exists()


def test_refuses_foreign_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(GatemillError, match="not made by gatemill"):
        train("mlp", out_dir=tmp_path, epochs=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    with pytest.raises(GatemillError, match="is a file"):
        train("mlp", out_dir=tmp_path / "notes.txt", epochs=1, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"kind": "rnn"}, "'rnn'"),
        ({"epochs": 0}, "epochs .* not 0"),
        ({"lr": -1.0}, "lr"),
        ({"channels": (4,)}, "only applies to cnn"),
        ({"seed": -1}, "seed"),
        ({"sparsity": 1.0}, r"--sparsity 1.0: the share of zero weights must be .* \[0, 1\)"),
        ({"sparsity": -0.5}, "--sparsity -0.5"),
        ({"kind": "lutnet", "sparsity": 0.5}, "applies to mlp and cnn models, not to a lutnet"),
    ],
)
def test_train_rejects(tmp_path, kwargs, needle):
    kwargs = {"kind": "mlp", **kwargs}
    with pytest.raises(GatemillError, match=needle):
        train(kwargs.pop("kind"), out_dir=tmp_path / "run", progress=False, **kwargs)
    assert not (tmp_path / "run").exists()


# -- command line -----------------------------------------------------------------------------


def test_parse_widths():
    assert parse_widths("--hidden", "64, 32") == (64, 32)
    assert parse_widths("--hidden", None) is None
    for bad in ("64,,x", "", "8,-1", "0", "1.5"):
        with pytest.raises(GatemillError, match="--hidden"):
            parse_widths("--hidden", bad)


def _app():
    app = typer.Typer(pretty_exceptions_enable=False)
    app.command("train")(train_command)
    app.command("noop")(lambda: None)  # a second command keeps `train` a subcommand
    return app


def test_cli_train(tmp_path):
    args = ["train", "mlp", "--out", str(tmp_path / "run"), "--hidden", "8", "--epochs", "1"]
    result = CliRunner().invoke(_app(), [*args, "--wbits", "2", "--no-batchnorm"])
    assert result.exit_code == 0, result.output
    assert "quantized accuracy" in result.output
    spec = json.loads((tmp_path / "run" / "train.json").read_text())["model"]
    assert (spec["wbits"], spec["batchnorm"], spec["hidden"]) == (2, False, [8])
    with pytest.raises(GatemillError, match="--hidden"):
        _app()([*args[:4], "--hidden", "64,,x"], standalone_mode=False)


def test_gatemill_main_exit_code(tmp_path, capsys):
    from gatemill.flow.cli import main

    assert main(["train", "mlp", "--out", str(tmp_path / "run"), "--hidden", "64,,x"]) == 2
    assert "--hidden" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# -- accuracy targets (slow) ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("kind", "wbits", "abits", "target"),
    [("mlp", 4, 4, 0.95), ("mlp", 1, 1, 0.85), ("cnn", 4, 4, 0.96)],
)
def test_accuracy_targets(tmp_path, kind, wbits, abits, target, seed):
    report = train(kind, out_dir=tmp_path, wbits=wbits, abits=abits, seed=seed, progress=False)
    assert report["quant_accuracy"] >= target, report
