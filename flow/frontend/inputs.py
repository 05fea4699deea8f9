"""The model's input: the user's integer encoding and the pre-processing before the first
quantizer.

A model may take float inputs and transform them before its first quantizer; FINN's
``bnn_pynq`` networks reshape the image and compute ``2 x - 1``. When the user states the
integer encoding of the input (``--input-type UINT8 --input-scale 1/255``), the hardware takes
the raw integers ``q`` of that type and the model's float input is ``x = scale * q``, the scale
an exact rational. The pre-processing (Mul, Add, Sub, Div by constants; Reshape, Flatten) is
then one exact affine map ``a[c] * q + b[c]`` per channel, and the raw input becomes an
:class:`~.tensors.IntTensor` with those scales and offsets. At the first quantizer:

- if it maps every ``q`` onto the level ``g * q + h`` (a lossless requantization; the
  identity when ``g = 1, h = 0``), it vanishes: the first layer takes ``q`` and the offset
  folds into its thresholds;
- otherwise it becomes the first layer, a ``Threshold`` layer on ``q``: exact either way,
  because the level of every integer ``q`` is known exactly.

A model whose input feeds a weight layer directly (``bnn_pynq``'s resnet18 takes "8-bit
RGB") takes ``q`` there, its scale and offset folded like any input's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from qonnx.core.datatype import DataType

from ..errors import GatemillError
from ..ir import InputSpec
from . import exact
from .graphutil import attrs, const_value, data_consumer, ir_shape, layout_of, per_channel
from .load import QUANT_OPS
from .support import Problem
from .tensors import CHANNEL_AXIS, IntTensor

MAX_INPUT_BITS = 16
AFFINE_OPS = ("Mul", "Add", "Sub", "Div")
PREPROCESSING_OPS = (*AFFINE_OPS, "Identity", "Reshape", "Flatten")
EXAMPLE = "--input-type UINT8 --input-scale 1/255"
# consumers that take a raw input with offsets (Conv only without padding: a padded 0 is no q)
FOLDS_OFFSETS = ("MatMul", "Gemm", *QUANT_OPS, "Add", "Sub", "Mul", "Div", "BatchNormalization")


@dataclass(frozen=True)
class InputEncoding:
    """The user's statement of the input: raw integers ``q`` of *dtype*, ``x = scale * q``."""

    dtype: object
    scale: Fraction

    def describe(self) -> str:
        return f"{self.dtype.name} integers q, x = {self.scale} * q"


def parse_encoding(input_type, input_scale) -> InputEncoding | None:
    """The encoding from ``--input-type`` and ``--input-scale`` (``None`` when neither is given).

    *input_scale* is an exact rational: a string such as ``"1/255"``, ``"0.5"`` or
    ``"2e-3"``, an int, a ``Fraction``, or a float (taken at its exact binary value).

    Raises
    ------
    GatemillError
        If only one is given, the type is not INTn/UINTn (n <= 16), BIPOLAR or BINARY, or the
        scale is not a positive number.
    """
    if input_type is None and input_scale is None:
        return None
    if input_type is None or input_scale is None:
        raise GatemillError(
            "--input-type and --input-scale go together: state both, e.g. "
            f"{EXAMPLE} (the hardware takes the raw integers q; the model's input is "
            "x = scale * q)."
        )
    name = str(input_type).strip().upper()
    m = re.fullmatch(r"U?INT(\d+)", name)
    if not (name in ("BIPOLAR", "BINARY") or (m and 2 <= int(m.group(1)) <= MAX_INPUT_BITS)):
        raise GatemillError(
            f"--input-type {input_type!r}: use UINTn or INTn with 2 <= n <= {MAX_INPUT_BITS} "
            "(e.g. UINT8 for 8-bit pixels), BINARY (0/1) or BIPOLAR (-1/+1)."
        )
    try:
        scale = Fraction(input_scale)  # exact: "1/255" is 1/255, a float its binary value
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        scale = None
    if scale is None or scale <= 0:
        raise GatemillError(
            f"--input-scale {input_scale!r}: give a positive number, exactly, e.g. 1/255 "
            "(pixels 0..255 as [0, 1]) or 1 (the model takes the integers themselves)."
        )
    return InputEncoding(DataType[name], scale)


