"""LutLayerUnit against the golden model ``LutLayer.execute`` and the kind's timing model
(:func:`harness.check_unit`: one sample per clock), uncut and cut by pipeline registers at
each place they can go; and every table checked exhaustively by ``check_tables``."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable
from harness import check_unit, random_values
from qonnx.core.datatype import DataType

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.kinds.lut_layer import LutLayer
from gatemill.hdl.lut_layer import LutLayerUnit, LutTables, check_tables

D = DataType


def make_layer(rng, *, in_features, neurons, fanin, in_dtype, out_dtype, pipeline=0):
    """Random distinct indices and random tables, with one constant neuron of each kind."""
    idx = np.array([rng.choice(in_features, fanin, replace=False) for _ in range(neurons)])
    tables = random_values(rng, out_dtype, (neurons, 1 << (fanin * in_dtype.bitwidth())))
    tables[0] = int(out_dtype.min()) if out_dtype != BIPOLAR else -1
    tables[-1] = int(out_dtype.max())
    return LutLayer(
        name="lut",
        in_features=in_features,
        indices=idx,
        tables=tables,
        in_dtype=in_dtype,
        out_dtype=out_dtype,
        pipeline=pipeline,
    )


CASES = {
    "uint2_fanin3": dict(in_features=16, neurons=8, fanin=3, in_dtype=D["UINT2"],
                         out_dtype=D["UINT2"]),
    "int3_to_int5": dict(in_features=10, neurons=5, fanin=2, in_dtype=D["INT3"],
                         out_dtype=D["INT5"]),
    "bipolar_trees": dict(in_features=12, neurons=6, fanin=6, in_dtype=BIPOLAR,
                          out_dtype=BIPOLAR),
    "wide_9_bits": dict(in_features=9, neurons=4, fanin=9, in_dtype=D["BINARY"],
                        out_dtype=D["UINT3"]),
    "single_input": dict(in_features=3, neurons=3, fanin=1, in_dtype=D["UINT2"],
                         out_dtype=BIPOLAR),
    "wide_12_bits": dict(in_features=16, neurons=5, fanin=6, in_dtype=D["UINT2"],
                         out_dtype=D["UINT2"]),
}  # fmt: skip
# the registers a table of more than six address bits can take: after its row, then
# between its multiplexer stages (9 bits: 3 upper bits, 12 bits: 6)
CUTS = {"wide_9_bits": [1, 2, 3], "wide_12_bits": [1, 2, 3, 6]}


@pytest.mark.parametrize(
    ("name", "pipeline"),
    [(n, 0) for n in CASES] + [(n, k) for n, cuts in CUTS.items() for k in cuts],
)
def test_matches_golden(name, pipeline):
    rng = np.random.default_rng(sorted(CASES).index(name))
    layer = make_layer(rng, **CASES[name], pipeline=pipeline)
    # The unit's registers load on its consumer's ready, a bubble or not (the enable of a
    # chain is the skid buffer's ready register, hdl/plan.py): so its beat times under
    # backpressure are the timing model's behind that skid buffer only, whose ready is low
    # only while a beat waits, not under the harness's random ready (which a latency of 2
    # matched by chance with seed 0). The outputs are still checked under random stalls.
    x = random_values(rng, layer.in_dtype, (12, layer.in_features))
    check_unit(layer, x, backpressure=False)


@pytest.mark.parametrize(
    ("name", "pipeline"),
    [("int3_to_int5", 0), ("wide_9_bits", 0)] + [(n, k) for n, cuts in CUTS.items() for k in cuts],
)
def test_every_table_entry(name, pipeline):
    rng = np.random.default_rng(7)
    layer = make_layer(rng, **CASES[name], pipeline=pipeline)
    r = check_tables(layer)
    assert r["mismatches"] == 0, r
    assert r["entries_checked"] == layer.neurons << layer.address_bits


def test_registered_upper_bits_are_kept_apart():
    """Each neuron's registered upper address bits carry KEEP_APART (one copy per neuron in
    place and route, gatemill.flow.synth.yosys.KEEP_APART_SCRIPT), its table rows do not."""
    from amaranth.back import rtlil

    from gatemill.hdl.common import KEEP_APART

    layer = make_layer(np.random.default_rng(7), **CASES["wide_12_bits"], pipeline=2)
    text = rtlil.convert(LutLayerUnit(layer=layer))
    kept = text.count(f"attribute \\{KEEP_APART} 1")
    # neurons with a table (not the two constant ones), two registers of upper bits each
    assert kept == 2 * (layer.neurons - 2)


def test_check_tables_finds_a_wrong_table(monkeypatch):
    """The exhaustive check is not vacuous: a unit built from other tables fails it."""
    rng = np.random.default_rng(3)
    layer = make_layer(rng, **CASES["uint2_fanin3"])
    tampered = layer.tables.copy()
    tampered[2, 5] = (tampered[2, 5] + 1) % 4
    other = LutLayer(**{**layer.params(), "tables": tampered})
    monkeypatch.setattr(LutLayer, "codes", lambda self: other.tables.astype(np.uint64))
    r = check_tables(layer)
    assert r["mismatches"] == 1 and r["bad_neurons"] == [2]


def test_timing_and_cost():
    rng = np.random.default_rng(5)
    layer = make_layer(rng, **CASES["wide_9_bits"])
    assert layer.cycles() == 1 and layer.latency() == 1
    assert layer.beat_times([3]) == [4]
    f = layer.features()
    # neurons 0 and 3 are constant; 2 live neurons x 3 output bits of 9-bit tables, each
    # 8 LUT6 leaves + 2 + 1 mux LUTs (an upper bound)
    assert f.lut == {"lut6": 6 * 11, "base": 1}
    assert f.ff == {"registers": 4 * 3 + 1}
    piped = LutLayer(**{**layer.params(), "pipeline": 1})
    assert piped.latency() == 2 and piped.beat_times([0]) == [2]
    assert piped.mux_bits() == [3]
    assert piped.features().ff["registers"] == 13 + 4 * 3 * 8 + 4 * 3 + 1
    # a register after each upper bit: the rows of 3, 2, then 1 bits still to select
    cut = LutLayer(**{**layer.params(), "pipeline": 3})
    assert cut.latency() == 4 and cut.mux_bits() == [1, 1, 1]
    assert cut.features().ff["registers"] == 13 + sum(
        4 * 3 * (1 << left) + 4 * left + 1 for left in (3, 2, 1)
    )
    assert LutLayer(**{**layer.params(), "pipeline": 2}).mux_bits() == [2, 1]


def test_cost_of_tables_that_fit_one_lut():
    """Tables of at most 6 address bits: one LUT per output bit that is neither constant nor
    a copy of one address bit (a wire)."""
    rng = np.random.default_rng(6)
    layer = make_layer(rng, **CASES["uint2_fanin3"])
    # 8 neurons x 2 bits, neurons 0 and 7 constant
    assert layer.features().lut == {"table": 12, "base": 1}
    address = np.arange(64)
    tables = layer.tables.copy()
    tables[1] = (address >> 4) & 1 | ((address >> 1) & 1) << 1  # two wires
    tables[2] = ((address >> 3) & 1) ^ 1  # an inverter: a LUT
    copies = LutLayer(**{**layer.params(), "tables": tables})
    assert copies.features().lut == {"table": 12 - 2 - 1, "base": 1}


def test_rejects_bad_arguments():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="must be a LutLayer layer, not 'x'"):
            LutLayerUnit(layer="x")
        with pytest.raises(TypeError, match="must be a LutLayer layer, not 3"):
            LutTables(layer=3)
        gc.collect()
