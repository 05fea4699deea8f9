"""Small Brevitas models of many shapes for the frontend tests (built, not downloaded)."""

from __future__ import annotations

import itertools

import brevitas.nn as qnn
import torch
import torch.nn as nn
from brevitas.export import export_qonnx
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8WeightPerTensorFixedPoint,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFixedPoint,
)


def weight_kw(bits: int, per_channel: bool = False, pot: bool = False) -> dict:
    if bits == 1:
        return {"weight_quant": SignedBinaryWeightPerTensorConst}
    kw = {"weight_bit_width": bits, "weight_scaling_per_output_channel": per_channel}
    if pot:
        kw["weight_quant"] = Int8WeightPerTensorFixedPoint
    return kw


def act(bits: int, kind: str = "relu", pot: bool = False) -> nn.Module:
    """A quantized activation: relu (unsigned), hardtanh/identity (signed), 1 bit = bipolar."""
    if bits == 1:
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
    if kind == "relu":
        if pot:
            return qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=bits)
        return qnn.QuantReLU(bit_width=bits)
    if kind == "hardtanh":
        return qnn.QuantHardTanh(bit_width=bits, min_val=-1.0, max_val=1.0)
    if pot:
        return qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=bits)
    return qnn.QuantIdentity(bit_width=bits)


def randomize_bn(bn: nn.Module, gen: torch.Generator, negative: bool = True) -> None:
    """Give a BatchNorm non-trivial statistics, some gammas negative."""
    c = bn.num_features
    with torch.no_grad():
        bn.weight.copy_(torch.rand(c, generator=gen) + 0.5)
        if negative:
            bn.weight[::3] *= -1
        bn.bias.copy_(torch.randn(c, generator=gen) * 0.3)
        bn.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
        bn.running_var.copy_(torch.rand(c, generator=gen) * 2 + 0.1)


def mlp(
    sizes,
    *,
    wbits=4,
    abits=4,
    in_bits=8,
    per_channel=False,
    bias=True,
    bn=True,
    act_kind="relu",
    pot=False,
    seed=0,
) -> nn.Module:
    """Input quantizer, then Linear(-BN)-act blocks, then a final Linear."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layers = [act(in_bits, "identity", pot) if in_bits > 1 else act(1)]
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        layers.append(qnn.QuantLinear(a, b, bias=bias, **weight_kw(wbits, per_channel, pot)))
        if last:
            break
        if bn:
            layers.append(nn.BatchNorm1d(b))
            randomize_bn(layers[-1], gen)
        layers.append(act(abits, act_kind, pot))
    return nn.Sequential(*layers).eval()


def cnn(
    in_ch,
    hw,
    convs,
    dense,
    *,
    wbits=4,
    abits=4,
    in_bits=8,
    per_channel=False,
    bias=True,
    bn=True,
    pool=True,
    seed=0,
) -> nn.Module:
    """convs: list of (out_ch, kernel, stride, padding); each conv-BN-act(-maxpool). *pool*:
    True for 2x2 max-pools, a (kernel, stride) pair for others, False for none; a pool is left
    out where the feature map is smaller than its kernel."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    pool_k, pool_s = (2, 2) if pool is True else pool or (0, 0)
    layers = [act(in_bits, "identity")]
    c = in_ch
    for oc, k, s, p in convs:
        layers.append(
            qnn.QuantConv2d(
                c, oc, k, stride=s, padding=p, bias=bias, **weight_kw(wbits, per_channel)
            )
        )
        if bn:
            layers.append(nn.BatchNorm2d(oc))
            randomize_bn(layers[-1], gen)
        layers.append(act(abits))
        hw = (hw + 2 * p - k) // s + 1
        if pool and hw >= pool_k:
            layers.append(nn.MaxPool2d(pool_k, pool_s))
            hw = (hw - pool_k) // pool_s + 1
        c = oc
    layers.append(nn.Flatten())
    sizes = [c * hw * hw, *dense]
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(qnn.QuantLinear(a, b, bias=bias, **weight_kw(wbits, per_channel)))
        if i < len(sizes) - 2:
            layers.append(act(abits))
    return nn.Sequential(*layers).eval()


def export(model: nn.Module, shape, path) -> str:
    """QONNX export of *model* for inputs of *shape* (batch 1)."""
    export_qonnx(model, torch.zeros(1, *shape), export_path=str(path), dynamo=False)
    return str(path)


def q17_input() -> nn.Module:
    """An 8-bit signed input quantizer of range [-1, 127/128] (scale 1/128, non-narrow), as
    FINN's CNV has ("Q1.7 input format")."""
    from gatemill.flow.zoo.quantizers import ConstIntActQuant

    return qnn.QuantIdentity(act_quant=ConstIntActQuant, bit_width=8, min_val=-1.0, max_val=1.0)


def u8_input() -> nn.Module:
    """An 8-bit unsigned input quantizer of range [0, 1] (scale float32(1/255))."""
    from gatemill.flow.zoo.quantizers import ConstUintActQuant

    return qnn.QuantIdentity(act_quant=ConstUintActQuant, bit_width=8, min_val=0.0, max_val=1.0)


class Preprocessed(nn.Module):
    """A float input, an affine pre-processing as bnn_pynq's (``x.view(N, -1)``; per-channel
    ``(x - mean) / std``; ``mul * x - sub``), then *body*."""

    def __init__(self, body, mul=2.0, sub=1.0, flatten=False, mean=None, std=None):
        super().__init__()
        self.body, self.mul, self.sub, self.flatten = body, mul, sub, flatten
        self.mean = None if mean is None else torch.tensor(mean).reshape(1, -1, 1, 1)
        self.std = None if std is None else torch.tensor(std).reshape(1, -1, 1, 1)

    def forward(self, x):
        if self.flatten:
            x = x.view(x.shape[0], -1)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.mul != 1.0 or self.sub != 0.0:
            x = self.mul * x - torch.tensor([self.sub])
        return self.body(x)


def pre_mlp(features, first, *, flatten=False, seed=0, **pre) -> nn.Module:
    """*first* (an input quantizer, or None), then Linear-BN-ReLU4-Linear, behind a
    pre-processing (:class:`Preprocessed`)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layers = [] if first is None else [first]
    layers.append(qnn.QuantLinear(features, 8, bias=True, weight_bit_width=4))
    layers += [nn.BatchNorm1d(8), qnn.QuantReLU(bit_width=4), qnn.QuantLinear(8, 3, bias=True)]
    randomize_bn(layers[-3], gen)
    return Preprocessed(nn.Sequential(*layers), flatten=flatten, **pre).eval()


def pre_cnn(in_ch, hw, first, *, padding=0, seed=0, **pre) -> nn.Module:
    """*first*, then Conv3x3-BN-ReLU4-Flatten-Linear on (in_ch, hw, hw), behind a
    pre-processing."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layers = [] if first is None else [first]
    out = hw + 2 * padding - 2
    layers += [
        qnn.QuantConv2d(in_ch, 4, 3, padding=padding, bias=False, weight_bit_width=4),
        nn.BatchNorm2d(4),
        qnn.QuantReLU(bit_width=4),
        nn.Flatten(),
        qnn.QuantLinear(4 * out * out, 3, bias=True, weight_bit_width=4),
    ]
    randomize_bn(layers[-4], gen)
    return Preprocessed(nn.Sequential(*layers), **pre).eval()
