"""From Yosys cell counts to resource figures a data sheet speaks of.

Yosys ``stat -json`` gives the number of cells of each primitive type per module. The tables
below say what each primitive costs, per family; a cell type that is in no table is reported
under ``other`` rather than dropped, so a new primitive shows up instead of vanishing.

Xilinx (``xc7``, ``xcup``): ``lut`` counts every LUT site used, as Vivado's "CLB LUTs" does:
logic LUTs plus LUTs used as distributed RAM or shift registers (``lutram`` is that second
part, in LUT sites). ``bram`` is in 36 Kb blocks (a RAMB18 is half of one); ``carry`` counts
CARRY4/CARRY8 cells, ``muxf`` the MUXF7/F8/F9 slice multiplexers (they use no LUT).

ECP5: a slice has two LUT4s and two flip-flops. A CCU2C carry cell uses both LUT4s of a slice
and a TRELLIS_DPR16X4 distributed RAM the LUTs of two slices, so ``lut`` counts them as 2 and
4 LUT4s, which is what the device's LUT capacity is measured in. ``bram`` counts EBRs (18 Kb),
``dsp`` the 18x18 multipliers.
"""

from __future__ import annotations

from collections import Counter

# cell type -> {resource: amount}
_XILINX = {
    **{f"LUT{i}": {"lut": 1} for i in range(1, 7)},
    "LUT6_2": {"lut": 1},
    # an inverter left by synthesis becomes a LUT1 (or is absorbed) in Vivado: count it
    "INV": {"lut": 1},
    **{
        ff: {"ff": 1}
        for ff in ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1")
    },
    "LDCE": {"ff": 1},
    "LDPE": {"ff": 1},
    "CARRY4": {"carry": 1},
    "CARRY8": {"carry": 1},
    "MUXF7": {"muxf": 1},
    "MUXF8": {"muxf": 1},
    "MUXF9": {"muxf": 1},
    "RAMB36E1": {"bram36": 1},
    "RAMB36E2": {"bram36": 1},
    "RAMB18E1": {"bram18": 1},
    "RAMB18E2": {"bram18": 1},
    "URAM288": {"uram": 1},
    "DSP48E1": {"dsp": 1},
    "DSP48E2": {"dsp": 1},
    # LUTs used as memory, in LUT sites (7-series / UltraScale+ libraries guides)
    "RAM32X1S": {"lutram": 1, "lut": 1},
    "RAM64X1S": {"lutram": 1, "lut": 1},
    "RAM128X1S": {"lutram": 2, "lut": 2},
    "RAM256X1S": {"lutram": 4, "lut": 4},
    "RAM512X1S": {"lutram": 8, "lut": 8},
    "RAM32X1D": {"lutram": 2, "lut": 2},
    "RAM64X1D": {"lutram": 2, "lut": 2},
    "RAM128X1D": {"lutram": 4, "lut": 4},
    "RAM256X1D": {"lutram": 8, "lut": 8},
    "RAM32M": {"lutram": 4, "lut": 4},
    "RAM64M": {"lutram": 4, "lut": 4},
    "RAM32M16": {"lutram": 8, "lut": 8},
    "RAM64M8": {"lutram": 8, "lut": 8},
    "SRL16E": {"lutram": 1, "lut": 1},
    "SRLC16E": {"lutram": 1, "lut": 1},
    "SRLC32E": {"lutram": 1, "lut": 1},
    # no cost: clock and I/O buffers (the accelerator is an IP inside a block design)
    "BUFG": {},
    "IBUF": {},
    "OBUF": {},
    "GND": {},
    "VCC": {},
}

_ECP5 = {
    "LUT4": {"lut": 1},
    "CCU2C": {"carry": 1, "lut": 2},
    "TRELLIS_DPR16X4": {"lutram": 1, "lut": 4},
    "TRELLIS_FF": {"ff": 1},
    "PFUMX": {"muxf": 1},
    "L6MUX21": {"muxf": 1},
    "DP16KD": {"ebr": 1},
    "PDPW16KD": {"ebr": 1},
    "MULT18X18D": {"dsp": 1},
    "ALU54B": {"alu54": 1},
    "TRELLIS_IO": {},
    "IB": {},
    "OB": {},
    "BB": {},
    "OBZ": {},
    "VHI": {},
    "VLO": {},
}

TABLES = {"xc7": _XILINX, "xcup": _XILINX, "ecp5": _ECP5}

# cells that are bookkeeping, not hardware
_IGNORED = {"$scopeinfo"}

XILINX_KEYS = ("lut", "ff", "bram", "bram36", "bram18", "uram", "dsp", "carry", "lutram", "muxf")
ECP5_KEYS = ("lut", "ff", "bram", "dsp", "carry", "lutram", "muxf", "alu54")


def resource_keys(family: str) -> tuple[str, ...]:
    """The resource figures reported for *family*, in report order."""
    return ECP5_KEYS if family == "ecp5" else XILINX_KEYS


def resources(cells: dict[str, int], family: str) -> dict:
    """Resource figures of a cell count (``{type: n}``) for *family*.

    Returns a dict with every key of :func:`resource_keys` (``bram`` in 36 Kb blocks for
    Xilinx, EBRs for ECP5), ``cells`` (the primitive counts) and ``other`` (cell types no
    table knows, with their counts; empty when everything is accounted for).
    """
    table = TABLES[family]
    total: Counter = Counter()
    other = {}
    for cell, n in sorted(cells.items()):
        if cell in _IGNORED:
            continue
        cost = table.get(cell)
        if cost is None:
            other[cell] = n
            continue
        for k, v in cost.items():
            total[k] += v * n
    out = {k: int(total.get(k, 0)) for k in resource_keys(family) if k != "bram"}
    if family == "ecp5":
        out["bram"] = int(total.get("ebr", 0))
    else:
        b = total.get("bram36", 0) + total.get("bram18", 0) / 2
        out["bram"] = int(b) if b == int(b) else b
    out = {k: out[k] for k in resource_keys(family)}
    out["cells"] = {k: int(v) for k, v in sorted(cells.items()) if k not in _IGNORED}
    out["other"] = other
    return out


def add(a: dict, b: dict) -> dict:
    """Sum of two :func:`resources` results (cell counts and unknown types included)."""
    out = {}
    for k, v in a.items():
        if isinstance(v, dict):
            merged = Counter(v)
            merged.update(b.get(k, {}))
            out[k] = dict(sorted(merged.items()))
        else:
            s = v + b.get(k, 0)
            out[k] = int(s) if s == int(s) else s
    return out
