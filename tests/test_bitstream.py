"""ECP5 bitstreams (flow/bitstream): the host side of the UART protocol against a fake board
running the golden model, timing parsing, tool failures; a real ECP5 bitstream of the digits
MLP (slow)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from brevitas_models import export, mlp

from gatemill.flow.bitstream import ecp5, protocol
from gatemill.flow.bitstream.host import BoardLink, main, run_on_board
from gatemill.flow.boards import load_board
from gatemill.flow.build import BuildConfig, run_build
from gatemill.flow.cli import main as cli_main
from gatemill.flow.errors import GatemillError, ToolError
from gatemill.flow.kinds import load_ir
from gatemill.flow.packing import pack, unpack


class FakeBoard:
    """A serial port to a board that speaks the protocol, computing results with the golden
    model of *ir*: what ``UartBridge`` does, in Python. Reads return at most *chunk* bytes
    (serial ports deliver what has arrived). ``max_in_flight`` is the most samples the host
    ever had sent without having read their results."""

    def __init__(self, ir, manifest, *, design=None, chunk=7, window=protocol.WINDOW):
        self.ir, self.inp, self.out = ir, manifest["input"], manifest["output"]
        self.in_bytes = protocol.frame_bytes(self.inp)
        self.design = protocol.design_id(manifest) if design is None else design
        self.chunk, self.window = chunk, window
        self.frames: list[tuple[str, bytearray]] = []  # (kind, bytes not read yet)
        self.frame = None  # bytes of the sample being received
        self.started = self.read_results = self.max_in_flight = 0

    def write(self, data: bytes) -> int:
        for b in data:
            self._byte(b)
        return len(data)

    def _byte(self, b: int) -> None:
        if self.frame is not None:
            self.frame.append(b)
            if len(self.frame) == self.in_bytes:
                y = self.ir.execute(unpack(bytes(self.frame), self.inp))
                result = bytes([protocol.RESULT]) + pack(y, self.out).tobytes()
                self.frames.append(("result", bytearray(result)))
                self.frame = None
        elif b == protocol.CMD_SAMPLE:
            self.frame = bytearray()
            self.started += 1
            self.max_in_flight = max(self.max_in_flight, self.started - self.read_results)
        elif b == protocol.CMD_IDENTIFY:
            ident = protocol.identity_bytes(
                in_bytes=self.in_bytes,
                out_bytes=protocol.frame_bytes(self.out),
                design=self.design,
                window=self.window,
            )
            self.frames.append(("identify", bytearray(ident)))

    def read(self, n: int) -> bytes:
        data = bytearray()
        n = min(n, self.chunk)
        while self.frames and len(data) < n:
            kind, rest = self.frames[0]
            take = rest[: n - len(data)]
            data += take
            del rest[: len(take)]
            if not rest:
                self.frames.pop(0)
                self.read_results += kind == "result"
        return bytes(data)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("bit")
    model = export(
        mlp([12, 8, 8, 4], wbits=3, abits=2, per_channel=True, seed=5), (12,), d / "mlp.onnx"
    )
    f = d / "fold.json"
    f.write_text(json.dumps({"layers": {"layer_7_Gemm": {"pe": 2, "simd": 4}}}))
    run_build(BuildConfig(model=model, out=d / "b", folding=f, until="rtl", seed=2))
    return d / "b"


def test_host_runs_the_vectors_against_the_golden_model(small):
    ir = load_ir(small)
    manifest = json.loads((small / "rtl" / "manifest.json").read_text())
    board = FakeBoard(ir, manifest)
    report = run_on_board(board, small, resync=False)
    with np.load(small / "golden.npz") as g:
        n = len(g["inputs"])
    assert report["vectors"] == n and report["mismatches"] == 0
    assert report["link_errors"] == [] and report["window"] == protocol.WINDOW
    # the host keeps the line busy, but never more samples in flight than the board buffers
    assert board.max_in_flight == protocol.WINDOW


def test_host_packing_is_the_manifest_packing(small):
    # the host sends exactly the bytes pack() gives, and reads results back with unpack()
    ir = load_ir(small)
    manifest = json.loads((small / "rtl" / "manifest.json").read_text())
    board = FakeBoard(ir, manifest, chunk=1000)
    sent = []
    write = board.write
    board.write = lambda data: sent.append(bytes(data)) or write(data)
    link = BoardLink(board, manifest, window=1)
    with np.load(small / "golden.npz") as g:
        x, y = g["inputs"][:3], g["outputs"][:3]
    assert np.array_equal(link.run(x), y)
    frames = [s for s in sent if s[0] == protocol.CMD_SAMPLE]
    assert frames == [
        bytes([protocol.CMD_SAMPLE]) + p.tobytes() for p in pack(x, manifest["input"])
    ]


def test_host_refuses_another_design(small):
    ir = load_ir(small)
    manifest = json.loads((small / "rtl" / "manifest.json").read_text())
    with pytest.raises(GatemillError, match="another design"):
        BoardLink(FakeBoard(ir, manifest, design=1), manifest).check()


def test_host_reports_a_silent_board(small):
    manifest = json.loads((small / "rtl" / "manifest.json").read_text())

    class Silent:
        def write(self, data):
            return len(data)

        def read(self, n):
            return b""

    with pytest.raises(GatemillError, match="and then nothing"):
        BoardLink(Silent(), manifest).identify()


def test_host_resynchronizes_a_board_left_mid_frame(small):
    ir = load_ir(small)
    manifest = json.loads((small / "rtl" / "manifest.json").read_text())
    board = FakeBoard(ir, manifest)
    board.write(bytes([protocol.CMD_SAMPLE, 1, 2, 3]))  # an interrupted earlier run
    link = BoardLink(board, manifest)
    link.resync(settle=0)
    assert link.check().design_id == protocol.design_id(manifest)


def test_host_script_main(small, monkeypatch, capsys):
    ir = load_ir(small)
    manifest = json.loads((small / "rtl" / "manifest.json").read_text())
    (small / "bitstream").mkdir(exist_ok=True)
    (small / "bitstream" / "bridge.json").write_text(json.dumps({"baud": 115200}))

    class Port(FakeBoard):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(
        "gatemill.flow.bitstream.host.open_serial", lambda dev, baud, t: Port(ir, manifest)
    )
    monkeypatch.setattr("gatemill.flow.bitstream.host.time.sleep", lambda s: None)
    assert main(["--dir", str(small), "--port", "/dev/fake", "--vectors", "5"]) == 0
    assert "5 vectors: 0 of" in capsys.readouterr().out
    assert json.loads((small / "bitstream" / "board_run.json").read_text())["mismatches"] == 0


def test_parse_timing():
    report = {"fmax": {"$glbnet$clk": {"achieved": 56.4, "constraint": 25.0}}}
    t = ecp5.parse_timing(report)
    assert (t["fmax_mhz"], t["target_mhz"], t["met"]) == (56.4, 25.0, True)
    log = "Info: Max frequency for clock '$glbnet$clk': 21.50 MHz (FAIL at 25.00 MHz)\n"
    t = ecp5.parse_timing({}, log)
    assert (t["fmax_mhz"], t["met"]) == (21.5, False)
    with pytest.raises(ValueError):
        ecp5.parse_timing({}, "")


def test_boards_without_ecp5_or_uart_are_refused(small):
    for name, message in (("pynq-z2", "Vivado"), ("orangecrab-25f", "no USB-UART")):
        with pytest.raises(GatemillError, match=message):
            ecp5.run_ecp5_bitstream(small, load_board(name), verify=False)


def test_a_failing_tool_names_itself_and_its_log(small, tmp_path, monkeypatch):
    out = tmp_path / "b"
    shutil.copytree(small, out)
    env = dict(os.environ, YOSYS="false", NEXTPNR_ECP5="false", ECPPACK="false")
    monkeypatch.setattr(ecp5, "yowasp_env", lambda: env)
    with pytest.raises(ToolError) as e:
        ecp5.run_ecp5_bitstream(out, load_board("ulx3s-85f"), verify=False)
    assert e.value.tool == "yosys" and str(e.value.log).endswith("top.rpt")
    assert (out / "bitstream" / "bridge.json").exists()


def test_a_design_that_does_not_fit_is_refused_up_front(small, tmp_path, monkeypatch, capsys):
    out = tmp_path / "b"
    shutil.copytree(small, out, ignore=shutil.ignore_patterns("bitstream"))
    synth = {
        "board": "ulx3s-85f",
        "fits": False,
        "over": [{"resource": "dsp", "used": 276, "capacity": 156, "pct": 176.92}],
        "suggestion": {"text": "...", "file": "synth/suggested_folding.json"},
    }
    (out / "synth.json").write_text(json.dumps(synth))

    def no_tools():
        raise AssertionError("the tools ran")

    monkeypatch.setattr(ecp5, "yowasp_env", no_tools)
    # refused before the bridge's simulation and the tools, through the CLI: exit 2
    code = cli_main(["bitstream", str(out), "--board", "ulx3s-85f"])
    text = capsys.readouterr().err
    assert code == 2 and "Traceback" not in text
    assert "276 MULT18X18D multipliers of 156 (120 too many)" in text
    assert str(out / "synth" / "suggested_folding.json") in text
    assert not (out / "bitstream").exists()
    # a synth.json for another board, or older than the RTL, says nothing about this build
    for edit in ("board", "stale"):
        if edit == "board":
            (out / "synth.json").write_text(json.dumps({**synth, "board": "orangecrab-25f"}))
        else:
            (out / "synth.json").write_text(json.dumps(synth))
            os.utime(out / "synth.json", (0, 0))
        with pytest.raises(AssertionError, match="the tools ran"):
            ecp5.run_ecp5_bitstream(out, load_board("ulx3s-85f"), verify=False)


@pytest.mark.slow
def test_digits_mlp_ecp5_bitstream(tmp_path):
    """The digits MLP (w4a4) folded to fit the ULX3S's 156 multipliers, behind the UART
    bridge: 0 mismatches against the golden model on the 360 test vectors in cocotb, a
    placed and routed bitstream, timing met at the board's 25 MHz."""
    from gatemill.flow.dse.fold import fold_for_ii
    from gatemill.flow.frontend import import_qonnx
    from gatemill.flow.zoo.train import train

    train("mlp", out_dir=tmp_path / "t", wbits=4, abits=4, seed=0, progress=False)
    model = tmp_path / "t" / "model.onnx"
    fold = tmp_path / "fold.json"
    # 64 cycles per sample: 138 of the 156 multipliers (synthesis suggests this folding)
    fold.write_text(json.dumps({"layers": fold_for_ii(import_qonnx(model).ir, 64)}))
    out = tmp_path / "b"
    run_build(
        BuildConfig(
            model=model, out=out, vectors=tmp_path / "t" / "vectors.npz", folding=fold, until="rtl"
        )
    )
    r = ecp5.run_ecp5_bitstream(out, load_board("ulx3s-85f"))
    v, t = r["verify"], r["timing"]
    assert v["vectors"] == 360 and v["mismatches"] == 0 and v["flags_after"] == 0
    assert (out / "bitstream" / "top.bit").stat().st_size > 100_000
    assert t["met"] and t["target_mhz"] == 25.0 and t["fmax_mhz"] >= 25.0
    # the build script ran the same move of flip-flops into hard blocks as the fmax step
    assert t["registers_absorbed"]["flip_flops"] > 0
    assert json.loads((out / "bitstream" / "timing.json").read_text()) == t
    assert (out / "bitstream" / "host.py").exists()
