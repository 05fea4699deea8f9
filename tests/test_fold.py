"""The default folding rule and folding files (flow/dse/fold.py), checked against the
units' own cycle estimates."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from brevitas_models import cnn, export, mlp

from gatemill.flow.dse import apply_folding, default_folding, load_folding
from gatemill.flow.dse.fold import fold_for_ii
from gatemill.flow.errors import GatemillError
from gatemill.flow.frontend import import_qonnx
from gatemill.hdl.plan import estimates, plan


@pytest.fixture(scope="module")
def cnn_ir(tmp_path_factory):
    path = export(
        cnn(1, 8, [(16, 3, 1, 1), (32, 3, 1, 1)], [64, 10], seed=1),
        (1, 8, 8),
        tmp_path_factory.mktemp("c") / "c.onnx",
    )
    return import_qonnx(path).ir


@pytest.mark.parametrize("target", [576, 1200, 5000])
def test_every_stage_meets_the_target(cnn_ir, target):
    ir = apply_folding(cnn_ir, fold_for_ii(cnn_ir, target))
    est = estimates(plan(ir))
    assert est["ii_cycles"] <= target
    for stage in plan(ir):
        assert stage.ii <= target, stage


def test_balanced_folding_is_cheaper_for_slower_targets(cnn_ir):
    def lanes(ir):
        return sum(layer.pe * layer.simd for layer in ir.layers if layer.kind == "MatrixVector")

    fast = apply_folding(cnn_ir, fold_for_ii(cnn_ir, 576))
    slow = apply_folding(cnn_ir, fold_for_ii(cnn_ir, 5000))
    assert lanes(slow) < lanes(fast)


def test_default_folding_is_bound_by_the_first_window(cnn_ir):
    ir = apply_folding(cnn_ir, default_folding(cnn_ir))
    # one input channel: the first sliding window emits 8*8*9 single-element beats per sample
    assert estimates(plan(ir))["ii_cycles"] == 8 * 8 * 9


def test_small_mlp_is_fully_parallel(tmp_path):
    ir = import_qonnx(export(mlp([16, 8, 4]), (16,), tmp_path / "m.onnx")).ir
    ir = apply_folding(ir, default_folding(ir))
    assert all(layer.pe == layer.mh and layer.simd == layer.mw for layer in ir.layers)


def test_folding_file_errors(tmp_path, cnn_ir):
    bad = tmp_path / "f.json"
    bad.write_text("{not json")
    with pytest.raises(GatemillError, match="not valid JSON"):
        load_folding(bad)
    looks_like = r'A folding file looks like \{"layers": \{"fc0": \{"pe": 4, "simd": 8\}\}\}'
    for doc, what in (
        ({"conv0": 4}, 'it has no "layers" object at the top'),
        ([1, 2], 'it has no "layers" object at the top'),
        ({"layers": [1]}, '"layers" is a list, not an object'),
        ({"layers": {"conv0": 4}}, "\"layers\" -> 'conv0' is 4, not an object of options"),
    ):
        bad.write_text(json.dumps(doc))
        with pytest.raises(GatemillError) as info:
            load_folding(bad)
        assert what in str(info.value) and "}}}}" not in str(info.value)
        assert re.search(looks_like, str(info.value))
    conv = next(layer for layer in cnn_ir.layers if layer.kind == "MatrixVector")
    with pytest.raises(GatemillError, match="simd must divide 1"):
        apply_folding(cnn_ir, {conv.name: {"simd": 3}})
    with pytest.raises(GatemillError, match="no option"):
        apply_folding(cnn_ir, {conv.name: {"depth": 3}})
    for value in (2.5, None, True):
        with pytest.raises(
            GatemillError, match=f"option pe must be an integer or a word, not {value!r}"
        ):
            apply_folding(cnn_ir, {conv.name: {"pe": value}})
    with pytest.raises(GatemillError, match=r"pe must be a positive divisor of \d+, not '4'"):
        apply_folding(cnn_ir, {conv.name: {"pe": "4"}})


@pytest.mark.parametrize("fps", [1e6, 1e7, 1e8])
def test_target_rate_is_met_with_growing_parallelism(tmp_path_factory, fps):
    from gatemill.flow.dse import folding_for_rate

    path = export(mlp([64, 64, 64, 10], seed=2), (64,), tmp_path_factory.mktemp("r") / "m.onnx")
    ir = import_qonnx(path).ir
    folding, ii = folding_for_rate(ir, fps, 100.0)
    assert ii <= 100e6 / fps
    assert estimates(plan(apply_folding(ir, folding)))["ii_cycles"] == ii


def test_impossible_rate_names_the_best_reachable(cnn_ir):
    from gatemill.flow.dse import folding_for_rate

    with pytest.raises(GatemillError, match=r"at most [\d,]+ samples/s") as e:
        folding_for_rate(cnn_ir, 1e9, 100.0)
    assert "conv0" in str(e.value) or "window" in str(e.value)


@pytest.fixture(scope="module")
def mlp_ir(tmp_path_factory):
    path = export(mlp([64, 64, 64, 10], seed=2), (64,), tmp_path_factory.mktemp("r") / "m.onnx")
    return import_qonnx(path).ir


@pytest.mark.parametrize("max_lut", [3_000, 10_000, 40_000])
def test_max_lut_picks_the_fastest_folding_within_it(mlp_ir, max_lut):
    from gatemill.flow.dse.budget import fastest_within
    from gatemill.flow.dse.estimate import estimate_point
    from gatemill.flow.dse.fold import candidate_iis

    folding, est = fastest_within(mlp_ir, max_lut, 100.0)
    assert est["est_lut"] <= max_lut
    assert estimate_point(mlp_ir, folding, 100.0)["ii_cycles"] == est["ii_cycles"]
    # every faster balanced folding is over the budget
    for target in (t for t in candidate_iis(mlp_ir) if t < est["ii_cycles"]):
        assert estimate_point(mlp_ir, fold_for_ii(mlp_ir, target), 100.0)["est_lut"] > max_lut


def test_max_lut_too_small_for_the_target_names_what_fits(mlp_ir):
    from gatemill.flow.dse import folding_for_rate

    with pytest.raises(GatemillError, match=r"more than --max-lut 5000.*samples/s"):
        folding_for_rate(mlp_ir, 1e7, 100.0, max_lut=5000)
    with pytest.raises(GatemillError, match="even the slowest folding"):
        folding_for_rate(mlp_ir, 1e3, 100.0, max_lut=10)


@pytest.fixture(scope="module")
def dsp_mlp_ir(tmp_path_factory):
    """8-bit inputs times 4-bit weights: every product of the first layer is a DSP block."""
    path = export(
        mlp([64, 64, 10], wbits=4, abits=4, seed=2), (64,), tmp_path_factory.mktemp("d") / "m.onnx"
    )
    return import_qonnx(path).ir


def test_fit_board_moves_products_to_luts_then_folds(dsp_mlp_ir):
    """Too many DSP blocks: first the layers that give up most DSPs per LUT build their
    products in LUTs at the same rate, within the board's LUTs; only when LUTs run out too
    is the folding slower."""
    from gatemill.flow.boards import load_board
    from gatemill.flow.dse.budget import LUT_SHARE, fit_board, multiplier_limit
    from gatemill.flow.dse.cost import design_estimate
    from gatemill.flow.dse.fold import for_device

    board = load_board("ulx3s-85f")
    ir = for_device(dsp_mlp_ir, board.clock_mhz, "ecp5")
    limit = multiplier_limit(board.capacity, "ecp5")
    assert limit == int(0.6 * board.capacity["dsp"])
    start = default_folding(ir)
    assert design_estimate(apply_folding(ir, start), "ecp5")["dsp"] > limit
    start_ii = estimates(plan(apply_folding(ir, start)))["ii_cycles"]

    # the LFE5U-85F's LUT4s hold these products at half the rate only (test_build): a part
    # with three times its LUTs takes them at the same rate
    roomy = {**board.capacity, "lut": 3 * board.capacity["lut"]}
    folding, got, limits = fit_board(ir, start, roomy, "ecp5")
    fitted = apply_folding(ir, folding)
    est = design_estimate(fitted, "ecp5")
    assert limits["dsp"] == limit and est["dsp"] == got["dsp"] <= limit
    assert est["lut"] <= LUT_SHARE * roomy["lut"]
    assert estimates(plan(fitted))["ii_cycles"] == start_ii
    assert any(layer.mul == "lut" and layer.kind == "MatrixVector" for layer in fitted.layers)

    # with few LUTs as well, the folding gets slower
    small = {**roomy, "lut": int(1.2 * est["lut"] / LUT_SHARE) // 4}
    folding, _, _ = fit_board(ir, start, small, "ecp5")
    slower = apply_folding(ir, folding)
    assert estimates(plan(slower))["ii_cycles"] > start_ii
    est = design_estimate(slower, "ecp5")
    assert est["dsp"] <= limit and est["lut"] <= LUT_SHARE * small["lut"]

    # within the xc7020's DSP48s the folding is left as it is
    small = fold_for_ii(ir, 64)
    assert fit_board(ir, small, load_board("pynq-z2").capacity, "xc7")[0] is small

    with pytest.raises(GatemillError, match="even the slowest folding of this model needs"):
        fit_board(ir, start, {"dsp": 0, "lut": 10}, "ecp5")


def test_fit_board_moves_weight_bits_to_luts_for_block_ram(tmp_path):
    """A fast layer's shallow weight memory takes more block RAMs than its bits fill (72
    bits a cycle each): with too few, the fewest weight bits a word move into logic, at the
    same rate, until the estimate fits; the folding file carries them and the message
    says so."""
    from gatemill.flow.boards import load_board
    from gatemill.flow.dse.budget import fit_board
    from gatemill.flow.dse.cost import design_estimate
    from gatemill.flow.steps.fold import choose_folding

    path = export(
        mlp([512, 256, 10], wbits=1, abits=1, in_bits=1, seed=4), (512,), tmp_path / "m.onnx"
    )
    ir = import_qonnx(path).ir
    start = fold_for_ii(ir, 256)
    folded = apply_folding(ir, start)
    est = design_estimate(folded)
    assert est["bram"] == 7.5 and est["dsp"] == 0  # 256 words of 512 bits, 72 bits a block
    small = {"lut": 53200, "dsp": 220, "bram36": 6}
    folding, got, limits = fit_board(ir, start, small, "xc7")
    fitted = apply_folding(ir, folding)
    assert got["bram"] == 6 == limits["bram"] and design_estimate(fitted) == got
    assert estimates(plan(fitted))["ii_cycles"] == estimates(plan(folded))["ii_cycles"]
    moved = {n: f["lut_weight_bits"] for n, f in folding.items() if f.get("lut_weight_bits")}
    assert list(moved.values()) == [512 - 6 * 72]  # six blocks of 72 bits left
    # as gatemill build folds for a board
    board = load_board("pynq-z2")
    board = dataclasses.replace(board, capacity={**board.capacity, "bram36": 6})
    _, doc = choose_folding(ir, target_fps=100e6 / 256, board=board)
    ((name, bits),) = moved.items()
    assert doc["layers"][name]["lut_weight_bits"] == bits
    assert f"{bits} weight bits a word of {name} in LUTs" in doc["rule"]
    assert "6 block RAMs (6 used)" in doc["rule"]


def test_too_many_luts_move_thresholds_to_dsp_blocks(tmp_path):
    """Fully parallel with shift-and-add products, a 6-bit MLP's 63-level thresholds are a
    binary search per row in LUTs; with too few LUTs and DSP blocks to spare the greedy
    counts a layer's thresholds on multipliers (thr_mul), a DSP block a row, if that saves
    the most LUTs per block."""
    from gatemill.flow.dse.budget import choose_resources
    from gatemill.flow.dse.cost import design_estimate

    path = export(mlp([16, 32, 5], wbits=6, abits=6, in_bits=8, seed=5), (16,), tmp_path / "m.onnx")
    ir = import_qonnx(path).ir
    (first,) = [x.name for x in ir.layers if x.thresholds is not None]
    folded = apply_folding(ir, {n: {"mul": "lut"} for n in (x.name for x in ir.layers)})
    folded = apply_folding(folded, fold_for_ii(folded, 1))
    est = design_estimate(folded)
    assert est["dsp"] == 0
    limits = {"lut": est["lut"] - 100, "dsp": 220, "bram": 10}
    chosen, got = choose_resources(folded, limits, "xc7")
    layer = next(x for x in chosen.layers if x.name == first)
    assert layer.thr_mul == "dsp" and layer.mul == "lut"
    rows = sum(a is not None for a in layer.affine_counts)
    assert rows > 0 and got["dsp"] == rows and got["lut"] <= limits["lut"]


def test_fit_board_refits_a_design_over_the_luts_alone(tmp_path):
    """DSP blocks and block RAMs to spare but too many LUTs: the board fit moves LUT work to
    DSP blocks at the same rate where that fits, else folds slower; a folding within the LUTs
    is left as it is."""
    from gatemill.flow.dse.budget import LUT_SHARE, fit_board
    from gatemill.flow.dse.cost import design_estimate

    path = export(mlp([16, 32, 5], wbits=6, abits=6, in_bits=8, seed=5), (16,), tmp_path / "m.onnx")
    ir = import_qonnx(path).ir
    ir = apply_folding(ir, {n: {"mul": "lut"} for n in (x.name for x in ir.layers)})
    start = fold_for_ii(ir, 1)
    est = design_estimate(apply_folding(ir, start))
    assert est["dsp"] == 0
    roomy = {"lut": est["lut"] / LUT_SHARE, "dsp": 220, "bram36": 10}
    assert fit_board(ir, start, roomy, "xc7")[0] is start

    # 100 LUTs too many: same rate, some work on DSP blocks
    tight = {**roomy, "lut": (est["lut"] - 100) / LUT_SHARE}
    folding, got, limits = fit_board(ir, start, tight, "xc7")
    fitted = apply_folding(ir, folding)
    assert got["lut"] <= limits["lut"] and 0 < got["dsp"] <= limits["dsp"]
    assert estimates(plan(fitted))["ii_cycles"] == 1

    # no DSP blocks at all: slower
    folding, got, limits = fit_board(ir, start, {**tight, "dsp": 0}, "xc7")
    assert got["lut"] <= limits["lut"] and got["dsp"] == 0
    assert estimates(plan(apply_folding(ir, folding)))["ii_cycles"] > 1


def test_the_rule_names_where_products_moved(tmp_path):
    """At 1e7 samples/s on the PYNQ-Z2 the 8-bit x 4-bit products of the first layer go to
    LUTs (512 would not fit the 220 DSP48s), and the rule says so; the 4-bit x 4-bit ones stay
    in LUTs, where the default rule puts them (with the adder trees on the carry chain they
    fit the LUTs: until a7485ea the estimate moved them to DSP48s, three to a block)."""
    from gatemill.flow.boards import load_board
    from gatemill.flow.steps.fold import choose_folding

    path = export(mlp([64, 64, 64, 10], wbits=4, abits=4, seed=2), (64,), tmp_path / "m.onnx")
    _, doc = choose_folding(import_qonnx(path).ir, target_fps=1e7, board=load_board("pynq-z2"))
    layers = doc["layers"]
    assert (layers["layer_1_Gemm"]["mul"], layers["layer_4_Gemm"]["mul"]) == ("lut", "lut")
    assert "products of layer_1_Gemm in LUTs" in doc["rule"]
    assert "layer_4_Gemm" not in doc["rule"] and "(0 used)" in doc["rule"]


@pytest.mark.parametrize("target", [30, 60, 135, 270, 540])
def test_vector_vector_and_global_sum_are_folded_through_their_options(target):
    """A depthwise CNN (window -> vector-vector, average pool, global sum, dense): every stage
    meets the target (or is at its fastest fold), a window delivers the channels its
    vector-vector layer takes a beat, and each layer's fold is the cheapest that meets the
    target."""
    from test_hls import depthwise_graph

    ir = depthwise_graph()
    folding = fold_for_ii(ir, target)
    folded = apply_folding(ir, folding)
    layers = {layer.name: layer for layer in folded.layers}
    assert layers["win"].simd == layers["dw"].pe and layers["pool_win"].simd == layers["avg"].pe
    for layer, producer in zip(ir.layers, (None, *ir.layers[:-1]), strict=True):
        options = layer.fold_options(producer)
        if not options:
            continue
        fits = [o for o in options if layer.cycles_for(o) <= target]
        assert folding[layer.name] == (fits[0] if fits else options[-1])
    for stage in plan(folded):
        assert stage.ii <= max(target, 270), stage  # 270: the first window at its fastest
    default = apply_folding(ir, default_folding(ir))
    assert estimates(plan(default))["ii_cycles"] == 6 * 5 * 9  # one window element a cycle


def test_default_folding_speeds_up_a_cheap_bottleneck():
    """LFC's shape (784-1024-1024-1024-10, binary): the budget's target leaves the 10-row last
    layer, whose folds are coarse, the bottleneck at 2,560 cycles while the large layers take
    2,048; five lanes instead of four bring it to 2,048 too."""
    from irgraphs import graph, mv

    from gatemill.flow.dse.fold import BALANCE_SHARE, MAC_BUDGET
    from gatemill.flow.ir.datatypes import BIPOLAR

    rng = np.random.default_rng(0)
    sizes = [784, 1024, 1024, 1024, 10]
    layers = [
        mv(rng, f"fc{i}", sizes[i + 1], sizes[i], BIPOLAR, BIPOLAR, t=int(i < 3),
           out_dt=BIPOLAR if i < 3 else None, pe=1, simd=1)
        for i in range(4)
    ]  # fmt: skip
    ir = graph("lfc", (784,), BIPOLAR, layers)
    folded = apply_folding(ir, default_folding(ir))
    assert [layer.cycles() for layer in folded.layers] == [2048] * 4
    assert estimates(plan(folded))["ii_cycles"] == 2048
    lanes = sum(layer.pe * layer.simd for layer in folded.layers)
    budget_only = apply_folding(
        ir, fold_for_ii(ir, -(-sum(layer.macs for layer in ir.layers) // MAC_BUDGET))
    )
    assert budget_only.layers[-1].cycles() == 2560
    assert (
        lanes - sum(layer.pe * layer.simd for layer in budget_only.layers)
        <= MAC_BUDGET // BALANCE_SHARE
    )
