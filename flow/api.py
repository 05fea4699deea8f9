"""gatemill from Python: import a model, run its golden model, fold it, build it.

::

    from gatemill.flow.api import import_model

    model = import_model("mlp/model.onnx", vectors="mlp/vectors.npz")
    logits = model.predict(model.x[:4])        # the golden model, real outputs
    ints = model.trace(model.x[:1])            # {layer name: integer outputs}
    fast = model.fold(target_fps=1e6)          # the folding gatemill build would choose
    print(fast.folding.ii_cycles, fast.folding.est_lut)
    result = fast.build("build", steps=["import", "fold", "rtl", "sim"], simulator="icarus")
    print(result.sim.mismatches, result.sim.ii_cycles, result.sim.latency_cycles)

:meth:`Model.build` and :func:`build` run the builder (:mod:`gatemill.flow.steps`): the
same steps, files and skipping as ``gatemill build``, and the results come back as frozen
dataclasses (:class:`BuildResult`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from .frontend.lut import LUT_BITS
from .ir import IRGraph
from .steps import BuildConfig, StepStatus, run_steps
from .steps.builder import StepDisplay

__all__ = [
    "BitstreamResult",
    "BuildConfig",
    "BuildResult",
    "FmaxResult",
    "FoldResult",
    "Folding",
    "HlsResult",
    "ImportResult",
    "Model",
    "ReportResult",
    "RtlResult",
    "SimResult",
    "SynthResult",
    "build",
    "import_model",
]


def _frozen(d: Mapping) -> Mapping:
    return MappingProxyType({k: _frozen(v) if isinstance(v, Mapping) else v for k, v in d.items()})


# -- folding --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Folding:
    """A folding and its estimate, from :meth:`Model.fold`.

    Parameters
    ----------
    layers : mapping
        ``{layer: {"pe": N, "simd": N}}`` (the fold fields of each foldable layer).
    rule : str
        How it was chosen, as ``folding.json`` says.
    ii_cycles, latency_cycles : int
        Cycles per sample and latency, from the hardware templates' timing models (equal to
        simulation).
    bottleneck : str
        The layer that sets the initiation interval.
    clock_mhz : float
    samples_per_s : float
        At *clock_mhz*.
    family : str
        Device family of the resource estimate (the board's, else ``xc7``).
    est_lut, est_ff, est_dsp : int
        Estimated LUTs, flip-flops and DSP blocks (:mod:`gatemill.flow.dse.cost`).
    est_bram : float
        Estimated block RAMs (36 Kb blocks; EBRs on ECP5).
    """

    layers: Mapping[str, Mapping[str, int]]
    rule: str
    ii_cycles: int
    latency_cycles: int
    bottleneck: str
    clock_mhz: float
    samples_per_s: float
    family: str
    est_lut: int
    est_ff: int
    est_bram: float
    est_dsp: int


@dataclass(frozen=True, kw_only=True)
class _FoldOptions:
    target_fps: float | None = None
    clock_mhz: float | None = None
    max_lut: int | None = None
    board: str | None = None
    layers: Mapping | None = None


# -- the model ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class Model:
    """An imported model: its integer IR, golden model and test vectors.

    Made by :func:`import_model`; :meth:`fold` gives a folded copy. Do not build one directly.

    Parameters
    ----------
    path : Path
        The QONNX model.
    vectors : Path or None
        The ``.npz`` of test vectors, if one was given.
    ir : IRGraph
        The integer IR (folded by :meth:`fold`, else with its imported folds).
    x : ndarray
        Test inputs (real values): the vectors' ``x``, or seeded random inputs.
    y : ndarray or None
        The vectors' labels, if any.
    seed : int
        Seed of the random vectors (and of a build's simulation).
    lut_bits : int
        Sparse neurons of at most this many input bits are truth tables.
    folding : Folding or None
        Set by :meth:`fold`.
    """

    path: Path
    vectors: Path | None
    ir: IRGraph
    x: np.ndarray
    y: np.ndarray | None
    seed: int
    lut_bits: int
    folding: Folding | None = None
    imported: IRGraph = field(repr=False)
    fold_options: _FoldOptions = field(default_factory=_FoldOptions, repr=False)

    @property
    def layers(self) -> tuple[str, ...]:
        """The IR's layer names, in order."""
        return tuple(layer.name for layer in self.ir.layers)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The golden model's real outputs for real inputs *x*.

        Parameters
        ----------
        x : ndarray
            One sample (the model's input shape) or a batch of them.

        Returns
        -------
        ndarray of float64
            Quantize, execute exactly in integers, dequantize: what the hardware's outputs
            mean, for every output of the hardware equals the golden model's.
        """
        x, single = self._batch(x)
        y = self.ir.predict(x)
        return y[0] if single else y

    def trace(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's integer outputs for real inputs *x*.

        Parameters
        ----------
        x : ndarray
            One sample or a batch.

        Returns
        -------
        dict
            ``{layer name: integer array}`` in layer order (with a batch axis when *x* has
            one); the last is what the hardware's output stream carries.
        """
        x, single = self._batch(x)
        _, outs = self.ir.execute(self.ir.input.quantize(x), trace=True)
        return {
            layer.name: out[0] if single else out
            for layer, out in zip(self.ir.layers, outs, strict=True)
        }

    def _batch(self, x) -> tuple[np.ndarray, bool]:
        from .errors import GatemillError

        x = np.asarray(x, dtype=np.float32)
        shape = tuple(self.ir.input.model_shape)
        if x.shape == shape:
            return x[None], True
        if x.shape[1:] != shape:
            raise GatemillError(
                f"inputs of shape {x.shape}: the model takes one sample of shape {shape}, or "
                f"a batch (N, {', '.join(map(str, shape))})."
            )
        return x, False

    def fold(
        self,
        *,
        target_fps: float | None = None,
        clock_mhz: float | None = None,
        max_lut: int | None = None,
        board: str | None = None,
        layers: Mapping | None = None,
    ) -> Model:
        """A copy folded the way ``gatemill build`` folds with the same options.

        Parameters
        ----------
        target_fps : float, optional
            Samples per second: the cheapest balanced folding that reaches it.
        clock_mhz : float, optional
            Clock of *target_fps* (default: the board's, else 100 MHz).
        max_lut : int, optional
            LUT budget of the estimate: the target must fit it, or alone the fastest
            folding within it.
        board : str, optional
            Board name or ``.toml``: the folding fits its multipliers and its family prices
            the estimate. :meth:`build` builds for it unless told another.
        layers : mapping, optional
            ``{layer: {"pe": N, "simd": N}}`` overriding single layers.

        Returns
        -------
        Model
            With ``ir`` folded and ``folding`` (:class:`Folding`) set; its :meth:`build`
            uses this folding.

        Raises
        ------
        GatemillError
            For a target or budget no folding meets, or a bad layer entry.
        """
        from .boards import load_board
        from .dse.explore import estimate_point
        from .dse.fold import folding_of
        from .steps.fold import choose_folding, clock_of

        b = load_board(board) if board else None
        ir, doc = choose_folding(
            self.imported,
            target_fps=target_fps,
            clock_mhz=clock_mhz,
            max_lut=max_lut,
            board=b,
            overrides=layers,
        )
        clock = clock_of(clock_mhz, b)
        family = b.family if b else "xc7"
        est = estimate_point(ir, folding_of(ir), clock, family)
        folding = Folding(
            layers=_frozen(doc["layers"]),
            rule=doc["rule"],
            ii_cycles=est["ii_cycles"],
            latency_cycles=est["latency_cycles"],
            bottleneck=est["bottleneck"],
            clock_mhz=clock,
            samples_per_s=est["samples_per_s"],
            family=family,
            est_lut=est["est_lut"],
            est_ff=est["est_ff"],
            est_bram=est["est_bram"],
            est_dsp=est["est_dsp"],
        )
        options = _FoldOptions(
            target_fps=target_fps,
            clock_mhz=clock_mhz,
            max_lut=max_lut,
            board=board,
            layers=None if layers is None else dict(layers),
        )
        return dataclasses.replace(self, ir=ir, folding=folding, fold_options=options)

    def build(
        self,
        out: str | Path,
        *,
        board: str | None = None,
        steps: Sequence[str] | None = None,
        simulator: str = "verilator",
        waves: bool = False,
        force: bool = False,
        display: StepDisplay | None = None,
    ) -> BuildResult:
        """Build this model into the folder *out* (as ``gatemill build`` does).

        Parameters
        ----------
        out : path
            Build folder; a second build with the same inputs skips its steps.
        board : str, optional
            Board name or ``.toml`` (default: the one given to :meth:`fold`): the ``synth``
            step runs for it.
        steps : sequence of str, optional
            The steps to run (:data:`gatemill.flow.steps.STEP_NAMES`); default: import,
            fold, rtl, sim, synth (with a board), report.
        simulator : str
            ``verilator`` or ``icarus``.
        waves : bool
            Write an FST waveform of the simulation.
        force : bool
            Run the steps even when their inputs are unchanged.
        display : StepDisplay, optional
            Told when each step starts or is skipped (e.g.
            :func:`gatemill.flow.progress.steps`).

        Returns
        -------
        BuildResult

        Raises
        ------
        GatemillError
            For a bad option, a board other than the folding's, or a failed step.
        """
        from .errors import GatemillError

        opts = self.fold_options
        if board is not None and opts.board is not None and board != opts.board:
            raise GatemillError(
                f"this model was folded for board {opts.board!r}; build it for that board, "
                f"or fold it again with board={board!r}."
            )
        cfg = BuildConfig(
            model=self.path,
            out=Path(out),
            vectors=self.vectors,
            seed=self.seed,
            lut_bits=self.lut_bits,
            target_fps=opts.target_fps,
            clock_mhz=opts.clock_mhz,
            max_lut=opts.max_lut,
            folding=opts.layers,
            board=board or opts.board,
            steps=tuple(steps) if steps is not None else None,
            simulator=simulator,
            waves=waves,
            force=force,
        )
        return build(cfg, display)


def import_model(
    path: str | Path,
    vectors: str | Path | None = None,
    *,
    seed: int = 0,
    lut_bits: int = LUT_BITS,
) -> Model:
    """Import a QONNX model into the integer IR.

    Parameters
    ----------
    path : path
        QONNX model (``.onnx``), e.g. from ``gatemill train``.
    vectors : path, optional
        ``.npz`` with ``x`` (model inputs) and optionally ``y`` (labels); without it, seeded
        random inputs within the input quantizer's range.
    seed : int
        Seed of the random vectors (and of a build's simulation).
    lut_bits : int
        Sparse neurons of at most this many input bits become truth tables (0: none).

    Returns
    -------
    Model

    Raises
    ------
    GatemillError
        For a file that is not a model gatemill supports (naming the node and what to do),
        or vectors that do not fit it.
    """
    from .frontend import import_qonnx
    from .import_step import RANDOM_VECTORS
    from .vectors import load_vectors, random_vectors

    ir = import_qonnx(path, lut_bits).ir
    if vectors is not None:
        x, y = load_vectors(vectors, ir)
    else:
        x, y = random_vectors(ir, RANDOM_VECTORS, seed), None
    return Model(
        path=Path(path),
        vectors=None if vectors is None else Path(vectors),
        ir=ir,
        imported=ir,
        x=x,
        y=y,
        seed=seed,
        lut_bits=lut_bits,
    )


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    """The ``import`` step's figures (``import.json``).

    Parameters
    ----------
    layers : tuple of str
        The IR's layers.
    vectors : int
        Test vectors (the golden model's outputs for them are in ``golden.npz``).
    activation_mismatches : int
        Activations where the golden model and QONNX's float execution differ (each by one
        level at most; see ``golden_vs_qonnx`` in ``import.json``).
    output_mismatches : int
        Output elements where they differ.
    golden_accuracy, qonnx_accuracy : float or None
        With labelled vectors.
    path : Path
        ``import.json``.
    """

    layers: tuple[str, ...]
    vectors: int
    activation_mismatches: int
    output_mismatches: int
    golden_accuracy: float | None
    qonnx_accuracy: float | None
    path: Path

    @classmethod
    def from_report(cls, r: dict, out: Path) -> ImportResult:
        return cls(
            layers=tuple(layer["name"] for layer in r["layers"]),
            vectors=r["vectors"],
            activation_mismatches=r["golden_vs_qonnx"]["mismatches"],
            output_mismatches=r["end_to_end"]["mismatches"],
            golden_accuracy=r["golden_accuracy"],
            qonnx_accuracy=r["qonnx_accuracy"],
            path=out / "import.json",
        )


@dataclass(frozen=True, kw_only=True)
class FoldResult:
    """The ``fold`` step's choice (``folding.json``): ``rule`` and ``layers``."""

    rule: str
    layers: Mapping[str, Mapping[str, int]]
    path: Path

    @classmethod
    def from_report(cls, r: dict, out: Path) -> FoldResult:
        return cls(rule=r["rule"], layers=_frozen(r["layers"]), path=out / "folding.json")


@dataclass(frozen=True, kw_only=True)
class RtlResult:
    """The ``rtl`` step's Verilog and its estimates (``rtl/manifest.json``).

    Parameters
    ----------
    top : str
        Top module.
    verilog : Path
    manifest : Path
        Ports, lanes, quantizers: what a host needs.
    est_ii_cycles, est_latency_cycles : int
    bottleneck : str
    """

    top: str
    verilog: Path
    manifest: Path
    est_ii_cycles: int
    est_latency_cycles: int
    bottleneck: str

    @classmethod
    def from_report(cls, r: dict, out: Path) -> RtlResult:
        est = r["estimates"]
        return cls(
            top=r["top"],
            verilog=out / "rtl" / r["verilog"][0],
            manifest=out / "rtl" / "manifest.json",
            est_ii_cycles=est["ii_cycles"],
            est_latency_cycles=est["latency_cycles"],
            bottleneck=est["bottleneck"],
        )


@dataclass(frozen=True, kw_only=True)
class SimResult:
    """The ``sim`` step's figures (``sim.json``): the RTL against the golden model.

    Parameters
    ----------
    simulator : str
    vectors : int
        Samples sent (each twice: at full rate, and with random idle and backpressure).
    elements : int
        Output elements per pass.
    mismatches : int
        Outputs that differ from the golden model, both passes (0, or the step fails).
    ii_cycles, latency_cycles : int
        Measured at full rate.
    est_ii_cycles, est_latency_cycles : int
        The estimates of ``rtl/manifest.json``.
    bottleneck : str
    path : Path
        ``sim.json``.
    """

    simulator: str
    vectors: int
    elements: int
    mismatches: int
    ii_cycles: int
    latency_cycles: int
    est_ii_cycles: int
    est_latency_cycles: int
    bottleneck: str
    path: Path

    @classmethod
    def from_report(cls, r: dict, out: Path) -> SimResult:
        return cls(
            **{k: r[k] for k in (
                "simulator", "vectors", "elements", "mismatches", "ii_cycles", "latency_cycles",
                "est_ii_cycles", "est_latency_cycles", "bottleneck",
            )},
            path=out / "sim.json",
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SynthResult:
    """The ``synth`` step's figures (``synth.json``): Yosys for the board.

    Parameters
    ----------
    board, part, family : str
    lut, ff, dsp : int
    bram : float
        36 Kb blocks (Xilinx; a RAMB18 is 0.5) or EBRs (ECP5).
    fits : bool
        Within the board's capacity.
    utilization : mapping
        Per cent of the capacity, by resource.
    path : Path
        ``synth.json`` (per layer figures, a folding that fits when it does not).
    """

    board: str
    part: str
    family: str
    lut: int
    ff: int
    bram: float
    dsp: int
    fits: bool
    utilization: Mapping[str, float]
    path: Path

    @classmethod
    def from_report(cls, r: dict, out: Path) -> SynthResult:
        return cls(
            **{k: r[k] for k in ("board", "part", "family", "lut", "ff", "bram", "dsp", "fits")},
            utilization=_frozen(r["utilization_pct"]),
            path=out / "synth.json",
        )


@dataclass(frozen=True, kw_only=True)
class FmaxResult:
    """The ``fmax`` step's figures (``fmax/fmax.json``): nextpnr on the ECP5 board.

    Parameters
    ----------
    board, part : str
    fmax_mhz, target_mhz : float
    met : bool
        Fmax reaches the board's clock.
    path : Path
    """

    board: str
    part: str
    fmax_mhz: float
    target_mhz: float
    met: bool
    path: Path

    @classmethod
    def from_report(cls, r: dict, out: Path) -> FmaxResult:
        return cls(
            **{k: r[k] for k in ("board", "part", "fmax_mhz", "target_mhz", "met")},
            path=out / "fmax" / "fmax.json",
        )


@dataclass(frozen=True, kw_only=True)
class HlsResult:
    """The ``hls`` step's C simulation (``hls/csim.json``): the HLS C++ against the golden
    model, compiled with g++.

    Parameters
    ----------
    vectors, mismatches : int
    path : Path
        The HLS folder (sources, Vitis HLS scripts).
    """

    vectors: int
    mismatches: int
    path: Path

    @classmethod
    def from_report(cls, r: dict, out: Path) -> HlsResult:
        return cls(vectors=r["vectors"], mismatches=r["mismatches"], path=out / "hls")


@dataclass(frozen=True, kw_only=True)
class ReportResult:
    """The build report: ``json`` and the self-contained ``html``."""

    json: Path
    html: Path


@dataclass(frozen=True, kw_only=True)
class BitstreamResult:
    """The ``bitstream`` step: an ECP5 bitstream (``fmax_mhz``, ``met``) or a Vivado project
    (``bitstream`` is None until Vivado has run)."""

    board: str
    bitstream: Path | None
    fmax_mhz: float | None
    met: bool | None
    path: Path

    @classmethod
    def from_report(cls, r: dict, out: Path) -> BitstreamResult:
        if "fmax_mhz" in r:
            return cls(
                board=r["board"],
                bitstream=out / "bitstream" / "top.bit",
                fmax_mhz=r["fmax_mhz"],
                met=r["met"],
                path=out / "bitstream",
            )
        return cls(
            board=r["board"],
            bitstream=out / r["bitstream"] if r.get("ran") else None,
            fmax_mhz=None,
            met=None,
            path=out / "vivado",
        )


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    """What :func:`build` and :meth:`Model.build` return.

    Each step's attribute is None when the step was not chosen.

    Parameters
    ----------
    out : Path
        The build folder.
    steps : tuple of StepStatus
        Each chosen step: ``ran`` or skipped, ``since`` when, ``reason``.
    imported : ImportResult or None
    folding : FoldResult or None
    rtl : RtlResult or None
    sim : SimResult or None
    synth : SynthResult or None
    fmax : FmaxResult or None
    hls : HlsResult or None
    report : ReportResult or None
    bitstream : BitstreamResult or None
    reports : mapping
        The steps' JSON reports as read from the build folder, by step.
    timings : mapping
        ``timings.json``'s entries of the steps that ran.
    """

    out: Path
    steps: tuple[StepStatus, ...]
    imported: ImportResult | None = None
    folding: FoldResult | None = None
    rtl: RtlResult | None = None
    sim: SimResult | None = None
    synth: SynthResult | None = None
    fmax: FmaxResult | None = None
    hls: HlsResult | None = None
    report: ReportResult | None = None
    bitstream: BitstreamResult | None = None
    reports: Mapping = field(default_factory=dict, repr=False)
    timings: Mapping = field(default_factory=dict, repr=False)

    @property
    def skipped(self) -> tuple[str, ...]:
        """The steps skipped because their inputs were unchanged."""
        return tuple(s.name for s in self.steps if not s.ran)


_RESULTS = {
    "imported": ("import", ImportResult),
    "folding": ("fold", FoldResult),
    "rtl": ("rtl", RtlResult),
    "sim": ("sim", SimResult),
    "synth": ("synth", SynthResult),
    "fmax": ("fmax", FmaxResult),
    "hls": ("hls", HlsResult),
    "bitstream": ("bitstream", BitstreamResult),
}


def build(cfg: BuildConfig, display: StepDisplay | None = None) -> BuildResult:
    """Run the build *cfg* describes (``gatemill build`` calls this).

    Parameters
    ----------
    cfg : BuildConfig
    display : StepDisplay, optional
        Told when each step starts or is skipped.

    Returns
    -------
    BuildResult

    Raises
    ------
    GatemillError
        For a bad configuration or a failed step (the build folder keeps the previous
        results of that step).
    """
    run = run_steps(cfg, display)
    out, reports = run.out, run.reports
    results = {
        attr: cls.from_report(reports[name], out)
        for attr, (name, cls) in _RESULTS.items()
        if name in reports
    }
    if "report" in reports:
        results["report"] = ReportResult(json=out / "report.json", html=out / "report.html")
    return BuildResult(out=out, steps=run.steps, reports=reports, timings=run.timings, **results)
