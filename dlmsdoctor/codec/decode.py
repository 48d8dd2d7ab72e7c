"""The whole decode pipeline for a list of byte chunks: split, frame, reassemble, decode APDUs.

This is what `dlmsdoctor decode` runs and what views use to explain a session's frames. Pure:
no I/O; gurux is never imported here (the APDU decoder walks BER/A-XDR itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dlmsdoctor.codec.fast_span import fast_span
from dlmsdoctor.codec.hdlc import Reassembler, repair_hdlc
from dlmsdoctor.codec.model import DecodedFrame, Finding, FrameKind, Severity, Span
from dlmsdoctor.codec.secrets import SecretTracker, mark_secrets
from dlmsdoctor.codec.stream import split_stream

if TYPE_CHECKING:
    # The APDU decoder is imported on first use: a link-level frame (SNRM, UA, RR) never needs it,
    # and `dlmsdoctor decode` must start fast.
    from dlmsdoctor.codec.apdu import ApduDecode

DLMS_KINDS = frozenset({FrameKind.HDLC, FrameKind.WRAPPER, FrameKind.PARTIAL})
_APDU_SPAN_NAMES = ("hdlc.info.apdu", "wrapper.apdu")
_REPAIRABLE = {
    "hdlc.length.mismatch",
    "hdlc.hcs.mismatch",
    "hdlc.fcs.mismatch",
    "hdlc.params.group_length",
}


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes that arrived (or were sent) together: one pasted line, one socket read."""

    data: bytes
    direction: str | None = None  # "tx", "rx" or None
    line: int | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class InputProblem:
    line: int
    message: str
    text: str = ""


