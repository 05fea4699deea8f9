"""The building blocks the zoo's model families share: bit-width and shape checks, the input
scale, and the layer factories of a quantized model (Brevitas) and of its float twin.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

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


def check_bits(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8:
        raise GatemillError(f"{name} must be an integer from 1 to 8, not {value!r}.")
    return value


def check_widths(name: str, values: object) -> tuple[int, ...]:
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


class FloatParts:
    """Plain torch layers for the float twin."""

    def __init__(self, *, abits: int) -> None:
        self.abits = abits

    def input(self) -> nn.Module:
        return nn.Identity()

    def linear(self, n_in: int, n_out: int, *, bias: bool) -> nn.Module:
        return nn.Linear(n_in, n_out, bias=bias)

    def conv(self, c_in: int, c_out: int, *, bias: bool, dims: int = 2) -> nn.Module:
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        return conv(c_in, c_out, 3, padding=1, bias=bias)

    def act(self) -> nn.Module:
        # The bipolar quantizer clips at +-1 like a hard tanh; a ReLU twin would be unfair.
        return nn.Hardtanh() if self.abits == 1 else nn.ReLU()

    def out_act(self, bits: int) -> nn.Module:
        return nn.Identity()


class QuantParts:
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

    def conv(self, c_in: int, c_out: int, *, bias: bool, dims: int = 2) -> nn.Module:
        """A 3-wide convolution with padding 1: 3x3 for ``dims=2``, 3 taps for ``dims=1``."""
        from brevitas.nn import QuantConv1d, QuantConv2d

        return (QuantConv2d if dims == 2 else QuantConv1d)(
            c_in,
            c_out,
            3,
            padding=1,
            bias=bias,
            **self._weight_quant(3**dims * c_in),
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

    def out_act(self, bits: int) -> nn.Module:
        """A signed quantizer of *bits* for logits (1 = bipolar), returning a tensor (no
        layer after it needs the scale)."""
        from brevitas.nn import QuantIdentity
        from brevitas.quant import (
            Int8ActPerTensorFixedPoint,
            Int8ActPerTensorFloat,
            SignedBinaryActPerTensorConst,
        )

        if bits == 1:
            return QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        quant = Int8ActPerTensorFloat if self.scaling == "float" else Int8ActPerTensorFixedPoint
        return QuantIdentity(act_quant=quant, bit_width=bits, collect_stats_steps=ACT_STATS_STEPS)


def layer_parts(
    *,
    quant: bool,
    wbits: int,
    abits: int,
    scaling: str,
    per_channel: bool,
    in_bits: int,
    in_range: tuple[float, float],
) -> FloatParts | QuantParts:
    check_bits("wbits", wbits)
    check_bits("abits", abits)
    check_bits("in_bits", in_bits)
    if scaling not in SCALINGS:
        raise GatemillError(f"scaling must be one of {', '.join(SCALINGS)}, not {scaling!r}.")
    lo, hi = (float(v) for v in in_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise GatemillError(f"in_range must be a finite (low, high) pair, not {in_range!r}.")
    if not quant:
        return FloatParts(abits=abits)
    return QuantParts(
        wbits=wbits,
        abits=abits,
        scaling=scaling,
        per_channel=bool(per_channel),
        in_bits=in_bits,
        in_range=(lo, hi),
    )


def dense(layers: OrderedDict, parts, n_in: int, hidden, *, batchnorm: bool, tag: str) -> int:
    for i, width in enumerate(hidden):
        layers[f"{tag}{i}"] = parts.linear(n_in, width, bias=not batchnorm)
        if batchnorm:
            layers[f"{tag}{i}_bn"] = nn.BatchNorm1d(width)
        layers[f"{tag}{i}_act"] = parts.act()
        n_in = width
    return n_in


def check_classes(n_classes: object) -> None:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise GatemillError(f"n_classes must be an integer of at least 2, not {n_classes!r}.")
