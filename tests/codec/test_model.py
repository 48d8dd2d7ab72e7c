"""The shared vocabulary: the one rule for showing a span's value beside its bytes."""

from __future__ import annotations

from dlmsdoctor.codec.model import Span


def test_value_is_shown_when_it_tells_more_than_the_bytes() -> None:
    assert Span(0, 2, "x.len", "Length", 291).value_text(b"\x01\x23") == "291"
    assert Span(0, 1, "x.name", "Name", "SNRM").value_text(b"\x93") == "SNRM"


def test_value_is_not_shown_when_the_bytes_or_the_meaning_say_it() -> None:
    assert Span(0, 1, "hdlc.flag", "Flag", 0x7E).value_text(b"\x7e") == ""
    assert Span(0, 1, "x.n", "N(S)", 3, "send sequence number 3").value_text(b"\x36") == ""
    assert Span(0, 2, "x.raw", "Raw", b"\x01\x02").value_text(b"\x01\x02") == ""
    assert Span(0, 1, "x.none", "Nothing").value_text(b"\x00") == ""
    parent = Span(0, 2, "x.p", "Parent", 5, children=(Span(0, 1, "x.c", "Child", 5),))
    assert parent.value_text(b"\x05\x00") == ""
