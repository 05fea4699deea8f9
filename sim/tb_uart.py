"""cocotb testbench of the UART-bridged accelerator (:class:`gatemill.hdl.uart_bridge.UartBridge`).

A host model drives the ``rx`` line bit by bit and decodes ``tx``, speaking the protocol of
:mod:`gatemill.flow.bitstream.protocol` as the board's host script does: an identify request,
then every test vector as a sample frame, at most ``window`` samples ahead of the results,
then a second identify whose flags must be clear. The host's bit time is off the board's by a
seeded fraction of a percent (two crystals never agree), bytes are spaced by random idle
time, and random bytes that are not commands are sent between frames (the bridge ignores
them). Every result is compared with the golden model's outputs (``golden.npz``).

The configuration comes from the JSON file named by ``GATEMILL_UART_CONFIG`` (written by
:func:`run_uart_sim`); the result is written to the file it names.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.triggers import ClockCycles, Event, FallingEdge, SimTimeoutError, Timer, with_timeout

from gatemill.flow.bitstream import protocol
from gatemill.flow.packing import pack, unpack
from gatemill.sim.runner import simulate

CLOCK_NS = 10


class UartHost:
    """Bit-level UART on the DUT's ``rx``/``tx``.

    The host sends with a bit time *skew* off the board's (``divisor`` clock cycles) and
    decodes the board's transmitter at the board's own bit time.
    """

    def __init__(self, dut, divisor: int, skew: float, rng: random.Random):
        self.dut = dut
        self.board_bit_ps = divisor * CLOCK_NS * 1000
        self.bit_ps = round(self.board_bit_ps * (1 + skew))
        self.rng = rng
        self.received: Queue = Queue()
        self.framing_errors = 0
        dut.rx.value = 1
        cocotb.start_soon(self._monitor())

    async def send(self, data: bytes, max_idle_bits: float = 0.0) -> None:
        """Send *data*, with up to *max_idle_bits* of random idle line before each byte."""
        for b in data:
            if max_idle_bits:
                idle = round(self.rng.random() * max_idle_bits * self.bit_ps)
                if idle:
                    await Timer(idle, unit="ps")
            for bit in [0, *((b >> k) & 1 for k in range(8)), 1]:
                self.dut.rx.value = bit
                await Timer(self.bit_ps, unit="ps")

    async def _monitor(self) -> None:
        bit_ps = self.board_bit_ps
        while True:
            await FallingEdge(self.dut.tx)
            await Timer(bit_ps // 2, unit="ps")
            if int(self.dut.tx.value) != 0:
                continue
            value = 0
            for k in range(8):
                await Timer(bit_ps, unit="ps")
                value |= int(self.dut.tx.value) << k
            await Timer(bit_ps, unit="ps")
            if int(self.dut.tx.value) != 1:
                self.framing_errors += 1
            self.received.put_nowait(value)

    async def recv(self, n: int) -> bytes:
        return bytes([await self.received.get() for _ in range(n)])


async def _identify(host: UartHost) -> protocol.Identity:
    await host.send(bytes([protocol.CMD_IDENTIFY]))
    return protocol.Identity.decode(await host.recv(protocol.IDENT_BYTES))


async def _run(dut, cfg: dict) -> dict:
    rng = random.Random(cfg["seed"])
    with np.load(cfg["stimulus"], allow_pickle=False) as f:
        inputs, expected = f["inputs"], f["outputs"]
    if cfg.get("vectors"):
        inputs, expected = inputs[: cfg["vectors"]], expected[: cfg["vectors"]]
    inp, out = cfg["input"], cfg["output"]
    in_bytes, out_bytes = protocol.frame_bytes(inp), protocol.frame_bytes(out)

    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    skew = (rng.random() * 2 - 1) * cfg["skew"]
    host = UartHost(dut, cfg["divisor"], skew, rng)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)

    t0 = time.perf_counter()
    first = await _identify(host)
    window = first.window
    data = pack(inputs, inp)
    outstanding = 0
    room = Event()
    results: list[bytes] = []
    stray_headers = 0

    async def receiver():
        nonlocal outstanding, stray_headers
        while len(results) < len(inputs):
            header = (await host.recv(1))[0]
            if header != protocol.RESULT:
                stray_headers += 1
                continue
            results.append(await host.recv(out_bytes))
            outstanding -= 1
            room.set()

    rx_task = cocotb.start_soon(receiver())
    garbage = bytes(b for b in range(256) if b not in (protocol.CMD_SAMPLE, protocol.CMD_IDENTIFY))
    for sample in data:
        while outstanding >= window:
            room.clear()
            await room.wait()
        if rng.random() < cfg["garbage"]:
            await host.send(bytes([rng.choice(garbage)]))
        outstanding += 1
        await host.send(bytes([protocol.CMD_SAMPLE]) + sample.tobytes(), cfg["max_idle_bits"])
    await rx_task
    last = await _identify(host)

    got = unpack(b"".join(results), out)
    bad = got != expected
    return {
        "vectors": len(inputs),
        "elements": int(expected.size),
        "mismatches": int(np.count_nonzero(bad)),
        "samples_with_mismatch": int(np.count_nonzero(bad.reshape(len(bad), -1).any(1))),
        "first_bad_sample": int(np.nonzero(bad.reshape(len(bad), -1).any(1))[0][0])
        if bad.any()
        else None,
        "identity": {
            "version": first.version,
            "window": first.window,
            "in_bytes": first.in_bytes,
            "out_bytes": first.out_bytes,
            "design_id": first.design_id,
            "matches_manifest": (first.in_bytes, first.out_bytes, first.design_id)
            == (in_bytes, out_bytes, cfg["design_id"]),
        },
        "flags_after": last.flags,
        "flag_errors": last.errors(),
        "framing_errors": host.framing_errors,
        "stray_headers": stray_headers,
        "divisor": cfg["divisor"],
        "host_skew_pct": round(100 * skew, 3),
        "bytes_sent": len(inputs) * (in_bytes + 1),
        "bytes_received": len(results) * (out_bytes + 1) + 2 * protocol.IDENT_BYTES,
        "sim_seconds_in_cocotb": round(time.perf_counter() - t0, 3),
    }


def time_limit_ps(cfg: dict, vectors: int) -> int:
    """Simulated time within which every frame must have been answered: four times the
    line time of all bytes (with idle gaps), plus a millisecond."""
    frames = vectors * (protocol.frame_bytes(cfg["input"]) + protocol.frame_bytes(cfg["output"]))
    line_bytes = frames + 2 * vectors + 4 * protocol.IDENT_BYTES
    bit_ps = cfg["divisor"] * CLOCK_NS * 1000
    return int(4 * line_bytes * (10 + cfg["max_idle_bits"]) * bit_ps) + 10**9


@cocotb.test()
async def uart_bridge_matches_golden(dut):
    """Every result frame equals the golden model's output, with no lost or bad byte."""
    cfg = json.loads(Path(os.environ["GATEMILL_UART_CONFIG"]).read_text())
    with np.load(cfg["stimulus"], allow_pickle=False) as f:
        n = min(len(f["inputs"]), cfg.get("vectors") or len(f["inputs"]))
    limit = time_limit_ps(cfg, n)
    try:
        result = await with_timeout(_run(dut, cfg), limit, "ps")
    except SimTimeoutError:
        result = {"timeout_ps": limit, "vectors": n}
    Path(cfg["result"]).write_text(json.dumps(result, indent=1))
    assert "timeout_ps" not in result, f"no complete answer within {limit} ps"
    assert result["mismatches"] == 0, result
    assert result["identity"]["matches_manifest"], result["identity"]
    assert result["flags_after"] == 0 and result["framing_errors"] == 0, result
    assert result["stray_headers"] == 0, result


