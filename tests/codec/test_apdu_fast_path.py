"""decode_apdu's short cut for plain GET requests and responses (lazy spans) gives exactly what
the general path gives: fields (in order), summary, findings, secret flag and, when read, spans."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.codec.axdr import _FIXED


def _same(data: bytes, base: int = 8) -> bool:
    lazy = decode_apdu(data, base, lazy_spans=True)
    full = decode_apdu(data, base)
    assert list(lazy.fields.items()) == list(full.fields.items())
    assert (lazy.summary, lazy.findings, lazy.secret) == (full.summary, full.findings, full.secret)
    assert lazy.spans == full.spans
    return type(lazy) is not type(full)


_OBIS = st.one_of(
    st.binary(min_size=6, max_size=6),
    st.sampled_from([bytes((1, 0, 1, 8, 0, 255)), bytes((0, 0, 42, 0, 0, 255)),
                     bytes((0, 0, 1, 0, 0, 255)), bytes((0, 0, 96, 1, 0, 255))]),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(0, 0xFFFF), _OBIS, st.integers(0, 255),
       st.sampled_from([b"\x00", b"\x01", b"", b"\x00\x00"]))  # fmt: skip
def test_get_request_normal(iid: int, cid: int, obis: bytes, item: int, tail: bytes) -> None:
    _same(bytes((0xC0, 0x01, iid)) + cid.to_bytes(2, "big") + obis + bytes((item,)) + tail)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.sampled_from(sorted(_FIXED)), st.binary(min_size=0, max_size=10),
       st.integers(-1, 1))  # fmt: skip
def test_get_response_normal(iid: int, tag: int, value: bytes, cut: int) -> None:
    size = _FIXED[tag][0]
    body = (value * 8)[: size + cut] if value else bytes(size + cut)
    _same(bytes((0xC4, 0x01, iid, 0x00, tag)) + body)


def test_short_cut_taken_for_a_poll() -> None:
    assert _same(bytes.fromhex("c001c1000301000108 00ff0200".replace(" ", "")))
    assert _same(bytes.fromhex("c401c100060001 9919".replace(" ", "")))
    assert _same(b"\xc4\x01\xc1\x00\x18" + struct.pack(">d", 1e300))
    assert not _same(bytes.fromhex("c401c100090d4c475a31323334353637383930"))  # octet-string
