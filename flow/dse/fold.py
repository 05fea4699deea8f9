"""Folding: how many output rows (PE) and input columns (SIMD) each layer handles per cycle.

The default rule, used when no ``--folding`` file is given:

1. The design may use about ``MAC_BUDGET`` multiply-accumulate lanes (PE x SIMD summed over
   all matrix-vector layers). A model whose every product fits in the budget is made fully
   parallel (one sample per cycle, if nothing else limits it).
2. Otherwise the target initiation interval is ``ceil(total products per sample /
   MAC_BUDGET)`` cycles, but never below what the slowest layer takes at its fastest fold
   (a convolution: one window element per channel lane per cycle).
3. Every layer then gets the cheapest of its folds (:meth:`Layer.fold_options
   <gatemill.flow.kinds.base.Layer.fold_options>`) that meets the target (balanced: no layer
   faster than it needs to be). A convolution's sliding window takes the SIMD of its
   matrix-vector layer.
4. No layer slower than it has to be: folds are coarse, so a layer can land well below the
   target while the bottleneck sits near it (a last layer of 10 rows). While making the
   bottleneck as fast as the next slowest layer costs few lanes (in all at most
   ``MAC_BUDGET / BALANCE_SHARE``), the target drops to that layer's cycles.

Foldings for a rate, a LUT budget or a board's multipliers: :mod:`.budget`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import GatemillError
from ..ir import IRGraph
from ..ir.fields import divisors

MAC_BUDGET = 1024
# The default rule speeds a bottleneck up while that costs at most 1/BALANCE_SHARE of the
# budget in extra lanes
BALANCE_SHARE = 32

__all__ = [
    "MAC_BUDGET",
    "apply_folding",
    "balanced_foldings",
    "candidate_iis",
    "default_folding",
    "divisors",
    "fold_for_ii",
    "folding_of",
    "for_device",
    "load_folding",
]


def _producers(ir: IRGraph):
    """``(layer, the layer feeding its first input, or None for the graph input)``."""
    return ((layer, ir.producers(layer)[0]) for layer in ir.layers)


def default_folding(ir: IRGraph, mac_budget: int = MAC_BUDGET) -> dict[str, dict[str, int]]:
    """The folding of the default rule (see the module documentation)."""
    target = max(1, math.ceil(sum(layer.macs for layer in ir.layers) / mac_budget))
    # no layer is made faster than the slowest layer can be
    for layer, producer in _producers(ir):
        options = layer.fold_options(producer)
        if options:
            target = max(target, layer.cycles_for(options[-1]))
    folding = fold_for_ii(ir, target)
    # no layer slower than it has to be: a bottleneck that a few more lanes speed up to the
    # next slowest layer's pace (a small last layer whose folds are coarse) is sped up
    slack = mac_budget // BALANCE_SHARE
    while True:
        cycles = _cycles(ir, folding)
        ii = max(cycles.values(), default=0)
        faster = [c for c in cycles.values() if c < ii]
        if not faster:
            return folding
        sped = fold_for_ii(ir, max(faster))
        extra = _lanes(ir, sped) - _lanes(ir, folding)
        if max(_cycles(ir, sped).values()) >= ii or extra > slack:
            return folding  # the bottleneck cannot go faster, or not cheaply
        slack -= extra
        folding = sped


def _cycles(ir: IRGraph, folding: dict) -> dict[str, int]:
    by_name = ir.by_name
    return {
        name: by_name[name].cycles_for(fold)
        for name, fold in folding.items()
        if not by_name[name].follows_consumer
    }


def _lanes(ir: IRGraph, folding: dict) -> int:
    by_name = ir.by_name
    return sum(by_name[name].macs_per_cycle(fold) for name, fold in folding.items())


def fold_for_ii(ir: IRGraph, target: int) -> dict[str, dict[str, int]]:
    """The cheapest folding whose every layer takes at most *target* cycles per sample (the
    fastest fold of a layer that cannot); a layer that follows its consumer (a convolution's
    sliding window) takes the consumer's input lanes."""
    folding: dict[str, dict[str, int]] = {}
    for layer, producer in _producers(ir):
        options = layer.fold_options(producer)
        if not options:
            continue
        fold = next((o for o in options if layer.cycles_for(o) <= target), options[-1])
        folding[layer.name] = fold
        if producer is not None and producer.follows_consumer:
            folding[producer.name] = producer.tie(layer.in_lanes_for(fold))
    return folding


def folding_of(ir: IRGraph) -> dict[str, dict[str, int]]:
    """The folding an IR carries, as written to ``folding.json``."""
    return {layer.name: layer.fold for layer in ir.layers if layer.fold_fields}


