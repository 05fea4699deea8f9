"""Fingerprints: what a step's result depends on, reduced to sha256 digests.

A step's fingerprint covers the configuration values it uses, the content of every file it
reads (the model, the vectors, the earlier steps' outputs), the versions of the tools it
calls and gatemill's own code, so a step is skipped only when all of them are unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from importlib import resources
from pathlib import Path

from ..tools import TOOLS, package_version

# gatemill's packages whose files make up "the code": sources, templates, headers, boards
CODE_PACKAGES = ("gatemill.flow", "gatemill.hdl", "gatemill.sim", "gatemill.templates",
                 "gatemill.boards")  # fmt: skip
_CHUNK = 1 << 20


def digest(value) -> str:
    """sha256 of *value* as canonical JSON (sorted keys; paths and tuples as strings/lists)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def tree_digest(path: Path) -> str:
    """sha256 of a file, or of a folder's files: their relative paths and contents."""
    path = Path(path)
    if path.is_file():
        return file_digest(path)
    h = hashlib.sha256()
    for p in _files(path):
        h.update(f"{p.relative_to(path).as_posix()}\0{file_digest(p)}\n".encode())
    return h.hexdigest()


def stat_digest(root: Path, paths: tuple[str, ...]) -> str:
    """A cheap signature of the files under *paths* (relative to *root*): names, sizes and
    modification times. It changes when a file is written, replaced or deleted."""
    rows = []
    for rel in paths:
        p = root / rel
        files = [p] if p.is_file() else _files(p) if p.is_dir() else []
        for f in files:
            st = f.stat()
            rows.append((f.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return digest(rows)


@functools.cache
def code_digest() -> str:
    """sha256 over every file of gatemill's packages (sources, templates, board files).

    Any change to gatemill's code makes every step's fingerprint differ: a step is never
    skipped on results that older code made.
    """
    h = hashlib.sha256()
    for name in CODE_PACKAGES:
        root = Path(str(resources.files(name)))
        for p in _files(root):
            if p.suffix in (".pyc", ".pyo"):
                continue
            h.update(f"{name}/{p.relative_to(root).as_posix()}\0{file_digest(p)}\n".encode())
    return h.hexdigest()


@functools.cache
def tool_version(name: str) -> str | None:
    """The version of a tool of :data:`gatemill.flow.tools.TOOLS`, or of a Python
    distribution of that name; ``python`` is the interpreter's. None when absent."""
    if name == "python":
        return platform.python_version()
    for tool in TOOLS:
        if tool.name == name:
            return tool.version()
    return package_version(name)


def tool_versions(names) -> dict[str, str | None]:
    """``{name: version}`` for *names* (see :func:`tool_version`)."""
    return {n: tool_version(n) for n in sorted(set(names))}
