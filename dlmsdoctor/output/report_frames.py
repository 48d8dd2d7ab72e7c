"""Annotate a session's frames for the report appendix and the capture's packet comments.

The Session stores raw bytes; the decode is recomputed here with the codec (``parse_hdlc``, and the
wrapper and APDU decoders when they are present), so a report always reflects the codec of the
version that writes it. Secret bytes (spans marked ``secret``, plus the AARQ
calling-authentication-value found by a small BER walk, so a password is masked even where the
APDU decoder does not mark it) are masked unless the caller asks for secrets.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dlmsdoctor.codec.ber import definite_length
from dlmsdoctor.codec.crc import crc_bytes
from dlmsdoctor.codec.model import DecodedFrame, Span, hexs
from dlmsdoctor.events import Direction
from dlmsdoctor.session import FrameRecord

MASK_BYTE = 0x2A  # '*': what replaces a secret byte in masked packet bytes


@dataclass(frozen=True, slots=True)
class FrameField:
    """One decoded field: where it is, how deep in the tree, what it means."""

    offset: int
    length: int
    depth: int
    label: str
    meaning: str

    def hex_in(self, data: bytes, limit: int = 8) -> str:
        """The field's bytes when short enough to read inline, else ''."""
        if self.length > limit:
            return ""
        return hexs(data[self.offset : self.offset + self.length])


@dataclass(slots=True)
class FrameNote:
    """One frame as a person reads it: a summary, decoded fields and what is wrong."""

    index: int
    conn_id: int
    direction: Direction
    at: float
    step_id: str
    kind: str
    summary: str
    data: bytes  # masked unless secrets were asked for
    fields: list[FrameField] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "code: message"
    marks: list[tuple[int, int]] = field(default_factory=list)  # (offset, length) of problems
    secret_count: int = 0  # bytes masked
    fcs_recomputed: bool = False
    # decoded facts for figures: the codec's frame fields plus the APDU's (apdu_type, result...)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def hex(self) -> str:
        return hexs(self.data)

    def short_hex(self, limit: int = 24) -> str:
        """Up to ``limit`` bytes, enough to recognise a frame in evidence, with the bytes a
        finding points at in [brackets]; the window moves to show the first such byte."""
        data = self.data
        marked = {p for off, length in self.marks for p in range(off, off + max(length, 1))}
        start = 0
        if marked and min(marked) >= limit - 4:
            start = max(0, min(min(marked) - 8, len(data) - limit))
        end = min(len(data), start + limit)
        cells = [f"[{data[i]:02X}]" if i in marked else f"{data[i]:02X}"
                 for i in range(start, end)]
        text = " ".join(cells)
        if start > 0:
            text = "… " + text
        if end < len(data) or start > 0:
            text += f" … ({len(data)} bytes)" if end < len(data) else f" ({len(data)} bytes)"
        return text


def _optional(module: str, name: str) -> Callable[..., Any] | None:
    """A codec function that may not exist yet in this tree (decoders land independently)."""
    try:
        function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return function


def aarq_secret_range(apdu: bytes) -> tuple[int, int] | None:
    """(offset, length) of the password inside an AARQ's calling-authentication-value [12].

    AARQ is ``60 len {components}``; the password is the value of the ``AC len 80 len value``
    component (IEC 62056-53, ACSE). Any malformation gives None: never raises.
    """
    if len(apdu) < 2 or apdu[0] != 0x60:
        return None
    head = definite_length(apdu, 1)
    if head is None:
        return None
    _, pos = head
    while pos + 1 < len(apdu):
        tag = apdu[pos]
        got = definite_length(apdu, pos + 1)
        if got is None:
            return None
        length, body = got
        if tag == 0xAC:
            inner = definite_length(apdu, body + 1) if body < len(apdu) else None
            if inner is None:
                return None
            value_len, value_pos = inner
            value_len = min(value_len, len(apdu) - value_pos)
            return (value_pos, value_len) if value_len > 0 else None
        pos = body + length
    return None


def _walk(spans: tuple[Span, ...], depth: int = 0) -> list[tuple[int, Span]]:
    """Every span with its depth, wire order."""
    out: list[tuple[int, Span]] = []
    for span in spans:
        out.append((depth, span))
        out.extend(_walk(span.children, depth + 1))
    return out


@dataclass(slots=True)
class _Decoded:
    frame: DecodedFrame | None = None
    apdu_spans: list[Span] = field(default_factory=list)
    apdu_offset: int | None = None
    apdu_summary: str = ""
    apdu_problems: list[str] = field(default_factory=list)
    apdu_fields: dict[str, Any] = field(default_factory=dict)


