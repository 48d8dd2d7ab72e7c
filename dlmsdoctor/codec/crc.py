"""CRC-16/X.25 as HDLC uses it for HCS and FCS (IEC 62056-46 / ISO/IEC 13239).

Reflected polynomial 0x8408, init 0xFFFF, xorout 0xFFFF; the 16-bit result is sent low byte first.
"""

from __future__ import annotations


def _table() -> tuple[int, ...]:
    out = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        out.append(crc)
    return tuple(out)


_TABLE = _table()


def crc16_x25(data: bytes | bytearray | memoryview) -> int:
    """The CRC as an integer (send it with ``crc_bytes``)."""
    crc = 0xFFFF
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


def crc_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """The CRC in wire order: low byte first."""
    return crc16_x25(data).to_bytes(2, "little")
