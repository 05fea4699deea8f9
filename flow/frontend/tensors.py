"""The values the streamliner passes along the data path (:mod:`.streamline`): quantized
tensors, pending chains of elementwise ops, and where each IR layer's output can be read in
the QONNX graph."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from . import exact

# The QONNX layouts the walk meets, each with its channel axis, and its IR shape (channels last):
# NC (N, C) -> (C,); NCHW (N, C, H, W) -> (H, W, C); NCL, a 1-D signal (N, C, L) -> (1, L, C);
# NSC, a set of S elements (N, S, C) -> (S, C).
CHANNEL_AXIS = {"NC": 1, "NCHW": 1, "NCL": 1, "NSC": -1}


@dataclass
class IntTensor:
    """A quantized tensor on the data path: the real value of channel ``c`` is
    ``scales[c] * v + offsets[c]`` for the integers ``v`` on the wire.

    Offsets are 0 after a quantizer; only the model's raw input (the user's integers after an
    affine pre-processing, :mod:`.inputs`) carries them to the first layer.
    """

    name: str
    dtype: object
    scales: list[Fraction]  # per channel (last IR axis)
    shape: tuple[int, ...]  # IR per-sample shape, channels last
    layout: str  # the QONNX layout (CHANNEL_AXIS)
    perm: np.ndarray | None = None  # after Flatten of a map: QONNX index of each IR index
    offsets: list[Fraction] | None = None  # per channel; None: all 0
    layer: str = ""  # the IR layer whose output holds it ("": the graph input)

    def offset(self, c: int) -> Fraction:
        """The real value of integer 0 in channel *c*."""
        return Fraction(0) if self.offsets is None else self.offsets[c]

    @property
    def has_offsets(self) -> bool:
        return self.offsets is not None and any(self.offsets)


@dataclass
class Chain:
    """Elementwise ops pending on an accumulator (``mv`` set: the keyword arguments of the
    layer ``make`` that computes it from the layers ``reads``) or on an integer tensor."""

    source: IntTensor | None
    mv: dict | None
    channels: int
    lo: np.ndarray
    hi: np.ndarray
    ops: list = field(default_factory=list)
    tensor: str = ""
    shape: tuple[int, ...] = ()
    layout: str = "NC"
    make: type | None = None  # the layer kind of the accumulator (MatrixVector if None)
    reads: tuple[str, ...] = ()

    def copy(self, name: str | None = None) -> Chain:
        """A copy for one consumer of a forked value (its ops extended independently); *name*
        renames the pending layer, which each consumer then builds for itself."""
        mv = None if self.mv is None else {**self.mv, **({"name": name} if name else {})}
        return dataclasses.replace(self, mv=mv, ops=list(self.ops))


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
