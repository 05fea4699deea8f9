"""Vivado projects for the Zynq boards and the PYNQ driver (flow/vivado.py).

Vivado is not on this machine: the Tcl is checked with tclsh (every command complete), for its
content (part, processing system, DMA widths), and for names from a hostile model.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import onnx
import pytest
from brevitas_models import export, mlp
from fake_pynq import fake_pynq, import_driver

from gatemill.flow.boards import load_board
from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.kinds import load_ir
from gatemill.flow.tclcheck import check_tcl
from gatemill.flow.textgen import tcl_quote
from gatemill.flow.vivado import write_vivado

XILINX = ["pynq-z1", "pynq-z2", "ultra96-v2", "zcu104"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("v")
    model = export(mlp([12, 10, 4], wbits=4, abits=4, seed=3), (12,), d / "m.onnx")
    run_build(BuildConfig(model=model, out=d / "b", until="rtl"))
    return d / "b"


@pytest.mark.parametrize("board", XILINX)
def test_tcl_is_complete_and_names_the_part_and_ps(built, board):
    b = load_board(board)
    report = write_vivado(built, b, run=False)
    assert not report["ran"] and "run.sh" in report["next"]
    build = (built / "vivado" / "build.tcl").read_text()
    for name in ("build.tcl", "package_ip.tcl"):
        check_tcl(built / "vivado" / name, run=False)  # raises on an incomplete command
    assert f'"{b.part}"' in build
    ps = "processing_system7" if b.ps == "ps7" else "zynq_ultra_ps_e"
    assert f"xilinx.com:ip:{ps}" in build
    m = json.loads((built / "rtl" / "manifest.json").read_text())
    assert f"c_m_axis_mm2s_tdata_width {{{m['input']['tdata_bits']}}}" in build
    assert f"c_s_axis_s2mm_tdata_width {{{m['output']['tdata_bits']}}}" in build
    assert "write_bitstream" in build and ".hwh" in build


def test_open_board_is_refused(built):
    from gatemill.flow.errors import GatemillError

    with pytest.raises(GatemillError, match="no Zynq processing system"):
        write_vivado(built, load_board("ulx3s-85f"), run=False)


def test_tcl_quote_reads_back_as_one_literal_word(tmp_path):
    nasty = 'a "b" [exec rm -rf /] $HOME; {x} \\ end'
    script = tmp_path / "q.tcl"
    script.write_text(
        f"puts -nonewline [llength [list {tcl_quote(nasty)}]]\n"
        f"puts -nonewline [string cat | {tcl_quote(nasty)}]\n"
    )
    out = subprocess.run(["tclsh", str(script)], capture_output=True, text=True).stdout
    assert out == "1|" + nasty


def test_hostile_node_names_give_safe_tcl_and_verilog(tmp_path):
    model = export(mlp([8, 6, 3], wbits=4, abits=4, seed=1), (8,), tmp_path / "m.onnx")
    proto = onnx.load(model)
    for i, node in enumerate(proto.graph.node):
        node.name = f'n"{i}"; [exec touch /tmp/pwned] ${{HOME}} `id`'
    hostile = tmp_path / 'evil"[$x];.onnx'
    onnx.save(proto, hostile)
    out = tmp_path / "b"
    run_build(BuildConfig(model=hostile, out=out, until="rtl"))
    write_vivado(out, load_board("pynq-z2"), run=False)
    raw = ("[exec", "${HOME}", "`id`", '"; ')
    for name in ("build.tcl", "package_ip.tcl"):
        text = (out / "vivado" / name).read_text()
        check_tcl(out / "vivado" / name, run=False)
        assert not any(r in text for r in raw)
    verilog = (out / "rtl" / "gatemill_top.v").read_text()
    assert not any(r in verilog for r in raw)
    for layer in load_ir(out).layers:
        assert layer.name.isidentifier()


def test_pynq_driver_matches_the_golden_model(built, monkeypatch):
    """The driver on a fake PYNQ whose DMA runs the golden model on the packed bytes."""
    write_vivado(built, load_board("pynq-z2"), run=False)
    ir = load_ir(built)
    manifest = json.loads((built / "rtl" / "manifest.json").read_text())
    fake_pynq(monkeypatch, ir, manifest)
    acc = import_driver(monkeypatch, built).Accelerator()
    x = np.random.default_rng(0).normal(size=(25, 12)).astype(np.float32)
    np.testing.assert_array_equal(acc.execute(x), ir.predict(x))
    t = acc.throughput(100)
    assert t["samples"] == 100 and t["samples_per_s"] > 0


def test_the_tcl_check_catches_an_open_brace(tmp_path):
    from gatemill.flow.errors import GatemillError

    bad = tmp_path / "bad.tcl"
    bad.write_text('puts ok\nset_property -dict [list CONFIG.x {1] $cell\nputs "never"\n')
    with pytest.raises(GatemillError, match="from line 2 is incomplete"):
        check_tcl(bad, run=False)
