"""The IR graph (input quantizer, chain of layers, output dequantizer) and its files.

``ir.json`` holds every scalar parameter; arrays go to ``ir.npz`` (loaded without pickle) and
are referenced from the JSON by key. Loading gives back an equal graph.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .datatypes import dtype_from_name
from .fields import freeze, int_tuple

FORMAT = "gatemill-ir"
VERSION = 1


@dataclass(frozen=True, kw_only=True, eq=False)
class InputSpec:
    """How the host turns the model's input into the integers the hardware takes.

    Two cases:

    - the model's own float input (``raw`` false): the host reproduces the model's first
      quantizer (QONNX ``Quant``/``BipolarQuant``), ``q = clip(round(x / scale))`` with the
      graph's rounding mode;
    - a stated integer encoding (``raw``, ``gatemill import --input-type --input-scale``): the
      hardware takes the user's raw integers ``q`` of *dtype*, and the model's float input is
      ``x = exact_scale * q``; the model's pre-processing and first quantizer are inside the
      IR. The host only reshapes ``q`` (when the pre-processing reshapes) and puts channels
      last.

    Parameters
    ----------
    shape : tuple of int
        Per-sample shape in IR layout (channels last).
    dtype : DataType
    scale : float
        The quantizer's scale (float32 value); with ``raw``, the user's scale (rounded).
    layout : str
        The model's own layout at the quantizer: ``"NC"`` or ``"NCHW"`` (transposed to NHWC).
    rounding_mode : str
        QONNX rounding mode (``ROUND`` is half-to-even).
    narrow : bool
    raw : bool
        The hardware takes the user's raw integers (see above).
    exact_scale : str
        With ``raw``: the user's scale as an exact rational, e.g. ``"1/255"``.
    model_input_shape : tuple of int
        The model's own per-sample input shape when its pre-processing reshapes it (e.g.
        ``(1, 28, 28)`` flattened to 784 values); empty when it is the shape at the quantizer.
    """

    shape: tuple[int, ...]
    dtype: Any
    scale: float = 1.0
    layout: str = "NC"
    rounding_mode: str = "ROUND"
    narrow: bool = False
    raw: bool = False
    exact_scale: str = ""
    model_input_shape: tuple[int, ...] = ()

    def __post_init__(self):
        int_tuple(self, "shape")
        int_tuple(self, "model_input_shape")
        if self.layout not in ("NC", "NCHW"):
            raise ValueError(f"input layout must be NC or NCHW, not {self.layout!r}")
        if self.raw and not self.exact_scale:
            raise ValueError("a raw input needs its exact scale")
        if self.model_input_shape and np.prod(self.model_input_shape) != np.prod(self.shape):
            raise ValueError(f"model input {self.model_input_shape} does not hold {self.shape}")

    @property
    def model_shape(self) -> tuple[int, ...]:
        """Per-sample shape the model itself takes (channels first for images)."""
        if self.model_input_shape:
            return self.model_input_shape
        if self.layout == "NCHW":
            h, w, c = self.shape
            return (c, h, w)
        return self.shape

    def port(self) -> dict:
        """This input in the manifest's form (see :mod:`gatemill.flow.packing`)."""
        from ..packing import port_description

        port = port_description(self.shape, self.dtype, 1)
        if self.raw:
            port["quantizer"] = {
                "raw": True,
                "input_type": self.dtype.name,
                "scale": self.exact_scale,
                "meaning": "the hardware takes the raw integers q of input_type, as the user "
                "stated them (gatemill --input-type/--input-scale); the model's float input is "
                "x = scale * q, its pre-processing and first quantizer are in the hardware",
                "layout": self.layout,
                "model_shape": list(self.model_shape),
            }
            return port
        port["quantizer"] = {
            "scale": self.scale,
            "layout": self.layout,
            "rounding_mode": self.rounding_mode,
            "narrow": self.narrow,
            "model_shape": list(self.model_shape),
        }
        return port

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Integers ``(N, *shape)`` for the model's inputs ``(N, *model_shape)``: float inputs,
        or with ``raw`` the user's raw integers (checked, reshaped, channels last)."""
        from ..packing import quantize

        x = np.asarray(x) if self.raw else np.asarray(x, dtype=np.float32)
        if x.shape[1:] != self.model_shape:
            raise ValueError(f"input shape {x.shape[1:]} != model input {self.model_shape}")
        return quantize(x, self.port())

    def float_input(self, q: np.ndarray) -> np.ndarray:
        """The float32 input the model takes for integers *q* of the hardware ``(N, *shape)``
        (the raw integers times the scale; the quantizer's levels times its scale)."""
        q = np.asarray(q)
        if self.layout == "NCHW":
            q = q.transpose(0, 3, 1, 2)
        if self.raw:
            s = Fraction(self.exact_scale)
            x = q.astype(np.float64) * s.numerator / s.denominator
        else:
            x = q.astype(np.float64) * self.scale
        return np.ascontiguousarray(x.astype(np.float32).reshape(len(q), *self.model_shape))


