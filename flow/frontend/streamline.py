"""Streamlining a cleaned QONNX graph into the integer IR.

The walk visits the nodes on the data path from the input quantizer in graph order. Every
value on the path is either an *integer tensor* (a quantizer's output: integers times a
per-tensor scale) or a *chain*: an accumulator (or integer tensor) followed by elementwise ops
(bias, BatchNorm, Mul, ReLU, Clip) that waits for the next quantizer. A quantizer closes the
chain into integer thresholds computed exactly (:mod:`.exact`); the graph output closes it into
an affine dequantizer for the host.

A value read by several nodes is a fork: an integer tensor is read by several IR layers (the
hardware copies the stream), a chain is copied, each consumer closing its own. Branches meet
in joins (:mod:`.joins`); pooling and depthwise layers are in :mod:`.pooling`.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from ..errors import GatemillError
from ..ir import InputSpec, IRGraph, OutputSpec, dtype_for_range
from ..ir.datatypes import BIPOLAR
from ..kinds import Flatten, MatrixVector, MaxPool, SlidingWindow, Threshold
from ..kinds.matrix_vector import accumulator_range, min_acc_dtype
from ..names import NameTable
from . import exact, joins, pooling
from .exact import Affine, BipolarQuantizer, Clamp, IntQuantizer, TruncQuantizer
from .graphutil import attrs, const_value, data_consumer, layout_of, node_error, per_channel
from .graphutil import ir_shape as ir_shape_of
from .inputs import EXAMPLE, FirstQuantizer, InputEncoding, raw_input
from .load import QUANT_OPS
from .lut import LUT_BITS, gather_layer, lutify, match_gather_lut
from .tensors import CHANNEL_AXIS, Chain, ClosedChain, IntTensor, Probe

_err = node_error


def spec_layout(layout: str) -> str:
    """The :class:`InputSpec` layout of a walk layout: a signal is an image of height 1, a
    set needs no transpose."""
    return "NCHW" if layout in ("NCHW", "NCL") else "NC"


def _quant_dtype(bits: int, signed: bool) -> object:
    if bits == 1:
        return BIPOLAR if signed else DataType["BINARY"]
    return DataType[f"{'INT' if signed else 'UINT'}{bits}"]


class Streamliner:
    """Turns a cleaned, support-checked QONNX model into an :class:`IRGraph`."""

    def __init__(
        self,
        model: ModelWrapper,
        name: str,
        lut_bits: int = LUT_BITS,
        encoding: InputEncoding | None = None,
    ):
        self.model = model
        self.name = name
        self.lut_bits = lut_bits
        self.encoding = encoding
        self.input_report: dict = {}
        self.first_quantizer: FirstQuantizer | None = None
        self.names = NameTable()
        self.layers: list = []
        self.inputs: dict[str, tuple[str, ...]] = {}  # layer name -> the layers it reads
        self.probes: list[Probe] = []
        self.chains: dict[int, ClosedChain] = {}

    # -- helpers --------------------------------------------------------------------------------
    def shape(self, tensor: str) -> tuple[int, ...]:
        return tuple(self.model.get_tensor_shape(tensor))

    def emit(self, layer, reads) -> int:
        """Append *layer*, which reads the outputs of the layers *reads*; its index."""
        self.layers.append(layer)
        self.inputs[layer.name] = tuple(reads)
        return len(self.layers) - 1

    def probe(self, index: int, tensor: str, scales, offsets, layout: str) -> None:
        """Layer *index*'s output is QONNX's *tensor* as ``scales * int + offsets``."""
        scale = np.array([float(x) for x in scales])
        bias = np.zeros(len(scale)) if offsets is None else np.array([float(x) for x in offsets])
        self.probes.append(Probe(index, tensor, scale, bias, layout))

    def quantizer(self, node, channel_axis: int, shape):
        """The activation quantizer of *node* as an exact quantizer with per-channel scales."""
        a = attrs(node)
        if node.op_type == "Trunc":
            return self.trunc_quantizer(node, shape[channel_axis])
        raw = self.model.get_initializer(node.input[1])
        try:
            scale = per_channel(raw, shape, channel_axis, "the quantizer scale")
        except ValueError as e:
            raise _err(node, f"{e}; use per-tensor or per-channel scales") from None
        scale = exact.fractions(scale)
        if node.op_type == "BipolarQuant":
            return BipolarQuantizer(scale=scale)
        bits = int(self.model.get_initializer(node.input[3]).ravel()[0])
        return IntQuantizer(
            scale,
            bits,
            bool(a.get("signed", 1)),
            bool(a.get("narrow", 0)),
            a.get("rounding_mode", "ROUND"),
        )

    def trunc_quantizer(self, node, channels: int) -> TruncQuantizer:
        """QONNX ``Trunc`` (version 2: scale, zero point, input bits, output scale, output
        bits) as an exact quantizer."""
        a = attrs(node)
        if len(node.input) != 6:
            raise _err(node, "only Trunc version 2 (6 inputs, qonnx opset 2) is supported")
        scale, _, _, out_scale, bits = (
            float(np.ravel(self.model.get_initializer(i))[0]) for i in node.input[1:]
        )
        in_scale, out_scale = Fraction(scale), Fraction(out_scale)
        trunc = Fraction(2) ** round(np.log2(float(out_scale / in_scale)))
        return TruncQuantizer(
            in_scale,
            trunc,
            int(bits),
            bool(a.get("signed", 1)),
            bool(a.get("narrow", 0)),
            str(a.get("rounding_mode", "FLOOR")).upper(),
            [out_scale] * channels,
        )

    def weights(self, node) -> tuple[np.ndarray, np.ndarray, object]:
        """Integer weights (as QONNX computes them), per-output-row scale, datatype.

        Rows of the returned matrix are output channels (for Conv: ``[OC, IC, KH, KW]``).
        """
        q = self.model.find_producer(node.input[1])
        w = self.model.get_initializer(q.input[0]).astype(np.float32)
        a = attrs(node)
        out_axis = (
            1
            if node.op_type == "MatMul" or (node.op_type == "Gemm" and not a.get("transB", 0))
            else 0
        )
        scale = np.asarray(self.model.get_initializer(q.input[1]), np.float32)
        if q.op_type == "BipolarQuant":
            w_int, dtype = np.where(w >= 0, 1, -1), BIPOLAR
        else:
            qa = attrs(q)
            bits = int(self.model.get_initializer(q.input[3]).ravel()[0])
            signed, narrow = bool(qa.get("signed", 1)), bool(qa.get("narrow", 0))
            w_int = exact_quant_codes(
                w, scale, bits, signed, narrow, qa.get("rounding_mode", "ROUND")
            )
            dtype = _quant_dtype(bits, signed)
        try:
            s = per_channel(scale, w.shape, out_axis, "the weight scale")
        except ValueError as e:
            raise _err(node, f"{e}; use per-tensor or per-output-channel weight scales") from None
        w_int = np.moveaxis(w_int.astype(np.int64), out_axis, 0)
        return w_int, s, dtype

    def channel_const(self, node, value, chain: Chain) -> list[Fraction]:
        qshape = (1, *self.shape(chain.tensor)[1:])
        try:
            axis = CHANNEL_AXIS[chain.layout]
            return exact.fractions(per_channel(value, qshape, axis, "the constant"))
        except ValueError as e:
            raise _err(node, f"{e}; only per-channel constants can be folded") from None

    # -- the walk -------------------------------------------------------------------------------
    def run(self) -> tuple[IRGraph, list[Probe]]:
        start = self.quantized_input() if self.encoding is None else raw_input(self, self.encoding)
        values = {start.name: start}
        taken: dict[str, int] = {}
        for node in self.model.graph.node:
            data = [i for i in node.input if i in values]
            if not data:
                continue  # parameters (weight quantizers), or before the start of the path
            args = []
            for i in data:
                taken[i] = taken.get(i, 0) + 1
                args.append(self.take(values[i], taken[i]))
            cur = self.step(node, args)
            values[cur.name if isinstance(cur, IntTensor) else cur.tensor] = cur
        out = self.model.graph.output[0].name
        if out not in values:
            raise GatemillError(f"the data path ends before the graph output {out!r}")
        ir, tables = lutify(self.finish(values[out]), self.lut_bits)
        # a layer that became a truth table has no thresholds left to check
        self.chains = {i: c for i, c in self.chains.items() if i not in tables}
        first = self.input_report.get("first_quantizer", {})
        if first.get("handling") == "threshold":
            first["layer"] = ir.layers[0].name
        return ir, self.probes

    def quantized_input(self) -> IntTensor:
        """The model's own float input, quantized by its first quantizer on the host."""
        graph = self.model.graph
        inp = graph.input[0].name
        node = data_consumer(self.model, inp)
        if node is None or node.op_type not in QUANT_OPS:
            what = "nothing" if node is None else f"{node.name!r} ({node.op_type})"
            raise GatemillError(
                f"the model input {inp!r} feeds {what}, not a quantizer. State the integer "
                f"encoding of your input with {EXAMPLE} (the hardware then takes the raw "
                "integers q, x = scale * q), or add a QuantIdentity as the model's first layer."
            )
        in_shape = self.shape(inp)
        layout = layout_of(self.model, inp)
        if not layout:
            raise GatemillError(
                f"model input {inp!r} has shape {in_shape}; gatemill takes vectors (N, C), "
                "signals (N, C, L), sets (N, elements, features) or images (N, C, H, W)"
            )
        qz = self.quantizer(node, CHANNEL_AXIS[layout], in_shape)
        if len(set(qz.scale)) != 1:
            raise _err(
                node,
                "the input quantizer has per-channel scales; use a per-tensor scale for the input",
            )
        ir_shape = ir_shape_of(in_shape, layout)
        dtype = BIPOLAR if qz.bipolar else _quant_dtype(qz.bits, qz.signed)
        self.input = InputSpec(
            shape=ir_shape,
            dtype=dtype,
            scale=float(qz.scale[0]),
            layout=spec_layout(layout),
            rounding_mode=getattr(qz, "rounding_mode", "ROUND"),
            narrow=getattr(qz, "narrow", False),
            model_input_shape=in_shape[1:] if layout == "NCL" else (),
        )
        scales = [qz.scale[0]] * ir_shape[-1]
        self.first = IntTensor(node.output[0], dtype, scales, ir_shape, layout)
        self.first_quantizer = FirstQuantizer(
            node=node.name,
            lo=float(qz.scale[0] * qz.qmin),
            hi=float(qz.scale[0] * qz.qmax),
            bipolar=qz.bipolar,
        )
        return self.first

    def take(self, value, nth: int):
        """*value* for its *nth* consumer: a chain is copied (each consumer extends its own),
        and from the second consumer on builds its pending layer under a name of its own."""
        if isinstance(value, IntTensor):
            return value
        if nth > 1 and value.mv is not None:
            return value.copy(self.names.unique(value.mv["name"]))
        return value.copy()

    def step(self, node, args: list):
        op = node.op_type
        if len(args) > 1 or op == "Concat":
            return joins.join(self, node, args)
        cur = args[0]
        if op == "MatMul" and (table := match_gather_lut(self.model, node)) is not None:
            return gather_layer(self, table, cur)
        if op in ("MatMul", "Gemm", "Conv"):
            if isinstance(cur, Chain):
                # an affine accumulator (a sum, a mean) is an integer tensor, if one scale
                cur = joins.materialize(self, node, cur, "its input")
            if op == "Conv" and attrs(node).get("group", 1) != 1:
                return pooling.depthwise(self, node, cur)
            return self.weight_layer(node, cur)
        if op in (*QUANT_OPS, "Trunc"):
            chain = cur if isinstance(cur, Chain) else self.identity_chain(cur)
            return self.close(node, chain)
        if op in ("Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Clip", "Identity"):
            chain = cur if isinstance(cur, Chain) else self.identity_chain(cur)
            self.elementwise(node, chain)
            chain.tensor = node.output[0]
            return chain
        if not isinstance(cur, IntTensor):
            raise _err(
                node,
                "it operates on a value that is not quantized yet; place it after "
                "the activation quantizer (e.g. QuantReLU before MaxPool2d)",
            )
        if op == "MaxPool":
            return self.maxpool(node, cur)
        if op == "AveragePool":
            return pooling.average_pool(self, node, cur)
        if op in pooling.GLOBAL_OPS:
            return pooling.global_sum(self, node, cur)
        if op in ("Flatten", "Reshape"):
            return self.flatten(node, cur)
        raise _err(node, "operator not supported here")  # the support check lists these first

    def identity_chain(self, t: IntTensor) -> Chain:
        c = t.shape[-1]
        lo = np.full(c, int(t.dtype.min()), np.int64)
        hi = np.full(c, int(t.dtype.max()), np.int64)
        ops = [Affine(list(t.scales), [t.offset(i) for i in range(c)])]
        return Chain(t, None, c, lo, hi, ops, t.name, t.shape, t.layout, reads=(t.layer,))

    def weight_layer(self, node, t: IntTensor) -> Chain:
        if len(set(t.scales)) != 1:
            raise _err(
                node,
                "its input has per-channel activation scales, which cannot be "
                "factored out of the dot product; use a per-tensor activation quantizer",
            )
        in_scale = t.scales[0]
        w_int, w_scale, w_dtype = self.weights(node)
        name = self.names.unique(node.name, "layer")
        reads = (t.layer,)
        if node.op_type == "Conv":
            sw = self.window(node, t, name, kernel=w_int.shape[2:])
            kh, kw = sw.kernel
            reads = (sw.name,)
            if w_int.ndim == 3:  # Conv1d: kernels (1, k)
                w_int = w_int[:, :, None, :]
            weights = w_int.transpose(0, 2, 3, 1).reshape(w_int.shape[0], -1)
            spatial, layout = sw.out_shape[:2], t.layout
        elif t.layout == "NSC":
            # a dense layer on every element of a set: a 1x1 "convolution" over the elements
            if node.op_type != "MatMul":
                raise _err(node, "a layer on a set's elements must be a MatMul on the last axis")
            weights, spatial, layout = w_int, t.shape[:-1], "NSC"
        else:
            if t.layout != "NC":
                raise _err(node, "a dense layer needs a flat input; add Flatten before it")
            weights = w_int if t.perm is None else w_int[:, t.perm]
            spatial, layout = (), "NC"
        mh, mw = weights.shape
        if mw != t.shape[-1] * (1 if node.op_type != "Conv" else kh * kw):
            raise _err(node, f"weights of width {mw} do not match the input {t.shape}")
        binary = t.dtype == BIPOLAR and w_dtype == BIPOLAR
        lo, hi = accumulator_range(weights, t.dtype, binary)
        mv = dict(
            name=name,
            weights=weights,
            in_dtype=t.dtype,
            w_dtype=w_dtype,
            acc_dtype=min_acc_dtype(weights, t.dtype, binary),
            spatial=spatial,
        )
        s = [in_scale * f for f in exact.fractions(w_scale)]
        # acc -> real output of the MatMul/Conv: s * dot, with dot = 2 * popcount - MW if binary
        ops = [
            Affine([2 * x for x in s], [-mw * x for x in s])
            if binary
            else Affine(s, [Fraction(0)] * mh)
        ]
        if t.has_offsets:
            ops.append(self.input_offsets(node, t, weights, w_scale))
        chain = Chain(t, mv, mh, lo, hi, ops, node.output[0], (*spatial, mh), layout, reads=reads)
        bias_name = node.input[2] if len(node.input) > 2 else ""
        if bias_name:
            bias = np.asarray(const_value(self.model, bias_name))
            if bias.size != mh:
                raise _err(node, f"bias of {bias.size} values for {mh} outputs")
            # Conv and Gemm biases are one value per output channel, whatever their rank
            chain.ops.append(Affine([Fraction(1)] * mh, exact.fractions(bias)))
        return chain

    def window(self, node, t: IntTensor, name: str, *, kernel=None) -> SlidingWindow:
        """The sliding window of the convolution or pooling *node* over *t* (a 1-D signal
        as a map of height 1), emitted."""
        a = attrs(node)
        if t.layout not in ("NCHW", "NCL"):
            raise _err(node, "it needs an image (N, C, H, W) or a signal (N, C, L) input")
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
            raise _err(node, "auto_pad is not supported; use explicit padding")
        if a.get("ceil_mode", 0):
            raise _err(node, "ceil_mode is not supported; use ceil_mode=False")
        kernel = tuple(a.get("kernel_shape", kernel))
        stride = tuple(a.get("strides", (1,) * len(kernel)))
        pads = tuple(a.get("pads", (0,) * 2 * len(kernel)))
        if t.layout == "NCL":
            kernel, stride, pads = (1, *kernel), (1, *stride), (0, pads[0], 0, pads[1])
        sw = SlidingWindow(
            name=self.names.unique(f"{name}_window"),
            ifm=t.shape,
            kernel=kernel,
            stride=stride,
            pad=pads,
            dtype=t.dtype,
        )
        self.emit(sw, (t.layer,))
        return sw

    def input_offsets(self, node, t: IntTensor, weights, w_scale) -> Affine:
        """The offsets of *t* through the weights: ``w_scale[i] * sum_j W[i, j] * offset[j]``
        added to output *i* (an input offset; only the raw input carries one)."""
        if node.op_type == "Conv" and any(attrs(node).get("pads", [0])):
            raise _err(
                node,
                "its input is the model input after a pre-processing with an offset, and zero "
                "padding pads with the real value 0, which is no integer of the stated input "
                "encoding; quantize the input first (QuantIdentity) or use padding=0",
            )
        c = len(t.scales)
        offsets = np.array([t.offset(j % c) for j in range(weights.shape[1])], dtype=object)
        rows = weights.astype(object) @ offsets
        ws = exact.fractions(w_scale)
        return Affine([Fraction(1)] * len(rows), [ws[i] * rows[i] for i in range(len(rows))])

    def elementwise(self, node, chain: Chain) -> None:
        op, c = node.op_type, chain.channels
        one, zero = [Fraction(1)] * c, [Fraction(0)] * c
        if op == "Identity":
            return
        if op == "Relu":
            chain.ops.append(Clamp(Fraction(0), None))
            return
        if op == "Clip":
            a = attrs(node)
            lo = const_value(self.model, node.input[1]) if len(node.input) > 1 else a.get("min")
            hi = const_value(self.model, node.input[2]) if len(node.input) > 2 else a.get("max")
            chain.ops.append(
                Clamp(
                    None if lo is None else Fraction(float(np.ravel(lo)[0])),
                    None if hi is None else Fraction(float(np.ravel(hi)[0])),
                )
            )
            return
        if op == "BatchNormalization":
            gamma, beta, mean, var = (const_value(self.model, i) for i in node.input[1:5])
            if any(v is None for v in (gamma, beta, mean, var)):
                raise _err(node, "BatchNorm parameters are not constants")
            eps = Fraction(float(np.float32(attrs(node).get("epsilon", 1e-5))))
            if any(np.size(x) != c for x in (gamma, beta, mean, var)):
                raise _err(node, f"BatchNorm parameters do not have {c} channels")
            # BatchNormalization parameters are 1-D, one per channel (axis 1), whatever the rank
            g, b, m, v = (exact.fractions(x) for x in (gamma, beta, mean, var))
            scale = [g[i] / exact.sqrt_fraction(v[i] + eps) for i in range(c)]
            chain.ops.append(Affine(scale, [b[i] - m[i] * scale[i] for i in range(c)]))
            return
        data_first = node.input[0] == chain.tensor
        other = node.input[1] if data_first else node.input[0]
        k = self.channel_const(node, const_value(self.model, other), chain)
        if op == "Add":
            chain.ops.append(Affine(one, k))
        elif op == "Sub":
            chain.ops.append(
                Affine(one, [-x for x in k]) if data_first else Affine([-x for x in one], k)
            )
        elif op == "Mul":
            chain.ops.append(Affine(k, zero))
        elif op == "Div":
            if not data_first or any(x == 0 for x in k):
                raise _err(node, "only division of the data by a non-zero constant is supported")
            chain.ops.append(Affine([1 / x for x in k], zero))

    def close(self, node, chain: Chain) -> IntTensor:
        """A quantizer ends the chain: integer thresholds (or nothing, for an exact requant)."""
        axis = 1
        qshape = self.shape(node.output[0])
        axis = CHANNEL_AXIS[chain.layout]
        qz = self.quantizer(node, axis, qshape)

        def level_of(c):
            return lambda acc: qz.level(exact.evaluate(chain.ops, Fraction(acc), c), c)

        ends = [
            (level_of(c)(int(chain.lo[c])), level_of(c)(int(chain.hi[c])))
            for c in range(chain.channels)
        ]
        qmin = min(min(e) for e in ends)
        qmax = max(max(e) for e in ends)
        if qz.bipolar:
            out_dtype, levels, base = BIPOLAR, [1], -1
        else:
            qmax = max(qmax, qmin + 1)
            out_dtype, levels, base = dtype_for_range(qmin, qmax), range(qmin + 1, qmax + 1), qmin
        direction, rows = [], []
        for c in range(chain.channels):
            d, ts = exact.thresholds_for_channel(
                level_of(c), int(chain.lo[c]), int(chain.hi[c]), levels
            )
            direction.append(d)
            rows.append(ts)
        thresholds = np.array(rows, dtype=np.int64)
        direction = np.array(direction, dtype=np.int64)
        if chain.mv is not None:
            layer = (chain.make or MatrixVector)(
                **chain.mv,
                thresholds=thresholds,
                direction=direction,
                out_dtype=out_dtype,
                out_base=base,
            )
        else:
            layer = Threshold(
                name=self.names.unique(node.name, "threshold"),
                shape=chain.shape,
                in_dtype=chain.source.dtype,
                thresholds=thresholds,
                direction=direction,
                out_dtype=out_dtype,
                out_base=base,
            )
        index = self.emit(layer, chain.reads)
        self.chains[index] = ClosedChain(chain.ops, qz, chain.lo, chain.hi)
        self.probe(index, node.output[0], qz.scale, None, chain.layout)
        return IntTensor(
            node.output[0], out_dtype, list(qz.scale), chain.shape, chain.layout, layer=layer.name
        )

    def maxpool(self, node, t: IntTensor) -> IntTensor:
        a = attrs(node)
        if t.layout not in ("NCHW", "NCL"):
            raise _err(node, "MaxPool needs an image (N, C, H, W) or a signal (N, C, L)")
        k, s = tuple(a["kernel_shape"]), tuple(a.get("strides", (1,) * len(a["kernel_shape"])))
        if t.layout == "NCL":
            k, s = (1, *k), (1, *s)
        if any(x <= 0 for x in t.scales):
            raise _err(
                node,
                "its input decreases with the integers on the wire (a negative scale in the "
                "input's pre-processing), so the maximum is not the largest integer; quantize "
                "the input first (QuantIdentity)",
            )
        name = self.names.unique(node.name, "maxpool")
        source, ifm = t.layer, t.shape
        if any(a.get("pads", [0])):
            pad = self.maxpool_padding(node, t, name)
            source, ifm = pad.name, pad.out_shape
        layer = MaxPool(name=name, ifm=ifm, kernel=k, stride=s, dtype=t.dtype)
        index = self.emit(layer, (source,))
        self.probe(index, node.output[0], t.scales, None, t.layout)
        return IntTensor(
            node.output[0],
            t.dtype,
            t.scales,
            layer.out_shape,
            t.layout,
            offsets=t.offsets,
            layer=layer.name,
        )

    def maxpool_padding(self, node, t: IntTensor, name: str) -> SlidingWindow:
        """The padding of a 1-D max pool: a 1x1 window that pads with 0, emitted. ONNX pads
        with -inf; 0 is the same when no value is below 0 (an unsigned quantizer's output)."""
        if t.layout != "NCL":
            raise _err(node, "padding of a 2-D max pool; use MaxPool2d with padding=0")
        if t.dtype == BIPOLAR or int(t.dtype.min()) < 0 or t.has_offsets:
            raise _err(
                node,
                "padding of a max pool over values that may be negative (ONNX pads with -inf, "
                "the hardware with 0); use padding=0, or an unsigned activation (QuantReLU) "
                "before it",
            )
        left, right = attrs(node)["pads"]
        pad = SlidingWindow(
            name=self.names.unique(f"{name}_pad"),
            ifm=t.shape,
            kernel=(1, 1),
            pad=(0, left, 0, right),
            dtype=t.dtype,
        )
        self.emit(pad, (t.layer,))
        return pad

    def flatten(self, node, t: IntTensor) -> IntTensor:
        out_shape = self.shape(node.output[0])
        if len(out_shape) != 2 or out_shape[1] != int(np.prod(t.shape)):
            raise _err(
                node,
                f"reshape to {out_shape} is not a flatten to (N, "
                f"{int(np.prod(t.shape))}); only Flatten before a dense layer is supported",
            )
        if t.layout == "NC":
            return IntTensor(
                node.output[0],
                t.dtype,
                t.scales,
                t.shape,
                "NC",
                t.perm,
                offsets=t.offsets,
                layer=t.layer,
            )
        if t.layout == "NSC":
            raise _err(
                node,
                "flattening a set is not supported; reduce it over its elements first (a sum "
                "or mean over dim=1)",
            )
        if len(set(t.scales)) != 1:
            raise _err(
                node,
                "flattening a map with per-channel activation scales is not "
                "supported; use a per-tensor activation quantizer before it",
            )
        h, w, c = t.shape
        layer = Flatten(name=self.names.unique(node.name, "flatten"), ifm=t.shape, dtype=t.dtype)
        self.emit(layer, (t.layer,))
        perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()
        offsets = None if t.offsets is None else [t.offsets[i % c] for i in range(h * w * c)]
        return IntTensor(
            node.output[0],
            t.dtype,
            [t.scales[0]] * (h * w * c),
            layer.out_shape,
            "NC",
            perm,
            offsets=offsets,
            layer=layer.name,
        )

    def finish(self, cur) -> IRGraph:
        out = self.model.graph.output[0].name
        if isinstance(cur, IntTensor):
            if cur is self.first or not self.layers:
                raise GatemillError("the model has no layers after its input quantizer")
            last = cur.layer
            spec_scale = np.array([float(s) for s in cur.scales])
            spec_bias = np.array([float(cur.offset(c)) for c in range(len(cur.scales))])
        else:
            try:
                a, b = exact.compose_affine(cur.ops, cur.channels)
            except ValueError:
                raise GatemillError(
                    f"the output {out!r} comes from a ReLU/Clip without a quantizer after it: "
                    "quantize that activation (QuantReLU) or end the model with a linear layer."
                ) from None
            if cur.mv is None:
                if not self.layers:
                    raise GatemillError("the model has no layers after its input quantizer")
                last = cur.reads[0]
            else:
                self.emit((cur.make or MatrixVector)(**cur.mv), cur.reads)
                last = cur.mv["name"]
            spec_scale = np.array([float(x) for x in a])
            spec_bias = np.array([float(x) for x in b])
            self.probes.append(Probe(len(self.layers) - 1, out, spec_scale, spec_bias, cur.layout))
        if last != self.layers[-1].name:
            raise GatemillError(
                f"the graph output {out!r} is not computed by the last layer of the data path "
                f"({last or 'the input'}); gatemill takes a model whose output ends its data path"
            )
        final = self.layers[-1]
        output = OutputSpec(
            shape=final.out_shape, dtype=final.out_dtype, scale=spec_scale, bias=spec_bias
        )
        return IRGraph(
            name=self.name,
            input=self.input,
            layers=tuple(self.layers),
            output=output,
            inputs=self.inputs,
        )


def exact_quant_codes(w, scale, bits, signed, narrow, rounding_mode) -> np.ndarray:
    """Integer codes of a QONNX ``Quant`` on constant weights, as qonnx's float32 path gives."""
    from qonnx.custom_op.general.intquant import max_int, min_int, resolve_rounding_mode

    y = np.asarray(w, np.float32) / np.asarray(scale, np.float32)
    if bits == 1 and signed:
        return np.where(y >= 0, 1, -1)
    y = np.clip(y, min_int(signed, narrow, bits), max_int(signed, narrow, bits))
    return resolve_rounding_mode(rounding_mode)(y).astype(np.int64)
