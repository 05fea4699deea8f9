"""Width converter: re-chunk a stream of lanes from ``n_in`` to ``n_out`` elements per beat.

Golden model: the identity on the element sequence (order preserved, values unchanged).
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .common import elem_shape, stream_of

__all__ = ["Intake", "WidthConverter", "beat_times", "cycles_per_sample", "latency_cycles"]

SLOT_ENABLE_BITS = 8
"""Input beats at least this wide gather into registers with an enable each (a one-hot
slot); narrower ones shift in under one enable (each slot's enable is a LUT: Yosys xc7, the
bnn_pynq SFC with 1-bit beats took 9.8 % more LUTs with slots for all)."""


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
    """Cycle of every output beat of one sample, given when each input beat is offered (and
    held until taken, see :class:`Intake`): an output beat leaves one cycle after the input beat
    holding its last element is taken; ``n_in == n_out`` is a wire."""
    if n_in == n_out:
        _check(n_in, n_out, per_sample)
        return list(avail)
    intake = Intake(n_in, n_out, per_sample)
    for a in avail:
        intake.take(a)
    return intake.out


class Intake:
    """When a :class:`WidthConverter` takes the input beats of a sample, offered one after
    another, and when its output beats leave (its consumer, a FIFO, takes them at once).

    An output beat leaves one cycle after the input beat holding its last element is taken, and
    one cycle after the previous output beat. The gather structure takes a beat a cycle. The
    general structure takes one only while it holds at most ``n_in + n_out - 1`` elements, so
    input beat ``j`` waits until the first ``ceil((n_in * (j - 1) + 1) / n_out) - 1`` output
    beats have left; the scatter structure, which takes a beat while its second register is
    free, waits for the same output beats.

    Parameters
    ----------
    n_in, n_out, per_sample : int
        As for :class:`WidthConverter`, with ``n_in != n_out`` (a pass-through is a wire).

    Members
    -------
    out : list of int
        The cycle of every output beat completed so far.
    """

    def __init__(self, n_in: int, n_out: int, per_sample: int):
        _check(n_in, n_out, per_sample)
        if n_in == n_out:
            raise ValueError(f"a pass-through (n_in = n_out = {n_in}) takes no time")
        self._n_in, self._n_out, self._beats = n_in, n_out, per_sample // n_out
        self._taken: list[int] = []
        self.out: list[int] = []

    def take(self, offered: int) -> int:
        """The cycle at which the next input beat, valid from cycle *offered*, is taken."""
        n_in, n_out, j = self._n_in, self._n_out, len(self._taken)
        t = offered if j == 0 else max(offered, self._taken[-1] + 1)
        if n_out % n_in:
            gone = -(-(n_in * (j - 1) + 1) // n_out) - 1
            if gone > 0:
                t = max(t, self.out[gone - 1] + 1)
        self._taken.append(t)
        out = self.out
        while len(out) < self._beats and ((len(out) + 1) * n_out - 1) // n_in == j:
            out.append(t + 1 if not out else max(t + 1, out[-1] + 1))
        return t


class WidthConverter(wiring.Component):
    """Re-chunks a stream of lanes: ``n_in`` elements per input beat, ``n_out`` per output
    beat, lane 0 first, any ratio (e.g. 4 -> 6).

    Three structures, all with ``i.ready`` from registers only (no path from ``o.ready``) and
    the narrower side busy every cycle at full rate:

    - ``n_out = k * n_in`` (gather): the first ``k - 1`` beats shift into a register, the
      ``k``-th completes the output register; no multiplexer wider than 2:1.
    - ``n_in = k * n_out`` (scatter): a beat loads a register that shifts ``n_out`` elements
      out per output beat; a second register takes the next beat while it drains.
    - any other ratio: a shift register of ``2 * n_in + n_out - 1`` elements; an input beat
      goes in above the ``count`` buffered elements (a barrel shifter by whole elements), an
      output beat is the lowest ``n_out`` of them, shifted out when taken.

    Samples need no framing: ``per_sample`` is a multiple of both widths, so an output beat
    never straddles two samples, and it sets the estimates.

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
        take = self.o.valid & self.o.ready
        accept = self.i.valid & self.i.ready
        beat = self.i.payload.as_value()
        if n_out % n_in == 0:
            self._gather(m, n_out // n_in, n_in * bits, beat, take, accept)
        elif n_in % n_out == 0:
            self._scatter(m, n_in // n_out, n_out * bits, beat, take, accept)
        else:
            self._general(m, bits, beat, take, accept)
        return m

    def _gather(self, m, k, beat_bits, beat, take, accept):
        # beats 0 .. k-2 of the output beat, lowest first
        early = Signal((k - 1) * beat_bits, reset_less=True)
        out = Signal(k * beat_bits)
        if beat_bits >= SLOT_ENABLE_BITS:
            # Beat j < k - 1 waits in its own part of early, loaded when a one-hot slot says
            # so: an enable from two flip-flops for beat_bits registers, not one for all
            # (k - 1) * beat_bits (nextpnr-ecp5, digits MLP w4a4: 148.6 -> 159.6 MHz).
            slot = Signal(k, init=1)
            last = slot[k - 1]
            for j in range(k - 1):
                # ready is high in slots before the last: accepted = valid
                with m.If(self.i.valid & slot[j]):
                    m.d.sync += early[j * beat_bits : (j + 1) * beat_bits].eq(beat)
            with m.If(accept):
                m.d.sync += slot.eq(slot.rotate_left(1))
        else:
            # narrow beats shift in: a slot's enable would cost a LUT per few flip-flops
            count = Signal(range(k))
            last = Signal()  # count == k - 1, from a register (it enables the output register)
            with m.If(accept):
                m.d.sync += [count.eq(Mux(last, 0, count + 1)), last.eq(count == k - 2)]
                with m.If(~last):
                    m.d.sync += early.eq(Cat(early[beat_bits:], beat))
        # the last beat needs the output register free; the others can come while it is held
        m.d.comb += [self.o.payload.eq(out), self.i.ready.eq(~last | ~self.o.valid)]
        with m.If(take):
            m.d.sync += self.o.valid.eq(0)
        with m.If(accept & last):
            m.d.sync += [out.eq(Cat(early, beat)), self.o.valid.eq(1)]

    def _scatter(self, m, k, beat_bits, beat, take, accept):
        shifter = Signal(k * beat_bits)
        left = Signal(range(k + 1))  # output beats still in the shifter
        pending = Signal(k * beat_bits)
        pending_valid = Signal()
        m.d.comb += [
            self.o.valid.eq(left != 0),
            self.o.payload.eq(shifter[:beat_bits]),
            self.i.ready.eq(~pending_valid),
        ]
        with m.If(take):
            m.d.sync += [shifter.eq(shifter >> beat_bits), left.eq(left - 1)]
        with m.If((left == 0) | ((left == 1) & take)):
            with m.If(pending_valid):
                m.d.sync += [shifter.eq(pending), left.eq(k), pending_valid.eq(0)]
            with m.Elif(accept):
                m.d.sync += [shifter.eq(beat), left.eq(k)]
        with m.Elif(accept):
            m.d.sync += [pending.eq(beat), pending_valid.eq(1)]

    def _general(self, m, bits, beat, take, accept):
        n_in, n_out = self._n_in, self._n_out
        size = 2 * n_in + n_out - 1
        buf = Signal(size * bits)
        count = Signal(range(size + 1))
        m.d.comb += [
            self.o.valid.eq(count >= n_out),
            self.o.payload.eq(buf[: n_out * bits]),
            self.i.ready.eq(count <= size - n_in),
        ]
        kept = Mux(take, buf >> (n_out * bits), buf)
        base = Mux(take, count - n_out, count).as_unsigned()  # count >= n_out when taken
        incoming = Mux(accept, beat, 0)
        # shift each bit plane by *base* elements, so the shifter moves whole elements and
        # needs no base * bits multiplier
        planes = [
            Cat(incoming[e * bits + j] for e in range(n_in)).as_unsigned() << base
            for j in range(bits)
        ]
        placed = Cat(planes[j][e] for e in range(size) for j in range(bits))
        m.d.sync += [buf.eq(kept | placed), count.eq(base + Mux(accept, n_in, 0))]
