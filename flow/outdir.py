"""Output folders: gatemill writes only into folders it made (or empty ones)."""

from __future__ import annotations

from pathlib import Path

from .errors import GatemillError

MARKER = ".gatemill"


def prepare_out_dir(path: str | Path) -> Path:
    """Create *path*, or accept it if it is empty or was made by gatemill.

    Raises
    ------
    GatemillError
        If *path* is a file, or a non-empty folder gatemill did not make: nothing the user
        owns is overwritten.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise GatemillError(f"output folder {str(p)!r} is a file; choose another --out.")
    if p.is_dir() and any(p.iterdir()) and not (p / MARKER).is_file():
        raise GatemillError(
            f"output folder {str(p)!r} exists, is not empty and was not made by gatemill; "
            "gatemill will not write into it. Choose a new --out folder or empty this one."
        )
    try:
        p.mkdir(parents=True, exist_ok=True)
        (p / MARKER).write_text("This folder was made by gatemill; it may overwrite files here.\n")
    except OSError as e:
        raise GatemillError(f"cannot create output folder {str(p)!r}: {e.strerror}.") from None
    return p
