"""The one check every unit's RTL test runs: the unit of an IR layer against the layer's golden
model and its timing model."""

from __future__ import annotations

import numpy as np
from streams import from_beats, run_streams, to_beats


def check_unit(layer, *xs, seed=0, idle=0.3, stall=0.3):
    """Check ``layer.unit()`` on the samples *xs* (one batch per input: a join takes several)
    against ``layer.execute`` (the golden model) and the layer kind's timing model.

    1. With random idle input cycles and random backpressure (seeded by *seed*): every output
       equals the golden model's.
    2. At full rate (an input beat offered every cycle, the output always ready): every output
       equals the golden model's; the first sample's output beats leave at exactly the cycles
       ``layer.beat_times`` gives (counted from the first accepted input beat), so the latency
       is ``layer.latency()``; consecutive samples start ``layer.cycles()`` apart.
    """
    expected = layer.execute(*xs)
    ports = ["i"] if layer.arity == 1 else [f"i{k}" for k in range(layer.arity)]
    inputs = {
        port: to_beats(x, dt, n)
        for port, x, dt, n in zip(ports, xs, layer.in_dtypes, layer.input_lanes, strict=True)
    }
    n_out = expected.size // layer.out_lanes
    samples = len(xs[0])
    per_sample = n_out // samples

    out, _ = run_streams(layer.unit(), inputs, n_out, seed=seed, idle=idle, stall=stall)
    got = from_beats(out, layer.out_dtype, layer.out_lanes, layer.out_shape)
    assert np.array_equal(got, expected), f"{np.count_nonzero(got != expected)} mismatches"

    out, stats = run_streams(layer.unit(), inputs, n_out)
    got = from_beats(out, layer.out_dtype, layer.out_lanes, layer.out_shape)
    assert np.array_equal(got, expected), f"{np.count_nonzero(got != expected)} mismatches"
    first = [c - stats["first_in"] for c in stats["out_cycles"][:per_sample]]
    assert first == layer.beat_times(*(list(range(n)) for n in layer.input_beats))
    assert first[0] == layer.latency()
    starts = stats["out_cycles"][::per_sample]
    assert np.diff(starts).tolist() == [layer.cycles()] * (samples - 1)


def random_values(rng, dtype, shape) -> np.ndarray:
    """Uniformly random values of *dtype* (-1/+1 for BIPOLAR)."""
    if dtype.name == "BIPOLAR":
        return rng.choice([-1, 1], size=shape)
    return rng.integers(int(dtype.min()), int(dtype.max()) + 1, size=shape)


def verilog_arrays(text: str) -> dict[str, tuple[int, int]]:
    """``{name: (word bits, words)}`` of the memories in generated Verilog."""
    import re

    return {
        name: (int(msb) + 1, int(last) + 1)
        for msb, name, last in re.findall(r"reg \[(\d+):0\] (\w+) \[(\d+):0\];", text)
    }
