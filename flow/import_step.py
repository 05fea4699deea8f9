"""``gatemill import``: QONNX model -> ``ir.json`` + golden model checked against QONNX."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .frontend import import_qonnx, parse_encoding
from .frontend.compare import check_against_qonnx, to_ir_ints
from .frontend.lut import LUT_BITS
from .ir import save_ir
from .outdir import prepare_out_dir
from .packing import saturated
from .vectors import load_vectors, random_vectors

RANDOM_VECTORS = 100


def accuracy(logits: np.ndarray, y: np.ndarray | None) -> float | None:
    if y is None:
        return None
    return float(np.mean(logits.reshape(len(logits), -1).argmax(axis=1) == y))


def input_saturation(first, ir, x: np.ndarray, x_int: np.ndarray) -> dict | None:
    """How many input values the model's first quantizer clips to its range (``None`` when
    the model has no input quantizer)."""
    if first is None:
        return None
    n = first.saturated(x_int) if ir.input.raw else saturated(x, ir.input.port())
    return {
        "values": n,
        "elements": int(x_int.size),
        "quantizer": first.node,
        "range": [first.lo, first.hi],
        "bipolar": first.bipolar,
    }


def run_import(
    model: str | Path,
    out: str | Path,
    vectors: str | Path | None = None,
    seed: int = 0,
    lut_bits: int = LUT_BITS,
    input_type: str | None = None,
    input_scale: str | float | None = None,
) -> dict:
    """Import *model*, check the golden model against QONNX, write the results into *out*.

    *lut_bits* limits the input bits of sparse neurons that become truth tables (0: none).

    *input_type* and *input_scale* (e.g. ``"UINT8"``, ``"1/255"``) state the integer encoding
    of a model input that reaches its first quantizer through a pre-processing (or reaches
    no quantizer): the hardware then takes the raw integers ``q`` of that type, the model's
    float input is ``x = input_scale * q``, and the pre-processing folds exactly into the
    first layer (:mod:`gatemill.flow.frontend.inputs`). The vectors (``x`` of *vectors*, and
    ``golden.npz``'s inputs) then hold those raw integers, as FINN's input files do.

    Writes ``ir.json`` + ``ir.npz`` (the IR), ``golden.npz`` (``inputs``/``outputs``: the
    integer vectors the hardware must reproduce) and ``import.json`` (the report, returned).
    """
    encoding = parse_encoding(input_type, input_scale)
    out = prepare_out_dir(out)
    imp = import_qonnx(model, lut_bits, encoding)
    ir = imp.ir
    if vectors is not None:
        x, y = load_vectors(vectors, ir)
    else:
        x, y = random_vectors(ir, RANDOM_VECTORS, seed), None

    out_probe = imp.probes[-1]
    comparison, values, x_int = check_against_qonnx(ir, imp.model, imp.probes, x)

    y_int = ir.execute(x_int)
    golden_logits = ir.output.dequantize(y_int)
    qonnx_logits = values[out_probe.tensor]
    qonnx_ints = to_ir_ints(qonnx_logits, out_probe.scale, out_probe.bias, out_probe.layout)
    agree = golden_logits.reshape(len(x), -1).argmax(1) == qonnx_logits.reshape(len(x), -1).argmax(
        1
    )

    save_ir(ir, out)
    np.savez(out / "golden.npz", inputs=x_int, outputs=y_int)
    imp.model.save(str(out / "model_clean.onnx"))
    raw = Path(model).read_bytes()
    report = {
        "model": str(model),
        "model_path": str(Path(model).resolve()),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "ir": ir.name,
        "input": {
            "shape": list(ir.input.shape),
            "dtype": ir.input.dtype.name,
            "scale": ir.input.scale,
            "layout": ir.input.layout,
            "raw": ir.input.raw,
            **({"encoding": imp.input_report} if imp.input_report else {}),
        },
        "input_saturation": input_saturation(imp.first_quantizer, ir, x, x_int),
        "layers": [layer.summary() for layer in ir.layers],
        "vectors": len(x),
        "vectors_source": str(vectors) if vectors is not None else f"random (seed {seed})",
        "lut_bits": lut_bits,
        "golden_vs_qonnx": comparison,
        "end_to_end": {
            "elements": int(y_int.size),
            "mismatches": int(np.count_nonzero(y_int != qonnx_ints)),
            "samples_with_other_class": int(np.count_nonzero(~agree)),
        },
        "golden_accuracy": accuracy(golden_logits, y),
        "qonnx_accuracy": accuracy(qonnx_logits, y),
    }
    (out / "import.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
