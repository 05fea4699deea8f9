"""The HLS design of an IR graph: config structs, parameter arrays and the dataflow chain.

A plan is pure data computed from the IR (no files): what the Jinja2 templates render into
``gatemill_config.h`` (one ``CONFIG_T`` struct per hardware kernel), ``params/<layer>.h`` (the
weight and threshold arrays) and ``gatemill_top.cpp`` (the streams and the kernel calls).

Each layer kind adds its kernels of ``templates/hls/include/gatemill`` (its
:meth:`~gatemill.flow.kinds.base.Layer.hls`); a matrix-vector layer with thresholds is
``gm::matrix_vector`` followed by ``gm::threshold`` (config ``<name>_act_config``).

Between two kernels whose lane counts differ, ``gm::resize`` re-chunks the stream (twice,
through the greatest common divisor, when neither count divides the other).
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import IRGraph
from ..ir.datatypes import BIPOLAR
from ..packing import port_description
from .model import (
    Array,
    Call,
    Config,
    Plan,
    Stream,
    bconst,
    ctype,
    iconst,
    ident,
    signed_type_for,
    uconst,
)

TOP = "gatemill_top"
# ap_int's widest word with the AP_INT_MAX_W the headers set (gm_common.h)
MAX_WORD_BITS = 4096
# The testbench exchanges elements as C++ long long
MAX_ELEMENT_BITS = 63
# Widest AXI4-Stream port word (what an AXI DMA's stream side takes); wider first or last
# kernel words are re-chunked behind / in front of the port
MAX_PORT_BITS = 1024


class Builder:
    """Assembles a :class:`~gatemill.flow.hls.model.Plan` kernel by kernel: each layer kind's
    :meth:`~gatemill.flow.kinds.base.Layer.hls` reads its inputs with :meth:`feed` (or
    :meth:`feed_input` for a join), which re-chunks a stream when the lane counts differ, and
    adds its calls with :meth:`kernel`; the last stream it makes is its output. A value read
    by several layers is copied by ``gm::fork`` (an HLS stream has one reader)."""

    def __init__(self, ir: IRGraph):
        self.ir = ir
        self.plan = Plan()
        self.current: Stream | None = None
        self.layer = None
        self.elems: dict[str, int] = {}  # stream name -> elements per sample
        self.copies: dict[str, list[Stream]] = {}  # value -> its streams not yet read
        self.reads = {}  # value -> readers left
        for layer in ir.layers:
            for p in ir.inputs[layer.name]:
                self.reads[p] = self.reads.get(p, 0) + 1
        self.reads[ir.layers[-1].name] = self.reads.get(ir.layers[-1].name, 0) + 1

    def stream(self, lanes: int, elem_bits: int, elems: int, depth: int = 2) -> Stream:
        """A new stream of words of *lanes* elements, *elems* elements a sample."""
        s = Stream(f"s{len(self.plan.streams)}", lanes, elem_bits, depth)
        if s.bits > MAX_WORD_BITS:
            raise ValueError(
                f"a stream word of {lanes} x {elem_bits} bits exceeds {MAX_WORD_BITS} bits; "
                "fold the layer (smaller pe/simd)"
            )
        self.plan.streams.append(s)
        self.elems[s.name] = elems
        return s

    def feed(self, lanes: int, elem_bits: int) -> Stream:
        """The stream a single-input kernel taking *lanes* elements reads."""
        return self.feed_input(0, lanes, elem_bits)

    def feed_input(self, k: int, lanes: int, elem_bits: int) -> Stream:
        """The stream of the current layer's input *k*, as *lanes* elements a word."""
        value = self.ir.inputs[self.layer.name][k]
        cur = self.take(value, lanes, elem_bits)
        if cur.elem_bits != elem_bits:
            raise ValueError(f"element width {cur.elem_bits} != {elem_bits} between kernels")
        if cur.lanes != lanes:
            if cur.lanes % lanes and lanes % cur.lanes:
                cur = self._resize(cur, math.gcd(cur.lanes, lanes))
            cur = self._resize(cur, lanes)
        return cur

    def take(self, value: str, lanes: int, elem_bits: int) -> Stream:
        """A stream of *value* (a layer's output, or the graph input) for one reader."""
        if value not in self.copies:  # the graph input: the port's words
            elems = int(np.prod(self.ir.input.shape))
            self.publish(value, self.stream(_port_lanes(elems, lanes, elem_bits), elem_bits, elems))
        return self.copies[value].pop()

    def publish(self, value: str, stream: Stream) -> None:
        """*stream* carries *value*: fork it into one copy per reader."""
        copies = [stream]
        while len(copies) < self.reads.get(value, 1):
            src = copies.pop(0)
            elems = self.elems[src.name]
            beats = elems // src.lanes
            # a copy may wait a whole sample for its reader's other input (a skip connection)
            a, b = (self.stream(src.lanes, src.elem_bits, elems, beats + 1) for _ in "ab")
            self.plan.calls.append(
                Call(
                    f"gm::fork<{src.bits}, {beats}>",
                    (src.name, a.name, b.name),
                    f"copy of {value or 'the input'} for two readers",
                )
            )
            copies += [a, b]
        self.copies[value] = copies

    def _resize(self, cur: Stream, lanes: int) -> Stream:
        elems = self.elems[cur.name]
        out = self.stream(lanes, cur.elem_bits, elems)
        self.plan.calls.append(
            Call(
                f"gm::resize<{cur.elem_bits}, {cur.lanes}, {lanes}, {elems}>",
                (cur.name, out.name),
                f"width conversion {cur.lanes} -> {lanes} lanes",
            )
        )
        return out

    def kernel(self, func, config, args, in_stream, out_lanes, out_bits, comment, elems, *, header):
        """Call ``func<config>(in_stream, out, *args)``, declared in ``gatemill/<header>``;
        *out* (returned) carries *elems* elements a sample in words of *out_lanes* elements
        of *out_bits*."""
        if header not in self.plan.headers:
            self.plan.headers.append(header)
        out = self.stream(out_lanes, out_bits, elems)
        self.plan.calls.append(
            Call(f"{func}<{config}>", (in_stream.name, out.name, *args), comment)
        )
        self.current = out
        return out

    def add(self, layer) -> None:
        """Add *layer*'s kernels; a layer that adds none passes its input on."""
        self.layer, self.current = layer, None
        layer.hls(self)
        if self.current is None:
            self.current = self.take(self.ir.inputs[layer.name][0], 1, layer.in_dtype.bitwidth())
        self.publish(layer.name, self.current)

    def chained(self, lanes: int, elem_bits: int) -> Stream:
        """The stream the current layer's last kernel made (its first input before any), as
        *lanes* elements a word: the input of a layer's next kernel."""
        if self.current is None:
            return self.feed(lanes, elem_bits)
        if self.current.lanes == lanes:
            return self.current
        return self._resize(self.current, lanes)

    def threshold_kernel(self, *, name, owner, layer, in_type, in_bits, in_bipolar, pixels):
        """``gm::threshold`` over the thresholds of *layer* (``folded_thresholds()``, ``pe``,
        ``out_dtype``, ``out_base``) after the layer's last kernel: config ``<name>_config``,
        arrays under *owner*."""
        thr, direction = layer.folded_thresholds()  # [NF, PE, T], [NF, PE]
        nf, pe, t = thr.shape
        channels = nf * pe
        bipolar_out = layer.out_dtype == BIPOLAR
        thr_type = signed_type_for(layer.thresholds)
        cfg = f"{name}_config"
        self.plan.configs.append(
            Config(
                cfg,
                f"{owner}: thresholds, {channels} channels x {t}, pe {pe}",
                (("in_t", in_type), ("thr_t", thr_type), ("out_t", ctype(layer.out_dtype))),
                (
                    bconst("IN_BIPOLAR", in_bipolar),
                    uconst("CHANNELS", channels),
                    uconst("PE", pe),
                    uconst("NF", nf),
                    uconst("PIXELS", pixels),
                    uconst("T", t),
                    # a BIPOLAR output's code is the count itself (0 -> -1, 1 -> +1)
                    iconst("OUT_BASE", 0 if bipolar_out else layer.out_base),
                ),
            )
        )
        # the kernel reads thresholds[p][nf][t] and up[p][nf]
        arrays = [
            Array(f"{name}_thresholds", thr_type, thr.transpose(1, 0, 2)),
            Array(f"{name}_up", "ap_uint<1>", (direction > 0).astype(np.int64).T),
        ]
        self.plan.params.setdefault(owner, []).extend(arrays)
        self.kernel(
            "gm::threshold",
            cfg,
            tuple(a.name for a in arrays),
            self.chained(pe, in_bits),
            pe,
            layer.out_dtype.bitwidth(),
            f"{owner}: thresholds",
            pixels * channels,
            header="gm_threshold.h",
        )

    def window_kernel(self, layer, func, what, lanes, types, own: dict, *, header) -> None:
        """A kernel over windows of *layer* (``ifm``, ``kernel``, ``stride``, ``dtype``) taking
        *lanes* elements a beat: its config holds *own* constants and the window's geometry."""
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
                tuple(iconst(k, v) for k, v in {**own, **geometry}.items()),
            )
        )
        src = self.feed(lanes, bits)
        elems = int(np.prod(layer.out_shape))
        self.kernel(func, cfg, (), src, lanes, bits, f"{name}: {what}", elems, header=header)


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
    b = Builder(ir)
    for layer in ir.layers:
        b.add(layer)
    first = b.plan.streams[0]
    last = b.copies[ir.layers[-1].name].pop()
    if last.bits > MAX_PORT_BITS:
        elems = b.elems[last.name]
        last = b._resize(last, _port_lanes(elems, last.lanes, last.elem_bits))
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
