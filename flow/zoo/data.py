"""Data sets for the zoo: the embedded scikit-learn digits, or the user's own ``.npz``.

A :class:`Dataset` keeps samples in their natural shape (``(N, 1, 8, 8)`` for digits);
:func:`prepare` turns it into exactly what a model kind is fed.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import GatemillError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """A train/test split held in memory.

    Parameters
    ----------
    x_train, x_test : numpy.ndarray
        float32 samples, ``(N, ...)``, the same sample shape in both.
    y_train, y_test : numpy.ndarray
        int64 labels in ``0 .. n_classes - 1``.
    n_classes : int
        Number of classes (largest training label + 1).
    source : str
        ``"digits"`` or the path of the user's file, for messages and ``train.json``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str


def load_digits() -> Dataset:
    """The scikit-learn digits, split 80/20 stratified with ``random_state=0``.

    Returns
    -------
    Dataset
        1437 training and 360 test images of shape ``(1, 8, 8)``, pixels scaled to ``k / 16``.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    # k / 16 is exact in float32, so the 8-bit input quantizer with scale 2**-7 is lossless.
    x = (bunch.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y
    )
    return Dataset(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_classes=10,
        source="digits",
    )


def load_npz(path: str | Path) -> Dataset:
    """Load and validate a user's data set.

    Parameters
    ----------
    path : str or path-like
        An ``.npz`` holding ``x_train, y_train, x_test, y_test``; samples are ``(N, ...)``
        numbers, labels ``(N,)`` integers from 0.

    Returns
    -------
    Dataset

    Raises
    ------
    GatemillError
        If the file cannot be read or its arrays are unusable; the message names the file and
        what to fix.
    """
    path = Path(path)

    def fail(what: str) -> GatemillError:
        return GatemillError(
            f"The data file {path} cannot be used: {what}. A data file is an .npz with arrays "
            f"x_train (N, ...) and x_test (M, ...) of finite numbers with the same sample shape, "
            f"and y_train (N,) and y_test (M,) of integer labels 0..C-1 "
            f"(np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...))."
        )

    if not path.is_file():
        raise fail("no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise fail(
                    f"missing {', '.join(missing)} (found: {', '.join(npz.files) or 'none'})"
                )
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        # allow_pickle=False turns object arrays into a ValueError; never unpickle user files.
        raise fail(f"it is not a readable .npz without pickled objects ({e})") from e

    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype.kind not in "biuf":
            raise fail(f"x_{split} has dtype {x.dtype}; store real numbers")
        if x.ndim < 2 or x.shape[0] == 0:
            raise fail(f"x_{split} has shape {x.shape}; it needs a sample axis and features")
        if y.ndim != 1:
            raise fail(f"y_{split} has shape {y.shape}; labels are one integer per sample")
        if y.dtype.kind not in "iu":
            raise fail(f"y_{split} has dtype {y.dtype}; store labels as integers")
        if len(y) != len(x):
            raise fail(f"x_{split} has {len(x)} samples but y_{split} has {len(y)} labels")
        bad = ~np.isfinite(x.astype(np.float64)).reshape(len(x), -1).all(axis=1)
        if bad.any():
            raise fail(f"x_{split} has NaN or infinite values in {int(bad.sum())} samples")
        if y.min() < 0:
            raise fail(f"y_{split} has negative labels (smallest {int(y.min())})")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise fail(
            f"x_train samples are {arrays['x_train'].shape[1:]} but x_test samples are "
            f"{arrays['x_test'].shape[1:]}"
        )
    n_classes = int(arrays["y_train"].max()) + 1
    if len(np.unique(arrays["y_train"])) < 2:
        raise fail("y_train holds a single class; a classifier needs at least two")
    if int(arrays["y_test"].max()) >= n_classes:
        raise fail(
            f"y_test has label {int(arrays['y_test'].max())}, never seen in y_train "
            f"(labels 0..{n_classes - 1})"
        )
    return Dataset(
        x_train=arrays["x_train"].astype(np.float32),
        y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"].astype(np.float32),
        y_test=arrays["y_test"].astype(np.int64),
        n_classes=n_classes,
        source=str(path),
    )


PULSE_LENGTH = 64
PULSE_CLASSES = 8
PULSE_TAU = 3.0
PULSE_NOISE = 0.05


def load_pulses(n_train: int = 2000, n_test: int = 500, seed: int = 0) -> Dataset:
    """Generated detector pulses, classified by arrival time; no download, deterministic.

    Each sample is ``PULSE_LENGTH`` (64) samples of a CR-RC pulse
    ``a * (t - t0) / tau * exp(1 - (t - t0) / tau)`` for ``t >= t0`` (0 before), with
    ``tau = 3`` samples, peak amplitude ``a`` uniform in [0.3, 1], arrival ``t0`` uniform
    (real-valued) in [8, 40), plus Gaussian noise of standard deviation 0.05. The class is
    the arrival-time bin: ``floor((t0 - 8) / 4)``, 8 classes of 4 samples each.

    Parameters
    ----------
    n_train, n_test : int
        Numbers of samples.
    seed : int
        Seed of the numpy generator (``numpy.random.default_rng``).

    Returns
    -------
    Dataset
        Samples of shape ``(1, 64)``, float32, source ``"pulses"``.
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    amp = rng.uniform(0.3, 1.0, size=(n, 1))
    width = 4.0
    t0 = rng.uniform(8.0, 8.0 + PULSE_CLASSES * width, size=(n, 1))
    u = (np.arange(PULSE_LENGTH)[None, :] - t0) / PULSE_TAU
    pulse = np.where(u > 0, u * np.exp(1.0 - np.maximum(u, 0.0)), 0.0)
    x = amp * pulse + rng.normal(0.0, PULSE_NOISE, size=(n, PULSE_LENGTH))
    y = np.minimum(((t0[:, 0] - 8.0) // width).astype(np.int64), PULSE_CLASSES - 1)
    x = x.astype(np.float32)[:, None, :]
    return Dataset(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:],
        y_test=y[n_train:],
        n_classes=PULSE_CLASSES,
        source="pulses",
    )


SET_SIZE = 48


def digit_sets(ds: Dataset) -> Dataset:
    """Digits as sets of points: every nonzero pixel of an 8x8 image becomes an element
    ``(column / 8, row / 8, intensity)``, in raster order, padded with ``(0, 0, 0)`` elements
    to ``SET_SIZE`` (48; a digit has at most 42 nonzero pixels).

    Parameters
    ----------
    ds : Dataset
        Images of shape ``(1, 8, 8)`` or ``(8, 8)`` (:func:`load_digits`).

    Returns
    -------
    Dataset
        Samples of shape ``(48, 3)``; every value a multiple of 1/16, exact at 8 input bits.
    """

    def to_sets(x: np.ndarray) -> np.ndarray:
        imgs = x.reshape(len(x), 8, 8)
        out = np.zeros((len(x), SET_SIZE, 3), dtype=np.float32)
        for i, img in enumerate(imgs):
            rows, cols = np.nonzero(img)
            keep = np.argsort(-img[rows, cols], kind="stable")[:SET_SIZE]
            keep.sort()
            rows, cols = rows[keep], cols[keep]
            out[i, : len(rows)] = np.stack([cols / 8.0, rows / 8.0, img[rows, cols]], axis=1)
        return out

    return replace(
        ds, x_train=to_sets(ds.x_train), x_test=to_sets(ds.x_test), source=f"{ds.source} sets"
    )


def load_dataset(path: str | Path | None = None, *, kind: str = "mlp") -> Dataset:
    """The user's ``.npz`` (see :func:`load_npz`) or, when ``path`` is None, the kind's own
    data: generated pulses (:func:`load_pulses`) for ``cnn1d``, the digits as point sets
    (:func:`digit_sets`) for ``deepsets``, the digits otherwise."""
    if path is not None:
        return load_npz(path)
    if kind == "cnn1d":
        return load_pulses()
    if kind == "deepsets":
        return digit_sets(load_digits())
    return load_digits()


def prepare(ds: Dataset, *, kind: str, in_bits: int) -> Dataset:
    """Shape and encode a data set exactly as a model of ``kind`` is fed.

    Parameters
    ----------
    ds : Dataset
    kind : {"mlp", "cnn", "cnn1d", "sets"}
        ``mlp`` takes ``(N, F)`` (samples flattened), ``cnn`` takes ``(N, C, H, W)``
        (``(N, H, W)`` gains a channel axis), ``cnn1d`` takes ``(N, C, L)`` (``(N, L)``
        gains a channel axis), ``sets`` takes ``(N, elements, features)``.
    in_bits : int
        With 1 (bipolar input), data in ``[0, 1]`` is fed as ``2 x - 1`` so that the
        quantizer's sign splits it at one half; data with negative values is fed unchanged.

    Returns
    -------
    Dataset

    Raises
    ------
    GatemillError
        If the samples cannot be shaped for ``kind``, or bipolar input is asked of
        non-negative data beyond 1.
    """
    x_train, x_test = ds.x_train, ds.x_test
    if kind == "mlp":
        x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    elif kind == "cnn":
        if x_train.ndim == 3:
            x_train, x_test = x_train[:, None], x_test[:, None]
        elif x_train.ndim != 4:
            raise GatemillError(
                f"The data in {ds.source} has samples of shape {x_train.shape[1:]}, but a cnn "
                f"needs images: store x_train and x_test as (N, H, W) or (N, C, H, W), or "
                f"train an mlp."
            )
    elif kind == "cnn1d":
        if x_train.ndim == 2:
            x_train, x_test = x_train[:, None], x_test[:, None]
        elif x_train.ndim != 3:
            raise GatemillError(
                f"The data in {ds.source} has samples of shape {x_train.shape[1:]}, but a cnn1d "
                f"needs signals: store x_train and x_test as (N, L) or (N, C, L)."
            )
    elif kind == "sets" and x_train.ndim != 3:
        raise GatemillError(
            f"The data in {ds.source} has samples of shape {x_train.shape[1:]}, but a deepsets "
            f"model needs sets: store x_train and x_test as (N, elements, features)."
        )
    if in_bits == 1:
        lo = min(float(x_train.min()), float(x_test.min()))
        hi = max(float(x_train.max()), float(x_test.max()))
        if lo >= 0.0:
            if hi > 1.0:
                raise GatemillError(
                    f"A bipolar input (--in-bits 1) binarizes at zero, and the data in "
                    f"{ds.source} is non-negative up to {hi:g}: scale it to [0, 1] (fed as "
                    f"2x-1) or centre it around zero yourself, or use more input bits."
                )
            x_train, x_test = 2.0 * x_train - 1.0, 2.0 * x_test - 1.0
    return replace(
        ds,
        x_train=np.ascontiguousarray(x_train, dtype=np.float32),
        x_test=np.ascontiguousarray(x_test, dtype=np.float32),
    )
