"""The ``gatemill`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from .asic.cli import asic
from .bitstream.cli import bitstream
from .boards import boards_command
from .dse.cli import explore
from .errors import GatemillError
from .hls.cli import hls
from .synth.cli import synth
from .usage_error import ClickException, NoArgsIsHelpError, UsageError, error_message, usage_text
from .zoo.cli import train

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Quantized neural networks to verified FPGA hardware.",
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
PROG = "gatemill"  # in usage lines, however the CLI was started (pytest, python -m)


app.command("train")(train)

# the default, 12, is gatemill.flow.frontend.lut.LUT_BITS (not imported: --help stays fast)
LUT_BITS_HELP = (
    "Sparse neurons reading at most this many input bits (fan-in x bits) become truth "
    "tables (LutLayer); 0 keeps them as matrix-vector layers."
)
INPUT_TYPE_HELP = (
    "Integer type of the raw input the hardware takes (e.g. UINT8), for a model whose float "
    "input reaches its first quantizer through a pre-processing (Mul, Add, Sub, Div, Reshape) "
    "or reaches none; with --input-scale. --vectors then hold those integers."
)
INPUT_SCALE_HELP = "The model's float input is x = scale * q for the raw integers q: e.g. 1/255."
app.command("hls")(hls)
app.command("boards")(boards_command)
app.command("synth")(synth)
app.command("bitstream")(bitstream)
app.command("explore")(explore)
app.command("asic")(asic)


@app.command()
def doctor() -> None:
    """List every tool the flow uses, with its version, or what is lost without it."""
    from .doctor import run_doctor

    raise typer.Exit(run_doctor())


@app.command("import")
def import_cmd(
    model: Annotated[Path, typer.Argument(help="QONNX model file (.onnx).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    vectors: Annotated[
        Path | None,
        typer.Option(help=".npz with x (model inputs) and optional y (labels)."),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the random vectors used without --vectors.")
    ] = 0,
    lut_bits: Annotated[int, typer.Option(help=LUT_BITS_HELP)] = 12,
    input_type: Annotated[str | None, typer.Option(help=INPUT_TYPE_HELP)] = None,
    input_scale: Annotated[str | None, typer.Option(help=INPUT_SCALE_HELP)] = None,
) -> None:
    """Import a QONNX model into the integer IR and check the golden model against QONNX."""
    from .api import BuildConfig
    from .api import build as run
    from .progress import steps
    from .report_text import print_import

    cfg = BuildConfig(
        model=model,
        out=out,
        vectors=vectors,
        seed=seed,
        lut_bits=lut_bits,
        input_type=input_type,
        input_scale=input_scale,
        steps=("import",),
    )
    with steps() as display:
        result = run(cfg, display)
    print_import(result.reports["import"], out)


@app.command()
def build(
    model: Annotated[Path, typer.Argument(help="QONNX model file (.onnx).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    vectors: Annotated[
        Path | None, typer.Option(help=".npz with x (model inputs) and optional y (labels).")
    ] = None,
    folding: Annotated[
        Path | None, typer.Option(help="folding.json with PE/SIMD per layer (overrides).")
    ] = None,
    until: Annotated[
        str,
        typer.Option(
            help="Last verification step: rtl (no simulation) or sim. With --board, Yosys runs "
            "either way."
        ),
    ] = "sim",
    sim: Annotated[str, typer.Option("--sim", help="Simulator: verilator or icarus.")] = (
        "verilator"
    ),
    waves: Annotated[bool, typer.Option(help="Write an FST waveform.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of vectors and random stalls.")] = 0,
    target_fps: Annotated[
        float | None, typer.Option(help="Fold for this many samples/s (balanced, cheapest).")
    ] = None,
    clock_mhz: Annotated[
        float | None,
        typer.Option(
            help="Target clock in MHz, for --target-fps and the depth of the units' pipelines "
            "(default: the board's, else 100)."
        ),
    ] = None,
    max_lut: Annotated[
        int | None,
        typer.Option(
            help="LUT budget (estimate): the target must fit, or alone the fastest folding "
            "within it."
        ),
    ] = None,
    board: Annotated[
        str | None, typer.Option(help="Synthesize for this board with Yosys (gatemill boards).")
    ] = None,
    lut_bits: Annotated[int, typer.Option(help=LUT_BITS_HELP)] = 12,
    steps: Annotated[
        str | None,
        typer.Option(
            help="Run only these steps, e.g. rtl,sim (of import, fold, rtl, sim, synth, fmax, "
            "asic, hls, report, bitstream); the others' outputs must be in --out."
        ),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Run the steps from this one on.")
    ] = None,
    stop: Annotated[
        str | None,
        typer.Option(
            "--to", help="Run the steps up to this one (fmax, asic, hls, bitstream: added)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Run the steps even when their inputs are unchanged.")
    ] = False,
    input_type: Annotated[str | None, typer.Option(help=INPUT_TYPE_HELP)] = None,
    input_scale: Annotated[str | None, typer.Option(help=INPUT_SCALE_HELP)] = None,
    pdk: Annotated[
        str, typer.Option(help="Standard cells of the asic step: sky130 (sky130_fd_sc_hd).")
    ] = "sky130",
    asic_vectors: Annotated[
        int | None,
        typer.Option(help="The asic step simulates the first N vectors only (default: all)."),
    ] = None,
) -> None:
    """Import, fold, generate RTL and verify it against the golden model in simulation.

    Each step is skipped when its inputs (options, files, tools, gatemill's code) are those of
    its last run in --out.
    """
    from .api import BuildConfig
    from .api import build as run
    from .progress import steps as display
    from .report_text import print_build

    cfg = BuildConfig(
        model=model,
        out=out,
        vectors=vectors,
        folding=folding,
        until=until,
        simulator=sim,
        waves=waves,
        seed=seed,
        target_fps=target_fps,
        clock_mhz=clock_mhz,
        max_lut=max_lut,
        board=board,
        lut_bits=lut_bits,
        steps=steps,
        start=start,
        stop=stop,
        force=force,
        input_type=input_type,
        input_scale=input_scale,
        pdk=pdk,
        asic_vectors=asic_vectors,
    )
    with display() as lines:
        result = run(cfg, lines)
    print_build(result.reports, out, result.timings)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("build/demo"),
    epochs: Annotated[
        int | None, typer.Option(help="Training epochs (default: the zoo's).")
    ] = None,
) -> None:
    """The main job on the embedded default: digits MLP w4a4, train to synthesis and report."""
    from .demo import run_demo

    run_demo(out, epochs)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one paragraph and exit with code 2.

    A command line click cannot parse (unknown option or command, missing argument, bad value)
    prints the command's usage line and the error with its close matches, exit code 2.
    """
    try:
        app(args=argv, prog_name=PROG, standalone_mode=False)
    except GatemillError as e:
        err.print(f"[bold red]error:[/] {e}", markup=True)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except NoArgsIsHelpError:  # `gatemill` alone: Typer has printed the help
        return 0
    except UsageError as e:
        root = typer.Context(typer.main.get_command(app), info_name=PROG)
        args = sys.argv[1:] if argv is None else argv
        err.print(usage_text(e, root, args), markup=False, emoji=False)
        err.print(f"[bold red]error:[/] {escape(error_message(e))}", markup=True, emoji=False)
        return e.exit_code
    except ClickException as e:
        err.print(f"[bold red]error:[/] {escape(e.format_message())}", markup=True, emoji=False)
        return e.exit_code
    except typer.Abort:
        err.print("error: aborted")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
