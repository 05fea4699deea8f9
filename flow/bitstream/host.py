"""The host side of the UART bridge: run a build's test vectors on the board.

``DIR/bitstream/host.py --port /dev/ttyUSB0`` (written by ``gatemill bitstream``) calls
:func:`main`: it opens the serial port (pyserial), checks the board's identify reply against
``DIR/rtl/manifest.json``, sends every input of ``DIR/golden.npz`` packed as the manifest says
(window flow control, :mod:`gatemill.flow.bitstream.protocol`), unpacks the results, counts the
outputs that differ from the golden model and measures samples per second. The report goes to
``DIR/bitstream/board_run.json``. ``golden.npz`` holds the hardware's input integers: with an
input encoding stated at import (``--input-type``/``--input-scale``), the user's raw integers.

:class:`BoardLink` takes any object with pyserial's ``write(bytes)`` and ``read(n)`` (which
may return fewer bytes on timeout), so it is tested with a fake port.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import GatemillError
from ..packing import pack, unpack
from . import protocol


class BoardLink:
    """Samples in, results out, over a serial port to a UART-bridged accelerator.

    Parameters
    ----------
    port
        An open serial port: ``write(bytes)``, ``read(n) -> bytes`` (short on timeout).
    manifest : dict
        ``rtl/manifest.json`` of the build the board runs.
    window : int, optional
        Samples in flight; the board's identify reply gives it when not set.
    """

    def __init__(self, port, manifest: dict, window: int | None = None):
        self.port = port
        self.manifest = manifest
        self.inp, self.out = manifest["input"], manifest["output"]
        self.in_bytes = protocol.frame_bytes(self.inp)
        self.out_bytes = protocol.frame_bytes(self.out)
        self.window = window

    def _read(self, n: int, what: str) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.port.read(n - len(data))
            if not chunk:
                raise GatemillError(
                    f"the board sent {len(data)} of the {n} bytes of {what} and then nothing: "
                    "check the port, the baud rate and that the bitstream is loaded."
                )
            data += chunk
        return data

    def identify(self) -> protocol.Identity:
        """Ask the board who it is (clears its error flags)."""
        self.port.write(bytes([protocol.CMD_IDENTIFY]))
        reply = self._read(protocol.IDENT_BYTES, "the identify reply")
        try:
            return protocol.Identity.decode(reply)
        except ValueError:
            raise GatemillError(
                f"the board's identify reply {reply!r} is not gatemill's: another bitstream, "
                "or a port out of step (run again: the link resynchronizes first)."
            ) from None

    def check(self) -> protocol.Identity:
        """:meth:`identify`, and check the board runs this manifest's design.

        Raises
        ------
        GatemillError
            If the board runs another design or protocol version.
        """
        ident = self.identify()
        expected = (
            protocol.VERSION,
            self.in_bytes,
            self.out_bytes,
            protocol.design_id(self.manifest),
        )
        got = (ident.version, ident.in_bytes, ident.out_bytes, ident.design_id)
        if got != expected:
            raise GatemillError(
                f"the board runs another design (protocol, input bytes, output bytes, design "
                f"id = {got}; this build has {expected}): load this build's top.bit."
            )
        if self.window is None:
            self.window = ident.window
        return ident

    def resync(self, settle: float = 0.2) -> None:
        """Bring the board back to the start of a frame (see the protocol's resync)."""
        self.port.write(bytes([protocol.CMD_IDENTIFY]) * (self.in_bytes + 1))
        time.sleep(settle)
        while self.port.read(4096):
            pass

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """Results of the integer *inputs* ``(N, *shape)``, at most ``window`` in flight."""
        data = pack(inputs, self.inp)
        window = self.window or protocol.WINDOW
        results, sent = [], 0
        while len(results) < len(data):
            burst = b""
            while sent < len(data) and sent - len(results) < window:
                burst += bytes([protocol.CMD_SAMPLE]) + data[sent].tobytes()
                sent += 1
            if burst:
                self.port.write(burst)
            header = self._read(1, f"result {len(results)}")
            if header[0] != protocol.RESULT:
                raise GatemillError(
                    f"expected result {len(results)} (a byte 0x52), got {header!r}: the "
                    "link is out of step; run again."
                )
            results.append(self._read(self.out_bytes, f"result {len(results)}"))
        return unpack(b"".join(results), self.out)


def run_on_board(port, out_dir: Path, vectors: int | None = None, resync: bool = True) -> dict:
    """Run ``golden.npz`` of *out_dir* on the board behind *port*; returns the report.

    Raises
    ------
    GatemillError
        If the board does not answer or runs another design.
    """
    out = Path(out_dir)
    manifest = json.loads((out / "rtl" / "manifest.json").read_text())
    with np.load(out / "golden.npz", allow_pickle=False) as g:
        inputs, expected = g["inputs"], g["outputs"]
    if vectors:
        inputs, expected = inputs[:vectors], expected[:vectors]
    link = BoardLink(port, manifest)
    if resync:
        link.resync()
    before = link.check()
    t0 = time.perf_counter()
    got = link.run(inputs)
    seconds = time.perf_counter() - t0
    after = link.identify()
    bad = got != expected
    return {
        "vectors": len(inputs),
        "elements": int(expected.size),
        "mismatches": int(np.count_nonzero(bad)),
        "samples_with_mismatch": int(np.count_nonzero(bad.reshape(len(bad), -1).any(1))),
        "design_id": before.design_id,
        "window": link.window,
        "link_errors": after.errors(),
        "seconds": round(seconds, 3),
        "samples_per_s": round(len(inputs) / seconds, 1) if seconds > 0 else None,
        "us_per_sample": round(1e6 * seconds / len(inputs), 1) if len(inputs) else None,
    }


def open_serial(device: str, baud: int, timeout: float):
    """A pyserial port (imported here: only the host that talks to a board needs it)."""
    try:
        import serial
    except ImportError:
        raise GatemillError(
            "pyserial is needed to talk to the board: pip install pyserial"
        ) from None
    try:
        return serial.Serial(device, baud, timeout=timeout)
    except serial.SerialException as e:
        raise GatemillError(f"cannot open {device}: {e}") from None


def main(argv: list[str] | None = None) -> int:
    """``host.py --port DEV [--baud N] [--vectors N]``: 0 when the board matches the golden
    model on every output, 1 on a mismatch, 2 on an error."""
    ap = argparse.ArgumentParser(description="Run a gatemill build's test vectors on the board.")
    ap.add_argument("--dir", type=Path, required=True, help="the build folder")
    ap.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB0 or COM3")
    ap.add_argument("--baud", type=int, help="baud rate (default: the bitstream's)")
    ap.add_argument("--vectors", type=int, help="run only the first N vectors")
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for a byte")
    args = ap.parse_args(argv)
    try:
        bridge = json.loads((args.dir / "bitstream" / "bridge.json").read_text())
        port = open_serial(args.port, args.baud or bridge["baud"], args.timeout)
        with port:
            report = run_on_board(port, args.dir, args.vectors)
    except (GatemillError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    (args.dir / "bitstream" / "board_run.json").write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"{report['vectors']} vectors: {report['mismatches']} of {report['elements']} outputs "
        f"differ from the golden model; {report['samples_per_s']} samples/s "
        f"({report['us_per_sample']} us/sample)"
        + (f"; link errors: {', '.join(report['link_errors'])}" if report["link_errors"] else "")
    )
    return 0 if report["mismatches"] == 0 and not report["link_errors"] else 1
