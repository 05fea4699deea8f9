"""gatemill doctor lists every tool of the flow."""

from __future__ import annotations

from gatemill.flow.cli import main
from gatemill.flow.tools import TOOLS


def test_doctor_lists_every_tool(capsys):
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 0, out  # every required tool is installed by make
    for tool in TOOLS:
        assert tool.name in out
    # tools that are never on this machine are reported with what is lost without them
    assert "vivado" in out and "not found" in out


def test_doctor_finds_the_simulators():
    versions = {t.name: t.version() for t in TOOLS}
    assert versions["verilator"] and versions["verilator"].startswith("5.")
    assert versions["iverilog"] and "Icarus" in versions["iverilog"]
    assert versions["yosys"] and versions["nextpnr-ecp5"]
