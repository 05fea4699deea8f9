"""The builder of named steps: import, fold, rtl, sim, synth, fmax, asic, hls, report,
bitstream.

:func:`run_steps` runs the steps a :class:`BuildConfig` chooses into its build folder,
skipping each step whose inputs (configuration, files, tools, gatemill's code) are those of
its last finished run, and committing a step's outputs only when it finishes.
"""

from .builder import BuildRun, StepStatus, run_steps
from .config import STEP_NAMES, BuildConfig

__all__ = ["STEP_NAMES", "BuildConfig", "BuildRun", "StepStatus", "run_steps"]
