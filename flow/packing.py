"""Packing samples into AXI4-Stream bytes and back, from ``rtl/manifest.json`` alone.

A port description (the manifest's ``input`` or ``output``) gives ``shape`` (channels last),
``element_bits``, ``encoding`` (``unsigned``, ``two's complement`` or ``bipolar``), ``lanes``
(elements per beat) and ``tdata_bits``. A sample is ``beats_per_sample`` beats; in a beat,
element *k* sits at bits ``[k*b, (k+1)*b)`` of ``tdata`` (little-endian bytes), and a BIPOLAR
element is one bit (1 = +1, 0 = -1).

This module needs only numpy: the PYNQ driver and the UART host script ship this very file, so
the host, the cocotb testbench and the boards pack and unpack with one implementation.
"""

from __future__ import annotations

import numpy as np

BIPOLAR, SIGNED, UNSIGNED = "bipolar", "two's complement", "unsigned"


def tdata_bits(payload_bits: int) -> int:
    """AXI4-Stream ``tdata`` width for a payload: a power of two, at least 8 (as DMAs need)."""
    return max(8, 1 << (payload_bits - 1).bit_length())


def port_description(shape, dtype, lanes: int) -> dict:
    """The manifest entry of a stream port carrying samples of *shape* and *dtype*.

    *dtype* is a qonnx ``DataType``. ``tdata_bits`` is a power of two (at least 8), as AXI DMA
    engines require.
    """
    n = int(np.prod(shape))
    if n % lanes:
        raise ValueError(f"{lanes} lanes do not divide a sample of {n} elements")
    bits = dtype.bitwidth()
    encoding = BIPOLAR if dtype.name == "BIPOLAR" else SIGNED if dtype.signed() else UNSIGNED
    return {
        "shape": [int(s) for s in shape],
        "dtype": dtype.name,
        "element_bits": bits,
        "encoding": encoding,
        "lanes": lanes,
        "beats_per_sample": n // lanes,
        "tdata_bits": tdata_bits(lanes * bits),
        "order": "channels last; element k of a beat at bits [k*element_bits, (k+1)*element_bits)",
    }


