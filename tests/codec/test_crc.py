"""CRC-16/X.25 (IEC 62056-46, ISO/IEC 13239) against its bit-by-bit definition: reflected
polynomial 0x8408, init 0xFFFF, xorout 0xFFFF; check value of "123456789" is 0x906E
(the CRC catalogue's CRC-16/IBM-SDLC)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec.crc import crc16_x25, crc_bytes
from dlmsdoctor.codec.hdlc_fields import crc16_x25 as parser_crc


def _bitwise(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def test_catalogue_check_value_and_the_known_good_snrm() -> None:
    assert crc16_x25(b"123456789") == 0x906E
    assert crc_bytes(bytes.fromhex("A007032193")) == bytes.fromhex("0F01")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_matches_the_bitwise_definition(data: bytes) -> None:
    assert crc16_x25(data) == _bitwise(data) == parser_crc(data)
    assert crc16_x25(bytearray(data)) == crc16_x25(memoryview(data)) == _bitwise(data)
