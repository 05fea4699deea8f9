"""Calibration of the resource estimate: Yosys on a set of designs at several foldings.

``python bench/calibrate.py [--only TEXT] [--workers N] [--reuse] [--fit-only] [--fit RES]``
builds every design of :data:`DESIGNS` (the digits MLPs, CNN and LUT network, trained;
random-weight Brevitas MLPs of the jet-tagging shape at 1 to 8 bits and two small fully
parallel ones), folds each for a few target initiation intervals
(:func:`gatemill.flow.dse.fold.fold_for_ii`; not the fully parallel foldings of the large
models, which keep Yosys busy for many minutes),
generates the RTL and synthesizes it with Yosys for the pynq-z2 part (``synth_xilinx -family
xc7``; every stage is its own hierarchy boundary, so each unit, FIFO and width converter has
its own figures), two Yosys processes side by side.

It records, per stage, the layer's kind, shape, bit widths, PE, SIMD, its ``resources()``
figures, the estimate's features (:func:`gatemill.flow.dse.cost.stage_features`), Yosys's
LUT/FF/BRAM/DSP and how Yosys mapped each memory (from its log), then fits the estimate's
coefficients (:func:`fit`: non-negative least squares per stage kind, relative errors) and
checks them by leaving one design out at a time. ``bench/calibration.json`` holds the
measurements, the fitted coefficients and the errors; a Rich table prints the totals.

``--fit-only`` refits from the stored measurements (the folded IRs stay in
``bench/work/calibrate``), without Yosys; ``--fit lut`` refits the LUT coefficients alone (the
flip-flop ones stay those of ``flow/dse/cost.py``, and their held-out errors are then theirs,
not left-one-out); ``--reuse`` synthesizes only the points whose folder does not hold the
same IR and RTL already; ``--only`` measures some designs and keeps the others' stored
points. The table says whether the fitted coefficients are the ones in ``flow/dse/cost.py``;
paste them there after a new calibration.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import typing
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import date
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "calibrate"
OUT = HERE / "calibration.json"
BOARD = "pynq-z2"
FAMILY = "xc7"
ACC = Path("/tmp/acc")  # trained digits models, if another run left them (read only)


def _random_mlp(
    sizes, path: Path, *, wbits: int, abits: int, in_bits: int, seed: int = 0, zeros: float = 0
):
    """A random-weight Brevitas MLP exported as QONNX; with *zeros*, that fraction of each
    layer's weights (the smallest in magnitude) set to zero, as pruning leaves them."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    import torch
    from brevitas_models import export, mlp

    model = mlp(sizes, wbits=wbits, abits=abits, in_bits=in_bits, seed=seed)
    with torch.no_grad():
        for m in model.modules():
            if zeros and isinstance(getattr(m, "weight", None), torch.nn.Parameter):
                w = m.weight
                if w.dim() == 2:
                    cut = w.abs().flatten().kthvalue(int(zeros * w.numel())).values
                    w[w.abs() <= cut] = 0
    export(model, (sizes[0],), path)
    return path


def _digits(kind: str, tag: str, d: Path, **kw) -> Path:
    """A zoo model trained on its default data (the digits; the 1-D CNN's generated pulses),
    seed 0: the one in /tmp/acc/<tag> if another run left one trained with the same options,
    else trained here (seconds)."""
    ready = ACC / tag / "train"
    if (ready / "model.onnx").is_file():
        done = json.loads((ready / "train.json").read_text())["model"]
        want = {"kind": kind, "wbits": 4, "abits": 4, "in_bits": 8, "seed": 0, **kw}
        if all(done.get(k) == v for k, v in want.items()):
            return ready / "model.onnx"
    from gatemill.flow.zoo.train import train

    train(kind, out_dir=d / "train", progress=False, seed=0, **kw)
    return d / "train" / "model.onnx"


