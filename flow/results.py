"""The results of a build as frozen dataclasses (:class:`BuildResult`), read from the JSON
reports the steps write into the build folder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .steps import StepStatus
from .steps.builder import BuildRun


def frozen(d: Mapping) -> Mapping:
    """A read-only copy of the mapping *d* (nested mappings too)."""
    return MappingProxyType({k: frozen(v) if isinstance(v, Mapping) else v for k, v in d.items()})


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
        return cls(rule=r["rule"], layers=frozen(r["layers"]), path=out / "folding.json")


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
            utilization=frozen(r["utilization_pct"]),
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
class AsicResult:
    """The ``asic`` step's figures (``asic.json``): the design on a PDK's standard cells.

    Parameters
    ----------
    pdk, library : str
    area_um2 : float
        The cells' footprints added up (before placement).
    cell_count, ff : int
        Cells, flip-flops among them.
    depth_cells : int
        The longest path between registers, in cells.
    vectors, mismatches : int or None
        The gate-level simulation against the golden model (None: not simulated).
    layers : tuple of mapping
        The same figures per layer (``name``, ``area_um2``, ``cell_count``, ``ff`` ...).
    path : Path
        ``asic.json``; the netlist is in ``asic/``.
    """

    pdk: str
    library: str
    area_um2: float
    cell_count: int
    ff: int
    depth_cells: int
    vectors: int | None
    mismatches: int | None
    layers: tuple[Mapping, ...]
    path: Path

    @classmethod
    def from_report(cls, r: dict, out: Path) -> AsicResult:
        sim = r.get("sim") or {}
        keys = ("pdk", "library", "area_um2", "cell_count", "ff", "depth_cells")
        return cls(
            **{k: r[k] for k in keys},
            vectors=sim.get("vectors"),
            mismatches=sim.get("mismatches"),
            layers=tuple(frozen(layer) for layer in r["layers"]),
            path=out / "asic.json",
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
    asic : AsicResult or None
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
    asic: AsicResult | None = None
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
    "asic": ("asic", AsicResult),
    "hls": ("hls", HlsResult),
    "bitstream": ("bitstream", BitstreamResult),
}


def build_result(run: BuildRun) -> BuildResult:
    """The :class:`BuildResult` of a builder's run."""
    out, reports = run.out, run.reports
    results = {
        attr: cls.from_report(reports[name], out)
        for attr, (name, cls) in _RESULTS.items()
        if name in reports
    }
    if "report" in reports:
        results["report"] = ReportResult(json=out / "report.json", html=out / "report.html")
    return BuildResult(out=out, steps=run.steps, reports=reports, timings=run.timings, **results)
