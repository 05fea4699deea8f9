"""Reading an untrusted ONNX file and cleaning it with qonnx transformations."""

from __future__ import annotations

from pathlib import Path

import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import (
    GiveUniqueParameterTensors,
    RemoveStaticGraphInputs,
    RemoveUnusedTensors,
)
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

from ..errors import GatemillError

QUANT_OPS = ("Quant", "BipolarQuant")


def read_onnx(path: str | Path) -> onnx.ModelProto:
    """Parse *path* as ONNX without following external-data references.

    Raises
    ------
    GatemillError
        If the file is missing, not ONNX (truncated, another format), empty, or refers to
        external tensor files (a model file must not make gatemill read other files).
    """
    p = Path(path)
    if not p.is_file():
        raise GatemillError(f"model file {str(p)!r} does not exist or is not a file.")
    try:
        proto = onnx.load(str(p), load_external_data=False)
    except Exception as e:
        raise GatemillError(
            f"{str(p)!r} is not a readable ONNX model ({type(e).__name__}: {e}). The file may be "
            "truncated or of another format: export it again with "
            "brevitas.export.export_qonnx(model, x, export_path=..., dynamo=False)."
        ) from None
    graph = proto.graph
    if not graph.node or not graph.input or not graph.output:
        raise GatemillError(
            f"{str(p)!r} holds no ONNX graph (no nodes, inputs or outputs): the file is empty, "
            "truncated or not a model. Export it again with export_qonnx."
        )
    for t in graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise GatemillError(
                f"{str(p)!r} stores tensor {t.name!r} in an external file; gatemill reads only "
                "self-contained models. Save the model with all tensors inside the .onnx file."
            )
    return proto


def cleanup(proto: onnx.ModelProto, source: str) -> ModelWrapper:
    """qonnx cleanup keeping quantizers: shapes, constant folding, unique parameters.

    Unlike ``qonnx.util.cleanup.cleanup_model`` this keeps the exporter's node names (they
    are what users recognise in error messages) and only names nodes that have none.
    """
    model = ModelWrapper(proto)
    for node in model.graph.node:
        if node.op_type in QUANT_OPS:
            node.domain = "qonnx.custom_op.general"
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)
    try:
        for t in (
            InferShapes(),
            GiveUniqueParameterTensors(),
            FoldConstants(exclude_op_types=[*QUANT_OPS, "QuantizeLinear", "DequantizeLinear"]),
            FoldTransposeIntoQuantInit(),
            RemoveUnusedTensors(),
            RemoveStaticGraphInputs(),
            InferShapes(),
        ):
            model = model.transform(t)
    except Exception as e:
        raise GatemillError(
            f"qonnx could not clean up {source!r} ({type(e).__name__}: {e}). The graph is "
            "malformed or uses operators outside ONNX and QONNX; check it with "
            "onnx.checker.check_model and export it again with export_qonnx."
        ) from None
    return model
