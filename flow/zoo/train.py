"""Quantization-aware training of a zoo model, and the files it leaves for the flow.

:func:`train` writes into its output directory:

- ``model.onnx``: the QONNX export (``brevitas.export.export_qonnx``, batch 1),
- ``model.pt``: the quantized model's ``state_dict``,
- ``vectors.npz``: ``x`` (test inputs exactly as fed to the model, float32) and ``y`` (int64),
- ``train.json``: ``model`` (kind, architecture, input quantizer, recipe), ``float_accuracy``
  (the float twin), ``quant_accuracy``, ``seconds`` (wall time of both trainings), sample
  counts, ``seed``, and ``export_check`` (qonnx execution against torch on a few inputs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
import random
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import GatemillError
from .data import Dataset, load_dataset, prepare
from .models import MODELS
from .parts import input_scale
from .prune import Masks, Pruning

MARKER = ".gatemill"
FILES = ("model.onnx", "model.pt", "vectors.npz", "train.json")
_BITS = {"wbits": 4, "abits": 4, "in_bits": 8}
DEFAULTS: dict[str, dict] = {
    "mlp": {"hidden": (64, 64), "channels": None, "epochs": 40, "lr": 0.01, **_BITS},
    "cnn": {"hidden": (64,), "channels": (16, 32), "epochs": 30, "lr": 0.01, **_BITS},
    # every neuron a 12-bit table: fan-in 6 of 2-bit values
    "lutnet": {"hidden": (128, 64), "channels": None, "epochs": 40, "lr": 0.01, "fanin": 6,
               "wbits": 4, "abits": 2, "in_bits": 2},
    "poetbin": {"hidden": (64, 64), "channels": None, "epochs": 40, "lr": 0.01, "depth": 6,
                "trees": 8, "wbits": 1, "abits": 1, "in_bits": 8},
}  # fmt: skip
"""Per-kind defaults for the arguments of :func:`train` left as None."""
EXPORT_CHECK_SAMPLES = 8
THREADS = 1


def train(
    kind: str,
    *,
    out_dir: str | Path,
    wbits: int | None = None,
    abits: int | None = None,
    hidden: Sequence[int] | None = None,
    channels: Sequence[int] | None = None,
    epochs: int | None = None,
    seed: int = 0,
    data: str | Path | None = None,
    scaling: str = "float",
    batchnorm: bool = True,
    in_bits: int | None = None,
    per_channel: bool = False,
    lr: float | None = None,
    batch_size: int = 64,
    progress: bool = True,
    fanin: int | None = None,
    depth: int | None = None,
    trees: int | None = None,
    sparsity: float = 0.0,
) -> dict:
    """Train a zoo model with quantization-aware training, export it, and write its files.

    The float twin (same architecture, plain torch layers) is trained first with the same
    recipe and seed, as the accuracy baseline. Training is deterministic for a given seed:
    Adam, cosine learning-rate decay, cross-entropy, one CPU thread.

    Parameters
    ----------
    kind : {"mlp", "cnn", "lutnet", "poetbin"}
        Model kind (see :data:`gatemill.flow.zoo.models.MODELS`). A ``poetbin`` is trained
        with a float linear head, which is then replaced by a PoET-BiN head fitted on the
        binary features (:func:`gatemill.flow.zoo.poetbin.fit_head`); ``train.json`` then
        has a ``head`` entry comparing the two.
    out_dir : str or path-like
        Output directory; created if missing. An existing non-empty directory is used only if
        gatemill made it (it holds ``train.json`` or a ``.gatemill`` marker).
    wbits, abits : int, optional
        Weight and activation bits, 1..8 (1 = bipolar); None takes :data:`DEFAULTS`.
    hidden, channels : sequence of int, optional
        Dense widths, and convolution channels (cnn only); None takes :data:`DEFAULTS`.
    epochs : int, optional
        Training epochs; None takes :data:`DEFAULTS`.
    seed : int
        Seed for weights initialisation and batch order.
    data : str or path-like, optional
        A user ``.npz`` (see :func:`gatemill.flow.zoo.data.load_npz`); None uses the digits.
    scaling : {"float", "pot"}
        Learned float scales or power-of-two scales.
    batchnorm : bool
        BatchNorm between each hidden layer and its activation.
    in_bits : int, optional
        Input quantizer bits, 1..8 (1 = bipolar, data in [0, 1] fed as ``2 x - 1``); None
        takes :data:`DEFAULTS`.
    per_channel : bool
        Per-output-channel weight scales.
    lr : float, optional
        Peak learning rate; None takes :data:`DEFAULTS`.
    batch_size : int
        Training batch size.
    progress : bool
        Show a Rich progress bar on stderr.
    fanin : int, optional
        ``lutnet`` only: inputs of every neuron.
    depth, trees : int, optional
        ``poetbin`` only: tree depth and trees per class.
    sparsity : float
        ``mlp`` and ``cnn``: prune this share of every layer's weights by magnitude during the
        quantized training, on a schedule (:mod:`gatemill.flow.zoo.prune`); 0 prunes nothing.
        ``train.json`` then has a ``pruning`` entry (schedule and the share of zeros reached
        per layer).

    Returns
    -------
    dict
        The contents of ``train.json``.

    Raises
    ------
    GatemillError
        For bad arguments, unusable data, or an output directory gatemill may not write to.
    """
    if kind not in MODELS:
        raise GatemillError(f"Unknown model kind {kind!r}; choose one of {', '.join(MODELS)}.")
    defaults = DEFAULTS[kind]
    hidden = defaults["hidden"] if hidden is None else hidden
    epochs = defaults["epochs"] if epochs is None else epochs
    lr = defaults["lr"] if lr is None else lr
    wbits = defaults["wbits"] if wbits is None else wbits
    abits = defaults["abits"] if abits is None else abits
    in_bits = defaults["in_bits"] if in_bits is None else in_bits
    extra = {"fanin": fanin, "depth": depth, "trees": trees}
    for name, value in extra.items():
        if value is not None and name not in defaults:
            owners = " and ".join(k for k, d in DEFAULTS.items() if name in d)
            raise GatemillError(f"{name} ({value!r}) applies only to {owners}, not to {kind}.")
    extra = {k: defaults[k] if v is None else v for k, v in extra.items() if k in defaults}
    if kind == "cnn":
        channels = defaults["channels"] if channels is None else channels
    elif channels is not None:
        raise GatemillError(f"channels ({channels!r}) only applies to a cnn, not an {kind}.")
    pruning = Pruning(float(sparsity)) if sparsity else None
    if pruning is not None and kind not in ("mlp", "cnn"):
        raise GatemillError(
            f"--sparsity applies to mlp and cnn models, not to a {kind} (its neurons already "
            "have a fixed, small fan-in)."
        )
    _check_int("epochs", epochs, minimum=1)
    _check_int("batch_size", batch_size, minimum=2)
    _check_int("seed", seed, minimum=0)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise GatemillError(f"lr must be a positive number, not {lr!r}.")
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)

    ds = prepare(load_dataset(data), kind="cnn" if kind == "cnn" else "mlp", in_bits=in_bits)
    lo, hi = float(ds.x_train.min()), float(ds.x_train.max())
    arch = {
        "in_shape": tuple(ds.x_train.shape[1:]),
        "n_classes": ds.n_classes,
        "hidden": hidden,
        "wbits": wbits,
        "abits": abits,
        "scaling": scaling,
        "per_channel": per_channel,
        "batchnorm": batchnorm,
        "in_bits": in_bits,
        "in_range": (lo, hi),
    }
    if kind == "cnn":
        arch["channels"] = channels
    arch.update(extra)
    if kind == "lutnet":
        arch["mask_seed"] = seed
    # Build once before any training so that bad arguments fail fast.
    MODELS[kind](**arch, quant=True)
    # a poetbin trains its extractor with a float head, then fits its tree head
    fit_arch = {**arch, "head": "linear"} if kind == "poetbin" else arch

    recipe = {"epochs": epochs, "lr": float(lr), "batch_size": batch_size, "seed": seed}
    start = time.perf_counter()
    with _deterministic(seed), _progress_bar(progress) as bar:
        twin = _fit(MODELS[kind](**fit_arch, quant=False), ds, **recipe, bar=bar, label="float")
        float_acc = _accuracy(twin, ds.x_test, ds.y_test)
        torch.manual_seed(seed)
        model = MODELS[kind](**fit_arch, quant=True)
        masks = Masks(model) if pruning is not None else None
        model = _fit(model, ds, **recipe, bar=bar, label="quant", masks=masks, pruning=pruning)
        head = None
        if kind == "poetbin":
            from .poetbin import fit_head

            model, head = fit_head(model, arch, ds)
        quant_acc = _accuracy(model, ds.x_test, ds.y_test)
    seconds = time.perf_counter() - start

    _make_out_dir(out_dir)
    check = _export(model, ds.x_test, out_dir / "model.onnx")
    torch.save(model.state_dict(), out_dir / "model.pt")
    np.savez(out_dir / "vectors.npz", x=ds.x_test, y=ds.y_test)
    if in_bits == 1:
        in_quant = {"in_scale": 1.0, "in_signed": True}
    else:
        scale, signed = input_scale(lo, hi, in_bits)
        in_quant = {"in_scale": scale, "in_signed": signed}
    report = {
        "model": {"kind": kind, **_jsonable(arch), **in_quant, **recipe},
        "data": ds.source,
        "float_accuracy": float_acc,
        "quant_accuracy": quant_acc,
        "epochs": epochs,
        "seconds": round(seconds, 2),
        "train_samples": len(ds.y_train),
        "test_samples": len(ds.y_test),
        "seed": seed,
        "export_check": check,
        "files": list(FILES),
    }
    if head is not None:
        report["head"] = head
    if pruning is not None:
        report["pruning"] = {
            **dataclasses.asdict(pruning),
            "schedule": "zhu-gupta cubic, per layer by magnitude",
            "zero_share": masks.achieved(),
        }
    (out_dir / "train.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def load_trained(out_dir: str | Path) -> nn.Module:
    """Rebuild a trained quantized model from ``train.json`` and ``model.pt``.

    Parameters
    ----------
    out_dir : str or path-like
        A directory written by :func:`train`.

    Returns
    -------
    torch.nn.Module
        The model in eval mode, computing what ``model.onnx`` computes.
    """
    out_dir = Path(out_dir)
    try:
        spec = json.loads((out_dir / "train.json").read_text())["model"]
    except (OSError, ValueError, KeyError) as e:
        raise GatemillError(
            f"{out_dir} holds no readable train.json ({e}); run `gatemill train` into it first."
        ) from e
    builder = MODELS[spec["kind"]]
    names = inspect.signature(builder).parameters
    model = builder(**{k: v for k, v in spec.items() if k in names}, quant=True)
    model.load_state_dict(torch.load(out_dir / "model.pt", weights_only=True))
    return model.eval()


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GatemillError(f"{name} must be an integer of at least {minimum}, not {value!r}.")


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise GatemillError(
            f"The output {out_dir} is a file, not a directory; choose another --out."
        )
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if not ((out_dir / MARKER).is_file() or (out_dir / "train.json").is_file()):
        raise GatemillError(
            f"The output directory {out_dir} is not empty and was not made by gatemill (it has "
            f"no train.json or {MARKER} file); nothing in it is overwritten. Choose a new or "
            f"empty directory for --out."
        )


def _make_out_dir(out_dir: Path) -> None:
    _check_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    marker = out_dir / MARKER
    if not marker.exists():
        marker.write_text("Made by `gatemill train`; gatemill may overwrite files here.\n")


@contextlib.contextmanager
def _deterministic(seed: int) -> Iterator[None]:
    """Seed everything and make torch deterministic, restoring torch's global settings after."""
    threads = torch.get_num_threads()
    det, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # One thread: these models are too small to gain from more, and on a busy machine
    # OpenMP's barriers between two threads made training up to ten times slower.
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)


