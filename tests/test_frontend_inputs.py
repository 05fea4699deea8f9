"""The input's integer encoding and the pre-processing before the first quantizer
(flow/frontend/inputs.py): the golden model takes the raw integers q and equals QONNX run on
x = scale * q, on every q of the input type."""

from __future__ import annotations

import json

import numpy as np
import pytest
from brevitas_models import export, mlp, pre_cnn, pre_mlp, q17_input, u8_input

from gatemill.flow.cli import main
from gatemill.flow.errors import GatemillError
from gatemill.flow.frontend import import_qonnx, parse_encoding
from gatemill.flow.frontend.compare import check_against_qonnx, to_ir_ints
from gatemill.flow.import_step import run_import
from gatemill.flow.kinds import load_ir, save_ir
from gatemill.flow.kinds.thresholds import apply_thresholds


def raw_import(model, shape, path, scale="1/255", input_type="UINT8"):
    return import_qonnx(export(model, shape, path), encoding=parse_encoding(input_type, scale))


def every_q(imp, seed=0) -> np.ndarray:
    """256 raw uint8 samples in which every element takes every value 0..255 once."""
    shape = imp.ir.input.model_shape
    shift = np.random.default_rng(seed).integers(0, 256, size=shape)
    return (np.arange(256).reshape(256, *[1] * len(shape)) + shift) % 256


def assert_golden_is_qonnx(imp, x):
    report, values, x_int = check_against_qonnx(imp.ir, imp.model, imp.probes, x)
    assert report["mismatches"] == 0, report
    probe = imp.probes[-1]
    ref = to_ir_ints(values[probe.tensor], probe.scale, probe.bias, probe.layout)
    np.testing.assert_array_equal(imp.ir.execute(x_int), ref)
    return x_int


def assert_thresholds_exact(imp, index: int, lo: int, hi: int):
    """The thresholds of layer *index* against the exact function on every input in [lo, hi]."""
    layer, chain = imp.ir.layers[index], imp.chains[index]
    q = np.arange(lo, hi + 1)
    channels = layer.thresholds.shape[0]
    x = np.repeat(q[:, None], channels, axis=1)
    got = apply_thresholds(x, layer.thresholds, layer.direction, layer.out_dtype, layer.out_base)
    for c in range(channels):
        np.testing.assert_array_equal(got[:, c], [chain.level(int(v), c) for v in q])


@pytest.fixture(scope="module")
def bnn_like(tmp_path_factory):
    """bnn_pynq's FC front: view(N, -1), 2 x - 1, an 8-bit [-1, 127/128] quantizer."""
    return export(
        pre_mlp(16, q17_input(), flatten=True), (1, 4, 4), tmp_path_factory.mktemp("b") / "b.onnx"
    )


def test_not_lossless_becomes_a_threshold_layer_on_q(bnn_like, tmp_path):
    imp = import_qonnx(bnn_like, encoding=parse_encoding("UINT8", "1/255"))
    ir = imp.ir
    assert ir.input.raw and ir.input.exact_scale == "1/255" and ir.input.dtype.name == "UINT8"
    assert ir.input.shape == (16,) and ir.input.model_shape == (1, 4, 4)
    first = ir.layers[0]
    assert first.kind == "Threshold" and first.in_dtype.name == "UINT8"
    assert first.out_dtype.name == "INT8"
    report = imp.input_report
    assert report["preprocessing"] == ["/Reshape (Reshape)", "/Mul (Mul)", "/Sub (Sub)"]
    assert report["first_quantizer"]["handling"] == "threshold"
    assert_thresholds_exact(imp, 0, 0, 255)
    x = every_q(imp)
    x_int = assert_golden_is_qonnx(imp, x)
    # 256 q / 255 - 128 rounds to 128 for q = 255 only: the quantizer clips it
    assert imp.first_quantizer.saturated(x_int) == np.count_nonzero(x == 255)
    save_ir(ir, tmp_path)
    assert load_ir(tmp_path) == ir


def test_lossless_requantization_folds_into_the_first_layer(bnn_like):
    # x = q / 256: 2 x - 1 = (q - 128) / 128, exactly the quantizer's levels
    imp = import_qonnx(bnn_like, encoding=parse_encoding("UINT8", "1/256"))
    first = imp.ir.layers[0]
    assert first.kind == "MatrixVector" and first.in_dtype.name == "UINT8"
    assert imp.input_report["first_quantizer"]["handling"] == "lossless"
    assert "level = q - 128" in imp.input_report["first_quantizer"]["detail"]
    x_int = assert_golden_is_qonnx(imp, every_q(imp))
    assert imp.first_quantizer.saturated(x_int) == 0


