"""Max-pooling unit: any kernel and stride, one input beat per cycle.

The layer kind, its golden model and timing: :mod:`gatemill.flow.kinds.maxpool`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .common import check_kind, lanes, stream_of

__all__ = ["MaxPoolUnit"]


def _spans(size: int, kernel: int, stride: int, count: int, banks: int):
    """Per position along one axis: for each bank, is the position inside, at the start or at
    the end of that bank's window (window ``o`` is in bank ``o % banks``), and which window
    ends there (at most one: windows end at distinct positions)."""
    table = []
    for pos in range(size):
        active = first = last = 0
        ends = None
        for o in range(count):
            if o * stride <= pos < o * stride + kernel:
                active |= 1 << (o % banks)
                first |= (pos == o * stride) << (o % banks)
                if pos == o * stride + kernel - 1:
                    last |= 1 << (o % banks)
                    ends = o
        table.append((active, first, last, ends))
    return table


class MaxPoolUnit(wiring.Component):
    """Max-pooling over ``(KH, KW)`` windows with a stride (overlapping or not), no padding.

    Input and output are pixel-major streams of ``PE`` channels per beat (``CF = C / PE`` beats
    per pixel). The maximum is separable, so every input beat ``(y, x, cf)`` updates:

    1. the row partials: ``NH`` banks of ``CF`` words; window ``ox`` (columns ``ox * SW ..
       ox * SW + KW - 1``) lives in bank ``ox % NH``, so the windows open at one column are in
       distinct banks. At the window's first column the partial is the input, then the max.
    2. when a row window ``ox`` ends at ``x``, its maximum updates the column partials: ``NV``
       banks of ``OW * CF`` words, output row ``oy`` in bank ``oy % NV``, in the same way.
       When the column window also ends at ``y``, the output beat ``(oy, ox, cf)`` is ready.

    Which banks a column or row opens, extends or closes is read from two constant tables
    indexed by ``x`` and ``y``. The banks are inferred memories read asynchronously
    (LUTRAM); a partial is read in one cycle and written the next, and an update that comes
    right after one of the same word takes that one's result. Windows complete in raster
    order, so the outputs are in order; the unit accepts one beat per cycle whenever the
    output register is free.

    Max is signed or unsigned by the datatype; a BIPOLAR element is one bit (1 for +1), so its
    maximum is the OR.

    Parameters
    ----------
    layer : :class:`~gatemill.flow.kinds.maxpool.MaxPool`

    Members
    -------
    i : ``In(stream_of(layer.dtype, layer.pe))``
    o : ``Out(stream_of(layer.dtype, layer.pe))``

    Raises
    ------
    TypeError
        If ``layer`` is not a ``MaxPool``.
    """

    def __init__(self, *, layer):
        self._layer = check_kind(layer, "MaxPool")
        sig = stream_of(layer.dtype, layer.pe)
        super().__init__({"i": In(sig), "o": Out(sig)})

    @property
    def layer(self):
        return self._layer

    def _max(self, a, b):
        layout = lanes(self._layer.dtype, self._layer.pe)
        return layout(Cat(Mux(a[k] > b[k], a[k], b[k]) for k in range(self._layer.pe)))

    def elaborate(self, platform):
        layer, m = self._layer, Module()
        h, w, c = layer.ifm
        (kh, kw), (sh, sw) = layer.kernel, layer.stride
        oh, ow, _ = layer.out_shape
        cf = c // layer.pe
        nh, nv = layer.banks
        layout = lanes(layer.dtype, layer.pe)

        x_row = data.StructLayout(
            {"active": nh, "first": nh, "last": nh, "ends": 1, "ox": range(ow)}
        )
        y_row = data.StructLayout({"active": nv, "first": nv, "last": nv, "ends": 1})
        x_init = [
            {"active": a, "first": f, "last": la, "ends": o is not None, "ox": o or 0}
            for a, f, la, o in _spans(w, kw, sw, ow, nh)
        ]
        y_init = [
            {"active": a, "first": f, "last": la, "ends": o is not None}
            for a, f, la, o in _spans(h, kh, sh, oh, nv)
        ]
        m.submodules.x_table = x_rom = memory.Memory(shape=x_row, depth=w, init=x_init)
        m.submodules.y_table = y_rom = memory.Memory(shape=y_row, depth=h, init=y_init)
        x_port, y_port = x_rom.read_port(domain="comb"), y_rom.read_port(domain="comb")

        i_cf, i_x, i_y = Signal(range(cf)), Signal(range(w)), Signal(range(h))
        m.d.comb += [x_port.addr.eq(i_x), y_port.addr.eq(i_y)]
        xs, ys = x_port.data, y_port.data

        accept = self.i.valid & self.i.ready
        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(advance)
        with m.If(accept):
            m.d.sync += i_cf.eq(Mux(i_cf == cf - 1, 0, i_cf + 1))
            with m.If(i_cf == cf - 1):
                m.d.sync += i_x.eq(Mux(i_x == w - 1, 0, i_x + 1))
                with m.If(i_x == w - 1):
                    m.d.sync += i_y.eq(Mux(i_y == h - 1, 0, i_y + 1))

        def bank(name, j, depth):
            m.submodules[f"{name}{j}"] = mem = memory.Memory(shape=layout, depth=depth, init=[])
            return mem.read_port(domain="comb"), mem.write_port()

        def update(name, j, depth, read_addr, stage, table, spacing):
            """Bank *j* read at *read_addr* into a register as a beat enters *stage*, then
            written with the beat's new partial from *stage* (its ``addr``, ``max``): *max*
            at the window's first position, else the running maximum. Two updates of one word
            are at least *spacing* beats apart; one apart, the second takes the first's
            result instead of the word. Returns the new partial."""
            rd, wr = bank(name, j, depth)
            old = Signal(layout, name=f"{name}_old{j}", reset_less=True)
            new = layout(Mux(table.first[j], stage.max.as_value(), self._max(old, stage.max)))
            write = advance & stage.valid & table.active[j]
            m.d.comb += [rd.addr.eq(read_addr), wr.addr.eq(stage.addr), wr.data.eq(new)]
            m.d.comb += wr.en.eq(write)
            with m.If(advance):
                m.d.sync += old.eq(rd.data if spacing > 1 else Mux(write, new.as_value(), rd.data))
            return new

        # Each read-modify-write of a partial takes two cycles (a one-cycle one was the digits
        # CNN's slowest path on nextpnr-ecp5: 7.1-7.5 ns from the address through the LUT
        # RAM's read and the maximum into its write data). Stages: the input beat with its
        # position's table rows; the row window's maximum (row partials written); the column
        # partials written; the output register.
        info = data.StructLayout(
            {"valid": 1, "max": layout, "addr": range(ow * cf), "xs": x_row, "ys": y_row}
        )
        beat, row, col = Signal(info), Signal(info), Signal(info)
        with m.If(advance):
            m.d.sync += [
                beat.valid.eq(accept),
                beat.max.eq(self.i.payload),
                beat.addr.eq(i_cf),
                beat.xs.eq(xs),
                beat.ys.eq(ys),
            ]
        # Row partials: updates of one word are CF beats apart; the row window ending at x
        # (if any) is in exactly one bank.
        row_max = beat.max
        for j in range(nh):
            new = update("row", j, cf, i_cf, beat, beat.xs, cf)
            row_max = layout(Mux(beat.xs.last[j], new.as_value(), row_max.as_value()))
        # Column partials, updated by that row window's maximum: two updates of one word are
        # a row of input apart, W * CF beats.
        with m.If(advance):
            m.d.sync += [
                row.valid.eq(beat.valid & beat.xs.ends),
                row.max.eq(row_max),
                row.addr.eq(beat.xs.ox * cf + beat.addr),
                row.ys.eq(beat.ys),
                col.eq(row),
            ]
        col_max = col.max
        for j in range(nv):
            new = update("col", j, ow * cf, row.addr, col, col.ys, w * cf)
            col_max = layout(Mux(col.ys.last[j], new.as_value(), col_max.as_value()))

        with m.If(advance):
            m.d.sync += self.o.valid.eq(col.valid & col.ys.ends)
            m.d.sync += self.o.payload.eq(col_max)
        return m
