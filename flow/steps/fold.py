"""The ``fold`` step's rule: which folding a build uses, from a rate, a budget, a board and a
folding file. The Python API folds with the same function, so both give one folding."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..boards import Board
from ..dse import apply_folding, default_folding, folding_for_rate, folding_of, load_folding
from ..dse.budget import fastest_within, fit_board
from ..dse.cost import design_estimate
from ..dse.estimate import estimate_point
from ..dse.fold import for_device
from ..errors import GatemillError
from ..ir import IRGraph

DEFAULT_CLOCK_MHZ = 100.0


def clock_of(clock_mhz: float | None, board: Board | None) -> float:
    """The clock a folding is made for: the one asked for, else the board's, else 100 MHz."""
    if clock_mhz is not None:
        return float(clock_mhz)
    return board.clock_mhz if board is not None else DEFAULT_CLOCK_MHZ


def _fit_board(
    ir: IRGraph, folding: dict, rule: str, board: Board, target_fps, clock_mhz: float
) -> tuple[dict, str]:
    """*folding* and *rule*, with products, thresholds or weights moved between LUTs and DSP
    blocks or block RAMs, or folded further, when the board has too few multipliers, block
    RAMs or LUTs for it
    (:func:`gatemill.flow.dse.budget.fit_board`).

    A *target_fps* the board cannot reach is an error naming the fastest rate it can.
    """
    fitted, est, limits = fit_board(ir, folding, board.capacity, board.family)
    if fitted is folding:
        return folding, rule
    ii = estimate_point(ir, folding, clock_mhz, board.family)["ii_cycles"]
    point = estimate_point(ir, fitted, clock_mhz, board.family)
    room = (
        f"the {board.name}'s {limits['dsp']} usable multipliers ({est['dsp']} used), "
        f"{limits['bram']:g} block RAMs ({est['bram']:g} used) and {limits['lut']:,.0f} LUTs "
        f"({est['lut']:,.0f} estimated)"
    )
    if point["ii_cycles"] == ii:
        moved = []
        for layer in ir.layers:
            new = fitted[layer.name]
            if "mul" in layer.fold_fields and (mul := new.get("mul", layer.mul)) != layer.mul:
                where = "in LUTs" if mul == "lut" else f"on DSP blocks ({new['pack']} a block)"
                moved.append(f"products of {layer.name} {where}")
            if new.get("thr_mul", "lut") == "dsp" != getattr(layer, "thr_mul", "dsp"):
                moved.append(f"thresholds of {layer.name} on DSP blocks")
            if new.get("lut_weight_bits", 0):
                moved.append(f"{new['lut_weight_bits']} weight bits a word of {layer.name} in LUTs")
        return fitted, f"{rule}, {', '.join(moved)} to fit {room}"
    if target_fps is not None:
        need = design_estimate(apply_folding(ir, folding), board.family)
        raise GatemillError(
            f"--target-fps {target_fps:g} at {clock_mhz:g} MHz needs {need['dsp']} "
            f"multipliers (DSP blocks), {need['bram']:g} block RAMs (36 Kb) and about "
            f"{need['lut']:,.0f} LUTs; a folding may use {limits['dsp']}, {limits['bram']:g} "
            f"and {limits['lut']:,.0f} of them on the {board.name}, and moving products, "
            "thresholds or weights between LUTs and DSP blocks or block RAMs does not make "
            "it fit; "
            f"within them the fastest folding takes {point['ii_cycles']} cycles per sample, "
            f"i.e. {point['samples_per_s']:,.0f} samples/s. Lower the target, or choose a "
            "bigger board."
        )
    return fitted, f"{rule}, folded to fit {room}"


def choose_folding(
    ir: IRGraph,
    *,
    target_fps: float | None = None,
    clock_mhz: float | None = None,
    max_lut: int | None = None,
    board: Board | None = None,
    overrides: Path | str | Mapping | None = None,
) -> tuple[IRGraph, dict]:
    """Fold *ir* the way ``gatemill build`` does; returns the folded IR and ``folding.json``.

    Parameters
    ----------
    ir : IRGraph
        The imported (unfolded) IR.
    target_fps : float, optional
        Samples per second to reach at *clock_mhz*: the cheapest balanced folding.
    clock_mhz : float, optional
        Default: the board's clock, else 100 MHz.
    max_lut : int, optional
        LUT budget (estimate): with *target_fps* the target must fit, alone the fastest
        folding within it.
    board : Board, optional
        Without *overrides*, work moves between LUTs, DSP blocks and block RAMs, or the
        folding is folded further, until the estimate fits the board's multipliers, block
        RAMs and LUTs (a *target_fps* beyond them is an error); its family prices the LUTs.
    overrides : path or mapping, optional
        A ``folding.json`` (or its ``layers`` mapping) whose entries replace the rule's.

    Returns
    -------
    (IRGraph, dict)
        The folded IR, and ``{"rule", "layers", ...}`` as ``folding.json`` holds it.

    Raises
    ------
    GatemillError
        For a target or budget no folding meets, a bad folding file, or a target the board's
        multipliers cannot reach.
    """
    family = board.family if board else "xc7"
    clock = clock_of(clock_mhz, board)
    ir = for_device(ir, clock, family)  # pipeline depths for the clock
    if target_fps is not None:
        folding, _ = folding_for_rate(ir, target_fps, clock, max_lut, family)
        rule = f"{target_fps:g} samples/s at {clock:g} MHz"
        if max_lut is not None:
            rule += f" within {max_lut} LUTs (estimate)"
    elif max_lut is not None:
        folding, _ = fastest_within(ir, max_lut, clock, family)
        rule = f"fastest within {max_lut} LUTs (estimate, {family})"
    else:
        folding, rule = default_folding(ir), "default rule (gatemill.flow.dse.fold)"
    if board is not None and overrides is None:
        folding, rule = _fit_board(ir, folding, rule, board, target_fps, clock)
    folded = apply_folding(ir, folding, rule)
    if overrides is not None:
        if isinstance(overrides, Mapping):
            layers, source = overrides, "folding"
        else:
            layers, source = load_folding(overrides), str(overrides)
        folded = apply_folding(folded, layers, source)
        rule += f", overridden by {source}"
    doc = {"rule": rule, "layers": folding_of(folded)}
    if target_fps is not None:
        doc.update(target_fps=target_fps, clock_mhz=clock)
    if max_lut is not None:
        doc["max_lut"] = max_lut
    return folded, doc
