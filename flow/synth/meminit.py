"""Memory contents as ``$readmemh`` files, so Yosys reads a design's Verilog in seconds.

Amaranth's Verilog gives a memory's initial contents as one ``initial`` block with a
statement per word (``weights[0] = 8'hc1;``). Yosys's Verilog frontend elaborates that block
statement by statement, and the time grows faster than the number of words: on a CNV-w1a1
shaped network (FINN's folding, 6.7 MB of Verilog, 57 memories) the frontend alone took
94 s of CPU for one layer's 32,768 words and most of the 12 minutes of the whole synthesis.
The same contents read by ``$readmemh`` become one ``$meminit`` cell per memory: reading and
elaborating the whole design then takes under 2 s. After ``proc; memory_collect`` the two
netlists have the same memories (every ``$mem_v2`` parameter, contents included; a test
compares) and the same cells; only the cells' order differs, and ABC's mapping depends on it:
on the seven bench designs FF, BRAM, DSP, carry and LUTRAM figures are equal and the LUTs
move by -54 to +113 (at most 1.0 %, the LUT net), as they would for any renaming.

A block is rewritten only when every statement in it sets a word of one memory declared in
the same module (``reg [7:0] weights [32767:0];``) to a sized constant; anything else is
left as Amaranth wrote it.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

_MODULE = re.compile(r"^module\s", re.MULTILINE)
_MEMORY = re.compile(r"^  reg (?:\[\d+:\d+\] )?(\\\S+ |[A-Za-z_][A-Za-z0-9_$]*) \[(\d+):(\d+)\];$")
_WORD = re.compile(
    r"^    (\\\S+ |[A-Za-z_][A-Za-z0-9_$]*)\[(\d+)\] = \d+'s?([hdbo])([0-9a-fA-F_]+);$"
)
_BASE = {"h": 16, "d": 10, "b": 2, "o": 8}
BEGIN, END = "  initial begin", "  end"


def _memories(lines: list[str]) -> dict[str, tuple[int, int]]:
    """``{name: (lowest, highest address)}`` of the memories declared in a module."""
    out = {}
    for line in lines:
        m = _MEMORY.match(line)
        if m:
            a, b = int(m.group(2)), int(m.group(3))
            out[m.group(1)] = (min(a, b), max(a, b))
    return out


def _words(block: list[str], memories: dict) -> tuple[str, list[tuple[int, int]]] | None:
    """The memory and ``(address, value)`` words an ``initial`` block sets, or None."""
    name, words = None, []
    for line in block:
        m = _WORD.match(line)
        if m is None or (name is not None and m.group(1) != name):
            return None
        name = m.group(1)
        lo, hi = memories.get(name, (1, 0))
        addr = int(m.group(2))
        if not lo <= addr <= hi:
            return None
        words.append((addr, int(m.group(4).replace("_", ""), _BASE[m.group(3)])))
    return (name, words) if name is not None else None


def hex_text(words: list[tuple[int, int]]) -> str:
    """``$readmemh`` text of ``(address, value)`` words: an ``@address`` where they skip."""
    lines, prev = [], None
    for addr, value in words:
        if prev is None or addr != prev + 1:
            lines.append(f"@{addr:x}")
        lines.append(f"{value:x}")
        prev = addr
    return "\n".join(lines) + "\n"


def _module(text: str, write) -> str:
    lines = text.split("\n")
    memories = _memories(lines)
    out, i = [], 0
    while i < len(lines):
        if lines[i] == BEGIN and memories:
            try:
                j = lines.index(END, i + 1)
            except ValueError:
                j = -1
            found = _words(lines[i + 1 : j], memories) if j > 0 else None
            if found is not None:
                name, words = found
                out.append(f'  initial $readmemh("{write(hex_text(words))}", {name});')
                i = j + 1
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def memory_files(text: str, folder: Path, prefix: str) -> tuple[str, int]:
    """*text* (Verilog) with its memories' initial blocks read from ``$readmemh`` files.

    Parameters
    ----------
    text : str
        Verilog as Amaranth writes it.
    folder : path
        Where the ``.hex`` files go (created; earlier ``.hex`` files in it are removed).
    prefix : str
        The folder as the Verilog names it: Yosys opens ``<prefix>/m<n>.hex`` relative to its
        working directory.

    Returns
    -------
    (str, int)
        The Verilog and the number of memories now read from files.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.hex"):
        old.unlink()
    count = 0

    def write(hex_body: str) -> str:
        nonlocal count
        name = f"m{count}.hex"
        (folder / name).write_text(hex_body)
        count += 1
        return f"{prefix}/{name}"

    starts = [m.start() for m in _MODULE.finditer(text)]
    bounds = [0, *starts, len(text)] if not starts or starts[0] else [*starts, len(text)]
    parts = [text[a:b] for a, b in itertools.pairwise(bounds)]
    return "".join(_module(p, write) for p in parts), count
