"""The hls4ml peer: the same QONNX model through hls4ml, measured against the golden model.

hls4ml converts the model's own QONNX graph (not gatemill's IR), so this is an independent
implementation of the same network. Its ``compile()`` + ``predict()`` is a bit-accurate C++
emulation built with g++; the figures land in ``DIR/hls/hls4ml.json`` beside gatemill's
``csim.json``.

Two preparations make hls4ml 1.3.0 accept the Brevitas export, both exact:

- the usual qonnx cleanup, channels-last conversion and ``GemmToMatMul`` (hls4ml's documented
  QONNX flow);
- the quantized bias of the last layer (a ``Quant`` node on a constant, feeding ``Add``) is
  folded into its float value: hls4ml cannot propagate a quantized bias through ``Add``
  ("Failed to propagate quantization bias down Add node") and then fails on the graph.

Precision. hls4ml represents the real-valued parts of the graph (BatchNorm, float scales) in
fixed point; they are exact only with enough fraction bits. Every layer therefore gets one
wide type chosen from the IR: ``fixed<64, I>`` with ``I`` the widest IR accumulator plus 8 guard
bits (at least 24), leaving ``64 - I`` fraction bits. The quantizers keep the precision
hls4ml derives from the QONNX bit widths, so their rounding is the model's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ..errors import GatemillError
from ..ir import IRGraph
from ..kinds import load_ir

ACCUMULATING = ("Dense", "Conv1D", "Conv2D", "PointwiseConv1D", "PointwiseConv2D")


@contextlib.contextmanager
def _output_to(log: Path):
    """Send everything printed (by Python and by the g++ hls4ml starts) to *log*.

    hls4ml prints its topology and build output on stdout; the report is the JSON file.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("a") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def precision_for(ir: IRGraph) -> str:
    """The hls4ml default precision for *ir* (see the module documentation)."""
    widths = [ir.input.dtype.bitwidth()]
    widths += [layer.acc_dtype.bitwidth() for layer in ir.layers if layer.kind == "MatrixVector"]
    return f"fixed<64,{max(24, max(widths) + 8)}>"


