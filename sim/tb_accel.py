"""cocotb testbench of a generated accelerator, driven by :mod:`gatemill.sim.runner`.

Two passes over the test vectors, each compared with the golden model's outputs:

1. full rate: no idle input, no backpressure; measures latency (first input beat to first
   output beat of a sample) and the initiation interval (cycles between samples);
2. stress: seeded random idle cycles on the input and random backpressure on the output.

The configuration comes from the JSON file named by ``GATEMILL_SIM_CONFIG``; the results are
written to the file it names.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import Counter
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from gatemill.flow.packing import pack, unpack


class Testbench:
    """Clock, reset, AXI4-Stream source and sink, and beat monitors of one DUT."""

    def __init__(self, dut, manifest: dict):
        self.dut = dut
        self.inp, self.out = manifest["input"], manifest["output"]
        cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
        self.source = AxiStreamSource(
            AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn, reset_active_level=False
        )
        self.sink = AxiStreamSink(
            AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn, reset_active_level=False
        )
        for log in (self.source.log, self.sink.log):
            log.setLevel(logging.WARNING)
        self.cycle = 0
        self.in_beats: list[int] = []
        self.out_beats: list[int] = []
        cocotb.start_soon(self._monitor())

    async def _monitor(self):
        dut = self.dut
        while True:
            await RisingEdge(dut.aclk)
            self.cycle += 1
            if dut.aresetn.value == 1:
                if dut.s_axis_tvalid.value == 1 and dut.s_axis_tready.value == 1:
                    self.in_beats.append(self.cycle)
                if dut.m_axis_tvalid.value == 1 and dut.m_axis_tready.value == 1:
                    self.out_beats.append(self.cycle)

    async def reset(self):
        self.dut.aresetn.value = 0
        for _ in range(4):
            await RisingEdge(self.dut.aclk)
        self.dut.aresetn.value = 1
        await RisingEdge(self.dut.aclk)
        self.in_beats.clear()
        self.out_beats.clear()

    async def run(self, inputs: np.ndarray, expected: np.ndarray) -> dict:
        """Send every sample, receive as many output frames, compare them with *expected*."""
        data = pack(inputs, self.inp)
        for sample in data:
            await self.source.send(AxiStreamFrame(sample.tobytes()))
        received = []
        for _ in range(len(inputs)):
            frame = await self.sink.recv()
            received.append(bytes(frame.tdata))
        got = unpack(b"".join(received), self.out)
        per_sample = self.out["beats_per_sample"] * self.out["tdata_bits"] // 8
        framing_errors = sum(len(r) != per_sample for r in received)
        bad = got != expected
        return {
            "mismatches": int(np.count_nonzero(bad)),
            "samples_with_mismatch": int(np.count_nonzero(bad.reshape(len(bad), -1).any(1))),
            "framing_errors": framing_errors,
            "first_bad_sample": int(np.nonzero(bad.reshape(len(bad), -1).any(1))[0][0])
            if bad.any()
            else None,
        }

    def timing(self) -> dict:
        """Latency and initiation interval from the monitored beats of a full-rate pass."""
        bi, bo = self.inp["beats_per_sample"], self.out["beats_per_sample"]
        starts_in = self.in_beats[::bi]
        starts_out = self.out_beats[::bo]
        gaps = np.diff(starts_out)
        steady = gaps[len(gaps) // 2 :] if len(gaps) else gaps
        return {
            "latency_cycles": int(starts_out[0] - starts_in[0]),
            "ii_cycles": int(steady.max()) if len(steady) else None,
            "ii_cycles_min": int(steady.min()) if len(steady) else None,
            "ii_histogram": {int(k): int(v) for k, v in Counter(gaps.tolist()).items()},
            "cycles": int(self.out_beats[-1] - self.in_beats[0]),
        }


@cocotb.test()
async def accelerator_matches_golden(dut):
    """Every output of the accelerator equals the golden model's, at full rate and under
    random idle input and backpressure."""
    cfg = json.loads(Path(os.environ["GATEMILL_SIM_CONFIG"]).read_text())
    manifest = json.loads(Path(cfg["manifest"]).read_text())
    with np.load(cfg["stimulus"], allow_pickle=False) as f:
        inputs, expected = f["inputs"], f["outputs"]
    tb = Testbench(dut, manifest)
    result = {"vectors": len(inputs)}

    await tb.reset()
    t0 = time.perf_counter()
    full = await tb.run(inputs, expected)
    result["full_rate"] = {**full, **tb.timing()}

    rng = random.Random(cfg["seed"])
    idle, stall = cfg["idle"], cfg["stall"]
    tb.source.set_pause_generator(iter(lambda: rng.random() < idle, None))
    tb.sink.set_pause_generator(iter(lambda: rng.random() < stall, None))
    await tb.reset()
    stress = await tb.run(inputs, expected)
    tb.source.clear_pause_generator()
    tb.sink.clear_pause_generator()
    result["stress"] = {
        **stress,
        "idle_probability": idle,
        "stall_probability": stall,
        "cycles": int(tb.out_beats[-1] - tb.in_beats[0]),
    }
    result["sim_seconds_in_cocotb"] = round(time.perf_counter() - t0, 3)
    Path(cfg["result"]).write_text(json.dumps(result, indent=1))
    assert full["mismatches"] == 0 and full["framing_errors"] == 0, full
    assert stress["mismatches"] == 0 and stress["framing_errors"] == 0, stress
