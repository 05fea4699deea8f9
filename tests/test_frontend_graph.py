"""Branching QONNX graphs (a residual Add, a Concat) and sets through the frontend: the golden
model equals QONNX on every probed tensor, and the built RTL matches the golden model with
ii = estimate."""

from __future__ import annotations

from fractions import Fraction

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
import torch.nn as nn
from brevitas_models import export
from graph_models import ConcatNet, DeepSet, ForkedAccumulator, Residual, pot_act

from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.errors import GatemillError
from gatemill.flow.frontend import import_qonnx
from gatemill.flow.frontend.compare import check_against_qonnx
from gatemill.flow.frontend.joins import coefficients
from gatemill.flow.zoo.quantizers import ConstIntActQuant

MODELS = {
    "residual": (lambda: Residual().eval(), (3, 5, 5)),
    "concat": (lambda: ConcatNet().eval(), (3, 4, 4)),
    "deepset_mean": (lambda: DeepSet().eval(), (5, 3)),
    "deepset_sum": (lambda: DeepSet(reduce="sum").eval(), (5, 3)),
}


def imported(name, tmp_path):
    make, shape = MODELS[name]
    path = export(make(), shape, tmp_path / f"{name}.onnx")
    return path, import_qonnx(path)


def floats(ir, n, seed):
    return np.random.default_rng(seed).normal(size=(n, *ir.input.model_shape)).astype(np.float32)


def check_golden(imp, n=300, seed=1):
    report, _, _ = check_against_qonnx(imp.ir, imp.model, imp.probes, floats(imp.ir, n, seed))
    assert report["mismatches"] == 0, report
    assert len(report["per_layer"]) == len(imp.probes)
    return report


def build(path, ir, tmp_path, samples=8):
    np.savez(tmp_path / "x.npz", x=floats(ir, samples, 2))
    cfg = BuildConfig(model=path, out=tmp_path / "b", vectors=tmp_path / "x.npz")
    reports = run_build(cfg)
    sim = reports["sim"]
    assert reports["import"]["golden_vs_qonnx"]["mismatches"] == 0
    assert sim["mismatches"] == 0
    assert sim["ii_cycles"] == sim["est_ii_cycles"]
    assert sim["latency_cycles"] == sim["est_latency_cycles"]
    return sim


def test_residual_block_is_a_fork_and_an_add(tmp_path):
    _, imp = imported("residual", tmp_path)
    ir = imp.ir
    add = next(layer for layer in ir.layers if layer.kind == "Add")
    stem = ir.inputs[add.name][1]
    assert len(ir.consumers(stem)) == 2  # the skip and the body's first window: a fork
    assert add.thresholds is not None  # the ReLU and quantizer after the sum
    check_golden(imp)


def test_concat_of_two_branches(tmp_path):
    _, imp = imported("concat", tmp_path)
    cat = next(layer for layer in imp.ir.layers if layer.kind == "Concat")
    assert cat.channels == (4, 2)
    assert len(imp.ir.consumers("")) == 2  # the input forks into both branches
    check_golden(imp)


@pytest.mark.parametrize("name", ["deepset_mean", "deepset_sum"])
def test_deep_set_reduces_its_elements_with_a_global_sum(name, tmp_path):
    _, imp = imported(name, tmp_path)
    kinds = [layer.kind for layer in imp.ir.layers]
    assert kinds == ["MatrixVector", "GlobalSum", "MatrixVector", "MatrixVector"]
    assert imp.ir.input.shape == (5, 3) and imp.ir.layers[0].spatial == (5,)
    check_golden(imp)


def test_an_accumulator_read_by_two_quantizers_is_built_twice(tmp_path):
    """A chain forks: each quantizer closes its own copy (two layers, one window)."""
    imp = import_qonnx(export(ForkedAccumulator().eval(), (3, 4, 4), tmp_path / "f.onnx"))
    ir = imp.ir
    kinds = [layer.kind for layer in ir.layers]
    assert kinds[:3] == ["SlidingWindow", "MatrixVector", "MatrixVector"]
    window = ir.layers[0].name
    assert [c.name for c, _ in ir.consumers(window)] == [ir.layers[1].name, ir.layers[2].name]
    assert {ir.layers[1].out_dtype.name, ir.layers[2].out_dtype.name} == {"UINT3", "INT4"}
    check_golden(imp)


