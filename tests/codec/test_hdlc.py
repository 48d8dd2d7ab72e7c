"""HDLC codec: vectors both ways, whole / with trailing garbage / byte by byte, lint, properties."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec.crc import crc16_x25, crc_bytes
from dlmsdoctor.codec.hdlc import (
    FRMR_INFO_TOO_LONG,
    HdlcParams,
    Reassembler,
    ServerAddress,
    build_disc,
    build_dm,
    build_frame,
    build_frmr,
    build_i,
    build_rnr,
    build_rr,
    build_snrm,
    build_ua,
    build_ui,
    decode_address,
    encode_client_address,
    encode_server_address,
    frame_extent,
    parse_hdlc,
    parse_params,
    repair_hdlc,
)
from dlmsdoctor.codec.hdlc import (
    crc16_x25 as fast_crc,
)
from dlmsdoctor.codec.model import DecodedFrame, FrameKind, Span, hexs

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
VALID: list[dict[str, Any]] = json.loads((VECTORS / "hdlc_valid.json").read_text())["vectors"]
MALFORMED: list[dict[str, Any]] = json.loads((VECTORS / "hdlc_malformed.json").read_text())[
    "vectors"
]
GARBAGE = bytes.fromhex("7E A0 FF 00 12 7E 7E 50 6F 72 74")


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def _check_spans(frame: DecodedFrame, buf: bytes) -> None:
    """Spans lie inside the buffer, top-level ones in wire order without overlap, children
    inside their parent and in non-decreasing order."""

    def check(spans: tuple[Span, ...], lo: int, hi: int, disjoint: bool) -> None:
        prev_end = lo
        prev_off = lo
        for span in spans:
            assert span.offset >= 0 and span.length >= 0
            assert lo <= span.offset and span.end <= hi, (span, lo, hi)
            if disjoint:
                assert span.offset >= prev_end, (span, prev_end)
            assert span.offset >= prev_off
            prev_end, prev_off = span.end, span.offset
            check(span.children, span.offset, span.end, False)

    check(frame.spans, 0, len(buf), True)
    for finding in frame.findings:
        assert 0 <= finding.offset <= len(buf)


def _server(spec: list[Any]) -> ServerAddress:
    return ServerAddress(spec[0], spec[1], spec[2])


def _build(spec: dict[str, Any]) -> bytes:
    fn = spec["fn"]
    server, sap = _server(spec["server"]), spec["client_sap"]
    if fn == "build_snrm":
        params = HdlcParams(*spec["params"]) if "params" in spec else None
        return build_snrm(server, sap, params, omit_defaults=spec.get("omit_defaults", True))
    if fn == "build_ua":
        return build_ua(server, sap, HdlcParams(*spec["params"]) if "params" in spec else None)
    if fn == "build_disc":
        return build_disc(server, sap)
    if fn == "build_dm":
        return build_dm(server, sap)
    if fn == "build_rr":
        return build_rr(server, sap, to_server=spec["to_server"], nr=spec["nr"])
    if fn == "build_rnr":
        return build_rnr(server, sap, to_server=spec["to_server"], nr=spec["nr"])
    if fn == "build_frmr":
        return build_frmr(server, sap, spec["rejected_control"], spec["reasons"])
    if fn == "build_i":
        return build_i(server, sap, to_server=spec["to_server"], ns=spec["ns"], nr=spec["nr"],
                       info=_bytes(spec["info"]))
    raise AssertionError(fn)


def _check_expect(frame: DecodedFrame, expect: dict[str, Any]) -> None:
    fields = frame.fields
    for key in ("frame_type", "ns", "nr", "params", "llc", "poll_final", "segmented"):
        if key in expect:
            assert fields.get(key) == expect[key], key
    for key in ("dest", "src"):
        if key in expect:
            got = fields[key]
            assert isinstance(got, dict)
            assert {k: got[k] for k in expect[key]} == expect[key], key
    if "apdu" in expect:
        assert frame.apdu is not None and hexs(frame.apdu) == expect["apdu"]
    assert sorted(f.code for f in frame.findings) == sorted(expect["findings"])


# --------------------------------------------------------------------------- valid vectors


@pytest.mark.parametrize("vec", VALID, ids=[v["name"] for v in VALID])
def test_valid_vector_whole(vec: dict[str, Any]) -> None:
    data = _bytes(vec["hex"])
    frame = parse_hdlc(data, direction=vec.get("direction"))
    assert frame.kind is FrameKind.HDLC
    assert frame.data == data and frame.end == len(data)
    assert frame.valid
    _check_expect(frame, vec["expect"])
    _check_spans(frame, data)
    assert frame_extent(data, 0) == len(data)
    assert repair_hdlc(data) == data


def _same_frame(a: DecodedFrame, b: DecodedFrame) -> None:
    for name in ("kind", "offset", "data", "summary", "spans", "findings", "fields", "apdu"):
        assert getattr(a, name) == getattr(b, name), name


@pytest.mark.parametrize("vec", VALID + MALFORMED, ids=[v["name"] for v in VALID + MALFORMED])
def test_lazy_spans_equal_eager_spans(vec: dict[str, Any]) -> None:
    buf = b"\x00" + _bytes(vec["hex"]) + GARBAGE
    lazy = parse_hdlc(buf, 1)
    eager = parse_hdlc(buf, 1, lazy_spans=False)
    assert type(eager) is DecodedFrame
    _same_frame(lazy, eager)
    assert lazy.spans is lazy.spans  # decoded once, then kept
    replaced = dataclasses.replace(lazy, summary="x")
    assert replaced.spans == eager.spans and replaced.summary == "x"


@pytest.mark.parametrize("vec", VALID, ids=[v["name"] for v in VALID])
def test_valid_vector_builds_back(vec: dict[str, Any]) -> None:
    data = _bytes(vec["hex"])
    frame = parse_hdlc(data)
    by_name = {s.name: s for s in frame.spans}
    info = b""
    if "info_offset" in frame.fields:
        off, length = frame.fields["info_offset"], frame.fields["info_length"]
        assert isinstance(off, int) and isinstance(length, int)
        info = data[off : off + length]
    rebuilt = build_frame(
        dest=data[by_name["hdlc.address.dest"].offset : by_name["hdlc.address.dest"].end],
        src=data[by_name["hdlc.address.src"].offset : by_name["hdlc.address.src"].end],
        control=data[by_name["hdlc.control"].offset],
        info=info,
        segmented=bool(frame.fields["segmented"]),
    )
    assert rebuilt == data
    if "build" in vec:
        assert hexs(_build(vec["build"])) == hexs(data)


@pytest.mark.parametrize("vec", VALID, ids=[v["name"] for v in VALID])
def test_valid_vector_with_prefix_and_trailing_garbage(vec: dict[str, Any]) -> None:
    data = _bytes(vec["hex"])
    prefix = b"\x00\x11junk"
    buf = prefix + data + GARBAGE
    whole = parse_hdlc(data)
    frame = parse_hdlc(buf, len(prefix))
    assert frame.kind is FrameKind.HDLC
    assert frame.offset == len(prefix) and frame.end == len(prefix) + len(data)
    assert frame.data == data
    assert frame.summary == whole.summary
    assert frame.fields.get("frame_type") == whole.fields.get("frame_type")
    assert [(s.name, s.offset - len(prefix)) for s in frame.spans] == [
        (s.name, s.offset) for s in whole.spans
    ]
    assert [f.code for f in frame.findings] == [f.code for f in whole.findings]
    _check_spans(frame, buf)
    assert frame_extent(buf, len(prefix)) == len(prefix) + len(data)


@pytest.mark.parametrize("vec", VALID, ids=[v["name"] for v in VALID])
def test_valid_vector_byte_by_byte(vec: dict[str, Any]) -> None:
    data = _bytes(vec["hex"])
    for cut in range(len(data)):
        assert frame_extent(data[:cut], 0) is None, cut
        partial = parse_hdlc(data[:cut])
        assert partial.kind is FrameKind.PARTIAL, cut
        _check_spans(partial, data[:cut])
    assert frame_extent(data, 0) == len(data)


def test_segmented_push_reassembles() -> None:
    """The three ISKRA AM550 UI segments (Tasmota #8790) join into one 340-byte APDU."""
    segments = [_bytes(v["hex"]) for v in VALID if v["name"].startswith("ui_segment_iskra")]
    stream = b"".join(segments)
    reassembler = Reassembler()
    offset, apdus = 0, []
    while offset < len(stream):
        frame = parse_hdlc(stream, offset)
        assert frame.kind is FrameKind.HDLC
        out = reassembler.feed(frame)
        if out is not None:
            apdus.append(out)
        offset = frame.end
    assert len(apdus) == 1
    apdu = apdus[0]
    # data-notification 0F, long-invoke-id 00 04 02 2C; the last segment's tail closes it.
    assert apdu[:5] == bytes.fromhex("0F0004022C")
    assert len(apdu) == 151 + 154 + 35
    assert apdu.endswith(bytes.fromhex("0BDE02020F00161E"))
    assert not reassembler.findings and not reassembler.pending


def test_reassembler_i_frames_and_sequence_finding() -> None:
    server = ServerAddress(1, 17, 2)
    apdu = bytes(range(256)) * 2
    chunks = [apdu[:100], apdu[100:300], apdu[300:]]
    frames = [
        build_i(server, 16, to_server=False, ns=i, nr=1, info=chunk,
                segmented=i < 2, llc=i == 0)
        for i, chunk in enumerate(chunks)
    ]
    reassembler = Reassembler()
    results = [reassembler.feed(parse_hdlc(f)) for f in frames]
    assert results[:2] == [None, None] and results[2] == apdu
    assert not reassembler.findings
    # Out of order: N(S) 0 then 2.
    reassembler = Reassembler()
    reassembler.feed(parse_hdlc(frames[0]))
    assert reassembler.feed(parse_hdlc(frames[2])) is not None
    assert [f.code for f in reassembler.findings] == ["hdlc.segment.sequence"]
    assert reassembler.findings[0].expected == "1" and reassembler.findings[0].found == "2"


# --------------------------------------------------------------------------- malformed vectors


@pytest.mark.parametrize("vec", MALFORMED, ids=[v["name"] for v in MALFORMED])
def test_malformed_vector(vec: dict[str, Any]) -> None:
    data = _bytes(vec["hex"])
    frame = parse_hdlc(data)
    assert frame.kind.value == vec["kind"]
    _check_spans(frame, data)
    got = {(f.code, f.offset): f for f in frame.findings}
    assert sorted(got) == sorted((f["code"], f["offset"]) for f in vec["findings"])
    for want in vec["findings"]:
        finding = got[(want["code"], want["offset"])]
        for key in ("corrected", "expected", "found"):
            if key in want:
                assert getattr(finding, key) == want[key], key
    if "repaired" in vec:
        repaired = repair_hdlc(data)
        assert hexs(repaired) == vec["repaired"]
        again = parse_hdlc(repaired)
        assert again.valid and not any(f.code.startswith("hdlc.params") for f in again.findings)


def test_seed_frame_lint_details() -> None:
    """The poller frame from the seed report: only the group length is wrong."""
    vec = next(v for v in MALFORMED if v["name"] == "seed_snrm_group_length")
    frame = parse_hdlc(_bytes(vec["hex"]))
    assert frame.summary.startswith("SNRM client 16 -> server 1/1 (2-byte) P")
    (finding,) = frame.findings
    assert finding.code == "hdlc.params.group_length"
    assert (finding.expected, finding.found, finding.corrected) == ("14", "12", "14")
    names = [s.name for s in frame.spans]
    assert names == ["hdlc.flag.start", "hdlc.format", "hdlc.address.dest", "hdlc.address.src",
                     "hdlc.control", "hdlc.hcs", "hdlc.info", "hdlc.fcs", "hdlc.flag.end"]
    info = frame.spans[6]
    assert [c.name for c in info.children] == [
        "hdlc.params.format_id", "hdlc.params.group_id", "hdlc.params.group_length",
        "hdlc.params.max_info_tx", "hdlc.params.max_info_rx", "hdlc.params.window_tx",
        "hdlc.params.window_rx"]
    assert frame.fields["params"] == {"max_info_tx": 128, "max_info_rx": 128, "window_tx": 1,
                                      "window_rx": 1, "defaults_used": []}


def test_fcs_and_hcs_corrections_are_right() -> None:
    good = build_i(ServerAddress(1, 17, 2), 16, to_server=True, ns=2, nr=3, info=b"\xc0\x01")
    bad = bytearray(good)
    bad[-3] ^= 0x55
    finding = next(f for f in parse_hdlc(bytes(bad)).findings if f.code == "hdlc.fcs.mismatch")
    assert finding.corrected == hexs(good[-3:-1])
    assert finding.offset == len(good) - 3


def test_length_mismatch_when_closing_flag_arrives_early() -> None:
    """Length field too small: the real end is found by a flag preceded by a right FCS."""
    body = bytes.fromhex("A0060321 93")  # says 6, the frame has 7
    frame = body + crc_bytes(body)
    data = b"\x7e" + frame + b"\x7e"
    decoded = parse_hdlc(data)
    codes = {f.code: f for f in decoded.findings}
    assert codes["hdlc.length.mismatch"].corrected == "A007"
    assert decoded.end == len(data)
    assert decoded.fields["frame_type"] == "SNRM"


# --------------------------------------------------------------------------- direction, names


def test_direction_given_overrides_inference() -> None:
    rr = build_rr(ServerAddress(1), 16, to_server=False, nr=2)
    # 1-byte both ends: inferred as client -> server unless told.
    assumed = parse_hdlc(rr)
    assert assumed.fields["direction"] == "tx"
    assert any(f.code == "hdlc.direction.assumed" for f in assumed.findings)
    told = parse_hdlc(rr, direction="rx")
    assert told.fields["direction"] == "rx"
    assert told.fields["src"] == {"role": "server", "size": 1, "logical": 1, "physical": None,
                                  "sap": None, "raw": "03"}
    assert not told.findings
    assert told.summary == "RR N(R)=2 server 1 (1-byte) -> client 16 F"


def test_direction_from_llc_and_sizes() -> None:
    s1 = ServerAddress(1)
    assert parse_hdlc(build_ui(s1, 16, to_server=False, info=b"\x0f")).fields["direction"] == "rx"
    assert parse_hdlc(build_i(s1, 16, to_server=True, ns=0, nr=0, info=b"\xc0")).fields[
        "direction"] == "tx"
    rnr = build_rnr(ServerAddress(1, 5, 2), 16, to_server=False, nr=0)
    assert parse_hdlc(rnr).fields["direction"] == "rx"


def test_meanings_name_broadcast_and_clients() -> None:
    frame = parse_hdlc(build_snrm(ServerAddress(0x7F, 0x7F, 2), 0x10))
    dest = next(s for s in frame.spans if s.name == "hdlc.address.dest")
    assert "broadcast" in dest.meaning
    src = next(s for s in frame.spans if s.name == "hdlc.address.src")
    assert "public client" in src.meaning
    frame = parse_hdlc(build_snrm(ServerAddress(1), 0x20))
    src = next(s for s in frame.spans if s.name == "hdlc.address.src")
    assert "commonly" in src.meaning


def test_control_children_say_the_sequence_numbers() -> None:
    s = ServerAddress(1, 1, 2)
    i = parse_hdlc(build_i(s, 16, to_server=True, ns=3, nr=5, info=b"\xc0"))
    ctrl = next(sp for sp in i.spans if sp.name == "hdlc.control")
    kids = {c.name: c.meaning for c in ctrl.children}
    assert kids["hdlc.control.ns"] == "send sequence number 3"
    assert kids["hdlc.control.nr"] == "receive sequence number 5"
    rr = parse_hdlc(build_rr(s, 16, to_server=False, nr=6))
    ctrl = next(sp for sp in rr.spans if sp.name == "hdlc.control")
    assert [c.meaning for c in ctrl.children if c.name.startswith("hdlc.control.n")] == [
        "receive sequence number 6"
    ]


def test_summaries() -> None:
    s = ServerAddress(1, 1, 2)
    ua = parse_hdlc(build_ua(s, 16, HdlcParams()))
    assert ua.summary == "UA server 1/1 (2-byte) -> client 16 F, max info 128/128 window 1/1"
    i = parse_hdlc(build_i(s, 16, to_server=True, ns=0, nr=0, info=bytes(35)))
    assert i.summary == "I N(S)=0 N(R)=0 client 16 -> server 1/1 (2-byte) P, 35 bytes APDU"
    frmr = parse_hdlc(build_frmr(s, 16, 0x10, FRMR_INFO_TOO_LONG))
    assert "rejected I" in frmr.summary and "Y:" in frmr.summary
    assert parse_hdlc(build_dm(s, 16)).summary == "DM server 1/1 (2-byte) -> client 16 F"


# --------------------------------------------------------------------------- params, addresses


def test_params_encoding() -> None:
    assert HdlcParams().encode(omit_defaults=True) == b""
    assert HdlcParams().encode() == bytes.fromhex("818012" "050180" "060180"
                                                  "070400000001" "080400000001")
    assert HdlcParams(max_info_rx=1024).encode(omit_defaults=True) == bytes.fromhex(
        "818004" "06020400")
    assert HdlcParams(window_tx=7).encode(window_bytes=1) == bytes.fromhex(
        "81800C" "050180" "060180" "070107" "080101")
    assert parse_params(HdlcParams(200, 1024, 7, 1).encode()) == HdlcParams(200, 1024, 7, 1)
    assert parse_params(b"\x81\x81\x00") is None


def test_address_encoding() -> None:
    assert encode_server_address(ServerAddress(1)) == b"\x03"
    assert encode_server_address(ServerAddress(1, 17, 2)) == b"\x02\x23"
    assert encode_server_address(ServerAddress(1, 1234, 4)) == bytes.fromhex("000212A5")
    assert encode_client_address(16) == b"\x21"
    for bad in (ServerAddress(1, 1, 1), ServerAddress(1, 200, 2), ServerAddress(1, 1, 3),
                ServerAddress(0x4000, 1, 4)):
        with pytest.raises(ValueError):
            encode_server_address(bad)
    with pytest.raises(ValueError):
        encode_client_address(128)
    with pytest.raises(ValueError):
        build_frame(dest=b"\x03", src=b"\x21", control=0x13, info=bytes(2100))


def test_frame_extent_rejects_non_hdlc_headers() -> None:
    assert frame_extent(b"\x7e", 0) is None
    assert frame_extent(b"\x7e\x7e\xa0\x07", 0) is None
    assert frame_extent(b"\x7e\xa0\x03\x00\x00\x00", 0) is None
    assert frame_extent(b"Port already in use", 0) is None


def test_decoders_accept_bytearray_and_memoryview() -> None:
    data = build_disc(ServerAddress(1), 16)
    a, b = parse_hdlc(bytearray(data)), parse_hdlc(memoryview(data))
    assert a.summary == b.summary == parse_hdlc(data).summary
    assert frame_extent(memoryview(data)) == len(data)


def test_empty_and_out_of_range() -> None:
    for buf, offset in ((b"", 0), (b"\x7e", 5), (b"\x7e", -1)):
        frame = parse_hdlc(buf, offset)
        assert frame.kind is FrameKind.PARTIAL
        assert frame.findings[0].code == "hdlc.empty"


# --------------------------------------------------------------------------- properties


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80), st.integers(min_value=0, max_value=4))
def test_parse_never_raises_on_arbitrary_bytes(data: bytes, offset: int) -> None:
    frame = parse_hdlc(data, offset)
    assert frame.kind in (FrameKind.HDLC, FrameKind.PARTIAL)
    _check_spans(frame, data)
    _same_frame(frame, parse_hdlc(data, offset, lazy_spans=False))


