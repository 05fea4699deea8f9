"""PoET-BiN: a binary feature extractor with a head of boosted, LUT-sized decision trees.

The model is a binarized MLP (bipolar weights and activations by default) whose last hidden
layer gives ``F`` binary features. Its classifier head is trained in two steps:

1. with a float linear head (``head="linear"``), by quantization-aware training like every
   zoo model: this is the *float head* whose accuracy ``train.json`` reports for comparison;
2. replaced by a PoET-BiN head fitted on the binary features of the training set
   (:func:`fit_ensemble`): per class, an AdaBoost ensemble of ``trees`` decision trees of
   depth ``depth`` whose nodes at one depth all test the same feature (level-shared), so a
   tree reads exactly ``depth`` features and is one ``depth``-input truth table. Trees are
   fitted greedily level by level, each level taking the feature that minimises the weighted
   error. A weighted-majority table per class turns the class's tree outputs into a vote
   level of ``vote_bits`` bits; the output is the ten vote levels (argmax = class).

:class:`PoetBinHead` computes the head with standard ONNX operators: each table layer packs
its inputs' bits into an index with a ``MatMul`` by powers of two (plus an ``Add``), casts it
to integers and ``Gather`` s from the flat truth table, so QONNX and onnxruntime execute the
exported graph and the import maps each table layer to a ``LutLayer``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import GatemillError
from .parts import check_classes, check_widths, layer_parts

HEADS = ("trees", "linear")


def _check_positive(name: str, value: object, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise GatemillError(f"{name} must be an integer from 1 to {top}, not {value!r}.")
    return value


@dataclass(frozen=True)
class Ensemble:
    """Boosted level-shared trees, one ensemble per class.

    Parameters
    ----------
    features : ndarray of int, shape (C, M, K)
        Feature tested at each depth of each tree.
    leaves : ndarray of int, shape (C, M, 2**K)
        Tree output (-1/+1) for each address ``sum_d bit_d << d``, where ``bit_d`` is 1 when
        the feature tested at depth ``d`` is +1.
    alphas : ndarray of float, shape (C, M)
        AdaBoost weights of the trees.
    """

    features: np.ndarray
    leaves: np.ndarray
    alphas: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(classes, trees per class, depth)``."""
        return tuple(int(v) for v in self.features.shape)

    def tree_outputs(self, bits: np.ndarray) -> np.ndarray:
        """Every tree's output, ``(N, C, M)`` of -1/+1, for binary features ``(N, F)``."""
        depth = self.shape[2]
        addr = (bits[:, self.features].astype(np.int64) << np.arange(depth)).sum(-1)
        c, m = np.indices(self.shape[:2])
        return self.leaves[c, m, addr]

    def scores(self, votes: np.ndarray) -> np.ndarray:
        """Weighted vote per class in ``[-1, 1]`` for tree outputs ``(..., C, M)``."""
        return (votes * self.alphas).sum(-1) / self.alphas.sum(-1)

    def vote_levels(self, votes: np.ndarray, vote_bits: int) -> np.ndarray:
        """The vote quantized to ``0 .. 2**vote_bits - 1`` (what the head outputs)."""
        top = (1 << vote_bits) - 1
        return np.rint((self.scores(votes) + 1.0) / 2.0 * top).astype(np.int64)

    def vote_tables(self, vote_bits: int) -> np.ndarray:
        """Weighted-majority tables ``(C, 2**M)``: the vote level for every tree pattern."""
        m = self.shape[1]
        addr = np.arange(1 << m)[:, None]
        votes = 2 * ((addr >> np.arange(m)) & 1) - 1  # (2**M, M), bit m = tree m says +1
        return self.vote_levels(votes[:, None, :], vote_bits).T

    def predict(self, bits: np.ndarray, vote_bits: int | None = None) -> np.ndarray:
        """Class of each sample: argmax of the quantized vote, or of the real vote."""
        votes = self.tree_outputs(bits)
        if vote_bits is None:
            return self.scores(votes).argmax(-1)
        return self.vote_levels(votes, vote_bits).argmax(-1)


