"""Up-front support check: every unsupported node is listed at once, with what to change."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from ..errors import GatemillError
from .exact import ROUNDING_MODES
from .graphutil import const_value
from .load import QUANT_OPS
from .lut import gather_lut_nodes, node_key

MAX_BITS = 8
WEIGHT_OPS = ("MatMul", "Gemm", "Conv")
ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Clip", "Identity")
LAYOUT = ("Flatten", "Reshape")
POOLING = ("MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean", "ReduceSum")
SUPPORTED = (*QUANT_OPS, *WEIGHT_OPS, *ELEMENTWISE, *LAYOUT, *POOLING, "Concat", "Trunc")

# What to tell the user for operators we know and do not support.
HINTS = {
    "Softmax": "drop the final softmax from the model: gatemill outputs the logits, and their "
    "argmax (the class) is the same",
    "LogSoftmax": "drop it from the model: the argmax of the logits is the same",
    "LSTM": "recurrent layers are not supported; use dense or convolutional layers",
    "GRU": "recurrent layers are not supported; use dense or convolutional layers",
    "RNN": "recurrent layers are not supported; use dense or convolutional layers",
    "Sigmoid": "use QuantReLU or QuantHardTanh as the activation",
    "Tanh": "use QuantHardTanh as the activation",
    "ReduceMax": "use MaxPool2d over the whole map",
    "Transpose": "remove the permute/transpose from the model's forward()",
    "QuantizeLinear": "export with brevitas.export.export_qonnx (QONNX Quant nodes), not QCDQ",
    "DequantizeLinear": "export with brevitas.export.export_qonnx (QONNX Quant nodes), not QCDQ",
}


@dataclass(frozen=True)
class Problem:
    """One reason a node cannot be imported."""

    node: str
    op_type: str
    why: str
    fix: str

    def __str__(self) -> str:
        if self.op_type == "input":
            return f"model input {self.node!r}: {self.why}; {self.fix}."
        return f"node {self.node!r} ({self.op_type}): {self.why}; {self.fix}."


def unsupported_ops(model: ModelWrapper) -> list[Problem]:
    """Nodes whose operator gatemill does not map to hardware (checked before cleanup)."""
    problems = []
    tables = gather_lut_nodes(model)  # MatMul/Cast/Gather table lookups (PoET-BiN heads)
    for node in model.graph.node:
        if node.op_type not in SUPPORTED and node_key(node) not in tables:
            fix = HINTS.get(
                node.op_type,
                "replace it with supported layers (QuantIdentity, QuantLinear, QuantConv1d/2d, "
                "BatchNorm, QuantReLU, QuantHardTanh, MaxPool1d/2d, AvgPool, Flatten, torch.cat, "
                "a residual +, a sum or mean over a set's elements)",
            )
            problems.append(Problem(node.name, node.op_type, "operator not supported", fix))
    return problems


def _const(model, name):
    return None if name == "" else model.get_initializer(name)


def _check_quant(model, node, role: str) -> list[Problem]:
    out = []
    if node.op_type == "BipolarQuant":
        scale = _const(model, node.input[1])
        if scale is None or np.any(scale <= 0):
            out.append(
                Problem(
                    node.name,
                    node.op_type,
                    "scale is not a positive constant",
                    "export the model with constant quantizer scales",
                )
            )
        return out
    scale, zp, bits = (_const(model, node.input[i]) for i in (1, 2, 3))
    if scale is None or zp is None or bits is None:
        out.append(
            Problem(
                node.name,
                node.op_type,
                "scale, zero point or bit width is computed at run time",
                "use quantizers with constant (exported) parameters",
            )
        )
        return out
    if np.any(scale <= 0):
        out.append(
            Problem(
                node.name, node.op_type, "scale is not positive", "check the quantizer's scaling"
            )
        )
    if np.any(zp != 0):
        out.append(
            Problem(
                node.name,
                node.op_type,
                "zero point is not 0",
                "use symmetric quantizers (zero point 0), e.g. Brevitas defaults",
            )
        )
    b = float(np.asarray(bits).ravel()[0])
    if bits.size != 1 or b != int(b) or not 1 <= b <= MAX_BITS:
        out.append(
            Problem(
                node.name,
                node.op_type,
                f"{role} of {b:g} bits",
                f"gatemill supports 1 to {MAX_BITS} bits: set bit_width <= {MAX_BITS}",
            )
        )
    for a in node.attribute:
        if a.name == "rounding_mode" and a.s.decode().upper() not in ROUNDING_MODES:
            out.append(
                Problem(
                    node.name,
                    node.op_type,
                    f"rounding mode {a.s.decode()!r}",
                    f"use one of {', '.join(ROUNDING_MODES)}",
                )
            )
    return out


def structural_problems(model: ModelWrapper) -> list[Problem]:
    """Checks on the cleaned graph: quantized weights, bit widths, attributes, joins."""
    from onnx import helper

    problems = []
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        problems.append(
            Problem(
                "graph",
                "-",
                f"{len(graph.input)} inputs and {len(graph.output)} outputs",
                "use one input and one output",
            )
        )
    weight_quants = set()
    tables = gather_lut_nodes(model)
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type in WEIGHT_OPS and node_key(node) not in tables:
            w = node.input[1]
            producer = model.find_producer(w)
            if producer is None or producer.op_type not in QUANT_OPS:
                problems.append(
                    Problem(
                        node.name,
                        node.op_type,
                        "float weights without a quantizer",
                        "use QuantLinear / QuantConv2d so the weights are quantized",
                    )
                )
            elif _const(model, producer.input[0]) is None:
                problems.append(
                    Problem(
                        node.name,
                        node.op_type,
                        "weights are computed at run time",
                        "weights must be constants",
                    )
                )
            else:
                weight_quants.add(producer.name)
                problems += _check_quant(model, producer, "weights")
            if len(node.input) > 2 and node.input[2] and const_value(model, node.input[2]) is None:
                problems.append(
                    Problem(
                        node.name,
                        node.op_type,
                        "bias is not a constant",
                        "use a constant (or no) bias",
                    )
                )
        if node.op_type == "Gemm" and (
            attrs.get("transA", 0)
            or attrs.get("alpha", 1.0) != 1.0
            or attrs.get("beta", 1.0) != 1.0
        ):
            problems.append(
                Problem(
                    node.name,
                    "Gemm",
                    "transA, alpha or beta is not default",
                    "export a plain linear layer",
                )
            )
        if node.op_type == "Conv":
            problems += _conv_problems(model, node, attrs)
        if node.op_type in ("MaxPool", "AveragePool"):
            problems += _pool_problems(node, attrs)
    for node in graph.node:
        # quantizers of constants (weights, a quantized bias) are evaluated, not built
        is_param = _const(model, node.input[0]) is not None
        if node.op_type in QUANT_OPS and node.name not in weight_quants and not is_param:
            problems += _check_quant(model, node, "activations")
        if node.op_type == "Trunc":
            problems += _trunc_problems(model, node)
        if node.op_type in ("Sub", "Mul", "Div") and all(
            const_value(model, i) is None for i in node.input
        ):
            verb = {"Sub": "subtracts", "Mul": "multiplies", "Div": "divides"}
            problems.append(
                Problem(
                    node.name,
                    node.op_type,
                    f"{verb[node.op_type]} two computed tensors",
                    "branches join only by a residual Add or by Concat along the channels",
                )
            )
    return problems


def _trunc_problems(model: ModelWrapper, node) -> list[Problem]:
    params = [_const(model, i) for i in node.input[1:]]
    if len(params) != 5 or any(p is None or np.size(p) != 1 for p in params):
        return [
            Problem(
                node.name,
                "Trunc",
                "not a Trunc of version 2 with constant per-tensor parameters",
                "export TruncAvgPool2d with brevitas' export_qonnx (qonnx opset 2)",
            )
        ]
    scale, zp, _, out_scale, bits = (float(np.ravel(p)[0]) for p in params)
    out = []
    if zp != 0 or scale <= 0 or out_scale <= 0:
        out.append(
            Problem(
                node.name,
                "Trunc",
                "zero point not 0 or scale not positive",
                "use symmetric quantizers",
            )
        )
    if bits != int(bits) or not 1 <= bits <= MAX_BITS:
        out.append(
            Problem(
                node.name,
                "Trunc",
                f"output of {bits:g} bits",
                f"gatemill supports 1 to {MAX_BITS} bits",
            )
        )
    return out


def _conv_problems(model: ModelWrapper, node, attrs: dict) -> list[Problem]:
    out = []
    group = attrs.get("group", 1)
    w = const_value(model, node.input[1])
    if group != 1 and (w is None or not (w.shape[0] == group and w.shape[1] == 1)):
        out.append(
            Problem(
                node.name,
                "Conv",
                f"grouped convolution (group={group})",
                "use groups=1, or a depthwise convolution (groups = in_channels = out_channels)",
            )
        )
    if any(d != 1 for d in attrs.get("dilations", [1])):
        out.append(Problem(node.name, "Conv", "dilated convolution", "use dilation=1"))
    dims = len(attrs.get("kernel_shape", [0, 0]))
    if dims not in (1, 2):
        out.append(
            Problem(
                node.name,
                "Conv",
                f"a {dims}-D convolution",
                "use QuantConv1d or QuantConv2d",
            )
        )
    return out


def _pool_problems(node, attrs: dict) -> list[Problem]:
    out = []
    op = node.op_type
    if op == "MaxPool" and any(attrs.get("pads", [0])) and len(attrs["kernel_shape"]) != 1:
        out.append(Problem(node.name, op, "padding", "use MaxPool2d with padding=0"))
    if attrs.get("ceil_mode", 0):
        out.append(Problem(node.name, op, "ceil_mode", "use ceil_mode=False"))
    if any(d != 1 for d in attrs.get("dilations", [1])):
        out.append(Problem(node.name, op, "dilation", "use dilation=1"))
    if len(attrs.get("kernel_shape", [0, 0])) not in (1, 2):
        out.append(Problem(node.name, op, "a 3-D pool", "use 1-D or 2-D pooling"))
    return out


def raise_if_problems(problems: list[Problem], source: str) -> None:
    """Raise one :class:`GatemillError` listing every problem."""
    if not problems:
        return
    n = len(problems)
    lines = "\n".join(f"  - {p}" for p in problems)
    raise GatemillError(
        f"cannot import {source!r}: {n} unsupported node{'s' if n > 1 else ''}:\n{lines}\n"
        "Change the model as suggested and export it again, or give the options named, and "
        "re-run gatemill import."
    )
