"""``gatemill doctor``: every tool the flow uses, its version, or what is lost without it."""

from __future__ import annotations

import platform

from rich.console import Console
from rich.table import Table

from .tools import TOOLS

REQUIRED = {"torch", "brevitas", "onnx", "onnxruntime", "qonnx", "amaranth", "cocotb"}


def run_doctor() -> int:
    """Print the tool table; return 0 when every required tool is present, else 1."""
    console = Console(highlight=False)
    table = Table(
        title=f"gatemill doctor (Python {platform.python_version()})", title_justify="left"
    )
    table.add_column("tool")
    table.add_column("version")
    table.add_column("without it")
    missing = []
    for tool in TOOLS:
        v = tool.version()
        if v is None:
            missing.append(tool.name)
        table.add_row(tool.name, v or "[red]not found[/]", "-" if v else tool.loses)
    console.print(table)
    required_missing = sorted(REQUIRED.intersection(missing))
    if required_missing:
        console.print(
            f"[red]missing required: {', '.join(required_missing)}[/] - run `make test` "
            "or pip install gatemill to install them"
        )
        return 1
    return 0
