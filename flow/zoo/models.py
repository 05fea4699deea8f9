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
  (:func:`input_scale`), so for the digits at 8 bits it is lossless.
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

SCALINGS = ("float", "pot")
# Scale statistics for activations are gathered over this many training steps before the
# scale becomes a learned parameter; Brevitas' default (300) is 13 epochs of digits.
ACT_STATS_STEPS = 30


def input_scale(lo: float, hi: float, bits: int) -> tuple[float, bool]:
    """The constant power-of-two input scale for data in ``[lo, hi]``.

    Parameters
    ----------
    lo, hi : float
        Smallest and largest training input.
    bits : int
        Input bit width, 2..8 (1 bit is bipolar with scale 1).

    Returns
    -------
    scale : float
        The smallest power of two ``s`` with every input within the integer range times ``s``:
        ``hi / s <= 2**bits - 1`` for non-negative data, ``hi / s <= 2**(bits-1) - 1`` and
        ``lo / s >= -2**(bits-1)`` otherwise.
    signed : bool
        Whether the data has negative values.
    """
    signed = lo < 0.0
    top = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    bottom = 2 ** (bits - 1) if signed else 1
    need = max(hi / top if top else math.inf, -lo / bottom if signed else 0.0)
    if need <= 0.0:
        return 1.0, signed
    e = math.ceil(math.log2(need))
    # log2 is inexact near powers of two; settle the exponent with exact comparisons.
    while e > -126 and 2.0 ** (e - 1) >= need:
        e -= 1
    while 2.0**e < need:
        e += 1
    return 2.0**e, signed


def _check_bits(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8:
        raise GatemillError(f"{name} must be an integer from 1 to 8, not {value!r}.")
    return value


def _check_widths(name: str, values: object) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise GatemillError(
            f"{name} must be a non-empty list of positive layer widths, not {values!r}."
        )
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise GatemillError(
                f"{name} must hold positive integer layer widths; {v!r} in {list(values)!r} "
                f"is not one."
            )
    return tuple(values)


class _FloatParts:
    """Plain torch layers for the float twin."""

    def __init__(self, *, abits: int) -> None:
        self.abits = abits

    def input(self) -> nn.Module:
        return nn.Identity()

    def linear(self, n_in: int, n_out: int, *, bias: bool) -> nn.Module:
        return nn.Linear(n_in, n_out, bias=bias)

    def conv(self, c_in: int, c_out: int, *, bias: bool) -> nn.Module:
        return nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias)

    def act(self) -> nn.Module:
        # The bipolar quantizer clips at +-1 like a hard tanh; a ReLU twin would be unfair.
        return nn.Hardtanh() if self.abits == 1 else nn.ReLU()


class _QuantParts:
    """Brevitas layers for the given bit widths and scaling."""

    def __init__(
        self,
        *,
        wbits: int,
        abits: int,
        scaling: str,
        per_channel: bool,
        in_bits: int,
        in_range: tuple[float, float],
    ) -> None:
        self.wbits, self.abits, self.scaling = wbits, abits, scaling
        self.per_channel, self.in_bits, self.in_range = per_channel, in_bits, in_range

    def input(self) -> nn.Module:
        from brevitas.nn import QuantIdentity
        from brevitas.quant import SignedBinaryActPerTensorConst

        from .quantizers import ConstIntActQuant, ConstUintActQuant

        if self.in_bits == 1:
            return QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
        scale, signed = input_scale(*self.in_range, self.in_bits)
        # Brevitas' constant is the threshold: scale times the integer scaling of the range.
        threshold = scale * (2 ** (self.in_bits - 1) if signed else 2**self.in_bits - 1)
        return QuantIdentity(
            act_quant=ConstIntActQuant if signed else ConstUintActQuant,
            bit_width=self.in_bits,
            min_val=-threshold if signed else 0.0,
            max_val=threshold,
            return_quant_tensor=True,
        )

    def _weight_quant(self, fan_in: int) -> dict:
        from brevitas.quant import (
            Int8WeightPerChannelFloat,
            Int8WeightPerTensorFloat,
            SignedBinaryWeightPerTensorConst,
        )
        from brevitas.quant.fixed_point import (
            Int8WeightPerChannelFixedPoint,
            Int8WeightPerTensorFixedPoint,
        )

        if self.wbits == 1:
            # A power of two near 1/sqrt(fan_in) keeps pre-activations near unit size (and the
            # logits of a binary last layer moderate) while keeping the graph power-of-two.
            const = 2.0 ** -round(math.log2(math.sqrt(fan_in)))
            return {"weight_quant": SignedBinaryWeightPerTensorConst, "weight_scaling_const": const}
        quant = {
            ("float", False): Int8WeightPerTensorFloat,
            ("float", True): Int8WeightPerChannelFloat,
            ("pot", False): Int8WeightPerTensorFixedPoint,
            ("pot", True): Int8WeightPerChannelFixedPoint,
        }[self.scaling, self.per_channel]
        return {"weight_quant": quant, "weight_bit_width": self.wbits}

    def _bias_quant(self, bias: bool) -> dict:
        from brevitas.quant import Int32Bias

        return {"bias_quant": Int32Bias} if bias else {}

    def linear(self, n_in: int, n_out: int, *, bias: bool) -> nn.Module:
        from brevitas.nn import QuantLinear

        return QuantLinear(
            n_in, n_out, bias=bias, **self._weight_quant(n_in), **self._bias_quant(bias)
        )

    def conv(self, c_in: int, c_out: int, *, bias: bool) -> nn.Module:
        from brevitas.nn import QuantConv2d

        return QuantConv2d(
            c_in,
            c_out,
            3,
            padding=1,
            bias=bias,
            **self._weight_quant(9 * c_in),
            **self._bias_quant(bias),
        )

    def act(self) -> nn.Module:
        from brevitas.nn import QuantIdentity, QuantReLU
        from brevitas.quant import (
            SignedBinaryActPerTensorConst,
            Uint8ActPerTensorFixedPoint,
            Uint8ActPerTensorFloat,
        )

        # Activations return QuantTensors so the next layer's bias can be put on its
        # accumulator's scale.
        if self.abits == 1:
            return QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
        quant = Uint8ActPerTensorFloat if self.scaling == "float" else Uint8ActPerTensorFixedPoint
        return QuantReLU(
            act_quant=quant,
            bit_width=self.abits,
            collect_stats_steps=ACT_STATS_STEPS,
            return_quant_tensor=True,
        )


