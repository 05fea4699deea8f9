"""Logic depth of each stage from Yosys: the longest chain of combinational cells.

After technology mapping, Yosys's ``ltp`` finds in each module the longest path through the
selected cells; selecting only the combinational primitives (LUTs, slice multiplexers, carry
cells) makes flip-flops, block RAMs, DSPs, distributed RAMs and the module's ports the ends
of a path. The path's length in cells is the stage's logic depth: with no placement it is
the best figure of the clock rate Yosys can give (each LUT level costs a LUT delay and a net;
a carry cell carries 4 or 8 bits for a fraction of that, so the carry cells on the path are
counted apart). A distributed RAM's asynchronous read is a path end here, although it is a
LUT delay in the device.
"""

from __future__ import annotations

import re

# the combinational primitives of each family (Yosys cell types) and which are carry cells
_XILINX = (
    *(f"LUT{i}" for i in range(1, 7)),
    "LUT6_2",
    "INV",
    "MUXF7",
    "MUXF8",
    "MUXF9",
    "CARRY4",
    "CARRY8",
)
COMBINATIONAL = {
    "xc7": _XILINX,
    "xcup": _XILINX,
    "ecp5": ("LUT4", "PFUMX", "L6MUX21", "CCU2C"),
}
CARRY = ("CARRY4", "CARRY8", "CCU2C")

_HEAD = re.compile(r"^Longest topological path in (\S+) \(length=(-?\d+)\):")
_VIA = re.compile(r"\(via (.+)\)$")


def depth_commands(family: str, ltp_file: str, carry_file: str) -> list[str]:
    """Yosys commands writing the longest combinational path of every module to *ltp_file*
    and the carry cells to *carry_file* (run after the synthesis)."""
    cells = " ".join(f"t:{t}" for t in COMBINATIONAL[family])
    carry = " ".join(f"t:{t}" for t in CARRY if t in COMBINATIONAL[family])
    return [
        f"tee -q -o {ltp_file} ltp {cells} w:*",
        f"tee -q -o {carry_file} select -list {carry}",
    ]


def parse_depth(ltp_text: str, carry_text: str) -> dict[str, dict[str, int]]:
    """``{module: {"depth": cells on the longest path, "carry": carry cells among them}}``.

    *ltp_text* is what ``ltp`` printed, *carry_text* what ``select -list`` printed of the
    carry cells (``module/cell`` lines). A module with no combinational cell has depth 0.
    """
    carries = set(carry_text.split())
    out: dict[str, dict[str, int]] = {}
    module = None
    for line in ltp_text.splitlines():
        head = _HEAD.match(line)
        if head:
            module = head.group(1).lstrip("\\")
            out[module] = {"depth": max(0, int(head.group(2))), "carry": 0}
            continue
        via = _VIA.search(line)
        if module is not None and via and f"{module}/{via.group(1)}" in carries:
            out[module]["carry"] += 1
    return out
