"""Registers into the ECP5's hard blocks: block RAM output registers and multiplier pipeline
registers, on the flattened Yosys JSON netlist before nextpnr-ecp5.

Yosys's ECP5 mapping leaves both unused: a block RAM is mapped with ``REGMODE = "NOREG"`` and a
multiplier with no register, whatever flip-flops sit next to them. nextpnr-ecp5 (speed grade 6)
then times a block RAM's read at 5.83 ns clock-to-output against 0.96 ns with its output
register, and a multiplier as 3.93 ns of logic between flip-flops in the fabric, whose routes
to the DSP columns add 2-4 ns more; registered, the same multiplier runs at 500 MHz. So the
RTL puts a plain register after every memory read and around every product (see
:mod:`gatemill.hdl.matrix_vector`), and this pass moves those flip-flops into the blocks:

- a block RAM port whose every used data output drives one flip-flop and nothing else, all on
  the port's clock with one clock enable, gets ``REGMODE = "OUTREG"`` with that enable on its
  output clock enable, and the flip-flops are removed;
- a multiplier whose operands (``A`` and ``B``) each come from flip-flops on one clock with
  one enable, or are constant, takes the flip-flops' inputs into its input registers (a
  flip-flop that drives other cells too stays, the multiplier gets a copy);
- a multiplier whose used product bits each drive one flip-flop and nothing else gets its
  output register in place of the flip-flops.

A flip-flop moves only when it behaves like the block's register: rising edge, no set or reset
(``LSR`` tied low: the RTL's data path registers are ``reset_less``), initial value 0. The
registers load on the same edges with the same enables, so the design computes the same
values in the same cycles (a constant operand's register holds 0 until the first enabled
edge, which also loads the first operand the product is computed for).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

__all__ = ["absorb_in_file", "absorb_registers"]

_EBR = "DP16KD"
_MULT = "MULT18X18D"
_FF = "TRELLIS_FF"
_CE_SLOTS = ("CE0", "CE1", "CE2", "CE3")


class _Netlist:
    """Drivers and sinks of every net bit of one flattened module."""

    def __init__(self, module: dict):
        self.cells = module["cells"]
        self.port_bits = {b for p in module["ports"].values() for b in p["bits"]}
        self.driver: dict[int, tuple[str, str]] = {}
        self.sinks: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for name, cell in self.cells.items():
            for port, bits in cell["connections"].items():
                out = cell["port_directions"].get(port) == "output"
                for b in bits:
                    if isinstance(b, int):
                        if out:
                            self.driver[b] = (name, port)
                        else:
                            self.sinks[b].append((name, port))

    def _track(self, name: str, port: str, bits, direction: str, attach: bool):
        for b in bits:
            if not isinstance(b, int):
                continue
            if direction == "output":
                if attach:
                    self.driver[b] = (name, port)
                else:
                    self.driver.pop(b, None)
            elif attach:
                self.sinks[b].append((name, port))
            else:
                self.sinks[b].remove((name, port))

    def connect(self, name: str, port: str, bits: list, direction: str):
        cell = self.cells[name]
        self._track(name, port, cell["connections"].get(port, []), direction, attach=False)
        cell["connections"][port] = list(bits)
        cell["port_directions"][port] = direction
        self._track(name, port, bits, direction, attach=True)

    def remove(self, name: str):
        cell = self.cells.pop(name)
        for port, bits in cell["connections"].items():
            self._track(name, port, bits, cell["port_directions"].get(port), attach=False)

    def only_sink(self, bit) -> str | None:
        """The flip-flop whose data input is the only load of *bit* (not a module port)."""
        if not isinstance(bit, int) or bit in self.port_bits:
            return None
        sinks = self.sinks.get(bit, [])
        if len(sinks) != 1 or sinks[0][1] != "DI":
            return None
        return sinks[0][0] if self.plain_ff(sinks[0][0]) else None

    def plain_ff(self, name: str) -> tuple | None:
        """``(clock, enable)`` of a flip-flop a hard block's register can stand for, else None."""
        cell = self.cells.get(name)
        if cell is None or cell["type"] != _FF:
            return None
        p, c = cell["parameters"], cell["connections"]
        if p.get("CLKMUX", "CLK").strip() != "CLK" or p.get("REGSET", "RESET").strip() != "RESET":
            return None
        if c.get("LSR", ["0"]) != ["0"]:
            return None
        cemux = p.get("CEMUX", "CE").strip()
        if cemux == "1":
            enable = "1"
        elif cemux == "CE":
            enable = c.get("CE", ["1"])[0]
        else:
            return None
        return c["CLK"][0], enable