def prepare_qonnx(model_path: str | Path):
    """Load and clean the QONNX model the way hls4ml's QONNX flow expects."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.fold_constants import FoldConstantsFiltered
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    def quantized_bias(model, node) -> bool:
        if node.op_type != "Quant":
            return False
        return any(c.op_type == "Add" for c in model.find_consumers(node.output[0]) or [])

    model = cleanup_model(ModelWrapper(str(model_path)))
    model = model.transform(ConvertToChannelsLastAndClean())
    model = model.transform(GemmToMatMul())
    model = model.transform(FoldConstantsFiltered(quantized_bias))
    return cleanup_model(model)


def _fit(hls: np.ndarray, exact: np.ndarray) -> tuple[float | None, int]:
    """The factor k with ``hls == k * exact`` and how many elements break it.

    hls4ml carries scales along (a Dense output may be the integer product times 2^-7), so
    a layer agrees when its output is one constant multiple of the exact integer product.
    """
    hls, exact = hls.astype(np.float64).ravel(), exact.astype(np.float64).ravel()
    nz = exact != 0
    if not np.any(nz):
        return 1.0, int(np.count_nonzero(hls))
    k = float(np.median(hls[nz] / exact[nz]))
    bad = np.abs(hls - k * exact) > 1e-9 * np.maximum(1.0, np.abs(k * exact))
    return k, int(np.count_nonzero(bad))


def _layer_report(ir: IRGraph, inputs: np.ndarray, hm, trace: dict) -> list[dict]:
    """Compare every hls4ml Dense/Conv output with the exact product of its IR layer."""
    _, outs = ir.execute(inputs, trace=True)
    layer_inputs = [inputs, *outs[:-1]]
    mvs = [(i, layer) for i, layer in enumerate(ir.layers) if layer.kind == "MatrixVector"]
    hls_layers = [layer for layer in hm.get_layers() if layer.class_name in ACCUMULATING]
    report = []
    for (i, layer), hl in zip(mvs, hls_layers, strict=False):
        x = layer_inputs[i].astype(np.int64)
        dot = x @ layer.weights.T  # the product over the true values (+-1 for BIPOLAR)
        entry = {"ir_layer": layer.name, "hls4ml_layer": hl.name, "elements": int(dot.size)}
        if hl.name not in trace:
            entry["note"] = "not traced"
            report.append(entry)
            continue
        k, bad = _fit(np.asarray(trace[hl.name]).reshape(dot.shape), dot)
        entry.update(scale=k, mismatches=bad)
        w = hl.get_weights("weight")
        if w is not None and bad:
            data = np.asarray(w.data)
            if np.unique(data).size == 1 and np.unique(layer.weights).size > 1:
                value = data.flat[0].item()
                entry["why"] = (
                    f"hls4ml stores every weight of {hl.name} as {value!r}, while the "
                    f"model's weights of this layer take {np.unique(layer.weights).size} values "
                    f"({layer.w_dtype.name}{', XNOR with BIPOLAR inputs' if layer.binary else ''})"
                )
        report.append(entry)
    return report


def _diagnose(ir: IRGraph, layers: list[dict]) -> tuple[str | None, str | None]:
    """The first IR layer where hls4ml diverges, and why (as far as it can be told)."""
    for n, entry in enumerate(layers):
        if not entry.get("mismatches"):
            continue
        if "why" in entry:
            return entry["ir_layer"], entry["why"]
        if n > 0:
            prev = layers[n - 1]["ir_layer"]
            return prev, (
                f"the products of {prev} agree but those of {entry['ir_layer']} do not: the "
                f"activation of {prev} (BatchNorm and quantizer scale, evaluated by hls4ml in "
                "fixed point) lands on another level for some inputs"
            )
        return entry["ir_layer"], (
            f"hls4ml's {entry['hls4ml_layer']} output is not a constant multiple of the exact "
            f"product of {entry['ir_layer']} (input quantizer or weights differ)"
        )
    return None, None


def run_hls4ml(build_dir: Path, hls_dir: Path, backend: str = "Vitis") -> dict:
    """Convert, compile and run the build's QONNX model with hls4ml; write ``hls4ml.json``.

    Parameters
    ----------
    build_dir : Path
        A gatemill build folder (``import.json``, ``ir.json``, ``golden.npz``).
    hls_dir : Path
        Where ``hls4ml.json`` and the hls4ml project (``hls4ml_prj/``) go.
    backend : str
        hls4ml backend (``Vitis`` or ``Vivado``; both emulate with g++).

    Returns
    -------
    dict
        The report: ``mismatches`` (output elements whose integer value differs from the golden
        model), ``argmax_agreement``, seconds per phase, per-layer agreement, and
        ``divergent_layer`` / ``why`` where hls4ml is not exact.
    """
    try:
        import hls4ml
    except ImportError:
        raise GatemillError("--via hls4ml needs hls4ml: pip install hls4ml==1.3.0.") from None
    imp = json.loads((build_dir / "import.json").read_text())
    model_path = Path(imp.get("model_path", imp["model"]))
    if not model_path.is_file():
        raise GatemillError(
            f"the source model {str(model_path)!r} named in {build_dir / 'import.json'} is gone; "
            "hls4ml converts the QONNX model itself, not the IR."
        )
    ir = load_ir(build_dir)
    with np.load(build_dir / "golden.npz", allow_pickle=False) as g:
        inputs, golden = g["inputs"], g["outputs"]
    precision = precision_for(ir)
    log = hls_dir / "hls4ml.log"
    log.write_text("")
    # the float inputs that the model's input quantizer maps back onto the golden integers
    x = np.ascontiguousarray((inputs.astype(np.float64) * ir.input.scale).astype(np.float32))
    with _output_to(log), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model = prepare_qonnx(model_path)
        cfg = hls4ml.utils.config.config_from_onnx_model(
            model, granularity="name", backend=backend, default_precision=precision
        )
        for layer_cfg in cfg.get("LayerName", {}).values():
            layer_cfg["Trace"] = True
        hm = hls4ml.converters.convert_from_onnx_model(
            model,
            output_dir=str(hls_dir / "hls4ml_prj"),
            backend=backend,
            hls_config=cfg,
            io_type="io_parallel",
        )
        convert_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        hm.compile()
        compile_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        y = np.asarray(hm.predict(x), dtype=np.float64).reshape(golden.shape)
        predict_seconds = time.perf_counter() - t0
        ints = np.rint((y - ir.output.bias) / ir.output.scale).astype(np.int64)
        # per-layer outputs only to find where a difference starts (trace() recompiles)
        trace = hm.trace(x)[1] if np.any(ints != golden) else None

    # hls4ml ends in real values (its last ApplyAlpha in fixed point): back to output integers
    levels = (y - ir.output.bias) / ir.output.scale
    n = len(golden)
    agree = ints.reshape(n, -1).argmax(1) == golden.reshape(n, -1).argmax(1)
    layers = _layer_report(ir, inputs, hm, trace) if trace is not None else []
    divergent, why = _diagnose(ir, layers)
    mismatches = int(np.count_nonzero(ints != golden))
    report = {
        "hls4ml": hls4ml.__version__,
        "backend": backend,
        "io_type": "io_parallel",
        "model": str(model_path),
        "precision": precision,
        "vectors": int(n),
        "elements": int(golden.size),
        "mismatches": mismatches,
        "max_deviation_lsb": float(np.max(np.abs(levels - golden))),
        "argmax_agreement": float(np.mean(agree)),
        "samples_with_other_class": int(np.count_nonzero(~agree)),
        "exact": mismatches == 0 and divergent is None,
        "divergent_layer": divergent,
        "why": why,
        "layers": layers,  # filled only when outputs differ
        "log": str(log),
        "convert_seconds": round(convert_seconds, 3),
        "compile_seconds": round(compile_seconds, 3),
        "predict_seconds": round(predict_seconds, 3),
        "comparison": (
            "hls4ml's real-valued outputs mapped to output integers with "
            "round((y - bias) / scale); max_deviation_lsb is the largest distance before "
            "rounding. Per layer: the Dense/Conv output must be one constant multiple of the "
            "exact integer product of the IR layer."
        ),
        "preparation": [
            "qonnx cleanup, ConvertToChannelsLastAndClean, GemmToMatMul",
            "quantized bias constants (Quant -> Add) folded to their float values",
        ],
    }
    ours = hls_dir / "csim.json"
    if ours.is_file():
        c = json.loads(ours.read_text())
        report["gatemill_csim"] = {
            k: c.get(k) for k in ("vectors", "mismatches", "compile_seconds", "run_seconds")
        }
    (hls_dir / "hls4ml.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
