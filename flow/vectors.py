"""Test vectors: ``.npz`` files with ``x`` (model inputs, float32) and optional ``y`` (labels)."""

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
    y = data.get("y")
    if y is not None and (y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer)):
        raise GatemillError(
            f"vectors file {str(p)!r}: y must be {len(x)} integer labels, not {y.dtype} {y.shape}."
        )
    return x.astype(np.float32), y


def random_vectors(ir: IRGraph, n: int, seed: int) -> np.ndarray:
    """Seeded inputs spread over every level of the input quantizer."""
    rng = np.random.default_rng(seed)
    dt = ir.input.dtype
    q = rng.integers(int(dt.min()), int(dt.max()) + 1, size=(n, *ir.input.shape))
    x = (q * ir.input.scale).astype(np.float32)
    if ir.input.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)
