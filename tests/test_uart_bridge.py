"""The UART bridge (hdl/uart_bridge.py): serial ports in Amaranth's simulator, the whole bridge
in cocotb against the golden model of a small MLP (sim/tb_uart.py), and the protocol."""

from __future__ import annotations

import gc
import random

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module
from amaranth.sim import Simulator
from brevitas_models import export, mlp

from gatemill.flow.bitstream import protocol
from gatemill.flow.bitstream.ecp5 import build_inputs, verify_bridge
from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.errors import VerificationError
from gatemill.hdl.uart_bridge import UartBridge, UartRx, UartTx, uart_divisor


def test_divisor():
    assert uart_divisor(25e6, 115200) == 217
    assert uart_divisor(25e6, 1_000_000) == 25
    with pytest.raises(ValueError, match="at least 4"):
        uart_divisor(25e6, 12_500_000)
    with pytest.raises(ValueError, match="off by"):
        uart_divisor(25e6, 5_000_000 * 1.12)  # 5 cycles per bit would be 12 % off


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_parameters():
    with pytest.raises(TypeError, match="divisor"):
        UartRx(divisor=3)
    with pytest.raises(TypeError, match="divisor"):
        UartTx(divisor=4.0)
    gc.collect()  # the half-built ports warn when collected: here, under the filter


def line_bits(data: bytes, divisor: int, stop: int = 1) -> list[int]:
    """The 8N1 waveform of *data*, one entry per clock cycle."""
    out = []
    for b in data:
        for bit in [0, *((b >> k) & 1 for k in range(8)), stop]:
            out += [bit] * divisor
    return out


def test_tx_to_rx_loopback():
    # every byte value, back to back, through a transmitter and a receiver on one line
    rng = random.Random(1)
    data = bytes(rng.randrange(256) for _ in range(64)) + bytes(range(256))
    tx, rx = UartTx(divisor=5), UartRx(divisor=5)
    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx
    m.d.comb += rx.rx.eq(tx.tx)
    got = []

    async def bench(ctx):
        ctx.set(rx.o.ready, 1)
        i = 0
        for _ in range(len(data) * 60):
            if i < len(data):
                ctx.set(tx.i.valid, 1)
                ctx.set(tx.i.payload, data[i])
            else:
                ctx.set(tx.i.valid, 0)
            if ctx.get(rx.o.valid):
                got.append(ctx.get(rx.o.payload))
            assert not ctx.get(rx.frame_error) and not ctx.get(rx.overrun)
            if i < len(data) and ctx.get(tx.i.ready):
                i += 1
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert bytes(got) == data


def run_rx(wave: list[int], divisor: int, take: bool):
    """Feed *wave* to a receiver; returns bytes received and counts of the error pulses."""
    rx = UartRx(divisor=divisor)
    got, errors = [], {"overrun": 0, "frame_error": 0}

    async def bench(ctx):
        ctx.set(rx.o.ready, 1 if take else 0)
        for bit in [*wave, *[1] * (4 * divisor)]:
            ctx.set(rx.rx, bit)
            errors["overrun"] += ctx.get(rx.overrun)
            errors["frame_error"] += ctx.get(rx.frame_error)
            if take and ctx.get(rx.o.valid):
                got.append(ctx.get(rx.o.payload))
            await ctx.tick()
        if not take and ctx.get(rx.o.valid):
            got.append(ctx.get(rx.o.payload))

    sim = Simulator(rx)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return bytes(got), errors


def test_rx_tolerates_a_sender_three_percent_off():
    data = bytes(range(0, 256, 7))
    for divisor, stretch in ((16, 1.03), (16, 0.97)):
        # resample the ideal waveform at a sender's bit time of divisor * stretch cycles
        ideal = line_bits(data, 1000)
        n = int(len(ideal) * divisor * stretch / 1000)
        wave = [ideal[int(k * 1000 / (divisor * stretch))] for k in range(n)]
        got, errors = run_rx(wave, divisor, take=True)
        assert got == data and errors == {"overrun": 0, "frame_error": 0}


