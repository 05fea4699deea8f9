"""The build report (flow/report.py): JSON, self-contained HTML, and what a browser shows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from brevitas_models import export, mlp

from gatemill.flow.build import BuildConfig, run_build


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("r")
    model = export(mlp([10, 8, 3], seed=4), (10,), d / "m.onnx")
    run_build(BuildConfig(model=model, out=d / "b", simulator="icarus"))
    return d / "b"


def test_report_json_gathers_the_steps(built):
    r = json.loads((built / "report.json").read_text())
    assert r["accuracy"]["golden"] is None  # random vectors have no labels
    assert r["simulation"]["mismatches"] == 0
    assert r["performance"]["ii_cycles"] == r["performance"]["est_ii_cycles"]
    assert [layer["kind"] for layer in r["layers"]] == ["MatrixVector", "MatrixVector"]
    assert all("cycles" in layer and "pe" in layer for layer in r["layers"])
    # this build among the other balanced foldings, every one estimated
    points = r["pareto"]["points"]
    this = [p for p in points if p.get("this_build")]
    assert len(this) == 1 and len(points) > 3
    assert this[0]["ii_cycles"] == r["performance"]["ii_cycles"]
    assert r["pareto"]["pareto_estimated"]


def test_report_html_is_self_contained(built):
    html = (built / "report.html").read_text()
    assert "<svg" in html and 'id="layers"' in html
    assert 'src="http' not in html and 'href="http' not in html


def test_report_opens_in_headless_chromium(built, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by make (system packages)"
    png = tmp_path / "report.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,1400",
    ]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", (built / "report.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    for table in ("accuracy", "performance", "layers"):
        assert f'id="{table}"' in dom
    assert 'id="plot-cycles"' in dom and 'id="plot-pareto"' in dom and "<svg" in dom
    subprocess.run(
        [chromium, *flags, f"--screenshot={png}", (built / "report.html").as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert png.stat().st_size > 20_000  # a rendered page with tables and a plot, not a blank


def test_samples_per_s_at_the_measured_fmax(built, tmp_path):
    from gatemill.flow.report import clock_for_rate, write_report

    out = tmp_path / "b"
    shutil.copytree(built, out)
    r = json.loads((out / "report.json").read_text())
    ii = r["performance"]["ii_cycles"]
    # no board, no Fmax: the assumed clock, and the report says so
    assert (r["performance"]["clock_mhz"], r["performance"]["clock_source"]) == (100.0, "assumed")
    (out / "fmax").mkdir()
    fmax = {"board": "ulx3s-85f", "part": "LFE5U-85F-6BG381C", "fmax_mhz": 61.5}
    (out / "fmax" / "fmax.json").write_text(json.dumps({**fmax, "target_mhz": 25.0, "met": True}))
    r = write_report(out)
    perf = r["performance"]
    assert (perf["clock_mhz"], perf["clock_source"]) == (61.5, "fmax")
    assert perf["samples_per_s"] == 61.5e6 / ii and "ulx3s-85f" in perf["clock_note"]
    html = (out / "report.html").read_text()
    assert 'id="clock-source"' in html and "Fmax measured on ECP5" in html and 'id="fmax"' in html
    # the other foldings have no Fmax: the Pareto plot stays at the nominal clock
    assert r["pareto"]["clock_mhz"] == 100.0
    # an Fmax older than the RTL belongs to an earlier design
    manifest = out / "rtl" / "manifest.json"
    manifest.write_text(manifest.read_text())
    os.utime(out / "fmax" / "fmax.json", (0, 0))
    assert write_report(out)["performance"]["clock_source"] == "assumed"
    # the board's clock without a measurement; the bitstream's Fmax before the core's
    synth = {"board": "ulx3s-85f", "clock_mhz": 25.0}
    assert clock_for_rate(synth, None, None)[:2] == (25.0, "board")
    assert clock_for_rate(synth, fmax, {"fmax_mhz": 58.0})[:2] == (58.0, "bitstream")


def test_report_shows_what_sparsity_saved(tmp_path):
    """A pruned layer made fully parallel (constant weights, shift and add) builds no
    product for its zero weights: the report names their share and the estimated saving
    against the same layer unpruned; a folded one stores its zeros and saves nothing."""
    import dataclasses

    import numpy as np

    from gatemill.flow.dse.fold import apply_folding
    from gatemill.flow.import_step import run_import
    from gatemill.flow.kinds import load_ir, save_ir
    from gatemill.flow.report import sparsity_savings

    model = export(mlp([16, 12, 4], wbits=6, abits=6, seed=5), (16,), tmp_path / "m.onnx")
    run_import(model, tmp_path / "b", seed=0)
    ir = load_ir(tmp_path / "b")
    rng = np.random.default_rng(0)
    layers = []
    for layer in ir.layers:
        if layer.kind == "MatrixVector":
            w = np.where(rng.random(layer.weights.shape) < 0.8, 0, layer.weights)
            layer = dataclasses.replace(layer, weights=w)
        layers.append(layer)
    ir = dataclasses.replace(ir, layers=tuple(layers))
    first, last = (layer.name for layer in ir.layers if layer.kind == "MatrixVector")
    ir = apply_folding(ir, {first: {"pe": 12, "simd": 16, "mul": "lut"}, last: {"pe": 1}})
    save_ir(ir, tmp_path / "b")
    saved = sparsity_savings(tmp_path / "b", "xc7")
    assert saved[first]["share"] > 0.6 and saved[first]["est_saved"]["lut"] > 0
    assert "zero: about" in saved[first]["text"]
    assert saved[last]["est_saved"]["lut"] <= 0.05 * abs(saved[first]["est_saved"]["lut"])
