"""The `decode --json` document: one JSON object with a schema name and version.

Secret bytes (spans marked ``secret``) are replaced by ``**`` in hex and by ``"********"`` in values
unless the caller asks for secrets.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from dlmsdoctor import __version__
from dlmsdoctor.codec.decode import (
    DLMS_KINDS,
    DecodeResult,
    DecodeTally,
    FrameDecode,
    InputProblem,
)
from dlmsdoctor.codec.model import FrameKind, Severity, Span, hexs
from dlmsdoctor.codec.secrets import secret_offsets

SCHEMA = "dlmsdoctor.decode"
SCHEMA_VERSION = 1
_BATCH = 1 << 16  # bytes of frames held before a write to the binary stream
MASK = "********"


def masked_hex(data: bytes, base: int, secret: frozenset[int] | set[int]) -> str:
    """Hex of ``data`` (which starts at absolute offset ``base``) with secret bytes as ``**``."""
    if not secret:
        return hexs(data)
    return " ".join("**" if base + i in secret else f"{b:02X}" for i, b in enumerate(data))


def span_json(span: Span, show_secrets: bool) -> dict[str, Any]:
    """One span as JSON: every key always there (the shape orjson gives a ``Span`` dataclass,
    which the fast path serialises directly), secrets masked."""
    hide = span.secret and not show_secrets
    value = span.value
    if hide:
        value = MASK
    elif isinstance(value, bytes | bytearray):
        value = hexs(bytes(value))
    elif not (isinstance(value, int | float | str | bool) or value is None):
        value = str(value)
    return {
        "offset": span.offset,
        "length": span.length,
        "name": span.name,
        "label": span.label,
        "value": value,
        "meaning": MASK if hide and span.meaning else span.meaning,
        "children": [span_json(c, show_secrets) for c in span.children],
        "secret": span.secret,
    }


def _fields_json(fields: dict[str, object]) -> dict[str, Any]:
    return {str(key): _jsonable(value) for key, value in fields.items()}


def _jsonable(value: object) -> Any:
    if _plain(value):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return hexs(bytes(value))
    if isinstance(value, dict):
        return _fields_json(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _plain(value: object) -> bool:
    return value is None or isinstance(value, int | float | str | bool)


def frame_json(fd: FrameDecode, show_secrets: bool, spans: bool = True) -> dict[str, Any]:
    """One frame as JSON; ``spans`` False leaves the span trees out (long logs)."""
    frame = fd.frame
    secret = frozenset() if show_secrets else _secret_offsets(fd)
    out: dict[str, Any] = _frame_head(fd)
    out["hex"] = masked_hex(frame.data, frame.offset, secret)
    out["fields"] = _fields_json(frame.fields)
    if spans:
        out["spans"] = [span_json(s, show_secrets) for s in frame.spans]
    out["findings"] = [f.to_json() for f in fd.findings]
    if fd.apdu is not None:
        out["apdu"] = {
            "type": fd.apdu_type,
            "summary": fd.apdu.summary,
            "reassembled_from": list(fd.reassembled_from),
            "fields": _fields_json(dict(fd.apdu.fields)) if show_secrets else _masked_fields(fd),
        }
        if spans:
            out["apdu"]["spans"] = [
                span_json(s, show_secrets) for s in fd.apdu_spans_if_separate
            ]
    if fd.repaired is not None:
        out["corrected_hex"] = masked_hex(fd.repaired, frame.offset, secret)
    return out


def _secret_offsets(fd: FrameDecode) -> frozenset[int]:
    """Secret bytes of the frame: in its (nested) spans, or in its APDU's when apart."""
    if fd.apdu is not None and not fd.apdu_nested and not fd.reassembled_from:
        return secret_offsets(fd.apdu.spans)
    return secret_offsets(fd.all_spans)


def _frame_head(fd: FrameDecode) -> dict[str, Any]:
    frame = fd.frame
    kind = frame.kind.value
    dlms = fd.is_dlms
    return {
        "index": fd.index,
        "chunk": fd.chunk,
        "direction": fd.direction,
        "offset": frame.offset,
        "length": len(frame.data),
        "kind": kind,
        "type": frame.fields.get("frame_type") or fd.apdu_type or kind,
        "summary": fd.summary,
        "valid": dlms and fd.valid,
        "dlms": dlms,
    }


_ERROR = Severity.ERROR
_FAST_KINDS = frozenset((FrameKind.HDLC, FrameKind.WRAPPER, FrameKind.PARTIAL, FrameKind.APDU))
_SECRET_KEYS = ("password", "secret", "authentication_value")


_KEYS_WITH_SECRETS: dict[tuple[str, ...], bool] = {}  # an APDU type has few key sets


def _secret_key_in(fields: dict[str, object]) -> bool:
    keys = tuple(fields)
    known = _KEYS_WITH_SECRETS.get(keys)
    if known is None:
        known = any(k in key for key in keys for k in _SECRET_KEYS)
        if len(_KEYS_WITH_SECRETS) < 4096:
            _KEYS_WITH_SECRETS[keys] = known
    return known


def _default(value: object) -> object:
    """What orjson cannot serialise itself, the way ``_fields_json`` writes it."""
    if isinstance(value, bytes | bytearray | memoryview):
        return hexs(bytes(value))
    return str(value)


