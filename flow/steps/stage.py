"""Staging folders: a step writes into ``DIR/.stage/<step>/`` and its outputs replace the old
ones in ``DIR`` only once it has finished, so an interrupted step leaves the previous results
whole.

The staging folder mirrors the build folder: the step's inputs are hard links to the build
folder's files (real files, which the WebAssembly tools read, unlike symlinks; no copies), and
it writes its outputs under their final names. A failed step's staging folder stays for
inspection (its logs are there) until the step runs again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

STAGE = ".stage"


def stage_dir(out: Path, step: str) -> Path:
    """Where *step* writes before its outputs are committed."""
    return Path(out) / STAGE / step


def prepare(out: Path, step: str, reads: tuple[str, ...]) -> Path:
    """An empty staging folder for *step* holding links to its inputs *reads* (those present).

    Steps never write to their inputs (the catalog checks that the paths a step reads and
    writes are apart), so the shared files stay as they are.
    """
    stage = stage_dir(out, step)
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for rel in reads:
        src = Path(out) / rel
        if src.is_dir():
            shutil.copytree(src, stage / rel, copy_function=_link_or_copy)
        elif src.is_file():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(src, stage / rel)
    return stage


def commit(out: Path, step: str, writes: tuple[str, ...]) -> None:
    """Move *step*'s outputs from its staging folder into *out*, replacing the old ones.

    An output the step did not write this time is removed from *out*: it belonged to an
    earlier configuration (a truth-table check of a model that has no truth tables now).
    """
    out = Path(out)
    stage = stage_dir(out, step)
    trash = out / STAGE / f"{step}.old"
    if trash.exists():
        shutil.rmtree(trash)
    for rel in writes:
        old, new = out / rel, stage / rel
        if old.exists() or old.is_symlink():
            (trash / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(old, trash / rel)
        if new.exists():
            old.parent.mkdir(parents=True, exist_ok=True)
            os.replace(new, old)
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(stage, ignore_errors=True)
    with contextlib.suppress(OSError):  # other steps' staging folders may be there
        stage.parent.rmdir()


def copy_outputs(src: Path, out: Path, writes: tuple[str, ...]) -> None:
    """Hard-link *writes* of the build folder *src* into the build folder *out* (replacing
    what *out* has), e.g. one import shared by many builds of one model."""
    for rel in writes:
        a, b = Path(src) / rel, Path(out) / rel
        if b.is_dir():
            shutil.rmtree(b)
        elif b.exists():
            b.unlink()
        if a.is_dir():
            shutil.copytree(a, b, copy_function=_link_or_copy)
        elif a.is_file():
            b.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(a, b)


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copy2(src, dst)
