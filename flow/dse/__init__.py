"""Folding (PE/SIMD per layer) and design-space exploration."""

from .budget import folding_for_rate
from .fold import apply_folding, default_folding, folding_of, load_folding

__all__ = [
    "apply_folding",
    "default_folding",
    "folding_for_rate",
    "folding_of",
    "load_folding",
]