def _bnn_pynq(name: str, d: Path) -> Path:
    """A ``brevitas_examples.bnn_pynq`` network exported as it comes (tests/test_bnn_pynq.py)."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from test_bnn_pynq import export_as_they_come

    return Path(export_as_they_come(name, d / f"{name}.onnx"))


class Cal(typing.NamedTuple):
    """A design of the calibration: how to make the model (folder -> .onnx), the target
    initiation intervals in cycles, fold *fields* set on every layer that has them
    (:func:`with_fields`), and the input's encoding (``input_type``, ``input_scale``) for
    a model whose input reaches its first quantizer through a pre-processing."""

    make: typing.Callable[[Path], Path]
    targets: list[int]
    fields: dict | None = None
    encoding: tuple[str, str] | None = None


JET = [16, 64, 32, 32, 5]
UINT8 = ("UINT8", "1/255")
LUT_PRODUCTS = {"mul": "lut"}

DESIGNS = {
    "digits mlp w4a4": Cal(lambda d: _digits("mlp", "mlp_w4a4", d), [8, 32, 128, 512]),
    "digits mlp w4a4 LUT products": Cal(
        lambda d: _digits("mlp", "mlp_w4a4", d), [10, 32, 128], LUT_PRODUCTS
    ),
    "digits mlp w1a1": Cal(
        lambda d: _digits("mlp", "mlp_w1a1", d, wbits=1, abits=1, in_bits=1),
        [8, 32, 128],
    ),
    "digits mlp w1a1 in8": Cal(
        lambda d: _digits("mlp", "mlp_w1a1", d, wbits=1, abits=1, in_bits=8),
        [32, 128],
    ),
    "digits cnn w4a4": Cal(lambda d: _digits("cnn", "cnn_w4a4", d), [576, 2304]),
    "digits residual cnn": Cal(lambda d: _digits("rescnn", "rescnn", d, epochs=3), [576]),
    "digits deep sets": Cal(lambda d: _digits("deepsets", "deepsets", d, epochs=3), [192]),
    "pulses cnn1d": Cal(lambda d: _digits("cnn1d", "cnn1d", d, epochs=3), [192]),
    "jet w6a6": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=6, abits=6, in_bits=8),
        [32, 64, 128, 512],
    ),
    "jet w6a6 LUT products": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=6, abits=6, in_bits=8),
        [64, 256],
        LUT_PRODUCTS,
    ),
    "jet w2a2": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=2, abits=2, in_bits=8),
        [16, 64, 256],
    ),
    "jet w3a3": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=3, abits=3, in_bits=8),
        [32, 128],
    ),
    "jet w8a4": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=8, abits=4, in_bits=8),
        [64, 256],
    ),
    "jet w4a4 in4": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=4, abits=4, in_bits=4),
        [32, 128],
    ),
    "jet w1a2": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=1, abits=2, in_bits=8),
        [32, 128],
    ),
    # 8-bit inputs times +-1 weights: each lane's negation is shared by the rows (sign_lane)
    "jet w1a1 in8": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=1, abits=1, in_bits=8), [8, 64]
    ),
    "digits lutnet": Cal(lambda d: _digits("lutnet", "lutnet", d, epochs=10), [1]),
    "jet w6a6 90 % zeros (parallel)": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=6, abits=6, in_bits=8, zeros=0.9), [1]
    ),
    "jet w4a4 80 % zeros (parallel)": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=4, abits=4, in_bits=8, zeros=0.8), [1]
    ),
    "jet w4a4 60 % zeros (parallel)": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=4, abits=4, in_bits=8, zeros=0.6), [1]
    ),
    "jet w3a3 80 % zeros (parallel)": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=3, abits=3, in_bits=8, zeros=0.8), [1]
    ),
    # dense at one sample per clock, every product by a constant in shift-and-add logic (on
    # DSPs, the fold's default, Yosys took 75,720 LUT and 2,550 DSP48s, 27 % more LUTs than
    # the estimate's terms can fit: not a calibration point until constant products on DSPs
    # are modeled)
    "jet w6a6 dense LUT products (parallel)": Cal(
        lambda d: _random_mlp(JET, d / "m.onnx", wbits=6, abits=6, in_bits=8), [1], LUT_PRODUCTS
    ),
    "small w4a4 (parallel)": Cal(
        lambda d: _random_mlp([16, 16, 8, 4], d / "m.onnx", wbits=4, abits=4, in_bits=8),
        [1, 4],
    ),
    "small w3a2 in4 (parallel)": Cal(
        lambda d: _random_mlp([24, 16, 8], d / "m.onnx", wbits=3, abits=2, in_bits=4, seed=1),
        [1, 8],
    ),
    "bnn_pynq TFC w1a1": Cal(lambda d: _bnn_pynq("tfc_1w1a", d), [64, 256], None, UINT8),
    "bnn_pynq TFC w2a2": Cal(lambda d: _bnn_pynq("tfc_2w2a", d), [128], None, UINT8),
    "bnn_pynq SFC w1a1": Cal(lambda d: _bnn_pynq("sfc_1w1a", d), [256], None, UINT8),
    "bnn_pynq LFC w1a1": Cal(lambda d: _bnn_pynq("lfc_1w1a", d), [256], None, UINT8),
    "bnn_pynq CNV w1a1": Cal(lambda d: _bnn_pynq("cnv_1w1a", d), [10368], None, UINT8),
}
"""name -> :class:`Cal`.

