"""Folding: how many output rows (PE) and input columns (SIMD) each layer handles per cycle.

The default rule, used when no ``--folding`` file is given:

1. The design may use about ``MAC_BUDGET`` multiply-accumulate lanes (PE x SIMD summed over
   all matrix-vector layers). A model whose every product fits in the budget is made fully
   parallel (one sample per cycle, if nothing else limits it).
2. Otherwise the target initiation interval is ``ceil(total products per sample /
   MAC_BUDGET)`` cycles, but never below what a convolution's sliding window can deliver
   (one window element per channel lane per cycle).
3. Every layer then gets the smallest fold that meets the target (balanced: no layer faster
   than it needs to be); among equal PE x SIMD, a larger SIMD is preferred (fewer output
   beats and narrower accumulators per beat). A convolution's sliding window takes the SIMD
   of its matrix-vector layer.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import GatemillError
from ..ir import IRGraph

MAC_BUDGET = 1024


def divisors(n: int) -> list[int]:
    """All positive divisors of *n*, ascending."""
    return [d for d in range(1, n + 1) if n % d == 0]


def _mv_cycles(layer, pe: int, simd: int) -> int:
    return int(np.prod(layer.spatial, dtype=np.int64)) * (layer.mh // pe) * (layer.mw // simd)


def _products(layer) -> int:
    return int(np.prod(layer.spatial, dtype=np.int64)) * layer.mh * layer.mw


def _window_of(ir: IRGraph, i: int):
    """The SlidingWindow feeding layer *i*, if any."""
    if i > 0 and ir.layers[i - 1].kind == "SlidingWindow":
        return ir.layers[i - 1]
    return None


def _simd_choices(ir: IRGraph, i: int) -> list[int]:
    """SIMD values of MatrixVector layer *i*: its window's channel divisors for a convolution."""
    window = _window_of(ir, i)
    return divisors(window.ifm[2]) if window else divisors(ir.layers[i].mw)


