"""``gatemill build`` of LUT networks: every table checked exhaustively against the IR, and the
whole network bit-exact in cocotb (golden model: ``IRGraph.execute`` of the LutLayers) at one
sample per clock, with the latency the units' ``beat_times`` estimate."""

from __future__ import annotations

import json

import pytest
from brevitas_models import export
from test_lut_frontend import jsc_s

from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.frontend import import_qonnx


@pytest.fixture(scope="module")
def jsc_model(tmp_path_factory):
    return export(jsc_s(seed=3), (16,), tmp_path_factory.mktemp("jsc") / "jsc_s.onnx")


@pytest.mark.parametrize("pipeline", [0, 1], ids=["comb", "pipelined"])
def test_jsc_s_builds_at_one_sample_per_clock(jsc_model, tmp_path, pipeline):
    folding = None
    if pipeline:
        names = [layer.name for layer in import_qonnx(jsc_model).ir.layers]
        folding = tmp_path / "folding.json"
        folding.write_text(json.dumps({"layers": {n: {"pipeline": 1} for n in names}}))
    reports = run_build(
        BuildConfig(model=jsc_model, out=tmp_path / "b", folding=folding, simulator="icarus")
    )
    check = reports["lut_check"]
    assert (check["layers"], check["neurons"], check["mismatches"]) == (4, 133, 0)
    fanin = [r["address_bits"] for r in check["per_layer"]]
    assert check["entries_checked"] == sum(
        r["neurons"] << a for r, a in zip(check["per_layer"], fanin, strict=True)
    )
    sim = reports["sim"]
    assert sim["mismatches"] == 0
    assert sim["ii_cycles"] == sim["est_ii_cycles"] == 1
    # 4 table layers (2 registers each when pipelined) under one clock enable, no FIFO
    # between them, and a skid buffer at the output (no register on the way)
    assert sim["latency_cycles"] == sim["est_latency_cycles"] == 4 * (1 + pipeline)
    stages = reports["rtl"]["stages"]
    assert [s["kind"] for s in stages] == ["LutLayer"] * 4 + ["Skid"]
    assert json.loads((tmp_path / "b" / "folding.json").read_text())["layers"][
        stages[0]["name"]
    ] == {"pipeline": pipeline}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lutnet", "poetbin"])
def test_digits_models_build_bit_exact(tmp_path, kind):
    """The issue's acceptance run: train on the digits, build to simulation with the whole
    test set (poetbin's binarized extractor fully parallel), 0 mismatches at ii 1."""
    from gatemill.flow.dse.fold import fold_for_ii
    from gatemill.flow.zoo.train import train

    train(kind, out_dir=tmp_path / "t", progress=False)
    model = tmp_path / "t" / "model.onnx"
    folding = tmp_path / "folding.json"
    folding.write_text(json.dumps({"layers": fold_for_ii(import_qonnx(model).ir, 1)}))
    reports = run_build(
        BuildConfig(
            model=model,
            out=tmp_path / "b",
            vectors=tmp_path / "t" / "vectors.npz",
            folding=folding,
            # Verilator spends minutes compiling poetbin's fully parallel extractor
            simulator="icarus",
        )
    )
    assert reports["import"]["golden_accuracy"] >= 0.90
    assert reports["lut_check"]["mismatches"] == 0
    sim = reports["sim"]
    assert sim["vectors"] == 360 and sim["mismatches"] == 0
    assert sim["ii_cycles"] == sim["est_ii_cycles"] == 1
    assert sim["latency_cycles"] == sim["est_latency_cycles"]