def _decode(data: bytes, direction: str, show_secrets: bool = False) -> _Decoded:
    """The codec's decode of one frame and of the APDU it carries (absolute offsets)."""
    if not data:
        return _Decoded()
    decoded: DecodedFrame | None = None
    apdu_offset: int | None = None
    if data[0] == 0x7E:
        parse_hdlc = _optional("dlmsdoctor.codec.hdlc", "parse_hdlc")
        if parse_hdlc is not None:
            decoded = parse_hdlc(data, 0, direction)
            info_offset = decoded.fields.get("info_offset") if decoded else None
            if decoded is not None and decoded.apdu and isinstance(info_offset, int):
                llc = decoded.fields.get("llc")
                apdu_offset = info_offset + (3 if llc else 0)
                if data[apdu_offset : apdu_offset + len(decoded.apdu)] != decoded.apdu:
                    apdu_offset = None
    elif data[:2] == b"\x00\x01" and len(data) >= 8:
        parse_wrapper = _optional("dlmsdoctor.codec.wrapper", "parse_wrapper")
        if parse_wrapper is not None:
            decoded = parse_wrapper(data, 0)
        apdu_offset = 8
    out = _Decoded(decoded, [], apdu_offset)
    if apdu_offset is None or apdu_offset >= len(data):
        return out
    decode_apdu = _optional("dlmsdoctor.codec.apdu", "decode_apdu")
    if decode_apdu is None:
        return out
    end = apdu_offset + len(decoded.apdu) if decoded and decoded.apdu else len(data)
    try:
        result = decode_apdu(data[apdu_offset:end], base_offset=apdu_offset,
                             show_secrets=show_secrets)
    except Exception:  # a decoder bug must not lose the report
        return out
    out.apdu_spans = list(getattr(result, "spans", ()) or ())
    out.apdu_summary = str(getattr(result, "summary", "") or "")
    out.apdu_fields = dict(getattr(result, "fields", {}) or {})
    out.apdu_problems = [f"{f.code}: {f.message}" for f in getattr(result, "findings", ())]
    return out


def _secret_offsets(
    data: bytes, spans: list[tuple[int, Span]], apdu_offset: int | None
) -> set[int]:
    out: set[int] = set()
    for _, span in spans:
        if span.secret:
            out.update(range(span.offset, min(span.end, len(data))))
    if apdu_offset is not None:
        found = aarq_secret_range(data[apdu_offset:])
        if found is not None:
            start = apdu_offset + found[0]
            out.update(range(start, min(start + found[1], len(data))))
    return out


def mask_frame(data: bytes, secret: set[int]) -> tuple[bytes, bool]:
    """Secret bytes replaced by '*'; an HDLC FCS that was right is recomputed so that the masked
    frame still checks (a vendor's Wireshark then shows no false FCS error). Returns the bytes and
    whether the FCS was recomputed."""
    if not secret:
        return data, False
    out = bytearray(data)
    for pos in secret:
        if 0 <= pos < len(out):
            out[pos] = MASK_BYTE
    recomputed = False
    if len(data) >= 5 and data[0] == 0x7E and data[-1] == 0x7E:
        body = data[1:-3]
        if crc_bytes(body) == data[-3:-1]:
            out[-3:-1] = crc_bytes(bytes(out[1:-3]))
            recomputed = True
    return bytes(out), recomputed


def _text_summary(data: bytes) -> str:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return ""
    if text and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return "text " + repr(text)
    return ""


def annotate(frame: FrameRecord, show_secrets: bool = False) -> FrameNote:
    """Decode one recorded frame; never raises on bad bytes."""
    data = frame.data
    try:
        got = _decode(data, frame.direction.value, show_secrets)
    except Exception:  # decoders should not raise; a report must still be written
        got = _Decoded()
    decoded, apdu_offset = got.frame, got.apdu_offset
    apdu_depth = 2 if data[:1] == b"\x7e" else 1  # under Information > APDU, or the PDU
    spans = _walk(decoded.spans if decoded else ()) + _walk(tuple(got.apdu_spans), apdu_depth)
    secret = set() if show_secrets else _secret_offsets(data, spans, apdu_offset)
    masked, recomputed = mask_frame(data, secret)
    summary = decoded.summary if decoded and decoded.summary else frame.summary
    if not summary:
        summary = _text_summary(data) or f"{len(data)} bytes"
    if got.apdu_summary:
        summary = f"{summary}: {got.apdu_summary}"
    note = FrameNote(
        index=frame.index,
        conn_id=frame.conn_id,
        direction=frame.direction,
        at=frame.at,
        step_id=frame.step_id,
        kind=frame.kind or (decoded.kind.value if decoded else ""),
        summary=summary,
        data=masked,
        secret_count=len(secret),
        fcs_recomputed=recomputed,
        facts={**(decoded.fields if decoded else {}), **got.apdu_fields},
    )
    for depth, span in spans:
        # Length and id bytes of a parameter are read from the parent's meaning.
        if not span.meaning or (span.name.endswith((".id", ".length")) and not span.children):
            continue
        covered = range(span.offset, span.end)
        hidden = not show_secrets and (
            span.secret or (len(covered) > 0 and all(p in secret for p in covered))
        )
        meaning = "********" if hidden else span.meaning
        note.fields.append(FrameField(span.offset, span.length, depth, span.label, meaning))
    seen: set[str] = set()
    for finding in decoded.findings if decoded else ():
        seen.add(finding.code)
        if finding.severity.value != "info":
            note.marks.append((finding.offset, finding.length))
        note.problems.append(f"{finding.code}: {finding.message}")
    note.problems += [p for p in got.apdu_problems if p.split(":")[0] not in seen]
    for stored in frame.findings:
        code = str(stored.get("code", ""))
        if code and code not in seen:
            seen.add(code)
            note.problems.append(f"{code}: {stored.get('message', '')}")
    return note

