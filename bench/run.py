"""The benchmark: a fixed set of reference designs built end to end, one table.

``python bench/run.py [--quick] [--no-fmax] [--no-hls4ml] [--update-readme]`` trains
(digits, embedded) or makes (random weights, for the shapes the anchors publish) each model,
then times every step: import, RTL, cocotb simulation (Verilator, bit-exact against the
golden model), Yosys synthesis for the pynq-z2 part (xc7z020, ``synth_xilinx``), and hls4ml's
``compile()`` + ``predict()`` on the same QONNX model with its bit agreement. Unless
``--quick`` or ``--no-fmax``, each core is also placed and routed out of context on the
ulx3s-85f's ECP5 with nextpnr (:func:`fmax_cells`, beside the next designs' builds). It
prints one Rich table of ours and one of the anchors' published figures (REFERENCES.md), and
writes ``bench/results.json`` (``--readme-only`` renders the README table from it). The
designs are seeded: a rerun gives the same figures (times aside).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import traceback
import typing
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
XILINX_BOARD = "pynq-z2"
ECP5_BOARD = "ulx3s-85f"
CLOCK_MHZ = 100.0  # the clock of the throughput column (the Zynq boards' fabric clock)
# the clock the ECP5 designs are built for (their pipelines' depth): the ULX3S's own is 25 MHz
ECP5_CLOCK_MHZ = 150.0
# nextpnr is single-threaded (WebAssembly): two place-and-route jobs run beside the builds
FMAX_JOBS = 2
FMAX_TIMEOUT = 600.0  # seconds of Yosys + nextpnr per design; a design past it gets "timeout"

# the anchors' published figures (REFERENCES.md); Vivado counts, not Yosys
ANCHORS = [
    (
        "FINN-examples TFC-w1a1",
        "folding PE/SIMD 16/49, 8/8, 8/8, 10/8",
        "finn-examples build config",
    ),
    (
        "BNN-PYNQ LFC-W1A1, Pynq-Z1 @ 100 MHz",
        "28,360 LUT, 110 BRAM, 4 DSP; 356,633 img/s",
        "Xilinx/BNN-PYNQ bnn/src/network/*/README.md",
    ),
    (
        "FINN SFC-max, MNIST, ZC706",
        "12.3 M img/s, 0.31 µs",
        "FINN paper, FPGA 2017 (arXiv:1612.07119)",
    ),
    (
        "hls4ml jet-tagging MLP 16-64-32-32-5",
        "latency on the order of 100 ns",
        "Duarte et al., JINST 2018 (arXiv:1804.06913)",
    ),
    ("hls4ml 3-layer jet model, reuse 1", "59 cycles latency, II 1", "hls4ml issue #20"),
    (
        "LogicNets JSC-S (16 in, 2 bit, fan-in 3, 64-32-32-32, 2-bit out)",
        "232 LUT, 268 FF, 1,394.7 MHz, 5 cycles (Vivado 2019.2)",
        "Xilinx/logicnets examples/jet_substructure/README.md",
    ),
]


def _random_mlp(sizes, path: Path, *, wbits: int, abits: int, in_bits: int) -> Path:
    """A seeded random-weight Brevitas MLP (tests/brevitas_models.py), exported as QONNX."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from brevitas_models import export, mlp

    export(mlp(sizes, wbits=wbits, abits=abits, in_bits=in_bits, seed=0), (sizes[0],), path)
    return path


def _jsc_data(path: Path, seed: int = 0) -> Path:
    """A seeded stand-in for the jet-substructure data (16 features, 5 classes).

    The JSC data set cannot be downloaded here; the shape (not the accuracy) is what the
    benchmark reproduces.
    """
    rng = np.random.default_rng(seed)
    x = rng.random((2000, 16)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(16, 5)), axis=1).astype(np.int64)
    np.savez(path, x_train=x[:1600], y_train=y[:1600], x_test=x[1600:], y_test=y[1600:])
    return path


