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
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import GatemillError
from .config import KIND_OPTIONS, TrainConfig
from .data import Dataset, load_dataset, prepare
from .models import MODELS
from .parts import input_scale
from .prune import Masks, Pruning

MARKER = ".gatemill"
FILES = ("model.onnx", "model.pt", "vectors.npz", "train.json")
EXPORT_CHECK_SAMPLES = 8
THREADS = 1
# how each kind is fed (:func:`gatemill.flow.zoo.data.prepare`); the others take flat vectors
FEED = {"cnn": "cnn", "rescnn": "cnn", "cnn1d": "cnn1d", "deepsets": "sets"}


def train(config: TrainConfig | str, /, *, progress: bool = True, **options) -> dict:
    """Train a zoo model with quantization-aware training, export it, and write its files.

    The float twin (same architecture, plain torch layers) is trained first with the same
    recipe and seed, as the accuracy baseline. Training is deterministic for a given seed:
    Adam, cosine learning-rate decay, cross-entropy, one CPU thread.

    Parameters
    ----------
    config : TrainConfig or str
        What to train; or the model kind, with the other fields of :class:`TrainConfig` as
        keyword *options* (``train("mlp", out_dir="mlp", epochs=5)``).
    progress : bool
        Show a Rich progress bar on stderr.

    Returns
    -------
    dict
        The contents of ``train.json``.

    Raises
    ------
    GatemillError
        For bad options, unusable data, or an output directory gatemill may not write to.
    """
    if isinstance(config, str):
        config = TrainConfig(kind=config, **options)
    elif options:
        raise TypeError(f"train(config) takes no options besides progress: {sorted(options)}")
    r = config.resolved()
    kind, out_dir, seed, data = config.kind, config.out_dir, config.seed, config.data
    hidden, channels, epochs, lr = r["hidden"], r["channels"], r["epochs"], r["lr"]
    wbits, abits, in_bits = r["wbits"], r["abits"], r["in_bits"]
    scaling, batchnorm, per_channel = config.scaling, config.batchnorm, config.per_channel
    batch_size = config.batch_size
    extra = {k: r[k] for k in KIND_OPTIONS if k in r}
    # checks the share (the config checked the kind); torch-side, so not in the config
    pruning = Pruning(float(config.sparsity)) if config.sparsity else None
    _check_out_dir(out_dir)

    ds = prepare(load_dataset(data, kind=kind), kind=FEED.get(kind, "mlp"), in_bits=in_bits)
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
    if channels is not None:
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
