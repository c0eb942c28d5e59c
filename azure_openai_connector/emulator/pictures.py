"""The picture every emulated image answer carries: a real 64x64 PNG (a sun over a checkered sea,
a few hundred bytes), built with zlib and struct so that a preview shows something."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Tuple

SIDE = 64
SUN = (250, 200, 40)
SKY = (150, 200, 240)
SEA = ((30, 90, 160), (40, 110, 180))
HORIZON = 40


def _pixel(x: int, y: int) -> Tuple[int, int, int]:
    if (x - SIDE // 2) ** 2 + (y - 26) ** 2 < 100:
        return SUN
    if y > HORIZON:
        return SEA[(x // 4 + y // 4) % 2]
    return SKY


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pattern_png() -> bytes:
    """The PNG file: 8-bit RGB, one filter byte (none) before each row."""
    rows = b"".join(b"\x00" + bytes(channel for x in range(SIDE) for channel in _pixel(x, y)) for y in range(SIDE))
    header = struct.pack(">IIBBBBB", SIDE, SIDE, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, 9))
            + _chunk(b"IEND", b""))


GENERATED_PNG = pattern_png()
GENERATED_PNG_BASE64 = base64.b64encode(GENERATED_PNG).decode("ascii")
