"""Multi-threshold activation: the shared compare logic and the stand-alone layer template.

:class:`FoldedThresholds` holds one layer's thresholds, folded by PE, and counts how many of them
each lane's value passes. :class:`ThresholdUnit` (the IR's stand-alone ``Threshold`` layer) and
:class:`~gatemill.hdl.matrix_vector.MatrixVectorUnit` both use it, so the semantics of
:func:`~gatemill.flow.ir.layers.apply_thresholds` are implemented once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..flow.ir.datatypes import BIPOLAR
from .common import check_kind, lanes, stream_of
from .pipeline import delayed, thermometer_count, tree_sum

__all__ = [
    "AFFINE_MIN_LEVELS",
    "Affine",
    "FoldedThresholds",
    "TableCost",
    "ThresholdUnit",
    "affine_count",
    "known_comparisons",
    "live_comparisons",
    "stored_bounds",
    "table_bits",
    "table_cost",
    "tree_sum",
]


def _bound_shape(lo: int, hi: int) -> Shape:
    """Shape of the stored bounds for values in ``[lo, hi]``: ``[lo, hi + 1]``."""
    return Shape.cast(range(lo, hi + 2))


def _mixed(direction) -> bool:
    return len(np.unique(direction)) > 1


def table_bits(thresholds, direction, value_range) -> int:
    """Stored bits of a :class:`FoldedThresholds` table: per channel ``T`` bounds one bit
    wider than the compared values, plus a flip bit when directions are mixed."""
    channels, levels = np.shape(thresholds)
    lo, hi = (int(v) for v in value_range)
    return channels * (levels * _bound_shape(lo, hi).width + _mixed(direction))


def _bounds(thresholds, direction, lo: int, hi: int) -> np.ndarray:
    """The stored bounds ``U`` of thresholds ``[..., T]`` (directions ``[...]``): ``T`` or
    ``T + 1``, clamped to ``[lo, hi + 1]`` (see :class:`FoldedThresholds`)."""
    t = np.asarray(thresholds, dtype=np.int64)
    return np.clip(t + (np.asarray(direction) < 0)[..., None], lo, hi + 1)


def stored_bounds(thresholds, direction, value_dtype) -> np.ndarray:
    """The bounds a :class:`FoldedThresholds` stores for thresholds ``[..., T]`` of values
    of *value_dtype*."""
    return _bounds(thresholds, direction, int(value_dtype.min()), int(value_dtype.max()))


@dataclass(frozen=True)
class TableCost:
    """What a folded threshold table costs in logic (:func:`table_cost`), in bits; all 0
    without thresholds.

    Attributes
    ----------
    bound : int
        One stored bound.
    word : int
        One fold's word, as stored (:func:`table_bits` per fold).
    varying : int
        The word's bits that differ between folds: a ROM in logic needs only these, the
        others are constants.
    compared : int
        Bits of the bounds that differ between folds: each a comparator bit against a
        memory's.
    constant : int
        Bits of the bounds every fold shares: comparator bits against a constant.
    """

    bound: int = 0
    word: int = 0
    varying: int = 0
    compared: int = 0
    constant: int = 0


def table_cost(thresholds, direction, value_range) -> TableCost:
    """:class:`TableCost` of the thresholds ``[NF, PE, T]`` (directions ``[NF, PE]``) of a
    :class:`FoldedThresholds` for values in *value_range*: a channel's requantization
    is often the same in every fold (a mean's, a layer's with one scale), and then its
    bounds are constants, not memory."""
    b = _bounds(thresholds, direction, *value_range)
    d = np.asarray(direction)
    width = _bound_shape(*value_range).width
    same = (b == b[:1]).all(axis=0)
    bits = (b[..., None] >> np.arange(width)) & 1  # two's complement
    varying = int((~(bits == bits[:1]).all(axis=0)).sum())
    if _mixed(d):
        varying += int((~(d == d[:1]).all(axis=0)).sum())
    return TableCost(
        bound=width,
        word=table_bits(b[0], d, value_range),  # one fold's channels
        varying=varying,
        compared=int((~same).sum()) * width,
        constant=int(same.sum()) * width,
    )


AFFINE_MIN_LEVELS = 4
"""Fewest thresholds a lane's range does not decide for :func:`affine_count` to replace
them: below, a few comparators are cheaper than a multiplier."""
AFFINE_MAX_SHIFT = 30
AFFINE_VALUE_BITS = 18
AFFINE_FACTOR_BITS = 25
"""Signed widths of an :class:`Affine` count's value and factor: a DSP48's ports (one
block); the ECP5's MULT18X18D takes two for a factor wider than 18 bits."""


