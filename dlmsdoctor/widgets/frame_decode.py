"""Decode a recorded frame for the hex view and the decode tree.

The Session keeps raw bytes; spans are recomputed from them with the codec (the stored summary and
findings are a cache). A frame is decoded when it is shown, with the earlier segments of its
APDU when it ends a segmented one (same connection and direction), so its tree shows the
reassembled APDU as ``dlmsdoctor decode`` does; nothing is decoded up front.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from dlmsdoctor.codec.decode import Chunk, FrameDecode, decode_bytes, decode_chunks
from dlmsdoctor.codec.model import Finding, Severity, Span
from dlmsdoctor.session import FrameRecord


@dataclass(frozen=True, slots=True)
class FrameView:
    """What the Frames screen shows for one frame: spans and findings, offsets within ``data``.

    When this frame completes an APDU segmented over several HDLC frames, ``apdu_spans`` and
    ``apdu_findings`` (offsets within ``apdu_data``) decode the reassembled APDU, and
    ``reassembled_from`` names the session frames it came from."""

    data: bytes
    spans: tuple[Span, ...]
    findings: tuple[Finding, ...]
    summary: str
    apdu_data: bytes = b""
    apdu_spans: tuple[Span, ...] = ()
    apdu_findings: tuple[Finding, ...] = ()
    reassembled_from: tuple[int, ...] = ()
    masked: tuple[tuple[int, int], ...] = ()  # secret bytes of a segmented APDU in this frame

    @property
    def apdu_title(self) -> str:
        frames = ", ".join(f"#{i}" for i in self.reassembled_from)
        return f"APDU reassembled from frames {frames} ({len(self.apdu_data)} bytes)"

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
        own = [(s.offset, s.length) for root in self.spans for s in root.walk() if s.secret]
        return own + list(self.masked)


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


def is_hdlc_segment(data: bytes) -> bool:
    """An HDLC frame with the segmentation bit set: more of its APDU follows in a later frame.

    Read from the frame format byte (7E Ax: type 3, S = 0x08) so that walking back over many
    frames decodes none of them."""
    return len(data) > 2 and data[0] == 0x7E and data[1] & 0xF0 == 0xA0 and bool(data[1] & 0x08)


MAX_SEGMENTS = 256  # an APDU in more segments than this is shown as segments
MAX_LOOKBACK = 4 * MAX_SEGMENTS  # frames of other connections/directions skipped on the way


def preceding_segments(frames: Sequence[FrameRecord], position: int) -> list[FrameRecord]:
    """The earlier segments of the APDU that frame ``position`` may complete, oldest first.

    Only the same connection and direction count (the peer's RR frames come in between); the
    walk stops at the first frame of that stream that is not a segment, so its cost is the
    length of the APDU, not of the session."""
    if not 0 <= position < len(frames):
        return []
    record = frames[position]
    out: list[FrameRecord] = []
    at = position - 1
    while at >= 0 and position - at <= MAX_LOOKBACK and len(out) < MAX_SEGMENTS:
        earlier = frames[at]
        at -= 1
        if earlier.conn_id != record.conn_id or earlier.direction is not record.direction:
            continue
        if not is_hdlc_segment(earlier.data):
            break
        out.append(earlier)
    out.reverse()
    return out


def following_segments(frames: Sequence[FrameRecord], position: int) -> list[FrameRecord]:
    """When frame ``position`` is a segment, the later frames of its APDU up to the last one
    (same connection and direction): a middle segment's secret bytes are known only once the
    whole APDU is decoded."""
    if not 0 <= position < len(frames) or not is_hdlc_segment(frames[position].data):
        return []
    record = frames[position]
    out: list[FrameRecord] = []
    at = position + 1
    while at < len(frames) and at - position <= MAX_LOOKBACK and len(out) < MAX_SEGMENTS:
        later = frames[at]
        at += 1
        if later.conn_id != record.conn_id or later.direction is not record.direction:
            continue
        out.append(later)
        if not is_hdlc_segment(later.data):
            break
    return out


def _apdu_piece(fd: FrameDecode) -> tuple[int, int] | None:
    """Where this frame's share of a segmented APDU lies in its bytes (offset, length)."""
    for top in fd.frame.spans:
        for span in top.walk():
            if span.name == "hdlc.info.apdu":
                return span.offset, span.length
    return None


def _segment_secrets(
    frames: Sequence[FrameDecode], final: FrameDecode, chunk: int
) -> list[tuple[int, int]]:
    """Secret byte ranges, in chunk ``chunk``'s own bytes, of the APDU that ``final``
    reassembled (an LLS password split over segments stays masked in each of them)."""
    if final.apdu is None:
        return []
    spans = [s for top in final.apdu.spans for s in top.walk() if s.secret]
    secret = sorted(o for s in spans for o in range(s.offset, s.end))
    by_index = {fd.index: fd for fd in frames}
    out: list[tuple[int, int]] = []
    start = 0
    for index in final.reassembled_from:
        fd = by_index.get(index)
        piece = _apdu_piece(fd) if fd is not None else None
        if fd is None or piece is None:
            return out  # the pieces cannot be placed: mask nothing rather than the wrong bytes
        offset, length = piece
        if fd.chunk == chunk:
            out += [(offset + o - start, 1) for o in secret if start <= o < start + length]
        start += length
    return out


def decode_record(
    record: FrameRecord,
    show_secrets: bool = False,
    preceding: Sequence[FrameRecord] = (),
    following: Sequence[FrameRecord] = (),
) -> FrameView:
    """Spans and findings for one recorded frame (nested APDU included); never raises.

    ``preceding``/``following``: the other segments of its APDU, same connection and direction
    (``preceding_segments``, ``following_segments``); they are run through the codec's
    reassembler with this frame, as `dlmsdoctor decode` does for a whole stream, so a last
    segment shows the whole APDU and every segment masks its share of a secret."""
    data = record.data
    direction = record.direction.value
    spans: list[Span] = []
    findings: list[Finding] = []
    summaries: list[str] = []
    secrets: list[tuple[int, int]] = []
    chain = [*preceding, record, *following]
    chunks = [Chunk(r.data, direction) for r in chain]
    current = len(preceding)
    try:
        result = decode_chunks(chunks, show_secrets=show_secrets)
    except Exception:  # a codec bug must not take the TUI down
        result = None
    reassembled: FrameDecode | None = None
    sources: tuple[int, ...] = ()
    if result is not None:
        chunk_of = {fd.index: fd.chunk for fd in result.frames}
        for fd in result.frames:
            ours = any(chunk_of.get(i) == current for i in fd.reassembled_from)
            if fd.apdu_spans_if_separate and ours and not show_secrets:
                secrets += _segment_secrets(result.frames, fd, current)
            if fd.chunk != current:
                continue
            spans.extend(fd.all_spans)
            summaries.append(telling_summary(fd))
            if fd.apdu is not None and fd.apdu_spans_if_separate:
                reassembled = fd
                findings.extend(fd.frame.findings)
                sources = tuple(chain[chunk_of.get(i, current)].index for i in fd.reassembled_from)
            else:
                findings.extend(fd.findings)
    if not spans:
        spans = [Span(0, len(data), "raw", "Bytes", meaning=f"{len(data)} bytes, not decoded")]
    if result is None:
        findings = list(_stored_findings(record))
    summary = " + ".join(summaries) or record.summary
    if reassembled is None or reassembled.apdu is None:
        return FrameView(data, tuple(spans), tuple(findings), summary, masked=tuple(secrets))
    return FrameView(
        data,
        tuple(spans),
        tuple(findings),
        summary,
        apdu_data=reassembled.apdu_data or b"",
        apdu_spans=reassembled.apdu.spans,
        apdu_findings=reassembled.apdu.findings,
        reassembled_from=sources or (record.index,),
        masked=tuple(secrets),
    )


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

    def get(
        self, record: FrameRecord, frames: Sequence[FrameRecord] = (), position: int = -1
    ) -> FrameView:
        """``frames``/``position``: the session's list and the record's place in it, for the
        earlier segments of a segmented APDU."""
        key = record.index
        view = self._items.get(key)
        if view is None or view.data != record.data:
            following = following_segments(frames, position)
            view = decode_record(
                record, preceding=preceding_segments(frames, position), following=following
            )
            if is_hdlc_segment((following[-1] if following else record).data):
                return view  # the APDU's last segment has not arrived yet (live run): no cache
            self._items[key] = view
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        self._items.move_to_end(key)
        return view

    def clear(self) -> None:
        self._items.clear()


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


DLMS_KINDS = frozenset({"hdlc", "wrapper"})


def is_decoded(record: FrameRecord) -> bool:
    """Whether the frame is DLMS the codec understood (not text, garbage or a cut frame): only
    those get a check mark, whatever the findings say."""
    return record.kind in DLMS_KINDS


def apdu_invoke_id(record: FrameRecord) -> int | None:
    """The invoke-id of the frame's (unsegmented) GET/SET/ACTION APDU, if it has one."""
    try:
        frames = decode_bytes(record.data, record.direction.value).frames
    except Exception:  # a codec bug must not take the list down
        return None
    for fd in frames:
        if fd.apdu is not None:
            value = fd.apdu.fields.get("invoke_id")
            if isinstance(value, int):
                return value
    return None
