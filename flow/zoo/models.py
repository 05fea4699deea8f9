"""Brevitas models of the zoo, and their float twins.

Every builder in :data:`MODELS` takes keyword-only arguments and returns an ``nn.Sequential``
whose ``forward`` gives plain logits. With ``quant=False`` the same builder makes the float
twin (plain torch layers, same shapes), the baseline that ``train.json`` reports.

Quantizers, by bit width:

- 1 bit: FINN-style bipolar. Weights use a constant power-of-two scale
  (``SignedBinaryWeightPerTensorConst``), activations ``SignedBinaryActPerTensorConst`` in a
  ``QuantIdentity``; both export as QONNX ``BipolarQuant``.
- 2..8 bits: signed narrow-range weights and unsigned ``QuantReLU`` activations, with learned
  float scales (``scaling="float"``) or power-of-two scales (``scaling="pot"``).
- The input quantizer has a constant power-of-two scale fixed from the training data range
  (:func:`~gatemill.flow.zoo.parts.input_scale`), so for the digits at 8 bits it is lossless.
- Biases (present only where no BatchNorm follows, and in the last layer) are quantized to
  32-bit integers on the accumulator's scale (input scale times weight scale), so the last
  layer's output is an exact integer accumulator times a scale.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence

from torch import nn

from ..errors import GatemillError
from .graphs import build_cnn1d, build_deepsets, build_rescnn
from .lutnet import build_lutnet
from .parts import check_classes, check_widths, dense, layer_parts
from .poetbin import build_poetbin


def build_mlp(
    *,
    in_shape: Sequence[int],
    n_classes: int,
    hidden: Sequence[int] = (64, 64),
    wbits: int = 4,
    abits: int = 4,
    scaling: str = "float",
    per_channel: bool = False,
    batchnorm: bool = True,
    in_bits: int = 8,
    in_range: tuple[float, float] = (0.0, 1.0),
    quant: bool = True,
) -> nn.Sequential:
    """A multi-layer perceptron: input quantizer, (linear, BatchNorm, activation) per hidden
    width, and a last linear layer giving logits.

    Parameters
    ----------
    in_shape : sequence of int
        Shape of one sample, ``(features,)``.
    n_classes : int
        Number of logits.
    hidden : sequence of int
        Widths of the hidden layers.
    wbits, abits : int
        Weight and activation bit widths, 1..8 (1 = bipolar).
    scaling : {"float", "pot"}
        Learned float scales, or power-of-two scales.
    per_channel : bool
        One weight scale per output channel instead of one per tensor.
    batchnorm : bool
        Put a BatchNorm between each hidden layer and its activation (hidden layers then have
        no bias).
    in_bits : int
        Input bit width, 1..8; see :func:`input_scale`.
    in_range : (float, float)
        Smallest and largest training input, which fix the input quantizer's scale.
    quant : bool
        False builds the float twin.

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
    hidden = check_widths("hidden", hidden)
    shape = check_widths("in_shape", in_shape)
    check_classes(n_classes)
    layers: OrderedDict[str, nn.Module] = OrderedDict(input=parts.input())
    if len(shape) > 1:
        layers["flatten"] = nn.Flatten()
    n = dense(layers, parts, math.prod(shape), hidden, batchnorm=batchnorm, tag="fc")
    layers["out"] = parts.linear(n, n_classes, bias=True)
    return nn.Sequential(layers)


def build_cnn(
    *,
    in_shape: Sequence[int],
    n_classes: int,
    channels: Sequence[int] = (16, 32),
    hidden: Sequence[int] = (64,),
    wbits: int = 4,
    abits: int = 4,
    scaling: str = "float",
    per_channel: bool = False,
    batchnorm: bool = True,
    in_bits: int = 8,
    in_range: tuple[float, float] = (0.0, 1.0),
    quant: bool = True,
) -> nn.Sequential:
    """A small convolutional network: input quantizer, (3x3 convolution with padding 1,
    BatchNorm, activation, 2x2 max-pool) per entry of ``channels``, flatten, (linear,
    BatchNorm, activation) per hidden width, and a last linear layer giving logits.

    Parameters
    ----------
    in_shape : sequence of int
        Shape of one sample, ``(C, H, W)``; each pooling halves H and W (rounding down).
    channels : sequence of int
        Output channels of each convolution stage.
    hidden : sequence of int
        Widths of the dense layers after flattening.
    n_classes, wbits, abits, scaling, per_channel, batchnorm, in_bits, in_range, quant
        As for :func:`build_mlp`.

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    GatemillError
        For an argument out of range, or more pooling stages than the image size allows.
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
    channels = check_widths("channels", channels)
    hidden = check_widths("hidden", hidden)
    shape = check_widths("in_shape", in_shape)
    check_classes(n_classes)
    if len(shape) != 3:
        raise GatemillError(f"A cnn takes (C, H, W) samples, not samples of shape {shape}.")
    c, h, w = shape
    if min(h, w) < 2 ** len(channels):
        raise GatemillError(
            f"{len(channels)} convolution stages (channels {list(channels)}) pool {h}x{w} "
            f"images below 1x1; use at most {int(math.log2(min(h, w)))} stages."
        )
    layers: OrderedDict[str, nn.Module] = OrderedDict(input=parts.input())
    for i, c_out in enumerate(channels):
        layers[f"conv{i}"] = parts.conv(c, c_out, bias=not batchnorm)
        if batchnorm:
            layers[f"conv{i}_bn"] = nn.BatchNorm2d(c_out)
        layers[f"conv{i}_act"] = parts.act()
        layers[f"pool{i}"] = nn.MaxPool2d(2)
        c, h, w = c_out, h // 2, w // 2
    layers["flatten"] = nn.Flatten()
    n = dense(layers, parts, c * h * w, hidden, batchnorm=batchnorm, tag="fc")
    layers["out"] = parts.linear(n, n_classes, bias=True)
    return nn.Sequential(layers)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
    "rescnn": build_rescnn,
    "cnn1d": build_cnn1d,
    "deepsets": build_deepsets,
    "lutnet": build_lutnet,
    "poetbin": build_poetbin,
}
"""Model builders by kind; each takes keyword-only arguments (see :func:`build_mlp`)."""
