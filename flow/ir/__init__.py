"""The integer IR: one frozen params dataclass per layer kind, and the graph that chains them.

Every stage after import reads these objects and nothing else: the golden model
(:meth:`Layer.execute`), the hardware templates, the HLS configs and the estimates.
"""

from .datatypes import dtype_for_range, dtype_from_name
from .graph import InputSpec, IRGraph, OutputSpec, load_ir, save_ir
from .layers import (
    LAYER_KINDS,
    Flatten,
    Layer,
    MatrixVector,
    MaxPool,
    SlidingWindow,
    Threshold,
)
from .lut import LutLayer

LAYER_KINDS[LutLayer.kind] = LutLayer  # registered here: lut.py builds on layers.py

__all__ = [
    "LAYER_KINDS",
    "Flatten",
    "IRGraph",
    "InputSpec",
    "Layer",
    "LutLayer",
    "MatrixVector",
    "MaxPool",
    "OutputSpec",
    "SlidingWindow",
    "Threshold",
    "dtype_for_range",
    "dtype_from_name",
    "load_ir",
    "save_ir",
]
