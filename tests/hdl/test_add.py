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


def test_take_times_match_the_unit():
    """Each input beat is taken when the unit's model says: by its skid buffer as it comes,
    at most one ahead of the other input."""
    from amaranth.sim import Simulator

    rng = np.random.default_rng(4)
    layer = make_layer(rng, shape=(6,), dtypes=(D["UINT2"], D["UINT2"]), pe=1)
    avail = ([0, 1, 2, 3, 4, 5], [5, 5, 9, 9, 9, 12])
    dut, taken = layer.unit(), ([], [])

    def source(k):
        port = getattr(dut, f"i{k}")

        async def run(ctx):
            cycle = 0
            for a in avail[k]:
                while cycle < a:
                    ctx.set(port.valid, 0)
                    await ctx.tick()
                    cycle += 1
                ctx.set(port.valid, 1)
                while True:
                    _, _, ready = await ctx.tick().sample(port.ready)
                    cycle += 1
                    if ready:
                        taken[k].append(cycle - 1)
                        break
            ctx.set(port.valid, 0)

        return run

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        await ctx.tick().repeat(40)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for k in range(2):
        sim.add_testbench(source(k), background=True)
    sim.add_testbench(sink)
    sim.run()
    assert list(taken) == layer.take_times(*avail)
    assert layer.take_times(*avail) == [[0, 6, 7, 10, 11, 12], [5, 6, 9, 10, 11, 12]]