def _one(values: set):
    return next(iter(values)) if len(values) == 1 else None


def _ebr_groups(cell: dict):
    """``(clock port, output enable port, REGMODE parameters, data output ports)`` of each
    read port: in the 36-bit pseudo dual port mode both halves are read on clock B."""
    c = cell["connections"]
    if str(cell["parameters"].get("DATA_WIDTH_A", "")).lstrip("0") in ("100100", "36"):
        outs = [p for p in c if p.startswith(("DOA", "DOB"))]
        return [("CLKB", "OCEB", ("REGMODE_A", "REGMODE_B"), outs)]
    return [
        (f"CLK{s}", f"OCE{s}", (f"REGMODE_{s}",), [p for p in c if p.startswith(f"DO{s}")])
        for s in "AB"
    ]


def _output_flip_flops(net: _Netlist, name: str, ports):
    """``({port: flip-flop}, timing)`` when every used output of *ports* of cell *name*
    drives one plain flip-flop and nothing else, all with one clock and enable; else None."""
    c = net.cells[name]["connections"]
    used = [p for p in ports if net.sinks.get(c[p][0]) or c[p][0] in net.port_bits]
    ffs = {p: net.only_sink(c[p][0]) for p in used}
    if not used or None in ffs.values():
        return None
    timing = _one({net.plain_ff(f) for f in ffs.values()})
    return None if timing is None else (ffs, timing)


def _take_over(net: _Netlist, name: str, ffs: dict):
    """Cell *name*'s outputs drive what the flip-flops *ffs* (``{port: flip-flop}``) drove;
    the flip-flops are gone."""
    for port, ff in ffs.items():
        q = net.cells[ff]["connections"]["Q"]
        net.remove(ff)
        net.connect(name, port, q, "output")


def _absorb_ebr(net: _Netlist, name: str) -> int:
    cell = net.cells[name]
    done = 0
    for clk_port, oce_port, modes, outs in _ebr_groups(cell):
        params, c = cell["parameters"], cell["connections"]
        if any(params.get(m, "NOREG") != "NOREG" for m in modes):
            continue
        if params.get(f"{clk_port}MUX", clk_port).strip() != clk_port:
            continue
        if c.get(f"RST{clk_port[-1]}", ["0"]) != ["0"]:
            continue
        found = _output_flip_flops(net, name, outs)
        if found is None or found[1][0] != c[clk_port][0]:
            continue
        ffs, (_, enable) = found
        _take_over(net, name, ffs)
        net.connect(name, oce_port, [enable], "input")
        for m in modes:
            params[m] = "OUTREG"
        done += 1
    return done


def _slot(net: _Netlist, name: str, clock, enable) -> str | None:
    """Multiplier *name*'s clock enable slot carrying *enable* (taking a free one), all of
    its registers on *clock*; None when the four are taken or the clock differs."""
    c = net.cells[name]["connections"]
    if c.get("CLK0", ["0"]) not in (["0"], [clock]):
        return None
    for slot in _CE_SLOTS:
        if c.get(slot) == [enable]:
            return slot
    for slot in _CE_SLOTS:
        if slot not in c:
            net.connect(name, "CLK0", [clock], "input")
            net.connect(name, slot, [enable], "input")
            net.connect(name, "RST" + slot[-1], ["0"], "input")
            return slot
    return None


def _operand_registers(net: _Netlist, name: str, operand: str, ebr_outputs: set):
    """``(flip-flop per port, timing)`` of a multiplier operand its input register can stand
    for; ``({}, None)`` for a constant operand; None when it cannot be registered."""
    c = net.cells[name]["connections"]
    bits = {p: c[p][0] for p in c if p[0] == operand and p[1:].isdigit()}
    drivers = {p: net.driver.get(b) for p, b in bits.items() if isinstance(b, int)}
    if not drivers:
        return {}, None
    if any(d is None or d[1] != "Q" for d in drivers.values()):
        return None
    names = {d[0] for d in drivers.values()}
    timing = _one({net.plain_ff(f) for f in names})
    # a flip-flop right after a block RAM read is the RAM's output register instead
    if timing is None or any(net.cells[f]["connections"]["DI"][0] in ebr_outputs for f in names):
        return None
    return {p: d[0] for p, d in drivers.items()}, timing


