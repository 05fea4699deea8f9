"""Fmax of the core on ECP5, out of context (flow/synth/fmax.py): device options, the fit check
before place and route, a real Yosys + nextpnr-ecp5 run on a tiny MLP, the CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from brevitas_models import export, mlp

from gatemill.flow.boards import load_board
from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.cli import main
from gatemill.flow.errors import GatemillError, ToolError
from gatemill.flow.synth import fmax

# the OrangeCrab's LFE5U-25F: the smallest chip database, so nextpnr starts in seconds
BOARD = "orangecrab-25f"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An 8-4-2 MLP (w2a2), fully parallel: about 450 LUT4s and 2 multipliers on ECP5."""
    d = tmp_path_factory.mktemp("fmax")
    model = export(mlp([8, 4, 2], wbits=2, abits=2, seed=5), (8,), d / "mlp.onnx")
    run_build(BuildConfig(model=model, out=d / "b", until="rtl"))
    return d / "b"


def small_board(tmp_path, **capacity):
    """An ECP5 board file with the given capacity (others as the OrangeCrab's)."""
    cap = {"lut": 24288, "ff": 24288, "ebr": 56, "dsp": 28, **capacity}
    p = tmp_path / "small.toml"
    p.write_text(
        'name = "small"\npart = "LFE5U-25F-8MG285C"\nfamily = "ecp5"\nclock_mhz = 48.0\n'
        "[capacity]\n"
        + "".join(f"{k} = {v}\n" for k, v in cap.items())
        + '[platform]\nclass = "amaranth_boards.orangecrab_r0_2:OrangeCrabR0_2_25FPlatform"\n'
    )
    return p


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def test_nextpnr_device_options():
    assert fmax.nextpnr_device(load_board("ulx3s-85f")) == [
        "--85k",
        "--package",
        "CABGA381",
        "--speed",
        "6",
    ]
    assert fmax.nextpnr_device(load_board(BOARD)) == [
        "--25k",
        "--package",
        "CSFBGA285",
        "--speed",
        "8",
    ]
    with pytest.raises(GatemillError, match="needs nextpnr"):
        fmax.nextpnr_device(load_board("pynq-z2"))


def test_unknown_part_is_refused(tmp_path):
    p = small_board(tmp_path)
    p.write_text(p.read_text().replace("LFE5U-25F-8MG285C", "LFE5U-99F-8MG285C"))
    with pytest.raises(GatemillError, match="LFE5U-99F-8MG285C"):
        fmax.nextpnr_device(load_board(p))


def test_fit_check_names_the_resource_and_the_remedy():
    board = load_board("ulx3s-85f")
    figures = {"lut": 12000, "ff": 3000, "bram": 5, "dsp": 276}
    over = fmax.over_capacity(figures, board)
    assert [(o["resource"], o["used"], o["capacity"]) for o in over] == [("dsp", 276, 156)]
    with pytest.raises(GatemillError) as e:
        fmax.check_fits(over, board, design="d")
    text = str(e.value)
    assert "276 MULT18X18D multipliers of 156 (120 too many)" in text
    assert "nextpnr was not run" in text and "--target-fps" in text
    with pytest.raises(GatemillError, match=r"--folding d/s\.json"):
        fmax.check_fits(over, board, design="d", suggestion_file="d/s.json")
    # block RAM does not fold away
    with pytest.raises(GatemillError, match="does not shrink with folding"):
        fmax.check_fits(fmax.over_capacity({"bram": 300}, board), board, design="d")
    fmax.check_fits(fmax.over_capacity({"lut": 10}, board), board, design="d")


def test_fmax_of_a_tiny_design(tiny):
    r = fmax.measure_fmax(tiny, load_board(BOARD))
    assert r["fmax_mhz"] > 0 and isinstance(r["met"], bool) and r["target_mhz"] == 48.0
    assert r["met"] == (r["fmax_mhz"] >= r["target_mhz"])
    assert r["utilization"]["MULT18X18D"]["used"] == r["synthesized"]["dsp"] > 0
    # nextpnr places Yosys's flip-flops but those moved into multipliers and block RAMs
    moved = r["registers_absorbed"]["flip_flops"]
    assert r["utilization"]["TRELLIS_FF"]["used"] == r["synthesized"]["ff"] - moved > 0
    # its products by constant weights: both operands registered or neither (nextpnr times a
    # multiplier with one registered operand as if none were)
    netlist = json.loads((tiny / "fmax" / "core.json").read_text())
    (top,) = [m for m in netlist["modules"].values() if m["attributes"].get("top")]
    mults = [c["parameters"] for c in top["cells"].values() if c["type"] == "MULT18X18D"]
    modes = {(p.get("REG_INPUTA_CLK", "NONE"), p.get("REG_INPUTB_CLK", "NONE")) for p in mults}
    assert modes == {("CLK0", "CLK0")}
    assert r["registers_absorbed"]["mult_input_registers"] == 2 * len(mults)
    assert r["seconds"]["yosys"] > 0 and r["seconds"]["nextpnr"] > 0
    assert "--out-of-context" in r["options"] and r["tools"]["nextpnr-ecp5"]
    work = tiny / "fmax"
    # the file holds the results; this run's times are the returned report's (and the
    # builder's timings.json)
    saved = json.loads((work / "fmax.json").read_text())
    assert saved == {k: v for k, v in r.items() if k not in ("seconds", "cpu_seconds")}
    for name in ("core.json", "report.json", "nextpnr.log", "yosys.log", "synth.ys"):
        assert (work / name).exists(), name


