"""IR graphs built by hand, with seeded random parameters, for tests that start below the
frontend (HLS plans, branching graphs)."""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType

from gatemill.flow.ir import dtype_for_range
from gatemill.flow.ir.datatypes import BIPOLAR
from gatemill.flow.ir.graph import InputSpec, IRGraph, OutputSpec
from gatemill.flow.kinds import Add, Concat, Flatten, MatrixVector, MaxPool, SlidingWindow
from gatemill.flow.kinds.add import sum_range
from gatemill.flow.kinds.matrix_vector import accumulator_range, min_acc_dtype


def random_values(rng, dt, shape):
    if dt == BIPOLAR:
        return rng.choice([-1, 1], size=shape)
    return rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape)


def random_thresholds(rng, lo, hi, t, direction):
    """Monotonic thresholds per row, in the accumulator range widened by 2 on each side."""
    rows = []
    for c, d in enumerate(direction):
        row = np.sort(rng.integers(lo[c] - 2, hi[c] + 3, size=t))
        rows.append(row if d > 0 else row[::-1])
    return np.array(rows)


def mv(rng, name, mh, mw, in_dt, w_dt, *, spatial=(), t=0, out_dt=None, out_base=0, pe, simd):
    """A MatrixVector with random weights and, with *t*, *t* random thresholds per row."""
    w = random_values(rng, w_dt, (mh, mw))
    binary = in_dt == BIPOLAR and w_dt == BIPOLAR
    kw = {}
    if t:
        lo, hi = accumulator_range(w, in_dt, binary)
        direction = rng.choice([-1, 1], size=mh)
        kw = dict(
            thresholds=random_thresholds(rng, lo, hi, t, direction),
            direction=direction,
            out_dtype=out_dt,
            out_base=out_base,
        )
    return MatrixVector(
        name=name,
        weights=w,
        in_dtype=in_dt,
        w_dtype=w_dt,
        acc_dtype=min_acc_dtype(w, in_dt, binary),
        spatial=spatial,
        pe=pe,
        simd=simd,
        **kw,
    )


def conv(rng, name, ifm, out_c, kernel, pad, dtype, out_dt, *, stride=(1, 1), pe, simd):
    """A SlidingWindow and its thresholded MatrixVector (a quantized convolution)."""
    win = SlidingWindow(
        name=f"{name}_win", ifm=ifm, kernel=kernel, stride=stride, pad=pad, dtype=dtype, simd=simd
    )
    levels = int(out_dt.max()) - int(out_dt.min())
    layer = mv(rng, name, out_c, win.out_shape[2], dtype, dtype_from_bits(3),
               spatial=win.out_shape[:2], t=levels, out_dt=out_dt, out_base=int(out_dt.min()),
               pe=pe, simd=simd)  # fmt: skip
    return win, layer


def dtype_from_bits(bits: int):
    """The signed datatype of *bits* bits."""
    return DataType[f"INT{bits}"]


def graph(name, in_shape, in_dt, layers, inputs=None):
    """The IRGraph of *layers* (a chain unless *inputs* says otherwise), unit output scale."""
    last = layers[-1]
    c = last.out_shape[-1]
    return IRGraph(
        name=name,
        input=InputSpec(shape=in_shape, dtype=in_dt),
        layers=tuple(layers),
        output=OutputSpec(
            shape=last.out_shape, dtype=last.out_dtype, scale=np.ones(c), bias=np.zeros(c)
        ),
        inputs=inputs or {},
    )


def add(rng, name, shape, dtypes, coefficients, out_dt, pe):
    """An Add with random thresholds over its sum's range."""
    lo, hi = sum_range(dtypes, coefficients)
    c = shape[-1]
    direction = rng.choice([-1, 1], size=c)
    levels = int(out_dt.max()) - int(out_dt.min())
    t = random_thresholds(rng, np.full(c, lo), np.full(c, hi), levels, direction)
    return Add(
        name=name,
        shape=shape,
        dtypes=dtypes,
        coefficients=coefficients,
        acc_dtype=dtype_for_range(min(lo, 0), max(hi, 1)),
        thresholds=t,
        direction=direction,
        out_dtype=out_dt,
        out_base=int(out_dt.min()),
        pe=pe,
    )


def residual_graph(seed=0, *, pe=2, skip_pe=4) -> IRGraph:
    """input -> conv 3x3 -> conv 3x3 -> Add(., input) -> flatten -> dense: a residual block."""
    rng = np.random.default_rng(seed)
    ui = DataType["UINT3"]
    w1, c1 = conv(rng, "conv1", (5, 5, 4), 4, (3, 3), (1, 1, 1, 1), ui, ui, pe=pe, simd=2)
    w2, c2 = conv(rng, "conv2", c1.out_shape, 4, (3, 3), (1, 1, 1, 1), ui, ui, pe=pe, simd=4)
    res = add(rng, "res", (5, 5, 4), (ui, ui), (1, 2), DataType["UINT3"], skip_pe)
    flat = Flatten(name="flat", ifm=res.out_shape, dtype=res.out_dtype)
    fc = mv(rng, "fc", 5, flat.out_shape[0], ui, dtype_from_bits(3), pe=5, simd=20)
    return graph("residual", (5, 5, 4), ui, [w1, c1, w2, c2, res, flat, fc], {"res": ("conv2", "")})


def concat_graph(seed=0) -> IRGraph:
    """input -> (conv 1x1 | conv 3x3) -> Concat -> max-pool -> flatten -> dense."""
    rng = np.random.default_rng(seed)
    u2, u3 = DataType["UINT2"], DataType["UINT3"]
    wa, ca = conv(rng, "a", (4, 4, 3), 4, (1, 1), (0, 0, 0, 0), u2, u2, pe=2, simd=3)
    wb, cb = conv(rng, "b", (4, 4, 3), 2, (3, 3), (1, 1, 1, 1), u2, u3, pe=1, simd=1)
    cat = Concat(name="cat", spatial=(4, 4), channels=(4, 2), dtypes=(u2, u3), dtype=u3, pe=2)
    pool = MaxPool(name="pool", ifm=cat.out_shape, kernel=(2, 2), stride=(2, 2), dtype=u3, pe=2)
    flat = Flatten(name="flat", ifm=pool.out_shape, dtype=u3)
    fc = mv(rng, "fc", 3, flat.out_shape[0], u3, dtype_from_bits(2), pe=3, simd=8)
    inputs = {"b_win": ("",), "cat": ("a", "b")}
    return graph("concat", (4, 4, 3), u2, [wa, ca, wb, cb, cat, pool, flat, fc], inputs)
