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
VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: a chain, no "inputs"


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


GRAPH_INPUT = ""
"""The name of the graph's input in :attr:`IRGraph.inputs` (layer names are identifiers)."""


@dataclass(frozen=True, kw_only=True, eq=False)
class IRGraph:
    """IR layers between an input quantizer and an output dequantizer: a chain, or a directed
    acyclic graph (branches that fork and join again, as in residual networks).

    Parameters
    ----------
    name : str
    input : InputSpec
    layers : tuple of Layer
        Instances of the layer kinds (:mod:`gatemill.flow.kinds`) in topological order; the last
        one's output is the graph's output.
    output : OutputSpec
    source : dict
        Where the graph came from (model file, its sha256); informational.
    inputs : dict, optional
        ``{layer name: (producer, ...)}``: the layers (or :data:`GRAPH_INPUT`) whose outputs
        each layer takes, as many as the layer's kind takes (``Layer.arity``). A layer not
        listed takes the previous layer's output (the graph input for the first): a chain needs
        no entry at all. After construction every layer is listed.
    """

    name: str
    input: InputSpec
    layers: tuple
    output: OutputSpec
    source: dict = dataclasses.field(default_factory=dict)
    inputs: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ValueError("an IR graph needs at least one layer")
        given = {k: tuple(v) for k, v in dict(self.inputs).items()}
        known = {GRAPH_INPUT: (self.input.shape, self.input.dtype)}
        inputs, previous = {}, GRAPH_INPUT
        for layer in self.layers:
            if layer.name in known:
                raise ValueError(f"duplicate layer name {layer.name!r}")
            producers = given.pop(layer.name, (previous,))
            if len(producers) != layer.arity:
                raise ValueError(
                    f"{layer.name} takes {layer.arity} input(s), not {len(producers)}: "
                    f"{list(producers)}"
                )
            for k, p in enumerate(producers):
                if p not in known:
                    raise ValueError(
                        f"{layer.name} reads {p!r}: not the graph input nor an earlier layer"
                    )
                shape, dtype = known[p]
                if layer.in_shapes[k] != shape or layer.in_dtypes[k] != dtype:
                    raise ValueError(
                        f"{layer.name} takes {layer.in_shapes[k]} {layer.in_dtypes[k].name} but "
                        f"receives {shape} {dtype.name} from {p or 'the graph input'}"
                    )
            inputs[layer.name] = producers
            known[layer.name] = (layer.out_shape, layer.out_dtype)
            previous = layer.name
        if given:
            raise ValueError(f"inputs given for unknown layer(s) {sorted(given)}")
        read = {p for ps in inputs.values() for p in ps}
        unread = [layer.name for layer in self.layers[:-1] if layer.name not in read]
        if unread:
            raise ValueError(f"the output of {', '.join(unread)} is never read")
        object.__setattr__(self, "inputs", inputs)
        last = self.layers[-1]
        if self.output.shape != last.out_shape or self.output.dtype != last.out_dtype:
            raise ValueError(
                f"output spec {self.output.shape} != last layer output {last.out_shape}"
            )

    @property
    def is_chain(self) -> bool:
        """True when every layer reads the one before it (no branch)."""
        previous = GRAPH_INPUT
        for layer in self.layers:
            if self.inputs[layer.name] != (previous,):
                return False
            previous = layer.name
        return True

    def producers(self, layer) -> list:
        """The layers *layer* reads, in input order (None for the graph input)."""
        by_name = self.by_name
        return [by_name.get(p) for p in self.inputs[layer.name]]

    def consumers(self, name: str) -> list[tuple]:
        """``[(layer, input index)]`` of every read of *name*'s output (or the graph input's)."""
        return [
            (layer, k)
            for layer in self.layers
            for k, p in enumerate(self.inputs[layer.name])
            if p == name
        ]

    @property
    def by_name(self) -> dict:
        """``{name: layer}``."""
        return {layer.name: layer for layer in self.layers}

    def execute(self, x: np.ndarray, trace: bool = False):
        """Golden model: exact integer execution of the whole graph.

        Parameters
        ----------
        x : ndarray of int, shape (N, *input.shape)
            Quantized inputs (see :meth:`InputSpec.quantize`).
        trace : bool
            Also return every layer's output, in layer order.

        Returns
        -------
        ndarray, or (ndarray, list of ndarray) with ``trace``
        """
        values = {GRAPH_INPUT: x}
        for layer in self.layers:
            values[layer.name] = layer.execute(*(values[p] for p in self.inputs[layer.name]))
        out = values[self.layers[-1].name]
        return (out, [values[layer.name] for layer in self.layers]) if trace else out

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
        return [_encode(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]
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
            {
                "kind": layer.kind,
                "inputs": list(graph.inputs[layer.name]),
                **_fields(layer, f"layers.{i}", arrays),
            }
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
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
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
    if doc.get("format") != FORMAT or doc.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"{directory / 'ir.json'} is not a {FORMAT} v{VERSION} file")
    with np.load(directory / "ir.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}

    def build(cls, d):
        return cls(**{k: _decode(v, arrays) for k, v in d.items() if k not in ("kind", "inputs")})

    layers = []
    for d in doc["layers"]:
        if d["kind"] not in kinds:
            raise ValueError(f"unknown layer kind {d['kind']!r} in {directory / 'ir.json'}")
        layers.append(build(kinds[d["kind"]], d))
    return IRGraph(
        name=doc["name"],
        inputs={d["name"]: tuple(d["inputs"]) for d in doc["layers"] if "inputs" in d},
        source=doc.get("source", {}),
        input=build(InputSpec, doc["input"]),
        layers=tuple(layers),
        output=build(OutputSpec, doc["output"]),
    )
