"""The `decode --json` document: one JSON object with a schema name and version.

Secret bytes (spans marked ``secret``) are replaced by ``**`` in hex and by ``"********"`` in values
unless the caller asks for secrets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from dlmsdoctor import __version__
from dlmsdoctor.codec.decode import DecodeResult, DecodeTally, FrameDecode, InputProblem
from dlmsdoctor.codec.model import Span, hexs
from dlmsdoctor.codec.secrets import secret_offsets

SCHEMA = "dlmsdoctor.decode"
SCHEMA_VERSION = 1
MASK = "********"


def masked_hex(data: bytes, base: int, secret: frozenset[int] | set[int]) -> str:
    """Hex of ``data`` (which starts at absolute offset ``base``) with secret bytes as ``**``."""
    if not secret:
        return hexs(data)
    return " ".join("**" if base + i in secret else f"{b:02X}" for i, b in enumerate(data))


def _value(value: object, secret: bool, show_secrets: bool) -> object:
    if secret and not show_secrets:
        return MASK
    if isinstance(value, bytes | bytearray):
        return hexs(bytes(value))
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def span_json(span: Span, show_secrets: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "offset": span.offset,
        "length": span.length,
        "name": span.name,
        "label": span.label,
    }
    if span.value is not None:
        out["value"] = _value(span.value, span.secret, show_secrets)
    if span.meaning:
        out["meaning"] = MASK if span.secret and not show_secrets else span.meaning
    if span.secret:
        out["secret"] = True
    if span.children:
        out["children"] = [span_json(c, show_secrets) for c in span.children]
    return out


def _fields_json(fields: dict[str, object]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, bytes | bytearray):
            out[key] = hexs(bytes(value))
        elif isinstance(value, dict):
            out[key] = _fields_json(value)
        elif isinstance(value, list | tuple):
            out[key] = [
                _fields_json(v) if isinstance(v, dict) else v if _plain(v) else str(v)
                for v in value
            ]
        elif _plain(value):
            out[key] = value
        else:
            out[key] = str(value)
    return out


def _plain(value: object) -> bool:
    return value is None or isinstance(value, int | float | str | bool)


def frame_json(fd: FrameDecode, show_secrets: bool) -> dict[str, Any]:
    frame = fd.frame
    spans = fd.all_spans
    secret = frozenset() if show_secrets else secret_offsets(spans)
    out: dict[str, Any] = {
        "index": fd.index,
        "chunk": fd.chunk,
        "direction": fd.direction,
        "offset": frame.offset,
        "length": len(frame.data),
        "kind": frame.kind.value,
        "type": frame.fields.get("frame_type") or fd.apdu_type or frame.kind.value,
        "summary": fd.summary,
        "valid": fd.valid and fd.is_dlms,
        "dlms": fd.is_dlms,
        "hex": masked_hex(frame.data, frame.offset, secret),
        "fields": _fields_json(frame.fields),
        "spans": [span_json(s, show_secrets) for s in frame.spans],
        "findings": [f.to_json() for f in fd.findings],
    }
    if fd.apdu is not None:
        out["apdu"] = {
            "type": fd.apdu_type,
            "summary": fd.apdu.summary,
            "reassembled_from": list(fd.reassembled_from),
            "fields": _fields_json(dict(fd.apdu.fields)) if show_secrets else _masked_fields(fd),
            "spans": [span_json(s, show_secrets) for s in fd.apdu_spans_if_separate],
        }
    if fd.repaired is not None:
        out["corrected_hex"] = masked_hex(fd.repaired, frame.offset, secret)
    return out


def _masked_fields(fd: FrameDecode) -> dict[str, Any]:
    assert fd.apdu is not None
    fields = _fields_json(dict(fd.apdu.fields))
    for key in list(fields):
        if "password" in key or "secret" in key or "authentication_value" in key:
            fields[key] = MASK
    return fields


def _summary(tally: DecodeTally) -> dict[str, int]:
    return {
        "frames": tally.frames,
        "valid": tally.valid,
        "errors": tally.errors,
        "warnings": tally.warnings,
        "dlms_frames": tally.dlms,
        "other_chunks": tally.other,
        "garbage_chunks": tally.garbage,
    }


def _problems(problems: Iterable[InputProblem]) -> list[dict[str, object]]:
    return [{"line": p.line, "message": p.message, "text": p.text} for p in problems]


def decode_document(result: DecodeResult, show_secrets: bool = False) -> dict[str, Any]:
    """The whole document as one dict, for small results (the CLI streams with the writer)."""
    tally = DecodeTally()
    for chunk in result.chunks:
        tally.add_chunk(chunk)
    for fd in result.frames:
        tally.add(fd)
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "tool_version": __version__,
        "frames": [frame_json(fd, show_secrets) for fd in result.frames],
        "input": {
            "chunks": tally.chunks,
            "bytes": tally.bytes,
            "problems": _problems(result.problems),
        },
        "summary": _summary(tally),
    }


class DocumentWriter:
    """Writes the same document as ``decode_document`` while frames are decoded: the head, then
    each frame as it comes, then ``input`` and ``summary``, known only at the end. Holds no
    frame after writing it, so a log of any size decodes in bounded memory."""

    def __init__(self, out: TextIO, show_secrets: bool = False) -> None:
        self._out = out
        self._show_secrets = show_secrets
        self._first = True
        head = {"schema": SCHEMA, "version": SCHEMA_VERSION, "tool_version": __version__}
        body = json.dumps(head, indent=2, ensure_ascii=False)[:-2]  # without "\n}"
        out.write(body + ',\n  "frames": [')

    def frame(self, fd: FrameDecode) -> None:
        # One frame per line: json's C encoder runs only without indent, and an indented frame
        # cost 5x its decode on a large log. A line per frame also suits grep and jq.
        text = json.dumps(frame_json(fd, self._show_secrets), ensure_ascii=False)
        self._out.write(("\n    " if self._first else ",\n    ") + text)
        self._first = False

    def finish(
        self, tally: DecodeTally, problems: Sequence[InputProblem], problems_omitted: int = 0
    ) -> None:
        tail: dict[str, Any] = {
            "input": {
                "chunks": tally.chunks,
                "bytes": tally.bytes,
                "problems": _problems(problems),
            },
            "summary": _summary(tally),
        }
        if problems_omitted:
            tail["input"]["problems_omitted"] = problems_omitted
        body = json.dumps(tail, indent=2, ensure_ascii=False)[1:]  # without "{"
        self._out.write(("]," if self._first else "\n  ],") + body + "\n")
