"""Zoo models beyond a chain of layers: a residual CNN, a 1-D CNN and a deep set.

Each builder takes the keyword arguments of :func:`gatemill.flow.zoo.models.build_mlp` (plus
``channels``) and, with ``quant=False``, makes the float twin. They use the same quantizers
(:mod:`gatemill.flow.zoo.parts`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import GatemillError
from .parts import check_classes, check_widths, dense, layer_parts


def _parts(quant, wbits, abits, scaling, per_channel, in_bits, in_range):
    return layer_parts(
        quant=quant,
        wbits=wbits,
        abits=abits,
        scaling=scaling,
        per_channel=per_channel,
        in_bits=in_bits,
        in_range=in_range,
    )


def _conv_bn(parts, c_in: int, c_out: int, *, batchnorm: bool, dims: int = 2) -> list:
    bn = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    conv = parts.conv(c_in, c_out, bias=not batchnorm, dims=dims)
    return [conv, bn(c_out)] if batchnorm else [conv]


class ResidualCNN(nn.Module):
    """stem (conv-BN-act), residual blocks (conv-BN-act-conv-BN, plus the identity), 2x2
    max-pool, flatten, dense head.

    Both operands of every residual Add are quantized by one quantizer (the stem's
    activation, applied again to the block's output), so their scales are equal and the sum
    is an exact integer Add; a fresh activation requantizes the sum.
    """

    def __init__(self, parts, c: int, h: int, w: int, channels, hidden, n_classes, batchnorm):
        super().__init__()
        width, blocks = channels[0], len(channels) - 1
        if any(ch != width for ch in channels):
            raise GatemillError(
                f"A rescnn's channels are the stem's width then one entry per residual block, "
                f"all equal (the identity adds them); {list(channels)} are not."
            )
        self.input = parts.input()
        self.stem = nn.Sequential(*_conv_bn(parts, c, width, batchnorm=batchnorm))
        self.stem_act = parts.act()
        self.blocks = nn.ModuleList()
        self.block_acts = nn.ModuleList()
        for _ in range(blocks):
            self.blocks.append(
                nn.Sequential(
                    *_conv_bn(parts, width, width, batchnorm=batchnorm),
                    parts.act(),
                    *_conv_bn(parts, width, width, batchnorm=batchnorm),
                )
            )
            self.block_acts.append(parts.act())
        self.pool = nn.MaxPool2d(2)
        layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
        n = dense(layers, parts, width * (h // 2) * (w // 2), hidden, batchnorm=batchnorm, tag="fc")
        layers["out"] = parts.linear(n, n_classes, bias=True)
        self.head = nn.Sequential(layers)

    def forward(self, x):
        x = self.stem_act(self.stem(self.input(x)))
        # the skip and the body share the stem's quantizer (see the class docstring); a block
        # then requantizes with its own
        skip_quant = self.stem_act
        for block, act in zip(self.blocks, self.block_acts, strict=True):
            x = act(skip_quant(block(x)) + x)
            skip_quant = act
        return self.head(self.pool(x))


def build_rescnn(
    *,
    in_shape: Sequence[int],
    n_classes: int,
    channels: Sequence[int] = (16, 16),
    hidden: Sequence[int] = (64,),
    wbits: int = 4,
    abits: int = 4,
    scaling: str = "float",
    per_channel: bool = False,
    batchnorm: bool = True,
    in_bits: int = 8,
    in_range: tuple[float, float] = (0.0, 1.0),
    quant: bool = True,
) -> nn.Module:
    """A small residual CNN (:class:`ResidualCNN`) on ``(C, H, W)`` images.

    Parameters
    ----------
    channels : sequence of int
        The stem's width, then one equal entry per residual block: ``(16, 16)`` is a stem and
        one block of 16 channels.
    in_shape, n_classes, hidden, wbits, abits, scaling, per_channel, batchnorm, in_bits,
    in_range, quant
        As for :func:`gatemill.flow.zoo.models.build_cnn`.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    GatemillError
        For an argument out of range, or channels of unequal widths.
    """
    parts = _parts(quant, wbits, abits, scaling, per_channel, in_bits, in_range)
    channels = check_widths("channels", channels)
    hidden = check_widths("hidden", hidden)
    shape = check_widths("in_shape", in_shape)
    check_classes(n_classes)
    if len(shape) != 3 or min(shape[1:]) < 2:
        raise GatemillError(f"A rescnn takes (C, H, W) samples, H, W >= 2, not {shape}.")
    return ResidualCNN(parts, *shape, channels, hidden, n_classes, batchnorm)


def build_cnn1d(
    *,
    in_shape: Sequence[int],
    n_classes: int,
    channels: Sequence[int] = (8, 16),
    hidden: Sequence[int] = (32,),
    wbits: int = 4,
    abits: int = 4,
    scaling: str = "float",
    per_channel: bool = False,
    batchnorm: bool = True,
    in_bits: int = 8,
    in_range: tuple[float, float] = (0.0, 1.0),
    quant: bool = True,
) -> nn.Sequential:
    """A 1-D CNN on ``(C, L)`` signals: (3-tap Conv1d with padding 1, BatchNorm, activation,
    MaxPool1d(2)) per entry of ``channels``, flatten, dense layers, logits.

    Parameters
    ----------
    in_shape : sequence of int
        ``(C, L)``; each pooling halves L (rounding down).
    channels : sequence of int
        Output channels of each convolution stage.
    n_classes, hidden, wbits, abits, scaling, per_channel, batchnorm, in_bits, in_range, quant
        As for :func:`gatemill.flow.zoo.models.build_cnn`.

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    GatemillError
        For an argument out of range, or more stages than the length allows.
    """
    parts = _parts(quant, wbits, abits, scaling, per_channel, in_bits, in_range)
    channels = check_widths("channels", channels)
    hidden = check_widths("hidden", hidden)
    shape = check_widths("in_shape", in_shape)
    check_classes(n_classes)
    if len(shape) != 2:
        raise GatemillError(f"A cnn1d takes (C, L) samples, not samples of shape {shape}.")
    c, length = shape
    if length < 2 ** len(channels):
        raise GatemillError(
            f"{len(channels)} convolution stages pool {length} samples below 1; use at most "
            f"{int(math.log2(length))} stages."
        )
    layers: OrderedDict[str, nn.Module] = OrderedDict(input=parts.input())
    for i, c_out in enumerate(channels):
        for j, layer in enumerate(_conv_bn(parts, c, c_out, batchnorm=batchnorm, dims=1)):
            layers[f"conv{i}" + ("_bn" if j else "")] = layer
        layers[f"conv{i}_act"] = parts.act()
        layers[f"pool{i}"] = nn.MaxPool1d(2)
        c, length = c_out, length // 2
    layers["flatten"] = nn.Flatten()
    n = dense(layers, parts, c * length, hidden, batchnorm=batchnorm, tag="fc")
    layers["out"] = parts.linear(n, n_classes, bias=True)
    return nn.Sequential(layers)


class DeepSet(nn.Module):
    """phi (per-element Linear and activation, on the last axis), the mean over the elements,
    an activation that requantizes it, then rho (dense layers) and the logits."""

    def __init__(self, parts, features, channels, hidden, n_classes, batchnorm):
        super().__init__()
        self.input = parts.input()
        phi: list[nn.Module] = []
        n = features
        for width in channels:
            # no BatchNorm here: BatchNorm1d normalizes axis 1, the elements of a set
            phi += [parts.linear(n, width, bias=True), parts.act()]
            n = width
        self.phi = nn.Sequential(*phi)
        self.pooled = parts.act()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        n = dense(layers, parts, n, hidden, batchnorm=batchnorm, tag="fc")
        layers["out"] = parts.linear(n, n_classes, bias=True)
        self.rho = nn.Sequential(layers)

    def forward(self, x):  # x: (N, elements, features)
        h = self.phi(self.input(x))
        h = getattr(h, "value", h)  # a QuantTensor's values: the mean is a float op
        return self.rho(self.pooled(torch.mean(h, dim=1)))


def build_deepsets(
    *,
    in_shape: Sequence[int],
    n_classes: int,
    channels: Sequence[int] = (64, 64),
    hidden: Sequence[int] = (64,),
    wbits: int = 4,
    abits: int = 4,
    scaling: str = "float",
    per_channel: bool = False,
    batchnorm: bool = True,
    in_bits: int = 8,
    in_range: tuple[float, float] = (0.0, 1.0),
    quant: bool = True,
) -> nn.Module:
    """A deep set (:class:`DeepSet`) on ``(elements, features)`` samples.

    Parameters
    ----------
    channels : sequence of int
        Widths of phi, the per-element layers (Linear with bias, activation; no BatchNorm).
    hidden : sequence of int
        Widths of rho's dense layers after the mean over the elements.
    in_shape, n_classes, wbits, abits, scaling, per_channel, batchnorm, in_bits, in_range,
    quant
        As for :func:`gatemill.flow.zoo.models.build_mlp`.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    GatemillError
        For an argument out of range, or samples that are not ``(elements, features)``.
    """
    parts = _parts(quant, wbits, abits, scaling, per_channel, in_bits, in_range)
    channels = check_widths("channels", channels)
    hidden = check_widths("hidden", hidden)
    shape = check_widths("in_shape", in_shape)
    check_classes(n_classes)
    if len(shape) != 2:
        raise GatemillError(
            f"A deepsets model takes (elements, features) samples, not samples of shape {shape}."
        )
    return DeepSet(parts, shape[1], channels, hidden, n_classes, batchnorm)