def test_fast_crc_matches_reference() -> None:
    for size in range(0, 300, 7):
        data = bytes((i * 37 + size) & 0xFF for i in range(size))
        assert fast_crc(data) == crc16_x25(data)
    assert fast_crc(bytes.fromhex("A0070321 93")) == 0x010F


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=60), st.sampled_from([0x10, 0x32, 0x93, 0x73, 0x13, 0x53, 0x1F, 0x97]),
       st.sampled_from([b"\x03", b"\x02\x23", b"\x00\x02\x12\xa5", b"\x02\x02\x03", b"\x02"]))
def test_parse_never_raises_on_near_frames(info: bytes, control: int, dest: bytes) -> None:
    """Frames with right checksums and arbitrary contents, plus every corruption of one byte."""
    frame = build_frame(dest=dest, src=b"\x21", control=control, info=info)
    _check_spans(parse_hdlc(frame), frame)
    for i in range(0, len(frame), 3):
        bad = bytearray(frame)
        bad[i] ^= 0xA5
        decoded = parse_hdlc(bytes(bad))
        _check_spans(decoded, bytes(bad))
        assert frame_extent(bytes(bad)) in (None, *range(len(bad) + 1))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 0x3FFF), st.integers(0, 0x3FFF), st.integers(0, 0x7F), st.booleans(),
    st.integers(0, 7), st.integers(0, 7), st.binary(max_size=200), st.booleans(),
)
def test_build_parse_round_trip(logical: int, physical: int, sap: int, to_server: bool, ns: int,
                                nr: int, apdu: bytes, final: bool) -> None:
    server = ServerAddress(logical, physical, 4)
    frame = build_i(server, sap, to_server=to_server, ns=ns, nr=nr, info=apdu, final=final)
    decoded = parse_hdlc(frame)
    assert decoded.valid and decoded.kind is FrameKind.HDLC
    assert decoded.fields["direction"] == ("tx" if to_server else "rx")
    assert (decoded.fields["ns"], decoded.fields["nr"]) == (ns, nr)
    assert decoded.fields["poll_final"] is final
    srv = decoded.fields["dest" if to_server else "src"]
    assert isinstance(srv, dict)
    assert (srv["logical"], srv["physical"], srv["size"]) == (logical, physical, 4)
    cli = decoded.fields["src" if to_server else "dest"]
    assert isinstance(cli, dict) and cli["sap"] == sap
    assert decoded.apdu == (apdu if apdu else None)


