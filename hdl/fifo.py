"""Stream FIFO between units: a queue of ``depth`` beats with full throughput.

Golden model: the identity (beats leave in the order they arrive, unchanged).
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Value
from amaranth.lib import fifo, wiring

from .common import StreamPassage, pipelined_times

__all__ = ["StreamFifo", "latency_cycles"]


def _check_depth(depth) -> int:
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise TypeError(f"depth must be a non-negative integer, not {depth!r}")
    return depth


def latency_cycles(depth: int) -> int:
    """First input beat accepted -> first output beat valid, into an empty FIFO.

    ``0`` for ``depth == 0`` (a wire), ``1`` for ``depth`` 1 or 2 (registers, first-word
    fall-through), ``2`` for ``depth >= 3`` (memory read register, then output register).
    """
    depth = _check_depth(depth)
    if depth == 0:
        return 0
    return 1 if depth <= 2 else 2


def beat_times(depth: int, avail) -> list[int]:
    """Cycle of every output beat, given when each input beat is available (never full)."""
    return pipelined_times(avail, latency_cycles(depth))


class StreamFifo(StreamPassage):
    """A first-in first-out queue of stream beats holding exactly ``depth`` beats.

    Every depth sustains one beat per cycle in and out while the consumer is ready. The
    implementation depends on the depth because the library FIFOs lose throughput when small:

    - ``depth == 0``: a pass-through wire (no storage, no register);
    - ``depth == 1``: one register; ``i.ready = ~o.valid | o.ready``, a combinational path
      from ``o.ready`` to ``i.ready`` (the only way one slot keeps full rate);
    - ``depth == 2``: ``amaranth.lib.fifo.SyncFIFO`` (two registers read asynchronously);
    - ``depth >= 3``: ``amaranth.lib.fifo.SyncFIFOBuffered``, an inferred memory with a
      synchronous read port (block RAM when deep) followed by an output register.
      ``SyncFIFOBuffered`` of depth 1 or 2 alternates full and empty, hence the cases above.

    Parameters
    ----------
    shape : shape-castable
        Payload shape, e.g. :func:`gatemill.hdl.common.lanes` of a layer's fold.
    depth : int
        Capacity in beats, ``>= 0``.

    Members
    -------
    i : ``In(stream.Signature(shape))``
    o : ``Out(stream.Signature(shape))``

    Raises
    ------
    TypeError
        If ``depth`` is not a non-negative integer or ``shape`` is not shape-castable.
    """

    def __init__(self, *, shape, depth):
        self._depth = _check_depth(depth)
        super().__init__(shape=shape)

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        if self._depth == 0:
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
            return m
        if self._depth == 1:
            m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
            with m.If(self.i.ready):
                m.d.sync += self.o.valid.eq(self.i.valid)
                m.d.sync += self.o.payload.eq(self.i.payload)
            return m
        width = Shape.cast(self._shape).width
        cls = fifo.SyncFIFO if self._depth == 2 else fifo.SyncFIFOBuffered
        m.submodules.queue = queue = cls(width=width, depth=self._depth)
        m.d.comb += [
            queue.w_data.eq(Value.cast(self.i.payload)),
            queue.w_en.eq(self.i.valid),
            self.i.ready.eq(queue.w_rdy),
            self.o.payload.eq(queue.r_data),
            self.o.valid.eq(queue.r_rdy),
            queue.r_en.eq(self.o.ready),
        ]
        return m