@dataclass(frozen=True)
class Affine:
    """A lane's count of passed thresholds as ``base + clip((value * m + c) >> shift, 0,
    levels)`` (:func:`affine_count`)."""

    m: int
    c: int
    shift: int
    base: int
    levels: int


def affine_count(bounds, flip: bool, lo: int, hi: int) -> Affine | None:
    """The :class:`Affine` that counts, for every value in ``[lo, hi]``, the stored bounds
    ``U`` (one lane's, see :class:`FoldedThresholds`) it passes (``value >= U``, or with
    *flip* ``value < U``), or ``None`` where none exists with a factor of at most
    :data:`AFFINE_FACTOR_BITS` signed bits (values of at most :data:`AFFINE_VALUE_BITS`), or
    fewer than :data:`AFFINE_MIN_LEVELS` bounds lie inside the range.

    A requantization's integer thresholds are the ceilings of an arithmetic progression, so
    such a count usually exists. It does exactly when the constraints ``U_t * m + c >= t <<
    shift`` and ``(U_t - 1) * m + c < t << shift`` (``t`` = 1 .. levels, the bounds inside
    the range sorted) have an integer solution: each pair of them bounds ``m`` from above or
    below, and the first ``shift`` whose bounds leave an ``m`` gives the narrowest factor,
    ``c`` the smallest that meets the first kind. Monotonic in the value, the count is then
    exact on the whole range, which is checked here once more on every value."""
    u = np.asarray(bounds, dtype=np.int64)
    low, high = lo, hi
    if flip:  # value < U  <=>  -value >= 1 - U
        u, low, high = 1 - u, -hi, -lo
    u = np.sort(u)
    live = u[(u > low) & (u <= high)]
    n = len(live)
    if n < AFFINE_MIN_LEVELS or max(abs(lo), abs(hi)) >= 1 << (AFFINE_VALUE_BITS - 1):
        return None
    t = np.arange(1, n + 1, dtype=np.int64)
    # every pair (i, j) of the constraints bounds m: m * (U_j - 1 - U_i) <= ((t_j - t_i) <<
    # shift) - 1; the smallest shift that leaves an m gives the narrowest factor
    gap = live[None, :] - 1 - live[:, None]
    steps = t[None, :] - t[:, None]
    up, down, level = gap > 0, gap < 0, gap == 0
    for shift in range(AFFINE_MAX_SHIFT + 1):
        rhs = (steps << shift) - 1
        if np.any(rhs[level] < 0):
            continue
        m = max(1, int(np.max(-(-rhs[down] // gap[down]), initial=1)))
        if m >= 1 << (AFFINE_FACTOR_BITS - 1):
            return None
        if up.any() and m > int(np.min(rhs[up] // gap[up])):
            continue
        c = int(np.max((t << shift) - live * m))
        found = Affine(-m if flip else m, c, shift, int(np.sum(u <= low)), n)
        _check_affine(found, bounds, flip, lo, hi)
        return found
    return None


def _check_affine(a: Affine, bounds, flip: bool, lo: int, hi: int) -> None:
    v = np.arange(lo, hi + 1, dtype=np.int64)
    want = ((v[:, None] >= np.asarray(bounds, dtype=np.int64)[None, :]) ^ flip).sum(axis=1)
    got = a.base + np.clip((v * a.m + a.c) >> a.shift, 0, a.levels)
    if not np.array_equal(want, got):  # the constraints guarantee it: a bug if not
        raise AssertionError(f"affine count {a} differs from its thresholds")


def known_comparisons(bounds, lane_lo, lane_hi):
    """Which comparisons ``value >= bounds[p, t]`` a lane's range decides: ``+1`` where every
    value in ``[lane_lo[p], lane_hi[p]]`` passes, ``-1`` where none does, ``0`` where it takes
    a comparator.

    Parameters
    ----------
    bounds : ndarray of int, shape (PE, T)
    lane_lo, lane_hi : ndarray of int, shape (PE,)
    """
    b = np.asarray(bounds, dtype=np.int64)
    lo = np.asarray(lane_lo, dtype=np.int64)[:, None]
    hi = np.asarray(lane_hi, dtype=np.int64)[:, None]
    return np.where(b <= lo, 1, np.where(b > hi, -1, 0))


def live_comparisons(thresholds, direction, lane_lo, lane_hi) -> int:
    """Comparators of one fold of constant thresholds (``[PE, T]``, directions ``[PE]``) whose
    lane values lie in ``[lane_lo, lane_hi]``: the comparisons the range does not decide,
    a bound repeated in a lane counted once (Yosys merges equal comparators)."""
    t = np.asarray(thresholds, dtype=np.int64)
    bounds = t + (np.asarray(direction) < 0)[:, None]
    known = known_comparisons(bounds, lane_lo, lane_hi)
    return sum(len(np.unique(b[k == 0])) for b, k in zip(bounds, known, strict=True))


class FoldedThresholds(wiring.Component):
    """Threshold memory and comparators for ``PE`` channels per fold.

    A lane's result is ``out_base + count``
    (the count bit itself for a BIPOLAR output), where ``count`` is the number of thresholds
    ``t`` with ``value >= T[c, t]`` (direction +1) or ``value <= T[c, t]`` (direction -1).

    Both directions use one comparator: ``value <= T`` is ``not (value >= T + 1)``, so each
    channel stores bounds ``U`` (``T`` or ``T + 1``) clamped to ``[lo, hi + 1]`` and a flip bit;
    the flip bit is a constant when all channels share a direction. A channel's thresholds are
    monotonic (:func:`~gatemill.flow.kinds.thresholds.check_thresholds`), so the thresholds it
    passes are always the first ``count``: the comparisons are a thermometer code, counted by
    :func:`~gatemill.hdl.pipeline.thermometer_count`.

    Parameters
    ----------
    thresholds : ndarray of int, shape (NF, PE, T)
        Lane ``p`` of fold ``nf`` compares with ``thresholds[nf, p]`` (the layer kind's folded
        layout, e.g. :meth:`MatrixVector.folded_thresholds
        <gatemill.flow.kinds.matrix_vector.MatrixVector.folded_thresholds>`).
    direction : ndarray of int, shape (NF, PE)
    value_range : tuple of int
        ``(lo, hi)``: every compared value lies in this range (bounds are clamped to it).
    out_dtype : DataType
    out_base : int
    split : bool
        Register the comparisons (when ``en`` is high) before counting them: ``result`` then
        follows ``value`` by one clock edge.
    search : tuple of int, optional
        Constant thresholds only (one fold): count by binary search instead, one comparison
        per bit of the count against the threshold the bits above it select (``T`` levels
        take ``T.bit_length()`` comparisons, not ``T``), with a register (loaded when
        ``en`` is high) after each of these search levels (from 1): ``result`` then follows
        ``value`` by ``len(search)`` clock edges.
    lane_range : tuple of ndarray, optional
        Constant thresholds only (one fold): ``(lo, hi)``, each of shape ``(PE,)``, the values
        lane ``p`` can take (e.g. a layer's rows, :meth:`MatrixVector.acc_range
        <gatemill.flow.kinds.matrix_vector.MatrixVector.acc_range>`). A threshold every value
        of the lane passes, or none does, is a constant instead of a comparator
        (:func:`known_comparisons`).
    affine : sequence of Affine or None, optional
        With *search*, per lane its :func:`affine_count` or ``None``: a lane with one
        multiplies instead of searching, ``value * m + c`` registered where the search's
        first register is (a multiplier block with its register), the count clipped from it
        and the search's other registers after it: the same latency.
    ahead : bool
        ``fold`` names the fold one enabled edge earlier, and the word read for it waits in
        a register that loads nothing but the read data (a block RAM takes it in as its
        output register): the comparisons then start from a flip-flop, not from the
        memory's slow read, with the same timing at ``value``.

    Members
    -------
    fold : ``In(range(NF))``
        Fold whose thresholds are loaded at the next clock edge where ``en`` is high (with
        ``ahead``, at the edge after it).
    en : ``In(1)``
        Load enable (the memory's read enable; ignored with a single fold), and with
        ``split`` the enable of the comparison register.
    value : ``In(ArrayLayout(Shape.cast(range(lo, hi + 1)), pe))``
        Values to compare, against the thresholds loaded at the last enabled edge.
    result : ``Out(lanes(out_dtype, pe))``
        The result for ``value``: combinational, or with ``split`` for the ``value`` of the
        last enabled edge.
    """

    def __init__(
        self,
        *,
        thresholds,
        direction,
        value_range,
        out_dtype,
        out_base,
        split=False,
        search=None,
        ahead=False,
        lane_range=None,
        affine=None,
    ):
        t = np.asarray(thresholds, dtype=np.int64)
        d = np.asarray(direction, dtype=np.int64)
        if t.ndim != 3 or t.shape[2] < 1 or d.shape != t.shape[:2]:
            raise ValueError(
                "thresholds must be [NF, PE, T>=1] with [NF, PE] directions, not "
                f"{t.shape} and {d.shape}"
            )
        lo, hi = (int(v) for v in value_range)
        if lo > hi:
            raise ValueError(f"value_range must be (lo, hi) with lo <= hi, not {value_range!r}")
        if out_dtype == BIPOLAR and t.shape[2] != 1:
            raise ValueError(f"a BIPOLAR output needs exactly 1 threshold, not {t.shape[2]}")
        self._folds, pe, self._levels = t.shape
        self._pe = pe
        self._out_dtype, self._out_base = out_dtype, int(out_base)
        self._value_shape = Shape.cast(range(lo, hi + 1))
        self._bound_shape = _bound_shape(lo, hi)
        self._bounds = _bounds(t, d, lo, hi)
        self._flip = d < 0
        # A shared direction needs no per-channel flip bit in memory.
        self._mixed = _mixed(d)
        self._split = bool(split)
        self._ahead = bool(ahead)
        self._search = None if search is None else tuple(search)
        if self._search is not None:
            steps = self._levels.bit_length()
            if self._folds != 1 or split:
                raise ValueError("a binary search takes constant thresholds (one fold), no split")
            if self._search and not 0 < min(self._search) <= max(self._search) < steps:
                raise ValueError(f"search registers {self._search} must lie in 1..{steps - 1}")
        self._lo, self._hi = lo, hi
        self._known = np.zeros((pe, self._levels), np.int64)
        self._affine = [None] * pe if affine is None else list(affine)
        if len(self._affine) != pe:
            raise ValueError(f"affine takes one count or None per lane ({pe}), not {affine!r}")
        if any(self._affine) and self._search is None:
            raise ValueError("affine counts replace a binary search: give search too")
        if lane_range is not None:
            if self._folds != 1 or self._search is not None:
                raise ValueError("lane_range takes constant thresholds (one fold), no search")
            self._known = known_comparisons(self._bounds[0], *lane_range)
        super().__init__(
            {
                "fold": In(range(self._folds)),
                "en": In(1),
                "value": In(data.ArrayLayout(self._value_shape, pe)),
                "result": Out(lanes(out_dtype, pe)),
            }
        )

    @property
    def folds(self) -> int:
        return self._folds

    @property
    def levels(self) -> int:
        """Thresholds per channel."""
        return self._levels

    @property
    def word_layout(self) -> data.ArrayLayout:
        """One fold's memory word: per lane the bounds and, with mixed directions, a flip bit."""
        fields = {"bound": data.ArrayLayout(self._bound_shape, self._levels)}
        if self._mixed:
            fields["flip"] = unsigned(1)
        return data.ArrayLayout(data.StructLayout(fields), self._pe)

    def _words(self) -> list[int]:
        layout = self.word_layout
        words = []
        for nf in range(self._folds):
            lanes_init = []
            for p in range(self._pe):
                lane = {"bound": [int(b) for b in self._bounds[nf, p]]}
                if self._mixed:
                    lane["flip"] = int(self._flip[nf, p])
                lanes_init.append(lane)
            words.append(layout.const(lanes_init).as_value().value)
        return words

    def elaborate(self, platform):
        m = Module()
        layout = self.word_layout
        words = self._words()
        if self._folds == 1:
            word = layout(Const(words[0], Shape.cast(layout).width))
        else:
            m.submodules.bounds = bounds = memory.Memory(
                shape=Shape.cast(layout).width, depth=self._folds, init=words
            )
            port = bounds.read_port(domain="sync")
            m.d.comb += [port.addr.eq(self.fold), port.en.eq(self.en)]
            word = layout(port.data)
            if self._ahead:
                read = Signal(Shape.cast(layout).width, name="bounds_q", reset_less=True)
                with m.If(self.en):
                    m.d.sync += read.eq(port.data)
                word = layout(read)
        for p in range(self._pe):
            if self._search is not None:
                if self._affine[p] is not None:
                    count = self._affine_count(m, p)
                else:
                    count = self._binary_search(m, p)
                if self._out_dtype == BIPOLAR:
                    m.d.comb += self.result[p].eq(count)
                else:
                    m.d.comb += self.result[p].eq(count + self._out_base)
                continue
            value, lane = self.value[p], word[p]
            flip = lane.flip if self._mixed else Const(int(self._flip.flat[0]), 1)
            passed = Signal(self._levels, name=f"passed{p}")
            # the sign of a difference one bit wider than both: one carry chain and its last
            # sum bit, no overflow logic after it (a signed >= has some, constant bound or not)
            compare = [
                (~(value - lane.bound[t])[-1] if not known else Const(int(known > 0), 1)) ^ flip
                for t, known in enumerate(self._known[p])
            ]
            if self._split:
                with m.If(self.en):
                    m.d.sync += passed.eq(Cat(*compare))
            else:
                m.d.comb += passed.eq(Cat(*compare))
            count = Signal(range(self._levels + 1), name=f"count{p}")
            m.d.comb += count.eq(thermometer_count(passed))
            if self._out_dtype == BIPOLAR:
                m.d.comb += self.result[p].eq(count)
            else:
                m.d.comb += self.result[p].eq(count + self._out_base)
        return m

    def _affine_count(self, m, p: int):
        """Lane *p*'s count from its :class:`Affine`, with the search's registers."""
        a = self._affine[p]
        value = Value.cast(self.value[p])
        # the multiplier block's own register where the search's first one is
        product = delayed(m, value * a.m + a.c, min(len(self._search), 1), self.en, f"affine{p}")
        q = product >> a.shift
        count = a.base + Mux(q < 0, 0, Mux(q > a.levels, a.levels, q[: a.levels.bit_length()]))
        count = count[: self._levels.bit_length()]
        return delayed(m, count, max(len(self._search) - 1, 0), self.en, f"count{p}_a")

    def _binary_search_bounds(self, p: int) -> tuple[list[int], bool]:
        """Lane *p*'s bounds padded to ``2**n - 1`` with bounds never passed, and its flip."""
        flip = bool(self._flip[0, p])
        n = self._levels.bit_length()
        # a padded comparison never passes: value >= hi + 1 is never true, and flipped,
        # value >= lo always is
        pad = self._lo if flip else self._hi + 1
        bounds = [int(b) for b in self._bounds[0, p]]
        return bounds + [pad] * ((1 << n) - 1 - len(bounds)), flip

    def _binary_search(self, m, p: int):
        """The count of lane *p* by binary search: bit ``b`` of the count (from the top) is
        the comparison with the bound of count ``c + 2**b``, ``c`` the bits found so far."""
        bounds, flip = self._binary_search_bounds(p)
        n = self._levels.bit_length()
        value = Value.cast(self.value[p])
        count = Const(0, n)
        for level, b in enumerate(range(n - 1, -1, -1), start=1):
            table = [bounds[(j << (b + 1)) + (1 << b) - 1] for j in range(1 << (n - 1 - b))]
            upper = count[b + 1 :]
            if len(table) == 1:
                bound = Const(table[0], self._bound_shape)
            else:
                bound = Array(Const(v, self._bound_shape) for v in table)[upper]
            passed = ~(value - bound)[-1] ^ flip
            count = count | (passed << b)
            if level in self._search:
                regs = (
                    Signal(n, name=f"count{p}_l{level}"),
                    Signal.like(value, name=f"v{p}_l{level}"),
                )
                with m.If(self.en):
                    m.d.sync += [regs[0].eq(count), regs[1].eq(value)]
                count, value = regs
        return count[: self._levels.bit_length()]


def _value_range(dtype) -> tuple[int, int]:
    return int(dtype.min()), int(dtype.max())


class ThresholdUnit(wiring.Component):
    """Stand-alone multi-threshold layer (:class:`gatemill.flow.kinds.threshold.Threshold`).

    Beat ``k`` of a sample carries channels ``(k % NF) * pe ..`` of pixel ``k // NF``, with
    ``NF = C / pe``. Two register stages: the input beat (while the fold's thresholds are read)
    and the output; the whole pipeline stalls while the output is held by backpressure.

    Parameters
    ----------
    layer : Threshold

    Members
    -------
    i : ``In(stream_of(layer.in_dtype, layer.pe))``
    o : ``Out(stream_of(layer.out_dtype, layer.pe))``
    """

    def __init__(self, *, layer):
        self._layer = check_kind(layer, "Threshold")
        super().__init__(
            {
                "i": In(stream_of(layer.in_dtype, layer.pe)),
                "o": Out(stream_of(layer.out_dtype, layer.pe)),
            }
        )

    @property
    def layer(self):
        return self._layer

    def elaborate(self, platform):
        layer, m = self._layer, Module()
        thresholds, direction = layer.folded_thresholds()
        m.submodules.thresholds = thr = FoldedThresholds(
            thresholds=thresholds,
            direction=direction,
            value_range=_value_range(layer.in_dtype),
            out_dtype=layer.out_dtype,
            out_base=layer.out_base,
        )
        advance = ~self.o.valid | self.o.ready
        fold = Signal(range(thr.folds))
        value = Signal(lanes(layer.in_dtype, layer.pe))
        valid = Signal()
        accept = self.i.valid & self.i.ready
        m.d.comb += [self.i.ready.eq(advance), thr.fold.eq(fold), thr.en.eq(advance)]
        with m.If(accept):
            m.d.sync += fold.eq(Mux(fold == thr.folds - 1, 0, fold + 1))
        with m.If(advance):
            m.d.sync += [valid.eq(self.i.valid), value.eq(self.i.payload)]
            m.d.sync += [self.o.valid.eq(valid), self.o.payload.eq(thr.result)]
        for p in range(layer.pe):
            lane = value[p]
            if layer.in_dtype == BIPOLAR:
                lane = Mux(lane, 1, -1)
            m.d.comb += thr.value[p].eq(lane)
        return m
