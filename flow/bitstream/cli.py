"""``gatemill bitstream DIR --board B``: a bitstream of a generated design for a board."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def bitstream(
    out: Annotated[Path, typer.Argument(help="Build folder with rtl/ (gatemill build --out).")],
    board: Annotated[str, typer.Option(help="Board name (gatemill boards) or a board .toml.")],
    baud: Annotated[
        int | None, typer.Option(help="UART baud rate of an open board (default: the board's).")
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify",
            help="Simulate the UART-bridged design against the golden model first.",
        ),
    ] = True,
    sim: Annotated[str, typer.Option("--sim", help="Simulator: verilator or icarus.")] = (
        "verilator"
    ),
    vectors: Annotated[
        int | None, typer.Option(help="Simulate only the first N test vectors.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated line timing.")] = 0,
) -> None:
    """Build a bitstream: open tools for ECP5 boards (accelerator behind a UART bridge), or a
    Vivado project (block design with the Zynq PS and an AXI DMA) plus PYNQ driver for Xilinx
    boards, run when vivado is on PATH."""
    from rich.console import Console

    from ..boards import load_board
    from .ecp5 import run_ecp5_bitstream

    b = load_board(board)
    console = Console(highlight=False)
    if b.vendor == "xilinx":
        from ..vivado import write_vivado

        r = write_vivado(Path(out), b)
        console.print(
            f"Vivado project for {b.name} ({b.part}): {out}/vivado/build.tcl; PYNQ "
            f"driver: {out}/driver/gatemill_driver"
        )
        console.print(f"bitstream: {out}/{r['bitstream']}" if r["ran"] else r["next"])
        return
    report = run_ecp5_bitstream(
        out, b, baud=baud, verify=verify, simulator=sim, seed=seed, vectors=vectors
    )
    v = report["verify"]
    if v:
        console.print(
            f"UART bridge in {v['simulator']}: {v['vectors']} vectors, {v['mismatches']} of "
            f"{v['elements']} outputs differ from the golden model"
        )
    t = report["timing"]
    verdict = "[green]met[/]" if t["met"] else "[red]NOT met[/]"
    console.print(
        f"{b.name}: {report['bitstream']}; Fmax {t['fmax_mhz']} MHz, target {t['target_mhz']} "
        f"MHz: timing {verdict}; UART {t['baud']} baud"
    )
    console.print(f"run it on the board: python {report['host']} --port /dev/ttyUSB0")
    if not t["met"]:
        raise typer.Exit(1)
