"""Rich progress for the long steps of a command: one line per step, a spinner and the time."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def steps(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """Yields ``step(description)``: marks the running step done and starts the next.

    On stderr, so the results on stdout stay clean; without a terminal Rich prints nothing
    live, only the finished lines.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(finished_text="[green]done[/]"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    ) as bar:
        running: list[int] = []

        def step(description: str) -> None:
            if running:
                bar.update(running[-1], total=1, completed=1)
            running.append(bar.add_task(description, total=None))

        yield step
        if running:
            bar.update(running[-1], total=1, completed=1)
