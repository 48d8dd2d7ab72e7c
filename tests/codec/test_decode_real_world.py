"""The decode pipeline on inputs people paste (issue 14): bare APDUs, one direction per pair of
address bytes, continuation segments without LLC, bytes after a complete APDU, dates with
unspecified fields."""

from __future__ import annotations

import pytest

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.codec.decode import Chunk, decode_bytes, decode_chunks
from dlmsdoctor.codec.hdlc import ServerAddress, build_i
from dlmsdoctor.codec.model import FrameKind, Severity

SERVER_1 = ServerAddress(1, None, 1)


def codes(fd: object) -> list[str]:
    return [f.code for f in fd.findings]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- bare APDUs

BARE = [
    # (hex, apdu_type, direction): one per family the codec knows
    ("C0 01 C1 00 03 01 00 01 08 00 FF 02 00", "GET-Request-Normal", "tx"),  # the issue's
    ("C4 01 C1 00 06 00 00 00 2A", "GET-Response-Normal", "rx"),
    ("C1 01 C1 00 01 00 00 60 01 00 FF 02 00 09 06 00 01 02 03 04 05", "SET-Request-Normal", "tx"),
    (
        "61 29 A1 09 06 07 60 85 74 05 08 01 01 A2 03 02 01 00 A3 05 A1 03 02 01 00 BE 10 04 0E "
        "08 00 06 5F 1F 04 00 00 1E 1D 04 00 00 07", "AARE", "rx",
    ),
    ("62 00", "RLRQ", "tx"),
    ("C8 0F 30 00 00 00 01 01 02 03 04 05 06 07 08 09 0A", "ciphered", "tx"),
    (
        "0F 40 00 00 00 00 02 02 09 06 01 01 00 02 81 FF 0A 0B 41 49 44 4F 4E 5F 56 30 30 30 31",
        "DataNotification", "rx",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "apdu_type", "direction"), BARE)
def test_bare_apdu_decodes_with_direction_from_its_tag(
    text: str, apdu_type: str, direction: str
) -> None:
    (fd,) = decode_bytes(bytes.fromhex(text.replace(" ", ""))).frames
    assert fd.frame.kind is FrameKind.APDU and fd.is_dlms and fd.valid, codes(fd)
    assert fd.apdu_type == apdu_type and fd.direction == direction
    assert "apdu.bare" in codes(fd)
    assert any(s.name == "apdu.bare" and s.children for s in fd.all_spans)


def test_bytes_that_only_start_like_an_apdu_stay_unrecognised() -> None:
    (fd,) = decode_bytes(bytes.fromhex("C001C100030100")).frames  # a GET request cut short
    assert fd.frame.kind is FrameKind.GARBAGE


# --------------------------------------------------------------------------- trailing bytes


def test_set_request_followed_by_17_bytes_of_no_field_is_an_error() -> None:
    apdu = bytes.fromhex("C101C100010000600100FF0200090600010203040 5".replace(" ", ""))
    frame = build_i(SERVER_1, 16, to_server=True, ns=0, nr=0, info=apdu + bytes(range(17)))
    (fd,) = decode_bytes(frame).frames
    assert not fd.valid
    trailing = next(f for f in fd.findings if f.code == "apdu.trailing_bytes")
    assert trailing.severity is Severity.ERROR and trailing.length == 17
    assert f"first {len(apdu)} byte(s)" in trailing.message
    assert fd.apdu is not None and fd.apdu.fields["apdu_length"] == len(apdu)


# --------------------------------------------------------------------------- direction, LLC


def test_continuation_segment_takes_the_direction_of_its_address_bytes_without_llc_warning() -> (
    None
):
    # A meter's answer in two segments, 1-byte addresses: the first has the LLC E6 E7 00 (so
    # it is the meter's), the second has no LLC (HDLC segments carry it once).
    body = bytes.fromhex("C40181000A20") + b"x" * 32
    first = build_i(SERVER_1, 16, to_server=False, ns=0, nr=1, info=body[:20], segmented=True)
    second = build_i(SERVER_1, 16, to_server=False, ns=1, nr=1, info=body[20:], llc=False)
    fds = decode_chunks([Chunk(first), Chunk(second)]).frames
    assert [fd.frame.fields["direction"] for fd in fds] == ["rx", "rx"]
    assert "hdlc.llc.missing" not in codes(fds[1]) and "hdlc.direction.assumed" not in codes(fds[1])
    assert "hdlc.direction.learned" in codes(fds[1])
    assert fds[1].frame.fields["src"]["role"] == "server"  # type: ignore[index]
    assert fds[1].apdu is not None and fds[1].reassembled_from == (0, 1)


# --------------------------------------------------------------------------- dates


def test_date_time_with_day_of_week_00_is_a_date_with_a_note() -> None:
    # Aidon sends day-of-week 00 (the Blue Book has 1..7 and FF for "not specified").
    dt = bytes.fromhex("07E60A0300170000FF800080")  # 2022-10-03 23:00:00, dow 00
    decoded = decode_apdu(bytes.fromhex("C40181000919") + dt)
    value = decoded.fields["value"]
    assert isinstance(value, str) and value.startswith("2022-10-03 23:00:00")
    assert "day-of-week 00" in value
    octets = decode_apdu(bytes.fromhex("C4018100090C") + dt).fields["value"]
    assert isinstance(octets, str) and octets.startswith("2022-10-03")


def test_date_time_with_unspecified_fields_is_still_a_date() -> None:
    dt = bytes.fromhex("FFFF0A03FF17FFFFFF800000")
    value = decode_apdu(bytes.fromhex("C40181000919") + dt).fields["value"]
    assert value == "****-10-03 23:**:**"
