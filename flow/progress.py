"""Rich progress for the long steps of a command: one line per step, a spinner and the time;
a skipped step gets a line that says so."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TimeElapsedColumn
from rich.text import Text


class _Status(ProgressColumn):
    """A spinner while the step runs, ``done`` after; a dot before a skipped step's line
    (which says it is skipped)."""

    def __init__(self):
        super().__init__()
        self.spinner = SpinnerColumn()

    def render(self, task: Task) -> Text:
        if task.fields.get("skipped"):
            return Text("   ·", style="dim")
        if task.finished:
            return Text("done", style="green")
        return self.spinner.render(task)


class _Elapsed(TimeElapsedColumn):
    def render(self, task: Task) -> Text:
        return Text("") if task.fields.get("skipped") else super().render(task)


class StepLines:
    """The lines of :func:`steps`: ``start(text)`` (also ``lines(text)``) marks the running
    step done and starts the next; ``skip(text)`` adds a finished line for a skipped step."""

    def __init__(self, bar: Progress):
        self._bar = bar
        self._running: int | None = None

    def _finish(self) -> None:
        if self._running is not None:
            self._bar.update(self._running, total=1, completed=1)
            self._running = None

    def start(self, text: str) -> None:
        """A step starts."""
        self._finish()
        self._running = self._bar.add_task(text, total=None)

    __call__ = start

    def skip(self, text: str) -> None:
        """A step is skipped; *text* says why."""
        self._finish()
        self._bar.add_task(text, total=1, completed=1, skipped=True)


@contextlib.contextmanager
def steps(enabled: bool = True) -> Iterator[StepLines]:
    """Yields a :class:`StepLines` (a :class:`~gatemill.flow.steps.builder.StepDisplay`).

    On stderr, so the results on stdout stay clean; without a terminal Rich prints nothing
    live, only the finished lines.
    """
    with Progress(
        _Status(),
        "{task.description}",
        _Elapsed(),
        console=Console(stderr=True, highlight=False),
        disable=not enabled,
    ) as bar:
        lines = StepLines(bar)
        yield lines
        lines._finish()
