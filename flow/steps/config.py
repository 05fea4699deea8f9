"""What a build takes: :class:`BuildConfig`, and the names of the steps it can run."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..asic.pdk import get_pdk
from ..errors import GatemillError
from ..frontend.inputs import parse_encoding
from ..frontend.lut import LUT_BITS

STEP_NAMES = (
    "import",
    "fold",
    "rtl",
    "sim",
    "synth",
    "fmax",
    "asic",
    "hls",
    "report",
    "bitstream",
)
"""Every step, in the order a build runs them."""


def check_step_name(name: str, option: str) -> str:
    """*name* if it is one of :data:`STEP_NAMES`.

    Raises
    ------
    GatemillError
        Naming *option*, the close match if there is one, and the valid names.
    """
    if name in STEP_NAMES:
        return name
    close = difflib.get_close_matches(name, STEP_NAMES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise GatemillError(
        f"{option} {name!r}: no such step{hint}. The steps are {', '.join(STEP_NAMES)}."
    )


def _step_list(value) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        raise GatemillError(f"--steps {value!r}: name at least one step ({', '.join(STEP_NAMES)}).")
    return tuple(check_step_name(n, "--steps") for n in names)


@dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """Everything ``gatemill build`` takes.

    Parameters
    ----------
    model : path
        QONNX model.
    out : path
        Build folder (created; a non-gatemill folder is refused).
    vectors : path, optional
        ``.npz`` with ``x`` (and ``y``); random vectors otherwise.
    folding : path or mapping, optional
        ``folding.json`` (or its ``layers`` mapping, ``{layer: {"pe": N, "simd": N}}``)
        overriding the folding rule per layer.
    until : str
        ``rtl`` leaves the simulation out of the default steps, ``sim`` keeps it; synthesis
        follows either way when a *board* is given (a resource check without waiting for the
        simulator).
    simulator : str
        ``verilator`` or ``icarus``.
    waves : bool
        Write an FST waveform of the simulation.
    seed : int
        Seeds the random vectors and the random idle/backpressure of the simulation.
    idle, stall : float
        Probability of an idle input cycle / a backpressure cycle in the stress pass.
    target_fps, clock_mhz : float
        Fold for this many samples per second at this clock (instead of the default rule);
        ``folding`` entries still override single layers. The clock defaults to the
        board's, or 100 MHz without a board; it also sets the depth of the units' pipelines
        (:meth:`Layer.device_fold <gatemill.flow.kinds.base.Layer.device_fold>`).
    lut_bits : int
        Sparse neurons of at most this many input bits become truth tables (0: none).
    input_type, input_scale : str, optional
        The integer encoding of the model's input (e.g. ``"UINT8"``, ``"1/255"``): the
        hardware takes the raw integers ``q``, the model's input is ``x = scale * q``
        (:func:`gatemill.flow.import_step.run_import`).
    board : str, optional
        Board name or ``.toml``: the folding fits its multipliers, and the ``synth`` step
        (Yosys) runs for it; ``fmax``, ``hls`` and ``bitstream`` use it too.
    max_lut : int, optional
        LUT budget of the folding (the resource estimate, for the board's device family or
        xc7): with ``target_fps`` the target must be met within it, alone it picks the fastest
        folding within it.
    steps : sequence of str or str, optional
        Run exactly these steps (names of :data:`STEP_NAMES`, or one comma-separated string);
        the others' outputs must be in the build folder already.
    start, stop : str, optional
        Run the default steps from *start* to *stop* (``--from``/``--to``); a step outside
        the default ones (``fmax``, ``hls``, ``bitstream``) is added when named here.
    force : bool
        Run the chosen steps even when their inputs are unchanged.
    fmax_timeout : float
        Seconds Yosys and nextpnr may take in the ``fmax`` step (not an input of the step:
        a run that ends in time gives the same result).
    pdk : str
        The standard cells of the ``asic`` step: ``sky130`` (``sky130_fd_sc_hd``).
    asic_vectors : int, optional
        The ``asic`` step simulates the gate-level netlist on the first *asic_vectors* test
        vectors (default: all; a netlist of 100k cells simulates about 1,000 x slower than
        its RTL).
    synth_jobs : int, optional
        Yosys processes side by side in the ``synth`` step (default: one per core, at most
        4); not an input of the step either: the figures do not depend on it.
    """

    model: Path
    out: Path
    vectors: Path | None = None
    folding: Path | Mapping | None = None
    until: str = "sim"
    simulator: str = "verilator"
    waves: bool = False
    seed: int = 0
    idle: float = 0.3
    stall: float = 0.3
    target_fps: float | None = None
    clock_mhz: float | None = None
    lut_bits: int = LUT_BITS
    input_type: str | None = None
    input_scale: str | None = None
    board: str | None = None
    max_lut: int | None = None
    steps: tuple[str, ...] | None = None
    start: str | None = None
    stop: str | None = None
    force: bool = False
    fmax_timeout: float = 3600.0
    pdk: str = "sky130"
    asic_vectors: int | None = None
    synth_jobs: int | None = None

    def __post_init__(self):
        parse_encoding(self.input_type, self.input_scale)  # a typo fails before any work
        get_pdk(self.pdk)
        if self.until not in ("rtl", "sim"):
            raise GatemillError(f"--until {self.until!r}: choose rtl or sim.")
        for name in ("idle", "stall"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise GatemillError(f"--{name} {v}: a probability in [0, 1) is needed.")
        if self.asic_vectors is not None and self.asic_vectors < 1:
            raise GatemillError(f"asic_vectors {self.asic_vectors}: at least one vector is needed.")
        if self.max_lut is not None and self.max_lut < 1:
            raise GatemillError(f"--max-lut {self.max_lut}: a positive LUT count is needed.")
        if isinstance(self.folding, Mapping):
            # a plain, JSON-shaped copy: the fold step's fingerprint hashes it
            object.__setattr__(self, "folding", json.loads(json.dumps(dict(self.folding))))
        object.__setattr__(self, "steps", _step_list(self.steps))
        if self.start is not None:
            check_step_name(self.start, "--from")
        if self.stop is not None:
            check_step_name(self.stop, "--to")
        if self.steps is not None and (self.start or self.stop):
            raise GatemillError("--steps names the steps itself: give it, or --from/--to.")
        if self.start and self.stop and STEP_NAMES.index(self.start) > STEP_NAMES.index(self.stop):
            raise GatemillError(
                f"--from {self.start} comes after --to {self.stop}; the steps run in the order "
                f"{', '.join(STEP_NAMES)}."
            )
