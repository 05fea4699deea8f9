"""Test vectors: ``.npz`` files with ``x`` (model inputs) and optional ``y`` (labels).

``x`` holds the model's float inputs, or, when the user stated the input's integer encoding
(``--input-type``/``--input-scale``), the raw integers ``q`` of that type (``x = scale * q``),
as FINN's input files hold the declared input datatype's values; in the model's input shape
either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import GatemillError
from .ir import IRGraph


def load_vectors(path: str | Path, ir: IRGraph) -> tuple[np.ndarray, np.ndarray | None]:
    """Read and validate a vectors file against the model's input shape (never unpickles)."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise GatemillError(f"vectors file {str(p)!r} does not exist.") from None
    except Exception as e:
        raise GatemillError(
            f"vectors file {str(p)!r} is not a readable .npz of numeric arrays ({e}). Save it "
            "with numpy.savez(path, x=inputs, y=labels)."
        ) from None
    if "x" not in data:
        raise GatemillError(
            f"vectors file {str(p)!r} has no array 'x' (found: "
            f"{', '.join(data) or 'none'}); save the inputs as x=..."
        )
    x = data["x"]
    want = ir.input.model_shape
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want or len(x) == 0:
        raise GatemillError(
            f"vectors file {str(p)!r}: x has shape {x.shape}, the model takes "
            f"(N, {', '.join(map(str, want))})."
        )
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise GatemillError(f"vectors file {str(p)!r}: x must be finite numbers.")
    if ir.input.raw:
        x = _raw(x, p, ir)
    y = data.get("y")
    if y is not None and (y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer)):
        raise GatemillError(
            f"vectors file {str(p)!r}: y must be {len(x)} integer labels, not {y.dtype} {y.shape}."
        )
    return (x if ir.input.raw else x.astype(np.float32)), y


def _raw(x: np.ndarray, p: Path, ir: IRGraph) -> np.ndarray:
    """*x* as the raw integers of a stated encoding (refused with the reason otherwise)."""
    spec = ir.input
    try:
        spec.quantize(x)
    except ValueError as e:
        looks_float = np.issubdtype(x.dtype, np.floating) and np.any(x != np.round(x))
        hint = (
            f" These look like the model's float inputs: save q = x / ({spec.exact_scale}) "
            "as integers instead."
            if looks_float
            else ""
        )
        raise GatemillError(
            f"vectors file {str(p)!r}: {e}. With --input-type {spec.dtype.name} --input-scale "
            f"{spec.exact_scale}, x holds the raw integers q the hardware takes (the model's "
            f"float input is {spec.exact_scale} * q).{hint}"
        ) from None
    return x.astype(np.int64)


def random_vectors(ir: IRGraph, n: int, seed: int) -> np.ndarray:
    """Seeded inputs spread over every level of the input quantizer (with a stated encoding:
    raw integers over the input type's whole range, in the model's input shape)."""
    rng = np.random.default_rng(seed)
    dt = ir.input.dtype
    if ir.input.raw:
        if dt.name == "BIPOLAR":
            return rng.choice(np.array([-1, 1]), size=(n, *ir.input.model_shape))
        return rng.integers(int(dt.min()), int(dt.max()) + 1, size=(n, *ir.input.model_shape))
    q = rng.integers(int(dt.min()), int(dt.max()) + 1, size=(n, *ir.input.shape))
    return ir.input.float_input(q)
