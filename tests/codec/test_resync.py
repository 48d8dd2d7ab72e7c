"""Resynchronisation that trusts checksums (issue 14): a damaged frame keeps its place in the
stream, is reported with its length or flag findings, and swallows none of the valid frames
around it, whatever the damage."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec.hdlc import build_disc, build_snrm, build_ua
from dlmsdoctor.codec.hdlc_address import ServerAddress
from dlmsdoctor.codec.hdlc_params import HdlcParams
from dlmsdoctor.codec.model import DecodedFrame, FrameKind
from dlmsdoctor.codec.stream import StreamSplitter, split_stream

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "real_frames.json").read_text())
REAL = {v["name"]: bytes.fromhex(v["hex"]) for v in VECTORS["frames"]}
AIDON = REAL["aidon_6540_push"]
GET_RESPONSE = REAL["get_response_rr_example"]  # 7EA0160502211E6EE0E6E700C401C1...7D187E
# A Kaifa MA304H3E list-2 push (123 bytes, length 121, HCS and FCS right), as the issue's
# 124-byte Kaifa frame was before a byte was doubled on the line.
KAIFA = bytes.fromhex(
    "7EA079010201108093E6E7000F40000000090C07E60A1007150014FF800000020D09074B464D5F303031"
    "09103639373036333134303337353736313509084D413330344833450600000D62060000000006000000"
    "000600000034060000291A0600002FF4060000120D06000009150600000000060000092802527E"
)
SERVER = ServerAddress(1, 17, 2)
POOL = [
    AIDON, GET_RESPONSE, KAIFA, REAL["kaifa_ma304h4d_list3"], REAL["get_request_4byte_server"],
    build_snrm(SERVER, 16, HdlcParams()), build_ua(SERVER, 16, HdlcParams()),
    build_disc(SERVER, 16),
]  # fmt: skip


def codes(frame: DecodedFrame) -> list[str]:
    return [f.code for f in frame.findings]


def valid_frames(chunks: list[DecodedFrame]) -> list[bytes]:
    return [c.data for c in chunks if c.kind is FrameKind.HDLC and c.valid]


def test_kaifa_frame_with_a_doubled_byte_is_a_frame_with_a_length_finding() -> None:
    damaged = KAIFA[:60] + KAIFA[59:]  # 124 bytes: 122 between the flags, length says 121
    (frame,) = split_stream(damaged)
    assert frame.kind is FrameKind.HDLC and len(frame.data) == 124
    length = next(f for f in frame.findings if f.code == "hdlc.length.mismatch")
    assert (length.found, length.expected, length.corrected) == ("121", "122", "A07A")
    assert "hdlc.hcs.mismatch" not in codes(frame)
    assert frame.fields["frame_type"] == "I"  # the header is read, not garbage and "KFM_001"


def test_kaifa_frame_with_a_lost_byte_then_a_valid_frame() -> None:
    damaged = KAIFA[:60] + KAIFA[61:]  # 122 bytes, the closing flag where the length is not
    chunks = split_stream(damaged + GET_RESPONSE)
    assert [(c.kind, len(c.data)) for c in chunks] == [
        (FrameKind.HDLC, 122), (FrameKind.HDLC, len(GET_RESPONSE)),
    ]  # fmt: skip
    assert "hdlc.length.mismatch" in codes(chunks[0]) and chunks[1].valid


def test_aidon_frame_with_lf_turned_into_cr_lf_then_60_valid_frames() -> None:
    # A USB serial adapter in "onlcr" mode writes every 0A as 0D 0A. The issue: the damaged
    # frame became 17 bytes of garbage and a 1,537-byte wrapper PDU that swallowed the stream.
    damaged = AIDON.replace(b"\x0a", b"\x0d\x0a")
    assert damaged.startswith(bytes.fromhex("7EA10B41088313FA7CE6E7000F40"))
    stream = damaged + GET_RESPONSE * 60
    chunks = split_stream(stream)
    assert [c.kind for c in chunks] == [FrameKind.HDLC] * 61
    first = chunks[0]
    assert first.data == damaged and first.fields["frame_type"] == "UI"
    assert "hdlc.length.mismatch" in codes(first)
    assert valid_frames(chunks) == [GET_RESPONSE] * 60
    assert not any(c.kind is FrameKind.WRAPPER for c in chunks)
    splitter = StreamSplitter()
    fed = [c for i in range(0, len(stream), 13) for c in splitter.feed(stream[i : i + 13])]
    fed += splitter.close()
    assert [(c.offset, c.data, codes(c)) for c in fed] == [
        (c.offset, c.data, codes(c)) for c in chunks
    ]


def test_a_wrapper_header_inside_noise_needs_a_whole_coherent_pdu() -> None:
    # 00 01 | 0C 02 | 02 09 | 06 01 | 01 ...: the header the stream was misread as.
    fake = bytes.fromhex("9911000100010c0202090601010203")
    chunks = split_stream(fake + GET_RESPONSE * 3)
    assert valid_frames(chunks) == [GET_RESPONSE] * 3
    assert not any(c.kind is FrameKind.WRAPPER for c in chunks)
    real = bytes.fromhex("0001000100100009C401C1000600000000")  # wrapper GET response after noise
    assert [c.kind for c in split_stream(b"\x99\x11" + real)] == [
        FrameKind.GARBAGE, FrameKind.WRAPPER,
    ]  # fmt: skip


def test_a_frame_that_lost_its_closing_flag_shares_the_next_frames_flag() -> None:
    # ISO/IEC 13239 lets one flag close a frame and open the next: no damage at all.
    chunks = split_stream(AIDON[:-1] + GET_RESPONSE)
    assert valid_frames(chunks) == [AIDON, GET_RESPONSE]
    assert chunks[1].fields["shared_flag"] is True


def test_a_frame_cut_inside_its_information_keeps_the_next_frame() -> None:
    chunks = split_stream(AIDON[:150] + GET_RESPONSE)
    assert [(c.kind, c.offset, len(c.data)) for c in chunks] == [
        (FrameKind.HDLC, 0, 150), (FrameKind.HDLC, 150, len(GET_RESPONSE)),
    ]  # fmt: skip
    assert {"hdlc.length.mismatch", "hdlc.flag.missing_end"} <= set(codes(chunks[0]))
    assert chunks[1].valid


# --------------------------------------------------------------------------- property


def _damage(frame: bytes, kind: str, at: int, bits: list[int]) -> bytes:
    pos = at % len(frame)
    if kind == "flip":
        out = bytearray(frame)
        for b in bits:
            out[b % len(out)] ^= 1 << (b % 8)
        return bytes(out)
    if kind == "crlf":
        return frame[:pos] + b"\r\n" + frame[pos:]
    if kind == "lf_to_crlf":
        if b"\n" in frame:
            return frame.replace(b"\n", b"\r\n")
        return frame[:pos] + b"\r" + frame[pos:]
    if kind == "cut":
        return frame[: max(1, pos)]
    if kind == "cut_head":
        return frame[max(1, pos) :]
    if kind == "double_flag":
        return b"\x7e" + frame if at % 2 else frame + b"\x7e"
    if kind == "insert":
        return frame[:pos] + bytes([bits[0] % 256 if bits else 0]) + frame[pos:]
    return frame[:pos] + frame[pos + 1 :]  # "drop"


@settings(max_examples=400, deadline=None)
@given(
    before=st.lists(st.sampled_from(POOL), min_size=1, max_size=2),
    victim=st.sampled_from(POOL),
    after=st.lists(st.sampled_from(POOL), min_size=1, max_size=3),
    kind=st.sampled_from(
        ["flip", "crlf", "lf_to_crlf", "cut", "cut_head", "double_flag", "insert", "drop"]
    ),
    at=st.integers(min_value=0, max_value=400),
    bits=st.lists(st.integers(min_value=0, max_value=4000), min_size=1, max_size=3),
)
def test_valid_frames_around_a_damaged_one_stay_valid(
    before: list[bytes], victim: bytes, after: list[bytes], kind: str, at: int, bits: list[int]
) -> None:
    damaged = _damage(victim, kind, at, bits)
    head, tail = b"".join(before), b"".join(after)
    stream = head + damaged + tail
    chunks = split_stream(stream)
    pos = 0
    for c in chunks:  # the chunks still tile the stream
        assert c.offset in (pos, pos - 1) and stream[c.offset : c.end] == c.data
        pos = c.end
    assert pos == len(stream)
    found = valid_frames(chunks)
    assert found[: len(before)] == before, (kind, damaged.hex())
    assert found[-len(after) :] == after, (kind, damaged.hex())
    # Nothing of the damaged frame reaches into its neighbours.
    starts = {c.offset for c in chunks}
    assert len(head) in starts or len(head) - 1 in starts or damaged == victim
    assert len(head) + len(damaged) in starts or len(head) + len(damaged) - 1 in starts
