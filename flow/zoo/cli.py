"""The ``gatemill train`` command (registered by :mod:`gatemill.flow.cli`).

torch and Brevitas are imported only when the command runs, so ``gatemill --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import GatemillError


def parse_widths(option: str, text: str | None) -> tuple[int, ...] | None:
    """Parse a comma-separated list of layer widths such as ``"64,64"``.

    Parameters
    ----------
    option : str
        The option's name, for the message (``"--hidden"``).
    text : str or None
        The option's value; None (option not given) gives None.

    Returns
    -------
    tuple of int or None

    Raises
    ------
    GatemillError
        If an entry is empty or not a positive integer; the message names the option.
    """
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    for p in parts:
        if not (p.isascii() and p.isdigit() and int(p) > 0):
            raise GatemillError(
                f"{option} takes positive integers separated by commas, like 64,64; in "
                f"{text!r} the entry {p!r} is not one."
            )
    return tuple(int(p) for p in parts)


def train(
    kind: Annotated[
        str,
        typer.Argument(
            help="Model kind: mlp, cnn, rescnn, cnn1d, deepsets, lutnet or poetbin.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output directory (new, empty, or made by gatemill).",
            show_default=False,
        ),
    ],
    wbits: Annotated[
        int | None,
        typer.Option(help="Weight bits, 1..8 (1 = bipolar) (default: poetbin 1; others 4)."),
    ] = None,
    abits: Annotated[
        int | None,
        typer.Option(
            help="Activation bits, 1..8 (1 = bipolar) (default: lutnet 2; poetbin 1; others 4)."
        ),
    ] = None,
    hidden: Annotated[
        str | None,
        typer.Option(
            help="Dense layer widths, e.g. 64,64 (default: mlp 64,64; cnn, rescnn, deepsets 64; "
            "cnn1d 32; lutnet 128,64; poetbin 64,64, the last being its binary features)."
        ),
    ] = None,
    channels: Annotated[
        str | None,
        typer.Option(
            help="Convolution channels, e.g. 16,32 (default: cnn 16,32; cnn1d 8,16); rescnn: "
            "the stem's width then one equal entry per residual block (default: 16,16); "
            "deepsets: the per-element layers' widths (default: 64,64)."
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Training epochs (default: mlp, lutnet, poetbin 40; cnn 30; rescnn, cnn1d 20; "
            "deepsets 60)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    scaling: Annotated[
        str, typer.Option(help="Quantizer scales: float (learned) or pot (powers of two).")
    ] = "float",
    batchnorm: Annotated[
        bool, typer.Option("--batchnorm/--no-batchnorm", help="BatchNorm before activations.")
    ] = True,
    in_bits: Annotated[
        int | None,
        typer.Option(
            "--in-bits", help="Input quantizer bits, 1..8 (1 = bipolar) (default: lutnet 2; 8)."
        ),
    ] = None,
    per_channel: Annotated[
        bool, typer.Option("--per-channel", help="One weight scale per output channel.")
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Your data: .npz with x_train, y_train, x_test, y_test (default: the digits; "
            "deepsets: the digits as point sets; cnn1d: generated detector pulses).",
            show_default=False,
        ),
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default: 0.01).")] = None,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 64,
    fanin: Annotated[
        int | None, typer.Option(help="lutnet: inputs of every neuron (default: 6).")
    ] = None,
    out_bits: Annotated[
        int | None,
        typer.Option(
            help="lutnet: quantize the logits to this many bits, 1..8, as LogicNets does "
            "(default: the last layer's integer sums)."
        ),
    ] = None,
    depth: Annotated[
        int | None, typer.Option(help="poetbin: depth of every tree (default: 6).")
    ] = None,
    trees: Annotated[
        int | None, typer.Option(help="poetbin: trees per class (default: 8).")
    ] = None,
    sparsity: Annotated[
        float,
        typer.Option(
            help="mlp, cnn: prune this share of every layer's weights by magnitude during "
            "training, on a schedule (e.g. 0.9)."
        ),
    ] = 0.0,
) -> None:
    """Train a quantized mlp, cnn, rescnn (residual cnn), cnn1d (1-D cnn), deepsets (a model
    of sets), lutnet (sparse LUT neurons) or poetbin (binary features and a head of boosted
    LUT-sized trees) with Brevitas and export it as QONNX."""
    from rich.console import Console

    from .train import FILES, TrainConfig
    from .train import train as run_train

    cfg = TrainConfig(
        kind=kind,
        out_dir=out,
        wbits=wbits,
        abits=abits,
        hidden=parse_widths("--hidden", hidden),
        channels=parse_widths("--channels", channels),
        epochs=epochs,
        seed=seed,
        data=data,
        scaling=scaling,
        batchnorm=batchnorm,
        in_bits=in_bits,
        per_channel=per_channel,
        lr=lr,
        batch_size=batch_size,
        fanin=fanin,
        out_bits=out_bits,
        depth=depth,
        trees=trees,
        sparsity=sparsity,
    )
    report = run_train(cfg)
    spec = report["model"]
    console = Console(highlight=False)
    console.print(
        f"{kind} w{spec['wbits']}a{spec['abits']} ({spec['scaling']} scales"
        f"{', BatchNorm' if spec['batchnorm'] else ''}) on {report['data']}: "
        f"{report['train_samples']} training / {report['test_samples']} test samples"
    )
    console.print(f"  float twin accuracy  {report['float_accuracy']:.1%}")
    console.print(f"  quantized accuracy   {report['quant_accuracy']:.1%}")
    if "pruning" in report:
        zeros = report["pruning"]["zero_share"]
        console.print(
            f"  pruned               {min(zeros):.0%} to {max(zeros):.0%} of each layer's "
            f"weights zero (target {report['pruning']['sparsity']:.0%})"
        )
    if "head" in report:
        head = report["head"]
        console.print(f"  float head accuracy  {head['float_head_accuracy']:.1%}")
        console.print(
            f"  tree head accuracy   {head['trees_accuracy']:.1%} ({head['tree_tables']} trees "
            f"of depth {head['depth']}, {head['vote_bits']}-bit votes)"
        )
    console.print(f"  time                 {report['seconds']:.1f} s")
    for i, name in enumerate(FILES):
        console.print(f"  {'wrote' if i == 0 else '':<20} {out / name}")