def test_identity_quantizer_is_dropped(tmp_path):
    imp = raw_import(pre_mlp(12, u8_input(), mul=1.0, sub=0.0), (12,), tmp_path / "u.onnx")
    assert imp.input_report["first_quantizer"]["handling"] == "identity"
    assert imp.input_report["preprocessing"] == []
    assert [layer.kind for layer in imp.ir.layers] == ["MatrixVector", "MatrixVector"]
    assert imp.ir.layers[0].in_dtype.name == "UINT8"
    assert_golden_is_qonnx(imp, every_q(imp))


def test_padded_conv_after_an_offset_keeps_the_threshold_layer(tmp_path):
    # lossless (q - 128), but zero padding would pad with q = 0, i.e. -1: not foldable
    model = pre_cnn(2, 5, q17_input(), padding=1)
    imp = raw_import(model, (2, 5, 5), tmp_path / "p.onnx", scale="1/256")
    assert imp.input_report["first_quantizer"]["handling"] == "threshold"
    assert [layer.kind for layer in imp.ir.layers][:2] == ["Threshold", "SlidingWindow"]
    assert_golden_is_qonnx(imp, every_q(imp))


def test_unpadded_conv_takes_q(tmp_path):
    model = pre_cnn(2, 5, q17_input(), padding=0)
    imp = raw_import(model, (2, 5, 5), tmp_path / "c.onnx", scale="1/256")
    assert imp.input_report["first_quantizer"]["handling"] == "lossless"
    window = imp.ir.layers[0]
    assert window.kind == "SlidingWindow" and window.dtype.name == "UINT8"
    assert_golden_is_qonnx(imp, every_q(imp))


def test_raw_input_feeds_a_padded_conv(tmp_path):
    """No input quantizer (bnn_pynq's resnet18 takes "8-bit RGB"): the conv takes q."""
    model = pre_cnn(3, 6, None, padding=1, mul=1.0, sub=0.0)
    imp = raw_import(model, (3, 6, 6), tmp_path / "r.onnx", scale="1")
    assert imp.input_report["first_quantizer"]["handling"] == "none"
    assert imp.first_quantizer is None
    assert imp.ir.layers[1].kind == "MatrixVector" and imp.ir.layers[1].in_dtype.name == "UINT8"
    assert_golden_is_qonnx(imp, every_q(imp))


def test_offset_into_a_padded_conv_is_refused(tmp_path):
    model = pre_cnn(3, 6, None, padding=1)  # 2 x - 1: q = 0 is -1, a padded 0 is no q
    with pytest.raises(GatemillError, match="zero padding"):
        raw_import(model, (3, 6, 6), tmp_path / "o.onnx")


def test_per_channel_normalization(tmp_path):
    model = pre_cnn(3, 6, q17_input(), mul=1.0, sub=0.0, mean=[0.5, 0.4, 0.3], std=[0.25, 0.5, 0.3])
    imp = raw_import(model, (3, 6, 6), tmp_path / "n.onnx")
    first = imp.ir.layers[0]
    assert first.kind == "Threshold"
    assert len({tuple(row) for row in first.thresholds}) == 3  # one table per channel
    assert_thresholds_exact(imp, 0, 0, 255)
    assert_golden_is_qonnx(imp, every_q(imp))


def test_signed_and_narrow_input_types(tmp_path):
    path = export(pre_mlp(10, q17_input(), mul=1.0, sub=0.0), (10,), tmp_path / "s.onnx")
    imp = import_qonnx(path, encoding=parse_encoding("int4", "1/8"))
    assert imp.ir.input.dtype.name == "INT4"
    x = np.random.default_rng(0).integers(-8, 8, size=(64, 10))
    assert_golden_is_qonnx(imp, x)


