"""The accelerator behind a UART, for open boards whose only link to a host is a USB-UART.

:class:`UartBridge` receives request frames on ``rx``, feeds the samples' bytes to
:class:`~gatemill.hdl.top.Accelerator` as beats packed exactly as on the AXI4-Stream top, and
sends every result back on ``tx``; the byte protocol (frames, identify reply, window flow
control) is described in :mod:`gatemill.flow.bitstream.protocol`. :class:`UartRx` and
:class:`UartTx` are plain 8N1 serial ports clocked from the design clock, ``divisor`` clock
cycles per bit. :class:`BoardTop` connects the bridge to an amaranth-boards platform's UART.

Golden model: the accelerator's, i.e. the IR's (a result frame holds the golden model's output
of the sample frame, packed as ``rtl/manifest.json`` says).
"""

from __future__ import annotations

from amaranth.build import ResourceError
from amaranth.hdl import Cat, Const, Elaboratable, Module, Signal
from amaranth.lib import io, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..flow.bitstream import protocol
from ..flow.ir import IRGraph
from ..flow.packing import port_description
from .fifo import StreamFifo
from .top import Accelerator

__all__ = ["BoardTop", "UartBridge", "UartRx", "UartTx", "uart_divisor"]

MAX_BAUD_ERROR = 0.02


