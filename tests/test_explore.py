"""Design-space exploration (flow/dse/explore.py): the sweep, the Pareto front, and one run on a
Dask LocalCluster with Yosys on two points of a small MLP."""

from __future__ import annotations

import json

import pytest
from brevitas_models import export, mlp
from dask import distributed

from gatemill.flow.dse.estimate import estimate_point
from gatemill.flow.dse.explore import pareto_front, spread, sweep
from gatemill.flow.errors import GatemillError
from gatemill.flow.import_step import run_import
from gatemill.flow.kinds import load_ir
from gatemill.flow.steps.explore import ExploreConfig, run_explore


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("explore")
    model = export(mlp([16, 16, 8, 4], wbits=2, abits=2, in_bits=4, seed=0), (16,), d / "m.onnx")
    run_import(model, d / "imp", seed=0)
    return {"dir": d, "model": model, "ir": load_ir(d / "imp")}


def test_spread_takes_both_ends():
    assert spread(6, 3) == [0, 2, 5]
    assert spread(2, 5) == [0, 1] and spread(5, 1) == [0] and spread(5, 0) == []


def test_pareto_front():
    pts = [
        {"samples_per_s": 10, "lut": 100},
        {"samples_per_s": 5, "lut": 200},  # dominated by 0
        {"samples_per_s": 20, "lut": 300},
        {"samples_per_s": 1, "lut": 50},
        {"samples_per_s": 1},  # not synthesized
    ]
    assert pareto_front(pts, "lut") == [3, 0, 2]


def test_sweep_is_monotonic(small):
    ir = small["ir"]
    points = [estimate_point(ir, f, 100.0) for _, f in sweep(ir, 6)]
    iis = [p["ii_cycles"] for p in points]
    assert iis == sorted(iis) and iis[0] < iis[-1]
    assert len({json.dumps(p["folding"], sort_keys=True) for p in points}) == len(points)
    # the slowest folding is the cheapest estimate
    assert points[-1]["est_lut"] == min(p["est_lut"] for p in points)
    assert points[0]["samples_per_s"] == 100e6 / iis[0]


def test_bad_points():
    with pytest.raises(GatemillError, match="--points"):
        ExploreConfig(model="m.onnx", board="pynq-z2", out="o", points=0)


def test_explore_on_a_dask_local_cluster(small):
    out = small["dir"] / "ex"
    # any free port for its HTTP server: another cluster on the machine may hold dask's 8787
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        cfg = ExploreConfig(
            model=small["model"],
            board="pynq-z2",
            out=out,
            points=4,
            synth_points=2,
            scheduler=cluster.scheduler_address,
        )
        report = run_explore(cfg)
    assert json.loads((out / "explore.json").read_text()) == report
    assert (out / "pareto.svg").stat().st_size > 0 and (out / "pareto.png").stat().st_size > 0
    syn = [p for p in report["points"] if "lut" in p]
    assert len(syn) == 2
    for p in syn:
        assert p["lut"] > 0 and (out / p["dir"] / "synth.json").is_file()
        assert p["lut_error"] == round((p["est_lut"] - p["lut"]) / p["lut"], 3)
    # the fastest and slowest points are synthesized; the fastest is never slower
    assert syn[0]["ii_cycles"] < syn[-1]["ii_cycles"]
    assert report["pareto_synthesized"] and report["lut_error"]["mean_abs"] is not None
