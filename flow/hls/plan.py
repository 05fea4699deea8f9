"""The HLS design of an IR graph: config structs, parameter arrays and the dataflow chain.

A plan is pure data computed from the IR (no files): what the Jinja2 templates render into
``gatemill_config.h`` (one ``CONFIG_T`` struct per hardware kernel), ``params/<layer>.h`` (the
weight and threshold arrays) and ``gatemill_top.cpp`` (the streams and the kernel calls).

Mapping of IR layers onto the kernels of ``templates/hls/include/gatemill``:

- ``MatrixVector``: ``gm::matrix_vector`` (accumulators, PE lanes), followed by ``gm::threshold``
  when the layer has thresholds (config ``<name>_act_config``).
- ``Threshold``: ``gm::threshold``.
- ``SlidingWindow``: ``gm::sliding_window``; ``MaxPool``: ``gm::maxpool``.
- ``LutLayer``: ``gm::lut_layer`` (the whole vector in, every neuron in parallel; the IR
  gives it no folding, so the words are as wide as 512 bits allow).
- ``Flatten``: nothing (the stream is already channels last).

Between two kernels whose lane counts differ, ``gm::resize`` re-chunks the stream (twice,
through the greatest common divisor, when neither count divides the other).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..ir import IRGraph
from ..ir.datatypes import BIPOLAR
from ..packing import port_description

TOP = "gatemill_top"
# ap_int's widest word with the AP_INT_MAX_W the headers set (gm_common.h)
MAX_WORD_BITS = 4096
# The testbench exchanges elements as C++ long long
MAX_ELEMENT_BITS = 63
# Widest AXI4-Stream port word (what an AXI DMA's stream side takes); wider first or last
# kernel words are re-chunked behind / in front of the port
MAX_PORT_BITS = 1024

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def ident(name: str) -> str:
    """*name* if it is a plain C/Tcl identifier; anything else is refused, never escaped."""
    if not (isinstance(name, str) and name.isascii() and _IDENT.match(name)):
        raise ValueError(f"not a sanitized identifier: {name!r}")
    return name


def ctype(dt) -> str:
    """The element code type of a datatype: ``ap_int<B>``, ``ap_uint<B>``, BIPOLAR one bit."""
    if dt == BIPOLAR:
        return "ap_uint<1>"
    bits = dt.bitwidth()
    return f"ap_int<{bits}>" if dt.signed() else f"ap_uint<{bits}>"


def signed_type_for(values: np.ndarray) -> str:
    """The narrowest ``ap_int`` holding every value of *values* (and 0)."""
    lo, hi = min(int(values.min()), 0), max(int(values.max()), 0)
    bits = 1 + max((-lo - 1).bit_length() if lo < 0 else 0, hi.bit_length())
    return f"ap_int<{max(bits, 2)}>"


@dataclass(frozen=True)
class Const:
    """A ``static const`` member of a config struct."""

    name: str
    ctype: str
    value: int | bool

    @property
    def literal(self) -> str:
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return str(int(self.value))


@dataclass(frozen=True)
class Config:
    """One ``CONFIG_T`` struct: type aliases and constants."""

    name: str
    comment: str
    types: tuple[tuple[str, str], ...]
    consts: tuple[Const, ...]


@dataclass(frozen=True)
class Array:
    """A constant parameter array (weights, thresholds, directions) of one layer."""

    name: str
    ctype: str
    values: np.ndarray  # integers, already in the kernel's layout

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.values.shape)


@dataclass(frozen=True)
class Stream:
    """A stream between two kernels of packed words of ``lanes`` elements."""

    name: str
    lanes: int
    elem_bits: int
    depth: int = 2

    @property
    def bits(self) -> int:
        return self.lanes * self.elem_bits


@dataclass(frozen=True)
class Call:
    """One kernel call of the dataflow region."""

    func: str
    args: tuple[str, ...]
    comment: str


@dataclass
class Plan:
    """Everything the templates render for one IR graph."""

    configs: list[Config] = field(default_factory=list)
    params: dict[str, list[Array]] = field(default_factory=dict)  # layer name -> arrays
    streams: list[Stream] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    ports: dict = field(default_factory=dict)  # "input"/"output" -> port description
    port_types: dict = field(default_factory=dict)  # "input"/"output" -> (ctype, bipolar)


def _u(name, value) -> Const:
    return Const(name, "unsigned", int(value))


def _i(name, value) -> Const:
    return Const(name, "int", int(value))


def _b(name, value) -> Const:
    return Const(name, "bool", bool(value))


class _Builder:
    def __init__(self, ir: IRGraph):
        self.ir = ir
        self.plan = Plan()
        self.current: Stream | None = None
        self.elems = int(np.prod(ir.input.shape))

    def stream(self, lanes: int, elem_bits: int) -> Stream:
        s = Stream(f"s{len(self.plan.streams)}", lanes, elem_bits)
        if s.bits > MAX_WORD_BITS:
            raise ValueError(
                f"a stream word of {lanes} x {elem_bits} bits exceeds {MAX_WORD_BITS} bits; "
                "fold the layer (smaller pe/simd)"
            )
        self.plan.streams.append(s)
        return s

    def feed(self, lanes: int, elem_bits: int) -> Stream:
        """The stream a kernel taking *lanes* elements reads, converting widths if needed."""
        cur = self.current
        if cur is None:  # the first kernel reads the input port's words
            self.current = self.stream(_port_lanes(self.elems, lanes, elem_bits), elem_bits)
            cur = self.current
        if cur.elem_bits != elem_bits:
            raise ValueError(f"element width {cur.elem_bits} != {elem_bits} between kernels")
        if cur.lanes == lanes:
            return cur
        if cur.lanes % lanes and lanes % cur.lanes:
            self._resize(math.gcd(cur.lanes, lanes))
        self._resize(lanes)
        return self.current

    def _resize(self, lanes: int) -> None:
        cur, out = self.current, self.stream(lanes, self.current.elem_bits)
        self.plan.calls.append(
            Call(
                f"gm::resize<{cur.elem_bits}, {cur.lanes}, {lanes}, {self.elems}>",
                (cur.name, out.name),
                f"width conversion {cur.lanes} -> {lanes} lanes",
            )
        )
        self.current = out

    def kernel(self, func, config, args, in_stream, out_lanes, out_bits, comment, elems):
        out = self.stream(out_lanes, out_bits)
        self.plan.calls.append(
            Call(f"{func}<{config}>", (in_stream.name, out.name, *args), comment)
        )
        self.current, self.elems = out, elems
        return out

    # -- layers -------------------------------------------------------------------------------

    def matrix_vector(self, layer) -> None:
        name = ident(layer.name)
        pe, simd = layer.pe, layer.simd
        nf, sf = layer.mh // pe, layer.mw // simd
        pixels = int(np.prod(layer.spatial, dtype=np.int64))
        in_bits = layer.in_dtype.bitwidth()
        acc_bits = layer.acc_dtype.bitwidth()
        if layer.binary:
            # XNOR-popcount compares codes: weights stored as their bipolar code (1 = +1)
            w_type, w_values = "ap_uint<1>", (layer.weights + 1) // 2
        elif layer.w_dtype == BIPOLAR:
            w_type, w_values = "ap_int<2>", layer.weights
        else:
            w_type, w_values = ctype(layer.w_dtype), layer.weights
        cfg = f"{name}_config"
        self.plan.configs.append(
            Config(
                cfg,
                f"{name}: MatrixVector {layer.mh}x{layer.mw}, pe {pe}, simd {simd}",
                (
                    ("in_t", ctype(layer.in_dtype)),
                    ("w_t", w_type),
                    ("acc_t", ctype(layer.acc_dtype)),
                ),
                (
                    _b("IN_BIPOLAR", layer.in_dtype == BIPOLAR),
                    _b("BINARY", layer.binary),
                    _u("MH", layer.mh),
                    _u("MW", layer.mw),
                    _u("PE", pe),
                    _u("SIMD", simd),
                    _u("NF", nf),
                    _u("SF", sf),
                    _u("PIXELS", pixels),
                ),
            )
        )
        # weights[p][nf * SF + sf][s] = W[nf * PE + p][sf * SIMD + s]
        w = np.asarray(w_values, np.int64).reshape(nf, pe, sf, simd).transpose(1, 0, 2, 3)
        weights = Array(f"{name}_weights", w_type, w.reshape(pe, nf * sf, simd))
        self.plan.params[name] = [weights]
        src = self.feed(simd, in_bits)
        self.kernel(
            "gm::matrix_vector",
            cfg,
            (weights.name,),
            src,
            pe,
            acc_bits,
            f"{name}: MatrixVector" + (" (xnor-popcount)" if layer.binary else ""),
            pixels * layer.mh,
        )
        if layer.thresholds is not None:
            self.threshold_kernel(
                name=f"{name}_act",
                owner=name,
                in_type=ctype(layer.acc_dtype),
                in_bits=acc_bits,
                in_bipolar=False,
                layer=layer,
                channels=layer.mh,
                pe=pe,
                pixels=pixels,
            )

    def threshold_kernel(
        self, *, name, owner, in_type, in_bits, in_bipolar, layer, channels, pe, pixels
    ):
        nf, t = channels // pe, int(layer.thresholds.shape[1])
        bipolar_out = layer.out_dtype == BIPOLAR
        out_type = ctype(layer.out_dtype)
        thr_type = signed_type_for(layer.thresholds)
        cfg = f"{name}_config"
        self.plan.configs.append(
            Config(
                cfg,
                f"{owner}: thresholds, {channels} channels x {t}, pe {pe}",
                (("in_t", in_type), ("thr_t", thr_type), ("out_t", out_type)),
                (
                    _b("IN_BIPOLAR", in_bipolar),
                    _u("CHANNELS", channels),
                    _u("PE", pe),
                    _u("NF", nf),
                    _u("PIXELS", pixels),
                    _u("T", t),
                    # a BIPOLAR output's code is the count itself (0 -> -1, 1 -> +1)
                    _i("OUT_BASE", 0 if bipolar_out else layer.out_base),
                ),
            )
        )
        # thresholds[p][nf][t] and up[p][nf] belong to channel nf * PE + p
        thr = layer.thresholds.reshape(nf, pe, t).transpose(1, 0, 2)
        up = (layer.direction > 0).astype(np.int64).reshape(nf, pe).T
        arrays = [
            Array(f"{name}_thresholds", thr_type, thr),
            Array(f"{name}_up", "ap_uint<1>", up),
        ]
        self.plan.params.setdefault(owner, []).extend(arrays)
        src = self.feed(pe, in_bits)
        self.kernel(
            "gm::threshold",
            cfg,
            tuple(a.name for a in arrays),
            src,
            pe,
            layer.out_dtype.bitwidth(),
            f"{owner}: thresholds",
            pixels * channels,
        )

    def threshold(self, layer) -> None:
        name = ident(layer.name)
        self.threshold_kernel(
            name=name,
            owner=name,
            in_type=ctype(layer.in_dtype),
            in_bits=layer.in_dtype.bitwidth(),
            in_bipolar=layer.in_dtype == BIPOLAR,
            layer=layer,
            channels=layer.shape[-1],
            pe=layer.pe,
            pixels=int(np.prod(layer.shape[:-1], dtype=np.int64)),
        )

    def _window_kernel(self, layer, func: str, what: str, lanes: int, types, own: dict) -> None:
        """A kernel over a window (sliding window, max-pool) taking *lanes* elements a beat:
        its config holds *own* constants and the window's geometry."""
        name = ident(layer.name)
        (ih, iw, c), (kh, kw), (sh, sw) = layer.ifm, layer.kernel, layer.stride
        oh, ow, _ = layer.out_shape
        bits = layer.dtype.bitwidth()
        cfg = f"{name}_config"
        geometry = {"IH": ih, "IW": iw, "C": c, "CF": c // lanes, "KH": kh, "KW": kw}
        geometry.update(SH=sh, SW=sw, OH=oh, OW=ow)
        self.plan.configs.append(
            Config(
                cfg,
                f"{name}: {what} {kh}x{kw} stride {sh}x{sw} over {ih}x{iw}x{c}",
                types,
                tuple(_i(k, v) for k, v in {**own, **geometry}.items()),
            )
        )
        src = self.feed(lanes, bits)
        elems = int(np.prod(layer.out_shape))
        self.kernel(func, cfg, (), src, lanes, bits, f"{name}: {what}", elems)

    def sliding_window(self, layer) -> None:
        pt, pl, _, _ = layer.pad
        own = {"BITS": layer.dtype.bitwidth(), "SIMD": layer.simd, "PT": pt, "PL": pl}
        self._window_kernel(layer, "gm::sliding_window", "SlidingWindow", layer.simd, (), own)

    def maxpool(self, layer) -> None:
        types = (("elem_t", ctype(layer.dtype)),)
        self._window_kernel(layer, "gm::maxpool", "MaxPool", layer.pe, types, {"PE": layer.pe})

    def lut_layer(self, layer) -> None:
        name = ident(layer.name)
        in_bits, out_bits = layer.in_dtype.bitwidth(), layer.out_dtype.bitwidth()
        in_lanes = _lanes(layer.in_features, in_bits)
        out_lanes = _lanes(layer.neurons, out_bits)
        idx_bits = max(1, (layer.in_features - 1).bit_length())
        cfg = f"{name}_config"
        self.plan.configs.append(
            Config(
                cfg,
                f"{name}: LutLayer, {layer.neurons} neurons of fan-in {layer.fanin}",
                (
                    ("in_t", ctype(layer.in_dtype)),
                    ("out_t", ctype(layer.out_dtype)),
                    ("idx_t", f"ap_uint<{idx_bits}>"),
                ),
                (
                    _u("IN_FEATURES", layer.in_features),
                    _u("NEURONS", layer.neurons),
                    _u("FANIN", layer.fanin),
                    _u("ENTRIES", 1 << layer.address_bits),
                    _u("IN_LANES", in_lanes),
                    _u("OUT_LANES", out_lanes),
                ),
            )
        )
        tables = layer.tables
        if layer.out_dtype == BIPOLAR:  # stored as the output code
            tables = (tables + 1) // 2
        arrays = [
            Array(f"{name}_indices", f"ap_uint<{idx_bits}>", layer.indices),
            Array(f"{name}_tables", ctype(layer.out_dtype), tables),
        ]
        self.plan.params[name] = arrays
        src = self.feed(in_lanes, in_bits)
        self.kernel(
            "gm::lut_layer",
            cfg,
            tuple(a.name for a in arrays),
            src,
            out_lanes,
            out_bits,
            f"{name}: LutLayer",
            layer.neurons,
        )


def _lanes(n: int, bits: int, max_bits: int = 512) -> int:
    """Elements per word for a fully parallel kernel: the largest divisor of *n* that keeps
    the word within *max_bits*."""
    return max(d for d in range(1, n + 1) if n % d == 0 and (d * bits <= max_bits or d == 1))


def _port_lanes(elems: int, lanes: int, bits: int) -> int:
    """*lanes*, or fewer (a divisor of the sample) when the word exceeds ``MAX_PORT_BITS``."""
    if lanes * bits <= MAX_PORT_BITS:
        return lanes
    return max(d for d in range(1, elems + 1) if elems % d == 0 and d * bits <= MAX_PORT_BITS)


def _check_element(where: str, dt) -> None:
    if dt.bitwidth() > MAX_ELEMENT_BITS:
        raise ValueError(f"{where}: {dt.name} is wider than {MAX_ELEMENT_BITS} bits")


def plan_design(ir: IRGraph) -> Plan:
    """The HLS design of *ir* (see the module documentation).

    Raises
    ------
    ValueError
        If a stream word would exceed ``MAX_WORD_BITS`` or a port element 63 bits.
    """
    b = _Builder(ir)
    handlers = {
        "MatrixVector": b.matrix_vector,
        "Threshold": b.threshold,
        "SlidingWindow": b.sliding_window,
        "MaxPool": b.maxpool,
        "LutLayer": b.lut_layer,
        "Flatten": lambda layer: None,
    }
    for layer in ir.layers:
        if layer.kind not in handlers:
            raise ValueError(f"{layer.name}: no HLS kernel for layer kind {layer.kind}")
        handlers[layer.kind](layer)
    if b.current is None:  # only Flatten layers: the design is a wire
        b.feed(1, ir.input.dtype.bitwidth())
    first = b.plan.streams[0]
    last = b.current
    if last.bits > MAX_PORT_BITS:
        b.feed(_port_lanes(b.elems, last.lanes, last.elem_bits), last.elem_bits)
        last = b.current
    last_dtype = ir.layers[-1].out_dtype
    _check_element("input", ir.input.dtype)
    _check_element("output", last_dtype)
    b.plan.ports = {
        "input": port_description(ir.input.shape, ir.input.dtype, first.lanes),
        "output": port_description(ir.layers[-1].out_shape, last_dtype, last.lanes),
    }
    for key, stream, func, args in (
        ("input", first, "gm::axis_in", ("s_axis", first.name)),
        ("output", last, "gm::axis_out", (last.name, "m_axis")),
    ):
        port = b.plan.ports[key]
        tmpl = f"{func}<{port['tdata_bits']}, {stream.bits}, {port['beats_per_sample']}>"
        call = Call(tmpl, args, f"AXI4-Stream {key} port")
        if key == "input":
            b.plan.calls.insert(0, call)
        else:
            b.plan.calls.append(call)
    b.plan.port_types = {
        "input": (ctype(ir.input.dtype), ir.input.dtype == BIPOLAR),
        "output": (ctype(last_dtype), last_dtype == BIPOLAR),
    }
    return b.plan
