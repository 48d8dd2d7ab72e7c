"""split_stream and StreamSplitter: vectors, whole / byte by byte / trailing garbage, tiling."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec.model import DecodedFrame, FrameKind, Severity
from dlmsdoctor.codec.stream import StreamSplitter, split_stream

VECTORS = Path(__file__).parent.parent / "vectors"
CASES: list[dict[str, Any]] = json.loads((VECTORS / "stream_cases.json").read_text())["cases"]
SER2NET: dict[str, Any] = json.loads((VECTORS / "stream_ser2net.json").read_text())

SNRM = bytes.fromhex("7EA0070321930F017E")
DISC = bytes.fromhex("7EA00703215303C77E")


def feed_in_pieces(data: bytes, sizes: list[int] | None = None, **kw: Any) -> list[DecodedFrame]:
    splitter = StreamSplitter(**kw)
    out: list[DecodedFrame] = []
    i = 0
    k = 0
    while i < len(data):
        step = sizes[k % len(sizes)] if sizes else 1
        out += splitter.feed(data[i : i + step])
        i += step
        k += 1
    return out + splitter.close()


def same(a: list[DecodedFrame], b: list[DecodedFrame]) -> bool:
    """Equal content (the HDLC decoder may hand back a lazy-spans subclass in one path)."""

    def key(f: DecodedFrame) -> tuple[object, ...]:
        return (f.kind, f.offset, f.data, f.summary, f.spans, f.findings, f.fields, f.apdu)

    return [key(f) for f in a] == [key(f) for f in b]


def assert_tiles(chunks: list[DecodedFrame], data: bytes) -> None:
    """Every byte in exactly one chunk, in order (a shared flag belongs to both frames)."""
    pos = 0
    for c in chunks:
        expected = pos - 1 if c.fields.get("shared_flag") else pos
        assert c.offset == expected, (c.kind, c.offset, pos)
        assert data[c.offset : c.end] == c.data
        for s in c.spans:
            assert c.offset <= s.offset and s.end <= c.end, (c.kind, s)
        pos = c.end
    assert pos == len(data)


def shape(chunks: list[DecodedFrame]) -> list[tuple[str, int, int]]:
    return [(c.kind.value, c.offset, len(c.data)) for c in chunks]


# --------------------------------------------------------------------------- vectors


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector_whole(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    sent = bytes.fromhex(case["sent"]) if case.get("sent") else None
    chunks = split_stream(data, sent=sent)
    assert shape(chunks) == [(e["kind"], e["offset"], e["length"]) for e in case["expect"]]
    for chunk, exp in zip(chunks, case["expect"], strict=True):
        codes = {f.code for f in chunk.findings}
        assert set(exp.get("codes", [])) <= codes, (exp, codes)
        if "shared_flag" in exp:
            assert chunk.fields.get("shared_flag") is exp["shared_flag"]
        if "missing" in exp:
            assert chunk.fields["missing"] == exp["missing"]
            truncated = [f for f in chunk.findings if f.code == "stream.truncated"]
            assert f"{exp['missing']} missing" in truncated[0].message
    assert_tiles(chunks, data)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector_byte_by_byte_and_in_pieces(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    sent = bytes.fromhex(case["sent"]) if case.get("sent") else None
    whole = split_stream(data, sent=sent)
    assert same(feed_in_pieces(data, sent=sent), whole)
    assert same(feed_in_pieces(data, [3, 1, 7], sent=sent), whole)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector_with_trailing_garbage(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    sent = bytes.fromhex(case["sent"]) if case.get("sent") else None
    tail = b"\x91\x92\x93"
    chunks = split_stream(data + tail, sent=sent)
    assert_tiles(chunks, data + tail)
    assert chunks[-1].data.endswith(tail)
    # Complete frames before the garbage are found unchanged.
    before = [c for c in split_stream(data, sent=sent) if c.kind in (FrameKind.HDLC,)]
    after = [c for c in chunks if c.kind is FrameKind.HDLC]
    assert same(before, after)


@pytest.mark.parametrize(
    "case", SER2NET["cases"], ids=[c["text"].strip() for c in SER2NET["cases"]]
)
def test_ser2net_messages(case: dict[str, Any]) -> None:
    data = case["text"].encode()
    (chunk,) = split_stream(data)
    assert chunk.kind is FrameKind.BRIDGE_MESSAGE
    assert chunk.data == data  # the line ending (either order) belongs to the message
    (finding,) = chunk.findings
    assert finding.code == case["code"]
    assert finding.severity is Severity.ERROR
    if "detail" in case:
        assert chunk.fields["detail"] == case["detail"]


def test_busy_message_says_what_it_means_and_what_to_do() -> None:
    (chunk,) = split_stream(b"Port already in use\r\n")
    message = chunk.findings[0].message
    assert "another client" in message and "poller" in message
    assert "tearing down" in message and "retry" in message.lower()


def test_bridge_message_after_garbage_and_before_frame() -> None:
    data = b"\x00\x9f" + b"Port already in use\r\n" + SNRM
    chunks = split_stream(data)
    assert [c.kind for c in chunks] == [
        FrameKind.GARBAGE, FrameKind.BRIDGE_MESSAGE, FrameKind.HDLC,
    ]  # fmt: skip


# --------------------------------------------------------------------------- behaviour


def test_gurux_frames_are_found_in_one_stream() -> None:
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import InterfaceType

    client = GXDLMSClient(True, 16, 1)
    client.interfaceType = InterfaceType.HDLC
    snrm = bytes(client.snrmRequest())
    disc = bytes(client.disconnectRequest(True))  # force: not associated
    data = b"\xee" + snrm + disc[1:] + snrm
    chunks = split_stream(data)
    assert shape(chunks) == [
        ("garbage", 0, 1),
        ("hdlc", 1, len(snrm)),
        ("hdlc", len(snrm), len(disc)),
        ("hdlc", len(snrm) + len(disc), len(snrm)),
    ]
    assert all(c.valid for c in chunks[1:])
    assert chunks[2].fields["shared_flag"] is True
    assert chunks[2].fields["frame_type"] == "DISC"


def test_partial_frame_held_until_close_then_partial() -> None:
    splitter = StreamSplitter()
    assert splitter.feed(SNRM[:5]) == []
    assert splitter.pending == 5
    (partial,) = splitter.close()
    assert partial.kind is FrameKind.PARTIAL
    assert partial.fields["missing"] == 4
    assert splitter.feed(b"more") == []  # closed


def test_frames_come_out_as_soon_as_complete() -> None:
    splitter = StreamSplitter()
    assert splitter.feed(SNRM[:-1]) == []
    (frame,) = splitter.feed(SNRM[-1:] + DISC[:3])
    assert frame.kind is FrameKind.HDLC and frame.offset == 0
    (disc,) = splitter.feed(DISC[3:])
    assert disc.offset == len(SNRM)  # offsets absolute in the whole stream
    assert all(s.offset >= disc.offset for s in disc.spans)


def test_expect_echo_mid_stream() -> None:
    splitter = StreamSplitter()
    assert len(splitter.feed(SNRM)) == 1
    splitter.expect_echo(DISC)
    out = splitter.feed(DISC) + splitter.feed(SNRM) + splitter.close()
    assert [c.kind for c in out] == [FrameKind.ECHO, FrameKind.HDLC]
    assert out[0].offset == len(SNRM)


def test_bridge_message_reported_before_the_socket_closes() -> None:
    splitter = StreamSplitter()
    assert splitter.feed(b"Port already in use\r") == []  # "\r\n" or "\n\r": wait for it
    (busy,) = splitter.feed(b"\n")
    assert busy.kind is FrameKind.BRIDGE_MESSAGE and busy.offset == 0
    assert splitter.close() == []


def test_text_then_bridge_message_reported_early_and_offsets_kept() -> None:
    splitter = StreamSplitter()
    out = splitter.feed(SNRM + b"ser2net port 4001\r\nPort's device already in use\r\n")
    assert [c.kind for c in out] == [FrameKind.HDLC, FrameKind.TEXT, FrameKind.BRIDGE_MESSAGE]
    assert out[2].offset == len(SNRM) + 19
    assert out[2].findings[0].offset == out[2].offset


def test_telnet_reported_once_two_more_bytes_show_it_ended() -> None:
    splitter = StreamSplitter()
    assert splitter.feed(b"\xff\xfb\x01\xff\xfb\x03") == []
    (telnet,) = splitter.feed(b"ab")
    assert telnet.kind is FrameKind.TELNET
    assert [c.kind for c in splitter.close()] == [FrameKind.GARBAGE]


def test_one_negotiation_alone_before_a_frame_is_telnet_inside_noise_it_is_not() -> None:
    alone = split_stream(b"\xff\xfd\x2c" + SNRM)
    assert [c.kind for c in alone] == [FrameKind.TELNET, FrameKind.HDLC]
    noisy = split_stream(b"\x91\x13\xff\xfd\x2c\x88" + SNRM)
    assert [c.kind for c in noisy] == [FrameKind.GARBAGE, FrameKind.HDLC]


def test_no_echo_when_reply_only_shares_the_flag_and_format() -> None:
    ua_start = bytes.fromhex("7EA01E2103")
    chunks = split_stream(ua_start, sent=SNRM)
    assert chunks[0].kind is FrameKind.PARTIAL


def test_frame_start_noise_is_not_a_partial_when_a_frame_follows() -> None:
    # 7E A5 FF claims 0x5FF bytes; the real SNRM inside that range proves it was noise.
    data = bytes.fromhex("7EA5FF") + SNRM
    chunks = split_stream(data)
    assert [c.kind for c in chunks] == [FrameKind.GARBAGE, FrameKind.HDLC]


def test_gap_longer_than_64k_is_cut_in_pieces_both_ways() -> None:
    data = b"\x91" * 70000
    whole = split_stream(data)
    assert [len(c.data) for c in whole] == [65536, 70000 - 65536]
    assert same(feed_in_pieces(data, [4096]), whole)


def test_one_megabyte_of_noise_is_linear() -> None:
    data = random.Random(7).randbytes(1 << 20)
    start = time.perf_counter()
    chunks = split_stream(data)
    elapsed = time.perf_counter() - start
    assert_tiles(chunks, data)
    assert elapsed < 5.0, elapsed


@pytest.mark.slow
def test_one_megabyte_fed_in_small_reads_matches_whole() -> None:
    data = random.Random(8).randbytes(1 << 20)
    assert same(feed_in_pieces(data, [1, 17, 256]), split_stream(data))


# --------------------------------------------------------------------------- properties

_PIECES = [
    SNRM, SNRM[1:], DISC, DISC[:4], b"\x7e", b"\x7e\xa0", b"\x00", b"\x00\x01",
    bytes.fromhex("0001001000010003C00101"), b"Port already in use\r\n", b"\xff\xfb\x01",
    b"\xff\xfa\x2c\x01", b"/ISK5\\2MT382\r\n", b"\x06050\r\n", b"\x02a(1)\r\n!\r\n\x03", b"abc",
]  # fmt: skip
streams = st.lists(st.one_of(st.sampled_from(_PIECES), st.binary(max_size=12)), max_size=10).map(
    b"".join
)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600))
def test_never_raises_and_tiles_on_random_bytes(data: bytes) -> None:
    chunks = split_stream(data)
    assert_tiles(chunks, data)


@settings(max_examples=300, deadline=None)
@given(data=streams, sent=st.one_of(st.none(), st.just(SNRM), st.binary(min_size=1, max_size=6)))
def test_streaming_equals_whole(data: bytes, sent: bytes | None) -> None:
    whole = split_stream(data, sent=sent)
    assert_tiles(whole, data)
    assert same(feed_in_pieces(data, sent=sent), whole)
    assert same(feed_in_pieces(data, [2, 5], sent=sent), whole)


@settings(max_examples=100, deadline=None)
@given(data=streams, cut=st.integers(min_value=0, max_value=200))
def test_streaming_equals_whole_with_random_cuts(data: bytes, cut: int) -> None:
    splitter = StreamSplitter()
    out = splitter.feed(data[:cut]) + splitter.feed(data[cut:]) + splitter.close()
    assert same(out, split_stream(data))


# --------------------------------------------------------------------------- real sockets


async def _read_through_splitter(payload: list[bytes]) -> list[DecodedFrame]:
    """Serve ``payload`` segments on loopback (then close, as ser2net does after its message)
    and cut what a client reads in small reads."""
    import asyncio

    async def serve(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for segment in payload:
            writer.write(segment)
            await writer.drain()
            await asyncio.sleep(0)  # separate TCP segments where the stack allows
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    splitter = StreamSplitter(direction="rx")
    out: list[DecodedFrame] = []
    while data := await reader.read(7):
        out += splitter.feed(data)
    out += splitter.close()
    writer.close()
    server.close()
    await server.wait_closed()
    return out


async def test_ser2net_busy_over_a_real_socket() -> None:
    out = await _read_through_splitter([b"Port already in use\r\n"])
    assert [c.kind for c in out] == [FrameKind.BRIDGE_MESSAGE]
    assert out[0].findings[0].code == "stream.bridge.busy"


async def test_frames_over_a_real_socket_match_whole() -> None:
    ua = bytes.fromhex("7EA01E210373C37A818012050180060180070400000001080400000001533B7E")
    payload = [b"\xff\xfb\x01\xff\xfb\x03", ua[:5], ua[5:], SNRM + DISC[1:], b"tail\r\n", ua[:9]]
    out = await _read_through_splitter(payload)
    assert same(out, split_stream(b"".join(payload), direction="rx"))
    assert [c.kind for c in out] == [
        FrameKind.TELNET, FrameKind.HDLC, FrameKind.HDLC, FrameKind.HDLC, FrameKind.TEXT,
        FrameKind.PARTIAL,
    ]  # fmt: skip


# A reply may start with the very bytes of the request it answers. Wrapper, client 1 talking to
# logical device 1: request and reply share the 6-byte header (version, wPorts 1 -> 1), and the
# high byte of the length too when both are short (the 7th byte). The AARQ is byte for byte
# what gurux-dlms 1.0.203 sends (client 1, server 1, LLS "00000000", wrapper). HDLC, client 1
# and a 1-byte server
# address 1: DISC 7E A0 07 03 03 53 .. and its UA 7E A0 07 03 03 73 .. share 5 bytes.
AARQ_LLS_1_TO_1 = bytes.fromhex(
    "00010001000100386036A1090607608574050801018A0207808B0760857405080201AC0A80083030303030303030"
    "BE10040E01000000065F1F0400401E5DFFFF"
)
AARE_1_TO_1 = bytes.fromhex(
    "000100010001002B6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F04000010"
    "1D00EF0007"
)
DISC_1_TO_1 = bytes.fromhex("7EA00703035380D77E")
UA_1_TO_1 = bytes.fromhex("7EA00703037382F67E")


@pytest.mark.parametrize(
    "sent, reply, kind",
    [
        (AARQ_LLS_1_TO_1, AARE_1_TO_1, FrameKind.WRAPPER),
        (DISC_1_TO_1, UA_1_TO_1, FrameKind.HDLC),
    ],
    ids=["wrapper-aare", "hdlc-ua"],
)
def test_a_reply_sharing_the_request_header_is_a_frame_not_a_partial_echo(
    sent: bytes, reply: bytes, kind: FrameKind
) -> None:
    assert next(i for i in range(len(sent)) if sent[i] != reply[i]) >= 4  # the shared prefix
    (whole,) = split_stream(reply, sent=sent)
    assert whole.kind is kind and whole.data == reply and not any(
        f.severity is Severity.ERROR for f in whole.findings
    )
    # a socket's splitter, told what was sent, byte by byte: the same single frame
    splitter = StreamSplitter(direction="rx")
    splitter.expect_echo(sent)
    out: list[DecodedFrame] = []
    for i in range(len(reply)):
        out += splitter.feed(reply[i : i + 1])
    out += splitter.close()
    assert [(c.kind, c.data) for c in out] == [(kind, reply)]


def test_a_whole_echo_before_a_reply_sharing_its_header_is_still_an_echo() -> None:
    out = split_stream(AARQ_LLS_1_TO_1 + AARE_1_TO_1, sent=AARQ_LLS_1_TO_1)
    assert [c.kind for c in out] == [FrameKind.ECHO, FrameKind.WRAPPER]
    assert out[1].data == AARE_1_TO_1


def test_a_partial_echo_that_is_no_valid_frame_stays_an_echo() -> None:
    # the first 6 bytes of our DISC come back, then noise: no frame there, an echo it is
    out = split_stream(DISC_1_TO_1[:6] + b"\x91\x92", sent=DISC_1_TO_1)
    assert out[0].kind is FrameKind.ECHO and out[0].fields["echo_length"] == 6


# --------------------------------------------------------------------------- the short cut


@settings(max_examples=1000, deadline=None)
@given(
    frame=st.sampled_from([SNRM, DISC, bytes.fromhex("7EA0160502211E6EE0E6E700C401C1000600000000"
                                                     "7D187E")]),
    flips=st.lists(st.integers(min_value=0, max_value=23 * 8), max_size=2),
    sent=st.one_of(st.none(), st.just(SNRM), st.binary(min_size=1, max_size=6)),
    lazy=st.booleans(),
)  # fmt: skip
def test_one_frame_short_cut_gives_what_the_scan_gives(
    frame: bytes, flips: list[int], sent: bytes | None, lazy: bool
) -> None:
    from dlmsdoctor.codec import stream

    data = bytearray(frame)
    for bit in flips:
        data[bit // 8 % len(data)] ^= 1 << (bit % 8)
    short = split_stream(bytes(data), sent=sent, lazy_spans=lazy)
    st_ = stream._State(0, echo_at=0 if sent else None, lazy=lazy)
    scanned = stream._scan(bytes(data), st_, True, sent, None)
    assert same(short, scanned)
