"""The build report: ``DIR/report.json`` and a self-contained ``DIR/report.html``.

Gathers what the steps wrote (train, import, folding, RTL manifest, simulation, synthesis,
Fmax, standard cells, bitstream timing, HLS C simulation) into one JSON, and renders it as one
HTML file with its plots inline (SVG from matplotlib), so it can be mailed or archived as is.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from .textgen import render

DEFAULT_CLOCK_MHZ = 100.0


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _fresh(out: Path, path: Path) -> dict | None:
    """*path*'s JSON, unless it is older than the RTL (a rebuild leaves the old one behind)."""
    manifest = out / "rtl" / "manifest.json"
    if not path.is_file():
        return None
    if manifest.is_file() and path.stat().st_mtime < manifest.stat().st_mtime:
        return None
    return _load(path)


def clock_for_rate(
    synth: dict | None, fmax: dict | None, bitstream: dict | None
) -> tuple[float, str, str]:
    """The clock the report's samples/s are computed at: ``(MHz, source, what it is)``.

    A measured Fmax first: the ECP5 bitstream's (``bitstream/timing.json``, the whole board
    design), then the core's out of context (``fmax/fmax.json``, nextpnr-ecp5); then the
    synthesized board's clock; else :data:`DEFAULT_CLOCK_MHZ`, assumed. *source* is
    ``"bitstream"``, ``"fmax"``, ``"board"`` or ``"assumed"``.
    """
    if bitstream and bitstream.get("fmax_mhz"):
        return (
            float(bitstream["fmax_mhz"]),
            "bitstream",
            f"Fmax measured on ECP5 ({bitstream.get('board', '?')}, bitstream, nextpnr-ecp5)",
        )
    if fmax and fmax.get("fmax_mhz"):
        return (
            float(fmax["fmax_mhz"]),
            "fmax",
            f"Fmax measured on ECP5 ({fmax.get('board', '?')}, the core out of context, "
            "nextpnr-ecp5)",
        )
    if synth and synth.get("clock_mhz"):
        return float(synth["clock_mhz"]), "board", f"clock of the {synth['board']} board"
    return DEFAULT_CLOCK_MHZ, "assumed", f"assumed {DEFAULT_CLOCK_MHZ:g} MHz (no board, no Fmax)"


def _per_layer_synth(synth: dict | None) -> dict[str, dict]:
    if not synth:
        return {}
    rows = synth.get("layers") or {}
    if isinstance(rows, list):
        return {r["name"]: r for r in rows if "name" in r}
    return dict(rows)


def collect(out: Path) -> dict:
    """Everything the report shows, from the files in *out* (missing steps are None)."""
    out = Path(out)
    imp = _load(out / "import.json")
    if imp is None:
        from .errors import GatemillError

        raise GatemillError(f"{out} has no import.json: it is not a gatemill build folder.")
    train = _load(Path(imp.get("model_path", imp["model"])).parent / "train.json")
    fold = _load(out / "folding.json") or {"layers": {}}
    manifest = _load(out / "rtl" / "manifest.json")
    sim, synth = _load(out / "sim.json"), _load(out / "synth.json")
    timing, csim = _fresh(out, out / "bitstream" / "timing.json"), _load(out / "hls" / "csim.json")
    fmax = _fresh(out, out / "fmax" / "fmax.json")
    asic = _fresh(out, out / "asic.json")
    stages = {s["name"]: s for s in (manifest or {}).get("stages", [])}
    res = _per_layer_synth(synth)
    layers = []
    for layer in imp["layers"]:
        name = layer["name"]
        row = {
            "name": name,
            "kind": layer["kind"],
            "in_shape": layer["in_shape"],
            "out_shape": layer["out_shape"],
            "describe": layer["describe"],
            **fold["layers"].get(name, {}),
        }
        if name in stages:
            row["cycles"] = stages[name]["ii_cycles"]
            row["latency_cycles"] = stages[name]["latency_cycles"]
        for key in ("lut", "ff", "bram", "dsp", "depth", "depth_carry"):
            if key in res.get(name, {}):
                row[key] = res[name][key]
        layers.append(row)
    clock, source, note = clock_for_rate(synth, fmax, timing)
    perf = None
    if sim:
        perf = {
            "clock_mhz": clock,
            "clock_source": source,
            "clock_note": note,
            "ii_cycles": sim["ii_cycles"],
            "latency_cycles": sim["latency_cycles"],
            "est_ii_cycles": sim["est_ii_cycles"],
            "est_latency_cycles": sim["est_latency_cycles"],
            "samples_per_s": clock * 1e6 / sim["ii_cycles"],
            "latency_us": sim["latency_cycles"] / clock,
        }
    hardware_ok = bool(sim) and sim["mismatches"] == 0
    report = {
        "build": str(out),
        "model": imp["model"],
        "train": train,
        "accuracy": {
            "float": (train or {}).get("float_accuracy"),
            "quantized": (train or {}).get("quant_accuracy"),
            "golden": imp["golden_accuracy"],
            "qonnx": imp["qonnx_accuracy"],
            # the hardware equals the golden model on every output, or it has no accuracy
            "hardware": imp["golden_accuracy"] if hardware_ok else None,
        },
        "golden_vs_qonnx": imp["golden_vs_qonnx"],
        "folding": fold,
        "layers": layers,
        "performance": perf,
        "simulation": sim,
        "synthesis": synth,
        "bitstream": timing,
        "fmax": fmax,
        "hls": csim,
        "asic": asic,
    }
    if (out / "ir.json").is_file():
        # the other foldings have no measured Fmax: all of them at the nominal clock
        report["pareto"] = pareto(out, clock_for_rate(synth, None, None)[0], synth)
        saved = sparsity_savings(out, (synth or {}).get("family") or "xc7")
        for row in layers:
            if row["name"] in saved:
                row["sparsity"] = saved[row["name"]]
    return report


