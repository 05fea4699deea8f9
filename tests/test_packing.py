"""Sample packing for the AXI4-Stream ports (flow/packing.py), shared by host and testbench."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest
from qonnx.core.datatype import DataType

from gatemill.flow import packing
from gatemill.flow.packing import pack, port_description, unpack


@pytest.mark.parametrize(
    ("dtype", "lanes", "shape"),
    [
        ("INT4", 3, (6,)),
        ("BIPOLAR", 5, (2, 5)),
        ("UINT8", 1, (4,)),
        ("INT11", 10, (10,)),
        ("UINT3", 7, (7,)),
        ("INT2", 9, (3, 3, 2)),
        ("BINARY", 12, (12,)),
    ],
)
def test_round_trip(dtype, lanes, shape):
    dt = DataType[dtype]
    port = port_description(shape, dt, lanes)
    rng = np.random.default_rng(0)
    x = rng.integers(int(dt.min()), int(dt.max()) + 1, (9, *shape))
    if dtype == "BIPOLAR":
        x = np.where(x > 0, 1, -1)
    data = pack(x, port)
    assert data.shape == (9, port["beats_per_sample"] * port["tdata_bits"] // 8)
    np.testing.assert_array_equal(unpack(data, port), x)
    np.testing.assert_array_equal(unpack(data.tobytes(), port), x)


def test_bit_layout_and_power_of_two_width():
    port = port_description((2,), DataType["INT4"], 2)
    assert port["tdata_bits"] == 8
    # element 0 in the low nibble, two's complement
    assert pack(np.array([[-1, 2]]), port).tolist() == [[0x2F]]
    assert port_description((10,), DataType["INT13"], 5)["tdata_bits"] == 128


def test_out_of_range_values_are_refused():
    port = port_description((2,), DataType["UINT2"], 2)
    with pytest.raises(ValueError, match="outside"):
        pack(np.array([[4, 0]]), port)


def test_needs_only_numpy():
    # the PYNQ driver and the UART host ship this file: it must not import gatemill or qonnx
    tree = ast.parse(inspect.getsource(packing))
    imports = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imports <= {"numpy", "annotations"} and modules <= {"__future__", "numpy"}


@pytest.mark.parametrize("mode", ["ROUND", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN"])
def test_rounding_matches_qonnx(mode):
    from qonnx.custom_op.general.intquant import resolve_rounding_mode

    x = np.array([-2.5, -1.5, -0.5, -0.4, 0.0, 0.5, 1.5, 2.5, 2.6, -2.6], np.float32)
    np.testing.assert_array_equal(packing._round(x, mode), resolve_rounding_mode(mode)(x))


def test_quantize_narrow_signed_and_images():
    port = port_description((2, 2, 3), DataType["INT4"], 3)
    port["quantizer"] = {"scale": 0.5, "layout": "NCHW", "rounding_mode": "ROUND", "narrow": True}
    x = np.full((1, 3, 2, 2), -100.0, np.float32)
    x[0, 1, 0, 1] = 1.25  # 2.5 rounds half to even: 2
    q = packing.quantize(x, port)
    assert q.shape == (1, 2, 2, 3)
    assert q.min() == -7 and q[0, 0, 1, 1] == 2