def _codes(values: np.ndarray, port: dict) -> np.ndarray:
    v = np.asarray(values, dtype=np.int64)
    if port["encoding"] == BIPOLAR:
        if not np.all(np.abs(v) == 1):
            raise ValueError("BIPOLAR elements must be -1 or +1")
        return ((v + 1) // 2).astype(np.uint64)
    bits = port["element_bits"]
    lo, hi = (
        (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
        if port["encoding"] == SIGNED
        else (0, (1 << bits) - 1)
    )
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"values outside [{lo}, {hi}] for {port['dtype']}")
    return (v & ((1 << bits) - 1)).astype(np.uint64)


def _values(codes: np.ndarray, port: dict) -> np.ndarray:
    c = np.asarray(codes, dtype=np.int64)
    if port["encoding"] == BIPOLAR:
        return 2 * c - 1
    bits = port["element_bits"]
    if port["encoding"] == SIGNED:
        return np.where(c >= (1 << (bits - 1)), c - (1 << bits), c)
    return c


def pack(samples: np.ndarray, port: dict) -> np.ndarray:
    """Integer samples ``(N, *shape)`` -> bytes ``(N, beats_per_sample * tdata_bits / 8)``."""
    x = np.asarray(samples)
    if tuple(x.shape[1:]) != tuple(port["shape"]):
        raise ValueError(f"samples of shape {x.shape[1:]} for a port of shape {port['shape']}")
    n, lanes, bits, beats = len(x), port["lanes"], port["element_bits"], port["beats_per_sample"]
    codes = _codes(x.reshape(n, -1), port).reshape(n, beats, lanes)
    # expand every element code into its bits, then regroup the beat's bits into bytes
    elem_bits = (codes[..., None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)
    beat_bits = np.zeros((n, beats, port["tdata_bits"]), np.uint8)
    beat_bits[..., : lanes * bits] = elem_bits.reshape(n, beats, -1)
    return np.packbits(beat_bits, axis=-1, bitorder="little").reshape(n, -1)


def unpack(data, port: dict) -> np.ndarray:
    """Bytes of whole samples -> integers ``(N, *shape)`` (inverse of :func:`pack`)."""
    raw = (
        np.frombuffer(bytes(data), np.uint8)
        if isinstance(data, bytes | bytearray)
        else np.asarray(data, np.uint8).reshape(-1)
    )
    beats, lanes, bits = port["beats_per_sample"], port["lanes"], port["element_bits"]
    per_sample = beats * port["tdata_bits"] // 8
    if raw.size % per_sample:
        raise ValueError(f"{raw.size} bytes are not whole samples of {per_sample} bytes")
    n = raw.size // per_sample
    beat_bits = np.unpackbits(raw.reshape(n, beats, -1), axis=-1, bitorder="little")
    weights = np.uint64(1) << np.arange(bits, dtype=np.uint64)
    codes = (
        beat_bits[..., : lanes * bits].reshape(n, beats, lanes, bits).astype(np.uint64) * weights
    ).sum(-1)
    return _values(codes.reshape(n, -1), port).reshape(n, *port["shape"])


def _round(x: np.ndarray, mode: str) -> np.ndarray:
    """The rounding modes of QONNX's ``Quant`` (``ROUND`` is half to even)."""
    mode = mode.upper()
    sign, a = np.sign(x), np.abs(x)
    modes = {
        "ROUND": np.round,
        "HALF_EVEN": np.round,
        "CEIL": np.ceil,
        "FLOOR": np.floor,
        "UP": lambda v: sign * np.ceil(a),
        "DOWN": np.trunc,
        "HALF_UP": lambda v: sign * np.floor(a + 0.5),
        "HALF_DOWN": lambda v: sign * np.ceil(a - 0.5),
    }
    if mode not in modes:
        raise ValueError(f"unknown rounding mode {mode!r}")
    return modes[mode](x)


def _range(port: dict, narrow: bool = False) -> tuple[int, int]:
    bits = port["element_bits"]
    if port["encoding"] == BIPOLAR:
        return -1, 1
    if port["encoding"] == SIGNED:
        return -(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - int(narrow)


def _channels_last(x: np.ndarray, port: dict) -> np.ndarray:
    """The model's inputs (channels first, reshaped as the model's pre-processing does) in the
    port's order: channels last."""
    q = port["quantizer"]
    shape = list(port["shape"])
    if q["layout"] == "NCHW":
        h, w, c = shape
        x = x.reshape(len(x), c, h, w).transpose(0, 2, 3, 1)
    else:
        x = x.reshape(len(x), *shape)
    return x


def _check_model_shape(x: np.ndarray, port: dict) -> None:
    q = port["quantizer"]
    want = q.get("model_shape")
    if want is None:  # manifests written before model_shape: the port's own shape
        shape = list(port["shape"])
        want = [shape[2], shape[0], shape[1]] if q["layout"] == "NCHW" else shape
    if list(x.shape[1:]) != list(want):
        raise ValueError(f"inputs of shape {tuple(x.shape[1:])} for a model input {tuple(want)}")


def raw_integers(q: np.ndarray, port: dict) -> np.ndarray:
    """The user's raw integers (a port with ``quantizer.raw``) checked and put channels last.

    Raises ``ValueError`` naming the first value that is not an integer of the input type.
    """
    v = np.asarray(q)
    _check_model_shape(v, port)
    t = port["quantizer"]["input_type"]
    if not np.issubdtype(v.dtype, np.number):
        raise ValueError(f"the inputs are {v.dtype}, not {t} integers")
    bad = ~np.isfinite(v) | (v != np.round(v)) if np.issubdtype(v.dtype, np.floating) else None
    if bad is not None and bad.any():
        i = np.unravel_index(np.argmax(bad), v.shape)
        raise ValueError(
            f"input value {v[i]!r} at {tuple(map(int, i))} is not an integer: with "
            f"input_type {t} and scale {port['quantizer']['scale']} the inputs are the raw "
            "integers q (x = scale * q), not the model's float inputs x"
        )
    lo, hi = _range(port)
    v = v.astype(np.int64)
    out = (v < lo) | (v > hi) | ((v == 0) if port["encoding"] == BIPOLAR else False)
    if out.any():
        i = np.unravel_index(np.argmax(out), v.shape)
        raise ValueError(
            f"input value {v[i]} at {tuple(map(int, i))} is not a {t} integer "
            f"({'-1 or +1' if port['encoding'] == BIPOLAR else f'{lo}..{hi}'})"
        )
    return _channels_last(v, port)


def quantize(x: np.ndarray, port: dict) -> np.ndarray:
    """The model's inputs ``(N, *model shape)`` -> the integers the hardware takes.

    With the model's own float input, this reproduces the model's input quantizer (the
    manifest's ``input.quantizer``): float32 ``x / scale``, rounded with the graph's mode,
    clipped to the datatype (narrow range if so); BIPOLAR by the sign. With a stated integer
    encoding (``quantizer.raw``) the inputs are the user's raw integers, checked
    (:func:`raw_integers`). Images are given channels first, as the model takes them.
    """
    q = port["quantizer"]
    if q.get("raw"):
        return raw_integers(x, port)
    x = np.asarray(x, dtype=np.float32)
    _check_model_shape(x, port)
    x = _channels_last(x, port)
    if port["encoding"] == BIPOLAR:
        return np.where(x >= 0, 1, -1).astype(np.int64)
    lo, hi = _range(port, q["narrow"])
    y = _round(x / np.float32(q["scale"]), q["rounding_mode"])
    return np.clip(y, lo, hi).astype(np.int64)


def saturated(x: np.ndarray, port: dict) -> int:
    """How many of the float inputs *x* :func:`quantize` clips to the quantizer's range (0
    for a BIPOLAR quantizer, a sign, and for raw integers)."""
    q = port["quantizer"]
    if q.get("raw") or port["encoding"] == BIPOLAR:
        return 0
    x = np.asarray(x, dtype=np.float32)
    lo, hi = _range(port, q["narrow"])
    y = _round(x / np.float32(q["scale"]), q["rounding_mode"])
    return int(np.count_nonzero((y < lo) | (y > hi)))


def dequantize(y: np.ndarray, port: dict) -> np.ndarray:
    """The hardware's integer outputs -> the model's real outputs (``scale * y + bias``)."""
    d = port["dequantize"]
    return np.asarray(y, np.float64) * np.asarray(d["scale"]) + np.asarray(d["bias"])
