"""Stream FIFO between units: a queue of ``depth`` beats with full throughput.

Golden model: the identity (beats leave in the order they arrive, unchanged).
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal, Value
from amaranth.lib import fifo, stream, wiring

from .common import StreamPassage, pipelined_times

__all__ = ["StreamFifo", "latency_cycles"]


def _check_depth(depth) -> int:
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise TypeError(f"depth must be a non-negative integer, not {depth!r}")
    return depth


def latency_cycles(depth: int) -> int:
    """First input beat accepted -> first output beat valid, into an empty FIFO.

    ``0`` for ``depth == 0`` (a wire), ``1`` for ``depth`` 1 or 2 (registers, first-word
    fall-through), ``2`` for ``depth == 3`` (two registers, then the output register), ``3``
    for ``depth >= 4`` (memory read register, the memory's output register, the output
    register).
    """
    depth = _check_depth(depth)
    if depth == 0:
        return 0
    return 1 if depth <= 2 else 2 if depth == 3 else 3


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
    - ``depth >= 3``: a queue of ``depth - 1`` beats (``SyncFIFO`` of 2 for ``depth == 3``,
      else ``amaranth.lib.fifo.SyncFIFOBuffered``, an inferred memory with a synchronous
      read port, block RAM when deep) followed by a one-beat output register.
      ``SyncFIFOBuffered`` of depth 1 or 2 alternates full and empty, hence the cases above.
      The output register loads nothing but the queue's read data, so that an FPGA's block
      RAM takes it in as its own output register (ECP5: see
      :mod:`gatemill.flow.synth.ecp5_regs`): the read data then leaves the RAM from a
      register instead of after the RAM's slow read, and the unit behind starts its logic
      from a flip-flop.

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
            _output_register(m, self.i, self.o)
            return m
        width = Shape.cast(self._shape).width
        inner = self._depth if self._depth == 2 else self._depth - 1
        cls = fifo.SyncFIFO if inner == 2 else _QueueBuffered
        m.submodules.queue = queue = cls(width=width, depth=inner)
        m.d.comb += [
            queue.w_data.eq(Value.cast(self.i.payload)),
            queue.w_en.eq(self.i.valid),
            self.i.ready.eq(queue.w_rdy),
        ]
        if self._depth == 2:
            m.d.comb += [
                self.o.payload.eq(queue.r_data),
                self.o.valid.eq(queue.r_rdy),
                queue.r_en.eq(self.o.ready),
            ]
            return m
        read = stream.Signature(self._shape).create()
        m.d.comb += [read.payload.eq(queue.r_data), read.valid.eq(queue.r_rdy)]
        m.d.comb += queue.r_en.eq(read.ready)
        _output_register(m, read, self.o)
        return m


class _QueueBuffered(fifo.SyncFIFOBuffered):
    """``SyncFIFOBuffered`` whose memory says a read never meets a write to its address.

    It never does (the FIFO reads an entry only after writing it and writes it again only
    after reading it), but the memory's read port is non-transparent, so Yosys keeps the old
    data a colliding read would return: on an ECP5 block RAM it emulates that with registers
    and a multiplexer after the read data (``emulate_read_first``), which keeps the FIFO's
    output register out of the RAM (nextpnr: 5.6 ns from the RAM's read to that multiplexer,
    the digits CNN's slowest path). ``no_rw_check`` is Yosys's attribute for "a collision reads
    don't-care".
    """

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.submodules["storage"].attrs["no_rw_check"] = 1
        return m


def _output_register(m, i, o):
    """One beat in a register between streams *i* and *o* (``i.ready = ~o.valid | o.ready``,
    the only way one slot keeps full rate); the payload register has no reset and loads
    nothing but *i*'s payload."""
    payload = Signal.like(o.payload, reset_less=True, name="out_payload")
    m.d.comb += [i.ready.eq(~o.valid | o.ready), o.payload.eq(payload)]
    with m.If(i.ready):
        m.d.sync += o.valid.eq(i.valid)
    with m.If(i.ready & i.valid):
        m.d.sync += payload.eq(i.payload)
