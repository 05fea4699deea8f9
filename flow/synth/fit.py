"""Does the design fit the board, and if not, which folding would?

Utilization compares the synthesized figures with the board's capacity (LUT, FF, block RAM,
DSP, UltraRAM when the board lists it). A design fits when every figure is at most 100 %.

When it does not, the layers are ranked by what they use of each exceeded resource, and a
folding is suggested: the fastest balanced folding (the folding rule's
:func:`~gatemill.flow.dse.fold.fold_for_ii` at the smallest initiation interval that works)
whose predicted figures are within :data:`TARGET_PCT` of the capacity: 80 % of the LUTs and
flip-flops (headroom for place and route), all of the DSPs (a hard block fits or does not).
A layer's figures are predicted by scaling the measured ones by its change of parallelism
(PE x SIMD, or PE): a first-order guess that undercounts, as weights and FIFOs do not shrink
with the fold (the digits MLP at 32 cycles per sample: 8.5k LUTs predicted, 11.7k measured).
The suggestion is written as a ``folding.json`` to rebuild with, and the rebuild's synthesis
says whether it fits.

Block RAM is not folded away: the weights need the same bits at any fold, so an excess of
block RAM is reported with no folding suggestion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..dse.fold import fold_for_ii, folding_of
from ..ir import IRGraph

TARGET_PCT = {"lut": 80.0, "ff": 80.0, "dsp": 100.0}
FOLDABLE = tuple(TARGET_PCT)


def used_keys(capacity: Mapping[str, int], family: str) -> dict[str, str]:
    """``{capacity key: resource figure key}`` of the resources a board limits."""
    keys = {"lut": "lut", "ff": "ff", "dsp": "dsp"}
    keys["ebr" if family == "ecp5" else "bram36"] = "bram"
    if "uram" in capacity:
        keys["uram"] = "uram"
    return keys


def utilization(figures: dict, capacity: Mapping[str, int], family: str) -> dict[str, float]:
    """Percent of each capacity figure the design uses (keys as in the synth report)."""
    out = {}
    for cap_key, key in used_keys(capacity, family).items():
        cap = capacity[cap_key]
        used = figures.get(key, 0)
        out[key] = round(100.0 * used / cap, 2) if cap else (0.0 if not used else float("inf"))
    return out


def fold_options(ir: IRGraph, name: str) -> list[dict[str, int]]:
    """Every fold the folding rules may give layer *name*, cheapest first
    (:meth:`Layer.fold_options <gatemill.flow.kinds.base.Layer.fold_options>`)."""
    i = next(k for k, layer in enumerate(ir.layers) if layer.name == name)
    return ir.layers[i].fold_options(ir.layers[i - 1] if i else None)


def parallelism(fold: dict[str, int]) -> int:
    """Lanes working in parallel under *fold* (PE x SIMD, or PE; other fields, such as a
    pipeline depth, do not scale the hardware)."""
    return math.prod(fold.get(k, 1) for k in ("pe", "simd"))


def suggest_folding(
    ir: IRGraph,
    layers: dict[str, dict],
    glue: dict,
    capacity: Mapping[str, int],
    family: str,
) -> dict | None:
    """The fastest balanced folding predicted to use at most :data:`TARGET_PCT` of the board.

    Candidate initiation intervals are the cycles per sample of every legal fold of every
    layer, from the current one up; for each, :func:`gatemill.flow.dse.fold.fold_for_ii`
    gives the cheapest balanced folding, and each layer's measured figures (*layers*, by
    name) are scaled by its change of parallelism. Returns ``{"folding": {layer: fold},
    "changes": {layer: [old, new]}, "ii_cycles": int, "predicted": {resource: figure},
    "reached": bool}`` (``reached`` False: the slowest folding is still predicted too big), or
    None when no layer can be folded.
    """
    keys = [(c, k) for c, k in used_keys(capacity, family).items() if k in FOLDABLE]
    current = folding_of(ir)
    by_name = {layer.name: layer for layer in ir.layers}
    foldable = [n for n in current if n in layers and fold_options(ir, n)]
    if not foldable:
        return None
    now_ii = max(by_name[n].cycles_for(current[n]) for n in foldable)
    targets = sorted(
        {by_name[n].cycles_for(o) for n in foldable for o in fold_options(ir, n)} - {now_ii}
    )
    targets = [t for t in targets if t > now_ii]
    if not targets:
        return None

    def predict(folding) -> dict[str, float]:
        pred = {k: float(glue.get(k, 0)) for _, k in keys}
        for n, figs in layers.items():
            scale = 1.0
            if n in folding and n in current:
                scale = parallelism(folding[n]) / parallelism(current[n])
            for _, k in keys:
                pred[k] += figs.get(k, 0) * scale
        return pred

    def fits(pred) -> bool:
        return all(pred[k] <= TARGET_PCT[k] / 100 * capacity[c] for c, k in keys)

    for target in targets:
        folding = {**current, **fold_for_ii(ir, target)}
        pred = predict(folding)
        if fits(pred):
            break
    changes = {
        n: [dict(current[n]), dict(folding[n])]
        for n in current
        if dict(folding[n]) != dict(current[n])
    }
    return {
        "folding": folding,
        "changes": changes,
        "ii_cycles": target,
        "predicted": {k: round(v) for k, v in pred.items()},
        "reached": fits(pred),
    }


def fit_report(
    figures: dict,
    layers: dict[str, dict],
    glue: dict,
    capacity: Mapping[str, int],
    family: str,
    ir: IRGraph | None,
) -> dict:
    """``utilization_pct``, ``fits``, ``over`` (by layer) and ``suggestion`` of a synthesis."""
    util = utilization(figures, capacity, family)
    over = []
    for cap_key, key in used_keys(capacity, family).items():
        if figures.get(key, 0) > capacity[cap_key]:
            ranked = sorted(layers, key=lambda n: -layers[n].get(key, 0))
            over.append(
                {
                    "resource": key,
                    "used": figures[key],
                    "capacity": capacity[cap_key],
                    "pct": util[key],
                    "by_layer": [
                        {"layer": n, "used": layers[n].get(key, 0)}
                        for n in ranked
                        if layers[n].get(key, 0)
                    ],
                }
            )
    report = {"utilization_pct": util, "fits": not over, "over": over, "suggestion": None}
    if not over:
        return report
    lines = [
        f"{o['resource']}: {o['used']} used of {o['capacity']} ({o['pct']:.0f} %), most in "
        + ", ".join(f"{b['layer']} ({b['used']})" for b in o["by_layer"][:3])
        for o in over
    ]
    foldable = any(o["resource"] in FOLDABLE for o in over)
    sug = suggest_folding(ir, layers, glue, capacity, family) if ir and foldable else None
    if sug is not None:
        moves = "; ".join(
            f"{n}: {', '.join(f'{k}={v}' for k, v in new.items())} "
            f"(now {', '.join(f'{k}={v}' for k, v in old.items())})"
            for n, (old, new) in sug["changes"].items()
        )
        lines.append(
            f"suggested folding (initiation interval {sug['ii_cycles']} cycles): {moves}"
            + ("" if sug["reached"] else " (the slowest folding; still predicted too big)")
        )
        report["suggestion"] = {**sug, "text": "; ".join(lines)}
    else:
        advice = (
            "block RAM does not shrink with folding: the weights need the same bits at any "
            "fold; use fewer weight bits or a smaller model, or a bigger board"
            if not foldable
            else "every layer is already at its lowest parallelism; use a bigger board"
        )
        report["suggestion"] = {"folding": None, "text": "; ".join([*lines, advice])}
    return report
