"""``gatemill explore MODEL --board B --out DIR``: sweep foldings, synthesize a spread, plot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def print_explore(report: dict) -> None:
    """Print the points of an ``explore.json``: folding figures, estimate and Yosys."""
    from rich.console import Console
    from rich.table import Table

    front = set(report["pareto_synthesized"]) | set(report["pareto_estimated"])
    table = Table(
        title=f"exploration on {report['board']} ({report['part']}) at {report['clock_mhz']:g} MHz",
        title_justify="left",
    )
    for c in ("#", "ii", "latency", "samples/s", "est LUT", "LUT", "FF", "BRAM", "DSP", "err"):
        table.add_column(c, justify="right")
    for i, p in enumerate(report["points"]):
        syn = "lut" in p
        table.add_row(
            f"{i}{'*' if i in front else ''}",
            str(p["ii_cycles"]),
            str(p["latency_cycles"]),
            f"{p['samples_per_s']:.3g}",
            str(p["est_lut"]),
            *(str(p[k]) if syn else "-" for k in ("lut", "ff", "bram", "dsp")),
            f"{p['lut_error']:+.0%}" if syn else "-",
        )
    Console(highlight=False).print(table)
    err = report["lut_error"]
    if err["mean_abs"] is not None:
        print(
            f"LUT estimate vs Yosys: mean |error| {err['mean_abs']:.0%}, max {err['max_abs']:.0%};"
            f" * = on a Pareto front"
        )


def explore(
    model: Annotated[Path, typer.Argument(help="QONNX model (.onnx).")],
    board: Annotated[str, typer.Option(help="Board name (gatemill boards) or a board .toml.")],
    out: Annotated[Path, typer.Option(help="Output folder (explore.json, pareto.svg/png).")],
    points: Annotated[int, typer.Option(help="Target initiation intervals swept.")] = 8,
    synth_points: Annotated[int, typer.Option(help="Points synthesized with Yosys.")] = 3,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address (tcp://host:8786); default: local processes."),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Local processes (default 2).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the import's random vectors.")] = 0,
) -> None:
    """Sweep foldings, estimate each, synthesize a spread with Yosys, plot the Pareto front."""
    from ..steps.explore import ExploreConfig, run_explore

    cfg = ExploreConfig(
        model=model,
        board=board,
        out=out,
        points=points,
        synth_points=synth_points,
        scheduler=scheduler,
        workers=workers,
        seed=seed,
    )
    report = run_explore(cfg, progress=print)
    print_explore(report)
    print(f"wrote {out / 'explore.json'}, {out / 'pareto.svg'}, {out / 'pareto.png'}")
