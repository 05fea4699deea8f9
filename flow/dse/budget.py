"""Foldings within a budget: a rate (``--target-fps``), a LUT count (``--max-lut``), a board's
multipliers. Each is the fastest (or cheapest) of the balanced foldings of :mod:`.fold`, judged
by the estimates of :mod:`.estimate`."""

from __future__ import annotations

from ...hdl.plan import estimates, plan
from ..errors import GatemillError
from ..ir import IRGraph
from .cost import design_estimate
from .estimate import estimate_point
from .fold import apply_folding, balanced_foldings, candidate_iis, fold_for_ii, folding_of


def fastest_within(
    ir: IRGraph, max_lut: int, clock_mhz: float, family: str = "xc7"
) -> tuple[dict[str, dict[str, int]], dict]:
    """The fastest balanced folding whose estimated LUTs stay within *max_lut*.

    Returns ``(folding, estimate)`` (:func:`gatemill.flow.dse.estimate.estimate_point`).

    Raises
    ------
    GatemillError
        If even the slowest folding is estimated above *max_lut*.
    """
    slowest = None
    for _, folding in balanced_foldings(ir, candidate_iis(ir)):
        est = estimate_point(ir, folding, clock_mhz, family)
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
                need = estimate_point(ir, folding, clock_mhz, family)["est_lut"]
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


# The share of a board's LUTs a folding may fill with LUT multipliers (place and route needs
# room, and the estimate is within about 15 %).
LUT_SHARE = 0.85


def _switchable(ir: IRGraph, to: str) -> list[str]:
    """Folded matrix-vector layers of *ir* whose products could go to *to* (``"lut"`` or
    ``"dsp"``) and do not yet."""
    names = []
    for layer in ir.layers:
        fields = set(layer.fold_fields)
        if {"mul", "pack"} <= fields and getattr(layer, "multiplies", False) and layer.mul != to:
            names.append(layer.name)
    return names


def _with_mul(ir: IRGraph, name: str, to: str, family: str) -> IRGraph:
    layer = next(x for x in ir.layers if x.name == name)
    pack = layer.max_pack(family) if to == "dsp" else 1
    return apply_folding(ir, {name: {"mul": to, "pack": pack}}, "multipliers")


def choose_multipliers(
    ir: IRGraph, dsp_limit: int, lut_limit: float, family: str
) -> tuple[IRGraph, dict]:
    """*ir* (folded) with each layer's multipliers on DSP blocks or in LUTs so that the
    design fits *dsp_limit* DSP blocks and *lut_limit* LUTs, if it can; and its estimate.

    Greedy on the estimate (:func:`gatemill.flow.dse.cost.design_estimate`): while there are
    too many DSP blocks, the layer that gives up the most of them per LUT it adds moves to
    LUTs; while there are too many LUTs, the layer that saves the most LUTs per DSP block it
    takes moves to DSPs (packed), as long as they stay within *dsp_limit*.
    """
    est = design_estimate(ir, family)
    while est["dsp"] > dsp_limit:
        best = None
        for name in _switchable(ir, "lut"):
            cand = _with_mul(ir, name, "lut", family)
            e = design_estimate(cand, family)
            saved = est["dsp"] - e["dsp"]
            if saved > 0:
                score = (e["lut"] - est["lut"]) / saved
                if best is None or score < best[0]:
                    best = (score, cand, e)
        if best is None:
            break
        _, ir, est = best
    while est["lut"] > lut_limit:
        best = None
        for name in _switchable(ir, "dsp"):
            cand = _with_mul(ir, name, "dsp", family)
            e = design_estimate(cand, family)
            saved, used = est["lut"] - e["lut"], e["dsp"] - est["dsp"]
            ok = saved > 0 and used > 0 and e["dsp"] <= dsp_limit
            if ok and (best is None or saved / used > best[0]):
                best = (saved / used, cand, e)
        if best is None:
            break
        _, ir, est = best
    return ir, est


def fit_multipliers(
    ir: IRGraph, folding: dict, capacity: dict, family: str
) -> tuple[dict[str, dict[str, int]], int, int]:
    """*folding*, with each layer's multipliers on DSP blocks or in LUTs
    (:func:`choose_multipliers`) so that the design fits the board's DSP blocks
    (:func:`multiplier_limit`) and :data:`LUT_SHARE` of its LUTs; else the fastest balanced
    folding at least as slow that does.

    Returns ``(folding, dsp, limit)``: the folding (*folding* itself when it fits as it is,
    else with ``mul`` and ``pack`` set for every layer that has them), its DSP blocks and
    the limit.

    Raises
    ------
    GatemillError
        If even the slowest folding needs more multipliers than the limit.
    """
    limit = multiplier_limit(capacity, family)
    lut_limit = LUT_SHARE * capacity["lut"] if "lut" in capacity else float("inf")
    folded = apply_folding(ir, folding)
    est = design_estimate(folded, family)
    if est["dsp"] <= limit:
        return folding, est["dsp"], limit
    now = estimates(plan(folded))["ii_cycles"]
    candidates = [(now, folding)]
    candidates += list(balanced_foldings(ir, (t for t in candidate_iis(ir) if t > now)))
    for _, candidate in candidates:
        chosen, est = choose_multipliers(apply_folding(ir, candidate), limit, lut_limit, family)
        if est["dsp"] <= limit and est["lut"] <= lut_limit:
            return {**candidate, **folding_of(chosen)}, est["dsp"], limit
    raise GatemillError(
        f"even the slowest folding of this model needs {est['dsp']} multipliers (DSP blocks) "
        f"and about {est['lut']:,.0f} LUTs with its other products in LUTs, more than the "
        f"{limit} DSP blocks and {lut_limit:,.0f} LUTs a folding may use of the board's "
        f"{capacity['dsp']} and {capacity.get('lut', 0):,}: quantize the weights or "
        "activations to fewer bits, or choose a bigger board."
    )
