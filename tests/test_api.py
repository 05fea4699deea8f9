"""The Python API (flow/api.py): import, golden model, trace, fold, build, typed results."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from brevitas_models import export, mlp

from gatemill.flow import api
from gatemill.flow.errors import GatemillError
from gatemill.flow.frontend import import_qonnx
from gatemill.flow.steps.fold import choose_folding


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    return export(mlp([12, 8, 6, 3], wbits=3, abits=2, seed=5), (12,), d / "mlp.onnx")


@pytest.fixture(scope="module")
def model(model_path):
    return api.import_model(model_path, seed=2)


def test_gatemill_flow_exports_the_api_lazily():
    import gatemill.flow as flow

    assert flow.import_model is api.import_model and flow.Model is api.Model
    assert flow.TrainConfig is api.TrainConfig and "Model" in dir(flow)
    with pytest.raises(AttributeError):
        _ = flow.no_such_name


def test_predict_is_the_golden_model(model, model_path):
    ir = import_qonnx(model_path).ir
    x = model.x[:10]
    assert model.x.shape == (100, 12) and model.y is None  # seeded random vectors
    want = ir.output.dequantize(ir.execute(ir.input.quantize(x)))
    assert np.array_equal(model.predict(x), want)
    assert np.array_equal(model.predict(x[0]), want[0])  # one sample
    with pytest.raises(GatemillError, match=r"one sample of shape \(12,\)"):
        model.predict(np.zeros((2, 5)))


def test_trace_gives_every_layer_in_integers(model):
    t = model.trace(model.x[:4])
    assert list(t) == list(model.layers) and len(t) == 3
    assert [a.shape for a in t.values()] == [(4, 8), (4, 6), (4, 3)]
    assert all(np.issubdtype(a.dtype, np.integer) for a in t.values())
    last = model.ir.execute(model.ir.input.quantize(model.x[:4]))
    assert np.array_equal(t[model.layers[-1]], last)
    assert model.trace(model.x[0])[model.layers[0]].shape == (8,)


def test_vectors_are_loaded(model_path, tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, (7, 12)).astype(np.float32)
    np.savez(tmp_path / "v.npz", x=x, y=np.arange(7) % 3)
    m = api.import_model(model_path, vectors=tmp_path / "v.npz")
    assert np.array_equal(m.x, x) and list(m.y) == [0, 1, 2, 0, 1, 2, 0]
    assert m.vectors == tmp_path / "v.npz"


def test_fold_is_what_gatemill_build_chooses(model):
    folded = model.fold(target_fps=20e6, clock_mhz=100)
    f = folded.folding
    assert f.ii_cycles <= 5 and f.samples_per_s == 100e6 / f.ii_cycles
    assert f.rule == "2e+07 samples/s at 100 MHz" and f.family == "xc7"
    assert f.est_lut > 0 and f.latency_cycles > f.ii_cycles
    _, doc = choose_folding(model.imported, target_fps=20e6, clock_mhz=100)
    assert dict(f.layers) == {k: dict(v) for k, v in doc["layers"].items()}
    assert model.folding is None  # fold returns a copy
    # a budget alone: the fastest within it; folding again starts from the import
    cheap = folded.fold(max_lut=400)
    assert cheap.folding.est_lut <= 400 and cheap.folding.ii_cycles > f.ii_cycles
    with pytest.raises(GatemillError, match="max-lut 5"):
        model.fold(max_lut=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.ii_cycles = 1


def test_build_returns_typed_results_and_skips_a_second_time(model, tmp_path):
    folded = model.fold(target_fps=20e6, clock_mhz=100)
    steps = ["import", "fold", "rtl", "sim"]
    r = folded.build(tmp_path / "b", steps=steps, simulator="icarus")
    assert [s.name for s in r.steps] == steps and all(s.ran for s in r.steps)
    assert r.sim.mismatches == 0 and r.sim.vectors == 100 and r.sim.simulator == "icarus"
    assert r.sim.ii_cycles == r.sim.est_ii_cycles == folded.folding.ii_cycles
    assert r.sim.latency_cycles == r.sim.est_latency_cycles == folded.folding.latency_cycles
    assert r.rtl.verilog.is_file() and r.rtl.est_ii_cycles == r.sim.ii_cycles
    assert r.folding.rule == folded.folding.rule
    assert r.imported.output_mismatches == 0 and r.imported.layers == model.layers
    assert r.synth is None and r.report is None and r.fmax is None
    assert json.loads(r.sim.path.read_text())["mismatches"] == 0
    assert r.timings["sim"]["sim_seconds"] > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.sim = None

    again = folded.build(tmp_path / "b", steps=steps, simulator="icarus")
    assert again.skipped == tuple(steps) and again.sim == r.sim and again.timings == {}


def test_build_with_a_board_synthesizes(model, tmp_path):
    folded = model.fold(board="pynq-z2")
    with pytest.raises(GatemillError, match="folded for board 'pynq-z2'"):
        folded.build(tmp_path / "x", board="ulx3s-85f")
    r = folded.build(tmp_path / "b", steps=["import", "fold", "rtl", "synth", "report"])
    s = r.synth
    assert s.board == "pynq-z2" and s.family == "xc7" and s.fits and s.lut > 0
    assert s.utilization["lut"] == pytest.approx(100 * s.lut / 53200, abs=0.01)
    assert r.report.html.is_file() and r.report.json.is_file()
    assert r.sim is None


def test_train_config_is_checked_when_made(tmp_path):
    cfg = api.TrainConfig(kind="mlp", out_dir=tmp_path / "t", hidden=[16])
    assert cfg.hidden == (16,) and cfg.resolved()["epochs"] == 40
    assert "fanin" not in cfg.resolved() and cfg.resolved()["wbits"] == 4
    assert api.TrainConfig(kind="lutnet", out_dir="t").resolved()["fanin"] == 6
    with pytest.raises(GatemillError, match="Unknown model kind 'rnn'"):
        api.TrainConfig(kind="rnn", out_dir="t")
    with pytest.raises(GatemillError, match="applies only to lutnet"):
        api.TrainConfig(kind="mlp", out_dir="t", fanin=3)
    with pytest.raises(GatemillError, match="epochs must be an integer of at least 1, not 0"):
        api.TrainConfig(kind="cnn", out_dir="t", epochs=0)
    assert not (tmp_path / "t").exists()
