"""The accelerator's stages and their timing (no hardware built).

One unit per IR layer that needs hardware; a width converter where a stream's lanes differ
from what its reader takes; a FIFO in front of every unit that does not read the accelerator's
input directly, and one at the output; a fork where a value is read by several units (a branch).

Units that each take one sample per clock as a plain pipeline
(:attr:`gatemill.flow.kinds.base.Layer.chains`: LUT layers, fully parallel matrix-vector and
threshold layers) are chained without FIFOs: a run of them is one clock-enable pipeline, every
register of it advancing when the stage after the run is ready (its ``i.ready``, the run's
``enable``; a matrix-vector or threshold unit whose output register is empty advances anyway,
closing the bubble, a LUT layer does not, so that a run of LUT layers loads on the skid
buffer's ``ready`` register itself), valid bits travelling with the data. When the run ends
at the output, that stage is a skid buffer (:mod:`.skid`) instead of a FIFO: its ``ready`` is
a register, so the enable never waits on the output's ``ready`` through logic. A unit whose
:attr:`~gatemill.flow.kinds.base.Layer.in_skid` is set reads its FIFO through a skid buffer
too, so the FIFO's memory read enable never waits on the unit's ``ready``.
:func:`plan` gives the stages in topological order (``stages[0]`` reads the accelerator's
input, ``stages[-1]`` feeds its output), :func:`estimates` the initiation interval and latency
from each stage's timing model: the layer kinds'
(:meth:`gatemill.flow.kinds.base.Layer.beat_times`), :mod:`.fifo`'s and :mod:`.width`'s.
The folding, the estimates of :mod:`gatemill.flow.dse` and :class:`gatemill.hdl.top.Accelerator`
all use this one plan.

FIFOs are one sample plus one beat deep, so a producer can run a sample ahead of a consumer
that takes its input in bursts, except where branches join: each input FIFO of a join is sized
from the timing model (:func:`join_fifo_depths`) to hold what one branch delivers while the
join waits for the other, whatever the pattern of input and backpressure.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, replace

from ..flow.ir.graph import GRAPH_INPUT, IRGraph
from . import fifo, skid, width
from .common import Backpressure, pipelined_times

# The accelerator's input and output ports, as stage names in Stage.inputs.
PORT = ""
# AxiStreamTop adds no register between the AXI ports and the chain.
IO_LATENCY = 0
# A beat that never arrives (the dependency analysis withholds input beats).
NEVER = 1 << 60
# Stages that are not layer units.
PLUMBING = ("Fifo", "WidthConverter", "Fork", "Skid")


@dataclass(frozen=True)
class Stage:
    """One element of the accelerator, with its stream widths and estimates."""

    name: str
    kind: str  # a layer kind, "WidthConverter", "Fifo", "Fork" or "Skid"
    in_lanes: int  # of the first input
    out_lanes: int
    ii: int  # cycles per sample at full rate
    latency: int  # first input beat to first output beat at full rate
    layer: object = None  # units: the layer; plumbing: the layer it feeds
    dtype: object = None  # plumbing: the datatype it carries
    depth: int = 0  # FIFOs
    per_sample: int = 0  # plumbing: elements per sample
    inputs: tuple = ()  # ((stage name or PORT, output index), ...), in input order
    outputs: int = 1  # forks: the copies
    # units of a clock-enable pipeline: the stage after it, whose input's ready is the enable
    enable: str = ""

    def beat_times(self, *avails, hold=None) -> list[int]:
        """Cycle of each output beat of one sample given when each input beat is available
        (and for a unit, *hold*: when its consumer takes its output beats)."""
        if self.kind == "Fifo":
            return fifo.beat_times(self.depth, avails[0])
        if self.kind == "WidthConverter":
            return width.beat_times(
                self.dtype, self.in_lanes, self.out_lanes, self.per_sample, avails[0]
            )
        if self.kind == "Fork":
            return list(avails[0])
        if self.kind == "Skid":
            return pipelined_times(avails[0], skid.LATENCY)
        return self.layer.beat_times(*avails, hold=hold)

    @property
    def in_beats(self) -> int:
        """Beats per sample of the first input."""
        if self.layer is not None and self.kind not in PLUMBING:
            return self.layer.input_beats[0]
        return self.per_sample // self.in_lanes


def plan(ir: IRGraph, fifo_depths: dict[str, int] | None = None) -> list[Stage]:
    """The stages for *ir* in topological order (see the module documentation).

    *fifo_depths* overrides the depth of FIFOs by stage name (0 for none); a FIFO it names
    between two chained units, or after a chain at the output, is kept (it ends the clock-enable
    pipeline).
    """
    depths = fifo_depths or {}
    by_name = ir.by_name
    units = [layer for layer in ir.layers if layer.hardware]
    if not units:
        raise ValueError("the IR has no layer that needs hardware")

    def origin(value: str) -> str:
        """The value whose stream carries *value* (a layer without hardware passes it on)."""
        while value != GRAPH_INPUT and not by_name[value].hardware:
            value = ir.inputs[value][0]
        return value

    readers: dict[str, int] = {}
    for layer in units:
        for p in ir.inputs[layer.name]:
            readers[origin(p)] = readers.get(origin(p), 0) + 1
    last = origin(ir.layers[-1].name)
    readers[last] = readers.get(last, 0) + 1

    stages: list[Stage] = []
    forks: set[str] = set()
    ports: dict[str, list[tuple[str, int]]] = {}
    carried: dict[str, tuple[int, object, int]] = {}  # value -> lanes, dtype, per sample

    def publish(value: str, source: tuple[str, int], lanes: int, dtype, per_sample: int):
        carried[value] = (lanes, dtype, per_sample)
        n = readers.get(value, 0)
        if n > 1:
            name = f"{value or 'input'}_fork"
            beats = per_sample // lanes
            stages.append(
                Stage(name, "Fork", lanes, lanes, beats, 0, dtype=dtype, per_sample=per_sample,
                      inputs=(source,), outputs=n)
            )  # fmt: skip
            ports[value] = [(name, k) for k in range(n)]
            forks.add(name)
        else:
            ports[value] = [source]

    def feed(source, value, lanes: int, layer, key: str, fifo_wanted: bool, skids: bool):
        """*value*'s stream from *source* as *lanes* a beat, through a width converter and a
        FIFO named after *key*, and a skid buffer after the FIFO if *skids*; returns the new
        source. Behind a fork the FIFO comes first:
        a width converter that takes an input beat every few cycles would hold the fork, and
        with it every other branch, to its pace."""
        have, dtype, per_sample = carried[value]

        def add_width(source):
            if have == lanes:
                return source
            stages.append(
                Stage(
                    f"{key}_width",
                    "WidthConverter",
                    have,
                    lanes,
                    width.cycles_per_sample(dtype, have, lanes, per_sample),
                    width.latency_cycles(dtype, have, lanes, per_sample),
                    layer,
                    dtype=dtype,
                    per_sample=per_sample,
                    inputs=(source,),
                )
            )
            return (f"{key}_width", 0)

        def add_fifo(source, n):
            beats = per_sample // n
            depth = depths.get(f"{key}_fifo", beats + 1)
            if not depth:
                return source
            stages.append(
                Stage(f"{key}_fifo", "Fifo", n, n, beats, fifo.latency_cycles(depth), layer,
                      dtype=dtype, depth=depth, per_sample=per_sample, inputs=(source,))
            )  # fmt: skip
            if not skids:
                return (f"{key}_fifo", 0)
            stages.append(
                Stage(f"{key}_skid", "Skid", n, n, beats, skid.LATENCY, layer, dtype=dtype,
                      per_sample=per_sample, inputs=((f"{key}_fifo", 0),))
            )  # fmt: skip
            return (f"{key}_skid", 0)

        if not fifo_wanted:
            return add_width(source)
        if source[0] in forks:
            return add_width(add_fifo(source, have))
        return add_fifo(add_width(source), lanes)

    first = units[0]
    publish(GRAPH_INPUT, (PORT, 0), first.input_lanes[0], ir.input.dtype, math.prod(ir.input.shape))
    unit_names = {layer.name for layer in units}
    links: dict[str, str] = {}  # unit -> the unit it feeds under the same clock enable
    for layer in units:
        sources = []
        for k, p in enumerate(ir.inputs[layer.name]):
            value = origin(p)
            source = ports[value].pop(0)
            key = layer.name if layer.arity == 1 else f"{layer.name}_{k}"
            direct = source == (PORT, 0)  # the accelerator input, read by this unit alone
            if (
                layer.chains
                and source[0] in unit_names  # read by this unit alone: no fork between
                and by_name[source[0]].chains
                and carried[value][0] == layer.input_lanes[k]
                and f"{key}_fifo" not in depths
            ):
                links[source[0]] = layer.name
                sources.append(source)
                continue
            sources.append(
                feed(source, value, layer.input_lanes[k], layer, key, not direct, layer.in_skid)
            )
        stages.append(
            Stage(layer.name, layer.kind, layer.input_lanes[0], layer.out_lanes, layer.cycles(),
                  layer.latency(), layer, inputs=tuple(sources))
        )  # fmt: skip
        publish(layer.name, (layer.name, 0), layer.out_lanes, layer.out_dtype,
                math.prod(layer.out_shape))  # fmt: skip
    out_layer = by_name[last]
    if last in links.values() and f"{last}_out_fifo" not in depths:
        lanes, dtype, per_sample = carried[last]
        stages.append(
            Stage(f"{last}_out_skid", "Skid", lanes, lanes, per_sample // lanes, skid.LATENCY,
                  out_layer, dtype=dtype, per_sample=per_sample, inputs=(ports[last].pop(0),))
        )  # fmt: skip
    else:
        feed(ports[last].pop(0), last, carried[last][0], out_layer, f"{last}_out", True, False)
    sized = join_fifo_depths(stages)
    enable = _enables(stages, links)
    return [
        replace(
            s,
            depth=sized[s.name] if s.name in sized and s.name not in depths else s.depth,
            enable=enable.get(s.name, ""),
        )
        for s in stages
    ]


def _enables(stages: list[Stage], links: dict[str, str]) -> dict[str, str]:
    """``{unit: stage}``: for every unit of a clock-enable pipeline (*links*: each unit to the
    one it feeds), the stage after the pipeline, whose input's ``ready`` enables it."""
    reader = {}
    for s in stages:
        for src, _ in s.inputs:
            reader.setdefault(src, s.name)
    out = {}
    for unit in {*links, *links.values()}:
        end = unit
        while end in links:
            end = links[end]
        out[unit] = reader[end]
    return out


