"""FINN's own end-to-end test networks (``brevitas_examples.bnn_pynq``), exported as they come.

Random init (``pretrained=False``: no download), BatchNorm and TensorNorm statistics from a few
seeded forward passes in train mode, then eval; ``export_qonnx(..., dynamo=False)``, no edits.
They take float images in [0, 1] and compute ``2 x - 1`` (and a reshape) before the first
quantizer, so they import with the input's encoding stated: raw uint8 pixels, scale 1/255.
"""

from __future__ import annotations

import dataclasses
import json

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn as nn
from brevitas.export import export_qonnx
from brevitas_examples.bnn_pynq.models import model_with_cfg
from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm
from brevitas_models import export, pre_mlp, q17_input
from fake_pynq import fake_pynq, import_driver

from gatemill.flow.boards import load_board
from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.cli import main
from gatemill.flow.frontend import import_qonnx, parse_encoding
from gatemill.flow.frontend.compare import check_against_qonnx, to_ir_ints
from gatemill.flow.kinds import load_ir
from gatemill.flow.vivado import write_vivado

UINT8 = ("UINT8", "1/255")
# bnn_pynq ships no lfc_2w2a configuration
FAST = ["tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "sfc_1w1a", "cnv_1w1a"]
SLOW = ["sfc_1w2a", "sfc_2w2a", "lfc_1w1a", "lfc_1w2a", "cnv_1w2a", "cnv_2w2a"]
MODELS = FAST + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW]


def export_as_they_come(name: str, path) -> str:
    torch.manual_seed(0)
    model, cfg = model_with_cfg(name, pretrained=False)
    shape = (1, 28, 28) if cfg.get("MODEL", "ARCH") == "FC" else (3, 32, 32)
    gen = torch.Generator().manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand((16, *shape), generator=gen))
    model.eval()
    export_qonnx(model, torch.rand((1, *shape), generator=gen), export_path=str(path), dynamo=False)
    return str(path)


@pytest.fixture(scope="session")
def bnn_pynq(tmp_path_factory):
    """``bnn_pynq(name)``: the path of the exported model (exported once per session)."""
    folder, paths = tmp_path_factory.mktemp("bnn_pynq"), {}

    def get(name: str) -> str:
        if name not in paths:
            paths[name] = export_as_they_come(name, folder / f"{name}.onnx")
        return paths[name]

    return get


def images(imp, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *imp.ir.input.model_shape))


@pytest.mark.parametrize("name", MODELS)
def test_imports_with_golden_equal_to_qonnx(bnn_pynq, name):
    imp = import_qonnx(bnn_pynq(name), encoding=parse_encoding(*UINT8))
    ir = imp.ir
    assert ir.input.raw and ir.input.dtype.name == "UINT8"
    first = imp.input_report["first_quantizer"]
    # 2 q / 255 - 1 into a sign (1-bit input) or a Q1.7 quantizer: not lossless
    assert first["handling"] == "threshold" and ir.layers[0].kind == "Threshold"
    assert imp.input_report["preprocessing"][-2:] == ["/Mul (Mul)", "/Sub (Sub)"]
    report, values, x_int = check_against_qonnx(ir, imp.model, imp.probes, images(imp, 5, 1))
    assert report["mismatches"] == 0, report
    for probe in imp.probes:  # every layer's output, not only the logits
        ref = to_ir_ints(values[probe.tensor], probe.scale, probe.bias, probe.layout)
        got = ir.execute(x_int, trace=True)[1][probe.layer]
        np.testing.assert_array_equal(got, ref, err_msg=ir.layers[probe.layer].name)


