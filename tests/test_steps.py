"""The builder of named steps (flow/steps): skipping unchanged steps, rerunning changed ones,
choosing a subset, interrupted steps, reproducible outputs and the timings file."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from brevitas_models import export, mlp

from gatemill.flow.cli import main
from gatemill.flow.errors import GatemillError
from gatemill.flow.steps import STEP_NAMES, BuildConfig, run_steps
from gatemill.flow.steps.catalog import STEPS
from gatemill.flow.steps.state import State

BOOKKEEPING = {"steps.json", "timings.json"}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("steps")
    return export(mlp([12, 8, 6, 3], wbits=3, abits=2, seed=5), (12,), d / "mlp.onnx")


def files(folder: Path) -> dict[str, bytes]:
    """Every file of a build folder but the builder's own records, by relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in BOOKKEEPING
    }


def test_catalog_names_every_step_and_reads_apart_from_writes():
    assert tuple(STEPS) == STEP_NAMES
    for step in STEPS.values():
        for r in (*step.reads, *step.reads_if_present):
            for w in step.writes:
                assert not (r == w or r.startswith(w + "/") or w.startswith(r + "/")), step.name


def test_second_build_skips_every_step_and_changes_nothing(model, tmp_path, capsys):
    args = ["build", str(model), "--sim", "icarus", "--board", "pynq-z2"]
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    before = files(tmp_path / "b")
    t0 = time.perf_counter()
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err
    for name in ("import", "fold", "rtl", "sim", "synth", "report"):
        assert f"{name}: skipped, inputs unchanged since " in err, err
    assert files(tmp_path / "b") == before
    timings = json.loads((tmp_path / "b" / "timings.json").read_text())
    assert timings["last_run"]["ran"] == []
    print(f"second build: {seconds:.2f} s")  # measured, not asserted: a shared machine

    # the same build in another folder: byte-identical rtl/ and IR, and the same reports
    # but the report's own (which names its folder); the tools' work folders (sim/, synth/)
    # hold the paths they ran in
    assert main([*args, "--out", str(tmp_path / "c")]) == 0
    other = files(tmp_path / "c")
    assert {k for k in other if k.startswith("rtl/")} == {k for k in before if k.startswith("rtl/")}
    same = [
        name
        for name in before
        if name.startswith(("rtl/", "import/"))
        or ("/" not in name and name.endswith((".json", ".npz")) and name != "report.json")
    ]
    assert {"rtl/manifest.json", "sim.json", "synth.json", "import.json", "ir.npz"} <= set(same)
    for name in same:
        assert other[name] == before[name], name


def test_timings_are_in_their_own_file(model, tmp_path):
    run = run_steps(BuildConfig(model=model, out=tmp_path / "b", simulator="icarus"))
    out = run.out
    assert run.ran == ("import", "fold", "rtl", "sim", "report")
    timings = json.loads((out / "timings.json").read_text())["steps"]
    assert set(timings) == set(run.ran)
    assert timings["sim"]["seconds"] > 0 and timings["sim"]["sim_seconds"] > 0
    for name in ("import.json", "rtl/manifest.json", "sim.json", "folding.json"):
        text = (out / name).read_text()
        assert "seconds" not in text, name
    assert json.loads((out / "sim.json").read_text())["log"] == "sim/sim_icarus.log"


def test_changed_inputs_rerun_exactly_what_depends_on_them(model, tmp_path):
    cfg = BuildConfig(model=model, out=tmp_path / "b", simulator="icarus")
    run_steps(cfg)
    # the seed makes the random vectors (import) and the stalls (sim); the IR is the same,
    # so fold and rtl find their inputs unchanged
    run = run_steps(dataclasses.replace(cfg, seed=1))
    assert run.ran == ("import", "sim", "report")
    assert run.skipped == ("fold", "rtl")
    assert "config.seed" in run.status("sim").reason
    assert "reads.golden.npz" in run.status("sim").reason
    # an output removed by hand is made again
    (tmp_path / "b" / "sim.json").unlink()
    run = run_steps(dataclasses.replace(cfg, seed=1))
    assert run.ran == ("sim",) and (tmp_path / "b" / "sim.json").is_file()
    assert run.status("sim").reason == "its outputs were changed or removed"
    # a folding file's content, not its name
    names = list(json.loads((tmp_path / "b" / "folding.json").read_text())["layers"])
    fold = tmp_path / "f.json"
    fold.write_text(json.dumps({"layers": {n: {"pe": 1} for n in names}}))
    run = run_steps(dataclasses.replace(cfg, seed=1, folding=fold))
    assert run.ran == ("fold", "rtl", "sim", "report")
    assert run_steps(dataclasses.replace(cfg, seed=1, folding=fold)).ran == ()
    fold.write_text(json.dumps({"layers": {names[0]: {"pe": 2}}}))  # 8 rows
    assert run_steps(dataclasses.replace(cfg, seed=1, folding=fold)).ran[0] == "fold"


