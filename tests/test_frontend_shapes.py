"""Golden model vs QONNX on Brevitas models of many shapes (import, flow/frontend)."""

from __future__ import annotations

import numpy as np
import pytest
from brevitas_models import cnn, export, mlp

from gatemill.flow.frontend import import_qonnx
from gatemill.flow.frontend.compare import check_against_qonnx
from gatemill.flow.kinds.thresholds import apply_thresholds
from gatemill.flow.vectors import random_vectors

N = 64

CASES = {
    # name: (builder, input shape)
    "mlp_odd_w3a3_perchannel": (
        lambda: mlp([37, 23, 11, 5], wbits=3, abits=3, per_channel=True),
        (37,),
    ),
    "mlp_w1a1_xnor": (lambda: mlp([64, 48, 32, 10], wbits=1, abits=1), (64,)),
    "mlp_w2a8_nobias": (lambda: mlp([20, 16, 7], wbits=2, abits=8, bias=False), (20,)),
    "mlp_w8a2_hardtanh": (lambda: mlp([16, 12, 6], wbits=8, abits=2, act_kind="hardtanh"), (16,)),
    "mlp_bipolar_input": (lambda: mlp([30, 17, 4], wbits=1, abits=1, in_bits=1), (30,)),
    "mlp_signed_requant": (
        lambda: mlp([24, 13, 9, 3], wbits=5, abits=6, act_kind="identity"),
        (24,),
    ),
    "cnn_stride2_pad1": (
        lambda: cnn(3, 9, [(5, 3, 2, 1), (7, 3, 1, 1)], [6], wbits=4, abits=2, per_channel=True),
        (3, 9, 9),
    ),
    "cnn_kernel_is_input": (
        lambda: cnn(2, 5, [(6, 5, 1, 0)], [4], pool=False, wbits=3, abits=3),
        (2, 5, 5),
    ),
    "cnn_w1a1_nobias": (
        lambda: cnn(
            1, 8, [(8, 3, 1, 0), (16, 3, 1, 0)], [10], wbits=1, abits=1, bias=False, pool=False
        ),
        (1, 8, 8),
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def imported(request, tmp_path_factory):
    build, shape = CASES[request.param]
    path = export(build(), shape, tmp_path_factory.mktemp(request.param) / "m.onnx")
    return request.param, import_qonnx(path)


def check(imp, n=N, seed=0):
    x = random_vectors(imp.ir, n, seed)
    report, values, _ = check_against_qonnx(imp.ir, imp.model, imp.probes, x)
    golden = imp.ir.predict(x)
    ref = values[imp.probes[-1].tensor].reshape(golden.shape)
    return report, golden, ref


def test_golden_matches_qonnx(imported):
    # these seeded models happen to have no activation within a float32 ulp of a rounding
    # boundary, so golden and QONNX agree everywhere (trained models may differ by one level)
    _, imp = imported
    report, golden, ref = check(imp)
    assert report["elements"] > 0
    assert report["mismatches"] == 0, report
    top2 = np.sort(golden, axis=-1)[..., -2:]
    unique = top2[..., 1] > top2[..., 0]  # integer ties make the float argmax arbitrary
    np.testing.assert_array_equal(golden.argmax(-1)[unique], ref.argmax(-1)[unique])


def test_thresholds_reproduce_the_exact_function(imported):
    """Every threshold checked against exact arithmetic at and around its boundary."""
    _, imp = imported
    rng = np.random.default_rng(0)
    assert imp.chains
    for index, chain in imp.chains.items():
        layer = imp.ir.layers[index]
        for c in range(layer.thresholds.shape[0]):
            lo, hi = int(chain.lo[c]), int(chain.hi[c])
            t = layer.thresholds[c]
            points = {lo, hi, *rng.integers(lo, hi + 1, 50).tolist()}
            points |= {int(v) + d for v in t for d in (-1, 0, 1) if lo <= v + d <= hi}
            acc = np.array(sorted(points))
            one = np.zeros((len(acc), layer.thresholds.shape[0]), np.int64)
            one[:, c] = acc
            got = apply_thresholds(
                one, layer.thresholds, layer.direction, layer.out_dtype, layer.out_base
            )[:, c]
            want = [chain.level(int(a), c) for a in acc]
            np.testing.assert_array_equal(got, want, err_msg=f"{layer.name} channel {c}")


def test_layer_kinds(imported):
    name, imp = imported
    kinds = [layer.kind for layer in imp.ir.layers]
    assert kinds[-1] == "MatrixVector" and imp.ir.layers[-1].thresholds is None
    if name.startswith("cnn"):
        assert kinds[0] == "SlidingWindow" and "Flatten" in kinds
    if "w1a1" in name:
        assert any(getattr(layer, "binary", False) for layer in imp.ir.layers)
    if "requant" in name or "signed" in name:
        assert all(layer.kind == "MatrixVector" for layer in imp.ir.layers)


def test_power_of_two_without_batchnorm_is_exact(tmp_path):
    model = mlp([40, 24, 16, 10], wbits=4, abits=4, bn=False, pot=True, seed=3)
    imp = import_qonnx(export(model, (40,), tmp_path / "pot.onnx"))
    report, golden, ref = check(imp, n=256, seed=1)
    assert report["mismatches"] == 0, report
    # power-of-two scales make the float32 path exact: the outputs agree to the bit
    np.testing.assert_array_equal(golden, ref)


def test_accumulator_is_minimal(imported):
    _, imp = imported
    for layer in imp.ir.layers:
        if layer.kind != "MatrixVector":
            continue
        lo, hi = layer.acc_range()
        dt = layer.acc_dtype
        assert dt.min() <= lo.min() and hi.max() <= dt.max()
        narrower = dt.bitwidth() - 1
        if narrower >= 2:
            fits = (
                (lo.min() >= -(2 ** (narrower - 1)) and hi.max() < 2 ** (narrower - 1))
                if dt.signed()
                else hi.max() < 2**narrower
            )
            assert not fits, f"{layer.name}: {dt.name} is wider than needed"