def _bnn_pynq(name: str, d: Path, vectors: int = 4) -> Path:
    """A ``brevitas_examples.bnn_pynq`` network exported as it comes (random init, BatchNorm
    statistics from seeded forward passes; tests/test_bnn_pynq.py) and *vectors* seeded raw
    uint8 images beside it."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from test_bnn_pynq import export_as_they_come

    path = Path(export_as_they_come(name, d / f"{name}.onnx"))
    shape = (1, 28, 28) if name[:3] in ("tfc", "sfc", "lfc") else (3, 32, 32)
    q = np.random.default_rng(4).integers(0, 256, size=(vectors, *shape)).astype(np.uint8)
    np.savez(d / "vectors.npz", x=q)
    return path


def _train(kind: str, d: Path, **kw) -> Path:
    from gatemill.flow.zoo.train import TrainConfig, train

    train(TrainConfig(kind=kind, out_dir=d / "train", seed=0, **kw), progress=False)
    return d / "train" / "model.onnx"


DEMO_FPS = 3e6  # the demo's target: 3 M samples/s at 100 MHz fits the PYNQ-Z2 and the ULX3S


class Design(typing.NamedTuple):
    """A row of the table: in ``--quick``, how to make the model (folder -> .onnx), its
    folding (see :data:`DESIGNS`), the input's encoding (``--input-type``,
    ``--input-scale``) when the model takes floats before its first quantizer, and whether
    hls4ml runs on it."""

    quick: bool
    make: typing.Callable[[Path], Path]
    fold: dict | None
    encoding: tuple[str, str] | None = None
    hls4ml: bool = True


# BNN-PYNQ's measured rates of LFC-W1A1 and CNV-W1A1 (REFERENCES.md)
LFC_FPS, CNV_FPS = 356_633, 9_150
UINT8 = ("UINT8", "1/255")


def _random_jet(d: Path) -> Path:
    """The hls4ml jet-tagging MLP's shape (16-64-32-32-5), 6-bit, random weights."""
    return _random_mlp([16, 64, 32, 32, 5], d / "m.onnx", wbits=6, abits=6, in_bits=8)


