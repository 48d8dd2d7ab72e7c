"""The fast `decode --json` path (orjson over the span dataclasses) writes exactly what the
masking path writes, for every kind of frame the vectors hold, with and without secrets."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from dlmsdoctor.codec.decode import Chunk, DecodeOptions, iter_decode
from dlmsdoctor.output.decode_json import frame_json, frame_json_bytes

VECTORS = Path(__file__).parent.parent / "vectors"


def _inputs() -> list[bytes]:
    real = json.loads((VECTORS / "real_frames.json").read_text())["frames"]
    out = [bytes.fromhex(v["hex"]) for v in real]
    for name in ("hdlc_valid.json", "hdlc_malformed.json", "wrapper.json"):
        data = json.loads((VECTORS / name).read_text())
        groups = [data] if isinstance(data, list) else [
            v for v in data.values() if isinstance(v, list)
        ]  # fmt: skip
        out += [
            bytes.fromhex(v["hex"].replace(" ", ""))
            for items in groups for v in items if isinstance(v, dict) and "hex" in v
        ]  # fmt: skip
    assert any(b"12345678" in data for data in out)  # an LLS AARQ: the masking path
    out += [
        bytes.fromhex("C001C100030100010800FF0200"),  # bare APDU
        b"Port already in use\r\n", b"\x01P1\x02(12345678)\x03\x2c",  # text, IEC password
    ]
    return out


@pytest.mark.parametrize("spans", [True, False])
@pytest.mark.parametrize("show_secrets", [False, True])
def test_fast_path_equals_the_masking_path(show_secrets: bool, spans: bool) -> None:
    inputs = _inputs()
    assert len(inputs) > 20
    options = DecodeOptions(spans=spans)
    fds = list(iter_decode([Chunk(data) for data in inputs], show_secrets, options))
    for fd in fds:
        fast = orjson.loads(frame_json_bytes(fd, show_secrets, spans))
        slow_doc = frame_json(fd, show_secrets, spans)
        slow = orjson.loads(orjson.dumps(slow_doc, option=orjson.OPT_NON_STR_KEYS))
        assert fast == slow, fd.summary
        assert ("spans" in fast) is spans
        if not show_secrets:
            assert "31 32 33 34 35 36 37 38" not in fast["hex"]  # the LLS password "12345678"


def test_a_segment_marked_secret_takes_the_masking_path() -> None:
    # What codec.secrets' tracker does to a segment holding part of a split password: a span
    # marked secret on the segment, and FrameDecode.secret set.
    import dataclasses

    from dlmsdoctor.codec.hdlc import ServerAddress, build_i
    from dlmsdoctor.codec.model import Span

    segment = build_i(ServerAddress(1, None, 1), 16, to_server=True, ns=0, nr=0,
                      info=b"\x60\x36\xa1\x09" + b"secret-part", segmented=True)  # fmt: skip
    (fd,) = iter_decode([Chunk(segment)])
    at = segment.index(b"secret-part")
    frame = dataclasses.replace(
        fd.frame, spans=(*fd.frame.spans, Span(at, 11, "hdlc.info.secret", "Secret", secret=True))
    )
    marked = dataclasses.replace(fd, frame=frame, secret=True)
    shown = orjson.loads(frame_json_bytes(marked, False))
    assert "** ** **" in shown["hex"] and b"secret-part".hex(" ").upper() not in shown["hex"]
    assert b"secret-part".hex(" ").upper() in orjson.loads(frame_json_bytes(marked, True))["hex"]


def test_a_field_with_a_key_that_is_not_a_string_is_written_as_before() -> None:
    # orjson is called without OPT_NON_STR_KEYS first (twice as fast); a non-str key falls back.
    import dataclasses

    fd = next(iter_decode([Chunk(bytes.fromhex("7EA0070321930F017E"))]))
    odd = dataclasses.replace(fd.frame, fields={**fd.frame.fields, 7: b"\x01\x02"})
    fd = dataclasses.replace(fd, frame=odd)
    line = frame_json_bytes(fd, False, False)
    assert b'"7":"01 02"' in line
    assert orjson.loads(line)["fields"]["frame_type"] == "SNRM"
