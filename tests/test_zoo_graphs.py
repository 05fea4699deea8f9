"""The zoo's graph kinds (rescnn, cnn1d, deepsets): trained small and briefly (seeded),
exported, imported with the golden model equal to QONNX, and built to RTL with 0 mismatches
and ii equal to its estimate; and their data sets."""

from __future__ import annotations

import numpy as np
import pytest
from test_frontend_graph import check_golden

from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.errors import GatemillError
from gatemill.flow.frontend import import_qonnx
from gatemill.flow.zoo.config import TrainConfig
from gatemill.flow.zoo.data import SET_SIZE, digit_sets, load_digits, load_pulses
from gatemill.flow.zoo.models import MODELS
from gatemill.flow.zoo.train import train

SMALL = {
    "rescnn": {"channels": (4, 4), "hidden": (16,)},
    "cnn1d": {"channels": (4, 4), "hidden": (16,)},
    "deepsets": {"channels": (8,), "hidden": (16,)},
}
LAYERS = {
    "rescnn": {"Add", "MaxPool", "SlidingWindow"},
    "cnn1d": {"MaxPool", "SlidingWindow"},
    "deepsets": {"GlobalSum"},
}


@pytest.fixture(scope="module", params=sorted(SMALL))
def small(request, tmp_path_factory):
    kind = request.param
    out = tmp_path_factory.mktemp(kind)
    report = train(kind, out_dir=out / "train", epochs=2, seed=0, progress=False, **SMALL[kind])
    return kind, out, report


def test_small_model_imports_exactly(small):
    kind, out, report = small
    assert report["export_check"]["argmax_agree"] == report["export_check"]["samples"]
    imp = import_qonnx(out / "train" / "model.onnx")
    assert LAYERS[kind] <= {layer.kind for layer in imp.ir.layers}
    check_golden(imp, n=100)


@pytest.mark.slow
def test_small_model_builds_with_zero_mismatches(small):
    _, out, _ = small
    x = np.load(out / "train" / "vectors.npz")["x"][:16]
    np.savez(out / "x.npz", x=x)
    reports = run_build(
        BuildConfig(model=out / "train" / "model.onnx", out=out / "b", vectors=out / "x.npz")
    )
    sim = reports["sim"]
    assert reports["import"]["golden_vs_qonnx"]["mismatches"] == 0
    assert sim["mismatches"] == 0
    assert sim["ii_cycles"] == sim["est_ii_cycles"]


def test_pulses_are_deterministic_and_balanced():
    a, b = load_pulses(seed=3), load_pulses(seed=3)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert a.x_train.shape == (2000, 1, 64) and a.x_test.shape == (500, 1, 64)
    assert a.n_classes == 8 and set(np.unique(a.y_train)) == set(range(8))
    # the class is the arrival bin: the pulse's peak moves right with the class
    peaks = [np.argmax(a.x_train[a.y_train == c, 0].mean(0)) for c in range(8)]
    assert peaks == sorted(peaks) and peaks[0] < peaks[-1]


def test_digit_sets_hold_the_nonzero_pixels():
    ds = load_digits()
    sets = digit_sets(ds)
    assert sets.x_train.shape == (len(ds.x_train), SET_SIZE, 3)
    img, s = ds.x_train[0, 0], sets.x_train[0]
    n = int((img > 0).sum())
    assert (s[:n, 2] > 0).all() and not s[n:].any()
    rows, cols = (s[:n, 1] * 8).astype(int), (s[:n, 0] * 8).astype(int)
    assert np.array_equal(img[rows, cols], s[:n, 2])
    # the pixel sum is the intensity sum: nothing dropped
    assert np.isclose(sets.x_test[:, :, 2].sum(), ds.x_test.sum())


@pytest.mark.parametrize(
    ("kind", "kwargs", "needle"),
    [
        ("rescnn", {"in_shape": (1, 8, 8), "channels": (4, 8)}, "all equal"),
        ("cnn1d", {"in_shape": (1, 4), "channels": (4, 4, 4)}, "at most 2 stages"),
        ("deepsets", {"in_shape": (1, 8, 8)}, "(elements, features)"),
    ],
)
def test_builders_reject(kind, kwargs, needle):
    with pytest.raises(GatemillError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        MODELS[kind](n_classes=3, **kwargs)


def test_channels_belong_to_kinds_that_have_them(tmp_path):
    assert TrainConfig(kind="deepsets", out_dir=tmp_path, channels=(8,)).resolved()["channels"] == (
        8,
    )
    with pytest.raises(GatemillError, match="only applies to cnn, rescnn, cnn1d, deepsets"):
        TrainConfig(kind="mlp", out_dir=tmp_path, channels=(8,))