DESIGNS = {
    "digits mlp w4a4": Design(
        True,
        lambda d: _train("mlp", d, wbits=4, abits=4, epochs=10),
        {"fps": DEMO_FPS},
    ),
    "digits mlp w1a1": Design(
        True,
        lambda d: _train("mlp", d, wbits=1, abits=1, in_bits=1, epochs=10),
        {"fps": DEMO_FPS},
    ),
    "digits cnn w4a4": Design(False, lambda d: _train("cnn", d, wbits=4, abits=4, epochs=3), None),
    "digits lutnet": Design(False, lambda d: _train("lutnet", d, epochs=10), None),
    "digits residual cnn": Design(False, lambda d: _train("rescnn", d, epochs=3), None),
    "pulses cnn1d": Design(False, lambda d: _train("cnn1d", d, epochs=5), None),
    "digits deep sets": Design(False, lambda d: _train("deepsets", d, epochs=10), None),
    "FINN TFC w1a1 (random)": Design(
        True,
        lambda d: _random_mlp([784, 64, 64, 64, 10], d / "m.onnx", wbits=1, abits=1, in_bits=1),
        {"pe_simd": [(16, 49), (8, 8), (8, 8), (10, 8)]},
    ),
    # issue 14's measure of a product in LUTs: 512 4x4-bit products, weights in block RAM
    "4096-64 layer w4a4, 512 LUT products (random)": Design(
        False,
        lambda d: _random_mlp([4096, 64], d / "m.onnx", wbits=4, abits=4, in_bits=4),
        {"pe_simd": [(8, 64)], "mul": "lut"},
        hls4ml=False,
    ),
    "hls4ml jet MLP 6-bit (random)": Design(
        True,
        _random_jet,
        {"ii": 32},
    ),
    # the dense jet MLP at one sample per clock, every product by a constant in shift-and-add
    # logic (no DSP); issue 14 sets 63,251 LUTs, hls4ml's for this model fully parallel on a
    # VU9P as a secondary source gives it (not in REFERENCES.md: no primary source)
    "jet MLP 6-bit dense, 1 sample/clock, LUT products (random)": Design(
        False,
        _random_jet,
        {"pe_simd": [(64, 16), (32, 64), (32, 32), (5, 32)], "mul": "lut"},
        hls4ml=False,
    ),
    # the same with each row's 63 thresholds counted on a DSP48 where they are a
    # requantization's (thr_mul), instead of a binary search in LUTs
    "jet MLP 6-bit dense, 1 sample/clock, LUT products, thresholds on DSPs (random)": Design(
        False,
        _random_jet,
        {"pe_simd": [(64, 16), (32, 64), (32, 32), (5, 32)], "mul": "lut", "thr_mul": "dsp"},
        hls4ml=False,
    ),
    "jet MLP 6-bit 90 % pruned, 1 sample/clock": Design(
        False,
        lambda d: _train(
            "mlp",
            d,
            hidden=(64, 32, 32),
            wbits=6,
            abits=6,
            epochs=10,
            sparsity=0.9,
            data=_jsc_data(d / "jsc.npz"),
        ),
        {"fps": 1e8},
    ),
    # LogicNets' jsc-s (its examples/jet_substructure train.py): four hidden layers, every
    # neuron fan-in 3 of 2-bit values, 2-bit outputs
    "LogicNets JSC-S shape": Design(
        False,
        lambda d: _train(
            "lutnet",
            d,
            hidden=(64, 32, 32, 32),
            fanin=3,
            wbits=4,
            abits=2,
            in_bits=2,
            out_bits=2,
            epochs=5,
            data=_jsc_data(d / "jsc.npz"),
        ),
        None,
    ),
    "BNN-PYNQ LFC w1a1 (random)": Design(
        False, lambda d: _bnn_pynq("lfc_1w1a", d), {"fps": LFC_FPS}, UINT8, hls4ml=False
    ),
    "BNN-PYNQ CNV w1a1 (random)": Design(
        False, lambda d: _bnn_pynq("cnv_1w1a", d), {"fps": CNV_FPS}, UINT8, hls4ml=False
    ),
}
"""name -> :class:`Design`.

The folding is ``{"fps": F}`` (what ``gatemill build --target-fps F --board pynq-z2`` folds:
:func:`gatemill.flow.steps.fold.choose_folding`, at 100 MHz, fitted to the board),
``{"ii": N}`` (:func:`~gatemill.flow.dse.fold.fold_for_ii`), ``{"pe_simd": [...]}`` (the
MatrixVector layers' PE, SIMD in order; with ``"mul"`` and ``"thr_mul"``, their
multipliers), or None for the default rule. The digits MLPs use the demo's target, the
bnn_pynq networks BNN-PYNQ's measured rates; the jet MLP is folded to 32 cycles (3.1 M
samples/s at 100 MHz): fully parallel (hls4ml's reuse factor 1) it is thousands of 6-bit
multipliers and Yosys alone would take most of the time budget. Pruned to 10 % of its
weights during training (``gatemill train --sparsity 0.9``, on the stand-in jet data), the
same shape takes one sample per clock (1e8 samples/s at 100 MHz); dense, it takes one sample
per clock with every product in shift-and-add logic (``mul`` ``lut``: no DSP, beyond the
pynq-z2's LUTs), and its thresholds on DSP48s (``thr_mul`` ``dsp``) or searched in LUTs.
"""


# the designs with the longest place and route (measured, CPU s: jet 343, lutnet 250, TFC 150)
# are built first, so their ECP5 jobs run beside the other designs' builds
RUN_FIRST = ("hls4ml jet MLP 6-bit (random)", "digits lutnet", "FINN TFC w1a1 (random)")


