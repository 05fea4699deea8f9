"""gatemill build: RTL generated from the IR, simulated in cocotb against the golden model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from brevitas_models import cnn, export, mlp

from gatemill.flow.build import BuildConfig, run_build, run_sim_step
from gatemill.flow.cli import main
from gatemill.flow.dse.fold import apply_folding, default_folding
from gatemill.flow.frontend import import_qonnx
from gatemill.flow.kinds import save_ir
from gatemill.flow.outdir import prepare_out_dir
from gatemill.flow.rtl_step import run_rtl
from gatemill.flow.vectors import random_vectors


@pytest.fixture(scope="module")
def small_mlp(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlp")
    return export(
        mlp([12, 8, 6, 3], wbits=3, abits=2, per_channel=True, seed=5), (12,), d / "mlp.onnx"
    )


def fold_file(path, layers):
    path.write_text(json.dumps({"layers": layers}))
    return path


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_fully_parallel_mlp_reaches_ii_1(small_mlp, tmp_path, sim):
    names = [layer.name for layer in import_qonnx(small_mlp).ir.layers]
    sizes = [(8, 12), (6, 8), (3, 6)]
    folding = fold_file(
        tmp_path / "f.json",
        {n: {"pe": mh, "simd": mw} for n, (mh, mw) in zip(names, sizes, strict=True)},
    )
    r = run_build(BuildConfig(model=small_mlp, out=tmp_path / "b", folding=folding, simulator=sim))[
        "sim"
    ]
    assert r["mismatches"] == 0
    assert r["ii_cycles"] == r["est_ii_cycles"] == 1
    assert r["latency_cycles"] == r["est_latency_cycles"]


def test_folded_mlp_reaches_bottleneck_ii(small_mlp, tmp_path):
    names = [layer.name for layer in import_qonnx(small_mlp).ir.layers]
    # bottleneck: the first layer, 12 * 8 / (2 * 3) = 16 cycles per sample
    folding = fold_file(
        tmp_path / "f.json",
        {
            names[0]: {"pe": 2, "simd": 3},
            names[1]: {"pe": 2, "simd": 4},
            names[2]: {"pe": 1, "simd": 6},
        },
    )
    r = run_build(
        BuildConfig(model=small_mlp, out=tmp_path / "b", folding=folding, simulator="icarus")
    )["sim"]
    assert r["mismatches"] == 0
    assert r["ii_cycles"] == r["est_ii_cycles"] == 12 * 8 // (2 * 3)
    assert r["latency_cycles"] == r["est_latency_cycles"]


def test_no_sample_lost_duplicated_or_reordered_under_stress(small_mlp, tmp_path):
    # 1,200 distinct samples; frames compared in order, so a lost, repeated or swapped
    # sample shows up as mismatches or a missing frame
    imp = import_qonnx(small_mlp)
    x = random_vectors(imp.ir, 1200, seed=11)
    np.savez(tmp_path / "v.npz", x=x)
    r = run_build(
        BuildConfig(
            model=small_mlp,
            out=tmp_path / "b",
            vectors=tmp_path / "v.npz",
            simulator="icarus",
            idle=0.5,
            stall=0.5,
            seed=3,
        )
    )["sim"]
    assert r["vectors"] == 1200
    assert r["mismatches"] == 0
    assert r["stress"]["framing_errors"] == 0


def test_cnn_default_folding(tmp_path):
    model = export(
        cnn(2, 6, [(4, 3, 2, 1), (6, 3, 1, 1)], [5], wbits=4, abits=3, seed=2),
        (2, 6, 6),
        tmp_path / "cnn.onnx",
    )
    r = run_build(BuildConfig(model=model, out=tmp_path / "b", simulator="icarus"))
    s = r["sim"]
    assert s["mismatches"] == 0
    assert s["ii_cycles"] == s["est_ii_cycles"]
    assert s["latency_cycles"] == s["est_latency_cycles"]


# name: (model, input shape, folds of the MatrixVector and MaxPool layers in order, or None for
# the default rule). Strides 1 and 2, padding 0 and 1, kernels 1 to 3, 2x2 and 3x3/2 max-pools,
# and width converters that gather, scatter and re-chunk (2 -> 3, 3 -> 2).
SHAPES = {
    # a 1x1 convolution bursting two beats a vector into a 2 -> 1 converter, which holds it
    "conv1x1_s2_stalled": (
        lambda: cnn(4, 6, [(4, 1, 2, 0), (2, 3, 1, 1)], [3], pool=False, seed=1),
        (4, 6, 6),
        [{"pe": 2, "simd": 4}, {"pe": 2, "simd": 1}, {"pe": 1, "simd": 3}],
    ),
    "conv3x3_pool3x3_s2": (
        lambda: cnn(2, 9, [(4, 3, 1, 1), (4, 3, 1, 0)], [3], pool=(3, 2), seed=2),
        (2, 9, 9),
        None,
    ),
    "conv2x2_s2_pool3x3_s2": (
        lambda: cnn(2, 7, [(4, 2, 2, 0)], [3], pool=(3, 2), seed=3),
        (2, 7, 7),
        [{"pe": 2, "simd": 2}, {"pe": 1}, {"pe": 3, "simd": 4}],
    ),
    "conv3x3_same_pool2x2": (
        lambda: cnn(2, 6, [(4, 3, 1, 1)], [3], seed=4),
        (2, 6, 6),
        [{"pe": 4, "simd": 1}, {"pe": 2}, {"pe": 1, "simd": 3}],
    ),
    "mlp_rechunked": (
        lambda: mlp([12, 6, 4, 3], wbits=3, abits=2, seed=5),
        (12,),
        [{"pe": 2, "simd": 6}, {"pe": 4, "simd": 3}, {"pe": 1, "simd": 2}],
    ),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_latency_estimate_equals_simulation(tmp_path, name):
    """The chain's latency estimate (each stage's timing model from all input beats at cycle 0)
    equals the first input beat to first output beat that Icarus measures at full rate."""
    build, shape, folds = SHAPES[name]
    model = export(build(), shape, tmp_path / "m.onnx")
    ir = import_qonnx(model).ir
    folding = None
    if folds is not None:
        layers = [ly for ly in ir.layers if ly.kind in ("MatrixVector", "MaxPool")]
        layers = {ly.name: f for ly, f in zip(layers, folds, strict=True)}
        folding = fold_file(tmp_path / "f.json", layers)
    np.savez(tmp_path / "v.npz", x=random_vectors(ir, 3, seed=1))
    cfg = BuildConfig(
        model=model,
        out=tmp_path / "b",
        vectors=tmp_path / "v.npz",
        folding=folding,
        simulator="icarus",
    )
    s = run_build(cfg)["sim"]
    assert s["mismatches"] == 0
    assert s["ii_cycles"] == s["est_ii_cycles"]
    assert s["latency_cycles"] == s["est_latency_cycles"]


def test_rtl_is_deterministic(small_mlp, tmp_path):
    for d in ("a", "b"):
        run_build(BuildConfig(model=small_mlp, out=tmp_path / d, until="rtl"))
    a = (tmp_path / "a" / "rtl" / "gatemill_top.v").read_bytes()
    assert a == (tmp_path / "b" / "rtl" / "gatemill_top.v").read_bytes()
    assert b"module gatemill_top" in a


def test_manifest_describes_the_ports(small_mlp, tmp_path):
    run_build(BuildConfig(model=small_mlp, out=tmp_path / "b", until="rtl"))
    m = json.loads((tmp_path / "b" / "rtl" / "manifest.json").read_text())
    assert m["top"] == "gatemill_top" and m["clock"] == "aclk"
    assert m["input"]["shape"] == [12] and m["output"]["shape"] == [3]
    for port in ("input", "output"):
        p = m[port]
        assert p["tdata_bits"] % 8 == 0 and p["lanes"] * p["element_bits"] <= p["tdata_bits"]
    assert (tmp_path / "b" / "folding.json").exists()


def test_bad_folding_is_refused(small_mlp, tmp_path, capsys):
    f = fold_file(tmp_path / "f.json", {"no_such_layer": {"pe": 2}})
    code = main(["build", small_mlp, "--out", str(tmp_path / "b"), "--folding", str(f)])
    assert code == 2
    assert "no_such_layer" in capsys.readouterr().err
    name = import_qonnx(small_mlp).ir.layers[0].name
    f = fold_file(tmp_path / "g.json", {name: {"pe": 5}})
    code = main(["build", small_mlp, "--out", str(tmp_path / "c"), "--folding", str(f)])
    assert code == 2
    assert "pe must be a positive divisor of 8" in capsys.readouterr().err


def test_waves_are_written_as_fst(small_mlp, tmp_path):
    r = run_build(BuildConfig(model=small_mlp, out=tmp_path / "b", simulator="icarus", waves=True))[
        "sim"
    ]
    assert r["mismatches"] == 0
    assert r["waves"].endswith(".fst")  # relative to the build folder
    with open(tmp_path / "b" / r["waves"], "rb") as f:
        assert len(f.read()) > 1000


def test_max_lut_on_the_command_line(small_mlp, tmp_path, capsys):
    code = main(["build", small_mlp, "--out", str(tmp_path / "a"), "--max-lut", "5"])
    assert code == 2
    assert "--max-lut 5: even the slowest folding" in capsys.readouterr().err
    code = main(["build", small_mlp, "--out", str(tmp_path / "b"), "--max-lut", "600"])
    assert code == 0
    fold = json.loads((tmp_path / "b" / "folding.json").read_text())
    assert fold["max_lut"] == 600 and fold["rule"].startswith("fastest within 600 LUTs")
    assert json.loads((tmp_path / "b" / "sim.json").read_text())["mismatches"] == 0


def test_board_multipliers_fold_the_build(tmp_path, capsys):
    model = export(mlp([64, 64, 10], wbits=4, abits=4, seed=2), (64,), tmp_path / "m.onnx")
    args = ["build", str(model), "--board", "ulx3s-85f", "--until", "rtl"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    fold = json.loads((tmp_path / "a" / "folding.json").read_text())
    # the default folding's products neither fit the MULT18s nor, at the same rate, the
    # LUT4s (Yosys: 116,729 of 83,640 when the estimate was counted in LUT6s): slower, in
    # LUTs (Yosys: 64,796 LUT4s at ii 8)
    assert "folded to fit the ulx3s-85f's 93 usable multipliers" in fold["rule"]
    assert all(f["mul"] == "lut" for f in fold["layers"].values())

    # one sample per clock: 4,736 products fit neither the 93 MULT18s nor the LUTs
    assert main([*args, "--out", str(tmp_path / "b"), "--target-fps", "2.5e7"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--target-fps 2.5e+07 at 25 MHz needs" in err and "Traceback" not in err
    assert "a folding may use 93, 104 and 71,094 of them on the ulx3s-85f" in err
    assert "moving products, thresholds or weights between LUTs and DSP blocks" in err


@pytest.mark.parametrize("graph", ["depthwise", "set"])
def test_hand_built_graph_of_vector_vector_and_global_sum(graph, tmp_path):
    """The top level of graphs no frontend makes yet, folded by the default rule: a
    depthwise CNN (sliding window -> vector-vector, an average pool as a vector-vector of
    ones, global sum with thresholds, dense) and a deep set (vector-vector on bipolar inputs,
    dense per element, raw global sum, vector-vector with bipolar weights), simulated against
    the golden model; latency and ii equal the timing models'."""
    from test_hls import depthwise_graph, random_values, set_graph

    ir = {"depthwise": depthwise_graph, "set": set_graph}[graph]()
    ir = apply_folding(ir, default_folding(ir), "default rule")
    out = prepare_out_dir(tmp_path / "b")
    save_ir(ir, out)
    x = random_values(np.random.default_rng(5), ir.input.dtype, (12, *ir.input.shape))
    np.savez(out / "golden.npz", inputs=x, outputs=ir.execute(x))
    run_rtl(ir, out)
    r = run_sim_step(out, BuildConfig(model=out / "ir.json", out=out))
    assert r["vectors"] == 12 and r["mismatches"] == 0
    assert r["ii_cycles"] == r["est_ii_cycles"]
    assert r["latency_cycles"] == r["est_latency_cycles"]