def propagate(stages: list[Stage], avail: list[int]) -> dict[tuple[str, int], list[int]]:
    """The cycle of every beat on every stage output, for one sample whose input beats are
    available at the cycles *avail*: ``{(stage, output): [cycle, ...]}`` (the input is
    ``(PORT, 0)``)."""
    times = {(PORT, 0): list(avail)}
    # a width converter that narrows may refuse beats; the unit before it then stalls
    intakes = {
        s.inputs[0]: (s.name, width.Intake(s.in_lanes, s.out_lanes, s.per_sample))
        for s in stages
        if s.kind == "WidthConverter" and s.in_lanes != s.out_lanes
    }
    for s in stages:
        if (s.name, 0) in times:  # a converter, done with the unit before it
            continue
        ins = [times[src] for src in s.inputs]
        intake = intakes.get((s.name, 0)) if s.kind not in PLUMBING else None
        if intake is None:
            out = s.beat_times(*ins)
        else:
            out = s.beat_times(*ins, hold=Backpressure(intake[1].take))
            times[(intake[0], 0)] = intake[1].out
        for k in range(s.outputs):
            times[(s.name, k)] = out
    return times


def estimates(stages: list[Stage]) -> dict:
    """Initiation interval (the slowest stage) and latency of the design at full rate.

    The latency follows one sample's beats through every stage's timing model (each
    ``beat_times``): the input beats are all available at cycle 0, and the estimate is the
    cycle of the first output beat. Summing the units' latencies would undercount: a folded
    unit spaces its output beats, and its consumer may need several of them. A FIFO (a sample
    deep) never refuses a beat, but a width converter right after a unit may (one that narrows
    the beats drains them more slowly than a unit can burst them), and the unit then stalls:
    its timing model follows the converter's intake (:class:`gatemill.hdl.width.Intake`).
    """
    times = propagate(stages, [0] * stages[0].in_beats)
    return {
        "ii_cycles": max(s.ii for s in stages),
        "latency_cycles": int(times[(stages[-1].name, 0)][0]) + IO_LATENCY,
        "bottleneck": max(stages, key=lambda s: s.ii).name,
    }


