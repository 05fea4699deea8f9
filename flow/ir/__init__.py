"""The integer IR: datatypes, the graph of layers between an input quantizer and an output
dequantizer, and its files (``ir.json`` + ``ir.npz``).

The layers themselves are the layer kinds of :mod:`gatemill.flow.kinds`, which also reads an
IR folder back (:func:`gatemill.flow.kinds.load_ir`).
"""

from .datatypes import dtype_for_range, dtype_from_name
from .graph import InputSpec, IRGraph, OutputSpec, read_ir, save_ir

__all__ = [
    "IRGraph",
    "InputSpec",
    "OutputSpec",
    "dtype_for_range",
    "dtype_from_name",
    "read_ir",
    "save_ir",
]
