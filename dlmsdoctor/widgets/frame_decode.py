"""Decode a recorded frame for the hex view and the decode tree.

The Session keeps raw bytes; spans are recomputed from them with the codec (the stored summary and
findings are a cache). A frame is decoded on its own: an APDU segmented over several HDLC frames
shows as segments here (``dlmsdoctor decode`` reassembles a whole stream).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from dlmsdoctor.codec.decode import FrameDecode, decode_bytes
from dlmsdoctor.codec.model import Finding, Severity, Span
from dlmsdoctor.session import FrameRecord


@dataclass(frozen=True, slots=True)
class FrameView:
    """What the Frames screen shows for one frame: spans and findings, offsets within ``data``."""

    data: bytes
    spans: tuple[Span, ...]
    findings: tuple[Finding, ...]
    summary: str

    def deepest_span_at(self, offset: int) -> Span | None:
        """The most specific span covering ``offset`` (what a click on a byte selects)."""
        best: Span | None = None
        for root in self.spans:
            for span in root.walk():
                if span.offset <= offset < span.end and (
                    best is None or span.length <= best.length
                ):
                    best = span
        return best

    def secret_ranges(self) -> list[tuple[int, int]]:
        return [(s.offset, s.length) for root in self.spans for s in root.walk() if s.secret]


def _stored_findings(record: FrameRecord) -> tuple[Finding, ...]:
    out: list[Finding] = []
    for doc in record.findings:
        try:
            out.append(
                Finding(
                    code=str(doc["code"]),
                    severity=Severity(doc.get("severity", "info")),
                    offset=int(doc.get("offset", 0)),
                    length=int(doc.get("length", 0)),
                    field=str(doc.get("field", "")),
                    message=str(doc.get("message", "")),
                    expected=doc.get("expected"),
                    found=doc.get("found"),
                    corrected=doc.get("corrected"),
                )
            )
        except (KeyError, ValueError, TypeError):
            continue  # a damaged cache entry is not worth failing the view for
    return tuple(out)


def decode_record(record: FrameRecord, show_secrets: bool = False) -> FrameView:
    """Spans and findings for one recorded frame (nested APDU included); never raises."""
    data = record.data
    spans: list[Span] = []
    findings: list[Finding] = []
    summary = record.summary
    try:
        result = decode_bytes(data, record.direction.value, show_secrets=show_secrets)
    except Exception:  # a codec bug must not take the TUI down
        result = None
    if result is not None:
        for frame in result.frames:
            spans.extend(frame.all_spans)
            findings.extend(frame.findings)
            summary = summary or frame.summary
    if not spans:
        spans = [Span(0, len(data), "raw", "Bytes", meaning=f"{len(data)} bytes, not decoded")]
    if result is None:
        findings = list(_stored_findings(record))
    return FrameView(data, tuple(spans), tuple(findings), summary)


def classify(data: bytes, direction: str) -> tuple[str, str, list[dict[str, object]]]:
    """Kind, one-line summary and findings (as JSON) of freshly captured bytes (live run)."""
    try:
        frames = decode_bytes(data, direction).frames
    except Exception:
        return "", "", []
    if not frames:
        return "", "", []
    kind = frames[0].frame.kind.value if len(frames) == 1 else "mixed"
    summary = " + ".join(f.summary for f in frames)
    findings = [f.to_json() for fd in frames for f in fd.findings]
    return kind, summary, findings


class DecodeCache:
    """Decodes of recently viewed frames: stepping through a big session re-decodes nothing."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[int, FrameView] = OrderedDict()

    def get(self, record: FrameRecord) -> FrameView:
        key = record.index
        view = self._items.get(key)
        if view is None or view.data != record.data:
            view = decode_record(record)
            self._items[key] = view
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        self._items.move_to_end(key)
        return view


def telling_summary(fd: FrameDecode) -> str:
    """A frame's one-liner with the most telling part first: the APDU (what was asked or
    answered) when there is one, then the link-level details (an HDLC I-frame's N(S)/N(R) and
    addresses are the same for an AARQ and a GET)."""
    if fd.apdu is not None and fd.apdu.summary:
        return f"{fd.apdu.summary} · {fd.frame.summary}"
    return fd.frame.summary


def row_facts(record: FrameRecord) -> tuple[str, bool]:
    """The frame list's summary and validity mark of one frame; never raises.

    The summary is decoded from the bytes (the stored one has only the link level); the mark of
    a recorded frame comes from its stored findings, the session's verdict."""
    try:
        frames = decode_bytes(record.data, record.direction.value).frames
    except Exception:  # a codec bug must not take the list down
        frames = ()
    if not frames:
        return record.summary or f"{len(record.data)} bytes", is_valid(record)
    summary = " + ".join(telling_summary(fd) for fd in frames)
    valid = is_valid(record) if record.summary else all(fd.valid for fd in frames)
    return summary, valid


class RowCache:
    """Summaries and marks of recently drawn rows (about 0.2 ms a decode, so only visible rows
    are decoded, once)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: OrderedDict[int, tuple[bytes, str, bool]] = OrderedDict()

    def get(self, record: FrameRecord) -> tuple[str, bool]:
        item = self._items.get(record.index)
        if item is None or item[0] != record.data:
            summary, valid = row_facts(record)
            item = (record.data, summary, valid)
            self._items[record.index] = item
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        self._items.move_to_end(record.index)
        return item[1], item[2]


def is_valid(record: FrameRecord) -> bool:
    """The validity mark of the frame list, from the stored findings (no decode per row)."""
    return not any(f.get("severity") == "error" for f in record.findings)
