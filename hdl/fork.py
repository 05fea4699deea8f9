"""Stream fork: one stream copied to several readers (a value read by two branches).

Golden model: the identity on every output.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, ShapeCastable, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamFork"]


class StreamFork(wiring.Component):
    """Copies every input beat to ``n`` outputs, each taking it when it is ready.

    An output's ``valid`` depends on the input's ``valid`` and the fork's own state only (never
    combinationally on a ``ready``): a flag per output records that it has taken the current
    beat, and the input beat is released in the cycle its last output takes it. So a beat is
    passed on in the cycle it arrives when every output is ready (no latency, one beat a
    cycle), and a stalled reader holds only the copies it has not taken.

    Parameters
    ----------
    shape : shape-castable
        Payload shape.
    n : int
        Outputs, ``>= 2``.

    Members
    -------
    i : ``In(stream.Signature(shape))``
    o0, o1, ... : ``Out(stream.Signature(shape))``
    """

    def __init__(self, *, shape, n: int):
        if not isinstance(shape, ShapeCastable):
            Shape.cast(shape)
        if not isinstance(n, int) or isinstance(n, bool) or n < 2:
            raise TypeError(f"n must be an integer of at least 2, not {n!r}")
        self._n = n
        sig = stream.Signature(shape)
        super().__init__({"i": In(sig), **{f"o{k}": Out(sig) for k in range(n)}})

    @property
    def n(self) -> int:
        return self._n

    def outputs(self) -> list:
        """The output streams, in order."""
        return [getattr(self, f"o{k}") for k in range(self._n)]

    def elaborate(self, platform):
        m = Module()
        outs = self.outputs()
        taken = [Signal(name=f"taken{k}") for k in range(self._n)]
        done = [t | o.ready for t, o in zip(taken, outs, strict=True)]
        all_done = done[0]
        for d in done[1:]:
            all_done = all_done & d
        m.d.comb += self.i.ready.eq(all_done)
        for o, t in zip(outs, taken, strict=True):
            m.d.comb += [o.valid.eq(self.i.valid & ~t), o.payload.eq(self.i.payload)]
            with m.If(self.i.valid & all_done):
                m.d.sync += t.eq(0)
            with m.Elif(o.valid & o.ready):
                m.d.sync += t.eq(1)
        return m
