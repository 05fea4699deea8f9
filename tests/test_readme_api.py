"""The README's Python API snippet runs as written, and its figures are a CLI build's."""

from __future__ import annotations

import json
from pathlib import Path

from gatemill.flow.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN = "<!-- python api snippet"
END = "<!-- end of python api snippet -->"


def snippet() -> str:
    """The Python code between the README's snippet markers."""
    block = README.read_text().split(BEGIN, 1)[1].split(END, 1)[0]
    code = block.split("```python\n", 1)[1].split("```", 1)[0]
    assert "import_model" in code and ".build(" in code
    return code


def test_readme_snippet_matches_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet(), "README.md", "exec"), {"__name__": "readme"})
    lines = capsys.readouterr().out.strip().splitlines()
    mismatches, ii, latency = (int(v) for v in lines[-1].split())
    est_ii, est_latency, _est_lut = (int(v) for v in lines[-2].split())

    args = ["build", "tiny/model.onnx", "--vectors", "tiny/vectors.npz", "--out", "cli"]
    assert main([*args, "--target-fps", "1e7", "--sim", "icarus"]) == 0
    sim = json.loads((tmp_path / "cli" / "sim.json").read_text())
    assert (sim["mismatches"], sim["ii_cycles"], sim["latency_cycles"]) == (
        mismatches,
        ii,
        latency,
    )
    assert (sim["est_ii_cycles"], sim["est_latency_cycles"]) == (est_ii, est_latency)
    assert mismatches == 0 and sim["vectors"] == 360
    # the snippet's build folder holds what the CLI's does
    for name in ("rtl/gatemill_top.v", "folding.json", "golden.npz"):
        assert (tmp_path / "tiny" / "build" / name).read_bytes() == (
            tmp_path / "cli" / name
        ).read_bytes()