8-bit activations (255 thresholds per channel) are left out: a 5 kbit-wide threshold ROM in
logic per fold keeps Yosys busy for more than 10 minutes per point. The bnn_pynq networks
(random weights, as exported by brevitas_examples) are folded for their lowest rates only:
LFC at BNN-PYNQ's measured 356,633 samples/s, CNV at its 9,150.
"""


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


_MAP = re.compile(
    r"^(?:mapping memory (?P<a>\S+) via \$__XILINX_(?P<how>\w+?)_?$"
    r"|using FF mapping for memory (?P<b>\S+))",
    re.MULTILINE,
)


def memory_maps(out: Path, top: str = "gatemill_top") -> dict[str, dict[str, str]]:
    """``{stage: {memory: how}}`` from the Yosys logs: ``BLOCKRAM_SDP``, ``LUTRAM_SP``, ...
    or ``logic`` (Yosys's "FF mapping": flip-flops and LUTs)."""
    maps: dict[str, dict[str, str]] = {}
    for log in sorted((out / "synth").glob("yosys_*.log")):
        for m in _MAP.finditer(log.read_text(errors="replace")):
            name = m.group("a") or m.group("b")
            how = m.group("how") or "logic"
            parts = name.split(".")
            if len(parts) >= 4 and parts[0] == top:
                maps.setdefault(parts[2], {})[".".join(parts[3:])] = how
    return maps


def _dtype(dt) -> dict:
    return {"name": dt.name, "bits": int(dt.bitwidth()), "signed": bool(dt.signed())}


def layer_record(layer) -> dict:
    """Kind, shape, bit widths and folding of one IR layer."""
    rec: dict = {"kind": layer.kind, "in_shape": list(layer.in_shape)}
    rec["out_shape"] = list(layer.out_shape)
    for attr in ("in_dtype", "out_dtype", "w_dtype", "acc_dtype", "dtype"):
        if getattr(layer, attr, None) is not None:
            rec[attr] = _dtype(getattr(layer, attr))
    for attr in ("mh", "mw", "pe", "simd", "binary", "spatial"):
        if hasattr(layer, attr):
            v = getattr(layer, attr)
            rec[attr] = list(v) if isinstance(v, tuple) else v
    if getattr(layer, "thresholds", None) is not None:
        rec["levels"] = int(layer.thresholds.shape[1])
    return rec


def stage_record(stage) -> dict:
    """The parameters of one stage of :func:`gatemill.hdl.plan.plan`."""
    rec = {"name": stage.name, "kind": stage.kind}
    if stage.kind == "Fifo":
        rec.update(depth=stage.depth, lanes=stage.in_lanes, bits=int(stage.dtype.bitwidth()))
    elif stage.kind == "Skid":
        rec.update(lanes=stage.in_lanes, bits=int(stage.dtype.bitwidth()))
    elif stage.kind == "WidthConverter":
        rec.update(
            n_in=stage.in_lanes,
            n_out=stage.out_lanes,
            bits=int(stage.layer.in_dtype.bitwidth()),
            per_sample=stage.per_sample,
        )
    elif stage.kind == "Fork":
        rec.update(outputs=stage.outputs, lanes=stage.in_lanes, bits=int(stage.dtype.bitwidth()))
    else:
        rec["layer"] = layer_record(stage.layer)
    return rec


def _same_ir(a, b) -> bool:
    """Do two IRs have the same layers, parameters and arrays (folding included)?"""
    import dataclasses

    if len(a.layers) != len(b.layers):
        return False
    for la, lb in zip(a.layers, b.layers, strict=True):
        if type(la) is not type(lb):
            return False
        for f in dataclasses.fields(la):
            va, vb = getattr(la, f.name), getattr(lb, f.name)
            if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
                if va is None or vb is None or not np.array_equal(va, vb):
                    return False
            elif va != vb:
                return False
    return True


def _same_rtl(ir, out: Path) -> bool:
    """Is the RTL gatemill makes of *ir* now the RTL synthesized in *out*? A template change
    leaves the IR as it was."""
    from gatemill.flow.outdir import prepare_out_dir
    from gatemill.flow.rtl_step import run_rtl

    with tempfile.TemporaryDirectory() as tmp:
        fresh = prepare_out_dir(Path(tmp) / "rtl_check")
        run_rtl(ir, fresh)
        top = Path("rtl") / "gatemill_top.v"
        return (fresh / top).read_bytes() == (out / top).read_bytes()


def with_fields(ir, fields: dict):
    """*ir* with *fields* set on every layer that has them all: ``mul`` (``"dsp"`` packs
    as many products per DSP48E1 as fit, ``"lut"`` none) only where products multiply,
    ``pipeline`` everywhere."""
    from gatemill.flow.dse.fold import apply_folding

    folding = {}
    for layer in ir.layers:
        if not set(fields) <= set(layer.fold_fields):
            continue
        f = dict(fields)
        if "mul" in f:
            if not layer.multiplies:
                f.pop("mul")
            else:
                f["pack"] = layer.max_pack(FAMILY) if f["mul"] == "dsp" else 1
        folding[layer.name] = f
    return apply_folding(ir, folding, f"calibrate {fields}")


def measure_point(
    model_ir: str, target: int, out_dir: str, reuse: bool = False, fields: dict | None = None
) -> dict:
    """Fold the imported IR for *target* cycles (the pynq-z2's pipelines and multipliers,
    :func:`gatemill.flow.dse.fold.for_device`, then *fields* on every layer that has them),
    generate the RTL, synthesize it: the figures of every stage, and of the whole design.
    Runs in a worker process. With *reuse*, a folder already synthesized for the same
    folding and RTL is read instead."""
    from gatemill.flow.boards import load_board
    from gatemill.flow.dse.fold import apply_folding, fold_for_ii, for_device
    from gatemill.flow.kinds import load_ir, save_ir
    from gatemill.flow.outdir import prepare_out_dir
    from gatemill.flow.rtl_step import run_rtl
    from gatemill.flow.synth import run_synth

    out = Path(out_dir)
    board = load_board(BOARD)
    ir = for_device(load_ir(model_ir), board.clock_mhz, board.family)
    ir = with_fields(apply_folding(ir, fold_for_ii(ir, target), "calibrate"), fields or {})
    done = (out / "synth.json").is_file() and (out / "synth_times.json").is_file()
    if reuse and done and _same_ir(load_ir(out), ir) and _same_rtl(ir, out):
        return point_record(out, target, None)
    shutil.rmtree(out, ignore_errors=True)
    prepare_out_dir(out)
    save_ir(ir, out)
    t0 = time.perf_counter()
    run_rtl(ir, out)
    rtl_s = time.perf_counter() - t0
    rep = run_synth(out, load_board(BOARD), jobs=1)
    # the Yosys times are in the returned report, not in synth.json (the builder puts them in
    # timings.json)
    (out / "synth_times.json").write_text(
        json.dumps({k: rep[k] for k in ("seconds", "cpu_seconds")}) + "\n"
    )
    return point_record(out, target, round(rtl_s, 2))


def point_record(out: Path, target: int, rtl_s: float | None) -> dict:
    """The record of one synthesized point folder (IR, manifest, ``synth.json``, logs)."""
    from gatemill.flow.dse.fold import folding_of
    from gatemill.flow.kinds import load_ir
    from gatemill.hdl.plan import layer_of_stages, plan

    ir = load_ir(out)
    man = json.loads((out / "rtl" / "manifest.json").read_text())
    rep = json.loads((out / "synth.json").read_text())
    rep.update(json.loads((out / "synth_times.json").read_text()))
    maps = memory_maps(out)
    synth = {s["name"]: s for s in rep["stages"]}
    owner = layer_of_stages(man["stages"])
    stages = []
    for st in plan(ir):
        rec = stage_record(st)
        rec["owner"] = owner.get(st.name)
        fig = synth.get(st.name)
        rec["yosys"] = (
            None
            if fig is None
            else {k: fig[k] for k in ("lut", "ff", "bram", "dsp", "carry", "lutram", "muxf")}
        )
        rec["memories"] = maps.get(st.name, {})
        stages.append(rec)
    return {
        "target_ii": target,
        "folding": folding_of(ir),
        "ii_cycles": man["estimates"]["ii_cycles"],
        "dir": str(out.relative_to(HERE)),
        "yosys": {k: rep[k] for k in ("lut", "ff", "bram", "dsp", "carry", "lutram")},
        "glue": {k: rep["glue"][k] for k in ("lut", "ff", "bram", "dsp")},
        "stages": stages,
        "rtl_seconds": rtl_s,
        "synth_seconds": rep["seconds"],
        "cpu_seconds": rep["cpu_seconds"],
        "yosys_version": rep["tool_version"],
    }


def measure(names: list[str], workers: int, say, reuse: bool = False) -> list[dict]:
    """Import every design once, then synthesize its points in *workers* processes."""
    from gatemill.flow.import_step import run_import

    jobs = []
    for name in names:
        design = DESIGNS[name]
        d = WORK / _slug(name)
        d.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        model = design.make(d)
        imp = d / "import"
        shutil.rmtree(imp, ignore_errors=True)
        input_type, input_scale = design.encoding or (None, None)
        run_import(model, imp, seed=0, input_type=input_type, input_scale=input_scale)
        say(f"{name}: model and import in {time.perf_counter() - t0:.1f} s")
        for t in design.targets:
            jobs.append((name, str(imp), t, str(d / f"ii{t}"), design.fields))
    points = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(measure_point, *j[1:4], reuse, j[4]): j for j in jobs}
        for fut in as_completed(futures):
            name, _, t, *_ = futures[fut]
            try:
                p = fut.result()
            except Exception as e:  # one failed point must not lose the others
                say(f"{name} ii {t}: FAILED {type(e).__name__}: {e}")
                continue
            p["design"] = name
            points.append(p)
            say(f"{name} ii {t}: {p['yosys']['lut']} LUT, Yosys {p['synth_seconds']} s")
    order = {n: i for i, n in enumerate(DESIGNS)}
    return sorted(points, key=lambda p: (order[p["design"]], p["target_ii"]))