def fit_tree(bits: np.ndarray, y: np.ndarray, w: np.ndarray, depth: int):
    """One level-shared tree, fitted greedily level by level.

    Parameters
    ----------
    bits : ndarray of uint8, shape (N, F)
    y : ndarray of int, shape (N,)
        Targets -1/+1.
    w : ndarray of float, shape (N,)
        Sample weights.
    depth : int

    Returns
    -------
    features : list of int
        The feature tested at each depth.
    leaves : ndarray of int, shape (2**depth,)
        Weighted-majority target of each leaf; an empty (or tied) leaf takes the majority of
        its nearest non-empty ancestor, the root defaulting to -1.
    """
    n, f = bits.shape
    pos, neg = w * (y > 0), w * (y < 0)
    cell = np.zeros(n, np.int64)
    chosen: list[int] = []
    for level in range(depth):
        best, best_err = -1, math.inf
        for j in range(f):
            if j in chosen:
                continue
            c = cell + (bits[:, j].astype(np.int64) << level)
            size = 2 << level
            err = np.minimum(np.bincount(c, pos, size), np.bincount(c, neg, size)).sum()
            if err < best_err - 1e-12:
                best, best_err = j, err
        chosen.append(best)
        cell += bits[:, best].astype(np.int64) << level
    leaves = np.full(1 << depth, -1, np.int64)
    addr = np.arange(1 << depth)
    for level in range(depth + 1):  # deeper levels override their ancestors
        size = 1 << level
        node = addr & (size - 1)
        p = np.bincount(cell & (size - 1), pos, size)[node]
        q = np.bincount(cell & (size - 1), neg, size)[node]
        leaves = np.where(p > q, 1, np.where(p < q, -1, leaves))
    return chosen, leaves


def fit_ensemble(
    bits: np.ndarray, labels: np.ndarray, n_classes: int, *, depth: int, trees: int
) -> Ensemble:
    """One-vs-rest discrete AdaBoost of level-shared trees for every class.

    Each class starts with the positive and the negative samples weighing one half each, so
    the rare class is not ignored; later trees concentrate on the samples the earlier ones got
    wrong.
    """
    bits = np.asarray(bits, np.uint8)
    if depth > bits.shape[1]:
        raise GatemillError(
            f"depth {depth} exceeds the {bits.shape[1]} binary features: a level-shared tree "
            "tests a different feature at each depth."
        )
    feats = np.zeros((n_classes, trees, depth), np.int64)
    leaves = np.zeros((n_classes, trees, 1 << depth), np.int64)
    alphas = np.zeros((n_classes, trees))
    for c in range(n_classes):
        y = np.where(labels == c, 1, -1)
        w = np.where(y > 0, 0.5 / max(1, (y > 0).sum()), 0.5 / max(1, (y < 0).sum()))
        for m in range(trees):
            chosen, leaf = fit_tree(bits, y, w, depth)
            addr = (bits[:, chosen].astype(np.int64) << np.arange(depth)).sum(-1)
            pred = leaf[addr]
            err = float(np.clip(w[pred != y].sum() / w.sum(), 1e-6, 1 - 1e-6))
            alpha = 0.5 * math.log((1 - err) / err)
            feats[c, m], leaves[c, m], alphas[c, m] = chosen, leaf, alpha
            w = w * np.exp(-alpha * y * pred)
            w /= w.sum()
    return Ensemble(feats, leaves, alphas)


