"""The pieces of an HLS design (pure data): config structs, constant arrays, streams, calls.

:mod:`gatemill.flow.hls.plan` assembles them for a whole graph; each layer kind adds its
kernels (:meth:`gatemill.flow.kinds.base.Layer.hls`); :mod:`gatemill.flow.hls.writer` renders
them with the Jinja2 templates of ``templates/hls``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..ir.datatypes import BIPOLAR

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def ident(name: str) -> str:
    """*name* if it is a plain C/Tcl identifier; anything else is refused, never escaped."""
    if not (isinstance(name, str) and name.isascii() and _IDENT.match(name)):
        raise ValueError(f"not a sanitized identifier: {name!r}")
    return name


def ctype(dt) -> str:
    """The element code type of a datatype: ``ap_int<B>``, ``ap_uint<B>``, BIPOLAR one bit."""
    if dt == BIPOLAR:
        return "ap_uint<1>"
    bits = dt.bitwidth()
    return f"ap_int<{bits}>" if dt.signed() else f"ap_uint<{bits}>"


def signed_type_for(values: np.ndarray) -> str:
    """The narrowest ``ap_int`` holding every value of *values* (and 0)."""
    lo, hi = min(int(values.min()), 0), max(int(values.max()), 0)
    bits = 1 + max((-lo - 1).bit_length() if lo < 0 else 0, hi.bit_length())
    return f"ap_int<{max(bits, 2)}>"


@dataclass(frozen=True)
class Const:
    """A ``static const`` member of a config struct."""

    name: str
    ctype: str
    value: int | bool

    @property
    def literal(self) -> str:
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return str(int(self.value))


@dataclass(frozen=True)
class Config:
    """One ``CONFIG_T`` struct: type aliases and constants."""

    name: str
    comment: str
    types: tuple[tuple[str, str], ...]
    consts: tuple[Const, ...]


@dataclass(frozen=True)
class Array:
    """A constant parameter array (weights, thresholds, directions) of one layer."""

    name: str
    ctype: str
    values: np.ndarray  # integers, already in the kernel's layout

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.values.shape)


@dataclass(frozen=True)
class Stream:
    """A stream between two kernels of packed words of ``lanes`` elements."""

    name: str
    lanes: int
    elem_bits: int
    depth: int = 2

    @property
    def bits(self) -> int:
        return self.lanes * self.elem_bits


@dataclass(frozen=True)
class Call:
    """One kernel call of the dataflow region."""

    func: str
    args: tuple[str, ...]
    comment: str


@dataclass
class Plan:
    """Everything the templates render for one IR graph."""

    configs: list[Config] = field(default_factory=list)
    params: dict[str, list[Array]] = field(default_factory=dict)  # layer name -> arrays
    streams: list[Stream] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    ports: dict = field(default_factory=dict)  # "input"/"output" -> port description
    port_types: dict = field(default_factory=dict)  # "input"/"output" -> (ctype, bipolar)
    headers: list[str] = field(default_factory=list)  # kernel headers of gatemill/, in order


def uconst(name, value) -> Const:
    """An ``unsigned`` constant."""
    return Const(name, "unsigned", int(value))


def iconst(name, value) -> Const:
    """An ``int`` constant."""
    return Const(name, "int", int(value))


def bconst(name, value) -> Const:
    """A ``bool`` constant."""
    return Const(name, "bool", bool(value))
