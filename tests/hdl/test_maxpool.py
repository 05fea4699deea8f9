"""MaxPoolUnit against the golden model ``MaxPool.execute``: bit-exact under random idle input
and backpressure, and measured II / latency / storage equal to the estimates."""

from __future__ import annotations

import dataclasses
import gc
import re
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from qonnx.core.datatype import DataType
from streams import from_beats, run_stream, to_beats

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.ir.layers import MaxPool
from gatemill.hdl.maxpool import MaxPoolUnit, cycles_per_sample, latency_cycles, resources

D = DataType


def random_input(rng, dtype, shape):
    if dtype == BIPOLAR:
        return rng.choice([-1, 1], size=shape)
    return rng.integers(int(dtype.min()), int(dtype.max()) + 1, size=shape)


def check(layer, x, seed=0):
    """Random idle/stall run bit-exact with ``layer.execute``; a full-rate run with measured II
    (between consecutive samples' first output beats) and latency equal to the estimates."""
    expected = layer.execute(x)
    beats = to_beats(x, layer.dtype, layer.pe)
    n_out = expected.size // layer.pe
    out, _ = run_stream(MaxPoolUnit(layer=layer), beats, n_out, seed=seed, idle=0.3, stall=0.3)
    got = from_beats(out, layer.dtype, layer.pe, layer.out_shape)
    assert np.array_equal(got, expected), f"{np.count_nonzero(got != expected)} mismatches"

    out, stats = run_stream(MaxPoolUnit(layer=layer), beats, n_out)
    got = from_beats(out, layer.dtype, layer.pe, layer.out_shape)
    assert np.array_equal(got, expected), f"{np.count_nonzero(got != expected)} mismatches"
    per_sample = n_out // len(x)
    firsts = stats["out_cycles"][::per_sample]
    assert np.diff(firsts).tolist() == [cycles_per_sample(layer)] * (len(x) - 1)
    assert stats["first_out"] - stats["first_in"] == latency_cycles(layer)


CASES = {
    # name: MaxPool arguments (name aside)
    "2x2s2_pe1": dict(ifm=(4, 6, 3), kernel=(2, 2), stride=(2, 2), dtype=D["INT4"]),
    "2x2s2_pe_c": dict(ifm=(4, 4, 4), kernel=(2, 2), stride=(2, 2), dtype=D["UINT3"], pe=4),
    "3x3s2_overlap": dict(ifm=(7, 5, 2), kernel=(3, 3), stride=(2, 2), dtype=D["INT4"], pe=1),
    "3x3s1": dict(ifm=(5, 4, 2), kernel=(3, 3), stride=(1, 1), dtype=D["INT3"], pe=2),
    "whole_input": dict(ifm=(3, 4, 3), kernel=(3, 4), stride=(1, 1), dtype=D["INT8"]),
    "odd_leftover": dict(ifm=(5, 5, 3), kernel=(2, 2), stride=(2, 2), dtype=D["UINT2"], pe=3),
    "2x3_h_ne_w": dict(ifm=(4, 7, 2), kernel=(2, 3), stride=(1, 2), dtype=D["INT2"], pe=2),
    "stride_over_kernel": dict(ifm=(6, 6, 2), kernel=(2, 1), stride=(3, 2), dtype=D["INT4"]),
    "bipolar_or": dict(ifm=(4, 4, 3), kernel=(2, 2), stride=(2, 2), dtype=BIPOLAR),
    "bipolar_3x3s2": dict(ifm=(5, 5, 4), kernel=(3, 3), stride=(2, 2), dtype=BIPOLAR, pe=2),
    "binary": dict(ifm=(3, 3, 2), kernel=(2, 2), stride=(1, 1), dtype=D["BINARY"], pe=2),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_matches_golden(name):
    rng = np.random.default_rng(sorted(CASES).index(name))
    layer = MaxPool(name="pool", **CASES[name])
    check(layer, random_input(rng, layer.dtype, (3, *layer.in_shape)), seed=len(name))


def test_extremes():
    """All-minimum and all-maximum windows (sign handling at the range ends)."""
    layer = MaxPool(name="pool", ifm=(4, 4, 2), kernel=(3, 3), stride=(1, 1), dtype=D["INT4"])
    x = np.full((2, *layer.in_shape), -8)
    x[1, 2, 2, 1] = 7
    check(layer, x)


def test_refolding_keeps_results():
    """Every PE of one layer gives the same maxima (``dataclasses.replace`` refolds)."""
    rng = np.random.default_rng(30)
    layer = MaxPool(name="pool", ifm=(5, 5, 6), kernel=(3, 3), stride=(2, 2), dtype=D["INT3"])
    x = random_input(rng, layer.dtype, (2, *layer.in_shape))
    for pe in (2, 3, 6):
        check(dataclasses.replace(layer, pe=pe), x, seed=pe)


def test_estimates():
    """The documented formulas on hand-worked layers."""
    layer = MaxPool(name="pool", ifm=(8, 8, 4), kernel=(3, 3), stride=(2, 2), dtype=D["INT4"],
                    pe=2)  # fmt: skip
    assert cycles_per_sample(layer) == 8 * 8 * 2
    # the first window ends at input pixel (2, 2)
    assert latency_cycles(layer) == (2 * 8 + 2) * 2 + 1
    # 2 row partials of C, 2 column partials of OW * C (OW = 3); tables by x and by y
    assert resources(layer) == {
        "buffer_bits": (2 + 2 * 3) * 4 * 4,
        "table_bits": 8 * (3 * 2 + 1 + 2) + 8 * (3 * 2 + 1),
        "comparators": (2 + 2) * 2,
    }


@pytest.mark.parametrize("name", ["3x3s2_overlap", "2x2s2_pe_c", "whole_input"])
def test_storage_is_inferred(name):
    """Partials and tables reach Verilog as memories of the estimated total size."""
    layer = MaxPool(name="pool", **CASES[name])
    text = verilog.convert(MaxPoolUnit(layer=layer), name="pool")
    arrays = {
        name: (int(msb) + 1) * (int(last) + 1)
        for msb, name, last in re.findall(r"reg \[(\d+):0\] (\w+) \[(\d+):0\];", text)
    }
    tables = ("x_table", "y_table")
    r = resources(layer)
    assert sum(bits for name, bits in arrays.items() if name not in tables) == r["buffer_bits"]
    assert sum(arrays.get(name, 0) for name in tables) == r["table_bits"]


def test_rejects_non_layer():
    with warnings.catch_warnings():
        # the half-built component is never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="must be a MaxPool, not 3"):
            MaxPoolUnit(layer=3)
        gc.collect()