def test_decode_address() -> None:
    info, length, findings = decode_address(bytes.fromhex("7E000212A521"), 1, "server")
    assert (length, findings) == (4, [])
    assert info is not None and (info["logical"], info["physical"]) == (1, 1234)
    info, length, findings = decode_address(b"\x21", 0, "client")
    assert info is not None and info["sap"] == 16 and length == 1
    _, length, findings = decode_address(b"\x02\x02\x03", 0, "server")
    assert length == 3 and [f.code for f in findings] == ["hdlc.address.size3"]
    info, length, findings = decode_address(b"\x02\x02\x02\x02\x02", 0, "server")
    assert info is None and length == 0 and findings[0].code == "hdlc.address.unterminated"
    assert decode_address(b"", 3, "client")[0] is None


def test_fast_span_constructor_builds_ordinary_spans() -> None:
    from dlmsdoctor.codec.hdlc import _span

    child = Span(1, 1, "c", "C")
    for args in ((0, 2, "n", "N"), (3, 4, "n", "N", 5, "m", (child,))):
        fast, slow = _span(*args), Span(*args)
        assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
        assert fast.secret is False and fast.walk() == slow.walk()
    # The A-XDR decoder builds its spans (secret ones too) with the same constructor.
    from dlmsdoctor.codec.fast_span import fast_span

    args = (3, 4, "n", "N", "********", "********", (child,), True)
    fast, slow = fast_span(*args), Span(*args)
    assert fast == slow and hash(fast) == hash(slow) and fast.secret is True


def test_reassembler_drops_an_unfinished_apdu() -> None:
    server = ServerAddress(1)
    first = build_i(server, 16, to_server=False, ns=0, nr=0, info=b"\xc4\x02" + bytes(50),
                    segmented=True)
    fresh = build_i(server, 16, to_server=False, ns=1, nr=0, info=b"\xc4\x01\xc1\x00\x09\x00")
    reassembler = Reassembler()
    assert reassembler.feed(parse_hdlc(first)) is None and reassembler.pending
    assert reassembler.feed(parse_hdlc(fresh)) == b"\xc4\x01\xc1\x00\x09\x00"
    assert [f.code for f in reassembler.findings] == ["hdlc.segment.incomplete"]


def test_frame_extent_needs_the_opening_flag() -> None:
    frame = build_disc(ServerAddress(1), 16)
    assert frame_extent(b"\x00" + frame, 0) is None
    assert frame_extent(b"\x00" + frame, 1) == len(frame) + 1
    assert frame_extent(frame, -1) is None
