"""The ``gatemill hls`` command (registered by :mod:`gatemill.flow.cli`).

Register with ``app.command("hls")(hls)``. Heavy imports (hls4ml, numpy) happen when the
command runs, so ``gatemill --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(highlight=False)


def hls(
    build: Annotated[
        Path, typer.Argument(help="Build folder made by `gatemill build`.", show_default=False)
    ],
    via: Annotated[
        str,
        typer.Option(help="gatemill (our HLS C++, g++ C simulation) or hls4ml (the peer)."),
    ] = "gatemill",
    part: Annotated[
        str | None,
        typer.Option(help="Xilinx part (default: the board's, else xc7z020clg400-1)."),
    ] = None,
    board: Annotated[
        str | None, typer.Option(help="Board name: use the part of boards/<board>.toml.")
    ] = None,
    clock_ns: Annotated[
        float | None,
        typer.Option(help="Clock period for Vitis HLS in ns (default: the board's, else 10)."),
    ] = None,
    csim: Annotated[
        bool, typer.Option("--csim/--no-csim", help="Run the g++ C simulation.")
    ] = True,
    vitis: Annotated[
        bool, typer.Option("--vitis/--no-vitis", help="Run vitis_hls when it is on PATH.")
    ] = True,
) -> None:
    """Write HLS C++ and Vitis HLS scripts into BUILD/hls and check them bit-exactly with g++."""
    from .step import HlsConfig, run_hls

    cfg = HlsConfig(
        build=build, via=via, part=part, board=board, clock_ns=clock_ns, csim=csim, vitis=vitis
    )
    print_hls(run_hls(cfg))


def print_hls(result: dict) -> None:
    """Console summary of :func:`gatemill.flow.hls.step.run_hls`'s result."""
    d = result["hls_dir"]
    if result["via"] == "hls4ml":
        r = result["hls4ml"]
        console.print(
            f"hls4ml {r['hls4ml']} ({r['backend']}, {r['precision']}): {r['mismatches']} of "
            f"{r['elements']} outputs differ from the golden model on {r['vectors']} vectors, "
            f"argmax agreement {100 * r['argmax_agreement']:.2f} %; convert "
            f"{r['convert_seconds']} s, compile {r['compile_seconds']} s, predict "
            f"{r['predict_seconds']} s"
        )
        if r["divergent_layer"]:
            console.print(f"not exact from layer {r['divergent_layer']}: {r['why']}")
        if "gatemill_csim" in r:
            c = r["gatemill_csim"]
            console.print(
                f"gatemill C simulation: {c['mismatches']} mismatches, compile "
                f"{c['compile_seconds']} s, run {c['run_seconds']} s"
            )
        console.print(f"wrote {d}/hls4ml.json")
        return
    m = result["manifest"]
    console.print(
        f"HLS C++ in {d}/src ({len(m['kernels'])} dataflow stages), part {result['part']} "
        f"({result['part_source']}), clock {result['clock_ns']} ns ({result['clock_source']}); "
        f"Vitis HLS script {d}/run_hls.tcl"
    )
    if "csim" in result:
        c = result["csim"]
        console.print(
            f"C simulation (g++): {c['vectors']} vectors, {c['mismatches']} mismatches; compile "
            f"{c['compile_seconds']} s, run {c['run_seconds']} s -> {d}/csim.json"
        )
    v = result["vitis_hls"]
    console.print(
        f"Vitis HLS ran in {v['seconds']} s ({v['log']})" if v.get("ran") else v["message"]
    )
