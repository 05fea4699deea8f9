"""Running the QONNX graph (the float32 reference) and comparing the golden model with it."""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.change_batchsize import ChangeBatchSize
from qonnx.transformation.infer_shapes import InferShapes

from ..ir import IRGraph
from ..ir.datatypes import BIPOLAR
from ..ir.graph import GRAPH_INPUT
from .tensors import Probe

BATCH = 512


def run_qonnx(model: ModelWrapper, x: np.ndarray, tensors: list[str]) -> dict[str, np.ndarray]:
    """Execute *model* on the batch *x* with qonnx; returns the requested tensors."""
    inp = model.graph.input[0].name
    out: dict[str, list] = {t: [] for t in tensors}
    batched = {}
    for start in range(0, len(x), BATCH):
        xb = np.ascontiguousarray(x[start : start + BATCH], dtype=np.float32)
        n = len(xb)
        if n not in batched:
            m = ModelWrapper(model.model.SerializeToString())
            batched[n] = m.transform(ChangeBatchSize(n)).transform(InferShapes())
        ctx = execute_onnx(batched[n], {inp: xb}, return_full_exec_context=True)
        for t in tensors:
            out[t].append(ctx[t])
    return {t: np.concatenate(v) for t, v in out.items()}


def to_ir_ints(y: np.ndarray, scale: np.ndarray, bias: np.ndarray, layout: str) -> np.ndarray:
    """QONNX float tensor -> IR integers (channels last): ``round((y - bias) / scale)``.

    *layout* is the QONNX layout: ``NCHW`` maps are transposed, ``NCL`` signals become maps of
    height 1, ``NC`` vectors are flattened (a global pool's ``(N, C, 1, 1)``), ``NSC`` sets
    are channels last already.
    """
    y = np.asarray(y, dtype=np.float64)
    if layout == "NCHW" and y.ndim == 4:
        y = y.transpose(0, 2, 3, 1)
    elif layout == "NCL" and y.ndim == 3:
        y = y.transpose(0, 2, 1)[:, None]
    elif layout == "NC" and y.ndim > 2:
        y = y.reshape(len(y), -1)
    return np.round((y - bias) / scale).astype(np.int64)


def level_diff(a: np.ndarray, b: np.ndarray, dtype) -> np.ndarray:
    """Distance in quantization levels (a BIPOLAR step is 2)."""
    d = np.abs(a - b)
    return d // 2 if dtype == BIPOLAR else d


def golden_vs_qonnx(ir: IRGraph, probes: list[Probe], x_int: np.ndarray, values: dict) -> dict:
    """Each stretch of layers between QONNX probe points, run on QONNX's own values.

    *x_int* are the hardware's input integers (:meth:`InputSpec.quantize
    <gatemill.flow.ir.InputSpec.quantize>` of the vectors QONNX ran on). Every layer reads
    QONNX's value of each probed layer it takes (its producer's output as QONNX computed it)
    and the golden model's value of the others. Isolating the stretches keeps one float32
    rounding difference from cascading, so every mismatch counted is a place where the float
    graph and the exact arithmetic disagree.
    """
    at = {p.layer: p for p in probes}
    golden = {GRAPH_INPUT: np.asarray(x_int, dtype=np.int64)}
    ref: dict = {}
    per_layer = []
    elements = mismatches = max_diff = 0
    for i, layer in enumerate(ir.layers):
        args = [ref.get(p, golden.get(p)) for p in ir.inputs[layer.name]]
        y = golden[layer.name] = layer.execute(*args)
        p = at.get(i)
        if p is None:
            continue
        r = to_ir_ints(values[p.tensor], p.scale, p.bias, p.layout).reshape(y.shape)
        ref[layer.name] = r
        d = level_diff(y, r, layer.out_dtype)
        n_bad, worst = int(np.count_nonzero(d)), int(d.max(initial=0))
        per_layer.append(
            {
                "layer": layer.name,
                "kind": layer.kind,
                "elements": int(d.size),
                "mismatches": n_bad,
                "max_level_diff": worst,
            }
        )
        elements, mismatches, max_diff = elements + d.size, mismatches + n_bad, max(max_diff, worst)
    return {
        "elements": int(elements),
        "mismatches": int(mismatches),
        "max_level_diff": int(max_diff),
        "per_layer": per_layer,
    }


def check_against_qonnx(ir: IRGraph, model: ModelWrapper, probes: list[Probe], x: np.ndarray):
    """Run QONNX on the vectors *x* and compare the golden model with it at every probe.

    *x* are the model's inputs as the vectors hold them: float inputs, or the raw integers of a
    stated encoding (QONNX then takes ``x = scale * q``). Returns ``(report, values, x_int)``:
    :func:`golden_vs_qonnx`'s report, the probed QONNX tensors and the hardware's input
    integers.
    """
    x_int = ir.input.quantize(x)
    x_model = ir.input.float_input(x_int) if ir.input.raw else x
    values = run_qonnx(model, x_model, list(dict.fromkeys(p.tensor for p in probes)))
    return golden_vs_qonnx(ir, probes, x_int, values), values, x_int