def test_tensor_norm_between_quantizers_folds_into_thresholds(tmp_path):
    """bnn_pynq's TensorNorm (one affine for the whole tensor) between two quantizers."""
    torch.manual_seed(3)
    norms = [TensorNorm(), TensorNorm()]
    model = nn.Sequential(
        qnn.QuantIdentity(bit_width=8),
        qnn.QuantLinear(12, 9, bias=False, weight_bit_width=3),
        norms[0],
        qnn.QuantIdentity(bit_width=2),
        qnn.QuantLinear(9, 4, bias=False, weight_bit_width=3),
        norms[1],
    )
    with torch.no_grad():
        norms[0].weight.fill_(-0.7)  # a negative gain flips the comparisons
        norms[0].bias.fill_(0.2)
        norms[0].running_mean.fill_(0.4)
        norms[0].running_var.fill_(3.1)
    model.eval()
    imp = import_qonnx(export(model, (12,), tmp_path / "tn.onnx"))
    kinds = [layer.kind for layer in imp.ir.layers]
    assert kinds == ["MatrixVector", "MatrixVector"] and imp.ir.layers[0].thresholds is not None
    assert set(imp.ir.layers[0].direction.tolist()) == {-1}
    layer, chain = imp.ir.layers[0], imp.chains[0]
    for acc in range(int(chain.lo[0]), int(chain.hi[0]) + 1):
        passed = np.count_nonzero(acc <= layer.thresholds[0])
        assert layer.out_base + passed == chain.level(acc, 0)
    x = np.random.default_rng(0).normal(size=(200, 12)).astype(np.float32)
    report, _, _ = check_against_qonnx(imp.ir, imp.model, imp.probes, x)
    assert report["mismatches"] == 0, report


def check_raw_build(out, monkeypatch, q):
    """The manifest documents the raw input; the PYNQ driver packs the user's integers."""
    manifest = json.loads((out / "rtl" / "manifest.json").read_text())
    quantizer = manifest["input"]["quantizer"]
    assert quantizer["raw"] and quantizer["input_type"] == "UINT8"
    assert quantizer["scale"] == "1/255" and "x = scale * q" in quantizer["meaning"]
    ir = load_ir(out)
    write_vivado(out, load_board("pynq-z2"), run=False)
    fake_pynq(monkeypatch, ir, manifest)
    acc = import_driver(monkeypatch, out).Accelerator()
    np.testing.assert_array_equal(acc.execute(q), ir.predict(q))
    with pytest.raises(ValueError, match="not an integer"):
        acc.execute(q / 255)


def test_bnn_front_builds_with_raw_uint8_input(tmp_path, monkeypatch):
    """bnn_pynq's front (view, 2 x - 1, Q1.7 quantizer) on a small model: RTL simulated."""
    model = export(pre_mlp(4, q17_input(), flatten=True), (1, 2, 2), tmp_path / "m.onnx")
    q = np.random.default_rng(2).integers(0, 256, size=(24, 1, 2, 2)).astype(np.uint8)
    np.savez(tmp_path / "q.npz", x=q)
    cfg = BuildConfig(
        model=model,
        out=tmp_path / "b",
        vectors=tmp_path / "q.npz",
        simulator="icarus",
        input_type="UINT8",
        input_scale="1/255",
    )
    sim = run_build(cfg)["sim"]
    assert sim["mismatches"] == 0 and sim["ii_cycles"] == sim["est_ii_cycles"]
    assert sim["latency_cycles"] == sim["est_latency_cycles"]
    check_raw_build(tmp_path / "b", monkeypatch, q)


@pytest.mark.slow
def test_tfc_w1a1_builds_and_simulates(bnn_pynq, tmp_path, monkeypatch):
    q = np.random.default_rng(4).integers(0, 256, size=(6, 1, 28, 28)).astype(np.uint8)
    np.savez(tmp_path / "q.npz", x=q)
    cfg = BuildConfig(
        model=bnn_pynq("tfc_1w1a"),
        out=tmp_path / "b",
        vectors=tmp_path / "q.npz",
        input_type="UINT8",
        input_scale="1/255",
    )
    reports = run_build(cfg)
    assert reports["import"]["end_to_end"]["mismatches"] == 0
    sim = reports["sim"]
    assert sim["mismatches"] == 0 and sim["ii_cycles"] == sim["est_ii_cycles"]
    assert sim["latency_cycles"] == sim["est_latency_cycles"]
    check_raw_build(tmp_path / "b", monkeypatch, q)


def test_fitting_tfc_to_a_board_passes_its_standalone_threshold(bnn_pynq):
    """TFC's first layer is a Threshold (no multipliers): fitting the network to a board
    without block RAM moves weight bits of a dense layer to LUTs, and the rule says so."""
    from gatemill.flow.steps.fold import choose_folding

    ir = import_qonnx(bnn_pynq("tfc_1w1a"), encoding=parse_encoding(*UINT8)).ir
    assert ir.layers[0].kind == "Threshold"
    board = load_board("pynq-z2")
    board = dataclasses.replace(board, capacity={**board.capacity, "bram36": 0})
    _, doc = choose_folding(ir, target_fps=100e6 / 256, board=board)
    assert "weight bits a word of features_2_MatMul in LUTs" in doc["rule"]
    assert "0 block RAMs (0 used)" in doc["rule"]


