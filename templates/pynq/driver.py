"""PYNQ driver of a gatemill accelerator (generated; runs on the board).

Copy this folder and the bitstream pair (``<design>.bit`` + ``<design>.hwh``) to the board and::

    from gatemill_driver import Accelerator
    acc = Accelerator()                     # loads the overlay next to this package
    logits = acc.execute(x)                 # the model's inputs (see execute)
    print(acc.throughput(10000))            # samples/s and microseconds per sample

Samples are packed and unpacked with ``packing.py`` and ``manifest.json`` (the same code and
description gatemill's own simulation uses); only numpy and pynq are needed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import packing

HERE = Path(__file__).resolve().parent


class Accelerator:
    """The accelerator behind an AXI DMA in a PYNQ overlay.

    Parameters
    ----------
    bitfile : str or path, optional
        The ``.bit`` to load (its ``.hwh`` beside it); default: the one named in
        ``config.json`` next to this package.
    overlay : pynq.Overlay, optional
        An overlay already loaded (then *bitfile* is ignored).
    dma : str
        Name of the AXI DMA in the block design.
    """

    def __init__(self, bitfile=None, overlay=None, dma: str = "dma"):
        import pynq

        self._pynq = pynq
        config = json.loads((HERE / "config.json").read_text())
        self.manifest = json.loads((HERE / "manifest.json").read_text())
        if overlay is None:
            overlay = pynq.Overlay(str(bitfile or HERE.parent / config["bitfile"]))
        self.overlay = overlay
        self.dma = getattr(overlay, dma)
        self.inp, self.out = self.manifest["input"], self.manifest["output"]
        self._in_bytes = self.inp["beats_per_sample"] * self.inp["tdata_bits"] // 8
        self._out_bytes = self.out["beats_per_sample"] * self.out["tdata_bits"] // 8

    def _transfer(self, data: np.ndarray, n: int) -> np.ndarray:
        """Send *n* packed samples and receive their packed outputs (one DMA transfer each)."""
        ibuf = self._pynq.allocate(shape=(n * self._in_bytes,), dtype=np.uint8)
        obuf = self._pynq.allocate(shape=(n * self._out_bytes,), dtype=np.uint8)
        try:
            ibuf[:] = data.reshape(-1)
            self.dma.recvchannel.transfer(obuf)
            self.dma.sendchannel.transfer(ibuf)
            self.dma.sendchannel.wait()
            self.dma.recvchannel.wait()
            return np.array(obuf)
        finally:
            ibuf.freebuffer()
            obuf.freebuffer()

    def run_integers(self, q: np.ndarray) -> np.ndarray:
        """Quantized inputs ``(N, *input shape)`` in, integer outputs out (no (de)quantizing)."""
        return packing.unpack(self._transfer(packing.pack(q, self.inp), len(q)), self.out)

    def execute(self, x: np.ndarray) -> np.ndarray:
        """The model's inputs ``(N, ...)`` -> the model's real outputs.

        *x* are float inputs as the model takes them, or, when the build stated the input's
        integer encoding (``manifest.json``: ``input.quantizer.raw``), the raw integers ``q`` of
        ``input.quantizer.input_type`` (the model's float input being ``scale * q``), e.g.
        uint8 images as they come. Either way in the model's input shape, channels first.
        """
        q = packing.quantize(x, self.inp)
        return packing.dequantize(self.run_integers(q), self.out)

    def throughput(self, n: int = 10000, seed: int = 0) -> dict:
        """Time *n* random samples through the accelerator: one DMA transfer each way,
        buffers allocated inside the timing (as every ``execute`` does)."""
        rng = np.random.default_rng(seed)
        bits = self.inp["element_bits"]
        if self.inp["encoding"] == packing.BIPOLAR:
            q = rng.choice([-1, 1], size=(n, *self.inp["shape"]))
        elif self.inp["encoding"] == packing.SIGNED:
            q = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(n, *self.inp["shape"]))
        else:
            q = rng.integers(0, 1 << bits, size=(n, *self.inp["shape"]))
        data = packing.pack(q, self.inp)  # packing is host work: not timed
        t0 = time.perf_counter()
        self._transfer(data, n)
        seconds = time.perf_counter() - t0
        return {
            "samples": n,
            "seconds": seconds,
            "samples_per_s": n / seconds,
            "us_per_sample": 1e6 * seconds / n,
        }