def preprocessing(model, tensor: str) -> tuple[list, str]:
    """The pre-processing nodes from *tensor* on (affine ops by constants, reshapes) and the
    tensor they end at (*tensor* itself when there are none)."""
    nodes = []
    while True:
        node = data_consumer(model, tensor)
        if node is None or node.op_type not in PREPROCESSING_OPS:
            break
        if node.op_type in AFFINE_OPS:
            if len(node.input) != 2 or tensor not in node.input:
                break
            other = node.input[1] if node.input[0] == tensor else node.input[0]
            if const_value(model, other) is None:
                break
            if node.op_type == "Div" and node.input[0] != tensor:
                break
        elif node.input[0] != tensor:
            break
        nodes.append(node)
        tensor = node.output[0]
    return nodes, tensor


def shape_problem(name: str, shape) -> Problem | None:
    """A problem if *shape* (with the batch axis) is not (N, C), (N, C, L), (N, S, F) or
    (N, C, H, W)."""
    if len(shape) in (2, 3, 4):
        return None
    return Problem(
        name,
        "input",
        f"shape {tuple(shape)} ({len(shape)}-D)",
        "gatemill takes vectors (N, C), 1-D signals (N, C, L), sets (N, elements, features) "
        "or images (N, C, H, W): reshape the input to one of these",
    )


def input_problems(model, encoding: InputEncoding | None) -> list[Problem]:
    """What stops the model's input from importing (with or without a stated encoding)."""
    graph = model.graph
    if len(graph.input) != 1:
        return []  # the structural check reports it
    inp = graph.input[0].name
    nodes, end = preprocessing(model, inp)
    problems = []
    shape = model.get_tensor_shape(end)
    if shape is not None and (p := shape_problem(inp, shape)) is not None:
        problems.append(p)
    first = nodes[0] if nodes else data_consumer(model, inp)
    if encoding is not None or first is None:
        return problems
    end_node = data_consumer(model, end)
    if not nodes and end_node.op_type in QUANT_OPS:
        return problems
    how = (
        f"the model input {inp!r} feeds it: an affine pre-processing "
        f"({', '.join(n.op_type for n in nodes)}) before the first quantizer"
        if nodes and end_node is not None and end_node.op_type in QUANT_OPS
        else f"the model input {inp!r} reaches "
        + ("it" if not nodes else f"{end_node.name!r} ({end_node.op_type})" if end_node else "")
        + " as floats, without a quantizer"
    )
    fix = (
        f"state the integer encoding of your input with {EXAMPLE} (e.g. 8-bit pixels "
        "scaled to [0, 1]; input_type=, input_scale= in the API): the hardware then takes "
        "the raw integers q, with x = scale * q, and the pre-processing folds exactly into "
        "the first layer"
        if nodes
        else "state the integer encoding of your input, e.g. --input-type UINT8 --input-scale "
        "1 for 8-bit values taken as they are (1/255 if scaled to [0, 1]; input_type=, "
        "input_scale= in the API): the hardware then takes the raw integers q, with "
        "x = scale * q"
    )
    problems.append(
        Problem(
            first.name,
            first.op_type,
            how,
            f"{fix}; or add a QuantIdentity as the model's first layer",
        )
    )
    return problems


@dataclass(frozen=True)
class FirstQuantizer:
    """The model's first quantizer and the raw inputs it saturates.

    ``keep_lo[c] <= q <= keep_hi[c]`` are the raw integers of IR channel ``c`` the quantizer
    does not clip (``None`` with the model's own float input: the host quantizes then).
    """

    node: str
    lo: float  # the quantizer's range in real values
    hi: float
    bipolar: bool
    keep_lo: np.ndarray | None = None
    keep_hi: np.ndarray | None = None

    def saturated(self, q: np.ndarray) -> int:
        """How many raw integers of *q* (IR layout) the quantizer clips."""
        if self.keep_lo is None:
            return 0
        q = np.asarray(q)
        return int(np.count_nonzero((q < self.keep_lo) | (q > self.keep_hi)))


