"""The digits models end to end: train -> import -> RTL -> simulation on both simulators.

Slow (minutes): run with ``make test-acceptance`` (CI does) or ``make test-slow``. These are
the acceptance figures of the foundation and RTL issues: accuracy targets, golden = QONNX,
0 hardware mismatches on the whole test set, measured II and latency equal to the estimates.
"""

from __future__ import annotations

import json

import pytest

from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.zoo.train import train

MODELS = {
    "mlp_w4a4": (dict(kind="mlp", wbits=4, abits=4), 0.95),
    "mlp_w1a1": (dict(kind="mlp", wbits=1, abits=1), 0.85),
    "cnn_w4a4": (dict(kind="cnn", wbits=4, abits=4), 0.96),
}

# slow, and behind the README's figures: .ci/run runs it after the default suite
pytestmark = [pytest.mark.slow, pytest.mark.acceptance]


@pytest.fixture(scope="module", params=sorted(MODELS))
def trained(request, tmp_path_factory):
    spec, target = MODELS[request.param]
    out = tmp_path_factory.mktemp(request.param)
    kind = spec["kind"]
    report = train(
        kind,
        out_dir=out / "train",
        wbits=spec["wbits"],
        abits=spec["abits"],
        seed=0,
        progress=False,
    )
    return request.param, out, report, target


def test_quantized_accuracy_target(trained):
    name, _, report, target = trained
    assert report["quant_accuracy"] >= target, (name, report["quant_accuracy"])
    assert report["test_samples"] == 360


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_hardware_matches_golden_on_the_test_set(trained, sim):
    _, out, _, _ = trained
    reports = run_build(
        BuildConfig(
            model=out / "train" / "model.onnx",
            out=out / sim,
            vectors=out / "train" / "vectors.npz",
            simulator=sim,
        )
    )
    imp, s = reports["import"], reports["sim"]
    assert abs(imp["golden_accuracy"] - imp["qonnx_accuracy"]) <= 0.003
    assert imp["golden_vs_qonnx"]["max_level_diff"] <= 1
    assert s["vectors"] == 360 and s["mismatches"] == 0
    assert s["ii_cycles"] == s["est_ii_cycles"]
    assert s["latency_cycles"] == s["est_latency_cycles"]
    saved = json.loads((out / sim / "sim.json").read_text())
    assert saved["simulator"] == sim and saved["mismatches"] == 0
