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
    :meth:`~gatemill.flow.kinds.base.Layer.hls` reads its input stream with :meth:`feed` (which
    re-chunks the current stream when the lane counts differ) and adds its call with
    :meth:`kernel`."""

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

    def threshold_kernel(self, *, name, owner, layer, in_type, in_bits, in_bipolar, pixels):
        """``gm::threshold`` over the thresholds of *layer* (``folded_thresholds()``, ``pe``,
        ``out_dtype``, ``out_base``): config ``<name>_config``, arrays under *owner*."""
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
            self.feed(pe, in_bits),
            pe,
            layer.out_dtype.bitwidth(),
            f"{owner}: thresholds",
            pixels * channels,
        )

    def window_kernel(self, layer, func: str, what: str, lanes: int, types, own: dict) -> None:
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
        self.kernel(func, cfg, (), src, lanes, bits, f"{name}: {what}", elems)


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
        layer.hls(b)
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