@pytest.mark.slow
def test_resnet18_lists_only_its_input(bnn_pynq, tmp_path, capsys):
    """The forks, Adds, average pool and truncation are supported: only the float input is
    refused, and the message says which option to give."""
    code = main(["import", bnn_pynq("resnet18_4w4a"), "--out", str(tmp_path / "o")])
    text = capsys.readouterr().err
    assert code == 2 and "Traceback" not in text
    assert "1 unsupported node:" in text
    assert "node '/conv1/Conv' (Conv): the model input 'quant_input' reaches it as floats" in text
    assert "--input-type UINT8 --input-scale 1" in text
    assert "(Add)" not in text and "(AveragePool)" not in text and "(a branch" not in text


def off_by_float32(imp, x, layer_name) -> list[float]:
    """For every element where *layer_name*'s output differs from QONNX: its exact value before
    the quantizer, in quantizer steps (``v / scale``), QONNX's float32 value the same way."""
    from fractions import Fraction

    from gatemill.flow.frontend import exact
    from gatemill.flow.frontend.compare import run_qonnx

    ir = imp.ir
    index = next(i for i, layer in enumerate(ir.layers) if layer.name == layer_name)
    layer, chain = ir.layers[index], imp.chains[index]
    probe = next(p for p in imp.probes if p.layer == index)
    window = ir.by_name[ir.inputs[layer.name][0]]
    source = ir.inputs[window.name][0]
    sp = next(p for p in imp.probes if ir.layers[p.layer].name == source)
    pre = imp.model.find_producer(probe.tensor).input[0]
    vals = run_qonnx(imp.model, ir.input.float_input(x), [probe.tensor, pre, sp.tensor])
    acc = layer.accumulate(window.execute(to_ir_ints(vals[sp.tensor], sp.scale, sp.bias, "NCHW")))
    got = layer.execute(window.execute(to_ir_ints(vals[sp.tensor], sp.scale, sp.bias, "NCHW")))
    ref = to_ir_ints(vals[probe.tensor], probe.scale, probe.bias, "NCHW")
    out = []
    for n, h, w, c in np.argwhere(got != ref):
        step = chain.quantizer.scale[c]
        v = exact.evaluate(chain.ops, Fraction(int(acc[n, h, w, c])), c) / step
        f = Fraction(float(vals[pre][n, c, h, w])) / step
        out.append((float(v), float(f)))
    return out


@pytest.mark.slow
def test_resnet18_imports_with_golden_equal_to_qonnx_but_float32_ties(bnn_pynq):
    """resnet18 4w4a (8 residual Adds, downsampling branches, TruncAvgPool) imports with the
    input's encoding stated. The golden model equals QONNX except where the exact value is a
    hair past a rounding tie (n + 0.5000003) and QONNX's float32 convolution, BatchNorm and
    division by the scale land on the tie itself, which rounds the other way."""
    imp = import_qonnx(bnn_pynq("resnet18_4w4a"), encoding=parse_encoding("UINT8", "1"))
    ir = imp.ir
    assert sum(layer.kind == "Add" for layer in ir.layers) == 8
    assert sum(len(ir.consumers(layer.name)) == 2 for layer in ir.layers) == 8  # the forks
    x = np.random.default_rng(1).integers(0, 256, size=(4, *ir.input.model_shape))
    report, _, _ = check_against_qonnx(ir, imp.model, imp.probes, x)
    assert report["max_level_diff"] <= 1
    for entry in report["per_layer"]:
        if not entry["mismatches"]:
            continue
        ties = off_by_float32(imp, ir.input.quantize(x), entry["layer"])
        assert len(ties) == entry["mismatches"]
        for v, f in ties:  # both within float32's error of a tie n + 1/2
            tie = np.floor(v) + 0.5
            assert abs(v - tie) < 1e-5 and abs(f - tie) < 1e-5, (v, f)
