"""Synthesis with Yosys: resource figures per board and per layer, fit, folding suggestions;
Fmax of the core on ECP5 parts with nextpnr."""

from .fmax import measure_fmax
from .step import run_synth

__all__ = ["measure_fmax", "run_synth"]