def stage_rows(points: list[dict]) -> list[dict]:
    """Every measured stage with its features, from the folded IR kept in its point folder."""
    from gatemill.flow.dse.cost import glue_estimate, stage_features
    from gatemill.flow.kinds import load_ir
    from gatemill.hdl.plan import plan

    rows = []
    for p in points:
        ir = load_ir(HERE / p["dir"])
        glue = glue_estimate(ir)
        measured = {s["name"]: s for s in p["stages"]}
        for st in plan(ir):
            m = measured.get(st.name)
            if m is None or m["yosys"] is None:
                continue
            rows.append(
                {
                    "design": p["design"],
                    "ii": p["target_ii"],
                    "name": st.name,
                    "features": stage_features(st),
                    "yosys": m["yosys"],
                    "memories": m["memories"],
                    "glue": glue,
                }
            )
    return rows


RIDGE = 0.3
"""Pull of each coefficient toward its prior (in units of a whole design's relative error):
the designs do not pin every term on their own, and a term no design exercises keeps its
measured or earlier value. The prior is stored in ``calibration.json`` (``"prior"``), so a
refit of the same measurements gives the same coefficients; a file without one takes
``flow/dse/cost.py``'s."""


FITTED = ("lut", "ff")
"""The resources whose coefficients are fitted (block RAMs and DSPs are counted exactly)."""