class AccumulatorSkip(nn.Module):
    """A residual Add of a quantized skip and a convolution's accumulator that is not
    requantized (power-of-two weight scale, no BatchNorm): the convolution is built without
    thresholds and the Add takes its accumulator."""

    def __init__(self):
        super().__init__()
        from brevitas.quant import Int8WeightPerTensorFixedPoint

        torch.manual_seed(0)
        self.inp = pot_act(4, signed=True)
        self.conv = qnn.QuantConv2d(
            3, 3, 3, padding=1, bias=False, weight_quant=Int8WeightPerTensorFixedPoint,
            weight_bit_width=4,
        )  # fmt: skip
        self.out = pot_act(4)

    def forward(self, x):
        x = self.inp(x)
        return self.out(self.conv(x) + x)


def test_add_of_an_accumulator_and_a_quantized_skip(tmp_path):
    imp = import_qonnx(export(AccumulatorSkip().eval(), (3, 4, 4), tmp_path / "a.onnx"))
    kinds = [layer.kind for layer in imp.ir.layers]
    assert kinds == ["SlidingWindow", "MatrixVector", "Add"]
    assert imp.ir.layers[1].thresholds is None
    add = imp.ir.layers[2]
    assert imp.ir.inputs[add.name] == (imp.ir.layers[1].name, "")
    check_golden(imp)


@pytest.mark.parametrize(("name", "encoding"), [("deepset_mean", ("INT8", "1/16"))])
def test_set_input_with_a_stated_encoding(name, encoding, tmp_path):
    from gatemill.flow.frontend import parse_encoding

    make, shape = MODELS[name]
    path = export(make(), shape, tmp_path / f"{name}.onnx")
    imp = import_qonnx(path, encoding=parse_encoding(*encoding))
    assert imp.ir.input.raw and imp.ir.input.shape == shape
    q = np.random.default_rng(3).integers(-128, 128, size=(200, *shape))
    report, _, _ = check_against_qonnx(imp.ir, imp.model, imp.probes, q)
    assert report["mismatches"] == 0, report


def test_add_coefficients_from_scales():
    assert coefficients(Fraction(1, 8), Fraction(1, 4)) == (Fraction(1, 8), 1, 2)
    assert coefficients(Fraction(3, 16), Fraction(1, 8)) == (Fraction(1, 16), 3, 2)


def const_act(bits: int, max_val: float) -> nn.Module:
    """A signed activation quantizer of the constant scale ``max_val / 2**(bits - 1)``."""
    return qnn.QuantIdentity(
        act_quant=ConstIntActQuant, bit_width=bits, min_val=-max_val, max_val=max_val
    )


class TwoScales(nn.Module):
    """A residual Add of two branches of constant scales ``ma / 8`` and ``mb / 8``."""

    def __init__(self, ma: float, mb: float):
        super().__init__()
        torch.manual_seed(0)
        self.inp = pot_act(4, signed=True)
        self.a = const_act(4, ma)
        self.b = nn.Sequential(qnn.QuantLinear(4, 4, bias=False), const_act(4, mb))
        self.out = qnn.QuantIdentity(bit_width=4)

    def forward(self, x):
        x = self.inp(x)
        return self.out(self.a(x) + self.b(x))


def test_add_of_scales_in_an_integer_ratio(tmp_path):
    """Scales 1/8 and 3/8: coefficients 1 and 3, exact."""
    imp = import_qonnx(export(TwoScales(1.0, 3.0).eval(), (4,), tmp_path / "m.onnx"))
    add = next(layer for layer in imp.ir.layers if layer.kind == "Add")
    assert add.coefficients == (1, 3)
    check_golden(imp)


def test_add_of_unrelated_scales_is_refused_clearly(tmp_path):
    path = export(TwoScales(1.0, 0.37).eval(), (4,), tmp_path / "m.onnx")
    with pytest.raises(GatemillError, match="not in a ratio of small integers") as e:
        import_qonnx(path)
    assert "the same scale" in str(e.value)


@pytest.mark.parametrize("name", list(MODELS))
def test_builds_with_zero_mismatches(name, tmp_path):
    path, imp = imported(name, tmp_path)
    build(path, imp.ir, tmp_path)