def test_subset_of_steps(model, tmp_path, capsys):
    out = tmp_path / "b"
    with pytest.raises(GatemillError, match=r"the sim step needs rtl.*the rtl step writes it"):
        run_steps(BuildConfig(model=model, out=out, steps="sim"))
    cfg = BuildConfig(model=model, out=out, simulator="icarus", steps=("import", "fold", "rtl"))
    assert run_steps(cfg).ran == ("import", "fold", "rtl")
    assert not (out / "sim.json").exists()
    run = run_steps(BuildConfig(model=model, out=out, simulator="icarus", steps="rtl,sim"))
    assert run.ran == ("sim",) and run.skipped == ("rtl",)
    assert set(run.reports) == {"rtl", "sim"}
    run = run_steps(BuildConfig(model=model, out=out, simulator="icarus", start="rtl", stop="sim"))
    assert [s.name for s in run.steps] == ["rtl", "sim"]
    run = run_steps(BuildConfig(model=model, out=out, simulator="icarus", start="sim"))
    assert [s.name for s in run.steps] == ["sim", "report"]

    assert main(["build", str(model), "--out", str(out), "--steps", "rtl,simm"]) == 2
    err = capsys.readouterr().err
    assert "--steps 'simm': no such step (did you mean sim?)" in err
    assert "import, fold, rtl, sim, synth, fmax, asic, hls, report, bitstream" in err
    assert main(["build", str(model), "--out", str(out), "--from", "fold", "--to", "synth"]) == 2
    assert "the synth step needs a board" in capsys.readouterr().err
    assert main(["build", str(model), "--out", str(out), "--from", "sim", "--to", "rtl"]) == 2
    assert "--from sim comes after --to rtl" in capsys.readouterr().err
    assert main(["build", str(model), "--out", str(out), "--steps", "sim", "--to", "rtl"]) == 2
    assert "--steps names the steps itself" in capsys.readouterr().err


def test_a_step_that_fails_leaves_the_previous_results(model, tmp_path, monkeypatch):
    cfg = BuildConfig(model=model, out=tmp_path / "b", simulator="icarus")
    run_steps(cfg)
    out = tmp_path / "b"
    before = files(out)
    record = State.load(out).get("sim")
    real = STEPS["sim"].run

    def interrupted(ctx):
        real(ctx)  # the staging folder holds a complete new result...
        raise KeyboardInterrupt  # ...when Ctrl-C comes

    monkeypatch.setitem(STEPS, "sim", dataclasses.replace(STEPS["sim"], run=interrupted))
    with pytest.raises(KeyboardInterrupt):
        run_steps(dataclasses.replace(cfg, seed=1))
    after = files(out)
    assert after["sim.json"] == before["sim.json"]
    assert {k for k in after if k.startswith("sim/")} == {k for k in before if k.startswith("sim/")}
    assert State.load(out).get("sim") == record
    assert (out / ".stage" / "sim" / "sim.json").is_file()  # kept for inspection

    monkeypatch.undo()
    run = run_steps(dataclasses.replace(cfg, seed=1))
    assert run.ran == ("sim", "report")  # import finished before the interruption
    assert not (out / ".stage").exists()


def test_ctrl_c_during_synthesis(model, tmp_path):
    out = tmp_path / "b"
    args = ["build", str(model), "--out", str(out), "--until", "rtl", "--board"]
    assert main([*args, "pynq-z2"]) == 0
    before = files(out)
    record = State.load(out).get("synth")
    # another board (same part): the folding is the same, the synthesis is not
    cmd = [sys.executable, "-m", "gatemill.flow.cli", *args, "pynq-z1"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # as in a terminal: a shell's background jobs (CI, this test's runner) may have
        # inherited SIGINT ignored, and Python then installs no KeyboardInterrupt for it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    log = out / ".stage" / "synth" / "synth" / "yosys_0.log"
    deadline = time.monotonic() + 300
    while not log.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the build ended before Yosys started"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    proc.wait(timeout=300)
    after = files(out)
    assert after["synth.json"] == before["synth.json"]
    assert State.load(out).get("synth") == record
    assert json.loads(after["synth.json"])["board"] == "pynq-z2"

    run = run_steps(BuildConfig(model=model, out=out, until="rtl", board="pynq-z1"))
    assert run.ran == ("synth", "report")
    assert json.loads((out / "synth.json").read_text())["board"] == "pynq-z1"
