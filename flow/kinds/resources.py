"""What Yosys makes of a unit: the mapping rules of ``synth_xilinx -family xc7`` (Yosys 0.64)
and the :class:`Features` record every layer kind fills (:meth:`Layer.features
<gatemill.flow.kinds.base.Layer.features>`).

- **Memories** (weight and threshold ROMs, input buffers, FIFO storage, line buffers) go where
  Yosys's ``memory_libmap`` puts them: :func:`map_memory` redoes its cost comparison with the
  xc7 library (``brams_xc4v.txt`` with 36 Kb blocks, ``lutrams_xc5v.txt``, a ROM bit in logic
  costing 1/64, a RAM bit 1). ROMs never become LUTRAM (the library prunes them); a ROM
  becomes block RAM when that is cheaper than 1/64 per bit, otherwise logic (LUTs); a RAM
  becomes LUTRAM or block RAM. Block RAMs and LUTRAM sites are counted exactly.
- **Products** go to a DSP48 when both operands are at least 2 bits wide and the product at
  least 9 (``mul2dsp`` with ``DSP_A_MINWIDTH=2 DSP_B_MINWIDTH=2 DSP_Y_MINWIDTH=9``): an
  unsigned input of ``a`` bits times a signed weight of ``w`` bits is ``a + w`` bits wide.
  Smaller products are LUT multipliers (:func:`dsp_product`).
- **LUTs and flip-flops** are a few terms per unit (bits of one piece of the template),
  weighted by coefficients fitted to Yosys in :mod:`gatemill.flow.dse.cost`.

Other families use the same terms with their own DSP rule (ECP5: every product of 2-bit or
wider operands is a MULT18X18D); ECP5's memories (EBR, 18 Kb) are counted as the xc7 mapping
would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# -- Yosys's rules (xc7) ---------------------------------------------------------------

DSP_MIN_OPERAND = 2  # mul2dsp DSP_A_MINWIDTH / DSP_B_MINWIDTH
DSP_MIN_PRODUCT = 9  # mul2dsp DSP_Y_MINWIDTH
ROM_LOGIC_COST = 1 / 64  # memory_libmap -logic-cost-rom 0.015625 (synth_xilinx, xc7)
RAM_LOGIC_COST = 1.0

# (cost, abits, data widths, 36 Kb blocks per cell) of the block RAM options of
# brams_xc4v.txt with HAS_SIZE_36: RAMB18 ("HALF") and RAMB36 ("FULL"), simple dual port
# (the widest) and true dual port
_BRAM = (
    (129, 14, (1, 2, 4, 9, 18, 36), 0.5),
    (257, 15, (1, 2, 4, 9, 18, 36, 72), 1.0),
)
# (name, cost, widthscale, abits, data width, LUT sites per cell, per used bit or per cell)
# of lutrams_xc5v.txt and what lutrams_xc5v_map.v instantiates
_LUTRAM = {
    "sp": (
        ("SP", 8, 8, 5, 8, 4, "cell"),  # RAM32M
        ("SP", 8, 8, 6, 4, 1, "bit"),  # RAM64X1S
        ("SP", 8, 8, 7, 2, 2, "bit"),  # RAM128X1S
        ("SP", 8, 8, 8, 1, 4, "bit"),  # RAM256X1S
    ),
    "sdp": (
        ("SDP", 8, 7, 5, 6, 4, "cell"),  # RAM32M
        ("SDP", 8, 7, 6, 3, 4, "cell"),  # RAM64M
        ("DP", 8, 8, 5, 4, 4, "cell"),  # RAM32M
        ("DP", 8, 8, 6, 2, 2, "bit"),  # RAM64X1D
        ("DP", 8, 8, 7, 1, 4, "bit"),  # RAM128X1D
    ),
}
_LUTRAM["sp"] = _LUTRAM["sp"] + _LUTRAM["sdp"]  # one address fits a two-address RAM too


@dataclass(frozen=True)
class MemoryMap:
    """Where Yosys puts one memory: ``how`` is ``"bram"``, ``"lutram"`` or ``"logic"``;
    ``bram`` in 36 Kb blocks, ``lutram`` in LUT sites."""

    how: str
    bram: float = 0.0
    lutram: int = 0


def map_memory(depth: int, width: int, kind: str) -> MemoryMap:
    """Yosys's choice for a memory of *depth* words of *width* bits (xc7).

    *kind*: ``"rom"`` (one synchronous read port, initialized), ``"sp"`` (one address for
    reading and writing) or ``"sdp"`` (a write and a read address), ``"sp_async"`` and
    ``"sdp_async"`` when the read is asynchronous (no block RAM). The cheapest of logic,
    LUTRAM (not for ROMs) and block RAM by ``memory_libmap``'s costs: per cell its cost, the
    width it leaves unused scaled away, and half a unit per read bit multiplexed between
    cells (the address bits a cell does not decode).
    """
    if depth < 1 or width < 1:
        return MemoryMap("logic")
    best = (depth * width * (ROM_LOGIC_COST if kind == "rom" else RAM_LOGIC_COST), "logic", 0, 0)
    for cost, abits, widths, blocks in () if kind.endswith("async") else _BRAM:
        for k, w in enumerate(widths):
            mult_a = math.ceil(depth / 2 ** (abits - k))
            repl = math.ceil(mult_a * width / w)
            c = cost * repl + 0.5 * (mult_a - 1) * width
            if c < best[0]:
                best = (c, "bram", repl * blocks, 0)
    for _, cost, scale, abits, w, sites, per in _LUTRAM.get(kind.removesuffix("_async"), ()):
        mult_a = math.ceil(depth / 2**abits)
        cells = mult_a * math.ceil(width / w)
        c = (cost - scale) * cells + scale * mult_a * width / w + 0.5 * (mult_a - 1) * width
        if c < best[0]:
            used = sites * (cells if per == "cell" else mult_a * width)
            best = (c, "lutram", 0, used)
    _, how, bram, lutram = best
    return MemoryMap(how, bram, lutram)


# signed operand bits of one multiplier block: DSP48E1 (7-series) 25 x 18, DSP48E2 (UltraScale+)
# 27 x 18, MULT18X18D (ECP5) 18 x 18
MULTIPLIER_PORTS = {"xc7": (25, 18), "xcup": (27, 18), "ecp5": (18, 18)}


# The families whose synthesis puts adder trees on the carry chain, unmerged from Yosys's
# $macc cells (gatemill.flow.synth.yosys.UNMERGE_ADDERS); elsewhere (the ECP5), and for
# popcounts everywhere, Yosys maps each tree between registers to full adders.
CARRY_CHAIN_TREES = frozenset({"xc7", "xcup"})


def dsp_product(a_bits: int, w_bits: int, family: str = "xc7") -> bool:
    """Does Yosys put an ``a_bits`` x ``w_bits`` product (input, weight) on a DSP block?

    Xilinx: both operands at least 2 bits and the product at least 9 (the input enters
    zero-extended when unsigned, so it is never too narrow). ECP5 (``synth_ecp5``): no
    minimum product width, every product of 2-bit or wider operands is a MULT18X18D.
    """
    if family == "ecp5":
        return w_bits >= DSP_MIN_OPERAND
    return w_bits >= DSP_MIN_OPERAND and a_bits + w_bits >= DSP_MIN_PRODUCT


# -- features ----------------------------------------------------------------------------


def width(dtype) -> int:
    """Bits of one element of *dtype* on a wire (1 for BIPOLAR)."""
    return dtype.bitwidth()


def clog2(n: int) -> int:
    """Bits of a counter over *n* values."""
    return max(0, math.ceil(math.log2(max(n, 1))))


@dataclass(frozen=True)
class Features:
    """What one stage is made of: ``lut`` and ``ff`` terms (bits, weighted by the fitted
    coefficients of ``coefficients``, its kind's unless it shares another's), and what is
    counted exactly: the memories (``{name: MemoryMap}``, their block RAMs and LUTRAM sites)
    and the DSP48s."""

    kind: str
    lut: dict
    ff: dict
    memories: dict
    dsp: int = 0
    coefficients: str | None = None

    @property
    def coefficient_kind(self) -> str:
        """The kind whose fitted coefficients weigh the terms."""
        return self.coefficients or self.kind


SMALL_ROM = 16  # words: a ROM this shallow merges into the logic it feeds
# words: Yosys keeps the read register of a deeper ROM in logic, and only part of a shallower
# one's (fitted apart)
SHALLOW_ROM_REGS = 8


def rom_terms(roms) -> dict:
    """LUT term of ROMs mapped to logic, ``[(depth, width)]``: per output bit one LUT6 per 64
    words, or ``depth / SMALL_ROM`` of one for a ROM of at most :data:`SMALL_ROM` words
    (ABC merges its few address bits with the logic the ROM feeds)."""
    return {"rom": sum(w * rom_luts(d) for d, w in roms)}


def rom_luts(depth: int) -> float:
    """LUT6s per output bit of a ROM of *depth* words in logic (see :func:`rom_terms`)."""
    return depth / SMALL_ROM if depth <= SMALL_ROM else math.ceil(depth / 64)


def multiplier_blocks(a_bits: int, b_bits: int, family: str) -> int:
    """Multiplier blocks of *family* that Yosys's ``mul2dsp`` takes for an ``a_bits`` x
    ``b_bits`` product (signed bits): one where both fit the ports
    (:data:`MULTIPLIER_PORTS`), else the wider operand in slices of a port less one bit
    (measured: two DSP48E1s for 8-bit inputs by 26- to 29-bit constants)."""
    small, big = sorted((a_bits, b_bits))
    p_small, p_big = sorted(MULTIPLIER_PORTS.get(family, MULTIPLIER_PORTS["ecp5"]))
    if small <= p_small and big <= p_big:
        return 1
    slices_small = 1 if small <= p_small else math.ceil(small / (p_small - 1))
    return slices_small * math.ceil(big / (p_big - 1))


def constant_products(multiplicands, a_bits: int, a_signed: bool, family: str) -> tuple[int, int]:
    """``(multiplier blocks, products in LUTs)``: the multiplications left by constant
    *multiplicands* (``[rows, columns]``: a fully parallel layer's weights, or its packed
    weights) of ``a_bits`` inputs.

    Yosys shares equal products (same input, same constant), turns a 0 or a power of two
    into wiring and a shift (a negation in LUTs when negative), and maps the rest by
    :func:`dsp_product`. With an unsigned input it makes the product unsigned: a negative
    constant is then as wide as the product, and a product too wide for the ports takes
    several blocks (:func:`multiplier_blocks`). Packed constants make this an upper bound:
    Yosys also shares some products that differ by a shift (the 90 %-pruned jet MLP's first
    layer, 8-bit inputs by pairs of 6-bit weights: 114 DSP48s, 118 counted here)."""
    dsp = soft = 0
    w = np.asarray(multiplicands, dtype=object)
    x_bits = a_bits + (not a_signed)
    for col in range(w.shape[1]):
        for v in {int(x) for x in w[:, col]}:
            m = abs(v)
            if m & (m - 1) == 0:  # 0 or a power of two
                soft += v < 0
                continue
            bits = (v if v > 0 else ~v).bit_length() + 1
            if not dsp_product(a_bits, bits, family):
                soft += 1
                continue
            # Yosys's unsigned product of a_bits + bits + 1 bits (measured), as a signed port
            # operand one bit more
            wide = a_bits + bits + 2 if v < 0 and not a_signed else bits
            dsp += multiplier_blocks(x_bits, wide, family)
    return dsp, soft


@dataclass
class _Operand:
    """An adder tree's operand as :func:`tree_adder_bits` follows it: its width and the low
    bits known to be zero (a shifted multiple's); *bits* tallies the adders' bits."""

    width: int
    zeros: int
    bits: list

    def __add__(self, other: _Operand) -> _Operand:
        width = max(self.width, other.width) + 1
        # below the higher operand's zero bits the sum is the other's bits: wires, no adder
        self.bits[0] += width - max(self.zeros, other.zeros)
        return _Operand(width, min(self.zeros, other.zeros), self.bits)

    __sub__ = __add__


def tree_adder_bits(terms, negative) -> int:
    """Adder bits of :func:`~gatemill.hdl.pipeline.sum_levels` over *terms*, ``(width,
    zeros)`` each (a value of ``width`` bits whose low ``zeros`` are 0), subtracting where
    *negative*: the tree's own pairing, with an adder's bits counted from the higher of its
    operands' zero bits to its carry out."""
    from ...hdl.pipeline import sum_levels

    bits = [0]
    sum_levels([_Operand(w, z, bits) for w, z in terms], negative=negative)
    return bits[0]
