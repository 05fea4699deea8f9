"""The build folder's record of its steps (``steps.json``) and of their times (``timings.json``).

``steps.json``::

    {"format": "gatemill-steps", "version": 1,
     "steps": {"sim": {"fingerprint": "<sha256>", "finished": "2026-11-05T12:03:04+01:00",
                       "inputs": {"config": {...}, "files": {"model": "<sha256>"},
                                  "reads": {"rtl": "<sha256>", "golden.npz": "<sha256>"},
                                  "tools": {"iverilog": "..."}, "code": "<sha256>"},
                       "outputs": "<sha256 of the outputs' names, sizes and times>"}}}

A step is recorded only after its outputs are in place, and its record is removed before they
are replaced, so the file never vouches for outputs a step did not finish. ``timings.json``
holds the wall time of each step's last run (and the tools' own times): the outputs carry
none, so two builds of one model give identical files.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from ..errors import GatemillError

STATE = "steps.json"
TIMINGS = "timings.json"
FORMAT = "gatemill-steps"
VERSION = 1


def write_json(path: Path, doc: dict) -> None:
    """Write *doc* to *path* atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)


def now() -> str:
    """The local time, to the second, with its offset (ISO 8601)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def when(iso: str) -> str:
    """An ISO time as the console shows it: ``2026-11-05 12:03:04``."""
    return iso[:19].replace("T", " ")


@dataclass(frozen=True, kw_only=True)
class Record:
    """What ``steps.json`` holds for one finished step.

    Parameters
    ----------
    fingerprint : str
        sha256 of *inputs*.
    finished : str
        When the step's outputs were committed (ISO 8601).
    inputs : dict
        The parts of the fingerprint: ``config``, ``files``, ``reads``, ``tools``, ``code``.
    outputs : str
        :func:`gatemill.flow.steps.fingerprint.stat_digest` of the outputs as committed.
    """

    fingerprint: str
    finished: str
    inputs: dict
    outputs: str


class State:
    """``DIR/steps.json``: the record of every step that finished in the build folder."""

    def __init__(self, out: Path, records: dict[str, Record]):
        self.path = Path(out) / STATE
        self.records = records

    @classmethod
    def load(cls, out: Path) -> State:
        """The state of *out* (empty when the folder has none).

        Raises
        ------
        GatemillError
            If ``steps.json`` is not one gatemill wrote.
        """
        path = Path(out) / STATE
        if not path.is_file():
            return cls(out, {})
        try:
            doc = json.loads(path.read_text())
            if doc.get("format") != FORMAT or doc.get("version") != VERSION:
                raise ValueError(f"not a {FORMAT} v{VERSION} file")
            records = {name: Record(**r) for name, r in doc["steps"].items()}
        except (ValueError, KeyError, TypeError) as e:
            raise GatemillError(
                f"{path} is damaged ({e}); delete it and every step runs again."
            ) from None
        return cls(out, records)

    def get(self, step: str) -> Record | None:
        """The record of *step*, or None."""
        return self.records.get(step)

    def set(self, step: str, record: Record) -> None:
        """Record *step* as finished and write the file."""
        self.records[step] = record
        self.save()

    def forget(self, step: str) -> None:
        """Remove *step*'s record (its outputs are about to change) and write the file."""
        if self.records.pop(step, None) is not None:
            self.save()

    def save(self) -> None:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "steps": {name: asdict(r) for name, r in self.records.items()},
        }
        write_json(self.path, doc)


def record_timing(out: Path, step: str, seconds: float, details: dict | None = None) -> dict:
    """Add *step*'s wall time (and the tools' own times, *details*) to ``DIR/timings.json``;
    returns the entry."""
    path = Path(out) / TIMINGS
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        doc = {}
    entry = {"seconds": round(seconds, 3), "finished": now(), **(details or {})}
    doc.setdefault("steps", {})[step] = entry
    write_json(path, doc)
    return entry


def record_run(out: Path, run: dict) -> None:
    """Write the summary of the last run (which steps ran, which were skipped, its wall time)
    into ``DIR/timings.json``."""
    path = Path(out) / TIMINGS
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        doc = {}
    doc["last_run"] = run
    write_json(path, doc)
