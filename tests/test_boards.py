"""Board files (boards/*.toml) and their loader (flow/boards.py)."""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import pytest

from gatemill.flow.boards import BOARDS, boards_command, list_boards, load_board
from gatemill.flow.errors import GatemillError

ZYNQ = {
    "pynq-z1": ("xc7z020clg400-1", "xc7", "ps7", 64),
    "pynq-z2": ("xc7z020clg400-1", "xc7", "ps7", 64),
    "ultra96-v2": ("xczu3eg-sbva484-1-i", "xcup", "zynq_ultra_ps_e", 128),
    "zcu104": ("xczu7ev-ffvc1156-2-e", "xcup", "zynq_ultra_ps_e", 128),
}

GOOD = """
name = "mine"
part = "xc7z020clg400-1"
family = "xc7"
clock_mhz = 100.0
[ps]
type = "ps7"
axi_width = 64
[capacity]
lut = 100
ff = 200
bram36 = 4
dsp = 2
"""


def test_registry_lists_every_board_file():
    files = {p.name[:-5] for p in resources.files("gatemill.boards").iterdir()}
    assert {f for f in files if not f.startswith("__")} == set(BOARDS)
    assert [b.name for b in list_boards()] == list(BOARDS)


@pytest.mark.parametrize("name", sorted(ZYNQ))
def test_zynq_boards(name):
    b = load_board(name)
    assert (b.part, b.family, b.ps, b.axi_width) == ZYNQ[name]
    assert b.vendor == "xilinx" and b.platform is None
    assert set(b.capacity) >= {"lut", "ff", "bram36", "dsp"}
    assert b.clock_mhz == 100.0


def test_capacities_from_the_data_sheets():
    assert dict(load_board("pynq-z2").capacity) == {
        "lut": 53200,
        "ff": 106400,
        "bram36": 140,
        "dsp": 220,
    }
    assert load_board("ultra96-v2").capacity["lut"] == 70560
    assert load_board("zcu104").capacity["dsp"] == 1728
    assert load_board("ulx3s-85f").capacity["ebr"] == 208


@pytest.mark.parametrize("name", ["ulx3s-85f", "orangecrab-25f"])
def test_open_boards_match_their_amaranth_platform(name):
    b = load_board(name)
    assert b.family == "ecp5" and b.ps is None
    platform = b.platform_class()()
    # the board file's part and clock are the platform's, not a second copy that can drift
    assert b.part.startswith(platform.device)
    assert platform.default_clk_frequency == b.clock_mhz * 1e6
    resources_ = {(r.name, r.number) for r in platform.resources.values()}
    if b.uart:
        assert (b.uart, 0) in resources_ and b.baud == 115200


def test_board_is_frozen():
    b = load_board("pynq-z2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.part = "x"
    with pytest.raises(TypeError):
        b.capacity["lut"] = 1


def test_board_from_a_file(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text(GOOD)
    b = load_board(p)
    assert b.name == "mine" and b.capacity["lut"] == 100 and b.source == str(p)


@pytest.mark.parametrize(
    "edit, message",
    [
        (("clock_mhz = 100.0", "clock_mhz = 100.0\nspeed = 1"), "unknown key(s) speed"),
        (("dsp = 2", "dsp = 2\nluts = 3"), "unknown luts"),
        (("dsp = 2", ""), "missing dsp"),
        (("axi_width = 64", "axi_width = 64\nwidth = 1"), "unknown key(s) width in [ps]"),
        (("axi_width = 64", "axi_width = 96"), "axi_width must be one of"),
        (('family = "xc7"', 'family = "xc6"'), "family 'xc6'"),
        (('type = "ps7"', 'type = "ps8"'), "[ps] type"),
        (("lut = 100", "lut = -1"), "non-negative integer"),
        (("clock_mhz = 100.0", 'clock_mhz = "fast"'), "clock_mhz"),
        (('name = "mine"', ""), "missing name"),
    ],
)
def test_bad_board_files_are_refused(tmp_path, edit, message):
    p = tmp_path / "bad.toml"
    p.write_text(GOOD.replace(*edit))
    with pytest.raises(GatemillError) as e:
        load_board(p)
    assert message in str(e.value)


def test_open_board_needs_a_platform(tmp_path):
    p = tmp_path / "ecp5.toml"
    p.write_text(
        'name = "x"\npart = "LFE5U-25F-6BG256C"\nfamily = "ecp5"\nclock_mhz = 25.0\n'
        "[capacity]\nlut = 1\nff = 1\nebr = 1\ndsp = 1\n"
    )
    with pytest.raises(GatemillError, match="amaranth-boards platform"):
        load_board(p)
    p.write_text(p.read_text() + '[platform]\nclass = "a:B"\nuart = "uart"\n')
    with pytest.raises(GatemillError, match="baud"):
        load_board(p)


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(GatemillError) as e:
        load_board("pynq-z9")
    assert all(name in str(e.value) for name in BOARDS)
    with pytest.raises(GatemillError, match="does not exist"):
        load_board(Path("nowhere/board.toml"))


def test_invalid_toml(tmp_path):
    p = tmp_path / "b.toml"
    p.write_text("name = ")
    with pytest.raises(GatemillError, match="not valid TOML"):
        load_board(p)


def test_boards_command_lists_every_board(capsys):
    boards_command()
    text = capsys.readouterr().out
    for name in BOARDS:
        assert name in text
    assert "xczu3eg-sbva484-1-i" in text and "LFE5U-85F" in text