@dataclass(frozen=True, slots=True)
class FrameDecode:
    index: int
    chunk: int
    direction: str | None
    frame: DecodedFrame  # APDU spans nested under the APDU span when the APDU is contiguous
    apdu: ApduDecode | None = None
    apdu_nested: bool = False  # True when apdu.spans live inside frame.spans
    reassembled_from: tuple[int, ...] = ()
    repaired: bytes | None = None  # the frame with right lengths/checksums, when it had wrong ones
    apdu_data: bytes | None = None  # the reassembled APDU bytes (when not nested)

    @property
    def findings(self) -> tuple[Finding, ...]:
        apdu = self.apdu.findings if self.apdu is not None else ()
        return self.frame.findings + apdu

    @property
    def valid(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    @property
    def is_dlms(self) -> bool:
        """An HDLC frame or wrapper PDU (whole or cut), not text or garbage between frames."""
        return self.frame.kind in DLMS_KINDS

    @property
    def apdu_type(self) -> str | None:
        if self.apdu is None:
            return None
        value = self.apdu.fields.get("apdu_type")
        return str(value) if value is not None else None

    @property
    def summary(self) -> str:
        if self.apdu is not None and self.apdu.summary:
            return f"{self.frame.summary} | {self.apdu.summary}"
        return self.frame.summary

    @property
    def all_spans(self) -> tuple[Span, ...]:
        """Spans with absolute offsets in the frame's buffer (nested APDU included)."""
        return self.frame.spans

    @property
    def apdu_spans_if_separate(self) -> tuple[Span, ...]:
        """APDU spans relative to the reassembled APDU, when they could not be nested."""
        if self.apdu is None or self.apdu_nested:
            return ()
        return self.apdu.spans


@dataclass(frozen=True, slots=True)
class DecodeResult:
    chunks: tuple[Chunk, ...]
    frames: tuple[FrameDecode, ...]
    problems: tuple[InputProblem, ...] = field(default_factory=tuple)


def _with_children(span: Span, children: tuple[Span, ...]) -> Span:
    # dataclasses.replace costs more than the rest of the nesting together (hot path)
    return fast_span(
        span.offset, span.length, span.name, span.label, span.value, span.meaning, children,
        span.secret,
    )


def _nest(spans: tuple[Span, ...], children: tuple[Span, ...]) -> tuple[Span, ...] | None:
    """Return spans with the APDU span's children replaced by the APDU decode, or None."""
    out: list[Span] = []
    found = False
    for span in spans:
        if not found and span.name in _APDU_SPAN_NAMES:
            out.append(_with_children(span, children))
            found = True
        elif not found and span.children:
            nested = _nest(span.children, children)
            if nested is not None:
                out.append(_with_children(span, nested))
                found = True
            else:
                out.append(span)
        else:
            out.append(span)
    return tuple(out) if found else None


def _apdu_offset(frame: DecodedFrame, apdu: bytes) -> int | None:
    """Where the APDU starts: it ends right before the FCS and flag (HDLC) or the PDU's end
    (wrapper); checked against the bytes, with a walk of the spans as the fallback."""
    trailer = 3 if frame.kind is FrameKind.HDLC else 0
    rel = len(frame.data) - trailer - len(apdu)
    if rel >= 0 and frame.data[rel : rel + len(apdu)] == apdu:
        return frame.offset + rel
    for top in frame.spans:
        for span in top.walk():
            if span.name in _APDU_SPAN_NAMES:
                return span.offset
    return None


def decode_chunks(chunks: Sequence[Chunk], show_secrets: bool = False) -> DecodeResult:
    """Decode every chunk; an RX chunk right after a TX chunk is checked for echo of it."""
    frames = tuple(iter_decode(chunks, show_secrets))
    return DecodeResult(chunks=tuple(chunks), frames=frames)


def iter_decode(chunks: Iterable[Chunk], show_secrets: bool = False) -> Iterator[FrameDecode]:
    """``decode_chunks`` one frame at a time, for inputs too large to hold: what it keeps is the
    last TX chunk (for echoes) and the segments of an APDU still being reassembled."""
    index = 0
    reassemblers: dict[str | None, Reassembler] = {}
    segment_frames: dict[str | None, list[int]] = {}
    last_tx: bytes | None = None
    secrets = SecretTracker()  # a password split over segments is masked in each (issue 10)
    for chunk_index, chunk in enumerate(chunks):
        sent = last_tx if chunk.direction == "rx" else None
        for frame in split_stream(chunk.data, sent=sent, direction=chunk.direction):
            if not show_secrets:
                frame = mark_secrets(frame, secrets, chunk.direction)
            yield _decode_frame(
                index,
                chunk_index,
                chunk.direction,
                frame,
                show_secrets,
                reassemblers,
                segment_frames,
            )
            index += 1
        if chunk.direction == "tx":
            last_tx = chunk.data


@dataclass(slots=True)
class DecodeTally:
    """Running counts over decoded frames, for a summary that needs no list of them.

    DLMS frames are HDLC frames, wrapper PDUs and partial (cut) ones; everything else (text, a
    bridge's message, telnet, an echo, garbage) is an "other" chunk and never counts as a
    valid frame. Garbage (bytes that are nothing recognisable) is an error: on a DLMS line it
    means a wrong baud rate, noise or a second talker.
    """

    chunks: int = 0
    bytes: int = 0
    frames: int = 0
    dlms: int = 0
    valid: int = 0
    garbage: int = 0
    errors: int = 0  # error-severity findings
    warnings: int = 0
    frames_with_errors: int = 0  # frames or chunks with an error-severity finding

    def add_chunk(self, chunk: Chunk) -> Chunk:
        self.chunks += 1
        self.bytes += len(chunk.data)
        return chunk

    def add(self, fd: FrameDecode) -> FrameDecode:
        self.frames += 1
        errors = sum(1 for f in fd.findings if f.severity is Severity.ERROR)
        self.errors += errors
        self.warnings += sum(1 for f in fd.findings if f.severity is Severity.WARNING)
        if fd.is_dlms:
            self.dlms += 1
            self.valid += errors == 0
        elif fd.frame.kind is FrameKind.GARBAGE:
            self.garbage += 1
        if errors:
            self.frames_with_errors += 1
        return fd

    @property
    def other(self) -> int:
        return self.frames - self.dlms

    @property
    def has_errors(self) -> bool:
        """What makes `decode` exit 1: an error finding, garbage, or no DLMS frame at all."""
        return self.errors > 0 or self.garbage > 0 or self.dlms == 0


def _decode_frame(
    index: int,
    chunk_index: int,
    direction: str | None,
    frame: DecodedFrame,
    show_secrets: bool,
    reassemblers: dict[str | None, Reassembler],
    segment_frames: dict[str | None, list[int]],
) -> FrameDecode:
    repaired = None
    if frame.kind is FrameKind.HDLC and any(f.code in _REPAIRABLE for f in frame.findings):
        fixed = repair_hdlc(frame.data)
        repaired = fixed if fixed != frame.data else None

    apdu_bytes: bytes | None = None
    reassembled_from: tuple[int, ...] = ()
    if frame.kind is FrameKind.HDLC and frame.fields.get("frame_type") == "I":
        reassembler = reassemblers.setdefault(direction, Reassembler())
        pending = segment_frames.setdefault(direction, [])
        complete = reassembler.feed(frame)
        if frame.fields.get("segmented") or pending:
            pending.append(index)
            if complete is None:
                return FrameDecode(index, chunk_index, direction, frame, repaired=repaired)
            apdu_bytes, reassembled_from = complete, tuple(pending)
            pending.clear()
        else:
            apdu_bytes = frame.apdu
    elif frame.apdu is not None:
        apdu_bytes = frame.apdu

    if not apdu_bytes:
        return FrameDecode(index, chunk_index, direction, frame, repaired=repaired)

    from dlmsdoctor.codec.apdu import decode_apdu

    if not reassembled_from:
        base = _apdu_offset(frame, apdu_bytes)
        if base is not None:
            apdu = decode_apdu(apdu_bytes, base_offset=base, show_secrets=show_secrets)
            nested = _nest(frame.spans, apdu.spans)
            if nested is not None:
                nested_frame = DecodedFrame(
                    frame.kind, frame.offset, frame.data, frame.summary, nested, frame.findings,
                    frame.fields, frame.apdu,
                )
                return FrameDecode(
                    index,
                    chunk_index,
                    direction,
                    nested_frame,
                    apdu,
                    apdu_nested=True,
                    repaired=repaired,
                )
            return FrameDecode(index, chunk_index, direction, frame, apdu, repaired=repaired)
    apdu = decode_apdu(apdu_bytes, base_offset=0, show_secrets=show_secrets)
    return FrameDecode(
        index,
        chunk_index,
        direction,
        frame,
        apdu,
        reassembled_from=reassembled_from,
        repaired=repaired,
        apdu_data=apdu_bytes,
    )


def decode_bytes(
    data: bytes, direction: str | None = None, show_secrets: bool = False
) -> DecodeResult:
    return decode_chunks([Chunk(data=data, direction=direction)], show_secrets=show_secrets)
