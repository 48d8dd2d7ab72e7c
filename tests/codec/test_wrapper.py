"""Wrapper codec (IEC 62056-47): vectors both ways, garbage, byte by byte, lint, properties."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec.model import DecodedFrame, FrameKind, hexs
from dlmsdoctor.codec.wrapper import build_wrapper, parse_wrapper, wrapper_extent

DATA = json.loads((Path(__file__).resolve().parent.parent / "vectors" / "wrapper.json").read_text())
VALID: list[dict[str, Any]] = DATA["valid"]
MALFORMED: list[dict[str, Any]] = DATA["malformed"]


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def _check_spans(frame: DecodedFrame, buf: bytes) -> None:
    prev_end = 0
    for span in frame.spans:
        assert span.offset >= prev_end and span.end <= len(buf)
        prev_end = span.end
    for finding in frame.findings:
        assert 0 <= finding.offset <= len(buf)


@pytest.mark.parametrize("vec", VALID, ids=[v["name"] for v in VALID])
def test_valid_vector(vec: dict[str, Any]) -> None:
    data = _bytes(vec["hex"])
    expect = vec["expect"]
    for prefix, suffix in ((b"", b""), (b"\x7e\x00", b"\x00\x01\x00"), (b"", b"Port already")):
        buf = prefix + data + suffix
        frame = parse_wrapper(buf, len(prefix))
        assert frame.kind is FrameKind.WRAPPER and frame.valid
        assert frame.data == data and frame.end == len(prefix) + len(data)
        assert {k: frame.fields[k] for k in ("src_wport", "dst_wport", "length")} == {
            k: expect[k] for k in ("src_wport", "dst_wport", "length")}
        assert frame.apdu is not None and hexs(frame.apdu) == hexs(_bytes(expect["apdu"]))
        assert [s.name for s in frame.spans] == ["wrapper.version", "wrapper.src_wport",
                                                 "wrapper.dst_wport", "wrapper.length",
                                                 "wrapper.apdu"]
        assert frame.spans[-1].offset == len(prefix) + 8
        assert wrapper_extent(buf, len(prefix)) == len(prefix) + len(data)
        _check_spans(frame, buf)
    assert build_wrapper(expect["src_wport"], expect["dst_wport"], _bytes(expect["apdu"])) == data
    for cut in range(len(data)):
        assert wrapper_extent(data[:cut]) is None
        partial = parse_wrapper(data[:cut])
        assert partial.kind is FrameKind.PARTIAL
        _check_spans(partial, data[:cut])


@pytest.mark.parametrize("vec", MALFORMED, ids=[v["name"] for v in MALFORMED])
def test_malformed_vector(vec: dict[str, Any]) -> None:
    data = _bytes(vec["hex"])
    frame = parse_wrapper(data, end=len(data) if vec.get("end") else None)
    assert frame.kind.value == vec["kind"]
    got = {(f.code, f.offset): f for f in frame.findings}
    assert sorted(got) == sorted((f["code"], f["offset"]) for f in vec["findings"])
    for want in vec["findings"]:
        if "corrected" in want:
            assert got[(want["code"], want["offset"])].corrected == want["corrected"]
    _check_spans(frame, data)


def test_hdlc_bytes_are_called_hdlc() -> None:
    frame = parse_wrapper(_bytes("7E A0 07 03 21 93 0F 01 7E"))
    version = next(f for f in frame.findings if f.code == "wrapper.version")
    assert "HDLC" in version.message and version.found == "7E A0"
    assert "looks like HDLC" in frame.summary
    assert wrapper_extent(_bytes("7E A0 07 03 21 93 0F 01 7E")) is None


def test_build_wrapper_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        build_wrapper(0x10000, 1, b"")
    with pytest.raises(ValueError):
        build_wrapper(1, 1, bytes(0x10000))


def test_zero_length_is_a_warning() -> None:
    frame = parse_wrapper(build_wrapper(16, 1, b""))
    assert frame.kind is FrameKind.WRAPPER and frame.valid
    assert [f.code for f in frame.findings] == ["wrapper.length.zero"]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=40), st.integers(min_value=0, max_value=3),
       st.one_of(st.none(), st.integers(min_value=0, max_value=50)))
def test_parse_never_raises(data: bytes, offset: int, end: int | None) -> None:
    frame = parse_wrapper(data, offset, end)
    assert frame.kind in (FrameKind.WRAPPER, FrameKind.PARTIAL)
    _check_spans(frame, data)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=300))
def test_round_trip(src: int, dst: int, apdu: bytes) -> None:
    pdu = build_wrapper(src, dst, apdu)
    frame = parse_wrapper(pdu)
    assert (frame.fields["src_wport"], frame.fields["dst_wport"]) == (src, dst)
    assert frame.data == pdu and wrapper_extent(pdu) == len(pdu)
    assert frame.apdu == apdu