@dataclass(frozen=True, kw_only=True, eq=False)
class OutputSpec:
    """How the host turns the hardware's integer outputs into the model's real outputs.

    ``y[c] = scale[c] * out[c] + bias[c]`` (float64 from the exact rationals).
    """

    shape: tuple[int, ...]
    dtype: Any
    scale: np.ndarray
    bias: np.ndarray

    def __post_init__(self):
        int_tuple(self, "shape")
        freeze(self, "scale", self.scale, np.float64)
        freeze(self, "bias", self.bias, np.float64)
        c = self.shape[-1]
        if self.scale.shape != (c,) or self.bias.shape != (c,):
            raise ValueError(f"output scale and bias must have {c} entries")

    def dequantize(self, out: np.ndarray) -> np.ndarray:
        """Real outputs for integer outputs ``(N, *shape)``."""
        return np.asarray(out, dtype=np.float64) * self.scale + self.bias


@dataclass(frozen=True, kw_only=True, eq=False)
class IRGraph:
    """A chain of IR layers between an input quantizer and an output dequantizer.

    Parameters
    ----------
    name : str
    input : InputSpec
    layers : tuple of Layer
        Instances of the layer kinds (:mod:`gatemill.flow.kinds`).
    output : OutputSpec
    source : dict
        Where the graph came from (model file, its sha256); informational.
    """

    name: str
    input: InputSpec
    layers: tuple
    output: OutputSpec
    source: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ValueError("an IR graph needs at least one layer")
        shape, dtype = self.input.shape, self.input.dtype
        names = set()
        for layer in self.layers:
            if layer.name in names:
                raise ValueError(f"duplicate layer name {layer.name!r}")
            names.add(layer.name)
            if layer.in_shape != shape or layer.in_dtype != dtype:
                raise ValueError(
                    f"{layer.name} takes {layer.in_shape} {layer.in_dtype.name} but receives "
                    f"{shape} {dtype.name}"
                )
            shape, dtype = layer.out_shape, layer.out_dtype
        if self.output.shape != shape or self.output.dtype != dtype:
            raise ValueError(f"output spec {self.output.shape} != last layer output {shape}")

    def execute(self, x: np.ndarray, trace: bool = False):
        """Golden model: exact integer execution of the whole chain.

        Parameters
        ----------
        x : ndarray of int, shape (N, *input.shape)
            Quantized inputs (see :meth:`InputSpec.quantize`).
        trace : bool
            Also return every layer's output.

        Returns
        -------
        ndarray, or (ndarray, list of ndarray) with ``trace``
        """
        outs = []
        for layer in self.layers:
            x = layer.execute(x)
            if trace:
                outs.append(x)
        return (x, outs) if trace else x

    def predict(self, x_float: np.ndarray) -> np.ndarray:
        """Real outputs for the model's float inputs (quantize, execute, dequantize)."""
        return self.output.dequantize(self.execute(self.input.quantize(x_float)))

    def __eq__(self, other) -> bool:
        if not isinstance(other, IRGraph):
            return NotImplemented
        return _to_json(self, {}) == _to_json(other, {}) and _arrays(self) == _arrays(other)

    __hash__ = None


def _encode(value, key: str, arrays: dict):
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {"array": key}
    if hasattr(value, "bitwidth") and hasattr(value, "name"):
        return {"datatype": value.name}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _fields(obj, prefix: str, arrays: dict) -> dict:
    return {
        f.name: _encode(getattr(obj, f.name), f"{prefix}.{f.name}", arrays)
        for f in dataclasses.fields(obj)
    }


def _to_json(graph: IRGraph, arrays: dict) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": graph.name,
        "source": graph.source,
        "input": _fields(graph.input, "input", arrays),
        "layers": [
            {"kind": layer.kind, **_fields(layer, f"layers.{i}", arrays)}
            for i, layer in enumerate(graph.layers)
        ],
        "output": _fields(graph.output, "output", arrays),
    }


def _arrays(graph: IRGraph) -> dict:
    arrays: dict = {}
    _to_json(graph, arrays)
    return {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in arrays.items()}


def _decode(value, arrays):
    if isinstance(value, dict) and set(value) == {"array"}:
        return arrays[value["array"]]
    if isinstance(value, dict) and set(value) == {"datatype"}:
        return dtype_from_name(value["datatype"])
    return value


def save_ir(graph: IRGraph, directory: str | Path) -> Path:
    """Write ``ir.json`` and ``ir.npz`` into *directory*; returns the JSON path."""
    directory = Path(directory)
    arrays: dict = {}
    doc = _to_json(graph, arrays)
    np.savez(directory / "ir.npz", **arrays)
    path = directory / "ir.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def read_ir(directory: str | Path, kinds: Mapping[str, type]) -> IRGraph:
    """Load the graph written by :func:`save_ir` (no pickle), its layers built from the
    classes *kinds* maps their kind names to (:func:`gatemill.flow.kinds.load_ir` passes the
    registry)."""
    directory = Path(directory)
    doc = json.loads((directory / "ir.json").read_text())
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ValueError(f"{directory / 'ir.json'} is not a {FORMAT} v{VERSION} file")
    with np.load(directory / "ir.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}

    def build(cls, d):
        return cls(**{k: _decode(v, arrays) for k, v in d.items() if k != "kind"})

    layers = []
    for d in doc["layers"]:
        if d["kind"] not in kinds:
            raise ValueError(f"unknown layer kind {d['kind']!r} in {directory / 'ir.json'}")
        layers.append(build(kinds[d["kind"]], d))
    return IRGraph(
        name=doc["name"],
        source=doc.get("source", {}),
        input=build(InputSpec, doc["input"]),
        layers=tuple(layers),
        output=build(OutputSpec, doc["output"]),
    )