def uart_divisor(clk_hz: float, baud: int) -> int:
    """Clock cycles per bit for *baud* at *clk_hz*.

    Raises
    ------
    ValueError
        If fewer than 4 cycles per bit, or the rounded rate is off by more than 2 %
        (both ends of a UART line together tolerate about 4 %).
    """
    divisor = round(clk_hz / baud)
    if divisor < 4:
        raise ValueError(f"baud {baud} needs at least 4 cycles per bit at {clk_hz:g} Hz")
    error = abs(clk_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(
            f"baud {baud} at {clk_hz:g} Hz is off by {100 * error:.1f} % (divisor {divisor})"
        )
    return divisor


def _check_divisor(divisor) -> int:
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 4:
        raise TypeError(f"divisor must be an integer of at least 4, not {divisor!r}")
    return divisor


class UartRx(wiring.Component):
    """8N1 receiver: a byte per frame on ``o``, sampled in the middle of each bit.

    ``o`` holds a received byte until it is taken; a byte completing while the previous one
    is still held is dropped and pulses ``overrun``. A frame whose stop bit is low is dropped
    and pulses ``frame_error``.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.

    Members
    -------
    rx : ``In(1)``
        The serial line (idle high); synchronized inside.
    o : ``Out(stream.Signature(8))``
    overrun, frame_error : ``Out(1)``
        One-cycle pulses.
    """

    def __init__(self, *, divisor: int):
        self._divisor = _check_divisor(divisor)
        super().__init__(
            {
                "rx": In(1, init=1),
                "o": Out(stream.Signature(8)),
                "overrun": Out(1),
                "frame_error": Out(1),
            }
        )

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        count = Signal(range(d))
        bit = Signal(range(8))
        shreg = Signal(8)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("idle"), m.If(~line):
                m.d.sync += count.eq(d // 2 - 1)
                m.next = "start"
            with m.State("start"):
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    with m.If(line):  # high again mid-bit: a glitch, not a start bit
                        m.next = "idle"
                    with m.Else():
                        m.d.sync += [count.eq(d - 1), bit.eq(0)]
                        m.next = "data"
            with m.State("data"):
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    m.d.sync += [count.eq(d - 1), shreg.eq(Cat(shreg[1:], line)), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "stop"
            with m.State("stop"):
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    # back to idle in the middle of the stop bit: half a bit of slack for a
                    # sender whose clock runs faster than ours
                    m.next = "idle"
                    with m.If(~line):
                        m.d.comb += self.frame_error.eq(1)
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
        return m


class UartTx(wiring.Component):
    """8N1 transmitter: sends every byte taken from ``i`` on ``tx``.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.

    Members
    -------
    i : ``In(stream.Signature(8))``
    tx : ``Out(1)``
        The serial line, idle high, driven from a register.
    """

    def __init__(self, *, divisor: int):
        self._divisor = _check_divisor(divisor)
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        count = Signal(range(d))
        left = Signal(range(10))
        shreg = Signal(9)
        line = Signal(init=1)
        busy = Signal()
        # ready from a register, not from an FSM state: Icarus never evaluates a
        # combinational block whose inputs do not change after time 0, and an X ready would
        # hang the producer until the first byte
        m.d.comb += [self.tx.eq(line), self.i.ready.eq(~busy)]
        with m.If(busy):
            m.d.sync += count.eq(count - 1)
            with m.If(count == 0):
                m.d.sync += count.eq(d - 1)
                with m.If(left == 0):
                    m.d.sync += busy.eq(0)
                with m.Else():
                    m.d.sync += [line.eq(shreg[0]), shreg.eq(shreg[1:]), left.eq(left - 1)]
        with m.Elif(self.i.valid):
            # start bit now; then 8 data bits, LSB first, and the stop bit
            m.d.sync += [
                busy.eq(1),
                line.eq(0),
                shreg.eq(Cat(self.i.payload, Const(1, 1))),
                left.eq(9),
                count.eq(d - 1),
            ]
        return m


class UartBridge(wiring.Component):
    """:class:`~gatemill.hdl.top.Accelerator` of *ir* served over a UART.

    Parameters
    ----------
    ir : IRGraph
    divisor : int
        Clock cycles per bit (:func:`uart_divisor`).
    design_id : int
        The 32-bit id the identify reply carries
        (:func:`gatemill.flow.bitstream.protocol.design_id` of the manifest).
    window : int
        Request frames the receive buffer holds (the host's flow-control window).
    fifo_depths : dict, optional
        Passed to :class:`~gatemill.hdl.top.Accelerator`.

    Members
    -------
    rx : ``In(1)``
    tx : ``Out(1)``
    error : ``Out(1)``
        A byte was lost or malformed since the last identify reply (for a LED).
    """

    def __init__(
        self,
        ir: IRGraph,
        *,
        divisor: int,
        design_id: int = 0,
        window: int = protocol.WINDOW,
        fifo_depths: dict[str, int] | None = None,
    ):
        self._divisor = _check_divisor(divisor)
        if not isinstance(window, int) or not 1 <= window <= 255:
            raise TypeError(f"window must be an integer in 1..255, not {window!r}")
        if not isinstance(design_id, int) or not 0 <= design_id < 2**32:
            raise TypeError(f"design_id must be a 32-bit unsigned integer, not {design_id!r}")
        self._core = Accelerator(ir, fifo_depths)
        stages = self._core.stages
        last = ir.layers[-1]
        self._inp = port_description(ir.input.shape, ir.input.dtype, stages[0].in_lanes)
        self._out = port_description(last.out_shape, last.out_dtype, stages[-1].out_lanes)
        self._in_bytes = protocol.frame_bytes(self._inp)
        self._out_bytes = protocol.frame_bytes(self._out)
        for what, n in (("input", self._in_bytes), ("output", self._out_bytes)):
            if n >= 2**16:
                raise ValueError(f"a sample's {what} of {n} bytes is too big for the protocol")
        self._window = window
        self._design_id = design_id
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "error": Out(1)})

    @property
    def core(self) -> Accelerator:
        return self._core

    @property
    def input_port(self) -> dict:
        """The input's port description (as in ``rtl/manifest.json``)."""
        return dict(self._inp)

    @property
    def output_port(self) -> dict:
        """The output's port description (as in ``rtl/manifest.json``)."""
        return dict(self._out)

    @property
    def rx_depth(self) -> int:
        """Bytes the receive buffer holds: *window* whole request frames."""
        return self._window * (self._in_bytes + 1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self._core
        m.submodules.rx = rx = UartRx(divisor=self._divisor)
        m.submodules.tx = tx = UartTx(divisor=self._divisor)
        m.submodules.rx_fifo = fifo = StreamFifo(shape=8, depth=self.rx_depth)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]
        wiring.connect(m, rx.o, fifo.i)

        overrun, framing, ident = Signal(), Signal(), Signal()
        m.d.comb += self.error.eq(overrun | framing)
        ident_done = self._transmit(m, core.o, tx.i, overrun, framing, ident)
        with m.If(ident_done):
            m.d.sync += [ident.eq(0), overrun.eq(0), framing.eq(0)]
        # the sets below come after the clear: in the same cycle they win, nothing is lost
        with m.If(rx.overrun):
            m.d.sync += overrun.eq(1)
        with m.If(rx.frame_error):
            m.d.sync += framing.eq(1)
        self._receive(m, fifo.o, core.i, ident)
        return m

    def _receive(self, m, byte, beat_out, ident):
        """Request frames from the byte FIFO -> input beats of the accelerator."""
        beat_bytes = self._inp["tdata_bits"] // 8
        beats = self._inp["beats_per_sample"]
        in_bits = beat_out.payload.shape().size
        beat = Signal(beat_bytes * 8)
        nbyte = Signal(range(max(beat_bytes, 2)))
        nbeat = Signal(range(max(beats, 2)))
        with m.FSM(name="receive"):
            with m.State("idle"):
                m.d.comb += byte.ready.eq(1)
                with m.If(byte.valid & (byte.payload == protocol.CMD_SAMPLE)):
                    m.d.sync += [nbyte.eq(0), nbeat.eq(0)]
                    m.next = "data"
                with m.If(byte.valid & byte.ready & (byte.payload == protocol.CMD_IDENTIFY)):
                    m.d.sync += ident.eq(1)
            with m.State("data"):
                m.d.comb += byte.ready.eq(1)
                with m.If(byte.valid):
                    # little-endian: after beat_bytes shifts the first byte is at the bottom
                    m.d.sync += [beat.eq(Cat(beat[8:], byte.payload)), nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == beat_bytes - 1):
                        m.next = "push"
            with m.State("push"):
                m.d.comb += [
                    beat_out.valid.eq(1),
                    beat_out.payload.as_value().eq(beat[:in_bits]),
                ]
                with m.If(beat_out.ready):
                    m.d.sync += [nbyte.eq(0), nbeat.eq(nbeat + 1)]
                    m.next = "data"
                    with m.If(nbeat == beats - 1):
                        m.next = "idle"

    def _transmit(self, m, beat_in, byte, overrun, framing, ident):
        """Identify replies and result frames -> bytes to the transmitter."""
        beat_bytes = self._out["tdata_bits"] // 8
        beats = self._out["beats_per_sample"]
        reply = protocol.identity_bytes(
            in_bytes=self._in_bytes,
            out_bytes=self._out_bytes,
            design=self._design_id,
            window=self._window,
        )
        beat = Signal(beat_bytes * 8)
        nbyte = Signal(range(max(beat_bytes, len(reply), 2)))
        nbeat = Signal(range(max(beats, 2)))
        done = Signal()
        with m.FSM(name="transmit"):
            with m.State("idle"):
                with m.If(ident):
                    m.d.sync += nbyte.eq(0)
                    m.next = "identify"
                with m.Elif(beat_in.valid):
                    m.d.sync += nbeat.eq(0)
                    m.next = "header"
            with m.State("identify"):
                m.d.comb += byte.valid.eq(1)
                with m.Switch(nbyte):
                    for k, value in enumerate(reply):
                        with m.Case(k):
                            if k == 3:  # the flags byte
                                m.d.comb += byte.payload.eq(Cat(overrun, framing))
                            else:
                                m.d.comb += byte.payload.eq(value)
                with m.If(byte.ready):
                    m.d.sync += nbyte.eq(nbyte + 1)
                    with m.If(nbyte == len(reply) - 1):
                        m.d.comb += done.eq(1)
                        m.next = "idle"
            with m.State("header"):
                m.d.comb += [byte.valid.eq(1), byte.payload.eq(protocol.RESULT)]
                with m.If(byte.ready):
                    m.next = "load"
            with m.State("load"):
                m.d.comb += beat_in.ready.eq(1)
                with m.If(beat_in.valid):
                    m.d.sync += [beat.eq(beat_in.payload.as_value()), nbyte.eq(0)]
                    m.next = "send"
            with m.State("send"):
                m.d.comb += [byte.valid.eq(1), byte.payload.eq(beat[:8])]
                with m.If(byte.ready):
                    m.d.sync += [beat.eq(beat[8:]), nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == beat_bytes - 1):
                        m.d.sync += nbeat.eq(nbeat + 1)
                        m.next = "load"
                        with m.If(nbeat == beats - 1):
                            m.next = "idle"
        return done


class BoardTop(Elaboratable):
    """A :class:`UartBridge` on a board: its UART resource, and a LED showing ``error``.

    Parameters
    ----------
    bridge : UartBridge
    uart : str
        Name of the platform's UART resource (``rx`` in, ``tx`` out).
    """

    def __init__(self, bridge: UartBridge, uart: str = "uart"):
        self.bridge = bridge
        self.uart = uart

    def elaborate(self, platform):
        m = Module()
        m.submodules.bridge = bridge = self.bridge
        uart = platform.request(self.uart, 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [bridge.rx.eq(rx.i), tx.o.eq(bridge.tx)]
        try:
            led = platform.request("led", 0, dir="-")
        except ResourceError:  # a board without LEDs loses only the error light
            return m
        m.submodules.led = light = io.Buffer("o", led)
        m.d.comb += light.o.eq(bridge.error)
        return m
