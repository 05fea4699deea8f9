"""Stream FIFO between units: a queue of ``depth`` beats with full throughput.

Golden model: the identity (beats leave in the order they arrive, unchanged).
"""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module, Mux, Shape, Signal, Value
from amaranth.lib import fifo, memory, stream, wiring

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
      else a queue that behaves as ``amaranth.lib.fifo.SyncFIFOBuffered``, an inferred memory
      with a synchronous read port, block RAM when deep, with its flags in registers)
      followed by a one-beat output register.
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
        cls = fifo.SyncFIFO if inner == 2 else _Queue
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


class _Queue(Elaboratable):
    """``amaranth.lib.fifo.SyncFIFOBuffered`` of ``depth >= 2``, cycle for cycle (the same
    ports, levels and latency), with ``w_rdy`` and the memory's "not empty" in registers.

    The library computes ``w_rdy`` as ``level != depth - 1`` each cycle: a comparator
    between the level counter and the producer's whole clock enable (a unit's ``advance``) and
    the memory's write enable (nextpnr-ecp5: 8.2 ns on the digits CNN's max-pool FIFO, the
    1-D CNN's slowest path at 6.4 ns). Here both flags are set from the level's change.

    The memory says a read never meets a write to its address (``no_rw_check``): an entry is
    read only after it is written and written again only after it is read. Its read port is
    non-transparent, so without the attribute Yosys keeps the old data a colliding read would
    return: on an ECP5 block RAM it emulates that with registers and a multiplexer after the
    read data (``emulate_read_first``), which keeps the FIFO's output register out of the RAM.
    """

    def __init__(self, *, width: int, depth: int):
        self.width, self.depth = width, depth
        self.w_data, self.w_en, self.w_rdy = Signal(width), Signal(), Signal()
        self.r_data, self.r_en, self.r_rdy = Signal(width), Signal(), Signal()

    def elaborate(self, platform):
        m = Module()
        entries = self.depth - 1  # in the memory; the read port's register holds one more
        storage = memory.Memory(shape=self.width, depth=entries, init=[], attrs={"no_rw_check": 1})
        m.submodules.storage = storage
        w_port, r_port = storage.write_port(), storage.read_port(domain="sync")
        produce, consume = Signal(range(entries)), Signal(range(entries))
        level = Signal(range(entries + 1))  # in the memory
        room, stored = Signal(init=1), Signal()  # level != entries, level != 0

        do_write = room & self.w_en
        do_read = stored & (~self.r_rdy | self.r_en)
        m.d.comb += [
            self.w_rdy.eq(room),
            w_port.addr.eq(produce),
            w_port.data.eq(self.w_data),
            w_port.en.eq(do_write),
            r_port.addr.eq(consume),
            r_port.en.eq(do_read),
            self.r_data.eq(r_port.data),
        ]
        with m.If(do_write):
            m.d.sync += produce.eq(Mux(produce == entries - 1, 0, produce + 1))
        with m.If(do_read):
            m.d.sync += [consume.eq(Mux(consume == entries - 1, 0, consume + 1)), self.r_rdy.eq(1)]
        with m.Elif(self.r_en):
            m.d.sync += self.r_rdy.eq(0)
        with m.If(do_write & ~do_read):
            m.d.sync += [level.eq(level + 1), room.eq(level != entries - 1), stored.eq(1)]
        with m.If(do_read & ~do_write):
            m.d.sync += [level.eq(level - 1), room.eq(1), stored.eq(level != 1)]
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
