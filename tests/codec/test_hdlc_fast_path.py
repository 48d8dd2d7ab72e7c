"""The parser's short cut for clean frames gives exactly the frame the general path gives."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec.hdlc_parse import _parse, _parse_clean_lazy
from dlmsdoctor.codec.hexinput import HexChunk, iter_hex_input
from dlmsdoctor.codec.model import DecodedFrame

VECTORS = Path(__file__).parent.parent / "vectors"


def _frames() -> list[bytes]:
    out = []
    for path in ("hdlc_valid.json", "hdlc_malformed.json", "stream_cases.json",
                 "real_frames.json"):  # fmt: skip
        text = (VECTORS / path).read_text()
        for line in text.splitlines():
            line = line.strip()
            if line.startswith('"hex": "'):
                with contextlib.suppress(ValueError):
                    out.append(bytes.fromhex(json.loads("{" + line.rstrip(",") + "}")["hex"]))
    lines = (VECTORS / "poll_mix.log").read_text().splitlines()[:40]
    out += [c.data for c in iter_hex_input(lines) if isinstance(c, HexChunk)]
    return out


FRAMES = _frames()


def _same(fast: DecodedFrame, full: DecodedFrame) -> None:
    assert fast.kind is full.kind
    assert (fast.offset, fast.data, fast.summary, fast.apdu) == (
        full.offset, full.data, full.summary, full.apdu,
    )  # fmt: skip
    assert fast.findings == full.findings
    assert list(fast.fields.items()) == list(full.fields.items())  # order too: JSON keys
    assert fast.spans == _parse(full.data, 0, None, True).spans or fast.spans == full.spans


def _check(buf: bytes, offset: int, direction: str | None) -> bool:
    fast = _parse_clean_lazy(buf, offset, direction)
    if fast is None:
        return False
    _same(fast, _parse(buf, offset, direction, False))
    assert fast.spans == _parse(buf, offset, direction, True).spans
    return True


def test_fast_path_equals_general_path_on_every_vector_and_poll_frame() -> None:
    taken = 0
    for frame in FRAMES:
        for direction in (None, "tx", "rx"):
            taken += _check(frame, 0, direction)
            taken += _check(b"\x00\x7e" + frame + b"\x7e\xa0", 2, direction)
    assert taken > 50  # the short cut is taken for the common frames


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(FRAMES),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3),
    st.sampled_from([None, "tx", "rx"]),
)
def test_fast_path_equals_general_path_on_damaged_frames(
    frame: bytes, changes: list[tuple[int, int]], direction: str | None
) -> None:
    data = bytearray(frame)
    for where, value in changes:
        if data:
            data[where % len(data)] = value
    _check(bytes(data), 0, direction)