def _columns(rows: list[dict], res: str):
    """The fit's linear system for *res* (``lut`` or ``ff``): per point (design, ii), the
    summed features of its stages per ``(kind, term)``, Yosys's total over those stages,
    and what the estimate adds without coefficients (LUTRAM sites, the top level's glue)."""
    cols = sorted(
        {(r["features"].coefficient_kind, t) for r in rows for t in getattr(r["features"], res)}
    )
    keys = sorted({(r["design"], r["ii"]) for r in rows})
    at, ci = {k: i for i, k in enumerate(keys)}, {c: j for j, c in enumerate(cols)}
    x, y, fixed = np.zeros((len(keys), len(cols))), np.zeros(len(keys)), np.zeros(len(keys))
    for r in rows:
        i = at[(r["design"], r["ii"])]
        for t, v in getattr(r["features"], res).items():
            x[i, ci[(r["features"].coefficient_kind, t)]] += v
        y[i] += r["yosys"][res]
        if res == "lut":
            fixed[i] += sum(m.lutram for m in r["features"].memories.values())
    for r in {(r["design"], r["ii"]): r for r in rows}.values():
        fixed[at[(r["design"], r["ii"])]] += r["glue"][res]
    return cols, x, y, fixed


def fit(rows: list[dict], prior: dict, resources: tuple[str, ...] = FITTED) -> dict:
    """``{resource: {kind: {term: coefficient}}}`` for ``lut`` and ``ff``: for each of
    *resources* (:data:`FITTED`), non-negative least squares of the relative error of each
    point's total (a design at one folding), with :data:`RIDGE` toward *prior* (the same
    form); terms no row has, and the other resources, keep the prior's. Fitting whole
    designs rather than stages keeps small stages with large features (a standalone
    threshold stage of a few LUTs) from pulling the shared terms."""
    from scipy.optimize import nnls

    coef = dict(prior)
    for res in resources:
        prior_res = prior[res]
        cols, x, y, fixed = _columns(rows, res)
        p = np.array([prior_res.get(k, {}).get(t, 0.0) for k, t in cols])
        w = 1 / np.maximum(y, 1)
        a = np.vstack([x * w[:, None], RIDGE * np.eye(len(cols))])
        b = np.concatenate([(y - fixed) * w, RIDGE * p])
        c = nnls(a, b)[0] if cols else []
        out = {k: dict(terms) for k, terms in prior_res.items()}
        for (k, t), v in zip(cols, c, strict=True):
            out.setdefault(k, {})[t] = round(float(v), 3)
        coef[res] = {
            k: {t: v for t, v in sorted(terms.items()) if v >= 5e-4} for k, terms in out.items()
        }
    return coef


