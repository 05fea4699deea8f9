"""Console summaries of the steps' JSON reports."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .synth.cli import QUIET

console = Console(highlight=False)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f} %"


def print_import(report: dict, out: Path) -> None:
    """Print the layer table and the golden-vs-QONNX figures of ``import.json``."""
    table = Table(title=f"IR of {report['model']}", title_justify="left")
    for col in ("layer", "kind", "in", "out", "types"):
        table.add_column(col)
    for layer in report["layers"]:
        table.add_row(
            layer["name"],
            layer["kind"],
            str(tuple(layer["in_shape"])),
            str(tuple(layer["out_shape"])),
            layer["describe"],
        )
    console.print(table)
    _print_input(report)
    g, e = report["golden_vs_qonnx"], report["end_to_end"]
    console.print(
        f"golden vs QONNX on {report['vectors']} vectors: {g['mismatches']} of {g['elements']} "
        f"activations differ (max {g['max_level_diff']} level); outputs: {e['mismatches']} of "
        f"{e['elements']} differ, {e['samples_with_other_class']} samples change class"
    )
    if report["golden_accuracy"] is not None:
        console.print(
            f"accuracy: golden {_pct(report['golden_accuracy'])}, "
            f"QONNX {_pct(report['qonnx_accuracy'])}"
        )
    console.print(f"wrote {out}/import.json, golden.npz, import/ir.json (+ ir.npz)")


def _print_input(report: dict) -> None:
    """The input encoding (when stated) and the input values the first quantizer clips."""
    enc = report["input"].get("encoding")
    if enc:
        first = enc.get("first_quantizer", {})
        pre = ", ".join(enc["preprocessing"]) or "none"
        console.print(
            f"input: raw {enc['input_type']} integers q, x = {enc['scale']} * q; "
            f"pre-processing folded: {escape(pre)}; first quantizer: {escape(first['detail'])}"
            + (f" ({first['layer']})" if first.get("layer") else "")
        )
    sat = report.get("input_saturation")
    if sat and sat["values"]:
        lo, hi = sat["range"]
        where = escape(f"[{lo:g}, {hi:g}] of the input quantizer {sat['quantizer']!r}")
        console.print(
            f"[yellow]input saturation:[/] {sat['values']:,} of {sat['elements']:,} input values "
            f"({100 * sat['values'] / sat['elements']:.2g} %) fall outside the range {where} "
            "and are clipped (the model's own behaviour; check the vectors' scale)"
        )


def print_build(reports: dict, out: Path, timings: dict | None = None) -> None:
    """Print the summaries of the steps a build chose (those in *reports*).

    *timings* (``{step: timings.json entry}``) holds the times of the steps that ran now; a
    skipped step's figures are printed without times.
    """
    timings = timings or {}
    if "import" in reports:
        print_import(reports["import"], out)
    if "fold" in reports:
        fold = reports["fold"]
        console.print(
            f"folding ({fold['rule']}): "
            + ", ".join(
                f"{name} " + "/".join(f"{k}={v}" for k, v in f.items() if (k, v) not in QUIET)
                for name, f in fold["layers"].items()
            )
        )
    if "rtl" in reports:
        est = reports["rtl"]["estimates"]
        console.print(
            f"RTL: {out}/rtl/{reports['rtl']['top']}.v; estimated ii "
            f"{est['ii_cycles']} cycles (bottleneck {est['bottleneck']}), latency "
            f"{est['latency_cycles']} cycles"
        )
    if "lut_check" in reports:
        c = reports["lut_check"]
        secs = timings.get("rtl", {}).get("lut_check_seconds")
        console.print(
            f"truth tables: {c['neurons']} neurons in {c['layers']} LUT layers checked for every "
            f"input ({c['entries_checked']:,} entries): {c['mismatches']} mismatches "
            + (f"({secs:.1f} s) " if secs is not None else "")
            + f"-> {out}/lut_check.json"
        )
    if "sim" in reports:
        print_sim(reports["sim"], out, timings.get("sim"))
    if "synth" in reports:
        from .synth.cli import print_synth

        print_synth({**reports["synth"], **_yosys_times(timings.get("synth"))})
    if "asic" in reports:
        from .asic.cli import print_asic

        print_asic(reports["asic"])
    if "report" in reports:
        console.print(f"report: {out}/report.html (+ report.json)")


def _yosys_times(entry: dict | None) -> dict:
    if not entry:
        return {}
    return {"seconds": entry.get("yosys_seconds"), "cpu_seconds": entry.get("yosys_cpu_seconds")}


def print_sim(s: dict, out: Path, timing: dict | None = None) -> None:
    """Print the figures of ``sim.json`` (with the build and simulation times of *timing*,
    the ``sim`` entry of ``timings.json``, when the step ran now)."""
    times = ""
    if timing:
        times = f"; build {timing['build_seconds']:.1f} s, simulation {timing['sim_seconds']:.1f} s"
    console.print(
        f"simulation ({s['simulator']}): {s['vectors']} vectors x 2 passes (full rate; random "
        f"idle {s['stress']['idle_probability']} / backpressure "
        f"{s['stress']['stall_probability']}): {s['mismatches']} mismatches; "
        f"ii {s['ii_cycles']} cycles (est. {s['est_ii_cycles']}), latency "
        f"{s['latency_cycles']} cycles (est. {s['est_latency_cycles']}){times} -> {out}/sim.json"
    )
