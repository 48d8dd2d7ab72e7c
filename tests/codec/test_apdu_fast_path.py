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
    # by repr: a float32/float64 of all ones is NaN, and NaN != NaN
    assert repr(list(lazy.fields.items())) == repr(list(full.fields.items()))
    assert (lazy.summary, lazy.findings, lazy.secret) == (full.summary, full.findings, full.secret)
    assert repr(lazy.spans) == repr(full.spans)
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


def _data() -> st.SearchStrategy[bytes]:
    """A-XDR Data encodings, well-formed mostly (some cut or with odd tags: the short cut must
    then give way to the general path)."""
    fixed = st.sampled_from(sorted(_FIXED)).flatmap(
        lambda tag: st.binary(min_size=_FIXED[tag][0], max_size=_FIXED[tag][0]).map(
            lambda body: bytes((tag,)) + body
        )
    )
    strings = st.tuples(st.sampled_from([9, 10, 12]), st.binary(max_size=20)).map(
        lambda t: bytes((t[0], len(t[1]))) + t[1]
    )
    dates = st.sampled_from([(25, 12), (26, 5), (27, 4)]).flatmap(
        lambda t: st.binary(min_size=t[1], max_size=t[1]).map(lambda b: bytes((t[0],)) + b)
    )
    bits = st.binary(max_size=3).map(lambda b: bytes((4, len(b) * 8 - (1 if b else 0))) + b)
    leaves = st.one_of(fixed, strings, dates, bits, st.sampled_from(
        [b"\x00", b"\xff", b"\x13\x02\x01", b"\x07", b"\x06\x00", b"\x09\x81\x02ab"]
    ))  # fmt: skip
    return st.recursive(
        leaves,
        lambda inner: st.tuples(st.sampled_from([1, 2]), st.lists(inner, max_size=5)).map(
            lambda t: bytes((t[0], len(t[1]))) + b"".join(t[1])
        ),
        max_leaves=25,
    )


_DATETIMES = st.sampled_from([
    b"\x00", b"\x0c" + bytes.fromhex("07E90A1E04 0E2D1200FF8880"), b"\x09\x0c" + bytes(12),
    b"\x0c\x07\xe9", b"\x81\x00", b"",
])  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=4, max_size=4), _DATETIMES, st.one_of(_data(), st.binary(max_size=6)),
       st.sampled_from([b"", b"\x00", b"\x01\x02"]))  # fmt: skip
def test_data_notification(invoke: bytes, when: bytes, body: bytes, tail: bytes) -> None:
    _same(b"\x0f" + invoke + when + body + tail)


def test_real_pushes_take_the_short_cut() -> None:
    import json
    from pathlib import Path

    from dlmsdoctor.codec.hdlc import parse_hdlc

    vectors = Path(__file__).parent.parent / "vectors" / "real_frames.json"
    taken = 0
    for vector in json.loads(vectors.read_text())["frames"]:
        apdu = parse_hdlc(bytes.fromhex(vector["hex"])).apdu
        if apdu:
            taken += _same(apdu)
    assert taken >= 3  # Aidon and both Kaifa pushes (one with its date-time tagged 09 0C)