def totals(rows: list[dict], coef: dict) -> dict:
    """``{(design, ii): {resource: estimate}}``: the stages' estimates and the glue."""
    from gatemill.flow.dse.cost import estimate

    out: dict = {}
    for r in rows:
        key = (r["design"], r["ii"])
        if key not in out:
            out[key] = dict(r["glue"])
        for k, v in estimate(r["features"], coef).items():
            out[key][k] += v
    return out


def memory_agreement(rows: list[dict]) -> dict:
    """How often :func:`gatemill.flow.dse.cost.map_memory` picks what Yosys picked. A ROM
    Yosys makes of a multiplexer of constants (``proc_rom``: the constant thresholds a
    binary search selects) and leaves in logic is logic to the estimate as well: not
    counted."""
    kinds = {"logic": "logic", "BLOCKRAM": "bram", "LUTRAM": "lutram"}
    agree, total, wrong = 0, 0, []
    for r in rows:
        if r["features"].kind == "LutLayer":  # one truth table per neuron, always logic
            continue
        for name, how in r["memories"].items():
            pred = r["features"].memories.get(name)
            got = kinds[how.split("_")[0]]
            if pred is None and got == "logic" and "proc_rom" in name:
                continue
            total += 1
            if pred is not None and pred.how == got:
                agree += 1
            else:
                wrong.append(
                    f"{r['design']} ii {r['ii']} {r['name']}.{name}: "
                    f"Yosys {how}, estimate {pred.how if pred else None}"
                )
    return {"agree": agree, "total": total, "wrong": wrong}


def _err(est: float, real: float) -> float:
    return (est - real) / max(real, 1)