def test_oversized_design_is_refused_before_nextpnr(tiny, tmp_path, monkeypatch):
    out = tmp_path / "b"
    shutil.copytree(tiny, out, ignore=shutil.ignore_patterns("fmax"))

    def nextpnr(*args, **kwargs):
        raise AssertionError("nextpnr ran")

    monkeypatch.setattr(fmax, "run_tool", nextpnr)
    # no synth.json: the netlist's own cells are checked
    with pytest.raises(GatemillError) as e:
        fmax.measure_fmax(out, load_board(small_board(tmp_path, lut=100)))
    assert "LUT4s of 100" in str(e.value) and "core.json" in str(e.value)
    assert (out / "fmax" / "core.json").exists()
    # too many multipliers: Yosys stops once they are mapped, before mapping the LUTs
    with pytest.raises(GatemillError) as e:
        fmax.measure_fmax(out, load_board(small_board(tmp_path, dsp=1)))
    assert "MULT18X18D multipliers of 1 (" in str(e.value) and "--target-fps" in str(e.value)
    assert not (out / "fmax" / "core.json").exists()


def test_oversized_design_is_refused_through_the_cli(tiny, tmp_path, capsys):
    out = tmp_path / "b"
    shutil.copytree(tiny, out, ignore=shutil.ignore_patterns("fmax"))
    board = small_board(tmp_path, dsp=1)
    code, text = run(["synth", out, "--board", board, "--fmax"], capsys)
    assert code == 2 and "Traceback" not in text
    # synth.json already says it: refused before the Fmax flow's own Yosys run
    assert "MULT18X18D multipliers of 1" in text and "synth.json" in text, text
    assert not (out / "fmax").exists()


def test_xilinx_board_is_refused_through_the_cli(tiny, capsys):
    code, text = run(["synth", tiny, "--board", "pynq-z2", "--fmax"], capsys)
    assert code == 2 and "Traceback" not in text
    assert "nextpnr" in text and "ECP5" in text


def test_a_failing_nextpnr_names_itself_and_its_log(tiny, tmp_path, monkeypatch):
    out = tmp_path / "b"
    shutil.copytree(tiny, out, ignore=shutil.ignore_patterns("fmax"))
    monkeypatch.setattr(fmax, "NEXTPNR", "false")
    with pytest.raises(ToolError) as e:
        fmax.measure_fmax(out, load_board(BOARD))
    assert e.value.tool == "nextpnr-ecp5" and str(e.value.log).endswith("nextpnr.log")
    assert "--out-of-context" in e.value.command


def test_registers_kept_apart_stay_one_per_register(tmp_path):
    """Two registers of the same value merge into one flip-flop in Yosys, unless marked
    KEEP_APART: the ECP5 place-and-route script keeps those one per register written, so
    each can sit next to its own loads."""
    from amaranth.back import verilog
    from amaranth.hdl import Cat, Module, Signal

    from gatemill.flow.synth.yosys import KEEP_APART_SCRIPT, run_yosys
    from gatemill.hdl.common import KEEP_APART

    m = Module()
    a, en = Signal(4), Signal()
    # registers with an enable and no reset, as the weight registers are
    apart = [Signal(name=f"apart{k}", attrs={KEEP_APART: 1}, reset_less=True) for k in range(3)]
    merged = [Signal(name=f"merged{k}", reset_less=True) for k in range(3)]
    y = Signal(6)
    with m.If(en):
        m.d.sync += [r.eq(a[0]) for r in apart] + [r.eq(a[2] & a[3]) for r in merged]
    m.d.comb += y.eq(Cat(r & a[k % 4] for k, r in enumerate(apart + merged)))
    (tmp_path / "t.v").write_text(verilog.convert(m, ports=[a, en, y], name="t"))
    script = [
        "read_verilog t.v",
        "hierarchy -top t",
        KEEP_APART_SCRIPT,
        "synth_ecp5 -noabc9 -top t",
        "tee -q -o stat.json stat -json",
    ]
    (tmp_path / "t.ys").write_text("\n".join(script) + "\n")
    run_yosys(tmp_path, "t.ys", "yosys.log", timeout=300)
    cells = json.loads((tmp_path / "stat.json").read_text())["modules"]["\\t"]
    # one flip-flop each (with its enable, no LUT in front), the others merged into one
    assert cells["num_cells_by_type"]["TRELLIS_FF"] == 3 + 1
    assert cells["num_cells_by_type"]["LUT4"] == 6 + 1  # the outputs' ANDs, the inputs' AND
