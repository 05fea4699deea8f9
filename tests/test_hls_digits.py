"""HLS backend on the digits models (slow): every test vector through the g++ C simulation of
the generated HLS C++, compared with the golden model (``golden.npz`` of the build, made by
``IRGraph.execute``); and the hls4ml peer on the same QONNX models.
"""

from __future__ import annotations

import json

import pytest

from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.hls.step import HlsConfig, run_hls
from gatemill.flow.zoo.train import train

MODELS = [("mlp", 4, 4), ("mlp", 1, 1), ("cnn", 4, 4)]


def digits_build(tmp_path, kind, wbits, abits):
    train(kind, out_dir=tmp_path / "t", wbits=wbits, abits=abits, seed=0, progress=False)
    cfg = BuildConfig(
        model=tmp_path / "t" / "model.onnx",
        vectors=tmp_path / "t" / "vectors.npz",
        out=tmp_path / "b",
        until="rtl",
    )
    run_build(cfg)
    return tmp_path / "b"


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "wbits", "abits"), MODELS)
def test_digits_csim_is_bit_exact(tmp_path, kind, wbits, abits):
    build = digits_build(tmp_path, kind, wbits, abits)
    r = run_hls(HlsConfig(build=build, vitis=False))["csim"]
    n = json.loads((build / "import.json").read_text())["vectors"]
    assert r["vectors"] == n > 300  # the whole digits test set
    assert r["mismatches"] == 0 and r["framing_errors"] == 0
    if kind == "mlp" and wbits == 4:
        # the peer, measured beside ours on the same build
        h = run_hls(HlsConfig(build=build, via="hls4ml"))["hls4ml"]
        assert h["vectors"] == n
        assert h["gatemill_csim"]["mismatches"] == 0
        assert h["compile_seconds"] > 0
        # wide fixed point from the IR: hls4ml lands on the golden outputs here
        assert h["mismatches"] == 0 and h["argmax_agreement"] == 1.0, h


@pytest.mark.slow
def test_hls4ml_names_the_layer_it_cannot_match(tmp_path):
    # hls4ml 1.3.0 stores the weights of an XNOR dense (bipolar inputs and weights) as all +1;
    # the report must name the first such layer and say why
    build = digits_build(tmp_path, "mlp", 1, 1)
    h = run_hls(HlsConfig(build=build, via="hls4ml"))["hls4ml"]
    if h["mismatches"]:
        assert not h["exact"]
        assert h["divergent_layer"] == "fc1_MatMul"
        assert "XNOR" in h["why"]