def evaluate(
    points: list[dict], rows: list[dict], prior: dict, resources: tuple[str, ...] = FITTED
) -> tuple[dict, list[dict]]:
    """Fit the *resources* on everything, and once per design on the other designs (held out),
    toward *prior*; the coefficients and one row per point with the fitted and held-out
    estimates (a resource not fitted keeps the prior's coefficients in both)."""
    coef = fit(rows, prior, resources)
    fitted = totals(rows, coef)
    held: dict = {}
    own: dict = {}  # design -> stage kinds no other design has (fitted on the design itself)
    for design in {r["design"] for r in rows}:
        rest = [r for r in rows if r["design"] != design]
        c = fit(rest, prior, resources)
        kinds = {r["features"].coefficient_kind for r in rest}
        mine = {r["features"].coefficient_kind for r in rows if r["design"] == design}
        own[design] = sorted(mine - kinds)
        for res in ("lut", "ff"):
            for k in own[design]:
                c[res][k] = coef[res].get(k, {})
        held.update(totals([r for r in rows if r["design"] == design], c))
    table = []
    for p in points:
        key = (p["design"], p["target_ii"])
        if key not in fitted:
            continue
        glue = p["glue"]
        y = p["yosys"]
        row = {"design": p["design"], "ii": p["ii_cycles"], "target_ii": p["target_ii"]}
        row["yosys"] = {k: y[k] for k in ("lut", "ff", "bram", "dsp")}
        row["fitted"] = {k: round(v, 1) for k, v in fitted[key].items()}
        row["held_out"] = {k: round(v, 1) for k, v in held[key].items()}
        row["glue_lut"] = glue["lut"]
        row["synth_seconds"] = p["synth_seconds"]
        if own[p["design"]]:
            row["held_out_own_kinds"] = own[p["design"]]
        row["lut_error"] = {
            "fitted": round(_err(fitted[key]["lut"], y["lut"]), 3),
            "held_out": round(_err(held[key]["lut"], y["lut"]), 3),
        }
        row["ff_error"] = {
            "fitted": round(_err(fitted[key]["ff"], y["ff"]), 3),
            "held_out": round(_err(held[key]["ff"], y["ff"]), 3),
        }
        table.append(row)
    return coef, table


def summary(table: list[dict]) -> dict:
    """Mean and largest absolute relative error of the total LUTs (and FFs), per estimate."""
    out = {}
    for res, keys in (("lut", ("fitted", "held_out")), ("ff", ("fitted", "held_out"))):
        for k in keys:
            e = [abs(r[f"{res}_error"][k]) for r in table]
            out[f"{res}_{k}"] = {
                "mean_abs": round(float(np.mean(e)), 3),
                "max_abs": round(float(np.max(e)), 3),
            }
    strict = [abs(r["lut_error"]["held_out"]) for r in table if not r.get("held_out_own_kinds")]
    if strict:
        out["lut_held_out_all_kinds_held_out"] = {
            "mean_abs": round(float(np.mean(strict)), 3),
            "max_abs": round(float(np.max(strict)), 3),
            "points": len(strict),
        }
    out["dsp_exact"] = sum(r["fitted"]["dsp"] == r["yosys"]["dsp"] for r in table)
    out["bram_exact"] = sum(r["fitted"]["bram"] == r["yosys"]["bram"] for r in table)
    out["points"] = len(table)
    out["designs"] = len({r["design"] for r in table})
    return out