def _parts(
    *,
    quant: bool,
    wbits: int,
    abits: int,
    scaling: str,
    per_channel: bool,
    in_bits: int,
    in_range: tuple[float, float],
) -> _FloatParts | _QuantParts:
    _check_bits("wbits", wbits)
    _check_bits("abits", abits)
    _check_bits("in_bits", in_bits)
    if scaling not in SCALINGS:
        raise GatemillError(f"scaling must be one of {', '.join(SCALINGS)}, not {scaling!r}.")
    lo, hi = (float(v) for v in in_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise GatemillError(f"in_range must be a finite (low, high) pair, not {in_range!r}.")
    if not quant:
        return _FloatParts(abits=abits)
    return _QuantParts(
        wbits=wbits,
        abits=abits,
        scaling=scaling,
        per_channel=bool(per_channel),
        in_bits=in_bits,
        in_range=(lo, hi),
    )


def _dense(layers: OrderedDict, parts, n_in: int, hidden, *, batchnorm: bool, tag: str) -> int:
    for i, width in enumerate(hidden):
        layers[f"{tag}{i}"] = parts.linear(n_in, width, bias=not batchnorm)
        if batchnorm:
            layers[f"{tag}{i}_bn"] = nn.BatchNorm1d(width)
        layers[f"{tag}{i}_act"] = parts.act()
        n_in = width
    return n_in


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
    parts = _parts(
        quant=quant,
        wbits=wbits,
        abits=abits,
        scaling=scaling,
        per_channel=per_channel,
        in_bits=in_bits,
        in_range=in_range,
    )
    hidden = _check_widths("hidden", hidden)
    shape = _check_widths("in_shape", in_shape)
    _check_classes(n_classes)
    layers: OrderedDict[str, nn.Module] = OrderedDict(input=parts.input())
    if len(shape) > 1:
        layers["flatten"] = nn.Flatten()
    n = _dense(layers, parts, math.prod(shape), hidden, batchnorm=batchnorm, tag="fc")
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
    parts = _parts(
        quant=quant,
        wbits=wbits,
        abits=abits,
        scaling=scaling,
        per_channel=per_channel,
        in_bits=in_bits,
        in_range=in_range,
    )
    channels = _check_widths("channels", channels)
    hidden = _check_widths("hidden", hidden)
    shape = _check_widths("in_shape", in_shape)
    _check_classes(n_classes)
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
    n = _dense(layers, parts, c * h * w, hidden, batchnorm=batchnorm, tag="fc")
    layers["out"] = parts.linear(n, n_classes, bias=True)
    return nn.Sequential(layers)


def _check_classes(n_classes: object) -> None:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise GatemillError(f"n_classes must be an integer of at least 2, not {n_classes!r}.")


def _lut_models() -> dict[str, Callable[..., nn.Sequential]]:
    # the LUT families build on the helpers above, which their modules import lazily
    from .lutnet import build_lutnet
    from .poetbin import build_poetbin

    return {"lutnet": build_lutnet, "poetbin": build_poetbin}


MODELS: dict[str, Callable[..., nn.Sequential]] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
    **_lut_models(),
}
"""Model builders by kind; each takes keyword-only arguments (see :func:`build_mlp`)."""
