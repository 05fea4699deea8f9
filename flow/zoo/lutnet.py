"""LogicNets-style networks: dense layers with a fixed sparse connectivity per neuron.

Every neuron of every layer reads ``fanin`` of its layer's inputs, chosen at random (seeded)
when the model is built and kept fixed while training: the other weights are zero and stay
zero (their gradients are masked, and Adam leaves a parameter with zero gradients alone). The
model exports to QONNX as ordinary ``QuantLinear`` layers whose weight matrices are mostly
zero; the import finds the sparsity and, when a neuron's input bits (``fanin * abits``) are
few, enumerates each neuron into a truth table (a ``LutLayer``).

The defaults (2-bit inputs and activations, fan-in 6) make every neuron a 12-bit table.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import GatemillError
from .parts import check_bits, check_classes, check_widths, layer_parts


def connectivity(n_in: int, n_out: int, fanin: int, rng: np.random.Generator) -> np.ndarray:
    """A random fixed fan-in mask that spreads the neurons over all inputs.

    Each neuron takes the ``fanin`` least-used inputs so far (ties broken at random), so
    every input is read before any is read twice.

    Returns
    -------
    ndarray of float32, shape (n_out, n_in)
        1 where a neuron reads an input, 0 elsewhere; ``fanin`` ones per row.
    """
    if not 1 <= fanin <= n_in:
        raise ValueError(f"fanin must be 1..{n_in}, not {fanin}")
    mask = np.zeros((n_out, n_in), np.float32)
    used = np.zeros(n_in, np.int64)
    for row in mask:
        order = rng.permutation(n_in)
        chosen = order[np.argsort(used[order], kind="stable")[:fanin]]
        row[chosen] = 1.0
        used[chosen] += 1
    return mask


def apply_mask(linear: nn.Module, mask: np.ndarray) -> nn.Module:
    """Zero *linear*'s weights outside *mask* and keep them zero while training.

    The mask is kept as the buffer ``fanin_mask`` (saved with the ``state_dict``).
    """
    m = torch.from_numpy(mask)
    linear.register_buffer("fanin_mask", m)
    with torch.no_grad():
        linear.weight.mul_(m)
    linear.weight.register_hook(lambda grad: grad * linear.fanin_mask)
    return linear


def build_lutnet(
    *,
    in_shape: Sequence[int],
    n_classes: int,
    hidden: Sequence[int] = (64, 32),
    fanin: int = 6,
    wbits: int = 4,
    abits: int = 2,
    scaling: str = "float",
    per_channel: bool = False,
    batchnorm: bool = True,
    in_bits: int = 2,
    in_range: tuple[float, float] = (0.0, 1.0),
    mask_seed: int = 0,
    quant: bool = True,
    out_bits: int | None = None,
) -> nn.Sequential:
    """A sparse multi-layer perceptron: input quantizer, (masked linear, BatchNorm,
    activation) per hidden width, and a masked last linear layer giving logits (with
    *out_bits*, then a BatchNorm and a quantizer of the logits).

    Parameters
    ----------
    in_shape : sequence of int
        Shape of one sample, ``(features,)``.
    n_classes : int
        Number of logits.
    hidden : sequence of int
        Widths of the hidden layers.
    fanin : int
        Inputs of every neuron (all layers, the last included); at most the narrowest
        layer input.
    wbits, abits, in_bits : int
        Weight, activation and input bit widths (1..8). A neuron's table has
        ``fanin * abits`` address bits (``fanin * in_bits`` in the first layer); weights do
        not change the table size.
    scaling, per_channel, batchnorm, in_range, quant
        As for :func:`gatemill.flow.zoo.models.build_mlp`.
    mask_seed : int
        Seed of the connectivity masks (the same seed gives the same masks).
    out_bits : int, optional
        Bits of the logits, 1..8 (1 = bipolar): LogicNets' ``output_bitwidth``; the last
        layer's tables then have ``out_bits`` outputs instead of its accumulator's width.

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    GatemillError
        For an argument out of range; the message shows the value.
    """
    parts = layer_parts(
        quant=quant,
        wbits=wbits,
        abits=abits,
        scaling=scaling,
        per_channel=per_channel,
        in_bits=in_bits,
        in_range=in_range,
    )
    if out_bits is not None:
        check_bits("out_bits", out_bits)
    hidden = check_widths("hidden", hidden)
    shape = check_widths("in_shape", in_shape)
    check_classes(n_classes)
    if wbits == 1:
        raise GatemillError(
            "A lutnet needs weights of 2 bits or more (wbits >= 2): bipolar weights cannot "
            "be zero, so a 1-bit layer cannot be sparse."
        )
    n_in = math.prod(shape)
    widths = (n_in, *hidden)
    if isinstance(fanin, bool) or not isinstance(fanin, int) or not 1 <= fanin <= min(widths):
        raise GatemillError(
            f"fanin must be an integer from 1 to {min(widths)} (the narrowest layer input of "
            f"{list(widths)}), not {fanin!r}."
        )
    layers: OrderedDict[str, nn.Module] = OrderedDict(input=parts.input())
    if len(shape) > 1:
        layers["flatten"] = nn.Flatten()
    sizes = (*widths, n_classes)
    for i in range(len(sizes) - 1):
        rng = np.random.default_rng([mask_seed, i])
        last = i == len(sizes) - 2
        mask = connectivity(sizes[i], sizes[i + 1], fanin, rng)
        quantized = not last or out_bits is not None
        linear = parts.linear(sizes[i], sizes[i + 1], bias=not (quantized and batchnorm))
        tag = "out" if last else f"fc{i}"
        layers[tag] = apply_mask(linear, mask)
        if not quantized:
            break
        if batchnorm:
            layers[f"{tag}_bn"] = nn.BatchNorm1d(sizes[i + 1])
        layers[f"{tag}_act"] = parts.out_act(out_bits) if last else parts.act()
    return nn.Sequential(layers)