class PoetBinHead(nn.Module):
    """The PoET-BiN head as two table-lookup layers of standard operators.

    Layer 1 (trees): ``C * M`` tables of ``2**K`` entries (-1/+1), tree ``t`` reading
    features ``features[t]``. Layer 2 (weighted majority): ``C`` tables of ``2**M`` vote
    levels, class ``c`` reading its own ``M`` trees. A layer computes, for bipolar inputs
    ``x``, ``index = x @ select + offset`` with ``select[j, t] = 2**(d - 1)`` when input ``j``
    is bit ``d`` of table ``t``'s address and ``offset[t] = (2**bits - 1) / 2`` plus the
    table's start in the flat ``table`` (this is ``sum_d 2**d * (x_d + 1) / 2`` exactly in
    float32), then ``table[index]``.

    Parameters
    ----------
    n_features, n_classes, depth, trees, vote_bits : int
    """

    def __init__(
        self, *, n_features: int, n_classes: int, depth: int, trees: int, vote_bits: int
    ) -> None:
        super().__init__()
        self.shape = (n_classes, trees, depth)
        self.vote_bits = vote_bits
        t = n_classes * trees
        self.register_buffer("tree_select", torch.zeros(n_features, t))
        self.register_buffer("tree_offset", torch.zeros(t))
        self.register_buffer("tree_table", torch.zeros(t << depth))
        self.register_buffer("vote_select", torch.zeros(t, n_classes))
        self.register_buffer("vote_offset", torch.zeros(n_classes))
        self.register_buffer("vote_table", torch.zeros(n_classes << trees))

    @staticmethod
    def _packing(reads: np.ndarray, n_inputs: int):
        """``select`` and ``offset`` of a table layer whose table ``t`` reads ``reads[t]``."""
        tables, k = reads.shape
        select = np.zeros((n_inputs, tables), np.float32)
        for t, row in enumerate(reads):
            select[row, t] = 2.0 ** (np.arange(k) - 1)
        offset = (2.0**k - 1) / 2 + (np.arange(tables) << k)
        return select, offset.astype(np.float32)

    def set_ensemble(self, ens: Ensemble) -> None:
        """Load the tables of a fitted :class:`Ensemble`."""
        if ens.shape != self.shape:
            raise ValueError(f"ensemble of shape {ens.shape} for a head of shape {self.shape}")
        c, m, _ = self.shape
        sel, off = self._packing(ens.features.reshape(c * m, -1), self.tree_select.shape[0])
        votes = ens.vote_tables(self.vote_bits)
        vsel, voff = self._packing(np.arange(c * m).reshape(c, m), c * m)
        for name, value in (
            ("tree_select", sel),
            ("tree_offset", off),
            ("tree_table", ens.leaves.reshape(-1)),
            ("vote_select", vsel),
            ("vote_offset", voff),
            ("vote_table", votes.reshape(-1)),
        ):
            getattr(self, name).copy_(torch.from_numpy(np.asarray(value, np.float32)))

    def forward(self, x):
        trees = self.tree_table[(x @ self.tree_select + self.tree_offset).to(torch.int64)]
        return self.vote_table[(trees @ self.vote_select + self.vote_offset).to(torch.int64)]


def build_poetbin(
    *,
    in_shape: Sequence[int],
    n_classes: int,
    hidden: Sequence[int] = (64, 64),
    wbits: int = 1,
    abits: int = 1,
    scaling: str = "float",
    per_channel: bool = False,
    batchnorm: bool = True,
    in_bits: int = 8,
    in_range: tuple[float, float] = (0.0, 1.0),
    depth: int = 6,
    trees: int = 8,
    vote_bits: int = 6,
    head: str = "trees",
    quant: bool = True,
) -> nn.Sequential:
    """A binary feature extractor (an MLP with bipolar activations) and a classifier head.

    Parameters
    ----------
    in_shape, n_classes, wbits, scaling, per_channel, batchnorm, in_bits, in_range, quant
        As for :func:`gatemill.flow.zoo.models.build_mlp`.
    hidden : sequence of int
        Widths of the extractor's layers; the last is the number of binary features.
    abits : int
        Must be 1: the features are binary.
    depth, trees : int
        Tree depth K (inputs of a tree table, 1..12) and trees per class M (inputs of a
        weighted-majority table, 1..12).
    vote_bits : int
        Bits of each class's vote level (the head's outputs), 1..8.
    head : {"trees", "linear"}
        The PoET-BiN head (:class:`PoetBinHead`, tables loaded with
        :meth:`PoetBinHead.set_ensemble`), or the float linear head it is compared with.

    Returns
    -------
    torch.nn.Sequential
        Modules ``input``, ``fc<i>``, ``fc<i>_bn``, ``fc<i>_act`` and ``head``.
    """
    from brevitas.nn import QuantIdentity
    from brevitas.quant import SignedBinaryActPerTensorConst

    parts = layer_parts(
        quant=quant,
        wbits=wbits,
        abits=abits,
        scaling=scaling,
        per_channel=per_channel,
        in_bits=in_bits,
        in_range=in_range,
    )
    if abits != 1:
        raise GatemillError(f"A poetbin's features are binary: abits must be 1, not {abits!r}.")
    hidden = check_widths("hidden", hidden)
    shape = check_widths("in_shape", in_shape)
    check_classes(n_classes)
    _check_positive("depth", depth, min(12, hidden[-1]))
    _check_positive("trees", trees, 12)
    _check_positive("vote_bits", vote_bits, 8)
    if head not in HEADS:
        raise GatemillError(f"head must be one of {', '.join(HEADS)}, not {head!r}.")
    layers: OrderedDict[str, nn.Module] = OrderedDict(input=parts.input())
    if len(shape) > 1:
        layers["flatten"] = nn.Flatten()
    n = math.prod(shape)
    for i, width in enumerate(hidden):
        layers[f"fc{i}"] = parts.linear(n, width, bias=not batchnorm)
        if batchnorm:
            layers[f"fc{i}_bn"] = nn.BatchNorm1d(width)
        last = i == len(hidden) - 1
        if last and quant:
            # the features feed plain torch code: a tensor, not a QuantTensor
            layers[f"fc{i}_act"] = QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        else:
            layers[f"fc{i}_act"] = parts.act()
        n = width
    if head == "linear":
        layers["head"] = nn.Linear(n, n_classes)
    else:
        layers["head"] = PoetBinHead(
            n_features=n, n_classes=n_classes, depth=depth, trees=trees, vote_bits=vote_bits
        )
    return nn.Sequential(layers)


