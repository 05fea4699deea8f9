"""Sanitizing names that come from a model file before they reach generated text.

A model file is untrusted input: node and tensor names can hold quotes, brackets, ``$``, ``;``
or newlines. Everything that lands in Verilog, C++, Tcl, shell or file names goes through
:func:`sanitize` first, which keeps only ``[A-Za-z0-9_]``, never starts with a digit, avoids
keywords of the languages we generate, and stays short.
"""

from __future__ import annotations

import re

MAX_LEN = 48

# Verilog/SystemVerilog, C++ and Tcl words that must not be used as identifiers.
_RESERVED_WORDS = """
    always and assign automatic begin buf case casex casez cell config deassign default
    defparam design disable edge else end endcase endconfig endfunction endgenerate
    endmodule endprimitive endspecify endtable endtask event for force forever fork function
    generate genvar if ifnone initial inout input instance integer join large localparam
    macromodule medium module nand negedge nmos nor not or output parameter posedge
    primitive pulldown pullup real realtime reg release repeat signed small specify
    specparam strong0 strong1 supply0 supply1 table task time tri tri0 tri1 triand trior
    trireg unsigned use wait wand weak0 weak1 while wire wor xnor xor logic bit byte int
    shortint longint void class struct union enum typedef static const auto bool char double
    float long short switch break continue return namespace template typename this new
    delete private public protected virtual operator friend inline volatile register extern
    sizeof goto do proc set puts eval expr exec source open close global upvar uplevel
"""
_RESERVED = frozenset(_RESERVED_WORDS.split())


def sanitize(name: str, fallback: str = "n") -> str:
    """A safe identifier derived from *name* (may be empty or hostile).

    Examples
    --------
    >>> sanitize("/fc1/Gemm")
    'fc1_Gemm'
    >>> sanitize('a"; rm -rf $HOME [x]')
    'a_rm_rf_HOME_x'
    """
    s = re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_")
    s = re.sub(r"_+", "_", s)[:MAX_LEN].rstrip("_")
    if not s:
        s = fallback
    if s[0].isdigit():
        s = f"{fallback}_{s}"
    if s.lower() in _RESERVED or s.startswith("__"):
        s = f"{fallback}_{s}"
    return s


class NameTable:
    """Hands out unique sanitized names (``x``, ``x_1``, ``x_2``...)."""

    def __init__(self):
        self._used: set[str] = set()

    def unique(self, name: str, fallback: str = "n") -> str:
        """A sanitized name not handed out before."""
        base = sanitize(name, fallback)
        candidate, i = base, 1
        while candidate.lower() in self._used:
            candidate = f"{base}_{i}"
            i += 1
        self._used.add(candidate.lower())
        return candidate
