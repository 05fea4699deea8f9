"""MatrixVectorUnit against the golden model ``MatrixVector.execute`` and the kind's timing
model (:func:`harness.check_unit`)."""

from __future__ import annotations

import dataclasses
import gc
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from harness import check_unit, random_values, verilog_arrays
from qonnx.core.datatype import DataType

from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.kinds.matrix_vector import MatrixVector, min_acc_dtype, multiple_plan
from gatemill.hdl.common import Backpressure
from gatemill.hdl.matrix_vector import MatrixVectorUnit

D = DataType


def random_thresholds(rng, acc, levels, direction, lo, hi):
    """Per channel, thresholds drawn from the accumulators the test will produce (so every
    level occurs), nudged by -1/0/+1, some beyond the accumulator range; sorted per channel
    and reversed for direction -1."""
    channels = acc.shape[-1]
    acc = acc.reshape(-1, channels)
    t = np.empty((channels, levels), np.int64)
    for c in range(channels):
        t[c] = rng.choice(acc[:, c], levels) + rng.integers(-1, 2, levels)
        if rng.random() < 0.3:
            t[c, rng.integers(levels)] = rng.choice([lo - 3, lo, hi, hi + 3])
    t.sort(axis=1)
    t[direction < 0] = t[direction < 0, ::-1]
    return t


def make_layer(
    rng,
    *,
    mh,
    mw,
    pe,
    simd,
    in_dtype,
    w_dtype,
    spatial=(),
    samples=6,
    out_dtype=None,
    out_base=0,
    direction="inc",
):
    """A random layer and *samples* random inputs for it. ``out_dtype=None`` gives the raw
    accumulator; ``direction`` is ``"inc"``, ``"dec"`` or ``"mixed"``."""
    w = random_values(rng, w_dtype, (mh, mw))
    binary = in_dtype == BIPOLAR and w_dtype == BIPOLAR
    raw = MatrixVector(
        name="mv",
        weights=w,
        in_dtype=in_dtype,
        w_dtype=w_dtype,
        acc_dtype=min_acc_dtype(w, in_dtype, binary),
        spatial=spatial,
        pe=pe,
        simd=simd,
    )
    x = random_values(rng, in_dtype, (samples, *raw.in_shape))
    if out_dtype is None:
        return raw, x
    levels = 1 if out_dtype == BIPOLAR else int(out_dtype.max()) - out_base
    d = {
        "inc": np.ones(mh, np.int64),
        "dec": -np.ones(mh, np.int64),
        "mixed": rng.choice([-1, 1], mh),
    }[direction]
    lo, hi = (int(v) for v in (raw.acc_dtype.min(), raw.acc_dtype.max()))
    t = random_thresholds(rng, raw.accumulate(x), levels, d, lo, hi)
    layer = dataclasses.replace(
        raw, thresholds=t, direction=d, out_dtype=out_dtype, out_base=out_base
    )
    return layer, x


