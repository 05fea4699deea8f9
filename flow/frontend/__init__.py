"""QONNX import: read, check, clean up and streamline a model into the integer IR."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from ..errors import GatemillError
from ..ir import IRGraph
from ..names import sanitize
from .inputs import FirstQuantizer, InputEncoding, input_problems, parse_encoding
from .load import cleanup, read_onnx
from .lut import LUT_BITS, check_lut_bits
from .streamline import Streamliner
from .support import raise_if_problems, structural_problems, unsupported_ops
from .tensors import ClosedChain, Probe


@dataclass
class Imported:
    """The result of :func:`import_qonnx`."""

    ir: IRGraph
    model: ModelWrapper  # the cleaned QONNX model (the reference)
    probes: list[Probe]
    input_tensor: str  # the input quantizer's output in the QONNX graph
    chains: dict[int, ClosedChain]  # layer index -> the exact function of its thresholds
    first_quantizer: FirstQuantizer | None = None  # the model's first quantizer, if any
    input_report: dict | None = None  # with a stated encoding: how the input was folded


def import_qonnx(
    path: str | Path, lut_bits: int = LUT_BITS, encoding: InputEncoding | None = None
) -> Imported:
    """Import the QONNX model at *path* into the integer IR.

    Sparse dense layers whose neurons read at most *lut_bits* input bits become truth tables
    (``LutLayer``, see :mod:`.lut`); 0 keeps them as matrix-vector layers. With *encoding*
    (:func:`.inputs.parse_encoding`) the hardware takes the user's raw integers and the
    model's pre-processing folds into the first layer (:mod:`.inputs`).

    Raises
    ------
    GatemillError
        Listing every unsupported node at once, or naming the file if it cannot be read.
    """
    source = str(path)
    check_lut_bits(lut_bits)
    proto = read_onnx(path)
    raw_problems = unsupported_ops(ModelWrapper(proto))
    try:
        model = cleanup(proto, source)
    except GatemillError:
        # a graph qonnx cannot clean up: the unsupported operators are the likelier cause
        raise_if_problems(raw_problems, source)
        raise
    # checked after cleanup: constant subgraphs (e.g. a Transpose of weights) are folded away
    problems = input_problems(model, encoding) + unsupported_ops(model)
    raise_if_problems(problems + structural_problems(model), source)
    s = Streamliner(model, sanitize(Path(path).stem, "model"), lut_bits, encoding)
    ir, probes = s.run()
    return Imported(
        ir, model, probes, s.first.name, s.chains, s.first_quantizer, s.input_report or None
    )


__all__ = ["Imported", "InputEncoding", "import_qonnx", "parse_encoding"]
