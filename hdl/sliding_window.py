"""Sliding-window unit (SWU): the convolution input generator (im2col) in front of a
matrix-vector unit.

The layer kind, its golden model, schedule and timing: :mod:`gatemill.flow.kinds.sliding_window`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .common import check_kind, lanes, stream_of

__all__ = ["SlidingWindowUnit"]


def _add_mod(value, step, modulus: int):
    """``(value + step) % modulus`` for ``0 <= value, step < modulus`` (one conditional
    subtract, no divider)."""
    total = value + step
    return Mux(total >= modulus, total - modulus, total)


class SlidingWindowUnit(wiring.Component):
    """Convolution windows from a pixel stream, through a line buffer.

    The input is ``H * W * CF`` beats per sample (``CF = C / simd``), pixel-major; the output
    is, for every output pixel in raster order, its window in ``(ky, kx, c)`` order,
    ``KH * KW * CF`` beats. Padding is generated (a zero beat), never stored.

    Buffering: a circular line buffer of ``R`` input rows (the schedule's ``rows``) in one
    inferred memory of ``R * W * CF`` words of ``simd`` lanes; global input row ``r`` lives in
    slot ``r mod R``, so a sample continues where the previous one left off.

    Schedule, at row granularity, the input one output row ahead of the output:

    - output row ``k`` starts once input rows ``0 .. need(k)`` of its sample are written;
    - input row ``r`` is accepted while ``r <= need(k + 1)`` for the output row ``k`` being
      emitted (or next to be); during the last output row of a sample the rest of the sample
      and the rows ``0 .. need(0)`` of the next sample are accepted. Rows below the last
      window are written like the others and never read.

    So input and output overlap, samples follow back to back, and at full rate the timing is
    exactly the kind's timing model. The output is two stages: the
    issued address is read synchronously (``en`` stalls the port while the output is held),
    the read data is registered, and a flag registered beside it selects zero for padding.

    Parameters
    ----------
    layer : :class:`~gatemill.flow.kinds.sliding_window.SlidingWindow`
        Top and bottom padding smaller than the kernel height.

    Members
    -------
    i : ``In(stream_of(layer.dtype, layer.simd))``
    o : ``Out(stream_of(layer.dtype, layer.simd))``
    read_hazard : Signal
        Not a port: high at a clock edge where a read the output uses meets a write to its
        address. It never is (the tests watch it), so the line buffer tells Yosys that a
        collision reads don't-care (``no_rw_check``): a block RAM then keeps its read data
        register without a collision bypass in front of it.

    Raises
    ------
    TypeError
        If ``layer`` is not a ``SlidingWindow``.
    ValueError
        If a whole output row would be padding.
    """

    def __init__(self, *, layer):
        self._plan = check_kind(layer, "SlidingWindow").schedule()
        self._layer = layer
        sig = stream_of(layer.dtype, layer.simd)
        super().__init__({"i": In(sig), "o": Out(sig)})
        self.read_hazard = Signal()

    @property
    def layer(self):
        return self._layer

    def elaborate(self, platform):
        p, m = self._plan, Module()
        rows, depth = p.rows, p.rows * p.irow
        m.submodules.lines = lines = memory.Memory(
            shape=lanes(self._layer.dtype, self._layer.simd), depth=depth, init=[]
        )
        lines.attrs["no_rw_check"] = 1  # see read_hazard
        wport, rport = lines.write_port(), lines.read_port(domain="sync")

        # Output counters: cf fastest, then kx, ky, ox, oy (row of the current sample).
        o_cf, o_kx, o_ky = Signal(range(p.cf)), Signal(range(p.kw)), Signal(range(p.kh))
        o_ox, o_oy = Signal(range(p.ow)), Signal(range(p.oh))
        # The read address rslot * irow + x * cf + o_cf (rslot: the slot of window row ky,
        # virtual rows above and below included; x: its input column) is kept as two registers
        # updated with the counters, rowbase = rslot * irow and col = x * cf + o_cf, so one
        # adder is all that is in front of the memory (nextpnr-ecp5, 1-D CNN: 7.8 ns through
        # the sum of products by constants and a LUT RAM's read). topbase is rowbase at ky = 0,
        # colbase col at kx = 0, o_cf = 0.
        topbase = Signal(range(depth), init=(-p.pt % rows) * p.irow)
        rowbase = Signal.like(topbase)
        col0 = -p.pl * p.cf  # col at the row's first window, kx = 0, o_cf = 0
        colbase = Signal(range(col0, (p.w + p.pr) * p.cf), init=col0)
        col = Signal.like(colbase)
        # Input counters, and the input's sample minus the output's: -1 when the output has
        # finished a sample whose unused bottom rows are still arriving, up to 2 when the input
        # holds a whole next sample (a kernel as tall as the input).
        i_cf, i_x, i_y = Signal(range(p.cf)), Signal(range(p.w)), Signal(range(p.h))
        waddr = Signal(range(depth))
        ahead = Signal(range(-1, 3))

        # The ready and issue conditions compare the input row with the rows the output
        # needs: need_in = (o_oy + 1) * SH + reach, the rows the next output row reads (or,
        # on the sample's last row, past it: only `ahead` satisfies it), and need_out =
        # o_oy * SH + reach, the current row's. They are kept as the differences gap_in =
        # need_in - i_y and gap_out = i_y - need_out - 1, and i_y <= need(0) as a flag, all
        # updated with the counters, so every condition is a sign bit: the i_y <= need_in
        # comparison in front of the input's ready took three LUT levels of the digits CNN's
        # slowest ECP5 path (144.6 MHz).
        reach = p.kh - 1 - p.pt
        last_oy, y_last = Signal(init=p.oh == 1), Signal(init=p.h == 1)  # o_oy, i_y at the end
        need_in0, need_out0 = p.sh + reach, reach  # at o_oy = 0
        lo, hi = -p.h - p.oh * p.sh - abs(reach) - 2, p.h + p.oh * p.sh + abs(reach) + 2
        gap_in = Signal(range(lo, hi), init=need_in0)
        gap_out = Signal(range(lo, hi), init=-need_out0 - 1)
        need0 = p.need(0)
        in_y_le_need0 = Signal(init=need0 >= 0)

        def input_ok(ahead, last_oy, gap_in, in_y_le_need0):
            return Mux(
                ahead == 0,
                last_oy | (gap_in >= 0),
                (ahead == -1) | ((ahead == 1) & last_oy & in_y_le_need0),
            )

        # The input's ready is a register, set from the next values of the registers it
        # depends on: it is the line buffer's write enable, and through logic it was the
        # slowest path of the residual CNN on the ECP5 (6.3 ns of route to the LUT RAMs).
        in_ok = Signal(init=p.oh == 1 or need_in0 >= 0)
        out_ok = (ahead > 0) | ((ahead == 0) & (gap_out >= 0))

        advance = ~self.o.valid | self.o.ready
        issue = advance & out_ok
        accept = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(in_ok)

        # Input: write beat after beat; wrap the slot pointer at the buffer's end.
        row_last = (i_cf == p.cf - 1) & (i_x == p.w - 1)
        in_last = row_last & y_last
        in_row_end = accept & row_last
        m.d.comb += [wport.addr.eq(waddr), wport.data.eq(self.i.payload), wport.en.eq(accept)]
        with m.If(accept):
            m.d.sync += waddr.eq(Mux(waddr == depth - 1, 0, waddr + 1))
            m.d.sync += i_cf.eq(Mux(i_cf == p.cf - 1, 0, i_cf + 1))
            with m.If(i_cf == p.cf - 1):
                m.d.sync += i_x.eq(Mux(i_x == p.w - 1, 0, i_x + 1))
                with m.If(i_x == p.w - 1):
                    m.d.sync += i_y.eq(Mux(y_last, 0, i_y + 1))
                    m.d.sync += y_last.eq(Mux(y_last, p.h == 1, i_y == p.h - 2))

        # Output: window element (oy, ox, ky, kx, cf) -> padded position (y, x) -> address.
        y = o_oy * p.sh + o_ky - p.pt
        x = o_ox * p.sw + o_kx - p.pl
        pad = (y < 0) | (y >= p.h) | (x < 0) | (x >= p.w)
        # The read address is a register too, loaded with the sum of the next rowbase and
        # col: the LUT RAM line buffer's address bits reach many cells across the chip, and
        # from the adder that was the residual CNN's slowest ECP5 path (7.2 ns of route).
        # The next values are those of an issued step (rowbase_next, col_next, from the
        # counters alone); `issue`, which waits on the consumer's ready, only enables the
        # three registers: through the choice and the adder it was the digits CNN's slowest
        # ECP5 path (7.3 ns, 4.7 of route).
        rowbase_next, col_next = Signal.like(rowbase), Signal.like(col)
        raddr = Signal(len(rport.addr), init=(rowbase.init + col.init) % (1 << len(rport.addr)))
        with m.If(issue):
            m.d.sync += [rowbase.eq(rowbase_next), col.eq(col_next)]
            m.d.sync += raddr.eq(rowbase_next + col_next)
        m.d.comb += [rport.addr.eq(raddr), rport.en.eq(advance)]
        # The read data goes into a register that loads nothing else (a block RAM takes it
        # in as its output register: its read without one is 5.8 ns on an ECP5), and the
        # padding's zero is chosen after it.
        read_valid, pad_q, pad_qq = Signal(), Signal(), Signal()
        data = Signal.like(rport.data, name="read_q", reset_less=True)
        with m.If(advance):
            m.d.sync += [read_valid.eq(issue), pad_q.eq(pad), data.eq(rport.data)]
            m.d.sync += [self.o.valid.eq(read_valid), pad_qq.eq(pad_q)]
        m.d.comb += self.o.payload.eq(Mux(pad_qq, 0, data.as_value()))
        m.d.comb += self.read_hazard.eq(issue & ~pad & wport.en & (rport.addr == wport.addr))

        end_px = (o_cf == p.cf - 1) & (o_kx == p.kw - 1)
        end_win = end_px & (o_ky == p.kh - 1)
        end_row = end_win & (o_ox == p.ow - 1)
        out_last = end_row & last_oy
        # The next output row's top: SH rows on, or across the sample boundary.
        step = Mux(last_oy, (p.h - (p.oh - 1) * p.sh) % rows, p.sh % rows)
        next_topbase = _add_mod(topbase, step * p.irow, depth)
        m.d.comb += [rowbase_next.eq(rowbase), col_next.eq(col + 1)]
        with m.If(end_px):  # the window's next row
            m.d.comb += rowbase_next.eq(_add_mod(rowbase, p.irow % depth, depth))
            m.d.comb += col_next.eq(colbase)
        next_colbase = colbase + p.sw * p.cf
        with m.If(end_win):  # the next window
            m.d.comb += [rowbase_next.eq(topbase), col_next.eq(next_colbase)]
        with m.If(end_row):  # the next output row
            m.d.comb += [rowbase_next.eq(next_topbase), col_next.eq(col0)]
        with m.If(issue):
            m.d.sync += o_cf.eq(Mux(o_cf == p.cf - 1, 0, o_cf + 1))
            with m.If(o_cf == p.cf - 1):
                m.d.sync += o_kx.eq(Mux(o_kx == p.kw - 1, 0, o_kx + 1))
            with m.If(end_px):
                m.d.sync += o_ky.eq(Mux(o_ky == p.kh - 1, 0, o_ky + 1))
            with m.If(end_win):
                m.d.sync += o_ox.eq(Mux(o_ox == p.ow - 1, 0, o_ox + 1))
                m.d.sync += colbase.eq(next_colbase)
            with m.If(end_row):
                m.d.sync += o_oy.eq(Mux(last_oy, 0, o_oy + 1))
                m.d.sync += [topbase.eq(next_topbase), colbase.eq(col0)]

        # The differences' steps: an input row moves i_y on by one, or back to 0 after the
        # sample's last; an output row moves both needs on by SH, or back to their values at
        # o_oy = 0 after the sample's last row. Each step, and both together, is a constant
        # chosen by the registers last_oy and y_last, one adder each; the events choose
        # among the sums.
        row_out = issue & end_row
        d_in = (1, -(p.h - 1))  # by y_last
        d_need_in = (p.sh, need_in0 - (p.oh * p.sh + reach))  # by last_oy
        d_need_out = (p.sh, need_out0 - ((p.oh - 1) * p.sh + reach))

        def by(flag, pair):
            return Mux(flag, pair[1], pair[0])

        def by_both(f):
            return Mux(
                last_oy,
                Mux(y_last, f(1, 1), f(1, 0)),
                Mux(y_last, f(0, 1), f(0, 0)),
            )

        # next values of the registers the input's ready depends on
        last_oy_next = Signal.like(last_oy)
        gap_in_next = Signal.like(gap_in)
        in_y_le_need0_next = Signal.like(in_y_le_need0)
        ahead_next = Signal.like(ahead)
        m.d.comb += [
            last_oy_next.eq(Mux(row_out, Mux(last_oy, p.oh == 1, o_oy == p.oh - 2), last_oy)),
            gap_in_next.eq(gap_in),
            in_y_le_need0_next.eq(in_y_le_need0),
            ahead_next.eq(ahead),
        ]
        m.d.sync += [
            last_oy.eq(last_oy_next),
            gap_in.eq(gap_in_next),
            in_y_le_need0.eq(in_y_le_need0_next),
            ahead.eq(ahead_next),
            in_ok.eq(input_ok(ahead_next, last_oy_next, gap_in_next, in_y_le_need0_next)),
        ]
        with m.If(row_out | in_row_end):
            both_in = by_both(lambda n, i: d_need_in[n] - d_in[i])
            both_out = by_both(lambda n, i: d_in[i] - d_need_out[n])
            m.d.comb += gap_in_next.eq(
                Mux(
                    row_out,
                    Mux(in_row_end, gap_in + both_in, gap_in + by(last_oy, d_need_in)),
                    gap_in - by(y_last, d_in),
                )
            )
            m.d.sync += gap_out.eq(
                Mux(
                    row_out,
                    Mux(in_row_end, gap_out + both_out, gap_out - by(last_oy, d_need_out)),
                    gap_out + by(y_last, d_in),
                )
            )
        with m.If(in_row_end):
            m.d.comb += in_y_le_need0_next.eq(Mux(y_last, need0 >= 0, i_y < need0))

        with m.If((accept & in_last) & ~(issue & out_last)):
            m.d.comb += ahead_next.eq(ahead + 1)
        with m.If(~(accept & in_last) & (issue & out_last)):
            m.d.comb += ahead_next.eq(ahead - 1)
        return m