def fold_design(ir, fold: dict | None):
    """*ir* under the bench's folding spec (see :data:`DESIGNS`)."""
    from gatemill.flow.boards import load_board
    from gatemill.flow.dse.fold import apply_folding, default_folding, fold_for_ii, for_device
    from gatemill.flow.steps.fold import choose_folding

    if fold is not None and "fps" in fold:
        board = load_board(XILINX_BOARD)
        return choose_folding(ir, target_fps=fold["fps"], clock_mhz=CLOCK_MHZ, board=board)[0]
    ir = for_device(ir, CLOCK_MHZ, "xc7")  # what gatemill build --board pynq-z2 starts from
    if fold is None:
        return apply_folding(ir, default_folding(ir), "default rule")
    if "ii" in fold:
        return apply_folding(ir, fold_for_ii(ir, fold["ii"]), f"fold_for_ii({fold['ii']})")
    mvs = [layer.name for layer in ir.layers if layer.kind == "MatrixVector"]
    folding = {n: {"pe": p, "simd": s} for n, (p, s) in zip(mvs, fold["pe_simd"], strict=True)}
    for key in ("mul", "thr_mul"):
        if key in fold:
            folding = {n: {**f, key: fold[key]} for n, f in folding.items()}
    return apply_folding(ir, folding, "bench")


def design_folder(name: str, work: Path = WORK) -> Path:
    """Where :func:`bench_one` builds *name* (its build folder is ``build/`` in it)."""
    return work / "".join(c if c.isalnum() else "_" for c in name)


def _model_of(out: Path) -> Path:
    """The model a build folder was imported from (its ``import.json``)."""
    return Path(json.loads((out / "import.json").read_text())["model_path"])


def ecp5_build(out: Path) -> tuple[Path, int]:
    """The build to place and route on the ECP5, and its cycles per sample: a copy of *out*
    in ``ecp5/`` next to it, at its folding, with what ``gatemill build --board ulx3s-85f
    --clock-mhz 150`` would choose for the ECP5 (:data:`ECP5_CLOCK_MHZ`): the pipelines'
    depth for the clock, the multipliers (LUT or MULT18 products) and, where the MULT18s
    and LUTs (and block RAMs) together do not suffice, a slower folding
    (:func:`gatemill.flow.dse.budget.fit_board`). The rows are built for the xc7020
    at 100 MHz; the LFE5U-85F has 156 MULT18s. Without a folding that fits, *out* (and
    Yosys's refusal). Its RTL is made by the builder's ``rtl`` step.
    """
    from gatemill.flow.boards import load_board
    from gatemill.flow.dse.budget import fit_board
    from gatemill.flow.dse.fold import apply_folding, folding_of, for_device
    from gatemill.flow.errors import GatemillError
    from gatemill.flow.kinds import load_ir, save_ir
    from gatemill.flow.outdir import prepare_out_dir
    from gatemill.flow.steps import BuildConfig, run_steps

    board = load_board(ECP5_BOARD)
    ir = for_device(load_ir(out), ECP5_CLOCK_MHZ, board.family)
    ii = json.loads((out / "rtl" / "manifest.json").read_text())["estimates"]["ii_cycles"]
    try:
        fitted, _, _ = fit_board(ir, folding_of(ir), board.capacity, board.family)
    except GatemillError:
        return out, ii
    folded = apply_folding(ir, fitted, f"bench: the ECP5 at {ECP5_CLOCK_MHZ:g} MHz")
    dst = out.parent / "ecp5"
    shutil.rmtree(dst, ignore_errors=True)
    save_ir(folded, prepare_out_dir(dst))
    run = run_steps(BuildConfig(model=_model_of(out), out=dst, steps=("rtl",)))
    return dst, run.reports["rtl"]["estimates"]["ii_cycles"]


