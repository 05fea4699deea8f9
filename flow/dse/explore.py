"""Design-space exploration: sweep balanced foldings, estimate each, find the Pareto front.

1. **Sweep.** Target initiation intervals on a geometric range from the fastest reachable
   (every layer as parallel as its shape allows) to the slowest (PE = SIMD = 1); each target
   gives the cheapest balanced folding (:func:`gatemill.flow.dse.fold.fold_for_ii`). Equal
   foldings are kept once.
2. **Estimate.** For every folding, the cycles come from the templates' own timing models
   (:func:`gatemill.hdl.plan.estimates` of :func:`gatemill.hdl.plan.plan`) and the LUTs,
   flip-flops, block RAMs and DSPs from :mod:`gatemill.flow.dse.cost` (Yosys's memory and
   DSP rules, and a few terms per stage fitted to Yosys by ``bench/calibrate.py``; about 8 %
   from Yosys's LUT count on designs it was not fitted on):
   :func:`gatemill.flow.dse.estimate.estimate_point`.
3. **Front.** :func:`pareto_front` of samples/s against LUTs; :func:`pareto_figure` draws it.

``gatemill explore`` (:mod:`gatemill.flow.steps.explore`) adds the syntheses of a spread of
the points, each a build of the builder.
"""

from __future__ import annotations

from pathlib import Path

from ...hdl.plan import estimates, plan
from ..ir import IRGraph
from .fold import apply_folding, balanced_foldings, fold_for_ii


def sweep(ir: IRGraph, points: int) -> list[tuple[int, dict]]:
    """``[(target ii, folding)]``: distinct foldings over a geometric range of target IIs.

    The range runs from the fastest folding's initiation interval to the slowest's (all
    folds 1), both estimated by the templates; ``points`` targets, fewer if foldings repeat.
    """

    def ii(folding) -> int:
        return int(estimates(plan(apply_folding(ir, folding, "explore")))["ii_cycles"])

    fast = ii(fold_for_ii(ir, 1))
    slow = max(fast, ii(fold_for_ii(ir, 2**62)))
    if points == 1 or slow == fast:
        targets = [fast]
    else:
        ratio = (slow / fast) ** (1 / (points - 1))
        targets = sorted({max(fast, round(fast * ratio**i)) for i in range(points)})
    return list(balanced_foldings(ir, targets))


def spread(n: int, k: int) -> list[int]:
    """*k* indices spread evenly over ``range(n)``, the first and the last included."""
    if k <= 0 or n == 0:
        return []
    if k >= n:
        return list(range(n))
    if k == 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def pareto_front(points: list[dict], lut_key: str) -> list[int]:
    """Indices of the points no other point beats in both samples/s (up) and LUTs (down)."""
    idx = [i for i, p in enumerate(points) if p.get(lut_key) is not None]
    front = []
    for i in idx:
        a = points[i]
        dominated = any(
            points[j][lut_key] <= a[lut_key]
            and points[j]["samples_per_s"] >= a["samples_per_s"]
            and (points[j][lut_key] < a[lut_key] or points[j]["samples_per_s"] > a["samples_per_s"])
            for j in idx
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][lut_key])


def plot_pareto(report: dict, out: Path) -> None:
    """Write ``out/pareto.svg`` and ``out/pareto.png`` (:func:`pareto_figure`)."""
    import matplotlib.pyplot as plt

    fig = pareto_figure(report)
    fig.savefig(out / "pareto.svg")
    fig.savefig(out / "pareto.png", dpi=120)
    plt.close(fig)


def pareto_figure(report: dict, title: str | None = None):
    """Samples/s against LUTs of ``report["points"]`` (``explore.json``'s layout).

    Every point's estimate (hollow), the synthesized points (filled) joined to their
    estimate by a line with the relative error, and each Pareto front as a step line.
    Returns the matplotlib figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = report["points"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(
        [p["est_lut"] for p in pts],
        [p["samples_per_s"] for p in pts],
        facecolors="none",
        edgecolors="tab:blue",
        label="estimate",
    )
    syn = [p for p in pts if "lut" in p]
    if syn:
        ax.scatter(
            [p["lut"] for p in syn],
            [p["samples_per_s"] for p in syn],
            color="tab:orange",
            label=f"Yosys ({report['family']})",
            zorder=3,
        )
        for p in syn:
            ax.plot([p["est_lut"], p["lut"]], [p["samples_per_s"]] * 2, color="grey", lw=0.8)
            ax.annotate(
                f"{p['lut_error']:+.0%}",
                (p["lut"], p["samples_per_s"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
    for p in (p for p in pts if p.get("this_build")):
        ax.scatter(
            [p["est_lut"]],
            [p["samples_per_s"]],
            marker="*",
            s=160,
            color="tab:green",
            zorder=4,
            label="this build (estimate)",
        )
    for key, lut_key, color in (
        ("pareto_estimated", "est_lut", "tab:blue"),
        ("pareto_synthesized", "lut", "tab:orange"),
    ):
        front = [pts[i] for i in report[key]]
        if len(front) > 1:
            ax.step(
                [p[lut_key] for p in front],
                [p["samples_per_s"] for p in front],
                where="post",
                color=color,
                alpha=0.6,
                label=f"Pareto front ({'estimate' if lut_key == 'est_lut' else 'Yosys'})",
            )
    if report.get("capacity_lut"):
        ax.axvline(report["capacity_lut"], color="red", ls="--", lw=0.8, label="board LUTs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("LUTs")
    ax.set_ylabel(f"samples/s at {report['clock_mhz']:g} MHz")
    ax.set_title(title or f"{Path(report['model']).name} on {report['board']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