@torch.no_grad()
def features(model: nn.Sequential, x: np.ndarray) -> np.ndarray:
    """Binary features (1 for +1) of the extractor of *model* (every module but the head)."""
    model.eval()
    out = x if len(model) < 2 else model[:-1](torch.from_numpy(x))
    return (np.asarray(out) > 0).astype(np.uint8)


def fit_head(model: nn.Sequential, arch: dict, ds) -> tuple[nn.Sequential, dict]:
    """Replace the trained float head of *model* by a PoET-BiN head fitted on its features.

    Parameters
    ----------
    model : torch.nn.Sequential
        A trained ``build_poetbin(..., head="linear")`` model.
    arch : dict
        The builder's arguments (``depth``, ``trees``, ``vote_bits``, ``n_classes``).
    ds : Dataset
        The prepared data set.

    Returns
    -------
    model : torch.nn.Sequential
        The same model with the tree head (what ``model.onnx`` computes).
    report : dict
        Accuracies of the float head and of the trees (with the real and the quantized vote),
        on the test set (and the trees on the training set), and the head's table counts.
    """
    depth, trees = arch.get("depth", 6), arch.get("trees", 8)
    vote_bits = arch.get("vote_bits", 6)
    with torch.no_grad():
        pred = model(torch.from_numpy(ds.x_test)).argmax(1).numpy()
    float_head = float((pred == ds.y_test).mean())
    bits_train, bits_test = features(model, ds.x_train), features(model, ds.x_test)
    ens = fit_ensemble(bits_train, ds.y_train, arch["n_classes"], depth=depth, trees=trees)
    head = PoetBinHead(
        n_features=bits_train.shape[1],
        n_classes=arch["n_classes"],
        depth=depth,
        trees=trees,
        vote_bits=vote_bits,
    )
    head.set_ensemble(ens)
    model.head = head

    def acc(bits, y, vb):
        return float((ens.predict(bits, vb) == y).mean())

    c = arch["n_classes"]
    return model.eval(), {
        "float_head_accuracy": float_head,
        "trees_accuracy": acc(bits_test, ds.y_test, vote_bits),
        "trees_real_vote_accuracy": acc(bits_test, ds.y_test, None),
        "trees_train_accuracy": acc(bits_train, ds.y_train, vote_bits),
        "depth": depth,
        "trees_per_class": trees,
        "vote_bits": vote_bits,
        "tree_tables": c * trees,
        "vote_tables": c,
    }