def _constant(s, node, data: str, end_shape, axis: int) -> list[Fraction]:
    """The constant of the affine *node* per channel of the pre-processing's last tensor."""
    other = node.input[1] if node.input[0] == data else node.input[0]
    value = np.asarray(const_value(s.model, other))
    data_shape = s.shape(data)
    if s.shape(node.output[0]) != data_shape:
        raise GatemillError(
            f"node {node.name!r} ({node.op_type}): its constant of shape {value.shape} "
            f"broadcasts the input {data_shape} to {s.shape(node.output[0])}; a pre-processing "
            "constant must be a scalar or one value per channel."
        )
    full = np.broadcast_to(value, data_shape).reshape(end_shape)
    try:
        return exact.fractions(per_channel(full, end_shape, axis, "the constant"))
    except ValueError:
        raise GatemillError(
            f"node {node.name!r} ({node.op_type}): its constant varies across the image, "
            "not only per channel; a pre-processing constant must be a scalar or one value "
            "per channel."
        ) from None


def _affine(s, nodes, end_shape, scale: Fraction, channels: int, axis: int):
    """``x = scale * q`` through the pre-processing *nodes*: ``(a, b)`` per channel."""
    a, b = [scale] * channels, [Fraction(0)] * channels
    data = s.model.graph.input[0].name
    for node in nodes:
        if node.op_type in AFFINE_OPS:
            k = _constant(s, node, data, end_shape, axis)
            op, first = node.op_type, node.input[0] == data
            if op == "Div" and any(y == 0 for y in k):
                raise GatemillError(f"node {node.name!r} (Div): division by zero.")
            for c in range(channels):
                if op == "Mul":
                    a[c], b[c] = a[c] * k[c], b[c] * k[c]
                elif op == "Add":
                    b[c] += k[c]
                elif op == "Sub" and first:
                    b[c] -= k[c]
                elif op == "Sub":
                    a[c], b[c] = -a[c], k[c] - b[c]
                else:
                    a[c], b[c] = a[c] / k[c], b[c] / k[c]
        data = node.output[0]
    return a, b


def raw_input(s, encoding: InputEncoding) -> IntTensor:
    """The raw input of the streamliner *s*: sets ``s.input``, ``s.first``,
    ``s.input_report`` and ``s.first_quantizer``; returns the tensor the walk goes on from."""
    model = s.model
    inp = model.graph.input[0].name
    nodes, end = preprocessing(model, inp)
    end_shape = s.shape(end)
    if (p := shape_problem(inp, end_shape)) is not None:
        raise GatemillError(f"model input {inp!r}: {p.why}; {p.fix}.")
    layout = layout_of(model, end)
    shape = ir_shape(end_shape, layout)
    a, b = _affine(s, nodes, end_shape, encoding.scale, shape[-1], CHANNEL_AXIS[layout])
    model_shape = s.shape(inp)[1:]
    s.input = InputSpec(
        shape=shape,
        dtype=encoding.dtype,
        scale=float(encoding.scale),
        layout="NCHW" if layout in ("NCHW", "NCL") else "NC",
        raw=True,
        exact_scale=str(encoding.scale),
        model_input_shape=model_shape if model_shape != end_shape[1:] or layout == "NCL" else (),
    )
    t = IntTensor(end, encoding.dtype, a, shape, layout, offsets=b)
    s.first = t
    s.input_report = {
        "input_type": encoding.dtype.name,
        "scale": str(encoding.scale),
        "meaning": "the hardware takes the raw integers q of input_type; the model's float "
        "input is x = scale * q",
        "preprocessing": [f"{n.name} ({n.op_type})" for n in nodes],
    }
    node = data_consumer(model, end)
    if node is None or node.op_type not in QUANT_OPS:
        what = "the graph output" if node is None else f"{node.name!r} ({node.op_type})"
        s.input_report["first_quantizer"] = {
            "handling": "none",
            "detail": f"no input quantizer: {what} takes q directly",
        }
        return t
    return _first_quantizer(s, node, t)


