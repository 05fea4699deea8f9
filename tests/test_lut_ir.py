"""LutLayer (flow/kinds/lut_layer.py): address convention, golden execution, validation, files."""

from __future__ import annotations

import numpy as np
import pytest
from qonnx.core.datatype import DataType

from gatemill.flow.ir import InputSpec, IRGraph, OutputSpec
from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.kinds import LutLayer, load_ir, save_ir
from gatemill.flow.kinds.lut_layer import neuron_inputs

D = DataType


def test_neuron_inputs_follow_the_address_bits():
    # input j at address bits [2j, 2j+2), two's complement codes
    x = neuron_inputs(D["INT2"], 2)
    assert x.shape == (16, 2)
    assert x[0b0111].tolist() == [-1, 1] and x[0b1000].tolist() == [0, -2]
    assert neuron_inputs(BIPOLAR, 3)[0b110].tolist() == [-1, 1, 1]


def layer(**kw):
    args = dict(
        name="lut",
        in_features=4,
        indices=[[2, 0], [1, 3]],
        tables=np.arange(32).reshape(2, 16) % 8,
        in_dtype=D["UINT2"],
        out_dtype=D["UINT3"],
    )
    return LutLayer(**{**args, **kw})


def test_execute_reads_the_table_at_the_packed_address():
    lut = layer()
    x = np.array([[3, 1, 2, 0], [0, 0, 0, 3]])
    # neuron 0: x2 | x0 << 2; neuron 1: x1 | x3 << 2 (entries are index % 8, offset 16 for n1)
    want = [[(2 | 3 << 2) % 8, (16 + (1 | 0 << 2)) % 8], [0, (16 + (0 | 3 << 2)) % 8]]
    assert lut.execute(x).tolist() == want
    assert lut.in_shape == (4,) and lut.out_shape == (2,) and lut.address_bits == 4


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"indices": [[0, 0], [1, 2]]}, "neuron 0 reads an input twice"),
        ({"indices": [[0, 4], [1, 2]]}, r"indices must lie in \[0, 4\)"),
        ({"tables": np.zeros((2, 8))}, r"tables must have shape \(2, 16\)"),
        ({"tables": np.full((2, 16), 8)}, r"value .*8.* is not a UINT3"),
        ({"in_features": 20, "indices": [list(range(9))], "tables": np.zeros((1, 1 << 18))},
         "18 address bits, more than 16"),
        ({"pipeline": -1}, "pipeline must be an int >= 0"),
        ({"pipeline": 2}, r"pipeline 2 cuts a table of 4 address bits .*at most 1"),
    ],
)  # fmt: skip
def test_rejects_bad_parameters(kw, message):
    with pytest.raises(ValueError, match=message):
        layer(**kw)


def wide(**kw):
    """Two neurons of 12-bit tables (six UINT2 inputs each)."""
    return layer(
        in_features=12,
        indices=[list(range(6)), list(range(6, 12))],
        tables=np.arange(2 << 12).reshape(2, 1 << 12) % 8,
        **kw,
    )


def test_files_round_trip(tmp_path):
    lut = wide(pipeline=2)
    graph = IRGraph(
        name="g",
        input=InputSpec(shape=(12,), dtype=D["UINT2"]),
        layers=(lut,),
        output=OutputSpec(shape=(2,), dtype=D["UINT3"], scale=[1.0, 1.0], bias=[0.0, 0.0]),
    )
    save_ir(graph, tmp_path)
    back = load_ir(tmp_path)
    assert back == graph
    assert back.layers[0].pipeline == 2 and back.layers[0].kind == "LutLayer"


def test_device_fold_cuts_tables_wider_than_a_lut_on_a_fast_ecp5():
    """On the ECP5 above 88 MHz a table of more than six address bits gets its register
    after the first LUT level, above 100 MHz one more every three upper bits; six bits or
    fewer, a slow clock, or an unmeasured family: none."""
    narrow = layer(
        in_features=8,
        indices=[[0, 1, 2, 3], [4, 5, 6, 7]],
        tables=np.arange(2 * 256).reshape(2, 256) % 8,
    )
    assert narrow.address_bits == 8 and layer().address_bits == 4
    assert narrow.device_fold(95.0, "ecp5") == narrow.device_fold(150.0, "ecp5") == {"pipeline": 1}
    assert wide().device_fold(95.0, "ecp5") == {"pipeline": 1}
    assert wide().device_fold(150.0, "ecp5") == {"pipeline": 2}
    assert wide(pipeline=2).mux_bits() == [3, 3]
    assert narrow.device_fold(25.0, "ecp5") == {"pipeline": 0}
    assert narrow.device_fold(150.0, "xc7") == {"pipeline": 0}
    assert layer().device_fold(150.0, "ecp5") == {"pipeline": 0}
