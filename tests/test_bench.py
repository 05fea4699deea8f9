"""bench/run.py: one design through every column, and the README's table = results.json."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from brevitas_models import export, mlp

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_design_fills_every_column(bench, tmp_path):
    def make(d):
        return export(mlp([16, 8, 4], wbits=4, abits=4, seed=3), (16,), d / "m.onnx")

    row = bench.bench_one("tiny mlp", make, {"ii": 8}, fmax=True, hls=True, work=tmp_path / "work")
    assert row["errors"] == {}
    assert row["mismatches"] == 0 and row["golden_vs_qonnx_mismatches"] == 0
    assert row["ii"] == row["est_ii"] <= 8 and row["latency"] == row["est_latency"]
    assert row["samples_per_s"] == round(100e6 / row["ii"])
    assert row["lut"] > 0 and row["ff"] > 0
    assert row["fmax_mhz"] > 0
    assert row["hls4ml_exact"].split("/")[0] == row["hls4ml_exact"].split("/")[1]
    for key, _ in bench.COLUMNS:
        assert key in row, key


def test_readme_table_is_the_committed_results(bench):
    readme = (ROOT / "README.md").read_text()
    table = readme.split(bench.README_BEGIN, 1)[1].split(bench.README_END, 1)[0]
    path = ROOT / "bench" / "results.json"
    if not path.exists():  # no run committed: no table either
        assert table.strip() == ""
        return
    results = json.loads(path.read_text())
    assert results["mode"] == "full"
    assert table.strip() == bench.markdown_table(results).strip()


def test_update_readme_replaces_only_the_table(bench, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{bench.README_BEGIN}\nold\n{bench.README_END}\nafter\n")
    results = {
        "mode": "full",
        "seconds": 1.0,
        "machine": "m",
        "xilinx_board": "pynq-z2",
        "ecp5_board": None,
        "rows": [{"design": "a", "lut": 12345, "errors": {"sim": "boom"}}],
        "anchors": [],
        "notes": [],
    }
    bench.update_readme(results, readme)
    bench.update_readme(results, readme)  # idempotent
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith("\nafter\n")
    assert "old" not in text and "| a |" in text and "12,345" in text and "a, sim: boom" in text


def test_run_first_names_designs(bench):
    assert set(bench.RUN_FIRST) <= set(bench.DESIGNS)


def test_ecp5_build_is_built_for_the_ecp5(bench, tmp_path, monkeypatch):
    """The ECP5 copy keeps the row's folding with the pipelines for ECP5_CLOCK_MHZ; with
    too few MULT18s its products go to LUTs at the same rate, and with too few LUTs as
    well it folds slower."""
    from gatemill.flow.boards import load_board
    from gatemill.flow.dse.budget import DSP_SHARE
    from gatemill.flow.dse.cost import design_estimate
    from gatemill.flow.dse.fold import apply_folding, fold_for_ii
    from gatemill.flow.import_step import run_import
    from gatemill.flow.kinds import load_ir, save_ir
    from gatemill.flow.kinds.matrix_vector import pipeline_for_clock
    from gatemill.flow.rtl_step import run_rtl

    model = export(mlp([16, 8, 4], wbits=6, abits=4, seed=3), (16,), tmp_path / "m.onnx")
    out = tmp_path / "build"
    run_import(model, out, None, seed=0)
    ir = apply_folding(load_ir(out), fold_for_ii(load_ir(out), 1), "test")
    save_ir(ir, out)
    run_rtl(ir, out)

    build, ii = bench.ecp5_build(out)
    folded = load_ir(build)
    assert build == tmp_path / "ecp5" and ii == 1
    assert (build / "rtl" / "manifest.json").is_file()
    depth = pipeline_for_clock(bench.ECP5_CLOCK_MHZ, "ecp5")
    assert all(layer.pipeline == depth for layer in folded.layers if layer.kind == "MatrixVector")
    dsp = design_estimate(folded, "ecp5")["dsp"]
    assert dsp >= 8

    mult18 = load_board(bench.ECP5_BOARD).capacity["dsp"]
    monkeypatch.setitem(DSP_SHARE, "ecp5", dsp / 4 / mult18)
    build, ii = bench.ecp5_build(out)
    folded = load_ir(build)
    assert ii == 1 and design_estimate(folded, "ecp5")["dsp"] <= dsp / 4
    assert any(layer.mul == "lut" for layer in folded.layers if layer.kind == "MatrixVector")

    # LUTs a little short of that design's: a slower folding, with fewer products, fits
    # (with 8-bit activations it would not: their 255 thresholds a channel cost more as
    # folded ROMs than as constants, and no slower folding is smaller)
    lut_limit = 0.99 * design_estimate(folded, "ecp5")["lut"]
    lut_cap = load_board(bench.ECP5_BOARD).capacity["lut"]
    monkeypatch.setattr("gatemill.flow.dse.budget.LUT_SHARE", lut_limit / lut_cap)
    build, ii = bench.ecp5_build(out)
    assert ii > 1 and design_estimate(load_ir(build), "ecp5")["lut"] <= lut_limit


def test_a_place_and_route_past_the_time_limit_reads_timeout(bench, monkeypatch, tmp_path):
    from gatemill.flow.errors import ToolError

    def slow(out):
        raise ToolError("nextpnr-ecp5", ["nextpnr-ecp5", "--85k"], tmp_path / "log",
                        "It did not finish within 600 s.")  # fmt: skip

    monkeypatch.setattr(bench, "ecp5_build", slow)
    cells = bench.fmax_cells(tmp_path, timeout=600)
    assert cells == {
        "fmax_mhz": "timeout",
        "errors": {"ecp5": "ToolError: nextpnr-ecp5 did not finish within 600 s"},
    }


def test_retry_reruns_the_timeouts_it_is_given(bench, monkeypatch, tmp_path):
    """--retry-ecp5 places and routes again the rows that timed out (with --only, those of the
    named designs), keeps the others and says which rows it reran."""
    rows = [
        {"design": "pulses cnn1d", "fmax_mhz": "timeout", "errors": {"ecp5": "timeout"}},
        {"design": "digits deep sets", "fmax_mhz": "timeout", "errors": {"ecp5": "timeout"}},
        {"design": "digits mlp w4a4", "fmax_mhz": 150.0, "errors": {}},
    ]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"rows": rows, "notes": []}))
    reran = []

    def fake_cells(out, timeout):
        reran.append(out.parent.name)
        return {"fmax_mhz": 160.0, "ecp5_ii": 192}

    monkeypatch.setattr(bench, "fmax_cells", fake_cells)
    bench.retry_ecp5(path, work=tmp_path, only=["CNN1D"])
    got = json.loads(path.read_text())
    assert reran == [bench.design_folder("pulses cnn1d", tmp_path).name]
    assert [r["fmax_mhz"] for r in got["rows"]] == [160.0, "timeout", 150.0]
    assert got["rows"][0]["errors"] == {}
    assert "pulses cnn1d" in got["notes"][0] and "deep sets" not in got["notes"][0]
