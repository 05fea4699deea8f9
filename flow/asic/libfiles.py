"""The files synthesis and simulation read, made from a :class:`~.library.Library`.

- a liberty file (``cells.lib``): every kept cell with its area, pins and functions, flip-flops
  with their ``ff`` group; Yosys reads it for the cells' ports (``read_liberty -lib``), maps
  flip-flops with it (``dfflibmap``) and counts area with it (``stat -liberty``);
- a genlib file (``cells.genlib``): the single-output combinational cells with their area,
  function and one unit delay per pin, which ABC maps logic onto;
- the simulation models (``cells_sim.v``): the kept cells' functional Verilog from the
  package, with the primitives they include pasted in once each, for the gate-level
  simulation with Icarus;
- the same cells as plain RTL (``cells_rtl.v``), written from the functions read from those
  models, for the gate-level simulation with Verilator, which compiles a netlist of 100k cells
  in minutes where Icarus interprets it for hours, but does not run the package's sequential
  primitives correctly.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..textgen import render
from .library import Cell, Library, to_text

_INCLUDE = re.compile(r'^\s*`include\s+"([^"]+)"\s*$', re.MULTILINE)


def lib_expr(e) -> str:
    """An expression in liberty syntax (``!``, ``&``, ``|``, ``^``, state ``IQ``)."""
    return to_text(e, and_op="&", or_op="|")


def genlib_expr(e) -> str:
    """An expression in genlib syntax (``!``, ``*``, ``+``, ``^``)."""
    return to_text(e, and_op="*", or_op="+")


def _ff_lines(cell: Cell) -> list[tuple[str, str]]:
    ff = cell.ff
    lines = [("clocked_on", f'"{lib_expr(ff.clock)}"'), ("next_state", f'"{lib_expr(ff.data)}"')]
    if ff.clear is not None:
        lines.append(("clear", f'"{lib_expr(ff.clear)}"'))
    if ff.preset is not None:
        lines.append(("preset", f'"{lib_expr(ff.preset)}"'))
    if ff.clear is not None and ff.preset is not None:  # the preset wins
        lines += [("clear_preset_var1", "H"), ("clear_preset_var2", "L")]
    return lines


def _clock_pins(cell: Cell) -> set[str]:
    if cell.ff is None:
        return set()
    e = cell.ff.clock
    while e[0] == "not":
        e = e[1]
    return {e[1]} if e[0] == "var" else set()


def liberty_text(lib: Library, package: str) -> str:
    """The liberty file of *lib*'s kept cells (see the module docstring)."""
    cells = []
    for c in lib.cells.values():
        clocks = _clock_pins(c)
        cells.append(
            {
                "name": c.name,
                "area": c.area,
                "ff": _ff_lines(c) if c.ff else None,
                "inputs": [(p, p in clocks) for p in c.inputs],
                "outputs": [(p, lib_expr(e)) for p, e in c.outputs.items()],
            }
        )
    return render("asic/cells.lib.j2", library=lib.name, package=package, cells=cells)


def genlib_text(lib: Library, package: str) -> str:
    """The genlib file of *lib*'s single-output combinational cells."""
    cells = []
    for c in lib.logic():
        ((pin, e),) = c.outputs.items()
        cells.append({"name": c.name, "area": c.area, "output": pin, "function": genlib_expr(e)})
    return render("asic/cells.genlib.j2", library=lib.name, package=package, cells=cells)


def verilog_expr(e) -> str:
    """An expression in Verilog syntax (``!``, ``&``, ``|``, ``^``, state ``IQ``)."""
    return f"1'b{e[1]}" if e[0] == "const" else lib_expr(e)


def rtl_models_text(lib: Library, package: str) -> str:
    """The kept cells as plain RTL modules (``assign`` and one ``always`` per flip-flop)."""
    cells = []
    for c in lib.cells.values():
        ff = None
        if c.ff is not None:
            # the preset wins over the clear (as the liberty file says), so it is tested first
            asynch = [(n, e) for n, e in (("set", c.ff.preset), ("clr", c.ff.clear)) if e]
            ff = {
                "clock": verilog_expr(c.ff.clock),
                "data": verilog_expr(c.ff.data),
                "asynch": [(n, verilog_expr(e)) for n, e in asynch],
            }
        cells.append(
            {
                "name": c.name,
                "ports": [*c.inputs, *c.outputs],
                "inputs": c.inputs,
                "outputs": [(p, verilog_expr(e)) for p, e in c.outputs.items()],
                "ff": ff,
            }
        )
    return render("asic/cells_rtl.v.j2", library=lib.name, package=package, cells=cells)


def sim_models_text(lib: Library) -> str:
    """The functional Verilog of every kept cell, self-contained (includes pasted in once).

    The flip-flop models write ``\\`UNIT_DELAY`` before their instance; it is defined empty
    here: a zero-delay functional simulation.
    """
    out = [
        f"// {lib.name}: functional models of the cells gatemill maps to, from the PDK package",
        "`ifndef UNIT_DELAY",
        "`define UNIT_DELAY",
        "`endif",
    ]
    seen: set[Path] = set()
    for c in lib.cells.values():
        src = lib.root / c.source
        text = src.read_text()
        for inc in _INCLUDE.findall(text):
            path = (src.parent / inc).resolve()
            if path not in seen:
                seen.add(path)
                out.append(path.read_text())
        out.append(_INCLUDE.sub("", text))
    return "\n".join(out) + "\n"
