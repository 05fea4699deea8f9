"""The byte protocol between a host and the UART-bridged accelerator on an open board.

Samples travel packed exactly as on the AXI4-Stream ports (:mod:`gatemill.flow.packing`, from
``rtl/manifest.json``): a sample is ``beats_per_sample`` beats of ``tdata_bits / 8`` bytes,
least significant byte first.

Host to board:

- ``'S'`` (0x53) followed by the ``in_bytes`` bytes of one sample;
- ``'I'`` (0x49): identify;
- any other byte between frames is ignored.

Board to host, in the order of the requests:

- ``'R'`` (0x52) followed by the ``out_bytes`` bytes of one result;
- the 14-byte identity: ``'G' 'M'``, protocol version, flags, window, 0, ``in_bytes`` (u16),
  ``out_bytes`` (u16), design id (u32), little-endian. Flags: bit 0 a received byte was lost
  (the receive buffer was full), bit 1 a byte had no stop bit (wrong baud rate or noise);
  both are cleared once reported.

Flow control is a window: the host keeps at most ``window`` samples sent whose results it has
not read. The board buffers ``window`` whole frames in front of the accelerator, so no byte
can be lost whatever the accelerator's speed, and the line still carries the next sample while
the board works on one.

The design id is a CRC-32 of the manifest's port and stage descriptions, so a host can check it
talks to the bitstream of the manifest it packs with.

A host that lost track (e.g. interrupted mid-frame) resynchronizes by sending ``in_bytes + 1``
identify bytes: whatever the board still expected of a sample is filled (and its result is
discarded by the host), the rest are identify requests; the host then drains the line.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

CMD_SAMPLE = 0x53  # 'S'
CMD_IDENTIFY = 0x49  # 'I'
RESULT = 0x52  # 'R'
MAGIC = b"GM"
VERSION = 1
IDENT_FORMAT = "<2sBBBBHHI"
IDENT_BYTES = struct.calcsize(IDENT_FORMAT)
FLAG_OVERRUN = 1
FLAG_FRAMING = 2
WINDOW = 2


def frame_bytes(port: dict) -> int:
    """Bytes of one packed sample on *port* (a manifest ``input``/``output`` entry)."""
    return port["beats_per_sample"] * port["tdata_bits"] // 8


def design_id(manifest: dict) -> int:
    """CRC-32 of the manifest's ``input``, ``output`` and ``stages`` (what the hardware is)."""
    key = {k: manifest[k] for k in ("input", "output", "stages")}
    return zlib.crc32(json.dumps(key, sort_keys=True, separators=(",", ":")).encode())


def identity_bytes(
    *, in_bytes: int, out_bytes: int, design: int, window: int = WINDOW, flags: int = 0
) -> bytes:
    """The identify reply (flags as given)."""
    return struct.pack(IDENT_FORMAT, MAGIC, VERSION, flags, window, 0, in_bytes, out_bytes, design)


@dataclass(frozen=True)
class Identity:
    """A decoded identify reply."""

    version: int
    flags: int
    window: int
    in_bytes: int
    out_bytes: int
    design_id: int

    @classmethod
    def decode(cls, data: bytes) -> Identity:
        """Decode the 14 bytes of a reply.

        Raises
        ------
        ValueError
            If *data* is not an identify reply.
        """
        if len(data) != IDENT_BYTES or data[:2] != MAGIC:
            raise ValueError(f"not a gatemill identify reply: {bytes(data)!r}")
        _, version, flags, window, _, in_b, out_b, design = struct.unpack(IDENT_FORMAT, data)
        return cls(version, flags, window, in_b, out_b, design)

    def errors(self) -> list[str]:
        """The flags, in words."""
        out = []
        if self.flags & FLAG_OVERRUN:
            out.append("a received byte was lost (receive buffer full)")
        if self.flags & FLAG_FRAMING:
            out.append("a byte had no stop bit (baud rate or line noise)")
        return out
