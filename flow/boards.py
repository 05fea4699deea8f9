"""Boards: one declarative TOML file per board in ``boards/``, loaded into a frozen :class:`Board`.

A board file holds the FPGA part and its family (``xc7``, ``xcup`` or ``ecp5``), the clock the
accelerator runs at, the device capacity (with the data sheet it comes from, in a comment), a
``[ps]`` table for Zynq boards (processing-system type, AXI port width) and a ``[platform]``
table for open boards (the amaranth-boards platform class that carries the pins, and the name of
its UART resource). Unknown keys are errors, so a typo never silently falls back to a default.

The shipped boards are listed in :data:`BOARDS` (an explicit registry, checked against the
folder by a test); a path to a ``.toml`` file of the same form is accepted wherever a board name
is.
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from .errors import GatemillError

BOARDS = ("pynq-z1", "pynq-z2", "ultra96-v2", "zcu104", "ulx3s-85f", "orangecrab-25f")

# family -> (vendor, the capacity keys it must give, the optional ones)
FAMILIES = {
    "xc7": ("xilinx", ("lut", "ff", "bram36", "dsp"), ()),
    "xcup": ("xilinx", ("lut", "ff", "bram36", "dsp"), ("uram",)),
    "ecp5": ("lattice", ("lut", "ff", "ebr", "dsp"), ()),
}
PS_TYPES = ("ps7", "zynq_ultra_ps_e")
PS_NAMES = {"ps7": "Zynq-7000 PS7", "zynq_ultra_ps_e": "ZynqMP PS"}
AXI_WIDTHS = (32, 64, 128)

_TOP_KEYS = {"name", "description", "part", "family", "clock_mhz", "ps", "capacity", "platform"}
_PS_KEYS = {"type", "axi_width"}
_PLATFORM_KEYS = {"class", "uart", "baud"}


@dataclass(frozen=True, kw_only=True)
class Board:
    """One board, as read from its TOML file.

    Parameters
    ----------
    name : str
        Short name, e.g. ``"pynq-z2"``.
    description : str
    part : str
        The FPGA part, e.g. ``"xc7z020clg400-1"`` or ``"LFE5U-85F-6BG381C"``.
    family : str
        ``"xc7"`` (7-series), ``"xcup"`` (UltraScale+) or ``"ecp5"``.
    clock_mhz : float
        The clock the accelerator runs at (the PS clock on Zynq boards, the oscillator on
        open boards).
    capacity : dict
        Device resources: ``lut``, ``ff``, ``dsp`` and ``bram36`` (36 Kb blocks, Xilinx) or
        ``ebr`` (18 Kb blocks, ECP5); ``uram`` optionally on UltraScale+.
    ps : str or None
        Processing system: ``"ps7"`` (Zynq-7000) or ``"zynq_ultra_ps_e"``; None without one.
    axi_width : int or None
        Data width of the PS's high-performance AXI port the DMA uses (Zynq boards).
    platform : str or None
        ``"module:Class"`` of the amaranth-boards platform (open boards).
    uart : str or None
        Name of the platform's USB-UART resource, if the board has one.
    baud : int or None
        UART baud rate of the bridge.
    source : str
        Where the board was loaded from.
    """

    name: str
    description: str
    part: str
    family: str
    clock_mhz: float
    capacity: Mapping[str, int] = field(hash=False)
    ps: str | None = None
    axi_width: int | None = None
    platform: str | None = None
    uart: str | None = None
    baud: int | None = None
    source: str = ""

    def __post_init__(self):
        where = self.source or self.name
        # frozen means frozen: the capacity table cannot be changed through a Board either
        object.__setattr__(self, "capacity", MappingProxyType(dict(self.capacity)))
        if self.family not in FAMILIES:
            raise GatemillError(
                f"board {where}: family {self.family!r} is not one of {', '.join(FAMILIES)}."
            )
        if not (isinstance(self.clock_mhz, int | float) and 0 < self.clock_mhz <= 1000):
            raise GatemillError(
                f"board {where}: clock_mhz must be a frequency in MHz, not {self.clock_mhz!r}."
            )
        _, required, optional = FAMILIES[self.family]
        missing = [k for k in required if k not in self.capacity]
        unknown = sorted(set(self.capacity) - set(required) - set(optional))
        if missing or unknown:
            raise GatemillError(
                f"board {where}: [capacity] of a {self.family} part takes "
                f"{', '.join(required + optional)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else "")
                + "."
            )
        for k, v in self.capacity.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise GatemillError(
                    f"board {where}: capacity {k} must be a non-negative integer, not {v!r}."
                )
        if self.vendor == "xilinx":
            if self.ps not in PS_TYPES:
                raise GatemillError(
                    f"board {where}: a Xilinx board needs [ps] type = one of "
                    f"{', '.join(PS_TYPES)}, not {self.ps!r}."
                )
            if self.axi_width not in AXI_WIDTHS:
                raise GatemillError(
                    f"board {where}: [ps] axi_width must be one of {AXI_WIDTHS}, "
                    f"not {self.axi_width!r}."
                )
            if self.platform is not None:
                raise GatemillError(f"board {where}: [platform] is for open (ECP5) boards.")
        else:
            if self.ps is not None:
                raise GatemillError(f"board {where}: an ECP5 board has no [ps].")
            if self.platform is None or ":" not in self.platform:
                raise GatemillError(
                    f"board {where}: [platform] class must name an amaranth-boards platform "
                    f'as "module:Class", not {self.platform!r}.'
                )
        if self.baud is not None and self.uart is None:
            raise GatemillError(f"board {where}: [platform] baud is given without a uart.")
        if self.uart is not None and not (isinstance(self.baud, int) and self.baud > 0):
            raise GatemillError(
                f"board {where}: [platform] uart needs a baud rate, not {self.baud!r}."
            )

    @property
    def vendor(self) -> str:
        """``"xilinx"`` or ``"lattice"``."""
        return FAMILIES[self.family][0]

    @property
    def bram_unit(self) -> str:
        """The capacity key of block RAM: ``"bram36"`` (Xilinx) or ``"ebr"`` (ECP5)."""
        return "bram36" if self.vendor == "xilinx" else "ebr"

    def platform_class(self):
        """The amaranth-boards platform class (open boards).

        Raises
        ------
        GatemillError
            If the board has no platform or its class cannot be imported.
        """
        if self.platform is None:
            raise GatemillError(f"board {self.name} has no amaranth-boards platform.")
        module, _, cls = self.platform.partition(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as e:
            raise GatemillError(
                f"board {self.name}: cannot import the platform {self.platform} ({e}); "
                "is amaranth-boards installed?"
            ) from None

    def summary(self) -> dict:
        """A JSON-ready description (what reports embed)."""
        return {
            "name": self.name,
            "part": self.part,
            "family": self.family,
            "clock_mhz": self.clock_mhz,
            "ps": self.ps,
            "axi_width": self.axi_width,
            "capacity": dict(self.capacity),
        }


def _table(doc: dict, key: str, allowed: set[str], where: str) -> dict:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise GatemillError(f"board {where}: {key} must be a table ([{key}]).")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise GatemillError(
            f"board {where}: unknown key(s) {', '.join(unknown)} in [{key}]; "
            f"allowed: {', '.join(sorted(allowed))}."
        )
    return value


def parse_board(doc: dict, where: str) -> Board:
    """A :class:`Board` from the parsed TOML *doc* (*where* names it in errors)."""
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise GatemillError(
            f"board {where}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(_TOP_KEYS))}."
        )
    missing = [k for k in ("name", "part", "family", "clock_mhz", "capacity") if k not in doc]
    if missing:
        raise GatemillError(f"board {where}: missing {', '.join(missing)}.")
    ps = _table(doc, "ps", _PS_KEYS, where)
    plat = _table(doc, "platform", _PLATFORM_KEYS, where)
    capacity = doc["capacity"]
    if not isinstance(capacity, dict):
        raise GatemillError(f"board {where}: capacity must be a table ([capacity]).")
    for key in ("name", "part", "family", "description"):
        if key in doc and not isinstance(doc[key], str):
            raise GatemillError(f"board {where}: {key} must be a string, not {doc[key]!r}.")
    return Board(
        name=doc["name"],
        description=doc.get("description", doc["name"]),
        part=doc["part"],
        family=doc["family"],
        clock_mhz=doc["clock_mhz"],
        capacity=dict(capacity),
        ps=ps.get("type"),
        axi_width=ps.get("axi_width"),
        platform=plat.get("class"),
        uart=plat.get("uart"),
        baud=plat.get("baud"),
        source=where,
    )


def _read(text: str, where: str) -> Board:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GatemillError(f"board file {where} is not valid TOML: {e}.") from None
    return parse_board(doc, where)


def load_board(name_or_path: str | Path) -> Board:
    """The board called *name_or_path* (one of :data:`BOARDS`) or read from a ``.toml`` file.

    Raises
    ------
    GatemillError
        For an unknown board, a missing file, or a file that does not validate.
    """
    text = str(name_or_path)
    if text.endswith(".toml") or Path(text).is_file():
        p = Path(text)
        try:
            return _read(p.read_text(), str(p))
        except FileNotFoundError:
            raise GatemillError(f"board file {text!r} does not exist.") from None
    if text not in BOARDS:
        raise GatemillError(
            f"unknown board {text!r}; choose one of {', '.join(BOARDS)} "
            "(gatemill boards lists them) or give a board .toml file."
        )
    res = resources.files("gatemill.boards").joinpath(f"{text}.toml")
    board = _read(res.read_text(), f"{text}.toml")
    if board.name != text:
        raise GatemillError(f"board file {text}.toml names itself {board.name!r}.")
    return board


def list_boards() -> list[Board]:
    """Every shipped board, in :data:`BOARDS` order."""
    return [load_board(name) for name in BOARDS]


def boards_command() -> None:
    """List the boards gatemill knows: part, clock, PS and AXI width, device capacity."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:  # a pipe or a log: do not wrap rows at 80 columns
        console = Console(highlight=False, width=120)
    table = Table(
        title="boards (gatemill build --board NAME)", title_justify="left", box=box.SIMPLE
    )
    for col in ("board", "part", "MHz", "PS / AXI", "LUT", "FF", "BRAM", "DSP", "bitstream"):
        table.add_column(col, justify="right" if col in ("LUT", "FF", "BRAM", "DSP") else "left")
    for b in list_boards():
        cap = b.capacity
        if b.vendor == "xilinx":
            bram, bitstream = f"{cap['bram36']}x36K", "Vivado"
        else:
            bram = f"{cap['ebr']} EBR"
            bitstream = f"UART {b.baud}" if b.uart else "synth only"
        table.add_row(
            b.name,
            b.part,
            f"{b.clock_mhz:g}",
            f"{PS_NAMES[b.ps]} {b.axi_width}-bit" if b.ps else "-",
            str(cap["lut"]),
            str(cap["ff"]),
            bram,
            str(cap["dsp"]),
            bitstream,
        )
    console.print(table)


__all__ = ["BOARDS", "Board", "boards_command", "list_boards", "load_board", "parse_board"]
