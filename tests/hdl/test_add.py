"""AddUnit against the golden model ``Add.execute`` and the kind's timing model
(:func:`harness.check_unit`): raw sums and thresholded ones, every fold, signed, unsigned and
BIPOLAR inputs, coefficients other than 1."""

from __future__ import annotations

import numpy as np
import pytest
from harness import check_unit, random_values
from qonnx.core.datatype import DataType

from gatemill.flow.ir import dtype_for_range
from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.kinds.add import Add, sum_range

D = DataType


def make_layer(rng, *, shape, dtypes, coefficients=(1, 1), pe=1, out_dtype=None, mixed=False):
    lo, hi = sum_range(dtypes, coefficients)
    acc = dtype_for_range(min(lo, 0), max(hi, 1))
    kw = {}
    if out_dtype is not None:
        c = shape[-1]
        levels = 1 if out_dtype == BIPOLAR else int(out_dtype.max()) - int(out_dtype.min())
        t = np.sort(rng.integers(lo - 1, hi + 2, (c, levels)), axis=1)
        d = rng.choice([-1, 1], c) if mixed else np.ones(c, np.int64)
        t[d < 0] = t[d < 0, ::-1]
        base = 0 if out_dtype == BIPOLAR else int(out_dtype.min())
        kw = dict(thresholds=t, direction=d, out_dtype=out_dtype, out_base=base)
    return Add(
        name="add", shape=shape, dtypes=dtypes, coefficients=coefficients, acc_dtype=acc, pe=pe,
        **kw,
    )  # fmt: skip


CASES = {
    "raw_same_scale": dict(shape=(6,), dtypes=(D["UINT4"], D["UINT4"]), pe=2),
    "raw_weighted": dict(shape=(4, 4, 3), dtypes=(D["INT3"], D["UINT2"]), coefficients=(2, -3),
                         pe=3),
    "thresholded": dict(shape=(3, 3, 4), dtypes=(D["UINT3"], D["UINT3"]), pe=2,
                        out_dtype=D["UINT3"]),
    "thresholded_mixed_pe1": dict(shape=(5,), dtypes=(D["INT4"], D["INT2"]), coefficients=(1, 4),
                                  out_dtype=D["INT2"], mixed=True),
    "bipolar": dict(shape=(8,), dtypes=(BIPOLAR, BIPOLAR), pe=4, out_dtype=BIPOLAR),
    "bipolar_and_int": dict(shape=(4,), dtypes=(BIPOLAR, D["INT3"]), pe=4),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_matches_golden(name):
    rng = np.random.default_rng(sorted(CASES).index(name))
    layer = make_layer(rng, **CASES[name])
    xs = [random_values(rng, dt, (5, *layer.shape)) for dt in layer.dtypes]
    check_unit(layer, *xs, seed=len(name))


def test_timing_model():
    rng = np.random.default_rng(3)
    layer = make_layer(rng, shape=(2, 6), dtypes=(D["UINT2"], D["UINT2"]), pe=3)
    assert layer.cycles() == 2 * 2 and layer.latency() == 1
    assert layer.beat_times([0, 5, 6, 7], [3, 3, 3, 9]) == [4, 6, 7, 10]
    act = make_layer(rng, shape=(6,), dtypes=(D["UINT2"], D["UINT2"]), out_dtype=D["UINT2"])
    assert act.latency() == 2


def test_validation():
    with pytest.raises(ValueError, match="sum range"):
        Add(name="a", shape=(2,), dtypes=(D["UINT4"], D["UINT4"]), coefficients=(1, 1),
            acc_dtype=D["UINT4"])  # fmt: skip
    with pytest.raises(ValueError, match="non-zero"):
        Add(name="a", shape=(2,), dtypes=(D["UINT4"], D["UINT4"]), coefficients=(0, 1),
            acc_dtype=D["UINT5"])  # fmt: skip
