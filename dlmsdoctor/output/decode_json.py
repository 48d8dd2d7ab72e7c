"""The `decode --json` document: one JSON object with a schema name and version.

Secret bytes (spans marked ``secret``) are replaced by ``**`` in hex and by ``"********"`` in values
unless the caller asks for secrets.
"""

from __future__ import annotations

from typing import Any

from dlmsdoctor import __version__
from dlmsdoctor.codec.decode import DecodeResult, FrameDecode
from dlmsdoctor.codec.model import Severity, Span, hexs
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
        "valid": fd.valid,
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


def decode_document(result: DecodeResult, show_secrets: bool = False) -> dict[str, Any]:
    frames = [frame_json(fd, show_secrets) for fd in result.frames]
    errors = sum(1 for fd in result.frames for f in fd.findings if f.severity is Severity.ERROR)
    warnings = sum(1 for fd in result.frames for f in fd.findings if f.severity is Severity.WARNING)
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "tool_version": __version__,
        "input": {
            "chunks": len(result.chunks),
            "bytes": sum(len(c.data) for c in result.chunks),
            "problems": [
                {"line": p.line, "message": p.message, "text": p.text} for p in result.problems
            ],
        },
        "frames": frames,
        "summary": {
            "frames": len(frames),
            "valid": sum(1 for fd in result.frames if fd.valid),
            "errors": errors,
            "warnings": warnings,
        },
    }
