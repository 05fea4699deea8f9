"""Broken and unsupported models: exit code 2, a message naming the node, no traceback."""

from __future__ import annotations

import subprocess
import sys

import brevitas.nn as qnn
import numpy as np
import onnx
import pytest
import torch.nn as nn
from brevitas_models import export, mlp
from onnx import TensorProto, helper

from gatemill.flow.cli import main


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return export(mlp([12, 8, 3], wbits=4, abits=4), (12,), tmp_path_factory.mktemp("g") / "g.onnx")


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def assert_refused(argv, capsys, *needles):
    code, text = run(argv, capsys)
    assert code == 2, text
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text, text
    return text


def test_missing_file(tmp_path, capsys):
    assert_refused(
        ["import", str(tmp_path / "nope.onnx"), "--out", str(tmp_path / "o")],
        capsys,
        "nope.onnx",
        "does not exist",
    )


def test_truncated_file(good, tmp_path, capsys):
    with open(good, "rb") as f:
        data = f.read()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(data[: len(data) // 2])
    assert_refused(["import", str(bad), "--out", str(tmp_path / "o")], capsys, "truncated.onnx")


def test_not_onnx(tmp_path, capsys):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a model\n")
    assert_refused(["import", str(bad), "--out", str(tmp_path / "o")], capsys, "notes.onnx")


def test_every_unsupported_node_listed_at_once(good, tmp_path, capsys):
    model = onnx.load(good)
    g = model.graph
    out = g.output[0].name
    hidden = 5
    g.initializer.extend(
        [
            helper.make_tensor("axes0", TensorProto.INT64, [1], [0]),
            helper.make_tensor("lstm_W", TensorProto.FLOAT, [1, 4 * hidden, 3], [0.1] * (60)),
            helper.make_tensor("lstm_R", TensorProto.FLOAT, [1, 4 * hidden, hidden], [0.1] * 100),
        ]
    )
    g.node.extend(
        [
            helper.make_node("Softmax", [out], ["sm"], name="head/softmax", axis=1),
            helper.make_node("Unsqueeze", ["sm", "axes0"], ["seq"], name="to_seq"),
            helper.make_node(
                "LSTM", ["seq", "lstm_W", "lstm_R"], ["", "h"], name="rnn/lstm", hidden_size=hidden
            ),
        ]
    )
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("h", TensorProto.FLOAT, None))
    path = tmp_path / "rnn.onnx"
    onnx.save(model, path)
    text = assert_refused(
        ["import", str(path), "--out", str(tmp_path / "o")],
        capsys,
        "'head/softmax' (Softmax)",
        "'rnn/lstm' (LSTM)",
        "'to_seq' (Unsqueeze)",
        "3 unsupported nodes",
    )
    assert "argmax" in text  # the softmax hint says what to do


def test_float_weights_without_quantizer(tmp_path, capsys):
    model = nn.Sequential(qnn.QuantIdentity(bit_width=8), nn.Linear(6, 4)).eval()
    path = export(model, (6,), tmp_path / "float.onnx")
    assert_refused(
        ["import", path, "--out", str(tmp_path / "o")],
        capsys,
        "float weights without a quantizer",
        "QuantLinear",
    )


def test_nine_bit_activations(tmp_path, capsys):
    model = nn.Sequential(
        qnn.QuantIdentity(bit_width=8),
        qnn.QuantLinear(6, 5, bias=True),
        qnn.QuantReLU(bit_width=9),
        qnn.QuantLinear(5, 2, bias=True),
    ).eval()
    path = export(model, (6,), tmp_path / "a9.onnx")
    assert_refused(
        ["import", path, "--out", str(tmp_path / "o")],
        capsys,
        "activations of 9 bits",
        "bit_width <= 8",
    )


def test_unquantized_input(tmp_path, capsys):
    model = nn.Sequential(qnn.QuantLinear(6, 2, bias=True, input_quant=None)).eval()
    path = export(model, (6,), tmp_path / "noinq.onnx")
    assert_refused(["import", path, "--out", str(tmp_path / "o")], capsys, "QuantIdentity")


def test_refuses_foreign_output_folder(good, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    assert_refused(["import", good, "--out", str(mine)], capsys, "not made by gatemill")
    assert (mine / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]


def test_vectors_of_wrong_shape(good, tmp_path, capsys):
    v = tmp_path / "v.npz"
    np.savez(v, x=np.zeros((4, 13), np.float32))
    assert_refused(
        ["import", good, "--out", str(tmp_path / "o"), "--vectors", str(v)],
        capsys,
        "v.npz",
        "(N, 12)",
    )


def test_pickled_vectors_are_not_loaded(good, tmp_path, capsys):
    v = tmp_path / "evil.npz"
    np.savez(v, x=np.array([{"a": 1}], dtype=object))
    assert_refused(
        ["import", good, "--out", str(tmp_path / "o"), "--vectors", str(v)], capsys, "evil.npz"
    )


def test_hostile_node_names_are_sanitized(good, tmp_path, capsys):
    model = onnx.load(good)
    for i, node in enumerate(model.graph.node):
        node.name = f'x"; rm -rf $HOME [exec {i}] `id` \\\n'
    path = tmp_path / "hostile.onnx"
    onnx.save(model, path)
    code, text = run(["import", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, text
    ir = (tmp_path / "o" / "import" / "ir.json").read_text()
    from gatemill.flow.kinds import load_ir

    for layer in load_ir(tmp_path / "o" / "import").layers:
        assert layer.name.isidentifier() and layer.name.isascii()
        assert not set(layer.name) & set("\"'$;[]`\\ \n")
    assert "rm" in ir  # the name survives in a harmless form


def test_exit_code_and_no_traceback_from_the_real_command(tmp_path):
    exe = [sys.executable, "-m", "gatemill.flow.cli"]
    r = subprocess.run(
        [*exe, "import", str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "missing.onnx" in r.stderr


def test_preprocessing_without_encoding_names_the_option(tmp_path, capsys):
    """bnn_pynq's front (view, 2 x - 1) before the first quantizer: the options are named."""
    from brevitas_models import pre_mlp, q17_input

    path = export(pre_mlp(16, q17_input(), flatten=True), (1, 4, 4), tmp_path / "p.onnx")
    text = assert_refused(
        ["import", path, "--out", str(tmp_path / "o")],
        capsys,
        "node '/Reshape' (Reshape)",
        "affine pre-processing (Reshape, Mul, Sub) before the first quantizer",
        "--input-type UINT8 --input-scale 1/255",
    )
    assert "1 unsupported node" in text


class _DeepSet(nn.Module):
    """Per-element layers on a set (N, S, F), then the mean over the elements."""

    def __init__(self):
        super().__init__()
        self.q = qnn.QuantIdentity(bit_width=8)
        self.phi = qnn.QuantLinear(4, 8, bias=True, weight_bit_width=4)
        self.act = qnn.QuantReLU(bit_width=4)
        self.rho = qnn.QuantLinear(8, 3, bias=True, weight_bit_width=4)

    def forward(self, x):
        return self.rho(self.act(self.phi(self.q(x))).mean(dim=1))


class _Residual(nn.Module):
    """A raw float input into a conv, and a residual block (fork, Add of two branches)."""

    def __init__(self):
        super().__init__()
        self.conv0 = qnn.QuantConv2d(3, 4, 3, padding=1, weight_bit_width=4)
        self.act0 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(4, 4, 3, padding=1, weight_bit_width=4)
        self.act1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.out = qnn.QuantReLU(bit_width=4)
        self.fc = qnn.QuantLinear(4 * 6 * 6, 2, bias=True)

    def forward(self, x):
        h = self.act0(self.conv0(x))
        h = self.out(h + self.act1(self.conv1(h)))
        return self.fc(h.flatten(1))


def test_deep_set_imports_with_its_3d_input_and_mean(tmp_path):
    """A set (N, elements, features) and a mean over the elements: no longer refused; the
    mean (not requantized) is a GlobalSum whose sums the last layer takes."""
    from gatemill.flow.frontend import import_qonnx
    from gatemill.flow.frontend.compare import check_against_qonnx

    imp = import_qonnx(export(_DeepSet().eval(), (5, 4), tmp_path / "set.onnx"))
    assert [layer.kind for layer in imp.ir.layers] == ["MatrixVector", "GlobalSum", "MatrixVector"]
    x = np.random.default_rng(0).normal(size=(100, 5, 4)).astype(np.float32)
    report, _, _ = check_against_qonnx(imp.ir, imp.model, imp.probes, x)
    assert report["mismatches"] == 0, report


def test_residual_block_lists_only_its_input(tmp_path, capsys):
    """The fork and the Add are supported: the float input is the one thing to change."""
    path = export(_Residual().eval(), (3, 6, 6), tmp_path / "res.onnx")
    text = assert_refused(
        ["import", path, "--out", str(tmp_path / "o")],
        capsys,
        "1 unsupported node:",
        "reaches it as floats, without a quantizer",
        "--input-type UINT8 --input-scale 1 ",
    )
    assert "(Add)" not in text and "a branch" not in text
    code, text = run(
        ["import", path, "-o", str(tmp_path / "o2"), "--input-type", "UINT8", "--input-scale", "1"],
        capsys,
    )
    assert code == 0, text
