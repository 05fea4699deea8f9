"""``gatemill synth DIR --board B``: resource figures of a generated design on a board."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def print_synth(report: dict) -> None:
    """Print a ``synth.json`` report: per-layer table, totals against capacity, fit."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    ecp5 = report["family"] == "ecp5"
    cols = ["lut", "ff", "bram", "dsp", "carry", "lutram"]
    table = Table(
        title=f"synthesis for {report['board']} ({report['part']}), {report['tool_version']}",
        title_justify="left",
    )
    table.add_column("layer")
    table.add_column("fold")
    for c in cols:
        table.add_column(
            ("EBR" if ecp5 else "BRAM36") if c == "bram" else c.upper(), justify="right"
        )
    for layer in report["layers"]:
        fold = layer.get("fold") or {}
        table.add_row(
            layer["name"],
            " ".join(f"{k}={v}" for k, v in fold.items()),
            *(str(layer[c]) for c in cols),
        )
    table.add_row("(glue)", "", *(str(report["glue"][c]) for c in cols))
    table.add_row("total", "", *(str(report[c]) for c in cols), style="bold")
    cap = report["capacity"]
    util = report["utilization_pct"]
    table.add_row(
        "capacity",
        "",
        *(
            str(cap.get({"bram": "ebr" if ecp5 else "bram36"}.get(c, c), "-")) if c in util else "-"
            for c in cols
        ),
    )
    table.add_row("used", "", *(f"{util[c]:.1f}%" if c in util else "-" for c in cols))
    console.print(table)
    if report["fits"]:
        console.print(f"[green]fits[/] {report['board']}; Yosys took {report['seconds']} s")
    else:
        sug = report["suggestion"]
        console.print(f"[red]does not fit[/] {report['board']}: {sug['text']}")
        if sug.get("file"):
            console.print(f"rebuild with --folding {sug['file']} (in the build folder)")


def synth(
    out: Annotated[Path, typer.Argument(help="Build folder with rtl/ (gatemill build --out).")],
    board: Annotated[str, typer.Option(help="Board name (gatemill boards) or a board .toml.")],
    jobs: Annotated[
        int | None, typer.Option(help="Yosys processes side by side (default: cores, max 4).")
    ] = None,
) -> None:
    """Synthesize the generated RTL with Yosys for a board: LUT/FF/BRAM/DSP per layer, fit."""
    from ..boards import load_board
    from .step import run_synth

    report = run_synth(out, load_board(board), jobs=jobs)
    print_synth(report)
