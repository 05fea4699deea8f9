"""The ``gatemill`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .errors import GatemillError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Quantized neural networks to verified FPGA hardware.",
)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@app.command()
def doctor() -> None:
    """List every tool the flow uses, with its version, or what is lost without it."""
    from .doctor import run_doctor

    raise typer.Exit(run_doctor())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one paragraph and exit with code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except GatemillError as e:
        err.print(f"[bold red]error:[/] {e}", markup=True)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except (typer.BadParameter, typer.Abort) as e:  # pragma: no cover - click prints these
        err.print(f"error: {e}")
        return 2
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
