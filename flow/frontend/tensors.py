"""The values the streamliner passes along the data path (:mod:`.streamline`): quantized
tensors, pending chains of elementwise ops, and where each IR layer's output can be read in
the QONNX graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from . import exact


@dataclass
class IntTensor:
    """A quantized tensor on the data path."""

    name: str
    dtype: object
    scales: list[Fraction]  # per channel (last IR axis)
    shape: tuple[int, ...]  # IR per-sample shape, channels last
    layout: str  # "NC" or "NCHW": the QONNX layout
    perm: np.ndarray | None = None  # after Flatten of a map: QONNX index of each IR index


@dataclass
class Chain:
    """Elementwise ops pending on an accumulator (``mv`` set) or on an integer tensor."""

    source: IntTensor
    mv: dict | None
    channels: int
    lo: np.ndarray
    hi: np.ndarray
    ops: list = field(default_factory=list)
    tensor: str = ""
    shape: tuple[int, ...] = ()
    layout: str = "NC"


@dataclass(frozen=True)
class Probe:
    """Where an IR layer's output can be read in the QONNX graph: ``int = (y - bias) / scale``."""

    layer: int
    tensor: str
    scale: np.ndarray
    bias: np.ndarray
    layout: str


@dataclass(frozen=True)
class ClosedChain:
    """The exact function a thresholded layer implements (kept to verify the thresholds)."""

    ops: list
    quantizer: object
    lo: np.ndarray
    hi: np.ndarray

    def level(self, acc: int, c: int) -> int:
        """The exact output level of channel *c* for accumulator *acc*."""
        return self.quantizer.level(exact.evaluate(self.ops, Fraction(acc), c), c)
