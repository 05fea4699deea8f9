"""Magnitude pruning during quantization-aware training (``gatemill train --sparsity S``).

The weights of every dense and convolution layer are pruned by magnitude, layer by layer, on
a schedule rather than in one cut (Zhu and Gupta, "To prune, or not to prune", 2017): the
share of zero weights grows from 0 at :attr:`Pruning.start` of the training steps to the
target at :attr:`Pruning.end` as ``S * (1 - (1 - t)**3)``, fast while the network has many
redundant weights and slowly near the end, and the remaining steps let the surviving
weights recover. A pruned weight stays zero (its mask is kept, and reapplied after every
optimizer step); a zero float weight quantizes to exactly 0, so the exported QONNX weights
have exactly those zeros, and the hardware skips them where weights are constants
(:attr:`gatemill.flow.kinds.matrix_vector.MatrixVector.shift_add`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import GatemillError


@dataclass(frozen=True)
class Pruning:
    """A pruning schedule.

    Parameters
    ----------
    sparsity : float
        The share of zero weights in every pruned layer at the end, in ``[0, 1)``.
    start, end : float
        The fractions of the training steps where pruning starts and where it reaches
        *sparsity* (``0 <= start < end <= 1``).
    """

    sparsity: float
    start: float = 0.2
    end: float = 0.7

    def __post_init__(self):
        s = self.sparsity
        if isinstance(s, bool) or not isinstance(s, int | float) or not 0.0 <= s < 1.0:
            raise GatemillError(
                f"--sparsity {s!r}: the share of zero weights must be a number in [0, 1), "
                "e.g. 0.9 for 90 % zeros."
            )
        if not 0.0 <= self.start < self.end <= 1.0:
            raise GatemillError(
                f"pruning must start before it ends, within the training (0 <= start < end <= "
                f"1), not start {self.start!r}, end {self.end!r}."
            )

    def at(self, progress: float) -> float:
        """The share of zero weights after *progress* (0..1) of the training steps."""
        t = min(max((progress - self.start) / (self.end - self.start), 0.0), 1.0)
        return self.sparsity * (1.0 - (1.0 - t) ** 3)


def prunable(model: nn.Module) -> list[nn.Module]:
    """The layers whose weights are pruned: every module with a weight of two or more
    dimensions (dense and convolution layers, quantized or not; not BatchNorm)."""
    return [
        mod
        for mod in model.modules()
        if isinstance(getattr(mod, "weight", None), nn.Parameter) and mod.weight.dim() >= 2
    ]


class Masks:
    """The pruning masks of *model*'s :func:`prunable` layers (all ones to begin with)."""

    def __init__(self, model: nn.Module):
        self.layers = prunable(model)
        self.masks = [torch.ones_like(m.weight, dtype=torch.bool) for m in self.layers]

    @torch.no_grad()
    def update(self, sparsity: float) -> None:
        """Prune every layer to *sparsity* by magnitude: the smallest ``|w|`` go, already
        pruned weights first (they are 0), so a mask only ever loses ones."""
        for layer, mask in zip(self.layers, self.masks, strict=True):
            w = layer.weight.abs() * mask
            k = round(sparsity * w.numel())
            if k <= int((~mask).sum()):
                continue
            # the k smallest magnitudes, ties broken by position (stable)
            order = torch.argsort(w.flatten(), stable=True)
            mask.view(-1)[order[:k]] = False

    @torch.no_grad()
    def apply(self) -> None:
        """Zero the pruned weights."""
        for layer, mask in zip(self.layers, self.masks, strict=True):
            layer.weight.mul_(mask)

    def achieved(self) -> list[float]:
        """The share of zero weights of each layer (rounded to 4 digits)."""
        return [round(float((m.weight == 0).float().mean()), 4) for m in self.layers]