def fmax_cells(out: Path, timeout: float = FMAX_TIMEOUT) -> dict:
    """The ECP5 columns of the build folder *out*: ``fmax_mhz``, ``ecp5_ii``, ``ecp5_cpu_s``.

    Measured by the builder's ``fmax`` step on :func:`ecp5_build`'s design. A design too big
    for the ECP5, or one nextpnr cannot route within *timeout* seconds, gets a word in the
    Fmax cell and the reason under ``errors["ecp5"]``: the table stays whole.
    """
    from gatemill.flow.steps import BuildConfig, run_steps

    try:
        build, ii = ecp5_build(out)
        cfg = BuildConfig(
            model=_model_of(out),
            out=build,
            board=ECP5_BOARD,
            steps=("fmax",),
            fmax_timeout=timeout,
        )
        f = run_steps(cfg).reports["fmax"]
    except Exception as e:
        msg = str(e)
        word = "error"
        if "does not fit" in msg:
            word = "no fit"
        elif "did not finish" in msg:
            word = "timeout"
            msg = f"{getattr(e, 'tool', 'a tool')} did not finish within {timeout:.0f} s"
        return {"fmax_mhz": word, "errors": {"ecp5": f"{type(e).__name__}: {msg[:300]}"}}
    cpu = _timings(build)["fmax"]["fmax_cpu_seconds"]
    cpu = [c for c in cpu.values() if c is not None]
    return {
        "fmax_mhz": f["fmax_mhz"],
        "ecp5_ii": ii,
        "ecp5_cpu_s": round(sum(cpu), 1) if cpu else None,
    }


def _timings(out: Path) -> dict:
    """``{step: entry}`` of the build folder's ``timings.json`` (each step's last run)."""
    return json.loads((out / "timings.json").read_text())["steps"]


def retry_ecp5(
    path: Path, work: Path = WORK, timeout: float = FMAX_TIMEOUT, only: list[str] | None = None
) -> None:
    """Rerun :func:`fmax_cells` for the rows of the results file *path* whose place and route
    timed out (those whose design contains a text of *only*, if given), :data:`FMAX_JOBS` at
    a time on an otherwise idle machine (a full run places and routes beside the next
    designs' builds: a job sharing its core can pass the time limit), with *timeout* seconds
    each, and write the file back with their new cells and a note saying which rows were
    rerun."""
    results = json.loads(path.read_text())
    again = [
        r
        for r in results["rows"]
        if r.get("fmax_mhz") == "timeout"
        and (not only or any(t.lower() in r["design"].lower() for t in only))
    ]

    def rerun(row):
        cells = fmax_cells(design_folder(row["design"], work) / "build", timeout)
        print(f"   ECP5 {row['design']}: {cells.get('fmax_mhz')}", flush=True)
        return cells

    with ThreadPoolExecutor(max_workers=FMAX_JOBS) as pool:
        for row, cells in zip(again, pool.map(rerun, again), strict=True):
            row["errors"].pop("ecp5", None)
            merge_cells(row, cells)
    if again:
        results["notes"].append(
            f"ECP5 place and route rerun alone (bench/run.py --retry-ecp5) for "
            f"{', '.join(r['design'] for r in again)}, {timeout:.0f} s each: they had passed "
            f"the {FMAX_TIMEOUT:.0f} s limit beside the full run's builds."
        )
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")


def merge_cells(row: dict, cells: dict) -> None:
    """Add *cells* (e.g. :func:`fmax_cells`) to *row*, keeping the errors of both."""
    row.update({k: v for k, v in cells.items() if k != "errors"})
    row["errors"].update(cells.get("errors", {}))