def apply_folding(
    ir: IRGraph, folding: dict[str, dict[str, int]], source: str = "folding"
) -> IRGraph:
    """A copy of *ir* with the given folds; a layer that follows its consumer (a convolution's
    sliding window) is set to what its consumer reads.

    Raises
    ------
    GatemillError
        For an unknown layer or option, or a fold that does not divide the layer.
    """
    by_name = {layer.name: layer for layer in ir.layers}
    unknown = sorted(set(folding) - set(by_name))
    if unknown:
        raise GatemillError(
            f"{source}: unknown layer(s) {', '.join(map(repr, unknown))}; the "
            f"layers are {', '.join(map(repr, by_name))}."
        )
    layers = list(ir.layers)
    for i, layer in enumerate(layers):
        if layer.name not in folding:
            continue
        fold = folding[layer.name]
        bad = sorted(set(fold) - set(layer.fold_fields))
        if bad:
            raise GatemillError(
                f"{source}: layer {layer.name!r} ({layer.kind}) has no option "
                f"{', '.join(bad)}; it takes {', '.join(layer.fold_fields) or 'nothing'}."
            )
        values = {}
        for key, value in fold.items():
            if not isinstance(value, int | str) or isinstance(value, bool):
                raise GatemillError(
                    f"{source}: layer {layer.name!r} option {key} must be an integer or a "
                    f"word, not {value!r}."
                )
            values[key] = value
        try:
            layers[i] = layer.refold(**values)
        except (ValueError, TypeError) as e:
            raise GatemillError(f"{source}: {e}.") from None
    index = {layer.name: i for i, layer in enumerate(layers)}
    for consumer in list(layers):
        for k, name in enumerate(ir.inputs[consumer.name]):
            i = index.get(name)
            if i is not None and layers[i].follows_consumer:
                try:
                    layers[i] = layers[i].refold(**layers[i].tie(consumer.input_lanes[k]))
                except ValueError as e:
                    raise GatemillError(f"{source}: layer {consumer.name!r} {e}.") from None
    return dataclasses.replace(ir, layers=tuple(layers))


def for_device(ir: IRGraph, clock_mhz: float, family: str) -> IRGraph:
    """*ir* with the fold fields every layer derives from the target clock and the device
    family (:meth:`Layer.device_fold <gatemill.flow.kinds.base.Layer.device_fold>`: the
    pipeline depth of a matrix-vector unit, its multiplier resource). The folding rules
    then set the rate fields (PE, SIMD) and keep these."""
    folding = {layer.name: f for layer in ir.layers if (f := layer.device_fold(clock_mhz, family))}
    return apply_folding(ir, folding, f"the fields for {family} at {clock_mhz:g} MHz")


def load_folding(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a ``folding.json`` (``{"layers": {name: {"pe": .., "simd": ..}}}``)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise GatemillError(f"folding file {str(p)!r} does not exist.") from None
    except json.JSONDecodeError as e:
        raise GatemillError(f"folding file {str(p)!r} is not valid JSON: {e}.") from None
    example = '{"layers": {"fc0": {"pe": 4, "simd": 8}}}'
    what = None
    if not isinstance(doc, dict) or "layers" not in doc:
        what = 'it has no "layers" object at the top'
    elif not isinstance(doc["layers"], dict):
        what = f'"layers" is a {type(doc["layers"]).__name__}, not an object'
    else:
        bad = next((n for n, v in doc["layers"].items() if not isinstance(v, dict)), None)
        if bad is not None:
            value = doc["layers"][bad]
            what = f'"layers" -> {bad!r} is {json.dumps(value)}, not an object of options'
    if what:
        raise GatemillError(
            f"folding file {str(p)!r}: {what}. A folding file looks like {example} (layer "
            "names as in the build's folding.json: write one with gatemill build and edit it)."
        )
    return doc["layers"]


def candidate_iis(ir: IRGraph) -> list[int]:
    """Every cycles-per-sample figure some fold of some layer takes, ascending.

    The balanced folding for any target equals the one for the largest of these not above it,
    so they are the only targets worth trying.
    """
    out = set()
    for layer, producer in _producers(ir):
        out.update(layer.cycles_for(o) for o in layer.fold_options(producer))
    return sorted(out) or [1]


def balanced_foldings(ir: IRGraph, targets: Iterable[int]) -> Iterator[tuple[int, dict]]:
    """``(target, fold_for_ii(ir, target))`` for each of *targets* in order, each distinct
    folding once (neighbouring targets often give the same one)."""
    seen = set()
    for target in targets:
        folding = fold_for_ii(ir, target)
        key = json.dumps(folding, sort_keys=True)
        if key not in seen:
            seen.add(key)
            yield target, folding
