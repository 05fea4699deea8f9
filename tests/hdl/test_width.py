"""WidthConverter against the identity (the element sequence is unchanged): bit-exact under
random idle input and backpressure, and measured II / latency equal to the estimates."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module, UnusedElaboratable
from amaranth.lib import wiring
from qonnx.core.datatype import DataType
from streams import from_beats, run_stream, to_beats

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.hdl.width import WidthConverter, cycles_per_sample, latency_cycles

D = DataType


class Clocked(wiring.Component):
    """A DUT inside a module with a ``sync`` domain: the driver clocks one, and a
    pass-through converter has none of its own."""

    def __init__(self, dut):
        self._dut = dut
        super().__init__(dut.signature)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain()
        m.submodules.dut = self._dut
        wiring.connect(m, wiring.flipped(self.i), self._dut.i)
        wiring.connect(m, self._dut.o, wiring.flipped(self.o))
        return m


def random_input(rng, dtype, shape):
    if dtype == BIPOLAR:
        return rng.choice([-1, 1], size=shape)
    return rng.integers(int(dtype.min()), int(dtype.max()) + 1, size=shape)


def check(dtype, n_in, n_out, per_sample, samples=3, seed=0):
    """Random idle/stall run equal to the input (identity); a full-rate run with measured II
    (between consecutive samples' first output beats) and latency equal to the estimates."""
    rng = np.random.default_rng(seed)
    x = random_input(rng, dtype, (samples, per_sample))
    beats = to_beats(x, dtype, n_in)
    n_out_beats = x.size // n_out

    def dut():
        return Clocked(WidthConverter(dtype=dtype, n_in=n_in, n_out=n_out, per_sample=per_sample))

    out, _ = run_stream(dut(), beats, n_out_beats, seed=seed, idle=0.3, stall=0.3)
    assert np.array_equal(from_beats(out, dtype, n_out, (per_sample,)), x)

    out, stats = run_stream(dut(), beats, n_out_beats)
    assert np.array_equal(from_beats(out, dtype, n_out, (per_sample,)), x)
    firsts = stats["out_cycles"][:: n_out_beats // samples]
    ii = cycles_per_sample(dtype, n_in, n_out, per_sample)
    assert np.diff(firsts).tolist() == [ii] * (samples - 1)
    assert stats["first_out"] - stats["first_in"] == latency_cycles(dtype, n_in, n_out, per_sample)


@pytest.mark.parametrize(
    ("n_in", "n_out", "per_sample"),
    [
        (1, 4, 8),  # widen by a multiple (gather)
        (4, 1, 8),  # narrow by a multiple (scatter)
        (2, 4, 8),
        (4, 2, 8),
        (3, 12, 24),
        (12, 3, 24),
        (4, 6, 12),  # general ratios, both ways
        (6, 4, 24),
        (3, 5, 15),
        (5, 3, 30),
        (2, 9, 18),
        (9, 2, 18),
        (7, 7, 14),  # pass-through
    ],
)
def test_identity(n_in, n_out, per_sample):
    check(D["INT4"], n_in, n_out, per_sample, seed=n_in * 10 + n_out)


@pytest.mark.parametrize("dtype", [BIPOLAR, D["BINARY"], D["INT8"], D["UINT3"]])
def test_datatypes(dtype):
    check(dtype, 4, 6, 24, seed=dtype.bitwidth())


def test_estimates():
    assert cycles_per_sample(D["INT4"], 4, 6, 24) == 6  # input-bound: 6 beats of 4
    assert latency_cycles(D["INT4"], 4, 6, 24) == 2  # 2 input beats fill the first output
    assert cycles_per_sample(D["INT4"], 6, 4, 24) == 6  # output-bound: 6 beats of 4
    assert latency_cycles(D["INT4"], 6, 4, 24) == 1
    assert (cycles_per_sample(D["INT4"], 3, 3, 9), latency_cycles(D["INT4"], 3, 3, 9)) == (3, 0)


def test_rejects_bad_arguments():
    with warnings.catch_warnings():
        # the half-built components are never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError, match=r"multiple of n_in=4 and n_out=6, not 18"):
            WidthConverter(dtype=D["INT4"], n_in=4, n_out=6, per_sample=18)
        with pytest.raises(TypeError, match="n_out must be a positive integer, not 0"):
            WidthConverter(dtype=D["INT4"], n_in=4, n_out=0, per_sample=8)
        with pytest.raises(ValueError, match="not 10"):
            cycles_per_sample(D["INT4"], 4, 2, 10)
        gc.collect()
