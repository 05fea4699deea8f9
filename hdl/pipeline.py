"""Pipelined arithmetic shared by the units: adder trees registered every few levels, delay
lines, thermometer codes counted without an adder tree.

Every register here loads when the caller's enable is high, so a unit's whole pipeline stalls
together; the partial sums have no reset (data, not control: the valid bits beside them have
one) (its timing model counts the registers: see
:attr:`gatemill.flow.kinds.matrix_vector.MatrixVector.tail`).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Shape, Signal

__all__ = ["delayed", "sum_levels", "thermometer_count", "tree_depth", "tree_sum"]


def tree_depth(n: int) -> int:
    """Adder levels of :func:`tree_sum` over *n* values: ``ceil(log2(n))``."""
    return max(0, (n - 1).bit_length())


def sum_levels(values, cuts=(), *, m=None, en=None, name="sum", depth=None, negative=None):
    """Sum of Amaranth values as a balanced adder tree (log depth instead of a chain).

    With *cuts* (adder levels, counted from 1), the partial sums after each of those levels
    are registered in ``m.d.sync`` when *en* is high: the sum then arrives ``len(cuts)``
    cycles later. A cut at or beyond the tree's last level is an error (the caller registers
    the result). *depth* (at least the tree's own) makes a shallow tree arrive with a deeper
    one: its result passes the registers of the levels it does not need.

    With *negative* (a flag per value), the values to subtract: a pair of opposite signs is
    a subtraction, a pair of subtracted values is added and stays subtracted. The result is
    then ``(sum, negated)``: the tree's sum, to be negated when ``negated`` is True (only
    when every value is subtracted).
    """
    values = list(values)
    signs = [False] * len(values) if negative is None else [bool(n) for n in negative]
    if len(signs) != len(values):
        raise ValueError(f"{len(values)} values but {len(signs)} signs")
    depth = tree_depth(len(values)) if depth is None else depth
    if depth < tree_depth(len(values)):
        raise ValueError(f"depth {depth} is below the tree's {tree_depth(len(values))} levels")
    cuts = set(cuts)
    if cuts and not 0 < min(cuts) <= max(cuts) < depth:
        raise ValueError(f"cuts {sorted(cuts)} must lie between 1 and {depth - 1} (the levels)")
    if not values:
        values, signs = [Const(0, 1)], [False]
    if negative is not None:
        # subtracted values next to added ones, so that pairs subtract
        order = sorted(range(len(values)), key=lambda k: signs[k])
        plus = [k for k in order if not signs[k]]
        minus = [k for k in order if signs[k]]
        mixed = [k for pair in zip(plus, minus, strict=False) for k in pair]
        rest = plus[len(minus) :] + minus[len(plus) :]
        values, signs = [values[k] for k in mixed + rest], [signs[k] for k in mixed + rest]
    for level in range(1, depth + 1):
        nxt, nsigns = [], []
        for k in range(0, len(values) - 1, 2):
            (a, na), (b, nb) = (values[k], signs[k]), (values[k + 1], signs[k + 1])
            if na == nb:
                nxt.append(a + b)
            else:
                nxt.append(b - a if na else a - b)
            nsigns.append(na and nb)
        if len(values) % 2:
            nxt.append(values[-1])
            nsigns.append(signs[-1])
        values, signs = nxt, nsigns
        if level in cuts:
            regs = [
                Signal(Shape.cast(v.shape()), name=f"{name}_l{level}_{k}", reset_less=True)
                for k, v in enumerate(values)
            ]
            with m.If(en):
                m.d.sync += [r.eq(v) for r, v in zip(regs, values, strict=True)]
            values = regs
    return values[0] if negative is None else (values[0], signs[0])


def tree_sum(values):
    """Sum of Amaranth values as a balanced adder tree, in one cycle."""
    return sum_levels(values)


def delayed(m, value, n: int, en, name: str):
    """*value* after *n* registers (loaded when *en* is high); *value* itself for ``n = 0``."""
    for k in range(n):
        reg = Signal(Shape.cast(value.shape()), name=f"{name}_d{k}")
        with m.If(en):
            m.d.sync += reg.eq(value)
        value = reg
    return value


def thermometer_count(bits):
    """The number of ones of *bits* when they are a thermometer code (ones first, then
    zeros): bit ``b`` of the count is set where the code ends in an odd multiple of
    ``2**b`` ones, an OR of ANDs two LUT levels deep, instead of an adder tree.

    The result is wrong for other codes: only use it where the bits are monotonic.
    """
    bits = list(bits)
    n = len(bits)
    width = n.bit_length()
    if n == 0:
        return Const(0, 1)
    # ones(c) <=> bits[c - 1] & ~bits[c]; count bit b set <=> c // 2**b odd
    out = []
    for b in range(width):
        terms = []
        for c in range(1, n + 1):
            if (c >> b) & 1 and not ((c - 1) >> b) & 1:
                # c is the first count of a run with bit b set: the run spans
                # c .. c + 2**b - 1 (clipped to n); the code ends in it iff
                # bits[c - 1] and not bits[min(c + 2**b, n + 1) - 1]
                end = c + (1 << b)
                terms.append(bits[c - 1] if end > n else bits[c - 1] & ~bits[end - 1])
        acc = Const(0, 1)
        for t in terms:
            acc = acc | t
        out.append(acc)
    return Cat(*out)
