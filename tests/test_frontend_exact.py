"""Exact threshold computation (flow/frontend/exact.py), brute force over whole ranges."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from gatemill.flow.frontend import exact
from gatemill.flow.frontend.exact import Affine, Clamp, IntQuantizer
from gatemill.flow.ir import dtype_for_range
from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.kinds.thresholds import apply_thresholds


@pytest.mark.parametrize(
    ("v", "mode", "want"),
    [
        (Fraction(5, 2), "ROUND", 2),
        (Fraction(7, 2), "ROUND", 4),
        (Fraction(-5, 2), "ROUND", -2),
        (Fraction(5, 2), "HALF_UP", 3),
        (Fraction(-5, 2), "HALF_UP", -3),
        (Fraction(5, 2), "HALF_DOWN", 2),
        (Fraction(-5, 2), "HALF_DOWN", -2),
        (Fraction(-7, 3), "FLOOR", -3),
        (Fraction(-7, 3), "CEIL", -2),
        (Fraction(-7, 3), "UP", -3),
        (Fraction(-7, 3), "DOWN", -2),
    ],
)
def test_round_exact_matches_numpy_semantics(v, mode, want):
    assert exact.round_exact(v, mode) == want


def test_sqrt_fraction_exact_on_squares_and_close_otherwise():
    assert exact.sqrt_fraction(Fraction(9, 16)) == Fraction(3, 4)
    r = exact.sqrt_fraction(Fraction(2))
    assert abs(r * r - 2) < Fraction(1, 2**500)


def brute_force(ops, qz, lo, hi, channels):
    levels_all = [
        [qz.level(exact.evaluate(ops, Fraction(a), c), c) for a in range(lo, hi + 1)]
        for c in range(channels)
    ]
    qmin = min(min(r) for r in levels_all)
    qmax = max(max(r) for r in levels_all)
    qmax = max(qmax, qmin + 1)
    levels = [1] if qz.bipolar else range(qmin + 1, qmax + 1)
    rows, dirs = [], []
    for c in range(channels):
        d, ts = exact.thresholds_for_channel(
            lambda a, c=c: qz.level(exact.evaluate(ops, Fraction(a), c), c), lo, hi, levels
        )
        rows.append(ts)
        dirs.append(d)
    out_dtype = BIPOLAR if qz.bipolar else dtype_for_range(qmin, qmax)
    acc = np.repeat(np.arange(lo, hi + 1)[:, None], channels, axis=1)
    got = apply_thresholds(acc, np.array(rows), np.array(dirs), out_dtype, qmin)
    np.testing.assert_array_equal(got, np.array(levels_all).T)


@pytest.mark.parametrize("mode", ["ROUND", "HALF_UP", "FLOOR", "CEIL", "DOWN"])
@pytest.mark.parametrize("signed", [False, True])
def test_thresholds_reproduce_every_accumulator_value(mode, signed):
    rng = np.random.default_rng(7)
    channels = 6
    # slopes of both signs and a zero slope; offsets on exact half-levels make ties
    a = [Fraction(int(v), 8) for v in rng.integers(-12, 13, channels)]
    a[2] = Fraction(0)
    b = [Fraction(int(v), 16) for v in rng.integers(-40, 41, channels)]
    ops = [
        Affine(a, b),
        Clamp(Fraction(0), None) if not signed else Clamp(Fraction(-3), Fraction(2)),
    ]
    qz = IntQuantizer([Fraction(1, 4)] * channels, 3, signed, False, mode)
    brute_force(ops, qz, -40, 37, channels)


def test_bipolar_output_thresholds():
    ops = [Affine([Fraction(1, 3), Fraction(-2, 5)], [Fraction(-1), Fraction(1, 7)])]
    qz = exact.BipolarQuantizer([Fraction(1)] * 2)
    brute_force(ops, qz, -20, 20, 2)


def test_narrow_signed_levels():
    qz = IntQuantizer([Fraction(1)], 4, True, True, "ROUND")
    assert (qz.qmin, qz.qmax) == (-7, 7)
    assert qz.level(Fraction(-100), 0) == -7
