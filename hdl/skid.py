"""Skid buffer: the output of a clock-enable pipeline, with a ``ready`` from a register.

A chain of units that each take one sample per clock runs under one clock enable (see
:mod:`gatemill.hdl.plan`): every register of it advances when its consumer is ready. The skid
buffer is that consumer at the accelerator's output. Its ``i.ready`` is a register (``~full``),
so neither the enable of the whole chain nor the accelerator's input ``ready`` waits on the
output's ``ready`` through logic; it passes a beat on in the cycle it arrives (no latency) and
holds one beat (the one the chain delivered while the output was not ready).

Golden model: the identity (beats leave in the order they arrive, unchanged).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal, Value

from .common import StreamPassage

__all__ = ["LATENCY", "StreamSkid"]

LATENCY = 0
"""Cycles from an input beat to its output beat when the buffer is empty: a wire."""


class StreamSkid(StreamPassage):
    """A stream buffer that holds one beat, whose ``i.ready`` is a register.

    While empty it is a wire, ``o`` = ``i``, and ready; a beat the output does not take is
    held, the buffer is then full and not ready, and the held beat leaves first. So it takes a
    beat every cycle while the output is ready, and a producer that loads its registers on
    ``i.ready`` never waits on ``o.ready`` through logic.

    Parameters
    ----------
    shape : shape-castable
        Payload shape.

    Members
    -------
    i : ``In(stream.Signature(shape))``
    o : ``Out(stream.Signature(shape))``
    ready_next : Signal
        Not a port: what ``i.ready`` will be in the next cycle, for a producer that keeps its
        own enable in a register (the matrix-vector unit's ``out_skid``).

    Raises
    ------
    TypeError
        If ``shape`` is not shape-castable.
    """

    def __init__(self, *, shape):
        super().__init__(shape=shape)
        self.ready_next = Signal()

    def elaborate(self, platform):
        m = Module()
        full = Signal()
        held = Signal(Shape.cast(self._shape).width)
        arriving = Value.cast(self.i.payload)
        m.d.comb += [
            self.i.ready.eq(~full),
            self.o.valid.eq(full | self.i.valid),
            self.o.payload.eq(Mux(full, held, arriving)),
        ]
        # while empty the register follows the input, so that a refused beat is held; full
        # exactly when the output refuses a beat (the held one, or one arriving)
        with m.If(~full):
            m.d.sync += held.eq(arriving)
        full_next = self.o.valid & ~self.o.ready
        m.d.sync += full.eq(full_next)
        m.d.comb += self.ready_next.eq(~full_next)
        return m