def print_table(table: list[dict], summ: dict, coef: dict, mem: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=160)
    t = Table(
        title="estimate against Yosys (synth_xilinx -family xc7), whole designs",
        title_justify="left",
    )
    for c in (
        "design",
        "ii",
        "LUT",
        "fitted",
        "held out",
        "FF",
        "held out FF",
        "BRAM",
        "est",
        "DSP",
        "est",
        "Yosys s",
    ):
        t.add_column(c, justify="left" if c == "design" else "right")
    for r in table:
        y, f, h, e = r["yosys"], r["fitted"], r["held_out"], r["lut_error"]
        t.add_row(
            r["design"],
            str(r["ii"]),
            str(y["lut"]),
            f"{f['lut']:.0f} ({e['fitted']:+.0%})",
            f"{h['lut']:.0f} ({e['held_out']:+.0%})" + ("*" if r.get("held_out_own_kinds") else ""),
            str(y["ff"]),
            f"{h['ff']:.0f} ({r['ff_error']['held_out']:+.0%})",
            str(y["bram"]),
            f"{f['bram']:g}",
            str(y["dsp"]),
            str(f["dsp"]),
            f"{r['synth_seconds']:.0f}",
        )
    console.print(t)
    console.print(
        "* the design is the only one with some stage kinds (held out: their terms fitted on "
        "it): "
        + ", ".join(
            sorted(
                {
                    f"{r['design']}: {'/'.join(r['held_out_own_kinds'])}"
                    for r in table
                    if r.get("held_out_own_kinds")
                }
            )
        )
    )
    s = Table(title="absolute relative error of the total (mean / max)", title_justify="left")
    for c in ("estimate", "LUT mean", "LUT max", "FF mean", "FF max"):
        s.add_column(c)
    for k in ("fitted", "held_out"):
        lut = summ[f"lut_{k}"]
        ff = summ.get(f"ff_{k}", {"mean_abs": None, "max_abs": None})
        s.add_row(
            k.replace("_", " "),
            f"{lut['mean_abs']:.1%}",
            f"{lut['max_abs']:.1%}",
            "-" if ff["mean_abs"] is None else f"{ff['mean_abs']:.1%}",
            "-" if ff["max_abs"] is None else f"{ff['max_abs']:.1%}",
        )
    console.print(s)
    strict = summ.get("lut_held_out_all_kinds_held_out")
    if strict:
        console.print(
            f"held out, the {strict['points']} points without a stage kind of their own: LUT "
            f"{strict['mean_abs']:.1%} mean, {strict['max_abs']:.1%} max"
        )
    console.print(
        f"{summ['points']} points of {summ['designs']} designs; DSP exact on "
        f"{summ['dsp_exact']}, BRAM exact on {summ['bram_exact']}; memory mapping as "
        f"Yosys on {mem['agree']}/{mem['total']} memories"
    )
    for w in mem["wrong"]:
        console.print(f"  [yellow]{w}[/]")
    from gatemill.flow.dse import cost

    same = coef["lut"] == cost.LUT_COEF and coef["ff"] == cost.FF_COEF
    console.print(
        "coefficients "
        + ("(the same as flow/dse/cost.py's):" if same else "(paste into flow/dse/cost.py):")
    )
    for name, table in (("LUT_COEF", coef["lut"]), ("FF_COEF", coef["ff"])):
        console.print(f"{name} = {{")
        for kind, terms in table.items():
            console.print(f"    {kind!r}: {terms!r},".replace("'", '"'), soft_wrap=True)
        console.print("}")


def main(argv=None) -> int:
    """Measure (or load), fit, evaluate, write ``calibration.json``, print the tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", help="measure only designs containing this text")
    p.add_argument("--workers", type=int, default=2, help="Yosys processes side by side")
    p.add_argument("--fit-only", action="store_true", help="refit the stored measurements")
    p.add_argument(
        "--reuse", action="store_true", help="read points already synthesized in bench/work"
    )
    p.add_argument("--out", type=Path, default=OUT, help="JSON written (and read by --fit-only)")
    p.add_argument(
        "--fit",
        choices=FITTED,
        action="append",
        help="fit only these resources' coefficients (the others keep flow/dse/cost.py's)",
    )
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    from gatemill.flow.dse import cost

    old = json.loads(args.out.read_text()) if args.out.is_file() else {}
    prior = old.get("prior") or {"lut": cost.LUT_COEF, "ff": cost.FF_COEF}
    if args.fit_only:
        doc = json.loads(args.out.read_text())
        points = doc["points"]
    else:
        names = [
            n for n in DESIGNS if not args.only or any(s.lower() in n.lower() for s in args.only)
        ]
        points = measure(names, args.workers, lambda m: print(m, flush=True), args.reuse)
        if args.only and args.out.is_file():  # keep the other designs' measurements
            kept = [
                p for p in json.loads(args.out.read_text())["points"] if p["design"] not in names
            ]
            points = sorted(
                kept + points, key=lambda p: (list(DESIGNS).index(p["design"]), p["target_ii"])
            )
        doc = {
            "date": date.today().isoformat(),
            "board": BOARD,
            "yosys": points[0]["yosys_version"] if points else None,
            "measure_seconds": round(time.perf_counter() - t0, 1),
            "points": points,
        }
    rows = stage_rows(points)
    coef, table = evaluate(points, rows, prior, tuple(args.fit or FITTED))
    mem = memory_agreement(rows)
    summ = summary(table)
    doc.update(
        prior=prior,
        coefficients=coef,
        summary=summ,
        memory_mapping={"agree": mem["agree"], "total": mem["total"], "wrong": mem["wrong"]},
        totals=table,
        convention="relative error (estimate - yosys) / yosys of the whole design; held out: "
        "fitted without the design's own points (leave one design out)",
    )
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print_table(table, summ, coef, mem)
    print(f"{time.perf_counter() - t0:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
