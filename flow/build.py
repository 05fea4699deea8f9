"""``gatemill build``: the builder's steps (:mod:`gatemill.flow.steps`) with the default
choice, import -> fold -> rtl -> sim (-> synth with a board) -> report."""

from __future__ import annotations

from collections.abc import Callable

from .steps import BuildConfig, run_steps
from .steps.verify import run_lut_check, run_sim_step

__all__ = ["BuildConfig", "run_build", "run_lut_check", "run_sim_step"]


class _Calls:
    """A :class:`~gatemill.flow.steps.builder.StepDisplay` from a function of one string."""

    def __init__(self, fn: Callable[[str], None]):
        self.start = self.skip = fn


def run_build(cfg: BuildConfig, step=None) -> dict:
    """Run the build; returns ``{step: report}`` (see
    :class:`~gatemill.flow.steps.builder.BuildRun`'s ``reports``).

    *step* is told what runs or is skipped: a function of one string, or an object with
    ``start`` and ``skip`` (:func:`gatemill.flow.progress.steps`).
    """
    if step is not None and not hasattr(step, "skip"):
        step = _Calls(step)
    return run_steps(cfg, step).reports