def run_uart_sim(
    *,
    verilog: Path,
    toplevel: str,
    config: dict,
    stimulus: Path,
    work: Path,
    simulator: str = "verilator",
    seed: int = 0,
    vectors: int | None = None,
    skew: float = 0.01,
    max_idle_bits: float = 1.5,
    garbage: float = 0.05,
) -> dict:
    """Build *verilog* and run the UART testbench on the vectors of *stimulus*.

    *config* holds the bridge's ``input`` and ``output`` port descriptions, ``divisor`` and
    ``design_id``. Returns the testbench's result plus ``simulator``, ``build_seconds``,
    ``sim_seconds`` and ``log``.

    Raises
    ------
    ToolError
        If the simulator fails to build the design or the testbench does not finish.
    """
    uart_config = {
        **config,
        "stimulus": str(stimulus.resolve()),
        "seed": seed,
        "vectors": vectors,
        "skew": skew,
        "max_idle_bits": max_idle_bits,
        "garbage": garbage,
    }
    # Icarus in its default -g2012 mode initializes variables before any process runs, so the
    # event Amaranth's Verilog relies on to evaluate every combinational block once at time 0
    # never happens; blocks whose inputs are constant until the first byte (the parser's ready
    # in its idle state) then stay X. -g2005 keeps Verilog-2005 semantics.
    return simulate(
        icarus_args=("-g2005",),
        sources=[verilog],
        toplevel=toplevel,
        test_module="gatemill.sim.tb_uart",
        config=uart_config,
        config_env="GATEMILL_UART_CONFIG",
        work=work,
        simulator=simulator,
        seed=seed,
    )
