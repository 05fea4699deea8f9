"""MaxPoolUnit against the golden model ``MaxPool.execute`` and the kind's timing model
(:func:`harness.check_unit`), and its storage against the cost model's memories."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from harness import check_unit, random_values, verilog_arrays
from qonnx.core.datatype import DataType

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.kinds.maxpool import MaxPool
from gatemill.hdl.maxpool import MaxPoolUnit

D = DataType


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
    # a column partial updated on consecutive beats (W * CF = 1), and two beats apart
    "one_column": dict(ifm=(6, 1, 2), kernel=(3, 1), stride=(1, 1), dtype=D["INT4"], pe=2),
    "one_column_cf2": dict(ifm=(5, 1, 4), kernel=(2, 1), stride=(1, 1), dtype=D["INT3"], pe=2),
    # a row partial updated on consecutive beats (CF = 1), overlapping windows
    "one_fold_3x3s1": dict(ifm=(5, 6, 3), kernel=(3, 3), stride=(1, 1), dtype=D["INT4"], pe=3),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_matches_golden(name):
    rng = np.random.default_rng(sorted(CASES).index(name))
    layer = MaxPool(name="pool", **CASES[name])
    check_unit(layer, random_values(rng, layer.dtype, (3, *layer.in_shape)), seed=len(name))


def test_extremes():
    """All-minimum and all-maximum windows (sign handling at the range ends)."""
    layer = MaxPool(name="pool", ifm=(4, 4, 2), kernel=(3, 3), stride=(1, 1), dtype=D["INT4"])
    x = np.full((2, *layer.in_shape), -8)
    x[1, 2, 2, 1] = 7
    check_unit(layer, x)


def test_refolding_keeps_results():
    """Every PE of one layer gives the same maxima."""
    rng = np.random.default_rng(30)
    layer = MaxPool(name="pool", ifm=(5, 5, 6), kernel=(3, 3), stride=(2, 2), dtype=D["INT3"])
    x = random_values(rng, layer.dtype, (2, *layer.in_shape))
    for pe in (2, 3, 6):
        check_unit(layer.refold(pe=pe), x, seed=pe)


def test_timing_model():
    """The documented formulas on a hand-worked layer."""
    layer = MaxPool(name="pool", ifm=(8, 8, 4), kernel=(3, 3), stride=(2, 2), dtype=D["INT4"],
                    pe=2)  # fmt: skip
    assert layer.cycles() == 8 * 8 * 2
    # the first window ends at input pixel (2, 2); the input register, the row maximum, the
    # column maximum, the output register
    assert layer.latency() == (2 * 8 + 2) * 2 + 4
    # 2 row partials of C, 2 column partials of OW * C (OW = 3)
    assert layer.banks == (2, 2)


@pytest.mark.parametrize("name", ["3x3s2_overlap", "2x2s2_pe_c", "whole_input"])
def test_storage_is_what_the_cost_model_counts(name):
    """Partials and tables reach Verilog as the memories the cost model maps."""
    layer = MaxPool(name="pool", **CASES[name])
    arrays = verilog_arrays(verilog.convert(MaxPoolUnit(layer=layer), name="pool"))
    mems = layer.features().memories
    nh, nv = layer.banks
    cf = layer.ifm[2] // layer.pe
    word = layer.pe * layer.dtype.bitwidth()
    banks = {f"row{j}": (word, cf) for j in range(nh)}
    banks.update({f"col{j}": (word, layer.out_shape[1] * cf) for j in range(nv)})
    assert {n: a for n, a in arrays.items() if n not in ("x_table", "y_table")} == banks
    assert set(mems) == set(banks) | {"x_table", "y_table"}


def test_rejects_non_layer():
    with warnings.catch_warnings():
        # the half-built component is never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="must be a MaxPool layer, not 3"):
            MaxPoolUnit(layer=3)
        gc.collect()
