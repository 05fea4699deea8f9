"""The builder: runs the chosen steps of a build, skipping those whose inputs are unchanged.

For each chosen step, in order (:data:`~gatemill.flow.steps.config.STEP_NAMES`):

1. its fingerprint is made: sha256 over the configuration values it uses, the content of the
   files it reads (outside the build folder, and the earlier steps' outputs in it), the
   versions of the tools it calls and gatemill's own code (:mod:`.fingerprint`);
2. if ``steps.json`` records the same fingerprint and its outputs are as it left them, the
   step is skipped ("sim: skipped, inputs unchanged since 2026-11-05 12:03:04");
3. otherwise it runs in its staging folder (:mod:`.stage`); when it finishes, its outputs
   replace the old ones and ``steps.json`` records it. An interrupted or failed step changes
   nothing in the build folder, so the next run redoes that step (and those whose inputs it
   changes), and only them.

Wall times go to ``timings.json``, never into the outputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ..boards import Board, load_board
from ..errors import GatemillError
from ..outdir import prepare_out_dir
from .catalog import STEPS, Step, StepContext, producer
from .config import STEP_NAMES, BuildConfig
from .fingerprint import code_digest, digest, file_digest, stat_digest, tool_versions, tree_digest
from .stage import commit, copy_outputs, prepare, stage_dir
from .state import Record, State, now, record_run, record_timing, when


class StepDisplay(Protocol):
    """Where the builder says what it does (e.g. :func:`gatemill.flow.progress.steps`)."""

    def start(self, text: str) -> None:
        """A step starts (the previous one, if any, has finished)."""

    def skip(self, text: str) -> None:
        """A step is skipped; *text* says why."""


class _Quiet:
    def start(self, text: str) -> None:
        pass

    def skip(self, text: str) -> None:
        pass


@dataclass(frozen=True, kw_only=True)
class StepStatus:
    """What happened to one step in a run.

    Parameters
    ----------
    name : str
    ran : bool
        False when skipped (inputs unchanged).
    since : str
        When its current outputs were made (ISO 8601).
    seconds : float or None
        Wall time of this run (None when skipped).
    reason : str
        Why it ran (``"inputs changed: config.seed, reads.rtl"``, ``"first run"``) or
        ``"inputs unchanged"``.
    """

    name: str
    ran: bool
    since: str
    seconds: float | None
    reason: str

    @property
    def message(self) -> str:
        """One line for the console."""
        if self.ran:
            return f"{self.name}: ran in {self.seconds:.1f} s ({self.reason})"
        return f"{self.name}: skipped, inputs unchanged since {when(self.since)}"


@dataclass(frozen=True, kw_only=True)
class BuildRun:
    """The result of :func:`run_steps`.

    Parameters
    ----------
    out : Path
        The build folder.
    steps : tuple of StepStatus
        The chosen steps, in order.
    reports : dict
        ``{name: report}``: the JSON reports of the chosen steps as the build folder holds
        them (``import``, ``fold``, ``rtl``, ``lut_check``, ``sim``, ``synth``, ``fmax``,
        ``hls``, ``report``, ``bitstream``).
    timings : dict
        ``{step: timings.json entry}`` of the steps that ran.
    seconds : float
        Wall time of the whole run.
    """

    out: Path
    steps: tuple[StepStatus, ...]
    reports: dict
    timings: dict
    seconds: float

    def status(self, name: str) -> StepStatus | None:
        """The status of step *name*, or None if it was not chosen."""
        return next((s for s in self.steps if s.name == name), None)

    @property
    def ran(self) -> tuple[str, ...]:
        """The steps that ran."""
        return tuple(s.name for s in self.steps if s.ran)

    @property
    def skipped(self) -> tuple[str, ...]:
        """The steps that were skipped."""
        return tuple(s.name for s in self.steps if not s.ran)


def default_steps(cfg: BuildConfig, board: Board | None) -> list[str]:
    """The steps ``gatemill build`` runs without ``--steps``/``--from``/``--to``."""
    names = ["import", "fold", "rtl"]
    if cfg.until == "sim":
        names.append("sim")
    if board is not None:
        names.append("synth")
    return [*names, "report"]


def choose_steps(cfg: BuildConfig, board: Board | None) -> list[str]:
    """The steps this configuration runs, in order.

    Raises
    ------
    GatemillError
        If a chosen step cannot run with this configuration (synth without a board...).
    """
    if cfg.steps is not None:
        names = set(cfg.steps)
    else:
        names = set(default_steps(cfg, board)) | {n for n in (cfg.start, cfg.stop) if n}
        lo = STEP_NAMES.index(cfg.start) if cfg.start else 0
        hi = STEP_NAMES.index(cfg.stop) if cfg.stop else len(STEP_NAMES) - 1
        names = {n for n in names if lo <= STEP_NAMES.index(n) <= hi}
    chosen = [n for n in STEP_NAMES if n in names]
    for name in chosen:
        reason = STEPS[name].why_not(cfg, board)
        if reason:
            raise GatemillError(f"{reason}.")
    return chosen


def check_inputs(chosen: list[str], out: Path) -> None:
    """Refuse a choice of steps whose inputs are neither in *out* nor made by an earlier one.

    Raises
    ------
    GatemillError
        Naming the step, the missing path and the step to run first.
    """
    made: set[str] = set()
    for name in chosen:
        for rel in STEPS[name].reads:
            first = producer(rel)
            if first in made or (out / rel).exists():
                continue
            raise GatemillError(
                f"the {name} step needs {rel}, which {out} does not have; the {first} step "
                f"writes it: run it first (--from {first}, or add it to --steps)."
            )
        made.add(name)


def _present(out: Path, paths: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p for p in paths if (out / p).exists())


def step_inputs(step: Step, ctx: StepContext) -> dict:
    """The parts of *step*'s fingerprint: ``config``, ``files`` (sha256 of the files outside
    the build folder), ``reads`` (sha256 of its inputs in it), ``tools`` and ``code``."""
    key = step.key(ctx)
    files = {}
    for label, path in key["files"].items():
        if path is None:
            files[label] = None
        else:
            p = Path(path)
            files[label] = file_digest(p) if p.is_file() else f"missing: {p}"
    reads = step.reads + _present(ctx.out, step.reads_if_present)
    return {
        "config": key["config"],
        "files": files,
        "reads": {rel: tree_digest(ctx.out / rel) for rel in reads if (ctx.out / rel).exists()},
        "tools": tool_versions(key["tools"]),
        "code": code_digest(),
    }


def _changes(old: dict, new: dict) -> list[str]:
    """The parts of a fingerprint that differ (``config.seed``, ``reads.rtl``, ``code``...)."""
    out = []
    for part in ("config", "files", "reads", "tools"):
        a, b = old.get(part) or {}, new.get(part) or {}
        out += [
            f"{part}.{k}" for k in sorted(set(a) | set(b)) if digest(a.get(k)) != digest(b.get(k))
        ]
    if old.get("code") != new.get("code"):
        out.append("code")
    return out


def why_run(step: Step, rec: Record | None, inputs: dict, cfg: BuildConfig, out: Path):
    """Why *step* must run (``"first run"``, ``"inputs changed: config.seed"``...), or None
    when its record *rec* has the fingerprint of *inputs* and its outputs are as it left
    them."""
    if rec is None:
        return "first run"
    if cfg.force:
        return "forced"
    if rec.fingerprint != digest(inputs):
        return "inputs changed: " + (", ".join(_changes(rec.inputs, inputs)) or "format")
    if rec.outputs != stat_digest(out, step.writes):
        return "its outputs were changed or removed"
    return None


def _run(step: Step, ctx: StepContext, inputs: dict, state: State, reason: str):
    """Run *step* in its staging folder, commit its outputs, record it; its status and
    ``timings.json`` entry."""
    out = ctx.out
    ctx = replace(
        ctx, stage=prepare(out, step.name, step.reads + _present(out, step.reads_if_present))
    )
    t0 = time.perf_counter()
    details = step.run(ctx) or {}
    seconds = time.perf_counter() - t0
    state.forget(step.name)  # from here until it is recorded again, its outputs are in flux
    commit(out, step.name, step.writes)
    finished = now()
    record = Record(
        fingerprint=digest(inputs),
        finished=finished,
        inputs=inputs,
        outputs=stat_digest(out, step.writes),
    )
    state.set(step.name, record)
    status = StepStatus(name=step.name, ran=True, since=finished, seconds=seconds, reason=reason)
    return status, record_timing(out, step.name, seconds, details)


def run_steps(cfg: BuildConfig, display: StepDisplay | None = None) -> BuildRun:
    """Run the steps *cfg* chooses into ``cfg.out``, skipping those with unchanged inputs.

    Parameters
    ----------
    cfg : BuildConfig
    display : StepDisplay, optional
        Told when each step starts or is skipped.

    Returns
    -------
    BuildRun

    Raises
    ------
    GatemillError
        For a bad configuration, a step that cannot run with it, or inputs no chosen step
        makes; and whatever a step raises (the build folder then holds the previous
        results, and the failed step's staging folder its logs).
    """
    display = display or _Quiet()
    t_start = time.perf_counter()
    board = load_board(cfg.board) if cfg.board else None  # a typo fails before any work
    chosen = choose_steps(cfg, board)
    out = prepare_out_dir(cfg.out)
    check_inputs(chosen, out)
    state = State.load(out)
    statuses, timings = [], {}
    for name in chosen:
        step = STEPS[name]
        ctx = StepContext(cfg=cfg, board=board, out=out, stage=stage_dir(out, name))
        inputs = step_inputs(step, ctx)
        rec = state.get(name)
        reason = why_run(step, rec, inputs, cfg, out)
        if reason is None:
            status = StepStatus(
                name=name, ran=False, since=rec.finished, seconds=None, reason="inputs unchanged"
            )
            display.skip(status.message)
        else:
            display.start(f"{name}: {step.title(ctx)}")
            status, timings[name] = _run(step, ctx, inputs, state, reason)
        statuses.append(status)
    seconds = time.perf_counter() - t_start
    record_run(
        out,
        {
            "finished": now(),
            "seconds": round(seconds, 3),
            "ran": [s.name for s in statuses if s.ran],
            "skipped": [s.name for s in statuses if not s.ran],
        },
    )
    reports = {}
    for name in chosen:
        reports.update(STEPS[name].load(out))
    return BuildRun(
        out=out, steps=tuple(statuses), reports=reports, timings=timings, seconds=seconds
    )


def adopt(src: Path, out: Path, name: str) -> bool:
    """Take step *name*'s outputs and record from the build folder *src* into *out*.

    The files are hard links (no copies); the record comes along, so a build in *out* with
    the inputs *src*'s step had skips it, and one with other inputs runs it. Many builds of
    one model share one import this way. Nothing happens when *src* has no record of the
    step, or *out* already has the same one. Returns whether the outputs were taken.
    """
    rec = State.load(src).get(name)
    if rec is None:
        return False
    state = State.load(out)
    mine = state.get(name)
    if mine is not None and mine.fingerprint == rec.fingerprint:
        return False
    writes = STEPS[name].writes
    state.forget(name)
    copy_outputs(src, out, writes)
    state.set(name, replace(rec, outputs=stat_digest(out, writes)))
    return True