def _absorb_mult_inputs(net: _Netlist, name: str, ebr_outputs: set) -> int:
    """Both operands into the input registers, or neither: nextpnr-ecp5 times a multiplier
    with one registered operand as if neither were (and warns). A constant operand is
    registered with the other (it loads the same constant on the same edges)."""
    cell = net.cells[name]
    if any(cell["parameters"].get(f"REG_INPUT{o}_CLK", "NONE") != "NONE" for o in "AB"):
        return 0
    plans = [_operand_registers(net, name, o, ebr_outputs) for o in "AB"]
    if None in plans:
        return 0
    timings = {t for _, t in plans if t is not None}
    if len({t[0] for t in timings}) != 1:  # one clock, and at least one operand from registers
        return 0
    slots = {t: _slot(net, name, *t) for t in timings}
    if None in slots.values():
        return 0
    for operand, (ffs, timing) in zip("AB", plans, strict=True):
        slot = slots[timing if timing is not None else next(iter(timings))]
        for port, ff in ffs.items():
            net.connect(name, port, net.cells[ff]["connections"]["DI"], "input")
        for ff in set(ffs.values()):
            q = net.cells[ff]["connections"]["Q"][0]
            if not net.sinks.get(q) and q not in net.port_bits:
                net.remove(ff)
        cell["parameters"].update(
            {
                f"REG_INPUT{operand}_CLK": "CLK0",
                f"REG_INPUT{operand}_CE": slot,
                f"REG_INPUT{operand}_RST": "RST0",
            }
        )
    return 2


def _absorb_mult_output(net: _Netlist, name: str) -> int:
    cell = net.cells[name]
    if cell["parameters"].get("REG_OUTPUT_CLK", "NONE") != "NONE":
        return 0
    found = _output_flip_flops(net, name, [p for p in cell["connections"] if p[0] == "P"])
    if found is None:
        return 0
    ffs, timing = found
    slot = _slot(net, name, *timing)
    if slot is None:
        return 0
    _take_over(net, name, ffs)
    cell["parameters"].update(
        {"REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": slot, "REG_OUTPUT_RST": "RST0"}
    )
    return 1


def absorb_registers(netlist: dict, top: str) -> dict[str, int]:
    """Move flip-flops of module *top* of a Yosys JSON *netlist* (``synth_ecp5``, flattened)
    into block RAM output registers and multiplier registers, in place.

    Returns
    -------
    dict
        ``ebr_output_registers`` (read ports given their output register),
        ``mult_input_registers`` (operands registered in their multiplier),
        ``mult_output_registers`` and ``flip_flops`` (how many fewer the netlist has).
    """
    module = netlist["modules"][top]
    net = _Netlist(module)
    before = sum(c["type"] == _FF for c in net.cells.values())
    ebrs = [n for n, c in net.cells.items() if c["type"] == _EBR]
    mults = [n for n, c in net.cells.items() if c["type"] == _MULT]
    ebr_outputs = {
        b
        for n in ebrs
        for p, bits in net.cells[n]["connections"].items()
        if p.startswith("DO")
        for b in bits
        if isinstance(b, int)
    }
    counts = {
        "mult_input_registers": sum(_absorb_mult_inputs(net, n, ebr_outputs) for n in mults),
        "ebr_output_registers": sum(_absorb_ebr(net, n) for n in ebrs),
        "mult_output_registers": sum(_absorb_mult_output(net, n) for n in mults),
    }
    counts["flip_flops"] = before - sum(c["type"] == _FF for c in net.cells.values())
    return counts


def absorb_in_file(path: str | Path, top: str) -> dict[str, int]:
    """:func:`absorb_registers` on the netlist file *path*, rewritten in place."""
    path = Path(path)
    netlist = json.loads(path.read_text())
    counts = absorb_registers(netlist, top)
    path.write_text(json.dumps(netlist))
    return counts
