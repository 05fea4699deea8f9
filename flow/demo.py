"""``gatemill demo`` (``make demo``): the main job on the embedded default.

Trains the digits MLP (4-bit weights and activations) with Brevitas, exports QONNX, imports it
into the integer IR, folds it for 3 M samples/s at 100 MHz, generates the RTL, verifies it
against the golden model in Verilator on the 360 test vectors, synthesizes it with Yosys for
the PYNQ-Z2 and writes the report.
"""

from __future__ import annotations

from pathlib import Path

from .api import BuildConfig, build
from .outdir import prepare_out_dir
from .progress import steps
from .report_text import console, print_build

DEMO_BOARD = "pynq-z2"
# samples/s at the board's 100 MHz: a folding whose multipliers fit the PYNQ-Z2's DSPs
DEMO_FPS = 3e6


def run_demo(out: Path, epochs: int | None = None) -> dict:
    """Run the demo into *out* (``train/`` and ``build/``); returns the build reports."""
    from .zoo.train import TrainConfig, train

    out = prepare_out_dir(out)
    console.rule("1. train: digits MLP, 4-bit weights and activations (Brevitas QAT)")
    t = train(TrainConfig(kind="mlp", out_dir=out / "train", wbits=4, abits=4, epochs=epochs))
    console.print(
        f"quantized accuracy {100 * t['quant_accuracy']:.2f} % "
        f"(float twin {100 * t['float_accuracy']:.2f} %), {t['seconds']:.1f} s"
    )
    console.rule("2. build: import -> fold -> RTL -> cocotb simulation -> Yosys synthesis")
    cfg = BuildConfig(
        model=out / "train" / "model.onnx",
        out=out / "build",
        vectors=out / "train" / "vectors.npz",
        board=DEMO_BOARD,
        target_fps=DEMO_FPS,
        clock_mhz=100.0,
    )
    with steps() as display:
        result = build(cfg, display)
    print_build(result.reports, cfg.out, result.timings)
    console.rule("results")
    for name in (
        "train/train.json",
        "build/import.json",
        "build/folding.json",
        "build/rtl/gatemill_top.v",
        "build/rtl/manifest.json",
        "build/sim.json",
        "build/synth.json",
        "build/report.html",
    ):
        console.print(f"  {out / name}")
    return result.reports
