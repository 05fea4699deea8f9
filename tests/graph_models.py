"""Small seeded Brevitas models with branches, pooling, 1-D convolutions and sets, for the
frontend's graph tests (built, not downloaded)."""

from __future__ import annotations

import brevitas.nn as qnn
import torch
import torch.nn as nn
from brevitas.quant import Int8ActPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from brevitas_models import randomize_bn


def seeded(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def pot_act(bits: int, signed: bool = False) -> nn.Module:
    """A power-of-two scaled activation quantizer (so two branches' scales have an integer
    ratio)."""
    if signed:
        return qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=bits)
    return qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=bits)


def conv_bn(c_in, c_out, k, gen, *, groups=1, padding=None, stride=1, bits=4, dims=2):
    conv = qnn.QuantConv2d if dims == 2 else qnn.QuantConv1d
    bn = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    layers = [
        conv(c_in, c_out, k, stride=stride, padding=k // 2 if padding is None else padding,
             groups=groups, bias=False, weight_bit_width=bits),
        bn(c_out),
    ]  # fmt: skip
    randomize_bn(layers[1], gen)
    return layers


class Residual(nn.Module):
    """input quantizer -> conv -> [conv-BN-act, conv-BN-act] + skip -> act -> dense."""

    def __init__(self, c=4, hw=5, classes=3, seed=0):
        super().__init__()
        gen = seeded(seed)
        self.inp = pot_act(4, signed=True)
        self.stem = nn.Sequential(*conv_bn(3, c, 3, gen), pot_act(3))
        self.body = nn.Sequential(
            *conv_bn(c, c, 3, gen), pot_act(3), *conv_bn(c, c, 3, gen), pot_act(4)
        )
        self.out = pot_act(3)
        self.fc = qnn.QuantLinear(c * hw * hw, classes, bias=True, weight_bit_width=4)

    def forward(self, x):
        x = self.stem(self.inp(x))
        x = self.out(self.body(x) + x)
        return self.fc(torch.flatten(x, 1))


class ConcatNet(nn.Module):
    """input quantizer -> (conv 1x1-act | conv 3x3-act) -> concat -> maxpool -> dense."""

    def __init__(self, hw=4, classes=3, seed=0):
        super().__init__()
        gen = seeded(seed)
        self.inp = pot_act(4, signed=True)
        self.act = pot_act(3)  # one quantizer on both branches: equal scales
        self.a = nn.Sequential(*conv_bn(3, 4, 1, gen))
        self.b = nn.Sequential(*conv_bn(3, 2, 3, gen))
        self.pool = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(6 * (hw // 2) ** 2, classes, bias=True, weight_bit_width=4)

    def forward(self, x):
        x = self.inp(x)
        x = torch.cat([self.act(self.a(x)), self.act(self.b(x))], dim=1)
        return self.fc(torch.flatten(self.pool(x), 1))


class ForkedAccumulator(nn.Module):
    """One convolution's accumulator (after BatchNorm) quantized twice, by an unsigned 3-bit
    and a signed 4-bit quantizer of one scale (1/8), then concatenated: the chain is copied per
    consumer."""

    def __init__(self, hw=4, classes=3, seed=0):
        super().__init__()
        gen = seeded(seed)
        self.inp = pot_act(4, signed=True)
        self.conv = nn.Sequential(*conv_bn(3, 4, 3, gen))
        self.q3 = pot_act(3)
        self.q2 = pot_act(4, signed=True)
        self.fc = qnn.QuantLinear(8 * hw * hw, classes, bias=True, weight_bit_width=4)

    def forward(self, x):
        h = self.conv(self.inp(x))
        return self.fc(torch.flatten(torch.cat([self.q3(h), self.q2(h)], dim=1), 1))


def depthwise_separable(c=4, hw=6, classes=3, seed=0) -> nn.Module:
    gen = seeded(seed)
    return nn.Sequential(
        pot_act(4, signed=True),
        *conv_bn(3, c, 3, gen), qnn.QuantReLU(bit_width=3),
        *conv_bn(c, c, 3, gen, groups=c), qnn.QuantReLU(bit_width=3),
        *conv_bn(c, 6, 1, gen), qnn.QuantReLU(bit_width=3),
        nn.Flatten(), qnn.QuantLinear(6 * hw * hw, classes, bias=True, weight_bit_width=4),
    ).eval()  # fmt: skip


def avgpool_cnn(c=4, hw=6, classes=3, seed=0, trunc=False) -> nn.Module:
    gen = seeded(seed)
    pool = (
        qnn.TruncAvgPool2d(kernel_size=2, stride=2, bit_width=6)
        if trunc
        else nn.AvgPool2d(kernel_size=3, stride=1, padding=1)
    )
    out = hw // 2 if trunc else hw
    return nn.Sequential(
        pot_act(4, signed=True),
        *conv_bn(3, c, 3, gen), qnn.QuantReLU(bit_width=3, return_quant_tensor=trunc),
        pool, qnn.QuantReLU(bit_width=3),
        nn.Flatten(), qnn.QuantLinear(c * out * out, classes, bias=True, weight_bit_width=4),
    ).eval()  # fmt: skip


def gap_cnn(c=6, classes=3, seed=0) -> nn.Module:
    gen = seeded(seed)
    return nn.Sequential(
        pot_act(4, signed=True),
        *conv_bn(3, c, 3, gen), qnn.QuantReLU(bit_width=3),
        nn.AdaptiveAvgPool2d(1), qnn.QuantIdentity(bit_width=4),
        nn.Flatten(), qnn.QuantLinear(c, classes, bias=True, weight_bit_width=4),
    ).eval()  # fmt: skip


def conv1d_cnn(c=4, length=16, classes=3, seed=0) -> nn.Module:
    """Conv1d (stride 2, padding 1), MaxPool1d (2), Conv1d, MaxPool1d (3, stride 2, padding 1),
    dense: on (N, 2, 16)."""
    gen = seeded(seed)
    return nn.Sequential(
        pot_act(4, signed=True),
        *conv_bn(2, c, 3, gen, stride=2, padding=1, dims=1), qnn.QuantReLU(bit_width=3),
        nn.MaxPool1d(2, stride=2),
        *conv_bn(c, c, 3, gen, padding=1, dims=1), qnn.QuantReLU(bit_width=3),
        nn.MaxPool1d(3, stride=2, padding=1),
        nn.Flatten(), qnn.QuantLinear(c * 2, classes, bias=True, weight_bit_width=4),
    ).eval()  # fmt: skip


class DeepSet(nn.Module):
    """phi (per-element Linear-BN-act) -> mean over the elements -> rho (an MLP)."""

    def __init__(self, features=3, hidden=6, classes=3, seed=0, reduce="mean"):
        super().__init__()
        gen = seeded(seed)
        self.inp = pot_act(4, signed=True)
        self.phi = qnn.QuantLinear(features, hidden, bias=True, weight_bit_width=4)
        self.act = qnn.QuantReLU(bit_width=3)
        self.pooled = qnn.QuantIdentity(bit_width=4)
        self.rho = nn.Sequential(
            qnn.QuantLinear(hidden, 8, bias=True, weight_bit_width=4),
            qnn.QuantReLU(bit_width=3),
            qnn.QuantLinear(8, classes, bias=True, weight_bit_width=4),
        )
        self.reduce = reduce
        del gen

    def forward(self, x):  # x: (N, elements, features)
        h = self.act(self.phi(self.inp(x)))
        h = h.mean(dim=1) if self.reduce == "mean" else h.sum(dim=1)
        return self.rho(self.pooled(h))