def bench_one(
    name: str,
    make,
    fold,
    *,
    fmax: bool,
    hls: bool,
    work: Path = WORK,
    encoding: tuple[str, str] | None = None,
) -> dict:
    """Build one design in ``work/<name>``; returns its row (figures, seconds, errors by step).

    The build is the builder's (:mod:`gatemill.flow.steps`) in ``work/<name>/build``: import,
    then fold (to the design's folding), rtl, sim (Verilator) and synth (Yosys for
    :data:`XILINX_BOARD`), each step's seconds from its ``timings.json``. With *fmax*, the
    ECP5 columns are measured here too (:func:`fmax_cells`); :func:`main` instead runs them
    beside the next designs. *encoding*: the input's ``(input_type, input_scale)``.
    """
    from gatemill.flow.dse.fold import folding_of
    from gatemill.flow.kinds import load_ir
    from gatemill.flow.steps import BuildConfig, run_steps

    d = design_folder(name, work)
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    row: dict = {"design": name, "errors": {}}
    t0 = time.perf_counter()
    model = Path(make(d))
    row["model_seconds"] = round(time.perf_counter() - t0, 1)
    out = d / "build"
    vectors = model.parent / "vectors.npz"
    base = {
        "model": model,
        "out": out,
        "vectors": vectors if vectors.is_file() else None,
        "seed": 0,
        "board": XILINX_BOARD,
    }
    if encoding is not None:
        base["input_type"], base["input_scale"] = encoding
    imp = run_steps(BuildConfig(**base, steps=("import",))).reports["import"]
    row["golden_vs_qonnx_mismatches"] = imp["end_to_end"]["mismatches"]
    row["folding"] = folding_of(fold_design(load_ir(out / "import"), fold))
    cfg = BuildConfig(**base, folding=row["folding"], steps=("fold", "rtl"))
    man = run_steps(cfg).reports["rtl"]
    row["est_ii"] = man["estimates"]["ii_cycles"]
    row["est_latency"] = man["estimates"]["latency_cycles"]
    try:
        sim = run_steps(replace(cfg, steps=("sim",))).reports["sim"]
        row["ii"] = sim["ii_cycles"]
        row["latency"] = sim["latency_cycles"]
        row["mismatches"] = sim["mismatches"]
        row["samples_per_s"] = round(CLOCK_MHZ * 1e6 / sim["ii_cycles"])
        # both passes (full rate and stress) send every vector; simulator wall time
        sim_seconds = _timings(out)["sim"]["sim_seconds"]
        row["sim_samples_per_s"] = round(2 * sim["vectors"] / max(sim_seconds, 1e-9))
    except Exception as e:  # one step failing must not stop the table
        row["errors"]["sim"] = f"{type(e).__name__}: {e}"
    try:
        syn = run_steps(replace(cfg, steps=("synth",))).reports["synth"]
        row.update({k: syn[k] for k in ("lut", "ff", "bram", "dsp")})
    except Exception as e:
        row["errors"]["synth"] = f"{type(e).__name__}: {e}"
    times = _timings(out)
    for key, step in (
        ("import_s", "import"),
        ("rtl_s", "rtl"),
        ("sim_s", "sim"),
        ("synth_s", "synth"),
    ):
        if step in times and step not in row["errors"]:
            # the RTL column is the Verilog's time, as before the truth-table check joined it
            secs = times[step]["seconds"] - times[step].get("lut_check_seconds", 0.0)
            row[key] = round(secs, 1)
    if fmax:
        merge_cells(row, fmax_cells(out))
    if hls:
        try:
            from gatemill.flow.hls.hls4ml_bridge import run_hls4ml

            hd = d / "hls4ml"
            hd.mkdir()
            h = run_hls4ml(out, hd)
            row["hls4ml_s"] = round(h["compile_seconds"] + h["predict_seconds"], 1)
            row["hls4ml_exact"] = f"{h['elements'] - h['mismatches']}/{h['elements']}"
            if h.get("why"):
                row["errors"]["hls4ml differs"] = f"{h['divergent_layer']}: {h['why']}"
        except Exception as e:
            row["errors"]["hls4ml"] = f"{type(e).__name__}: {str(e)[:200]}"
    return row


COLUMNS = [
    ("design", "design"),
    ("import_s", "import s"),
    ("rtl_s", "RTL s"),
    ("sim_s", "sim s"),
    ("synth_s", "synth s"),
    ("ii", "ii"),
    ("latency", "latency"),
    ("samples_per_s", "samples/s @ 100 MHz"),
    ("sim_samples_per_s", "simulator samples/s"),
    ("mismatches", "HW mismatches"),
    ("lut", "LUT"),
    ("ff", "FF"),
    ("bram", "BRAM36"),
    ("dsp", "DSP"),
    ("fmax_mhz", "ECP5 Fmax MHz"),
    ("ecp5_ii", "ECP5 ii"),
    ("ecp5_cpu_s", "ECP5 CPU s"),
    ("hls4ml_s", "hls4ml s"),
    ("hls4ml_exact", "hls4ml exact"),
]

