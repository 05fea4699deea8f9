"""What every layer kind provides: the contract of :class:`Layer`.

A layer kind is one module of this package: its params dataclass (a subclass of
:class:`Layer`), whose methods tell its whole story to the rest of the flow:

- **golden model**: :meth:`Layer.execute`, exact integer arithmetic on a batch;
- **folding**: :attr:`Layer.fold_fields` (the keys of ``folding.json``),
  :meth:`Layer.fold_options` (the legal folds, cheapest first) and :meth:`Layer.cycles_for`;
- **timing**: :meth:`Layer.cycles` (initiation interval of the unit alone),
  :meth:`Layer.beat_times` (the cycle of every output beat of a sample, given when its input
  beats arrive and when its consumer takes its output beats) and :meth:`Layer.latency`
  (derived from it), :attr:`Layer.in_lanes` and :attr:`Layer.out_lanes` (elements per
  stream beat);
- **cost**: :meth:`Layer.features`, what Yosys maps the unit to
  (:mod:`gatemill.flow.kinds.resources`), weighted by :mod:`gatemill.flow.dse.cost`;
- **hardware**: :meth:`Layer.unit`, the Amaranth component of :mod:`gatemill.hdl`, and
  :meth:`Layer.hls`, its HLS kernel call (:mod:`gatemill.flow.hls.plan`);
- **summary**: :meth:`Layer.describe` (one line, for the console and the report) and
  :meth:`Layer.summary` (``import.json``).

The folding, the top-level plan, the estimates, the HLS plan and the reports loop over the
layers and call these methods; none of them dispatches on a kind's name.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..ir.datatypes import check_values


@dataclass(frozen=True, kw_only=True, eq=False)
class Layer:
    """Base of all IR layers.

    Every kind also has ``in_dtype`` and ``out_dtype`` (fields or properties: the datatypes of
    its input and output elements), besides the methods below.

    Parameters
    ----------
    name : str
        A sanitized identifier (letters, digits, ``_``), unique within the graph.
    """

    kind: ClassVar[str] = "Layer"
    fold_fields: ClassVar[tuple[str, ...]] = ()
    """Parameters a folding sets (``folding.json``); the rest come from the model."""
    hardware: ClassVar[bool] = True
    """False for a layer that needs no hardware (the stream already has its layout)."""
    follows_consumer: ClassVar[bool] = False
    """True when the fold is set by the layer this one feeds (:meth:`tie`), not chosen."""
    exhaustive: ClassVar[bool] = False
    """True when the build checks the unit for every input (:meth:`check_unit`)."""
    arity: ClassVar[int] = 1
    """Inputs the layer takes (a join of branches takes several: its unit has ports ``i0``,
    ``i1``, ...; a single-input unit has ``i``)."""
    plain_pipeline: ClassVar[bool] = False
    """True when the unit, at one sample per clock, is a plain pipeline: its input is ready
    whenever its output is (every register loads on ``~o.valid | o.ready``) and each input
    beat gives one output beat. Such units chain under one clock enable (:attr:`chains`)."""

    name: str

    def __post_init__(self):
        if not (isinstance(self.name, str) and self.name.isidentifier() and self.name.isascii()):
            raise ValueError(f"layer name must be a sanitized identifier, not {self.name!r}")

    # -- shapes, datatypes, golden model --------------------------------------------------------

    @property
    def in_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def out_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def in_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shape of each input (a join has several)."""
        return (self.in_shape,)

    @property
    def in_dtypes(self) -> tuple:
        """The datatype of each input."""
        return (self.in_dtype,)

    def execute(self, x: np.ndarray) -> np.ndarray:
        """Exact integer execution on a batch ``(N, *in_shape)``; returns ``(N, *out_shape)``
        (a join takes one batch per input)."""
        raise NotImplementedError

    def check_input(self, x: np.ndarray) -> np.ndarray:
        """*x* as int64 after checking its shape and that its values are ``in_dtype``'s."""
        x = np.asarray(x)
        if x.shape[1:] != self.in_shape:
            raise ValueError(f"{self.name}: input shape {x.shape[1:]} != {self.in_shape}")
        check_values(f"{self.name} input", x, self.in_dtype)
        return x.astype(np.int64, copy=False)

    def params(self) -> dict[str, Any]:
        """The dataclass fields as a dict (arrays and datatypes as they are)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not (
                    isinstance(a, np.ndarray)
                    and isinstance(b, np.ndarray)
                    and a.dtype == b.dtype
                    and np.array_equal(a, b)
                ):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None

    # -- folding --------------------------------------------------------------------------------

    @property
    def fold(self) -> dict[str, int | str]:
        """The layer's folding, as ``folding.json`` holds it (integers, and words such as a
        multiplier resource)."""
        return {
            f: v if isinstance(v := getattr(self, f), str) else int(v) for f in self.fold_fields
        }

    def refold(self, **fold) -> Layer:
        """A copy with other values of the fold fields (validated)."""
        return dataclasses.replace(self, **fold)

    @property
    def macs(self) -> int:
        """Multiply-accumulates per sample (what the default folding rule budgets)."""
        return 0

    def macs_per_cycle(self, fold: dict[str, int]) -> int:
        """Multiply-accumulate lanes of the unit under *fold* (what the budget counts)."""
        return 0

    def fold_options(self, producer: Layer | None = None) -> list[dict[str, int]]:
        """Every fold the folding rules may choose, cheapest first (the last is the fastest).

        *producer* is the layer feeding this one, which may restrict the input lanes (see
        :meth:`lane_choices`). Empty for a layer the rules do not fold.
        """
        return []

    def device_fold(self, clock_mhz: float, family: str) -> dict[str, int | str]:
        """Fold fields that follow from the target clock and device family rather than from
        the rate (a pipeline depth, a multiplier resource): the defaults the folding rules
        start from (:func:`gatemill.flow.dse.fold.for_device`). Empty for most kinds."""
        return {}

    def cycles_for(self, fold: dict[str, int]) -> int:
        """Cycles per sample of the unit under *fold* (one of :meth:`fold_options`)."""
        return self.cycles()

    def in_lanes_for(self, fold: dict[str, int]) -> int:
        """Input lanes of the unit under *fold*."""
        return self.in_lanes

    def lane_choices(self) -> list[int] | None:
        """For a layer that :attr:`follows_consumer`: the input lanes its consumer may read."""
        return None

    def tie(self, lanes: int) -> dict[str, int]:
        """For a layer that :attr:`follows_consumer`: its fold when its consumer reads *lanes*
        elements a beat (``ValueError`` when it cannot deliver them)."""
        raise NotImplementedError

    # -- timing ---------------------------------------------------------------------------------

    @property
    def in_lanes(self) -> int:
        """Elements per input beat."""
        raise NotImplementedError

    @property
    def out_lanes(self) -> int:
        """Elements per output beat."""
        raise NotImplementedError

    @property
    def input_lanes(self) -> tuple[int, ...]:
        """Elements per beat of each input."""
        return (self.in_lanes,)

    @property
    def in_beats(self) -> int:
        """Input beats per sample."""
        return math.prod(self.in_shape) // self.in_lanes

    @property
    def input_beats(self) -> tuple[int, ...]:
        """Beats per sample of each input."""
        return tuple(
            math.prod(s) // n for s, n in zip(self.in_shapes, self.input_lanes, strict=True)
        )

    def cycles(self) -> int:
        """Initiation interval of the unit alone, in cycles per sample, at full rate."""
        return self.cycles_for(self.fold)

    def beat_times(self, *avails: list[int], hold=None) -> list[int]:
        """Cycle of every output beat of one sample, given the cycle each input beat is
        available (a join takes one list per input); *hold*
        (:class:`gatemill.hdl.common.Backpressure`, keyword only) says when the consumer takes
        each output beat (by default at once: the output is never blocked). The unit's one
        timing model."""
        raise NotImplementedError

    @property
    def in_skid(self) -> int:
        """1 when the FIFO in front of the unit passes its beats on through a skid buffer
        (:func:`gatemill.hdl.plan.plan`); a kind that wants one says so in its fold."""
        return 0

    @property
    def chains(self) -> bool:
        """The unit takes a whole sample a beat and a beat a clock as a plain pipeline
        (:attr:`plain_pipeline`): next to another such unit it needs no FIFO, the two run
        under one clock enable (:func:`gatemill.hdl.plan.plan`)."""
        return (
            self.plain_pipeline
            and self.arity == 1
            and self.cycles() == 1
            and self.input_beats == (1,)
        )

    def take_times(self, *avails) -> list[list[int]]:
        """For a join (:attr:`arity` > 1): the cycle each beat of each input is taken, given when
        each is available (what sizes the FIFOs in front of it, :mod:`gatemill.hdl.plan`)."""
        raise NotImplementedError

    def latency(self) -> int:
        """Clock edges from accepting the first input beat to passing on the first output
        beat, with one input beat a cycle on every input and no backpressure (from
        :meth:`beat_times`)."""
        return int(self.beat_times(*(list(range(n)) for n in self.input_beats))[0])

    # -- cost, hardware, HLS, summary -----------------------------------------------------------

    def features(self, family: str = "xc7"):
        """What the unit is made of (:class:`gatemill.flow.kinds.resources.Features`)."""
        raise NotImplementedError

    def unit(self):
        """The Amaranth component implementing this layer (streams ``i`` and ``o``)."""
        raise NotImplementedError

    def check_unit(self) -> dict:
        """For a kind whose unit can be checked for every input cheaply (truth tables,
        :attr:`exhaustive`): that check of the generated unit against this layer, with at least
        ``mismatches`` and ``entries_checked``."""
        raise NotImplementedError

    def hls(self, builder) -> None:
        """Add this layer's HLS kernel(s) to *builder* (:class:`gatemill.flow.hls.plan.Builder`)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for the console and the report: datatypes and what the layer does."""
        return f"{self.in_dtype.name} -> {self.out_dtype.name}"

    def details(self) -> dict[str, Any]:
        """Kind-specific figures of :meth:`summary`."""
        return {}

    def summary(self) -> dict[str, Any]:
        """Kind, shapes, datatypes, folding and size figures, as ``import.json`` lists them."""
        return {
            "name": self.name,
            "kind": self.kind,
            "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape),
            "in_dtype": self.in_dtype.name,
            "out_dtype": self.out_dtype.name,
            "describe": self.describe(),
            **self.fold,
            **self.details(),
        }


class DataMover:
    """Mixin of the layers that move or select values of one datatype (``dtype``) taken from a
    feature map ``ifm``: sliding window, max-pool, flatten."""

    @property
    def in_dtype(self):
        return self.dtype

    @property
    def out_dtype(self):
        return self.dtype

    @property
    def in_shape(self):
        return self.ifm
