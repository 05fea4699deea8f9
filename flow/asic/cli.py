"""``gatemill asic DIR --pdk sky130``: the design mapped onto standard cells, verified."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def print_asic(report: dict) -> None:
    """Print an ``asic.json`` report: per-layer table, totals, the gate-level simulation."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(
        title=f"{report['library']} standard cells ({report['package']}), Yosys + ABC",
        title_justify="left",
    )
    for col in ("layer", "fold", "cells", "flip-flops", "area µm²", "depth (cells)"):
        table.add_column(col, justify="left" if col in ("layer", "fold") else "right")

    def row(name: str, fold: dict | None, r: dict, **kw) -> None:
        table.add_row(
            name,
            " ".join(f"{k}={v}" for k, v in (fold or {}).items()),
            f"{r['cell_count']:,}",
            f"{r['ff']:,}",
            f"{r['area_um2']:,.1f}",
            str(r["depth_cells"]),
            **kw,
        )

    for layer in report["layers"]:
        row(layer["name"], layer.get("fold"), layer)
    row("(glue)", None, report["glue"])
    row("total", None, report, style="bold")
    console.print(table)
    path = report["longest_path"]
    console.print(
        f"longest path: {path['cells']} cells, in {' -> '.join(path['stages']) or '-'}; "
        f"area {report['area_um2'] / 1e6:.4f} mm² of cells (no placement, no timing: see "
        f"limits in asic.json)"
    )
    secs = report["seconds"]
    sim = report.get("sim")
    if sim is not None:
        verdict = "[green]0 mismatches[/]" if not sim["mismatches"] else "[red]MISMATCHES[/]"
        models = {
            "cells_rtl.v": "the cells' functions as RTL",
            "cells_sim.v": "the PDK's cell models",
        }.get(sim.get("models"), "the PDK's cell models")
        console.print(
            f"gate-level simulation ({sim['simulator']}, {models}): "
            f"{sim['vectors']} vectors, {verdict}; latency {sim['latency_cycles']} cycles, "
            f"ii {sim['ii_cycles']}"
        )
    console.print("seconds: " + ", ".join(f"{k} {v}" for k, v in secs.items()))


def asic(
    out: Annotated[Path, typer.Argument(help="Build folder with rtl/ (gatemill build --out).")],
    pdk: Annotated[str, typer.Option(help="Standard cells: sky130 (sky130_fd_sc_hd).")] = (
        "sky130"
    ),
    sim: Annotated[
        bool,
        typer.Option(help="Simulate the gate-level netlist against the golden model."),
    ] = True,
    simulator: Annotated[
        str,
        typer.Option(
            "--simulator",
            help="verilator (the cells' functions as RTL, fast) or icarus (the PDK's own "
            "cell models, slow on large netlists).",
        ),
    ] = "verilator",
    vectors: Annotated[
        int | None,
        typer.Option(help="Simulate the first N test vectors only (default: all)."),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option(help="Yosys processes side by side (default: cores, max 4).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random stalls in simulation.")] = 0,
) -> None:
    """Map the generated RTL onto a PDK's standard cells: cells, flip-flops, area and logic
    depth per layer (asic.json), and a gate-level simulation against the golden model."""
    from .step import run_asic

    print_asic(
        run_asic(out, pdk, jobs=jobs, simulate=sim, simulator=simulator, vectors=vectors, seed=seed)
    )
