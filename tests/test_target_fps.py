"""``gatemill build --target-fps``: the chosen foldings meet their target in simulation, and
cost more LUTs (Yosys) the higher the target.

The default suite checks a small random MLP; the slow test does the same on the trained digits
MLP (64-64-64-10, w4a4) at 1 M and 10 M samples/s at 100 MHz (512 products: LUT products where
the DSPs do not suffice), and 100 M is refused: 8,832 products in one cycle fit neither the
PYNQ-Z2's 220 DSPs nor its LUTs.
"""

from __future__ import annotations

import pytest
from brevitas_models import export, mlp

from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.errors import GatemillError

CLOCK_MHZ = 100.0
TARGETS = (1e6, 1e7, 1e8)


def build_at_targets(model, vectors, out, simulator: str, targets=TARGETS) -> list[dict]:
    """Simulated and synthesized builds of *model* at each of *targets* on the PYNQ-Z2."""
    rows = []
    for fps in targets:
        r = run_build(
            BuildConfig(
                model=model,
                out=out / f"fps{fps:g}",
                vectors=vectors,
                target_fps=fps,
                clock_mhz=CLOCK_MHZ,
                simulator=simulator,
                board="pynq-z2",
            )
        )
        rows.append({"fps": fps, **r["sim"], "lut": r["synth"]["lut"]})
    return rows


def check(rows: list[dict]) -> None:
    for row in rows:
        assert row["mismatches"] == 0
        # measured, not estimated: the simulation's initiation interval meets the target
        assert row["ii_cycles"] <= CLOCK_MHZ * 1e6 / row["fps"], row
    luts = [row["lut"] for row in rows]
    assert luts == sorted(luts) and len(set(luts)) == len(luts), luts


def test_small_mlp_meets_three_targets(tmp_path):
    model = export(mlp([16, 12, 4], wbits=4, abits=4, seed=7), (16,), tmp_path / "m.onnx")
    rows = build_at_targets(model, None, tmp_path, "icarus")
    check(rows)
    assert [row["ii_cycles"] for row in rows] == [96, 8, 1]


@pytest.mark.slow
def test_digits_mlp_meets_three_targets(tmp_path):
    from gatemill.flow.zoo.train import train

    train("mlp", out_dir=tmp_path / "train", wbits=4, abits=4, seed=0, progress=False)
    model, vectors = tmp_path / "train" / "model.onnx", tmp_path / "train" / "vectors.npz"
    rows = build_at_targets(model, vectors, tmp_path, "verilator", TARGETS[:2])
    check(rows)
    with pytest.raises(GatemillError, match="the fastest folding takes 8 cycles per sample"):
        build_at_targets(model, vectors, tmp_path, "verilator", TARGETS[2:])
