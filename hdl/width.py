"""Width converter: re-chunk a stream of lanes from ``n_in`` to ``n_out`` elements per beat.

Golden model: the identity on the element sequence (order preserved, values unchanged).
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .common import elem_shape, pipelined_times, stream_of

__all__ = ["WidthConverter", "cycles_per_sample", "latency_cycles"]


def _check(n_in, n_out, per_sample) -> None:
    for name, value in (("n_in", n_in), ("n_out", n_out), ("per_sample", per_sample)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TypeError(f"{name} must be a positive integer, not {value!r}")
    if per_sample % n_in or per_sample % n_out:
        raise ValueError(
            f"per_sample must be a multiple of n_in={n_in} and n_out={n_out}, not {per_sample!r}"
        )


def cycles_per_sample(dtype, n_in: int, n_out: int, per_sample: int) -> int:
    """Initiation interval at full rate: the narrower side moves a beat every cycle,
    ``per_sample / min(n_in, n_out)``."""
    _check(n_in, n_out, per_sample)
    return per_sample // min(n_in, n_out)


def latency_cycles(dtype, n_in: int, n_out: int, per_sample: int) -> int:
    """First input beat accepted -> first output beat valid, at full rate.

    The first output beat waits for ``ceil(n_out / n_in)`` input beats, one per cycle, and is
    registered: ``ceil(n_out / n_in)`` cycles; ``0`` when ``n_in == n_out`` (a wire).
    """
    _check(n_in, n_out, per_sample)
    return 0 if n_in == n_out else math.ceil(n_out / n_in)


def beat_times(dtype, n_in: int, n_out: int, per_sample: int, avail) -> list[int]:
    """Cycle of every output beat of one sample, given when each input beat is available:
    an output beat leaves one cycle after the input beat holding its last element."""
    _check(n_in, n_out, per_sample)
    if n_in == n_out:
        return list(avail)
    taken = pipelined_times(avail, 0)
    out, t = [], None
    for j in range(per_sample // n_out):
        ready = taken[-(-((j + 1) * n_out) // n_in) - 1] + 1
        t = ready if t is None else max(ready, t + 1)
        out.append(t)
    return out


class WidthConverter(wiring.Component):
    """Re-chunks a stream of lanes: ``n_in`` elements per input beat, ``n_out`` per output
    beat, lane 0 first, any ratio (e.g. 4 -> 6).

    A shift register of ``2 * n_in + n_out - 1`` elements: an input beat is appended above the
    ``count`` buffered elements when it fits, an output beat is the lowest ``n_out`` of them
    (valid when ``count >= n_out``), shifted out when taken. ``i.ready`` depends on ``count``
    only (no path from ``o.ready``); the spare ``n_in`` elements let the input in even while
    an output beat is held, so the narrower side runs every cycle at full rate. Samples need no
    framing: ``per_sample`` is a multiple of both widths, so an output beat never straddles
    two samples, and it sets the estimates.

    ``n_in == n_out`` is a documented pass-through (plain wires, latency 0), so callers may
    build one unconditionally.

    Parameters
    ----------
    dtype : DataType
        Element datatype (qonnx ``DataType``).
    n_in, n_out : int
        Elements per input and per output beat.
    per_sample : int
        Elements per sample, a multiple of ``n_in`` and ``n_out``.

    Members
    -------
    i : ``In(stream_of(dtype, n_in))``
    o : ``Out(stream_of(dtype, n_out))``

    Raises
    ------
    TypeError
        If a count is not a positive integer.
    ValueError
        If ``per_sample`` is not a multiple of both widths.
    """

    def __init__(self, *, dtype, n_in, n_out, per_sample):
        _check(n_in, n_out, per_sample)
        self._dtype, self._n_in, self._n_out = dtype, n_in, n_out
        self._per_sample = per_sample
        super().__init__({"i": In(stream_of(dtype, n_in)), "o": Out(stream_of(dtype, n_out))})

    @property
    def dtype(self):
        return self._dtype

    @property
    def n_in(self) -> int:
        return self._n_in

    @property
    def n_out(self) -> int:
        return self._n_out

    @property
    def per_sample(self) -> int:
        return self._per_sample

    def elaborate(self, platform):
        m = Module()
        n_in, n_out = self._n_in, self._n_out
        if n_in == n_out:
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
            return m
        bits = elem_shape(self._dtype).width
        size = 2 * n_in + n_out - 1
        buf = Signal(size * bits)
        count = Signal(range(size + 1))

        take = self.o.valid & self.o.ready
        accept = self.i.valid & self.i.ready
        m.d.comb += [
            self.o.valid.eq(count >= n_out),
            self.o.payload.eq(buf[: n_out * bits]),
            self.i.ready.eq(count <= size - n_in),
        ]
        kept = Mux(take, buf >> (n_out * bits), buf)
        base = Mux(take, count - n_out, count).as_unsigned()  # count >= n_out when taken
        incoming = Mux(accept, self.i.payload.as_value(), 0)
        m.d.sync += [
            buf.eq(kept | (incoming << (base * bits))),
            count.eq(base + Mux(accept, n_in, 0)),
        ]
        return m