def join_fifo_depths(stages: list[Stage]) -> dict[str, int]:
    """``{fifo stage: depth}`` for the FIFO on every input of every join (a unit with several
    inputs: the last FIFO before it, maybe behind a width converter), from the timing model:

    - **no deadlock**: the input is withheld after ``n`` beats, for every ``n``; when
      everything has settled, the join has taken what the others let it take, and a FIFO
      holds what its branch delivered beyond that. The most over all ``n`` is what the FIFO
      needs so that no branch ever stalls the fork that feeds the other (which may need more
      input before the join can go on), whatever the pattern of input and backpressure;
    - **full rate**: at full rate, with every sample's beats a shift of the first's by the
      initiation interval, the most a FIFO holds over three overlapping samples.

    Counted in elements (a width converter may stand between the FIFO and the join), then in
    the FIFO's beats.
    """
    joins = [s for s in stages if len(s.inputs) > 1]
    if not joins:
        return {}
    by_name = {s.name: s for s in stages}
    paths = {}  # (join, input) -> the FIFO on that input
    for j in joins:
        for k, (src, _) in enumerate(j.inputs):
            while src in by_name and by_name[src].kind == "WidthConverter":
                src = by_name[src].inputs[0][0]
            if src in by_name and by_name[src].kind == "Fifo":
                paths[(j.name, k)] = by_name[src]
    need = {f.name: 1 for f in paths.values()}

    def held(times, j, k, queue, ii=0, samples=1) -> int:
        """The most elements *queue* holds for input *k* of *j*, over *samples* samples each
        shifted by *ii*, in the FIFO's beats."""
        arrived = sorted(
            t + m * ii for m in range(samples) for t in times[queue.inputs[0]] if t < NEVER
        )
        takes = j.layer.take_times(*(times[src] for src in j.inputs))[k]
        lanes_in, lanes_out = queue.in_lanes, j.layer.input_lanes[k]
        most, per = 0, len(takes)
        for m in range(samples):
            for b, t in enumerate(takes):
                if t >= NEVER:  # withheld: what has arrived stays
                    elems = lanes_in * len(arrived) - lanes_out * (m * per + b)
                    most = max(most, elems)
                    break
                elems = lanes_in * _count_le(arrived, t + m * ii) - lanes_out * (m * per + b)
                most = max(most, elems)
        return -(-most // lanes_in)

    total = stages[0].in_beats
    for n in range(total + 1):
        times = propagate(stages, [0] * n + [NEVER] * (total - n))
        for (jn, k), queue in paths.items():
            need[queue.name] = max(need[queue.name], held(times, by_name[jn], k, queue))
    ii = max(s.ii for s in stages)
    times = propagate(stages, list(range(total)))
    for (jn, k), queue in paths.items():
        need[queue.name] = max(need[queue.name], held(times, by_name[jn], k, queue, ii, 3))
    return need


def _count_le(sorted_values: list[int], bound: int) -> int:
    return bisect.bisect_right(sorted_values, bound)


def layer_of_stages(stages: list[dict]) -> dict[str, str]:
    """``{stage: layer}``: a FIFO, width converter or fork belongs to the unit it feeds.

    The plumbing of a unit comes right before it in :func:`plan`'s order; the last FIFO, which
    feeds the output port, belongs to the last unit.
    """
    owner, pending, last = {}, [], None
    for s in stages:
        if s["kind"] in PLUMBING:
            pending.append(s["name"])
            continue
        for p in pending:
            owner[p] = s["name"]
        owner[s["name"]] = last = s["name"]
        pending = []
    for p in pending:
        owner[p] = last
    return owner
