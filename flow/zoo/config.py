"""What ``gatemill train`` takes: :class:`TrainConfig`, checked when made, and the zoo's
per-kind :data:`DEFAULTS`. Free of torch, so the Python API and the CLI load it quickly."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import GatemillError

_BITS = {"wbits": 4, "abits": 4, "in_bits": 8}
DEFAULTS: dict[str, dict] = {
    "mlp": {"hidden": (64, 64), "channels": None, "epochs": 40, "lr": 0.01, **_BITS},
    "cnn": {"hidden": (64,), "channels": (16, 32), "epochs": 30, "lr": 0.01, **_BITS},
    # a stem and one residual block of 16 channels
    "rescnn": {"hidden": (64,), "channels": (16, 16), "epochs": 20, "lr": 0.01, **_BITS},
    "cnn1d": {"hidden": (32,), "channels": (8, 16), "epochs": 20, "lr": 0.01, **_BITS},
    # channels: the per-element layers (phi); hidden: the layers after the mean (rho)
    "deepsets": {"hidden": (64,), "channels": (64, 64), "epochs": 60, "lr": 0.01, **_BITS},
    # every neuron a 12-bit table: fan-in 6 of 2-bit values
    "lutnet": {"hidden": (128, 64), "channels": None, "epochs": 40, "lr": 0.01, "fanin": 6,
               "out_bits": None, "wbits": 4, "abits": 2, "in_bits": 2},
    "poetbin": {"hidden": (64, 64), "channels": None, "epochs": 40, "lr": 0.01, "depth": 6,
                "trees": 8, "wbits": 1, "abits": 1, "in_bits": 8},
}  # fmt: skip
"""Per-kind defaults of the :class:`TrainConfig` fields left as None; its keys are the
kinds of :data:`gatemill.flow.zoo.models.MODELS`."""
KIND_OPTIONS = ("fanin", "out_bits", "depth", "trees")
"""Options only some kinds take: those whose :data:`DEFAULTS` name them."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything ``gatemill train`` takes; checked when made.

    Parameters
    ----------
    kind : {"mlp", "cnn", "rescnn", "cnn1d", "deepsets", "lutnet", "poetbin"}
        Model kind (see :data:`gatemill.flow.zoo.models.MODELS`). A ``poetbin`` is trained
        with a float linear head, which is then replaced by a PoET-BiN head fitted on the
        binary features (:func:`gatemill.flow.zoo.poetbin.fit_head`); ``train.json`` then
        has a ``head`` entry comparing the two.
    out_dir : path
        Output directory; created if missing. An existing non-empty directory is used only if
        gatemill made it (it holds ``train.json`` or a ``.gatemill`` marker).
    wbits, abits : int, optional
        Weight and activation bits, 1..8 (1 = bipolar); None takes :data:`DEFAULTS`.
    hidden, channels : sequence of int, optional
        Dense widths, and convolution channels (cnn, cnn1d; for a rescnn the stem's width then
        one equal entry per residual block; for deepsets the per-element layers' widths);
        None takes :data:`DEFAULTS`.
    epochs : int, optional
        Training epochs; None takes :data:`DEFAULTS`.
    seed : int
        Seed for weights initialisation and batch order.
    data : path, optional
        A user ``.npz`` (see :func:`gatemill.flow.zoo.data.load_npz`); None uses the digits
        (as point sets for deepsets) or, for cnn1d, generated pulses
        (:func:`gatemill.flow.zoo.data.load_pulses`).
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
    fanin : int, optional
        ``lutnet`` only: inputs of every neuron.
    out_bits : int, optional
        ``lutnet`` only: quantize the logits to this many bits, 1..8 (1 = bipolar), after a
        BatchNorm, as LogicNets' ``output_bitwidth``: the last layer's tables then give
        ``out_bits`` bits per class. None gives the last layer's integer accumulator.
    depth, trees : int, optional
        ``poetbin`` only: tree depth and trees per class.
    sparsity : float
        ``mlp`` and ``cnn``: prune this share of every layer's weights by magnitude during the
        quantized training, on a schedule (:mod:`gatemill.flow.zoo.prune`); 0 prunes nothing.
        ``train.json`` then has a ``pruning`` entry (schedule and the share of zeros reached
        per layer).

    Raises
    ------
    GatemillError
        For an unknown kind, an option the kind does not take, or a value out of range (the
        architecture's own checks run when
        :func:`gatemill.flow.zoo.train.train` builds the model).
    """

    kind: str
    out_dir: Path
    wbits: int | None = None
    abits: int | None = None
    hidden: tuple[int, ...] | None = None
    channels: tuple[int, ...] | None = None
    epochs: int | None = None
    seed: int = 0
    data: Path | None = None
    scaling: str = "float"
    batchnorm: bool = True
    in_bits: int | None = None
    per_channel: bool = False
    lr: float | None = None
    batch_size: int = 64
    fanin: int | None = None
    out_bits: int | None = None
    depth: int | None = None
    trees: int | None = None
    sparsity: float = 0.0

    def __post_init__(self):
        for name in ("hidden", "channels"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.kind not in DEFAULTS:
            raise GatemillError(
                f"Unknown model kind {self.kind!r}; choose one of {', '.join(DEFAULTS)}."
            )
        defaults = DEFAULTS[self.kind]
        for name in KIND_OPTIONS:
            value = getattr(self, name)
            if value is not None and name not in defaults:
                owners = " and ".join(k for k, d in DEFAULTS.items() if name in d)
                raise GatemillError(
                    f"{name} ({value!r}) applies only to {owners}, not to {self.kind}."
                )
        if defaults["channels"] is None and self.channels is not None:
            owners = ", ".join(k for k, d in DEFAULTS.items() if d["channels"] is not None)
            raise GatemillError(
                f"channels ({self.channels!r}) only applies to {owners}, not to {self.kind}."
            )
        if self.sparsity and self.kind not in ("mlp", "cnn"):
            raise GatemillError(
                f"--sparsity applies to mlp and cnn models, not to a {self.kind} (its neurons "
                "already have a fixed, small fan-in)."
            )
        r = self.resolved()
        _check_int("epochs", r["epochs"], minimum=1)
        _check_int("batch_size", self.batch_size, minimum=2)
        _check_int("seed", self.seed, minimum=0)
        lr = r["lr"]
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise GatemillError(f"lr must be a positive number, not {lr!r}.")

    def resolved(self) -> dict:
        """The options with the kind's :data:`DEFAULTS` in place of None (``channels`` only
        for the kinds that have them; :data:`KIND_OPTIONS` only for the kinds that take
        them)."""
        defaults = DEFAULTS[self.kind]
        r = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("hidden", "epochs", "lr", "wbits", "abits", "in_bits", "channels"):
            if r[name] is None:
                r[name] = defaults[name]
        for name in KIND_OPTIONS:
            if name in defaults:
                r[name] = defaults[name] if r[name] is None else r[name]
            else:
                del r[name]
        return r


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GatemillError(f"{name} must be an integer of at least {minimum}, not {value!r}.")
