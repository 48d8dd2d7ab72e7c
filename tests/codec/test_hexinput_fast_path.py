"""The log-line short cut of hexinput._parse_line reads exactly what the regex it replaced read."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec.hexinput import (
    _FAST_BARE,
    _FAST_LOG,
    _TIMESTAMPS,
    _Found,
    _LineResult,
    _parse_line,
    _parse_line_slow,
    _spaced_hex,
)


def _reference(line: str) -> _LineResult:
    """_parse_line as merged before the short cut (regex for the whole log line)."""
    if _FAST_BARE.fullmatch(line):
        return _LineResult([_Found(bytes.fromhex(line), None, True)], [], None, False)
    m = _FAST_LOG.fullmatch(line)
    if m is not None:
        ts = m.group("ts") or m.group("ts2")
        if ts is None or _TIMESTAMPS.fullmatch(ts):
            direction = "tx" if m.group("dir").lower() == "tx" else "rx"
            found = _Found(bytes.fromhex(m.group("hex")), direction, False)
            return _LineResult([found], [], ts, True)
    return _parse_line_slow(line)


_PREFIX = st.sampled_from([
    "", "[2025-10-30 14:00:01.001] ", "[2025-10-30 14:00:01.001]", "[not a time at all] ",
    "2025-10-30 14:51:48.452 ", "2025-10-30T14:51:48,452 ", "[12:00:01.5] ", "x ", "[ab] ",
])  # fmt: skip
_WORD = st.sampled_from(["TX", "RX", "tx", "Rx", "TX:", "RX: ", "TX ", "Tx:  ", "TXRX ", "T"])
_PIECE = st.sampled_from(["7E", "a0", "00", "FF", "0x", "zz", " ", "  ", "\t", "7", ":", "-",
                          "E6 ", "12 ", "٣٣", "1e"])  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(_PREFIX, _WORD, st.lists(_PIECE, max_size=12))
def test_log_lines_read_as_before(prefix: str, word: str, pieces: list[str]) -> None:
    line = prefix + word + "".join(pieces)
    assert _parse_line(line) == _reference(line)


@given(st.text(alphabet="0123456789abcdefABCDEF \t:x-", max_size=40))
def test_spaced_hex_is_the_regex(text: str) -> None:
    import re

    spaced = re.fullmatch(r"[0-9A-Fa-f]{2}(?: [0-9A-Fa-f]{2})+", text)
    want = bytes.fromhex(text) if spaced else None
    assert _spaced_hex(text) == want


def test_a_poller_line_takes_the_short_cut() -> None:
    line = "[2025-10-30 14:00:01.001] RX: 7E A0 07 21 03 73 F4 AE 7E"
    assert _parse_line(line) == _reference(line)
    assert _parse_line(line).found[0].data == bytes.fromhex("7EA0072103 73F4AE7E".replace(" ", ""))
