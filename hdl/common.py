"""Stream conventions shared by every hardware template.

A layer's input and output are ``amaranth.lib.stream`` streams whose payload is an
``ArrayLayout`` of lanes: lane *k* holds element *k* of the beat, lane 0 in the least
significant bits. Elements are two's complement for signed datatypes, plain binary for
unsigned ones, and one bit for BIPOLAR (1 for +1, 0 for -1). A sample is a fixed number of beats
in the IR's channels-last order; there is no framing inside the design (the AXI4-Stream top
adds ``tlast``).
"""

from __future__ import annotations

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, stream

from ..flow.ir.datatypes import BIPOLAR


def elem_shape(dtype) -> Shape:
    """Amaranth shape of one element of *dtype* (a qonnx ``DataType``)."""
    if dtype == BIPOLAR:
        return unsigned(1)
    bits = dtype.bitwidth()
    return signed(bits) if dtype.signed() else unsigned(bits)


def lanes(dtype, n: int) -> data.ArrayLayout:
    """Payload layout of a beat carrying *n* elements of *dtype*."""
    if n < 1:
        raise ValueError(f"a beat needs at least one lane, not {n!r}")
    return data.ArrayLayout(elem_shape(dtype), n)


def stream_of(dtype, n: int) -> stream.Signature:
    """Stream signature of beats with *n* elements of *dtype*."""
    return stream.Signature(lanes(dtype, n))


def check_kind(layer, kind: str):
    """*layer* if it is an IR layer of kind *kind* (a unit's constructor argument)."""
    if getattr(layer, "kind", None) != kind:
        raise TypeError(f"layer must be a {kind} layer, not {layer!r}")
    return layer


def pipelined_times(avail, latency: int) -> list[int]:
    """Output beat cycles of a unit taking one beat per cycle with a fixed *latency*.

    *avail* holds the cycle at which each input beat becomes available; the output is never
    blocked. Used by the timing models (:meth:`gatemill.flow.kinds.base.Layer.beat_times`).
    """
    out, t = [], None
    for a in avail:
        t = a if t is None else max(a, t + 1)
        out.append(t + latency)
    return out
