"""Masking helpers: secret spans anywhere in the tree, masked hex, scrubbed messages."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dlmsdoctor.codec.model import Span
from dlmsdoctor.codec.secrets import (
    MASK_TEXT,
    mask_bytes,
    mask_text,
    masked_hex,
    secret_offsets,
)

# An AARQ-like tree: the LLS password (calling-authentication-value) sits two levels down.
PASSWORD = b"12345678"
TREE = (
    Span(10, 20, "apdu.aarq", "AARQ", children=(
        Span(10, 2, "apdu.tag", "Tag"),
        Span(12, 18, "apdu.aarq.auth", "Calling authentication value", children=(
            Span(12, 2, "apdu.tag", "Tag"),
            Span(14, 8, "apdu.aarq.auth.value", "Password", PASSWORD, secret=True),
        )),
    )),
)  # fmt: skip


def test_secret_offsets_found_deep_in_the_tree() -> None:
    assert secret_offsets(TREE) == frozenset(range(14, 22))


def test_secret_parent_hides_its_children() -> None:
    parent = Span(0, 4, "k", "Key", secret=True, children=(Span(1, 2, "c", "Child"),))
    assert secret_offsets((parent,)) == {0, 1, 2, 3}


def test_no_secret_no_mask() -> None:
    assert secret_offsets((Span(0, 3, "a", "A"),)) == frozenset()
    assert masked_hex(b"\x7e\xa0\x07", (Span(0, 3, "a", "A"),)) == "7E A0 07"


def test_mask_bytes_uses_absolute_offsets() -> None:
    data = bytes(range(10, 30))  # the frame starts at absolute offset 10
    shown = mask_bytes(data, TREE, offset=10)
    assert shown[:4] == ["0A", "0B", "0C", "0D"]
    assert shown[4:12] == ["**"] * 8
    assert shown[12] == "16"
    assert masked_hex(data, TREE, offset=10, sep="").startswith("0A0B0C0D****")


def test_mask_text_plain_and_hex_spellings() -> None:
    message = "LLS password 12345678 (31 32 33 34 35 36 37 38, 3132333435363738) refused"
    scrubbed = mask_text(message, [PASSWORD])
    assert "12345678" not in scrubbed and "31 32 33" not in scrubbed and "3132" not in scrubbed
    assert scrubbed.count(MASK_TEXT) == 3
    assert mask_text("key 00112233aabbccdd", [bytes.fromhex("00112233AABBCCDD")]) == (
        f"key {MASK_TEXT}"
    )


def test_mask_text_leaves_other_text_and_ignores_empty() -> None:
    assert mask_text("nothing here", ["secret", ""]) == "nothing here"
    assert mask_text("ab 00 cd", [b"\x00"]) == "ab 00 cd"  # 1-byte secrets: not in hex form


def test_longest_secret_first() -> None:
    assert mask_text("pass and password", ["pass", "password"]) == f"{MASK_TEXT} and {MASK_TEXT}"


@given(st.text(), st.text(min_size=1).filter(lambda s: "*" not in s))
def test_mask_text_never_leaves_the_secret(text: str, secret: str) -> None:
    assert secret not in mask_text(text + secret + text, [secret])
