"""``gatemill synth DIR --board B``: resource figures of a generated design on a board."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# folding fields not printed at these values: every weight bit where synthesis puts it, no
# second register after DSP products, no skid buffer at a unit's output or input (the Xilinx
# parts')
QUIET = {
    ("lut_weight_bits", 0),
    ("dsp_fabric_reg", 0),
    ("out_skid", 0),
    ("in_skid", 0),
    ("thr_mul", "lut"),
}


def depth_text(figures: dict | None) -> str:
    """A logic depth as the synth table shows it: ``12 (5 carry)``, or "-" without one."""
    if not figures or "depth" not in figures:
        return "-"
    carry = figures.get("depth_carry")
    return f"{figures['depth']} ({carry} carry)" if carry else str(figures["depth"])


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
    table.add_column("depth", justify="right")
    for layer in report["layers"]:
        fold = layer.get("fold") or {}
        table.add_row(
            layer["name"],
            " ".join(f"{k}={v}" for k, v in fold.items() if (k, v) not in QUIET),
            *(str(layer[c]) for c in cols),
            depth_text(layer),
        )
    table.add_row("(glue)", "", *(str(report["glue"][c]) for c in cols), depth_text(report["glue"]))
    table.add_row(
        "total",
        "",
        *(str(report[c]) for c in cols),
        depth_text(report.get("logic_depth")),
        style="bold",
    )
    cap = report["capacity"]
    util = report["utilization_pct"]
    table.add_row(
        "capacity",
        "",
        *(
            str(cap.get({"bram": "ebr" if ecp5 else "bram36"}.get(c, c), "-")) if c in util else "-"
            for c in cols
        ),
        "",
    )
    table.add_row("used", "", *(f"{util[c]:.1f}%" if c in util else "-" for c in cols), "")
    console.print(table)
    deepest = report.get("logic_depth")
    if deepest:
        console.print(
            f"logic depth: {depth_text(deepest)} cells on the longest combinational path, in "
            f"{deepest['depth_stage']} (Yosys's mapping, no placement: a clock-rate indicator)"
        )
    if report["fits"]:
        took = f"; Yosys took {report['seconds']} s" if report.get("seconds") is not None else ""
        console.print(f"[green]fits[/] {report['board']}{took}")
    else:
        sug = report["suggestion"]
        console.print(f"[red]does not fit[/] {report['board']}: {sug['text']}")
        if sug.get("file"):
            console.print(f"rebuild with --folding {sug['file']} (in the build folder)")


def print_fmax(report: dict) -> None:
    """Print an ``fmax/fmax.json`` report: Fmax against the board's clock, what it used."""
    from rich.console import Console

    console = Console(highlight=False)
    verdict = "[green]met[/]" if report["met"] else "[red]NOT met[/]"
    names = {"TRELLIS_COMB": "LUT4", "TRELLIS_FF": "FF", "MULT18X18D": "MULT18", "DP16KD": "EBR"}
    util = report["utilization"]
    used = {name: util[k]["used"] for k, name in names.items() if k in util}
    secs = report.get("seconds")
    console.print(
        f"Fmax on {report['board']} ({report['part']}), core out of context: "
        f"{report['fmax_mhz']} MHz, target {report['target_mhz']} MHz: {verdict}; "
        + ", ".join(f"{k} {v}" for k, v in used.items())
        + (f"; Yosys {secs['yosys']} s, nextpnr {secs['nextpnr']} s" if secs else "")
    )


def synth(
    out: Annotated[Path, typer.Argument(help="Build folder with rtl/ (gatemill build --out).")],
    board: Annotated[str, typer.Option(help="Board name (gatemill boards) or a board .toml.")],
    jobs: Annotated[
        int | None, typer.Option(help="Yosys processes side by side (default: cores, max 4).")
    ] = None,
    fmax: Annotated[
        bool,
        typer.Option(
            "--fmax",
            help="Then place and route the core with nextpnr (ECP5 boards, minutes): "
            "fmax/fmax.json.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="nextpnr's placement seed (with --fmax).")] = 1,
) -> None:
    """Synthesize the generated RTL with Yosys for a board: LUT/FF/BRAM/DSP per layer, fit;
    with --fmax, the Fmax of the core on an ECP5 board."""
    from ..boards import load_board
    from .fmax import measure_fmax, nextpnr_device
    from .step import run_synth

    b = load_board(board)
    if fmax:
        nextpnr_device(b)  # a Xilinx board is refused before minutes of synthesis
    report = run_synth(out, b, jobs=jobs)
    print_synth(report)
    if fmax:
        print_fmax(measure_fmax(out, b, seed=seed))