def frame_json_bytes(fd: FrameDecode, show_secrets: bool, spans: bool = True) -> bytes:
    """``frame_json`` serialised, byte for byte what ``orjson.dumps(frame_json(...))`` gives,
    without building a dict per span: orjson writes the ``Span`` dataclasses and the fields in
    C. Frames that may hold a secret (a password in an AARQ, an IEC 62056-21 P1 command) take
    the masking path."""
    import orjson

    frame = fd.frame
    apdu = fd.apdu
    if not show_secrets and (
        fd.secret
        or frame.kind not in _FAST_KINDS
        or (apdu is not None and (apdu.secret or _secret_key_in(apdu.fields)))
    ):
        slow = frame_json(fd, show_secrets, spans)
        return orjson.dumps(slow, default=_default, option=orjson.OPT_NON_STR_KEYS)
    # _frame_head(fd) and fd's properties, inline (once per frame of a log)
    fields = frame.fields
    kind = frame.kind
    if apdu is None:
        findings = frame.findings
        summary = frame.summary
        apdu_type = None
    else:
        findings = frame.findings + apdu.findings
        summary = f"{frame.summary} | {apdu.summary}" if apdu.summary else frame.summary
        value = apdu.fields.get("apdu_type")
        apdu_type = str(value) if value is not None else None
    dlms = kind in DLMS_KINDS
    out: dict[str, Any] = {
        "index": fd.index,
        "chunk": fd.chunk,
        "direction": fd.direction,
        "offset": frame.offset,
        "length": len(frame.data),
        "kind": kind.value,
        "type": fields.get("frame_type") or apdu_type or kind.value,
        "summary": summary,
        "valid": dlms and not (findings and any(f.severity is _ERROR for f in findings)),
        "dlms": dlms,
        "hex": hexs(frame.data),
        "fields": fields,
    }
    if spans:
        out["spans"] = frame.spans
    out["findings"] = [f.to_json() for f in findings] if findings else []
    if apdu is not None:
        out["apdu"] = {
            "type": apdu_type,
            "summary": apdu.summary,
            "reassembled_from": list(fd.reassembled_from),
            "fields": apdu.fields,
        }
        if spans:
            out["apdu"]["spans"] = fd.apdu_spans_if_separate
    if fd.repaired is not None:
        out["corrected_hex"] = hexs(fd.repaired)
    try:
        # Twice as fast without OPT_NON_STR_KEYS, and the same bytes when every key is a str
        return orjson.dumps(out, default=_default)
    except TypeError:  # orjson.JSONEncodeError: a key that is not a str (or a real error)
        return orjson.dumps(out, default=_default, option=orjson.OPT_NON_STR_KEYS)


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


def decode_document(
    result: DecodeResult, show_secrets: bool = False, spans: bool = True
) -> dict[str, Any]:
    """The whole document as one dict, for small results: what ``DocumentWriter`` writes, read
    back (one serialisation, so the two can never differ)."""
    tally = DecodeTally()
    for chunk in result.chunks:
        tally.add_chunk(chunk)
    out = io.StringIO()
    writer = DocumentWriter(out, show_secrets, spans)
    for fd in result.frames:
        tally.add(fd)
        writer.frame(fd)
    writer.finish(tally, result.problems)
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


class DocumentWriter:
    """Writes the same document as ``decode_document`` while frames are decoded: the head, then
    each frame as it comes, then ``input`` and ``summary``, known only at the end. Holds no
    frame after writing it, so a log of any size decodes in bounded memory."""

    def __init__(self, out: TextIO, show_secrets: bool = False, spans: bool = True) -> None:
        self._out = out
        self._show_secrets = show_secrets
        self._spans = spans
        self._first = True
        self._pending = bytearray()  # frames not yet written to the binary stream
        head: dict[str, Any] = {
            "schema": SCHEMA, "version": SCHEMA_VERSION, "tool_version": __version__,
        }  # fmt: skip
        if not spans:
            head["spans"] = False  # frames carry fields, values and findings, not span trees
        body = json.dumps(head, indent=2, ensure_ascii=False)[:-2]  # without "\n}"
        out.write(body + ',\n  "frames": [')
        # A UTF-8 text stream with a byte buffer under it (stdout): frames go to the buffer.
        buffer = getattr(out, "buffer", None)
        encoding = (getattr(out, "encoding", "") or "").lower().replace("-", "")
        self._binary = buffer if buffer is not None and encoding == "utf8" else None
        if self._binary is not None:
            out.flush()

    def frame(self, fd: FrameDecode) -> None:
        # One frame per line (grep and jq like it), serialised by orjson: the standard json
        # module cost more than the decode itself (68 us a frame against 8 on the mix).
        data = frame_json_bytes(fd, self._show_secrets, self._spans)
        sep = b"\n    " if self._first else b",\n    "
        self._first = False
        if self._binary is not None:
            # UTF-8 already: no decode and encode again; written 64 KiB at a time (one write
            # per frame costs a system call each when stdout is unbuffered)
            pending = self._pending
            pending += sep
            pending += data
            if len(pending) >= _BATCH:
                self._binary.write(pending)
                pending.clear()
        else:
            self._out.write((sep + data).decode())

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
        if self._binary is not None:
            if self._pending:
                self._binary.write(self._pending)
                self._pending.clear()
            self._binary.flush()
        body = json.dumps(tail, indent=2, ensure_ascii=False)[1:]  # without "{"
        self._out.write(("]," if self._first else "\n  ],") + body + "\n")
