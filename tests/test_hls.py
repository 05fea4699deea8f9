"""HLS backend: C simulation (g++) of the C++ kernels against the golden model (IRGraph.execute).

Every C simulation compares all output elements of every vector with the golden model of the
same IR, bit for bit. The synthetic graphs exercise what the digits models do not: signed
inputs, asymmetric padding and strides, rows dropped below the last window, mixed threshold
directions, negative output bases, width conversion through a common divisor, and the bipolar
variants of the matrix-vector unit.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from brevitas_models import export, mlp
from irgraphs import (
    concat_graph,
    graph,
    mv,
    random_thresholds,
    random_values,
    residual_graph,
)

from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.errors import GatemillError
from gatemill.flow.hls.csim import run_csim
from gatemill.flow.hls.model import ident
from gatemill.flow.hls.plan import plan_design
from gatemill.flow.hls.step import HlsConfig, board_settings, resolve_target, run_hls
from gatemill.flow.hls.writer import c_initializer, tcl_word, write_hls
from gatemill.flow.ir.datatypes import BIPOLAR, dtype_from_name
from gatemill.flow.ir.graph import IRGraph
from gatemill.flow.kinds import (
    Flatten,
    GlobalSum,
    LutLayer,
    MaxPool,
    SlidingWindow,
    Threshold,
    VectorVector,
)
from gatemill.flow.kinds.global_sum import sum_dtype
from gatemill.flow.kinds.matrix_vector import accumulator_range, min_acc_dtype
from gatemill.flow.tclcheck import VITIS_COMMANDS, check_tcl

D = dtype_from_name


def lut(rng, name, in_features, neurons, fanin, in_dt, out_dt):
    indices = np.array([rng.choice(in_features, size=fanin, replace=False) for _ in range(neurons)])
    entries = 1 << (fanin * in_dt.bitwidth())
    return LutLayer(
        name=name,
        in_features=in_features,
        indices=indices,
        tables=random_values(rng, out_dt, (neurons, entries)),
        in_dtype=in_dt,
        out_dtype=out_dt,
    )


def conv_graph(seed=0) -> IRGraph:
    rng = np.random.default_rng(seed)
    win = SlidingWindow(
        name="win",
        ifm=(9, 6, 4),
        kernel=(3, 2),
        stride=(2, 1),
        pad=(1, 0, 2, 1),
        dtype=D("INT3"),
        simd=2,
    )
    conv = mv(
        rng,
        "conv",
        6,
        24,
        D("INT3"),
        D("INT2"),
        spatial=win.out_shape[:2],
        t=7,
        out_dt=D("INT3"),
        out_base=-4,
        pe=3,
        simd=2,
    )
    # stride 2 over 5 rows leaves row 4 unread by any window: it must be drained
    pool = MaxPool(
        name="pool", ifm=conv.out_shape, kernel=(2, 2), stride=(2, 3), dtype=D("INT3"), pe=2
    )
    flat = Flatten(name="flat", ifm=pool.out_shape, dtype=D("INT3"))
    n = flat.out_shape[0]
    direction = rng.choice([-1, 1], size=n)
    thr = Threshold(
        name="requant",
        shape=(n,),
        in_dtype=D("INT3"),
        thresholds=random_thresholds(rng, np.full(n, -4), np.full(n, 3), 3, direction),
        direction=direction,
        out_dtype=D("UINT2"),
        pe=4,
    )
    # 4 lanes in, 6 lanes taken: neither divides the other (converted through 2)
    fc = mv(rng, "fc", 10, n, D("UINT2"), D("INT4"), t=3, out_dt=D("UINT2"), pe=5, simd=6)
    table = lut(rng, "table", 10, 5, 3, D("UINT2"), D("INT4"))
    return graph("conv", win.ifm, D("INT3"), [win, conv, pool, flat, thr, fc, table])


def bipolar_graph(seed=1) -> IRGraph:
    rng = np.random.default_rng(seed)
    xnor = mv(rng, "xnor", 8, 16, BIPOLAR, BIPOLAR, t=1, out_dt=BIPOLAR, pe=2, simd=4)
    bip_in = mv(rng, "bip_in", 6, 8, BIPOLAR, D("INT3"), t=3, out_dt=D("UINT2"), pe=3, simd=8)
    bip_w = mv(rng, "bip_w", 4, 6, D("UINT2"), BIPOLAR, pe=4, simd=3)
    acc = bip_w.acc_dtype
    lo, hi = accumulator_range(bip_w.weights, D("UINT2"), False)
    direction = rng.choice([-1, 1], size=4)
    sign = Threshold(
        name="sign",
        shape=(4,),
        in_dtype=acc,
        thresholds=random_thresholds(rng, lo, hi, 1, direction),
        direction=direction,
        out_dtype=BIPOLAR,
        pe=2,
    )
    table = lut(rng, "table", 4, 6, 3, BIPOLAR, BIPOLAR)
    last = mv(rng, "last", 3, 6, BIPOLAR, BIPOLAR, pe=3, simd=2)
    return graph("bipolar", (16,), BIPOLAR, [xnor, bip_in, bip_w, sign, table, last])


def vv(rng, name, c, k, in_dt, w_dt, *, spatial=(), t=0, out_dt=None, out_base=0, pe, w=None):
    w = random_values(rng, w_dt, (c, k)) if w is None else w
    kw = {}
    if t:
        lo, hi = accumulator_range(w, in_dt, False)
        direction = rng.choice([-1, 1], size=c)
        kw = dict(
            thresholds=random_thresholds(rng, lo, hi, t, direction),
            direction=direction,
            out_dtype=out_dt,
            out_base=out_base,
        )
    acc = min_acc_dtype(w, in_dt, False)
    return VectorVector(
        name=name, weights=w, in_dtype=in_dt, w_dtype=w_dt, acc_dtype=acc, spatial=spatial,
        pe=pe, **kw,
    )  # fmt: skip


def quartile_thresholds(rng, values):
    """Thresholds at the quartiles of *values* (channels last) per channel, with random
    directions: every output level occurs on inputs like those."""
    flat = values.reshape(-1, values.shape[-1])
    t = np.percentile(flat, [25, 50, 75], axis=0).T.round().astype(np.int64)
    direction = rng.choice([-1, 1], size=len(t))
    t[direction < 0] = t[direction < 0, ::-1]
    return {"thresholds": t, "direction": direction}


def depthwise_graph(seed=2) -> IRGraph:
    """A depthwise convolution, a 2x2 average pool (all-ones weights, raw sums), global
    average pooling with thresholds (the 1/N in them), a dense layer."""
    rng = np.random.default_rng(seed)
    win = SlidingWindow(
        name="win", ifm=(6, 5, 4), kernel=(3, 3), pad=(1, 1, 1, 1), dtype=D("INT3"), simd=2
    )
    x = random_values(rng, D("INT3"), (40, *win.ifm))
    dw = vv(rng, "dw", 4, 9, D("INT3"), D("INT3"), spatial=win.out_shape[:2], pe=2)
    dw = dataclasses.replace(dw, **quartile_thresholds(rng, dw.execute(win.execute(x))),
                             out_dtype=D("UINT2"))  # fmt: skip
    # stride 2 over 5 columns leaves the last one unread
    pool_win = SlidingWindow(
        name="pool_win", ifm=dw.out_shape, kernel=(2, 2), stride=(2, 2), dtype=D("UINT2"), simd=4
    )
    avg = vv(rng, "avg", 4, 4, D("UINT2"), D("BINARY"), spatial=pool_win.out_shape[:2], pe=4,
             w=np.ones((4, 4), np.int64))  # fmt: skip
    sums = avg.execute(pool_win.execute(dw.execute(win.execute(x)))).sum(axis=(1, 2))
    gap = GlobalSum(
        name="gap",
        shape=avg.out_shape,
        in_dtype=avg.out_dtype,
        acc_dtype=sum_dtype(avg.out_dtype, 6),
        **quartile_thresholds(rng, sums),
        out_dtype=D("UINT2"),
        pe=1,
    )
    fc = mv(rng, "fc", 3, 4, D("UINT2"), D("INT4"), pe=3, simd=2)
    return graph("depthwise", win.ifm, D("INT3"), [win, dw, pool_win, avg, gap, fc])


def set_graph(seed=4) -> IRGraph:
    """A deep set: per element a vector-vector layer on bipolar inputs and a dense layer,
    the raw sum over the elements, a vector-vector layer with bipolar weights."""
    rng = np.random.default_rng(seed)
    first = vv(rng, "first", 3, 2, BIPOLAR, D("INT3"), spatial=(5,), t=1, out_dt=BIPOLAR, pe=3)
    elem = mv(rng, "elem", 4, 3, BIPOLAR, D("INT2"), spatial=(5,), t=3, out_dt=D("INT2"),
              out_base=-2, pe=2, simd=3)  # fmt: skip
    total = GlobalSum(
        name="total", shape=elem.out_shape, in_dtype=D("INT2"), acc_dtype=sum_dtype(D("INT2"), 5),
        pe=2,
    )  # fmt: skip
    last = vv(rng, "last", 2, 2, total.out_dtype, BIPOLAR, pe=1)
    return graph("set", first.in_shape, BIPOLAR, [first, elem, total, last])


def csim_of(ir: IRGraph, tmp_path, n=40, seed=3):
    rng = np.random.default_rng(seed)
    x = random_values(rng, ir.input.dtype, (n, *ir.input.shape))
    y = ir.execute(x)
    write_hls(ir, tmp_path / "hls", x, y)
    return run_csim(tmp_path / "hls")


# -- C simulation against the golden model ---------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [conv_graph, bipolar_graph, depthwise_graph, set_graph, residual_graph, concat_graph],
    ids=lambda f: f.__name__,
)
def test_csim_matches_golden_model(make, tmp_path):
    ir = make()
    r = csim_of(ir, tmp_path)
    assert r["vectors"] == 40
    assert r["mismatches"] == 0 and r["framing_errors"] == 0
    assert r["compile_seconds"] > 0 and r["run_seconds"] > 0
    assert json.loads((tmp_path / "hls" / "csim.json").read_text())["mismatches"] == 0


def test_csim_reports_a_wrong_golden_output(tmp_path):
    # the testbench must see a difference: corrupt one golden element
    ir = bipolar_graph()
    rng = np.random.default_rng(0)
    x = random_values(rng, BIPOLAR, (5, 16))
    y = ir.execute(x)
    y[3, 1] += 1
    write_hls(ir, tmp_path / "hls", x, y)
    with pytest.raises(GatemillError, match="1 outputs that differ"):
        run_csim(tmp_path / "hls")
    r = json.loads((tmp_path / "hls" / "csim.json").read_text())
    assert r["mismatches"] == 1 and r["first_bad_sample"] == 3


# -- plan: layouts and plumbing --------------------------------------------------------------


def test_weights_layout_follows_the_folding():
    ir = conv_graph()
    conv = ir.layers[1]
    arrays = {a.name: a for a in plan_design(ir).params["conv"]}
    w = arrays["conv_weights"].values
    sf = conv.mw // conv.simd
    for p in range(conv.pe):
        for nf in range(conv.mh // conv.pe):
            for s_f in range(sf):
                for s in range(conv.simd):
                    assert (
                        w[p, nf * sf + s_f, s]
                        == conv.weights[nf * conv.pe + p, s_f * conv.simd + s]
                    )
    thr = arrays["conv_act_thresholds"].values
    assert thr.shape == (3, 2, 7)
    assert np.array_equal(thr[1, 1], conv.thresholds[1 * 3 + 1])


def test_width_conversion_goes_through_the_common_divisor():
    calls = [c.func for c in plan_design(conv_graph()).calls]
    assert "gm::resize<2, 4, 2, 24>" in calls and "gm::resize<2, 2, 6, 24>" in calls
    assert calls[0].startswith("gm::axis_in<") and calls[-1].startswith("gm::axis_out<")


def test_wide_first_and_last_words_are_rechunked_at_the_ports():
    rng = np.random.default_rng(0)
    wide = mv(rng, "wide", 80, 160, D("INT8"), D("INT8"), pe=80, simd=160)
    plan = plan_design(graph("wide", (160,), D("INT8"), [wide]))
    assert plan.ports["input"]["lanes"] == 80 and plan.ports["input"]["tdata_bits"] <= 1024
    bits = wide.acc_dtype.bitwidth()
    assert plan.ports["output"]["lanes"] * bits <= 1024
    calls = [c.func for c in plan.calls]
    assert calls[1] == "gm::resize<8, 80, 160, 160>"
    assert calls[-2] == f"gm::resize<{bits}, 80, {plan.ports['output']['lanes']}, 80>"


def test_binary_weights_are_stored_as_codes():
    ir = bipolar_graph()
    params = plan_design(ir).params
    assert set(np.unique(params["xnor"][0].values)) <= {0, 1}
    assert params["xnor"][0].ctype == "ap_uint<1>"
    # bipolar weights with integer inputs multiply as -1/+1
    assert params["bip_w"][0].ctype == "ap_int<2>"
    assert set(np.unique(params["bip_w"][0].values)) <= {-1, 1}


# -- generated text: names, quoting, determinism ----------------------------------------------


@pytest.mark.parametrize("bad", ["a b", "x;y", "1abc", 'q"', "a{b}", "", "ünï"])
def test_only_identifiers_reach_generated_code(bad):
    with pytest.raises(ValueError):
        ident(bad)


@pytest.mark.parametrize("bad", ["a}b", "x{", "a\\b", "two\nlines"])
def test_tcl_words_refuse_what_braces_cannot_quote(bad):
    with pytest.raises(ValueError):
        tcl_word(bad)


def test_c_initializer_nests_like_the_shape():
    assert c_initializer(np.arange(6).reshape(2, 3)) == "{{0, 1, 2}, {3, 4, 5}}"
    long = c_initializer(np.arange(100), width=40)
    assert all(len(line) <= 40 for line in long.splitlines())
    assert long.replace("\n", " ").replace("  ", " ") == "{" + ", ".join(map(str, range(100))) + "}"


def test_generated_files_are_deterministic(tmp_path):
    ir = conv_graph()
    x = random_values(np.random.default_rng(0), D("INT3"), (3, *ir.input.shape))
    for d in ("a", "b"):
        write_hls(ir, tmp_path / d, x, ir.execute(x))
    for f in sorted((tmp_path / "a").rglob("*")):
        if f.is_file():
            assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes()


# -- Vitis HLS script --------------------------------------------------------------------------


def test_vitis_script_passes_tclsh_and_runs_all_four_steps(tmp_path):
    ir = bipolar_graph()
    x = random_values(np.random.default_rng(0), BIPOLAR, (2, 16))
    write_hls(ir, tmp_path / "hls", x, ir.execute(x), part="xczu3eg-sbva484-1-i", period_ns=5)
    calls = check_tcl(tmp_path / "hls" / "run_hls.tcl")
    names = [c[0] for c in calls]
    steps = ["csim_design", "csynth_design", "cosim_design", "export_design"]
    assert [n for n in names if n in steps] == steps
    assert set(names) - {"cd", "exit"} == set(VITIS_COMMANDS)
    assert ["set_part", "xczu3eg-sbva484-1-i"] in calls
    assert ["set_top", "gatemill_top"] in calls
    assert ["export_design", "-format", "ip_catalog"] in calls
    assert ["create_clock", "-period", "5", "-name", "default"] in calls
    # every file the script adds exists
    for c in calls:
        if c[0] == "add_files":
            path = next(a for a in c[1:] if not a.startswith("-") and a != "-std=c++14")
            assert (tmp_path / "hls" / path).exists(), path


def test_tcl_check_finds_an_unclosed_brace(tmp_path):
    bad = tmp_path / "bad.tcl"
    bad.write_text("open_project p\nset_part {xc7z020\ncsim_design\n")
    with pytest.raises(GatemillError, match="from line 2 is incomplete"):
        check_tcl(bad)


def test_part_and_clock_come_from_the_board_then_the_options(tmp_path):
    (tmp_path / "myboard.toml").write_text('part = "xczu7ev-ffvc1156-2-e"\nclock_mhz = 200.0\n')
    (tmp_path / "open.toml").write_text('part = "LFE5U-85F-6BG381C"\nfamily = "ecp5"\n')
    assert board_settings("myboard", tmp_path) == ("xczu7ev-ffvc1156-2-e", 200.0)
    t = resolve_target(HlsConfig(build=tmp_path, board="myboard"), tmp_path)
    assert (t["part"], t["clock_ns"]) == ("xczu7ev-ffvc1156-2-e", 5.0)
    t = resolve_target(HlsConfig(build=tmp_path, board="myboard", part="xc7z010clg400-1"), tmp_path)
    assert (t["part"], t["part_source"]) == ("xc7z010clg400-1", "--part")
    t = resolve_target(HlsConfig(build=tmp_path), tmp_path)
    assert (t["part"], t["clock_ns"]) == ("xc7z020clg400-1", 10.0)
    with pytest.raises(GatemillError, match="no such board"):
        board_settings("../myboard", tmp_path)
    with pytest.raises(GatemillError, match="ECP5"):
        board_settings("open", tmp_path)
    with pytest.raises(GatemillError, match="--part"):
        HlsConfig(build=tmp_path, part="xc7{z020}")


def test_not_a_build_folder_is_refused(tmp_path):
    with pytest.raises(GatemillError, match="not a gatemill build folder"):
        run_hls(HlsConfig(build=tmp_path))


# -- a Brevitas model end to end, and the hls4ml peer -----------------------------------------


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    d = tmp_path_factory.mktemp("hls_mlp")
    # power-of-two scales, no BatchNorm: the float path is exact, so hls4ml can be too
    model = export(
        mlp([12, 8, 6, 3], wbits=3, abits=2, bn=False, pot=True, seed=5), (12,), d / "mlp.onnx"
    )
    run_build(BuildConfig(model=model, out=d / "b", until="rtl"))
    return d / "b"


def test_gatemill_hls_on_a_build(small_build):
    r = run_hls(HlsConfig(build=small_build, vitis=False))
    assert r["csim"]["mismatches"] == 0 and r["csim"]["vectors"] == 100
    assert r["part"] == "xc7z020clg400-1"
    m = json.loads((small_build / "hls" / "manifest.json").read_text())
    assert m["input"]["shape"] == [12] and m["output"]["shape"] == [3]
    assert (small_build / "hls" / "run.sh").stat().st_mode & 0o111


def test_hls4ml_peer_on_the_same_model(small_build):
    r = run_hls(HlsConfig(build=small_build, via="hls4ml"))["hls4ml"]
    saved = json.loads((small_build / "hls" / "hls4ml.json").read_text())
    assert saved["mismatches"] == r["mismatches"]
    assert r["vectors"] == 100 and r["elements"] == 300
    assert r["compile_seconds"] > 0 and r["predict_seconds"] >= 0
    assert r["mismatches"] == 0 and r["exact"], r
