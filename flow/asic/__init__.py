"""The ASIC path: the verified RTL mapped onto a PDK's standard cells (sky130_fd_sc_hd), with
area, flip-flops and logic depth per layer, and a gate-level simulation against the golden
model."""

from .step import run_asic

__all__ = ["run_asic"]