README = HERE.parent / "README.md"
README_BEGIN = "<!-- bench table: written by python bench/run.py --update-readme -->"
README_END = "<!-- end of bench table -->"


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1_000:
        return f"{value:,}"
    return str(value)


def markdown_table(results: dict) -> str:
    """The results as the README shows them: our table, the anchors' figures, the notes."""
    lines = [
        f"`python bench/run.py` ({results['mode']} run, {results['seconds']:.0f} s on "
        f"{results['machine']}): Yosys for {results['xilinx_board']} (xc7), Verilator "
        f"simulation, ECP5 Fmax from nextpnr out of context on {results['ecp5_board'] or '-'}.",
        "",
        "| " + " | ".join(head for _, head in COLUMNS) + " |",
        "|---" * len(COLUMNS) + "|",
    ]
    for row in results["rows"]:
        lines.append("| " + " | ".join(_cell(row.get(k)) for k, _ in COLUMNS) + " |")
    lines.append("")
    for row in results["rows"]:
        for step, msg in row["errors"].items():
            lines.append(f"- {row['design']}, {step}: {msg}")
    lines.extend(f"- {note}" for note in results["notes"])
    lines += ["", "Published figures of the anchors (Vivado, not Yosys):", ""]
    lines += ["| design | figure | source |", "|---|---|---|"]
    lines += [f"| {a['design']} | {a['figure']} | {a['source']} |" for a in results["anchors"]]
    return "\n".join(lines)


def update_readme(results: dict, readme: Path = README) -> None:
    """Replace the text between the README's bench markers by :func:`markdown_table`."""
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise SystemExit(f"{readme} has no bench markers ({README_BEGIN} ... {README_END})")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_BEGIN}\n{markdown_table(results)}\n{README_END}{tail}")


