"""decode_apdu never raises and keeps spans inside the bytes, in wire order (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.codec.model import Span

# Start from real tags so the fuzzing reaches deep into each decoder.
TAGS = [
    0xD9,
    0xDF,
    0x60,
    0x61,
    0x62,
    0x63,
    0x01,
    0x08,
    0x0E,
    0x0F,
    0xC0,
    0xC1,
    0xC2,
    0xC3,
    0xC4,
    0xC5,
    0xC7,
    0xD8,
    0xE0,
    0xC8,
    0xCC,
    0xDB,
    0xDD,
    0x21,
    0x28,
    0x05,
    0x06,
    0x0C,
    0x0D,
]
SEEDS = [
    bytes.fromhex(
        "6036a1090607608574050801018a0207808b0760857405080201ac0a80083132333435363738"
        "be10040e01000000065f1f0400401e5dffff"
    ),
    bytes.fromhex(
        "6129a109060760857405080101a203020100a305a103020100be10040e0800065f1f040000501f01f40007"
    ),
    bytes.fromhex("c401c100020209060000010000ff0600000064"),
    bytes.fromhex("c403c10200000205120002"),
    bytes.fromhex("c701c100010009111000000005"),
]


def check(apdu: bytes, base: int) -> None:
    decoded = decode_apdu(apdu, base_offset=base)
    assert all(f.code != "apdu.internal_error" for f in decoded.findings)
    for f in decoded.findings:
        assert base <= f.offset <= base + len(apdu)
    prev = base
    for top in decoded.spans:
        assert top.offset >= prev
        _inside(top, base, base + len(apdu))
        prev = top.end


def _inside(span: Span, lo: int, hi: int) -> None:
    assert lo <= span.offset and span.end <= hi, (span, lo, hi)
    prev = span.offset
    for child in span.children:
        assert child.offset >= prev, (child, span)
        _inside(child, span.offset, span.end)
        prev = child.end


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=10_000))
def test_random_bytes(apdu: bytes, base: int) -> None:
    check(apdu, base)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(TAGS), st.binary(max_size=120))
def test_known_tag_then_random(tag: int, body: bytes) -> None:
    check(bytes([tag]) + body, 0)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_real_apdus(seed: bytes, data: st.DataObject) -> None:
    apdu = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(apdu) - 1)) if apdu else 0
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and apdu:
            apdu[pos] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del apdu[pos:]
        else:
            apdu.insert(pos, data.draw(st.integers(0, 255)))
    check(bytes(apdu), 7)