def test_vectors_hold_raw_integers(bnn_like, tmp_path, capsys):
    q = np.random.default_rng(0).integers(0, 256, size=(20, 1, 4, 4)).astype(np.uint8)
    np.savez(tmp_path / "q.npz", x=q, y=np.zeros(20, np.int64))
    report = run_import(
        bnn_like, tmp_path / "o", tmp_path / "q.npz", input_type="UINT8", input_scale="1/255"
    )
    assert report["input"]["raw"] and report["input"]["encoding"]["scale"] == "1/255"
    assert report["end_to_end"]["mismatches"] == 0
    with np.load(tmp_path / "o" / "golden.npz") as g:
        np.testing.assert_array_equal(g["inputs"], q.reshape(20, 16))
    saturation = report["input_saturation"]
    assert saturation["values"] == np.count_nonzero(q == 255) and saturation["elements"] == 320

    encoding = ["--input-type", "UINT8", "--input-scale", "1/255"]
    np.savez(tmp_path / "f.npz", x=q.astype(np.float32) / 255)
    code = main(["import", bnn_like, "-o", str(tmp_path / "f"), "--vectors", f"{tmp_path}/f.npz"])
    assert code == 2  # without the encoding the model is refused first
    capsys.readouterr()
    code = main(
        ["import", bnn_like, "-o", str(tmp_path / "f"), "--vectors", f"{tmp_path}/f.npz", *encoding]
    )
    text = capsys.readouterr().err
    assert code == 2 and "Traceback" not in text
    assert "raw integers q" in text and "look like the model's float inputs" in text

    np.savez(tmp_path / "big.npz", x=q.astype(np.int64) + 1)
    code = main(
        ["import", bnn_like, "-o", f"{tmp_path}/g", "--vectors", f"{tmp_path}/big.npz", *encoding]
    )
    text = capsys.readouterr().err
    assert code == 2 and "256" in text and "UINT8" in text


@pytest.mark.parametrize(
    "options, needle",
    [
        (["--input-type", "UINT8"], "go together"),
        (["--input-scale", "1/255"], "go together"),
        (["--input-type", "FLOAT32", "--input-scale", "1"], "UINTn or INTn"),
        (["--input-type", "UINT8", "--input-scale", "0"], "positive number"),
        (["--input-type", "UINT8", "--input-scale", "a/b"], "positive number"),
    ],
)
def test_bad_encoding_options(bnn_like, tmp_path, capsys, options, needle):
    code = main(["import", bnn_like, "--out", str(tmp_path / "o"), *options])
    text = capsys.readouterr().err
    assert code == 2 and needle in text and "Traceback" not in text


def test_saturating_float_vectors_are_counted(tmp_path, capsys):
    """Inputs x100 fed to a [-1, 127/128] quantizer: the clipped values are counted."""
    path = export(mlp([12, 8, 3], wbits=4, abits=4), (12,), tmp_path / "m.onnx")
    x = 100 * np.random.default_rng(0).normal(size=(30, 12)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    code = main(["import", path, "-o", str(tmp_path / "o"), "--vectors", str(tmp_path / "x.npz")])
    text = capsys.readouterr().out
    report = json.loads((tmp_path / "o" / "import.json").read_text())
    sat = report["input_saturation"]
    scale = report["input"]["scale"]
    levels = np.round(x.astype(np.float64) / scale)
    assert code == 0 and sat["elements"] == x.size and sat["range"] == [-128 * scale, 127 * scale]
    assert sat["values"] == np.count_nonzero((levels < -128) | (levels > 127)) > 0
    assert "input saturation" in text
    assert run_import(path, tmp_path / "n", None)["input_saturation"]["values"] == 0


@pytest.mark.parametrize("input_type, scale", [("BIPOLAR", "1/128"), ("BINARY", "1/64")])
def test_one_bit_input_types(tmp_path, input_type, scale):
    # x = q / 128 for q = -1, 1 are levels -1, 1 of the Q1.7 quantizer: lossless, no layer;
    # x = q / 64 for q = 0, 1 are levels 0, 2: lossless too (gain 2)
    path = export(pre_mlp(10, q17_input(), mul=1.0, sub=0.0), (10,), tmp_path / "s.onnx")
    imp = import_qonnx(path, encoding=parse_encoding(input_type, scale))
    assert imp.input_report["first_quantizer"]["handling"] in ("identity", "lossless")
    assert imp.ir.layers[0].kind == "MatrixVector"
    assert imp.ir.layers[0].in_dtype.name == input_type
    values = [-1, 1] if input_type == "BIPOLAR" else [0, 1]
    x = np.random.default_rng(0).choice(values, size=(64, 10))
    assert_golden_is_qonnx(imp, x)