def test_rx_reports_a_missing_stop_bit_and_an_overrun():
    got, errors = run_rx(line_bits(b"\x55", 6, stop=0), 6, take=True)
    assert got == b"" and errors["frame_error"] == 1
    # nobody takes the first byte: the second one is lost, the first is kept
    got, errors = run_rx(line_bits(b"\x12\x34", 6), 6, take=False)
    assert got == b"\x12" and errors["overrun"] == 1


def test_protocol_identity_roundtrip():
    raw = protocol.identity_bytes(in_bytes=65, out_bytes=33, design=0xDEADBEEF, flags=3)
    ident = protocol.Identity.decode(raw)
    assert (ident.in_bytes, ident.out_bytes, ident.design_id, ident.window) == (
        65,
        33,
        0xDEADBEEF,
        protocol.WINDOW,
    )
    assert len(ident.errors()) == 2
    with pytest.raises(ValueError):
        protocol.Identity.decode(b"XX" + raw[2:])


def test_design_id_follows_the_hardware():
    m = {"input": {"lanes": 4}, "output": {"lanes": 2}, "stages": [{"name": "a"}], "seconds": 1}
    same = {**m, "seconds": 2}  # timing of the rtl step is not the hardware
    other = {**m, "input": {"lanes": 8}}
    assert protocol.design_id(m) == protocol.design_id(same) != protocol.design_id(other)


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    d = tmp_path_factory.mktemp("uart")
    model = export(
        mlp([12, 8, 8, 4], wbits=3, abits=2, per_channel=True, seed=5), (12,), d / "mlp.onnx"
    )
    # folded: several input and output beats per sample exercise the byte/beat packing
    folding = d / "fold.json"
    folding.write_text(
        '{"layers": {"layer_1_Gemm": {"pe": 2, "simd": 3}, "layer_4_Gemm": {"pe": 2, '
        '"simd": 4}, "layer_7_Gemm": {"pe": 2, "simd": 4}}}'
    )
    run_build(BuildConfig(model=model, out=d / "b", folding=folding, until="rtl", seed=1))
    return d / "b"


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bridge_ports_follow_the_manifest(small_build):
    ir, manifest = build_inputs(small_build)
    b = UartBridge(ir, divisor=8, design_id=protocol.design_id(manifest))
    for port, side in ((b.input_port, "input"), (b.output_port, "output")):
        for key in ("shape", "lanes", "tdata_bits", "beats_per_sample"):
            assert port[key] == manifest[side][key]
    assert b.rx_depth == protocol.WINDOW * (protocol.frame_bytes(manifest["input"]) + 1)
    Fragment.get(b, None)  # it elaborates (and is used, for Amaranth's unused check)
    with pytest.raises(TypeError, match="window"):
        UartBridge(ir, divisor=8, window=0)
    with pytest.raises(TypeError, match="design_id"):
        UartBridge(ir, divisor=8, design_id=2**32)
    gc.collect()  # the half-built bridges warn when collected: here, under the filter


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_bridge_matches_golden_model(small_build, sim):
    """Golden model: the IR of the small MLP (golden.npz); every result over the UART."""
    ir, manifest = build_inputs(small_build)
    assert manifest["input"]["beats_per_sample"] > 1 and manifest["output"]["beats_per_sample"] > 1
    r = verify_bridge(small_build, ir, manifest, simulator=sim, seed=3, vectors=24)
    assert r["vectors"] == 24 and r["mismatches"] == 0
    assert r["identity"]["matches_manifest"] and r["flags_after"] == 0
    assert (small_build / "bitstream" / "uart_sim.json").exists()


def test_bridge_mismatch_is_reported(small_build, tmp_path):
    # a golden model that disagrees with the hardware must fail the check
    import shutil

    out = tmp_path / "b"
    shutil.copytree(small_build, out)
    with np.load(out / "golden.npz") as g:
        data = dict(g)
    data["outputs"] = data["outputs"].copy()
    data["outputs"][2, 0] += 1
    np.savez(out / "golden.npz", **data)
    ir, manifest = build_inputs(out)
    with pytest.raises(VerificationError, match="1 outputs differ"):
        verify_bridge(out, ir, manifest, simulator="icarus", vectors=4)