def _stream_cycles(layer, pe: int) -> int:
    """Cycles per sample of a MaxPool or Threshold: one input beat of *pe* channels per cycle."""
    return int(np.prod(layer.in_shape[:-1], dtype=np.int64)) * (layer.in_shape[-1] // pe)


def _best_mv_fold(layer, target: int, simd_choices: list[int]) -> tuple[int, int]:
    best = None
    for simd in simd_choices:
        for pe in divisors(layer.mh):
            if _mv_cycles(layer, pe, simd) <= target:
                key = (pe * simd, -simd)
                if best is None or key < best[0]:
                    best = (key, pe, simd)
                break  # a larger pe with the same simd only costs more
    if best is None:  # the target is out of reach: fully parallel within the constraint
        return layer.mh, max(simd_choices)
    return best[1], best[2]


def default_folding(ir: IRGraph, mac_budget: int = MAC_BUDGET) -> dict[str, dict[str, int]]:
    """The folding of the default rule (see the module documentation)."""
    mvs = [layer for layer in ir.layers if layer.kind == "MatrixVector"]
    total = sum(_products(layer) for layer in mvs)
    target = max(1, math.ceil(total / mac_budget))
    for layer in ir.layers:
        if layer.kind == "SlidingWindow":
            oh, ow, k = layer.out_shape
            target = max(target, oh * ow * k // layer.ifm[2])
    return fold_for_ii(ir, target)


def fold_for_ii(ir: IRGraph, target: int) -> dict[str, dict[str, int]]:
    """The cheapest folding whose every layer takes at most *target* cycles per sample."""
    folding: dict[str, dict[str, int]] = {}
    for i, layer in enumerate(ir.layers):
        if layer.kind == "MatrixVector":
            pe, simd = _best_mv_fold(layer, target, _simd_choices(ir, i))
            folding[layer.name] = {"pe": pe, "simd": simd}
            window = _window_of(ir, i)
            if window:
                folding[window.name] = {"simd": simd}
        elif layer.kind in ("MaxPool", "Threshold"):
            c = layer.in_shape[-1]
            pe = next((p for p in divisors(c) if _stream_cycles(layer, p) <= target), c)
            folding[layer.name] = {"pe": pe}
    return folding


FOLD_FIELDS = {
    "MatrixVector": ("pe", "simd"),
    "Threshold": ("pe",),
    "MaxPool": ("pe",),
    "SlidingWindow": ("simd",),
    "LutLayer": ("pipeline",),  # 0/1: a register inside every table (one more cycle)
}


def folding_of(ir: IRGraph) -> dict[str, dict[str, int]]:
    """The folding an IR carries, as written to ``folding.json``."""
    return {
        layer.name: {f: getattr(layer, f) for f in FOLD_FIELDS[layer.kind]}
        for layer in ir.layers
        if layer.kind in FOLD_FIELDS
    }


def apply_folding(
    ir: IRGraph, folding: dict[str, dict[str, int]], source: str = "folding"
) -> IRGraph:
    """A copy of *ir* with the given PE/SIMD; a convolution's window follows its SIMD.

    Raises
    ------
    GatemillError
        For an unknown layer or option, or a fold that does not divide the layer.
    """
    by_name = {layer.name: layer for layer in ir.layers}
    unknown = sorted(set(folding) - set(by_name))
    if unknown:
        raise GatemillError(
            f"{source}: unknown layer(s) {', '.join(map(repr, unknown))}; the "
            f"layers are {', '.join(map(repr, by_name))}."
        )
    layers = list(ir.layers)
    for i, layer in enumerate(layers):
        if layer.name not in folding:
            continue
        fold = folding[layer.name]
        allowed = FOLD_FIELDS.get(layer.kind, ())
        bad = sorted(set(fold) - set(allowed))
        if bad:
            raise GatemillError(
                f"{source}: layer {layer.name!r} ({layer.kind}) has no option "
                f"{', '.join(bad)}; it takes {', '.join(allowed) or 'nothing'}."
            )
        try:
            layers[i] = dataclasses.replace(layer, **{k: int(v) for k, v in fold.items()})
        except (ValueError, TypeError) as e:
            raise GatemillError(f"{source}: {e}.") from None
    # a convolution's sliding window must deliver exactly its matrix-vector layer's SIMD
    for i, layer in enumerate(layers):
        if layer.kind == "MatrixVector" and i > 0 and layers[i - 1].kind == "SlidingWindow":
            window = layers[i - 1]
            if window.ifm[2] % layer.simd:
                raise GatemillError(
                    f"{source}: layer {layer.name!r} is a convolution over {window.ifm[2]} "
                    f"channels; its simd must divide {window.ifm[2]}, not {layer.simd}."
                )
            layers[i - 1] = dataclasses.replace(window, simd=layer.simd)
    return dataclasses.replace(ir, layers=tuple(layers))


def load_folding(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a ``folding.json`` (``{"layers": {name: {"pe": .., "simd": ..}}}``)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise GatemillError(f"folding file {str(p)!r} does not exist.") from None
    except json.JSONDecodeError as e:
        raise GatemillError(f"folding file {str(p)!r} is not valid JSON: {e}.") from None
    layers = doc.get("layers") if isinstance(doc, dict) else None
    if not isinstance(layers, dict) or not all(isinstance(v, dict) for v in layers.values()):
        raise GatemillError(
            f'folding file {str(p)!r} must hold {{"layers": {{name: {{"pe": '
            'N, "simd": N}}}}}} (write one with gatemill build and edit it).'
        )
    return layers


def _estimate(ir: IRGraph, folding: dict, clock_mhz: float, family: str) -> dict:
    from .explore import estimate_point  # explore imports this module

    return estimate_point(ir, folding, clock_mhz, family)


def candidate_iis(ir: IRGraph) -> list[int]:
    """Every cycles-per-sample figure some fold of some layer takes, ascending.

    The balanced folding for any target equals the one for the largest of these not above it,
    so they are the only targets worth trying.
    """
    out = set()
    for i, layer in enumerate(ir.layers):
        if layer.kind == "MatrixVector":
            for simd in _simd_choices(ir, i):
                out.update(_mv_cycles(layer, pe, simd) for pe in divisors(layer.mh))
        elif layer.kind in ("MaxPool", "Threshold"):
            out.update(_stream_cycles(layer, pe) for pe in divisors(layer.in_shape[-1]))
    return sorted(out) or [1]


def balanced_foldings(ir: IRGraph, targets: Iterable[int]) -> Iterator[tuple[int, dict]]:
    """``(target, fold_for_ii(ir, target))`` for each of *targets* in order, each distinct
    folding once (neighbouring targets often give the same one)."""
    seen = set()
    for target in targets:
        folding = fold_for_ii(ir, target)
        key = json.dumps(folding, sort_keys=True)
        if key not in seen:
            seen.add(key)
            yield target, folding


def fastest_within(
    ir: IRGraph, max_lut: int, clock_mhz: float, family: str = "xc7"
) -> tuple[dict[str, dict[str, int]], dict]:
    """The fastest balanced folding whose estimated LUTs stay within *max_lut*.

    Returns ``(folding, estimate)`` (:func:`gatemill.flow.dse.explore.estimate_point`).

    Raises
    ------
    GatemillError
        If even the slowest folding is estimated above *max_lut*.
    """
    slowest = None
    for _, folding in balanced_foldings(ir, candidate_iis(ir)):
        est = _estimate(ir, folding, clock_mhz, family)
        if est["est_lut"] <= max_lut:
            return folding, est
        slowest = est
    raise GatemillError(
        f"--max-lut {max_lut}: even the slowest folding of this model (ii "
        f"{slowest['ii_cycles']} cycles) is estimated at {slowest['est_lut']:,} LUTs. Raise "
        "--max-lut, or choose a bigger board."
    )


def folding_for_rate(
    ir: IRGraph,
    target_fps: float,
    clock_mhz: float,
    max_lut: int | None = None,
    family: str = "xc7",
) -> tuple[dict[str, dict[str, int]], int]:
    """The cheapest balanced folding reaching *target_fps* samples/s at *clock_mhz*.

    Returns ``(folding, ii_cycles)``. Every layer gets the smallest PE x SIMD whose cycles per
    sample fit in ``floor(clock / target)``; the chain's initiation interval is then checked
    with the templates' own estimates. With *max_lut*, the folding's estimated LUTs (for the
    device *family*) must stay within it.

    Raises
    ------
    GatemillError
        If the target is out of reach, with the best reachable figure.
    """
    from ...hdl.top import estimates, plan

    if target_fps <= 0 or clock_mhz <= 0:
        raise GatemillError(
            f"--target-fps {target_fps} and --clock-mhz {clock_mhz} must be positive."
        )
    budget = int(clock_mhz * 1e6 // target_fps)
    if budget >= 1:
        folding = fold_for_ii(ir, budget)
        ii = estimates(plan(apply_folding(ir, folding)))["ii_cycles"]
        if ii <= budget:
            if max_lut is not None:
                need = _estimate(ir, folding, clock_mhz, family)["est_lut"]
                if need > max_lut:
                    _, best = fastest_within(ir, max_lut, clock_mhz, family)
                    raise GatemillError(
                        f"--target-fps {target_fps:g} at {clock_mhz:g} MHz needs about "
                        f"{need:,} LUTs (estimate), more than --max-lut {max_lut}; within "
                        f"{max_lut} LUTs the fastest folding takes {best['ii_cycles']} cycles "
                        f"per sample, i.e. {best['samples_per_s']:,.0f} samples/s. Lower the "
                        "target or raise --max-lut."
                    )
            return folding, ii
    best = estimates(plan(apply_folding(ir, fold_for_ii(ir, 1))))
    best_fps = clock_mhz * 1e6 / best["ii_cycles"]
    raise GatemillError(
        f"--target-fps {target_fps:g} at {clock_mhz:g} MHz needs an initiation interval of "
        f"{clock_mhz * 1e6 / target_fps:.3g} cycles; the fastest folding of this model takes "
        f"{best['ii_cycles']} cycles ({best['bottleneck']} is the bottleneck), i.e. at most "
        f"{best_fps:,.0f} samples/s. Lower the target or raise the clock."
    )


# The share of a board's multipliers a folding may use. An ECP5 design using most of its
# MULT18s routes for half an hour or more (nextpnr, measured: the 6-bit jet MLP with 85 % of
# them was still routing after 20 min; folded to 43 %, it routed in 6 min), while the xc7
# DSP48 columns route at full use.
DSP_SHARE = {"ecp5": 0.6}


def multiplier_limit(capacity: dict, family: str) -> int:
    """How many DSP blocks (DSP48 / MULT18) a folding may use on a board (:data:`DSP_SHARE`)."""
    return int(DSP_SHARE.get(family, 1.0) * capacity["dsp"])


def fit_multipliers(
    ir: IRGraph, folding: dict, capacity: dict, family: str
) -> tuple[dict[str, dict[str, int]], int, int]:
    """*folding*, or the fastest balanced folding at least as slow that fits the board's
    multipliers (:func:`multiplier_limit`; the estimate counts them exactly).

    Returns ``(folding, dsp, limit)``: the folding, its DSP blocks and the limit.

    Raises
    ------
    GatemillError
        If even the slowest folding needs more than the limit.
    """
    from ...hdl.top import estimates, plan
    from .cost import design_estimate

    limit = multiplier_limit(capacity, family)
    folded = apply_folding(ir, folding)
    dsp = design_estimate(folded, family)["dsp"]
    if dsp <= limit:
        return folding, dsp, limit
    now = estimates(plan(folded))["ii_cycles"]
    for _, slower in balanced_foldings(ir, (t for t in candidate_iis(ir) if t > now)):
        dsp = design_estimate(apply_folding(ir, slower), family)["dsp"]
        if dsp <= limit:
            return slower, dsp, limit
    raise GatemillError(
        f"even the slowest folding of this model needs {dsp} multipliers (DSP blocks), more "
        f"than the {limit} a folding may use of the board's {capacity['dsp']}: quantize the "
        "weights or activations to fewer bits, or choose a bigger board."
    )
