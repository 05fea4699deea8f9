"""The layer kinds: one module each, owning the kind's whole story (see :mod:`.base`).

:data:`KINDS` is the registry: kind name -> params class. Reading an IR folder goes through it
(:func:`load_ir`). To add a kind, see ``DESIGN.md`` ("Adding a layer kind").
"""

from __future__ import annotations

from pathlib import Path

from ..ir.graph import IRGraph, read_ir, save_ir
from .add import Add
from .base import Layer
from .concat import Concat
from .flatten import Flatten
from .global_sum import GlobalSum
from .lut_layer import LutLayer
from .matrix_vector import MatrixVector
from .maxpool import MaxPool
from .sliding_window import SlidingWindow
from .threshold import Threshold
from .vector_vector import VectorVector

KINDS: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (
        MatrixVector,
        VectorVector,
        Threshold,
        SlidingWindow,
        MaxPool,
        GlobalSum,
        Flatten,
        LutLayer,
        Add,
        Concat,
    )
}


def load_ir(directory: str | Path) -> IRGraph:
    """Load the IR graph of a build folder (``ir.json`` + ``ir.npz``, no pickle)."""
    return read_ir(directory, KINDS)


__all__ = [
    "KINDS",
    "Add",
    "Concat",
    "Flatten",
    "GlobalSum",
    "Layer",
    "LutLayer",
    "MatrixVector",
    "MaxPool",
    "SlidingWindow",
    "Threshold",
    "VectorVector",
    "load_ir",
    "save_ir",
]
