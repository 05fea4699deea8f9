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

import numpy as np

from .frontend.lut import LUT_BITS
from .ir import IRGraph
from .results import (
    BitstreamResult,
    BuildResult,
    FmaxResult,
    FoldResult,
    HlsResult,
    ImportResult,
    ReportResult,
    RtlResult,
    SimResult,
    SynthResult,
    build_result,
    frozen,
)
from .steps import BuildConfig, StepStatus, run_steps
from .steps.builder import StepDisplay
from .zoo.config import TrainConfig

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
    "StepStatus",
    "SynthResult",
    "TrainConfig",
    "build",
    "import_model",
    "train",
]


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
        from .dse.estimate import estimate_point
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
            layers=frozen(doc["layers"]),
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
        asic_vectors: int | None = None,
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
        asic_vectors : int, optional
            The ``asic`` step (sky130 cells) simulates the gate-level netlist on the first
            *asic_vectors* vectors only (default: all).
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
            asic_vectors=asic_vectors,
        )
        return build(cfg, display)


def train(config: TrainConfig, *, progress: bool = True) -> dict:
    """Train a zoo model (quantization-aware, Brevitas) and export it as QONNX.

    Parameters
    ----------
    config : TrainConfig
        Kind, output folder and options (as ``gatemill train``).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    dict
        ``train.json``'s content; the folder holds ``model.onnx`` and ``vectors.npz`` for
        :func:`import_model`.
    """
    from .zoo.train import train as run

    return run(config, progress=progress)


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
    return build_result(run_steps(cfg, display))
