"""Values explained: scaler and unit, dates, object lists; bad bytes never raise."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dlmsdoctor.cosem_values import (
    ObjectEntry,
    decode_value,
    explain,
    object_list,
    readable,
    scaled_text,
)


def test_register_value_scaled_with_unit() -> None:
    value = decode_value(bytes.fromhex("060012D687"))  # double-long-unsigned 1234567
    assert value.type_name == "double-long-unsigned" and value.value == 1234567
    assert explain(3, 2, value, (-3, 30)) == "1234.567 Wh  (raw 1234567, scaler -3)"
    assert explain(3, 2, value) == "1234567"  # no scaler known: the raw value, said plainly
    assert scaled_text(1234567, 0, 30) == "1234567 Wh"
    assert scaled_text(12, 2, 27) == "1200 W"
    assert scaled_text(2305, -1, 35) == "230.5 V"
    assert scaled_text("x", 0, 30) is None


def test_scaler_unit_and_clock_explained() -> None:
    pair = decode_value(bytes.fromhex("0202 0FFF 161E".replace(" ", "")))
    assert explain(3, 3, pair) == "scaler -1 (x10^-1), unit Wh (30)"
    clock = decode_value(bytes.fromhex("090C07EA0C030416141E00000000"))
    assert explain(8, 2, clock).startswith("2026-12-03 22:20:30")
    ln = decode_value(bytes.fromhex("0906 0100010800FF".replace(" ", "")))
    assert explain(3, 1, ln) == "1.0.1.8.0.255"


def test_object_list_entries_and_access() -> None:
    # one entry: class 3 v0 1.0.1.8.0.255, attribute 2 read-only, attribute 3 no access
    data = bytes.fromhex(
        "0101 0204 120003 1100 09060100010800FF"
        " 0202 0102 0203 0F02 1601 00 0203 0F03 1600 00 0100".replace(" ", "")
    )
    entries = object_list(decode_value(data))
    assert entries == [ObjectEntry(3, 0, bytes((1, 0, 1, 8, 0, 255)), ((2, 1), (3, 0)))]
    entry = entries[0]
    assert readable(entry, 2) and not readable(entry, 3) and readable(entry, 4)
    assert not readable(ObjectEntry(15, 1, bytes(6)), 7)  # the association's secret


@given(st.binary(max_size=64))
def test_never_raises(data: bytes) -> None:
    value = decode_value(data)
    object_list(value)
    explain(3, 2, value, (0, 30))