@contextlib.contextmanager
def _progress_bar(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description:<6}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.1%}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    ) as bar:
        yield bar


def _fit(
    model: nn.Module,
    ds: Dataset,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    bar,
    label: str,
    masks: Masks | None = None,
    pruning: Pruning | None = None,
) -> nn.Module:
    x, y = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train)
    steps = math.ceil(len(y) / batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(seed)
    task = bar.add_task(label, total=epochs, loss=math.nan, acc=0.0)
    model.train()
    done, total_steps = 0, epochs * steps
    for _ in range(epochs):
        total, correct, seen = 0.0, 0, 0
        for idx in torch.randperm(len(y), generator=order).split(batch_size):
            if len(idx) == 1:
                continue  # BatchNorm cannot train on a batch of one
            logits = model(x[idx])
            loss = loss_fn(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            if masks is not None:
                masks.update(pruning.at(done / total_steps))
                masks.apply()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            seen += len(idx)
        bar.update(task, advance=1, loss=total / max(seen, 1), acc=correct / max(seen, 1))
    return model.eval()


@torch.no_grad()
def _accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == y).mean())


def _export(model: nn.Module, x_test: np.ndarray, path: Path) -> dict:
    """Export QONNX and check that qonnx's execution agrees with torch on a few test inputs."""
    with warnings.catch_warnings():
        # Brevitas' export package imports an optional CUDA kernel and warns that it is absent.
        warnings.filterwarnings("ignore", message=".*fast_hadamard_transform")
        from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    model.eval()
    export_qonnx(model, torch.from_numpy(x_test[:1]), export_path=str(path), dynamo=False)
    from qonnx.transformation.infer_shapes import InferShapes

    # execute_onnx needs every intermediate shape; the file on disk stays as exported.
    wrapper = ModelWrapper(str(path)).transform(InferShapes())
    graph = wrapper.graph
    # Brevitas lists the initializers among the graph inputs; the data input is the other one.
    inits = {t.name for t in graph.initializer}
    (name_in,) = [t.name for t in graph.input if t.name not in inits]
    name_out = graph.output[0].name
    n = min(EXPORT_CHECK_SAMPLES, len(x_test))
    with torch.no_grad():
        want = model(torch.from_numpy(x_test[:n])).numpy()
    got = np.concatenate(
        [execute_onnx(wrapper, {name_in: x_test[i : i + 1]})[name_out] for i in range(n)]
    )
    agree = int((got.argmax(1) == want.argmax(1)).sum())
    if agree != n:
        raise RuntimeError(
            f"The QONNX export {path} disagrees with the torch model on {n - agree} of {n} test "
            f"inputs (largest logit difference {np.abs(got - want).max():g}); this is a bug in "
            f"gatemill's zoo or in the exporter."
        )
    return {
        "samples": n,
        "argmax_agree": agree,
        "max_abs_logit_diff": float(np.abs(got - want).max()),
    }


def _jsonable(arch: dict) -> dict:
    return {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in arch.items()}