CASES = {
    # name: make_layer arguments
    "pe1_simd1": dict(mh=4, mw=6, pe=1, simd=1, in_dtype=D["INT4"], w_dtype=D["INT3"],
                      out_dtype=D["UINT2"]),
    "pe_mh_simd_mw": dict(mh=4, mw=6, pe=4, simd=6, in_dtype=D["UINT3"], w_dtype=D["INT2"],
                          out_dtype=D["INT2"], out_base=-2),
    "pe1_simd_mw": dict(mh=3, mw=4, pe=1, simd=4, in_dtype=D["INT3"], w_dtype=D["INT3"],
                        out_dtype=D["UINT2"]),
    "pe_mh_simd1": dict(mh=4, mw=5, pe=4, simd=1, in_dtype=D["UINT4"], w_dtype=D["INT4"],
                        out_dtype=D["UINT2"]),
    "intermediate_mixed": dict(mh=6, mw=8, pe=2, simd=4, in_dtype=D["INT5"],
                               w_dtype=D["INT4"], out_dtype=D["UINT3"], direction="mixed"),
    "decreasing": dict(mh=6, mw=6, pe=3, simd=2, in_dtype=D["INT4"], w_dtype=D["INT3"],
                       out_dtype=D["INT3"], out_base=-3, direction="dec"),
    "binary_xnor": dict(mh=8, mw=16, pe=4, simd=8, in_dtype=BIPOLAR, w_dtype=BIPOLAR,
                        out_dtype=BIPOLAR, direction="mixed"),
    "binary_xnor_raw": dict(mh=4, mw=12, pe=2, simd=3, in_dtype=BIPOLAR, w_dtype=BIPOLAR),
    "bipolar_w_int8": dict(mh=4, mw=8, pe=2, simd=2, in_dtype=D["INT8"], w_dtype=BIPOLAR,
                           out_dtype=D["UINT2"], direction="dec"),
    "bipolar_w_uint8_raw": dict(mh=4, mw=6, pe=2, simd=3, in_dtype=D["UINT8"],
                                w_dtype=BIPOLAR),
    "bipolar_in_int_w": dict(mh=4, mw=6, pe=1, simd=2, in_dtype=BIPOLAR, w_dtype=D["INT3"],
                             out_dtype=BIPOLAR, direction="mixed"),
    "raw_signed": dict(mh=4, mw=6, pe=2, simd=2, in_dtype=D["INT4"], w_dtype=D["INT4"]),
    "bipolar_out": dict(mh=4, mw=6, pe=2, simd=3, in_dtype=D["UINT2"], w_dtype=D["INT2"],
                        out_dtype=BIPOLAR),
    "conv3x3": dict(mh=4, mw=9, pe=2, simd=3, in_dtype=D["UINT4"], w_dtype=D["INT3"],
                    spatial=(3, 3), samples=3, out_dtype=D["UINT2"]),
    "odd_27x10": dict(mh=10, mw=27, pe=5, simd=3, in_dtype=D["INT4"], w_dtype=D["INT3"],
                      out_dtype=D["UINT3"], samples=4, direction="mixed"),
    "odd_27x10_unfolded_raw": dict(mh=10, mw=27, pe=10, simd=27, in_dtype=D["INT4"],
                                   w_dtype=D["INT3"]),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_matches_golden(name):
    rng = np.random.default_rng(sorted(CASES).index(name))
    check_unit(*make_layer(rng, **CASES[name]))


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("sign", ["INT", "UINT"])
def test_input_widths(sign, bits):
    """Signed and unsigned inputs of 1..8 bits; thresholds on odd widths, raw on even."""
    rng = np.random.default_rng(100 + 2 * bits + (sign == "INT"))
    layer, x = make_layer(
        rng,
        mh=4,
        mw=6,
        pe=2,
        simd=3,
        in_dtype=D[f"{sign}{bits}"] if (sign, bits) != ("UINT", 1) else D["BINARY"],
        w_dtype=D["INT3"],
        samples=4,
        out_dtype=D["UINT2"] if bits % 2 else None,
        direction="mixed",
    )
    check_unit(layer, x, seed=bits)


PIPELINED = {
    # name: (CASES entry, adder levels per cycle)
    "pipelined_every_level": ("intermediate_mixed", 1),
    "pipelined_binary": ("binary_xnor", 1),
    "pipelined_raw_two_levels": ("raw_signed", 2),
    "pipelined_conv": ("conv3x3", 1),
    "pipelined_odd_three_levels": ("odd_27x10", 3),
    "pipelined_unfolded": ("odd_27x10_unfolded_raw", 1),
    "pipelined_bipolar_w": ("bipolar_w_int8", 1),
    "pipelined_simd1": ("pe_mh_simd1", 1),
}


@pytest.mark.parametrize("name", PIPELINED)
def test_pipelined_matches_golden(name):
    """A pipelined unit (products, partial sums every ``k`` levels and the comparisons
    registered): the same outputs, every beat where ``beat_times`` says (its longer tail)."""
    case, k = PIPELINED[name]
    rng = np.random.default_rng(sorted(PIPELINED).index(name) + 50)
    layer, x = make_layer(rng, **CASES[case])
    check_unit(layer.refold(pipeline=k), x, seed=k)


MULTIPLIERS = {
    # name: (CASES entry, fold fields)
    "lut_signed_inputs": ("intermediate_mixed", {"mul": "lut"}),
    "lut_unsigned_inputs_pipelined": ("conv3x3", {"mul": "lut", "pipeline": 1}),
    "lut_odd_weight_bits": ("odd_27x10", {"mul": "lut"}),
    "lut_raw_unfolded": ("odd_27x10_unfolded_raw", {"mul": "lut", "pipeline": 2}),
    "lut_two_bit_weights": ("bipolar_out", {"mul": "lut"}),
    # an input read back from the buffer: registered before the multiples too
    "lut_buffered_pipelined": ("intermediate_mixed", {"mul": "lut", "pipeline": 1}),
    "lut_buffered_skid": ("intermediate_mixed", {"mul": "lut", "pipeline": 2, "out_skid": 1}),
    "dsp_pack2": ("intermediate_mixed", {"pack": 2}),
    "dsp_pack2_odd_pe_pipelined": ("odd_27x10", {"pack": 2, "pipeline": 1}),
    "dsp_pack3_raw": ("raw_signed", {"pack": 3}),
    "dsp_pack3_unfolded": ("odd_27x10_unfolded_raw", {"pack": 3, "pipeline": 1}),
    "dsp_fabric_reg": ("intermediate_mixed", {"pipeline": 1, "dsp_fabric_reg": 1}),
    # a skid buffer at the output, the enable a register (the ECP5's choice above 100 MHz)
    "out_skid_pipelined": ("intermediate_mixed", {"pipeline": 1, "dsp_fabric_reg": 1,
                                                  "out_skid": 1}),
    "out_skid_raw_sums": ("raw_signed", {"mul": "lut", "out_skid": 1}),
    "out_skid_conv": ("conv3x3", {"out_skid": 1}),
    "out_skid_bipolar_out": ("bipolar_out", {"pipeline": 2, "out_skid": 1}),
    # part of each weight word in a ROM in logic (lut_weight_bits)
    "lut_weight_bits_packed": ("intermediate_mixed", {"pack": 2, "lut_weight_bits": 7}),
    "lut_weight_bits_lut_products": ("conv3x3", {"mul": "lut", "pipeline": 1,
                                                 "lut_weight_bits": 5}),
    "lut_weight_bits_whole_word": ("bipolar_out", {"lut_weight_bits": 12}),
}  # fmt: skip


@pytest.mark.parametrize("name", MULTIPLIERS)
def test_multipliers_match_golden(name):
    """LUT products (radix-4 digits) and packed DSP products, signed and unsigned inputs,
    odd widths, several rows per multiplier: the same outputs and timing."""
    case, fold = MULTIPLIERS[name]
    rng = np.random.default_rng(sorted(MULTIPLIERS).index(name) + 70)
    layer, x = make_layer(rng, **CASES[case])
    check_unit(layer.refold(**fold), x, seed=3)


@pytest.mark.parametrize(("top", "deepest"), [(31, 2), (127, 2), (255, 3)])
def test_multiples_take_few_adders_in_series(top, deepest):
    """Every odd multiple up to *top* (6-, 7- and 8-bit weights): one adder each, each step
    exact, at most *deepest* adders in series from the input (an 8-bit multiple such as 171
    has five nonzero signed digits, so three levels); the first plan found chained 3, 5, 7,
    ... one adder after another, 127 in series for 8-bit weights."""
    odds = set(range(3, top + 1, 2))
    plan = multiple_plan(odds)
    depth = {1: 0}
    for o, a, j, sign, b in plan:
        assert a in depth and b in depth and o == (a << j) + sign * b
        depth[o] = 1 + max(depth[a], depth[b])
    assert set(depth) == odds | {1} and len(plan) == len(odds)
    assert max(depth.values()) == deepest


SHIFT_ADD = {
    # name: (make_layer arguments, share of zero weights, pipeline)
    "signed_in_6bit_weights": (dict(mh=6, mw=10, in_dtype=D["INT6"], w_dtype=D["INT6"],
                                    out_dtype=D["UINT3"], direction="mixed"), 0.3, 1),
    "unsigned_in_raw": (dict(mh=5, mw=7, in_dtype=D["UINT8"], w_dtype=D["INT5"]), 0.5, 2),
    "sparse_rows": (dict(mh=8, mw=16, in_dtype=D["UINT4"], w_dtype=D["INT4"],
                         out_dtype=D["UINT4"]), 0.9, 1),
    "one_cycle": (dict(mh=4, mw=6, in_dtype=D["INT4"], w_dtype=D["INT8"],
                       out_dtype=D["UINT2"]), 0.2, 0),
    "searched_thresholds": (dict(mh=6, mw=10, in_dtype=D["UINT6"], w_dtype=D["INT6"],
                                 out_dtype=D["UINT5"], direction="mixed"), 0.5, 1),
    "searched_thresholds_one_cycle": (dict(mh=3, mw=5, in_dtype=D["INT4"], w_dtype=D["INT5"],
                                           out_dtype=D["INT6"], out_base=-20), 0.1, 0),
}  # fmt: skip


@pytest.mark.parametrize("name", SHIFT_ADD)
def test_shift_add_constant_weights(name):
    """A fully parallel layer with LUT products multiplies by its constant weights with odd
    multiples of each input and shifts; zero weights (whole zero rows included) add
    nothing; subtracted terms; every tree as deep as the fullest row's."""
    kw, zeros, k = SHIFT_ADD[name]
    rng = np.random.default_rng(sorted(SHIFT_ADD).index(name) + 90)
    layer, x = make_layer(rng, pe=kw["mh"], simd=kw["mw"], samples=12, **kw)
    w = np.where(rng.random(layer.weights.shape) < zeros, 0, layer.weights)
    w[0] = 0  # a row without a product
    w[1] = -np.abs(w[1])  # a row of subtracted terms only
    layer = dataclasses.replace(layer, weights=w).refold(mul="lut", pipeline=k)
    assert layer.shift_add
    if layer.thresholds is not None:
        lo, hi = (int(v) for v in (layer.acc_dtype.min(), layer.acc_dtype.max()))
        t = random_thresholds(rng, layer.accumulate(x), layer.thresholds.shape[1],
                              layer.direction, lo, hi)  # fmt: skip
        layer = dataclasses.replace(layer, thresholds=t)
    check_unit(layer, x, seed=k)


@pytest.mark.parametrize("sign", ["INT", "UINT"])
@pytest.mark.parametrize("wbits", [2, 3, 5, 6, 8])
def test_lut_products_every_width(sign, wbits):
    """Every weight width, signed and unsigned inputs, against exhaustive-ish products."""
    rng = np.random.default_rng(200 + wbits + 10 * (sign == "INT"))
    layer, x = make_layer(
        rng, mh=4, mw=8, pe=2, simd=4, in_dtype=D[f"{sign}4"], w_dtype=D[f"INT{wbits}"],
        samples=8,
    )  # fmt: skip
    check_unit(layer.refold(mul="lut"), x, seed=wbits)
    check_unit(layer.refold(pack=2), x, seed=wbits)


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_searched_thresholds_of_one_fold(k):
    """One neuron fold over several synapse folds: constant thresholds (63 levels) counted
    by binary search after a folded accumulation, registered every k search levels."""
    rng = np.random.default_rng(300 + k)
    layer, x = make_layer(rng, mh=4, mw=12, pe=4, simd=3, in_dtype=D["UINT4"],
                          w_dtype=D["INT4"], out_dtype=D["UINT6"], direction="mixed")  # fmt: skip
    layer = layer.refold(pipeline=k, mul="lut")
    assert layer.threshold_search and layer.folds == (1, 4)
    assert len(layer.stages().search_cuts) == (len(range(k, 6, k)) if k else 0)
    check_unit(layer, x, seed=k)


def requantization_thresholds(rng, layer, levels):
    """Per row the thresholds of ``round(acc * s + b)`` for a random scale of the row's
    sign (its direction) and offset: the ceilings (floors, for a negative scale) of an
    arithmetic progression across part of the row's range."""
    rows = []
    for lo, hi, d in zip(*layer.acc_range(), layer.direction, strict=True):
        step = rng.uniform(1.3, max((hi - lo) / (1.5 * levels), 1.4))
        start = rng.uniform(lo, lo + (hi - lo) / 4)
        t = start + step * np.arange(levels)
        rows.append(np.ceil(t) if d > 0 else np.floor(hi + lo - t))
    return np.array(rows, dtype=np.int64)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_thresholds_counted_on_multipliers(k):
    """thr_mul="dsp": a row whose 63 thresholds are a requantization's is counted by
    ``value * m + c`` shifted and clipped, a row of random thresholds by its search; exact
    against the golden model, with the search's latency."""
    rng = np.random.default_rng(320 + k)
    layer, x = make_layer(rng, mh=6, mw=12, pe=6, simd=3, in_dtype=D["UINT4"],
                          w_dtype=D["INT4"], out_dtype=D["UINT6"], direction="mixed")  # fmt: skip
    t = requantization_thresholds(rng, layer, 63)
    t[0] = layer.thresholds[0]  # random: no affine count
    layer = dataclasses.replace(layer, thresholds=t).refold(pipeline=k, mul="lut")
    on_dsp = layer.refold(thr_mul="dsp")
    found = [a is not None for a in on_dsp.affine_counts]
    assert found == [False] + [True] * 5
    assert layer.affine_counts == [None] * 6
    assert on_dsp.stages() == layer.stages() and on_dsp.tail == layer.tail
    # the estimate: a multiplier per affine row, a search for the other, a clip per count bit
    lut, dsp = layer.features(), on_dsp.features()
    assert dsp.dsp == lut.dsp + 5
    assert dsp.lut["search"] * 6 == lut.lut["search"] and dsp.lut["affine"] == 5 * 6
    check_unit(on_dsp, x, seed=k)
    with pytest.raises(ValueError, match="thr_mul must be one of dsp, lut"):
        layer.refold(thr_mul="lutram")


def test_pipeline_stages():
    """``k`` levels a cycle: a register after the products, after levels k, 2k, .. below the
    tree's depth, and after the comparisons; the tail grows by that many."""
    rng = np.random.default_rng(11)
    layer, _ = make_layer(rng, **{**CASES["odd_27x10"], "simd": 27, "pe": 1})  # 5 levels
    assert layer.stages().extra == 0
    assert layer.refold(pipeline=1).stages().tree_cuts == (1, 2, 3, 4)
    assert layer.refold(pipeline=2).stages().tree_cuts == (2, 4)
    assert layer.refold(pipeline=5).stages().tree_cuts == ()
    # DSP products: operands registered twice (in the block RAM and the DSP), products once
    # (in the DSP) and again in the fabric with dsp_fabric_reg (the ECP5's choice); LUT
    # products: the input's multiples (beside the weight word) and the products; constant
    # weights by shift and add: the multiples only
    assert layer.refold(pipeline=2).tail == layer.tail + 3 + 2 + 1
    assert layer.refold(pipeline=2, dsp_fabric_reg=1).tail == layer.tail + 4 + 2 + 1
    assert layer.refold(pipeline=2, mul="lut", dsp_fabric_reg=1).tail == layer.tail + 2 + 2 + 1
    assert layer.refold(pipeline=2, mul="lut").tail == layer.tail + 2 + 2 + 1
    assert layer.refold(pipeline=2, mul="lut").stages().multiples
    assert not layer.refold(pipeline=2).stages().multiples
    # ... and for an input read back from the buffer, one in front of them
    buffered, _ = make_layer(rng, **CASES["intermediate_mixed"])
    assert buffered.buffered and not layer.buffered
    assert buffered.refold(pipeline=1, mul="lut").stages().operands == 1
    # DSP products of a buffered input: on the ECP5 once more in the fabric before the DSP
    assert buffered.refold(pipeline=1, mul="dsp").stages().operands == 2
    assert buffered.refold(pipeline=1, mul="dsp", dsp_fabric_reg=1).stages().operands == 3
    assert layer.refold(pipeline=1, mul="dsp", dsp_fabric_reg=1).stages().operands == 2
    assert layer.refold(pipeline=1, mul="lut").stages().operands == 0
    one = layer.refold(pe=layer.mh, simd=layer.mw, mul="lut", pipeline=1)
    assert one.shift_add and one.stages().extra == 1 + len(one.stages().tree_cuts) + 1
    with pytest.raises(ValueError, match="pipeline must be a non-negative integer"):
        layer.refold(pipeline=-1)
    with pytest.raises(ValueError, match="dsp_fabric_reg must be 0 or 1"):
        layer.refold(dsp_fabric_reg=2)


def test_device_fold_registers_dsp_products_in_the_fabric_on_ecp5_only():
    """The second product register pays on the ECP5 (long routes from the multiplier
    column) and costs LUTs on Xilinx (no DSP48 post-adder), so only the ECP5 gets it."""
    rng = np.random.default_rng(12)
    layer, _ = make_layer(rng, **CASES["intermediate_mixed"])
    for family, reg in (("ecp5", 1), ("xc7", 0), ("xcup", 0)):
        fold = layer.device_fold(150.0, family)
        assert fold["mul"] == "dsp" and fold["dsp_fabric_reg"] == reg
        assert layer.refold(**fold).stages().fabric_products == bool(reg)


def test_device_fold_puts_skid_buffers_around_units_above_the_family_clock():
    """On the ECP5 above 100 MHz the next stage's ``ready`` would otherwise decide, through
    logic, the enable of every register and multiplier of the unit; never on other families
    (nothing measured there)."""
    rng = np.random.default_rng(13)
    layer, _ = make_layer(rng, **CASES["intermediate_mixed"])
    for family, mhz, skid in (("ecp5", 150.0, 1), ("ecp5", 100.0, 0), ("xc7", 250.0, 0)):
        fold = layer.device_fold(mhz, family)
        assert fold["out_skid"] == fold["in_skid"] == skid
    # the unit of a chain (one sample per clock, under its run's enable) has none
    assert layer.refold(out_skid=1).has_skid
    assert not layer.refold(pe=layer.mh, simd=layer.mw, out_skid=1).has_skid
    for field in ("out_skid", "in_skid"):
        with pytest.raises(ValueError, match=f"{field} must be 0 or 1"):
            layer.refold(**{field: 2})


def test_refolding_keeps_results():
    """Every folding of one layer gives the same outputs."""
    rng = np.random.default_rng(7)
    layer, x = make_layer(
        rng, mh=4, mw=6, pe=1, simd=1, in_dtype=D["INT3"], w_dtype=D["INT2"], samples=2,
        out_dtype=D["UINT2"], direction="mixed",
    )  # fmt: skip
    for pe, simd in [(2, 3), (4, 2), (1, 6)]:
        check_unit(layer.refold(pe=pe, simd=simd), x, seed=pe)


def test_timing_model():
    """The documented formulas on a hand-worked layer: ``prod(spatial) * NF * SF`` cycles, and
    ``SF - 1`` more input beats then four registers (issue, product, accumulate, output)."""
    rng = np.random.default_rng(8)
    layer, _ = make_layer(
        rng, mh=6, mw=8, pe=2, simd=4, in_dtype=D["INT4"], w_dtype=D["INT3"], spatial=(2, 2),
        out_dtype=D["UINT2"], direction="mixed",
    )  # fmt: skip
    assert layer.cycles() == 4 * 3 * 2
    assert layer.latency() == (2 - 1) + 3 + 1
    raw = dataclasses.replace(layer, thresholds=None, direction=None, out_dtype=None)
    assert raw.latency() == (2 - 1) + 3


def test_the_schedule_without_backpressure_is_the_step_by_step_one():
    """The closed form :meth:`beat_times` takes when every beat is taken at once equals the
    step-by-step schedule (forced by a consumer that also takes every beat at once), for
    gaps in the input and for pipelined and raw layers."""
    rng = np.random.default_rng(11)
    for pe, simd, pipeline in [(1, 1, 0), (2, 4, 2), (6, 8, 1), (3, 2, 0)]:
        layer, _ = make_layer(
            rng, mh=6, mw=8, pe=pe, simd=simd, in_dtype=D["INT4"], w_dtype=D["INT3"],
            spatial=(3,), out_dtype=D["UINT2"], direction="mixed",
        )  # fmt: skip
        layer = dataclasses.replace(layer, pipeline=pipeline)
        beats = layer.input_beats[0]
        avail = np.cumsum(rng.integers(0, 4, beats)).tolist()
        stepwise = layer.beat_times(avail, hold=Backpressure(take=lambda v: v))
        assert layer.beat_times(avail) == stepwise
        assert len(stepwise) == 3 * (6 // pe)


def test_folded_layout():
    """Step ``(nf, sf)`` multiplies lane ``(p, s)`` by ``W[nf * PE + p, sf * SIMD + s]``."""
    rng = np.random.default_rng(10)
    layer, _ = make_layer(rng, mh=6, mw=8, pe=3, simd=2, in_dtype=D["INT4"], w_dtype=D["INT3"])
    w = layer.folded_weights()
    assert w.shape == (2, 4, 3, 2)
    for nf, sf, p, s in np.ndindex(*w.shape):
        assert w[nf, sf, p, s] == layer.weights[nf * 3 + p, sf * 2 + s]


def test_memories_are_inferred():
    """Weights and the input buffer reach Verilog as memories, not as unrolled logic."""
    rng = np.random.default_rng(9)
    layer, _ = make_layer(
        rng, mh=6, mw=8, pe=2, simd=2, in_dtype=D["INT4"], w_dtype=D["INT2"],
        out_dtype=D["UINT2"],
    )  # fmt: skip
    arrays = verilog_arrays(verilog.convert(MatrixVectorUnit(layer=layer), name="mvu"))
    assert arrays["weights"] == (2 * 2 * 2, 3 * 4)  # PE x SIMD x INT2 bits, NF x SF words
    assert arrays["buffer"] == (2 * 4, 4)  # SIMD x INT4 bits, SF words
    split = verilog.convert(MatrixVectorUnit(layer=layer.refold(lut_weight_bits=3)), name="mvu")
    arrays = verilog_arrays(split)
    assert arrays["weights"] == (8 - 3, 12) and arrays["weights_lut"] == (3, 12)
    assert '(* rom_style = "logic" *)' in split


def test_lut_weight_bits_is_checked():
    rng = np.random.default_rng(11)
    layer, _ = make_layer(rng, mh=6, mw=8, pe=2, simd=2, in_dtype=D["INT4"], w_dtype=D["INT2"])
    with pytest.raises(ValueError, match="lut_weight_bits 9 is more than the 8 bits"):
        layer.refold(lut_weight_bits=9)
    with pytest.raises(ValueError, match="non-negative integer, not -1"):
        layer.refold(lut_weight_bits=-1)


def test_rejects_non_layer():
    with warnings.catch_warnings():
        # the half-built component is never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="must be a MatrixVector layer, not 3") as info:
            MatrixVectorUnit(layer=3)
        del info
        gc.collect()
