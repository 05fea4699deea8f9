"""Packing samples into AXI4-Stream bytes and back, from ``rtl/manifest.json`` alone.

A port description (the manifest's ``input`` or ``output``) gives ``shape`` (channels last),
``dtype``, ``lanes`` (elements per beat), ``element_bits`` and ``tdata_bits``. A sample is
``beats_per_sample`` beats; in a beat, element *k* sits at bits ``[k*b, (k+1)*b)`` of
``tdata`` (little-endian bytes), two's complement for signed types, 1 bit for BIPOLAR
(1 = +1). The host, the cocotb testbench and the board drivers all use these two functions.
"""

from __future__ import annotations

import numpy as np

from .ir.datatypes import decode, dtype_from_name, encode


def port_description(shape, dtype, lanes: int) -> dict:
    """The manifest entry of a stream port carrying samples of *shape* and *dtype*."""
    n = int(np.prod(shape))
    if n % lanes:
        raise ValueError(f"{lanes} lanes do not divide a sample of {n} elements")
    bits = dtype.bitwidth()
    return {
        "shape": list(shape),
        "dtype": dtype.name,
        "element_bits": bits,
        "lanes": lanes,
        "beats_per_sample": n // lanes,
        "tdata_bits": max(8, -(-lanes * bits // 8) * 8),
        "encoding": "bipolar: 1 = +1, 0 = -1"
        if dtype.name == "BIPOLAR"
        else ("two's complement" if dtype.signed() else "unsigned"),
        "order": "channels last; element k of a beat at bits [k*element_bits, (k+1)*element_bits)",
    }


def _bytes_per_beat(port: dict) -> int:
    return port["tdata_bits"] // 8


def pack(samples: np.ndarray, port: dict) -> np.ndarray:
    """Integer samples ``(N, *shape)`` -> bytes ``(N, beats_per_sample * tdata_bits / 8)``."""
    dtype = dtype_from_name(port["dtype"])
    x = np.asarray(samples)
    if tuple(x.shape[1:]) != tuple(port["shape"]):
        raise ValueError(f"samples of shape {x.shape[1:]} for a port of shape {port['shape']}")
    n, lanes, bits = len(x), port["lanes"], port["element_bits"]
    codes = encode(x.reshape(n, -1), dtype).reshape(n, port["beats_per_sample"], lanes)
    width = _bytes_per_beat(port) * 8
    # expand every element code into its bits, then regroup the beat's bits into bytes
    bitpos = np.arange(bits, dtype=np.uint64)
    elem_bits = ((codes[..., None] >> bitpos) & np.uint64(1)).astype(np.uint8)
    beat_bits = np.zeros((n, port["beats_per_sample"], width), np.uint8)
    beat_bits[..., : lanes * bits] = elem_bits.reshape(n, port["beats_per_sample"], -1)
    return np.packbits(beat_bits, axis=-1, bitorder="little").reshape(n, -1)


def unpack(data: np.ndarray | bytes, port: dict) -> np.ndarray:
    """Bytes of whole samples -> integers ``(N, *shape)`` (inverse of :func:`pack`)."""
    dtype = dtype_from_name(port["dtype"])
    raw = (
        np.frombuffer(bytes(data), np.uint8)
        if isinstance(data, bytes | bytearray)
        else np.asarray(data, np.uint8)
    )
    per_sample = port["beats_per_sample"] * _bytes_per_beat(port)
    if raw.size % per_sample:
        raise ValueError(f"{raw.size} bytes are not whole samples of {per_sample} bytes")
    n, lanes, bits = raw.size // per_sample, port["lanes"], port["element_bits"]
    beat_bits = np.unpackbits(
        raw.reshape(n, port["beats_per_sample"], -1), axis=-1, bitorder="little"
    )[..., : lanes * bits]
    weights = np.uint64(1) << np.arange(bits, dtype=np.uint64)
    codes = (
        beat_bits.reshape(n, port["beats_per_sample"], lanes, bits).astype(np.uint64) * weights
    ).sum(-1)
    return decode(codes.reshape(n, -1), dtype).reshape(n, *port["shape"])
