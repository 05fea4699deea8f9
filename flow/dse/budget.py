"""Foldings within a budget: a rate (``--target-fps``), a LUT count (``--max-lut``), a board's
multipliers. Each is the fastest (or cheapest) of the balanced foldings of :mod:`.fold`, judged
by the estimates of :mod:`.estimate`."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

from ...hdl.plan import estimates, plan
from ..errors import GatemillError
from ..ir import IRGraph
from ..kinds.resources import map_memory
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

# The share of a board's LUTs a folding may fill with LUT multipliers and weights in logic
# (place and route needs room, and the estimate is within about 15 %).
LUT_SHARE = 0.85


def multiplier_limit(capacity: dict, family: str) -> int:
    """How many DSP blocks (DSP48 / MULT18) a folding may use on a board (:data:`DSP_SHARE`)."""
    return int(DSP_SHARE.get(family, 1.0) * capacity["dsp"])


def board_limits(capacity: dict, family: str) -> dict[str, float]:
    """What a folding may use of a board: ``dsp`` (:func:`multiplier_limit`), ``lut``
    (:data:`LUT_SHARE`) and ``bram`` in 36 Kb blocks, as the estimate counts them (an ECP5
    EBR holds 18 Kb); unlimited where the board does not say."""
    inf = float("inf")
    bram = capacity.get("bram36", capacity["ebr"] / 2 if "ebr" in capacity else inf)
    return {
        "dsp": multiplier_limit(capacity, family),
        "lut": LUT_SHARE * capacity["lut"] if "lut" in capacity else inf,
        "bram": bram,
    }


def fits(est: dict, limits: dict) -> bool:
    """Is the estimate *est* (:func:`~gatemill.flow.dse.cost.design_estimate`) within
    *limits* (:func:`board_limits`)?"""
    return all(est[k] <= limits[k] for k in ("dsp", "lut", "bram"))


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


def _thresholds_on_dsp(ir: IRGraph) -> Iterator[IRGraph]:
    """*ir* with one more layer's constant thresholds counted on multipliers (``thr_mul``
    ``"dsp"``), one candidate per layer that searches them (one where no row allows it
    saves nothing, and :func:`_cheapest` passes it over)."""
    for layer in ir.layers:
        if "thr_mul" in layer.fold_fields and layer.thr_mul != "dsp" and layer.threshold_search:
            yield apply_folding(ir, {layer.name: {"thr_mul": "dsp"}}, "multipliers")


def _fewer_blocks(ir: IRGraph) -> Iterator[IRGraph]:
    """*ir* with one layer's weight memory a block RAM smaller: the fewest more bits of its
    word in logic (``lut_weight_bits``) that take a block off the estimate, one candidate per
    layer whose weights are in block RAM."""
    for layer in ir.layers:
        if "lut_weight_bits" not in layer.fold_fields:
            continue
        mem = layer.features().memories.get("weights")
        if mem is None or mem.how != "bram":
            continue
        depth, word = layer.folds[0] * layer.folds[1], layer.weight_bits
        rest = word - layer.lut_weight_bits
        while rest > 0 and map_memory(depth, rest - 1, "rom").bram >= mem.bram:
            rest -= 1
        yield apply_folding(ir, {layer.name: {"lut_weight_bits": word - rest + 1}}, "memories")


def _cheapest(cands, est: dict, give: str, take: str, family: str, cap: float | None = None):
    """``(ir, estimate)`` of the candidate that gives up the most of *give* per unit of
    *take* it adds, or None if none gives any up; with *cap*, only candidates that take more
    of *take* and stay within *cap* of it."""
    best = None
    for cand in cands:
        e = design_estimate(cand, family)
        gain, cost = est[give] - e[give], e[take] - est[take]
        if gain <= 0 or (cap is not None and (cost <= 0 or e[take] > cap)):
            continue
        if best is None or cost / gain < best[0]:
            best = (cost / gain, cand, e)
    return None if best is None else best[1:]


def choose_resources(ir: IRGraph, limits: dict, family: str) -> tuple[IRGraph, dict]:
    """*ir* (folded) with each layer's multipliers on DSP blocks or in LUTs, and its weights
    in block RAM or partly in LUTs, so that the design fits *limits* (:func:`board_limits`),
    if it can; and its estimate.

    Greedy on the estimate (:func:`gatemill.flow.dse.cost.design_estimate`): while there are
    too many DSP blocks, the layer that gives up the most of them per LUT it adds moves to
    LUTs; while there are too many LUTs, the layer that saves the most LUTs per DSP block it
    takes moves to DSPs (packed), or counts its constant thresholds on them (``thr_mul``), as
    long as they stay within the limit; while there are too
    many block RAMs, the layer whose weights give up a block RAM for the fewest LUTs moves
    that many more bits of its weight word into logic (a block RAM reads at most 72 bits a
    cycle: a fast layer's shallow memory needs more blocks than its bits fill).
    """
    est = design_estimate(ir, family)
    while est["dsp"] > limits["dsp"]:
        cands = (_with_mul(ir, n, "lut", family) for n in _switchable(ir, "lut"))
        if (best := _cheapest(cands, est, "dsp", "lut", family)) is None:
            break
        ir, est = best
    while est["lut"] > limits["lut"]:
        cands = chain(
            (_with_mul(ir, n, "dsp", family) for n in _switchable(ir, "dsp")),
            _thresholds_on_dsp(ir),
        )
        if (best := _cheapest(cands, est, "lut", "dsp", family, limits["dsp"])) is None:
            break
        ir, est = best
    while est["bram"] > limits["bram"] and est["lut"] <= limits["lut"]:
        if (best := _cheapest(_fewer_blocks(ir), est, "bram", "lut", family)) is None:
            break
        ir, est = best
    return ir, est


def fit_board(
    ir: IRGraph, folding: dict, capacity: dict, family: str
) -> tuple[dict[str, dict[str, int]], dict, dict]:
    """*folding*, with each layer's multipliers and weights placed by
    :func:`choose_resources` so that the design fits the board (:func:`board_limits`); else
    the fastest balanced folding at least as slow that does.

    Returns ``(folding, estimate, limits)``: the folding (*folding* itself when it fits as it
    is, else with ``mul``, ``pack`` and ``lut_weight_bits`` set for every layer that has
    them), its estimate and the limits.

    Raises
    ------
    GatemillError
        If even the slowest folding does not fit.
    """
    limits = board_limits(capacity, family)
    folded = apply_folding(ir, folding)
    est = design_estimate(folded, family)
    if fits(est, limits):
        return folding, est, limits
    now = estimates(plan(folded))["ii_cycles"]
    candidates = [(now, folding)]
    candidates += list(balanced_foldings(ir, (t for t in candidate_iis(ir) if t > now)))
    for _, candidate in candidates:
        chosen, est = choose_resources(apply_folding(ir, candidate), limits, family)
        if fits(est, limits):
            return {**candidate, **folding_of(chosen)}, est, limits
    raise GatemillError(
        f"even the slowest folding of this model needs {est['dsp']} multipliers (DSP blocks), "
        f"{est['bram']:g} block RAMs (36 Kb) and about {est['lut']:,.0f} LUTs with its other "
        f"products and weights in LUTs, more than the {limits['dsp']} DSP blocks, "
        f"{limits['bram']:g} block RAMs and {limits['lut']:,.0f} LUTs a folding may use of the "
        f"board's {capacity['dsp']} DSP blocks and {capacity.get('lut', 0):,} LUTs: quantize "
        "the weights or activations to fewer bits, or choose a bigger board."
    )