def sparsity_savings(out: Path, family: str) -> dict[str, dict]:
    """Per layer with zero weights: their share, and what they saved by the estimate
    (LUTs, FFs, DSPs of the layer's unit against its dense twin at the same folding,
    :meth:`MatrixVector.dense_twin <gatemill.flow.kinds.matrix_vector.MatrixVector.dense_twin>`):
    a constant layer builds no product for a zero weight, a folded one still stores it."""
    from .dse.cost import estimate
    from .kinds import load_ir

    saved = {}
    for layer in load_ir(out).layers:
        zeros = getattr(layer, "zero_weights", 0)
        if not zeros:
            continue
        mine, dense = (
            estimate(layer.features(family), family=family),
            estimate(layer.dense_twin().features(family), family=family),
        )
        saved[layer.name] = {
            "zero_weights": zeros,
            "share": round(zeros / layer.weights.size, 4),
            "est_saved": {k: round(dense[k] - mine[k]) for k in ("lut", "ff", "dsp")},
            "text": f"{zeros / layer.weights.size:.0%} zero: about "
            f"{dense['lut'] - mine['lut']:,.0f} LUT and {dense['dsp'] - mine['dsp']:,.0f} DSP "
            "saved (estimate)",
        }
    return saved


PARETO_POINTS = 12


def pareto(out: Path, clock_mhz: float, synth: dict | None) -> dict:
    """This build among the other balanced foldings of its model: samples/s against LUTs.

    The foldings come from :func:`gatemill.flow.dse.explore.sweep`, every one estimated
    (:func:`~gatemill.flow.dse.explore.estimate_point`, for the synthesized board's device
    family or xc7); this build's own folding is marked, with its Yosys LUTs when synthesized.
    The layout is ``explore.json``'s, so :func:`~gatemill.flow.dse.explore.pareto_figure`
    draws it.
    """
    from .dse.estimate import estimate_point
    from .dse.explore import pareto_front, sweep
    from .dse.fold import folding_of
    from .kinds import load_ir

    ir = load_ir(out)
    family = (synth or {}).get("family", "xc7")
    mine = folding_of(ir)
    points = []
    for _, folding in sweep(ir, PARETO_POINTS):
        if folding != mine:
            points.append(estimate_point(ir, folding, clock_mhz, family))
    this = {**estimate_point(ir, mine, clock_mhz, family), "this_build": True}
    if synth:
        this["lut"] = synth["lut"]
        this["lut_error"] = round((this["est_lut"] - synth["lut"]) / max(synth["lut"], 1), 3)
    points.append(this)
    points.sort(key=lambda p: p["ii_cycles"])
    return {
        "model": out.name,
        "board": (synth or {}).get("board", "-"),
        "family": family,
        "clock_mhz": clock_mhz,
        "capacity_lut": (synth or {}).get("capacity", {}).get("lut"),
        "points": [{k: v for k, v in p.items() if k != "est_lut_layers"} for p in points],
        "pareto_estimated": pareto_front(points, "est_lut"),
        "pareto_synthesized": [],
    }


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def plots(report: dict) -> dict[str, str]:
    """Inline SVG plots: cycles per layer, resources per layer when synthesized, and this
    build among the balanced foldings (the Pareto front of the estimates)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    rows = [r for r in report["layers"] if "cycles" in r]
    if rows:
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1))
        ax.barh([r["name"] for r in rows], [r["cycles"] for r in rows], color="#4c72b0")
        ax.invert_yaxis()
        ax.set_xlabel("cycles per sample (estimate = measured for the bottleneck)")
        ax.set_title("Cycles per layer")
        out["cycles"] = _svg(fig)
    rows = [r for r in report["layers"] if "lut" in r]
    if rows:
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1))
        names = [r["name"] for r in rows]
        ax.barh(names, [r["lut"] for r in rows], label="LUT", color="#dd8452")
        ax.barh(
            names,
            [r.get("ff", 0) for r in rows],
            left=[r["lut"] for r in rows],
            label="FF",
            color="#55a868",
        )
        ax.invert_yaxis()
        ax.legend()
        ax.set_title("Resources per layer (Yosys)")
        out["resources"] = _svg(fig)
    if report.get("pareto"):
        from .dse.explore import pareto_figure

        fig = pareto_figure(report["pareto"], title="This build among the balanced foldings")
        out["pareto"] = _svg(fig)
    return out


def write_report(out: Path, into: Path | None = None) -> dict:
    """Write ``report.json`` and ``report.html`` of the build folder *out* into *into*
    (default: *out*); returns the report."""
    out = Path(out)
    into = out if into is None else Path(into)
    report = collect(out)
    (into / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (into / "report.html").write_text(
        render("report/report.html.j2", r=report, plots=plots(report))
    )
    return report
