"""Synthesis with Yosys: resource figures per board and per layer, fit, folding suggestions."""

from .step import run_synth

__all__ = ["run_synth"]