def _level_maps(qz, t: IntTensor, lo: int, hi: int):
    """Per distinct channel: ``(gain, offset)`` if the quantizer maps q affinely (else None)
    and the raw integers it keeps unclipped ``[keep_lo, keep_hi]``."""
    out = {}
    for c in range(t.shape[-1]):
        key = (t.scales[c], t.offset(c), qz.scale[c])
        if key in out:
            continue

        def level(q, c=c):
            return qz.level(t.scales[c] * q + t.offset(c), c)

        qs = (-1, 1) if t.dtype.name == "BIPOLAR" else range(lo, hi + 1)
        g = Fraction(level(qs[1]) - level(qs[0]), qs[1] - qs[0])
        h = level(qs[0]) - g * qs[0]
        affine = g != 0 and g.denominator == 1 and all(level(q) == g * q + h for q in qs)
        g, h = int(g), int(h)
        keep = (lo, hi)
        if not qz.bipolar:

            def unclipped(q, c=c):
                v = (t.scales[c] * q + t.offset(c)) / qz.scale[c]
                return exact.round_exact(v, qz.rounding_mode)

            if t.scales[c] >= 0:
                first = exact.first_true(lo, hi, lambda q: unclipped(q) >= qz.qmin)
                last = exact.first_true(lo, hi, lambda q: unclipped(q) > qz.qmax) - 1
            else:
                first = exact.first_true(lo, hi, lambda q: unclipped(q) <= qz.qmax)
                last = exact.first_true(lo, hi, lambda q: unclipped(q) < qz.qmin) - 1
            keep = (first, last)
        out[key] = ((g, h) if affine else None, keep)
    return [out[(t.scales[c], t.offset(c), qz.scale[c])] for c in range(t.shape[-1])]


def _formula(gains) -> str:
    """``g q + h`` for the (gain, offset) pairs of the channels, ``h[c]`` if they differ."""
    g = gains[0][0]
    hs = {h for _, h in gains}
    lead = "q" if g == 1 else "-q" if g == -1 else f"{g} q"
    if len(hs) > 1:
        return f"{lead} + h[c]"
    h = hs.pop()
    return lead if h == 0 else f"{lead} {'+' if h > 0 else '-'} {abs(h)}"


def _takes_offsets(model, tensor: str) -> bool:
    """Whether the layer after *tensor* (past reshapes) folds an input offset exactly."""
    node = data_consumer(model, tensor)
    while node is not None and node.op_type in ("Reshape", "Flatten", "Identity"):
        node = data_consumer(model, node.output[0])
    if node is None:
        return True
    if node.op_type == "Conv":
        return not any(attrs(node).get("pads", [0]))
    return node.op_type in FOLDS_OFFSETS


def _first_quantizer(s, node, t: IntTensor) -> IntTensor:
    qz = s.quantizer(node, CHANNEL_AXIS[t.layout], s.shape(node.output[0]))
    lo, hi = int(t.dtype.min()), int(t.dtype.max())
    maps = _level_maps(qz, t, lo, hi)
    real = (float(qz.scale[0] * qz.qmin), float(qz.scale[0] * qz.qmax))
    s.first_quantizer = FirstQuantizer(
        node=node.name,
        lo=real[0],
        hi=real[1],
        bipolar=qz.bipolar,
        keep_lo=np.array([k[0] for _, k in maps], np.int64),
        keep_hi=np.array([k[1] for _, k in maps], np.int64),
    )
    report = s.input_report["first_quantizer"] = {"node": node.name}
    gains = [m for m, _ in maps]
    if all(m is not None for m in gains):
        scales = [qz.scale[c] * g for c, (g, _) in enumerate(gains)]
        offsets = [qz.scale[c] * h for c, (_, h) in enumerate(gains)]
        identity = all(g == 1 and h == 0 for g, h in gains)
        if len(set(scales)) == 1 and (identity or _takes_offsets(s.model, node.output[0])):
            report["handling"] = "identity" if identity else "lossless"
            report["detail"] = (
                "lossless: the quantizer maps every q onto itself; the first layer takes q"
                if identity
                else f"lossless requantization: level = {_formula(gains)}; the first layer "
                "takes q, the offset folded into its thresholds"
            )
            return IntTensor(
                node.output[0],
                t.dtype,
                scales,
                t.shape,
                t.layout,
                offsets=offsets if any(offsets) else None,
            )
    report["handling"] = "threshold"
    report["detail"] = (
        "not lossless: q -> level is a threshold function of q, the first layer (a Threshold layer)"
    )
    return t