def print_tables(results: dict) -> None:
    """Our table, then the anchors' published figures with their sources."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=220)
    t = Table(
        title=f"gatemill bench ({results['mode']}): Yosys for {XILINX_BOARD} (xc7), "
        f"Verilator simulation",
        title_justify="left",
    )
    for _, head in COLUMNS:
        t.add_column(head, justify="left" if head == "design" else "right")
    for row in results["rows"]:
        t.add_row(*(_cell(row.get(k)) for k, _ in COLUMNS))
    console.print(t)
    for row in results["rows"]:
        for step, msg in row["errors"].items():
            console.print(f"[yellow]{row['design']}[/] {step}: {msg}")
    for note in results["notes"]:
        console.print(note)
    a = Table(title="published figures of the anchors (Vivado, not Yosys)", title_justify="left")
    for c in ("design", "figure", "source"):
        a.add_column(c)
    for r in ANCHORS:
        a.add_row(*r)
    console.print(a)


def save_partial(rows: list[dict], path: Path = WORK / "results.partial.json") -> None:
    """The rows so far, so an interrupted run keeps what it measured (results.json is
    written only by a complete run, and the README's table is made from it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1, default=str) + "\n")


def _machine() -> str:
    import os
    import platform

    return f"{os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv=None) -> int:
    """Run the benchmark; see the module documentation."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a subset (MLPs only, no ECP5)")
    p.add_argument("--no-fmax", action="store_true", help="skip the ECP5 place and route")
    p.add_argument("--no-hls4ml", action="store_true", help="skip hls4ml")
    p.add_argument("--only", action="append", help="run only designs containing this text")
    p.add_argument("--results", type=Path, default=HERE / "results.json", help="JSON written")
    p.add_argument("--update-readme", action="store_true", help="write the table into README.md")
    p.add_argument(
        "--retry-ecp5",
        action="store_true",
        help="rerun the ECP5 place and route of the --results rows that timed out, one at a "
        "time, from their build folders in bench/work; build nothing else",
    )
    p.add_argument(
        "--fmax-timeout",
        type=float,
        default=FMAX_TIMEOUT,
        help="seconds of Yosys and nextpnr a design may take on the ECP5 with --retry-ecp5",
    )
    p.add_argument(
        "--readme-only",
        action="store_true",
        help="write the README table from the existing --results file, run nothing",
    )
    args = p.parse_args(argv)
    if args.readme_only:
        update_readme(json.loads(args.results.read_text()))
        print(f"updated {README} from {args.results}")
        return 0
    if args.retry_ecp5:
        retry_ecp5(args.results, timeout=args.fmax_timeout, only=args.only)
        if args.update_readme:
            update_readme(json.loads(args.results.read_text()))
        return 0
    fmax = not (args.quick or args.no_fmax)
    notes = []
    if not fmax:
        notes.append(
            "ECP5 Fmax '-': place and route skipped (--quick or --no-fmax); the full run "
            f"places and routes the accelerator core for {ECP5_BOARD} with nextpnr-ecp5."
        )
    rows = []
    t_all = time.perf_counter()
    # the ECP5 jobs are Yosys and nextpnr processes: threads only wait for them
    pool = ThreadPoolExecutor(max_workers=FMAX_JOBS) if fmax else None
    pending = {}
    order = [*RUN_FIRST, *(n for n in DESIGNS if n not in RUN_FIRST)]
    for name in order:
        design = DESIGNS[name]
        if args.quick and not design.quick:
            continue
        if args.only and not any(s.lower() in name.lower() for s in args.only):
            continue
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            row = bench_one(
                name,
                design.make,
                design.fold,
                fmax=False,
                hls=design.hls4ml and not args.no_hls4ml,
                encoding=design.encoding,
            )
        except Exception as e:
            traceback.print_exc()
            row = {"design": name, "errors": {"build": f"{type(e).__name__}: {e}"}}
        row["total_s"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(f"   {row['total_s']} s", flush=True)
        out = design_folder(name) / "build"
        if pool is not None and (out / "rtl" / "manifest.json").exists():
            pending[name] = pool.submit(fmax_cells, out)
            pending[name].add_done_callback(
                lambda f, n=name: print(f"   ECP5 {n}: {f.result().get('fmax_mhz')}", flush=True)
            )
        save_partial(rows)
    rows.sort(key=lambda r: list(DESIGNS).index(r["design"]))  # the table's order
    if pool is not None:
        if pending:
            print(f"== waiting for {sum(not f.done() for f in pending.values())} ECP5 jobs")
        pool.shutdown(wait=True)
        for row in rows:
            if row["design"] in pending:
                merge_cells(row, pending[row["design"]].result())
    no_hls = [r["design"] for r in rows if not DESIGNS[r["design"]].hls4ml]
    if no_hls and not args.no_hls4ml:
        notes.append(
            f"hls4ml not run on {', '.join(no_hls)}: they take floats before their first "
            "quantizer and are built with a stated input encoding (--input-type UINT8 "
            "--input-scale 1/255), which the hls4ml bridge does not pass on."
        )
    if fmax:
        notes.append(
            f"The ECP5 jobs ran beside the next designs' steps ({FMAX_JOBS} at a time, on "
            "2 cores): the step seconds are wall time on a shared machine, the ECP5 column is "
            "CPU time of Yosys and nextpnr."
        )
    results = {
        "mode": "quick" if args.quick else ("partial" if args.only else "full"),
        "seconds": round(time.perf_counter() - t_all, 1),
        "machine": _machine(),
        "xilinx_board": XILINX_BOARD,
        "ecp5_board": ECP5_BOARD if fmax else None,
        "clock_mhz": CLOCK_MHZ,
        "rows": rows,
        "anchors": [dict(zip(("design", "figure", "source"), r, strict=True)) for r in ANCHORS],
        "notes": notes,
    }
    args.results.write_text(json.dumps(results, indent=1, default=str) + "\n")
    print_tables(results)
    print(f"total {results['seconds']} s; wrote {args.results}")
    if args.update_readme:
        update_readme(results)
        print(f"updated {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
