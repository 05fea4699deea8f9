"""Stream conventions shared by every hardware template.

A layer's input and output are ``amaranth.lib.stream`` streams whose payload is an
``ArrayLayout`` of lanes: lane *k* holds element *k* of the beat, lane 0 in the least
significant bits. Elements are two's complement for signed datatypes, plain binary for
unsigned ones, and one bit for BIPOLAR (1 for +1, 0 for -1). A sample is a fixed number of beats
in the IR's channels-last order; there is no framing inside the design (the AXI4-Stream top
adds ``tlast``).
"""

from __future__ import annotations

from bisect import bisect_right

from amaranth.hdl import Shape, ShapeCastable, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..flow.ir.datatypes import BIPOLAR

ROM_ATTRS = {"rom_style": "logic", "ram_style": "logic"}
"""Synthesis attributes of a ROM built from logic (LUTs), not RAM blocks."""

KEEP_APART = "gatemill_keep_apart"
"""Attribute of a register that place and route needs as it is written: Yosys merges
registers with the same input into one (``opt_merge``), e.g. the upper address bits every
LUT neuron reading an input registers, which then drive neurons all over the chip. The ECP5
place-and-route flows keep such registers apart
(:data:`gatemill.flow.synth.yosys.KEEP_APART_SCRIPT`); the utilization counts let Yosys merge
them, as Vivado does before it replicates registers for timing.

Not on a matrix-vector unit's weight registers: a shallow weight ROM's columns repeat (a
4-word ROM has 16 different ones), and Yosys merges the digit choices of rows that share a
column and an input too; kept apart, the deep sets' 4,096-bit weight register took 6,270
more LUT4s on the ECP5 and nextpnr's router stalled."""


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


def check_shape(shape):
    """*shape* if it is shape-castable (a plumbing component's payload), else ``TypeError``."""
    if not isinstance(shape, ShapeCastable):
        try:
            Shape.cast(shape)
        except TypeError as exc:
            raise TypeError(f"shape must be shape-castable, not {shape!r}") from exc
    return shape


class StreamPassage(wiring.Component):
    """A component that passes beats of one payload *shape* from stream ``i`` to stream ``o``
    (a FIFO, a skid buffer): the payload check, the signature and :attr:`shape`.

    Raises
    ------
    TypeError
        If *shape* is not shape-castable.
    """

    def __init__(self, *, shape):
        self._shape = check_shape(shape)
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    @property
    def shape(self):
        """The payload shape of a beat."""
        return self._shape


def check_kind(layer, kind: str):
    """*layer* if it is an IR layer of kind *kind* (a unit's constructor argument)."""
    if getattr(layer, "kind", None) != kind:
        raise TypeError(f"layer must be a {kind} layer, not {layer!r}")
    return layer


class Backpressure:
    """When a unit's consumer takes its output beats, and the cycles the unit stalls meanwhile.

    The timing models' view of a unit whose registers all hold while its output register holds
    a beat the consumer has not taken (``advance = ~o.valid | o.ready``: the matrix-vector,
    threshold, max-pool and LUT units; the sliding window's output stage): its schedule runs on
    the other cycles only, and it takes no input beat while it stalls.

    Parameters
    ----------
    take : callable, optional
        ``take(v)``: the cycle at which the consumer takes the next output beat, valid from
        cycle ``v`` (at least ``v``); called beat after beat. By default every beat is taken
        at once, and the unit never stalls.
    """

    def __init__(self, take=None):
        self._take = take
        self._starts: list[int] = []  # stalls: cycles [start, end), in order, never adjacent
        self._ends: list[int] = []

    @property
    def never_stalls(self) -> bool:
        """Every beat is taken at once (no *take*): the unit advances on every cycle."""
        return self._take is None

    def advance(self, t: int) -> int:
        """The first cycle from *t* on at which the unit advances."""
        if not self._ends or t >= self._ends[-1]:  # past every stall so far
            return t
        i = bisect_right(self._starts, t) - 1
        return self._ends[i] if i >= 0 and t < self._ends[i] else t

    def later(self, t: int, edges: int) -> int:
        """The cycle at which the unit advances for the *edges*-th time after cycle *t*."""
        if not self._ends or t >= self._ends[-1]:
            return t + edges
        for _ in range(edges):
            t = self.advance(t + 1)
        return t

    def behind_skid(self) -> Backpressure:
        """This consumer's backpressure seen through a skid buffer (:class:`SkidBackpressure`;
        a new object, no stall recorded)."""
        return SkidBackpressure(self._take)

    def emit(self, valid: int) -> int:
        """An output beat valid from cycle *valid*: the unit stalls until it is taken.
        Returns *valid*."""
        if self._take is not None:
            taken = self._take(valid)
            if taken > valid:
                self._starts.append(valid)
                self._ends.append(taken)
        return valid


class SkidBackpressure(Backpressure):
    """The consumer's backpressure as a unit sees it through a skid buffer of one beat (the
    matrix-vector unit's ``out_skid``): a beat leaves the unit as soon as the buffer is empty,
    and reaches the consumer then, or the cycle after the consumer took the beat held before
    it. The unit stalls only while its output beat waits for the buffer.

    Parameters
    ----------
    take : callable, optional
        The consumer's ``take(v)``, as for :class:`Backpressure`.
    """

    def __init__(self, take=None):
        super().__init__(take)
        self._taken = None  # the cycle the consumer took the last beat

    def emit(self, valid: int) -> int:
        """An output beat valid at the unit from cycle *valid*; returns the cycle it is valid
        at the buffer's output (when the unit passes it on)."""
        if self._take is None:
            return valid
        passed = valid if self._taken is None else max(valid, self._taken + 1)
        self._taken = self._take(passed)
        if passed > valid:
            self._starts.append(valid)
            self._ends.append(passed)
        return passed


def pipelined_times(avail, latency: int, hold: Backpressure | None = None) -> list[int]:
    """Output beat cycles of a unit taking one beat per cycle with a fixed *latency*.

    *avail* holds the cycle at which each input beat becomes available; *hold* is the
    consumer's backpressure (none by default: the output is never blocked). A beat taken at
    cycle ``t`` is valid at the output ``latency`` advancing cycles later; *latency* 0 gives
    the cycles the beats are taken (and *hold* only delays them). Used by the timing models
    (:meth:`gatemill.flow.kinds.base.Layer.beat_times`).
    """
    hold = hold or Backpressure()
    out, t = [], None
    for a in avail:
        t = hold.advance(a if t is None else max(a, t + 1))
        out.append(hold.emit(hold.later(t, latency - 1) + 1) if latency else t)
    return out


def sum_times(avail, ends, latency: int, hold: Backpressure | None = None) -> list[int]:
    """Output beat cycles of a unit that takes one beat per cycle and passes an output beat
    *latency* advancing cycles after each input beat ``k`` for which ``ends(k)`` (the last
    beat of a sum); *hold* as for :func:`pipelined_times`. Used by the channel-sum kinds."""
    hold = hold or Backpressure()
    out, t = [], None
    for k, a in enumerate(avail):
        t = hold.advance(a if t is None else max(a, t + 1))
        if ends(k):
            out.append(hold.emit(hold.later(t, latency - 1) + 1))
    return out
