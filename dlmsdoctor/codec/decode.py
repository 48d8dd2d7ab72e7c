"""The whole decode pipeline for a list of byte chunks: split, frame, reassemble, decode APDUs.

This is what `dlmsdoctor decode` runs and what views use to explain a session's frames. Pure:
no I/O; gurux is never imported here (the APDU decoder walks BER/A-XDR itself).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlmsdoctor.codec.fast_span import fast_span
from dlmsdoctor.codec.hdlc import Reassembler, repair_hdlc
from dlmsdoctor.codec.model import DecodedFrame, Finding, FrameKind, Severity, Span
from dlmsdoctor.codec.stream import StreamSplitter, split_stream

if TYPE_CHECKING:
    # The APDU decoder is imported on first use: a link-level frame (SNRM, UA, RR) never needs it,
    # and `dlmsdoctor decode` must start fast.
    from dlmsdoctor.codec.apdu import ApduDecode

DLMS_KINDS = frozenset(
    {FrameKind.HDLC, FrameKind.WRAPPER, FrameKind.PARTIAL, FrameKind.APDU}
)
_APDU_SPAN_NAMES = ("hdlc.info.apdu", "wrapper.apdu", "apdu.bare")
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
    continues: bool = False  # more bytes of the chunk before (a large input read in blocks)


_CHUNK_SETTERS = tuple(
    getattr(Chunk.__dict__[name], "__set__")  # noqa: B009  (slot descriptors)
    for name in ("data", "direction", "line", "timestamp", "continues")
)


def new_chunk(
    data: bytes, direction: str | None, line: int | None, timestamp: str | None
) -> Chunk:
    """``Chunk(data, direction, line, timestamp)`` without the frozen dataclass's ``__init__``
    (once per line of a log)."""
    out = object.__new__(Chunk)
    s_data, s_direction, s_line, s_timestamp, s_continues = _CHUNK_SETTERS
    s_data(out, data)
    s_direction(out, direction)
    s_line(out, line)
    s_timestamp(out, timestamp)
    s_continues(out, False)
    return out


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
    secret: bool = False  # spans mark part of a secret split over segments (outputs mask it)

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


_BLOCK = 1 << 16  # a chunk larger than this is cut by a StreamSplitter, a block at a time


@dataclass(slots=True)
class DecodeOptions:
    """What the outputs need, read for every chunk (an output may change its mind after the
    first frames, as the view does when a log turns out long)."""

    spans: bool = True  # False: no span trees (HDLC spans built only if read, APDU not nested)


class _Pipeline:
    """What decoding keeps from one frame to the next: APDU segments being reassembled (per
    direction), and the direction learned for each pair of HDLC address bytes."""

    __slots__ = ("addresses", "options", "reassemblers", "segment_frames", "show_secrets")

    def __init__(self, show_secrets: bool, options: DecodeOptions) -> None:
        self.show_secrets = show_secrets
        self.options = options
        self.reassemblers: dict[str | None, Reassembler] = {}
        self.segment_frames: dict[str | None, list[int]] = {}
        # (dest raw, src raw) -> (direction, index of the frame that proved it)
        self.addresses: dict[tuple[object, object], tuple[str, int]] = {}


def iter_decode(
    chunks: Iterable[Chunk], show_secrets: bool = False, options: DecodeOptions | None = None
) -> Iterator[FrameDecode]:
    """``decode_chunks`` one frame at a time, for inputs too large to hold: what it keeps is the
    last TX chunk (for echoes), the undecided bytes of the chunk being split (at most one
    frame's worth, or a 64 KiB piece of noise), the segments of an APDU being reassembled and
    the direction of each pair of address bytes seen. Chunks marked ``continues`` go on the
    stream of the chunk before them."""
    index = 0
    state = _Pipeline(show_secrets, options or DecodeOptions())
    # A password split over HDLC segments is masked in each segment (issue 10, codec.secrets:
    # w10a's SecretTracker; this branch runs without it until that lands).
    tracker = _secret_tracker() if not show_secrets else None
    last_tx: bytes | None = None
    splitter: StreamSplitter | None = None
    owner: tuple[int, str | None] = (0, None)  # chunk index and direction of the splitter
    for chunk_index, chunk in enumerate(chunks):
        if splitter is not None and not chunk.continues:
            for frame in splitter.close():
                yield _decoded(tracker, index, *owner, frame, state)
                index += 1
            splitter = None
        if splitter is None and not chunk.continues and len(chunk.data) <= _BLOCK:
            sent = last_tx if chunk.direction == "rx" else None
            frames = split_stream(
                chunk.data, sent=sent, direction=chunk.direction,
                lazy_spans=not state.options.spans,
            )  # fmt: skip
            if not (len(frames) == 1 and frames[0].kind is _HDLC) and all(
                f.kind in _NOT_FRAMED for f in frames
            ):
                bare = bare_apdu(chunk.data)
                frames = [bare] if bare is not None else frames
            for frame in frames:
                yield _decoded(tracker, index, chunk_index, chunk.direction, frame, state)
                index += 1
        else:
            if splitter is None:
                sent = last_tx if chunk.direction == "rx" else None
                splitter = StreamSplitter(sent=sent, direction=chunk.direction)
                owner = (chunk_index, chunk.direction)
            data = chunk.data
            for start in range(0, len(data), _BLOCK):
                for frame in splitter.feed(data[start : start + _BLOCK]):
                    yield _decoded(tracker, index, *owner, frame, state)
                    index += 1
        if chunk.direction == "tx":
            last_tx = chunk.data
    if splitter is not None:
        for frame in splitter.close():
            yield _decoded(tracker, index, *owner, frame, state)
            index += 1


def _secret_tracker() -> Any:
    from dlmsdoctor.codec import secrets

    # codec.secrets' tracker is another helper's work (w10a); absent, nothing is marked here.
    tracker = getattr(secrets, "SecretTracker", None)
    return tracker() if tracker is not None else None


def _decoded(
    tracker: Any, index: int, chunk_index: int, direction: str | None, frame: DecodedFrame,
    state: _Pipeline,
) -> FrameDecode:  # fmt: skip
    """``_decode_frame``, after marking the part of a secret a segment carries (when the
    tracker of ``codec.secrets`` is there)."""
    if tracker is None:
        return _decode_frame(index, chunk_index, direction, frame, state)
    from dlmsdoctor.codec import secrets

    marked = getattr(secrets, "mark_secrets")(frame, tracker, direction)  # noqa: B009
    fd = _decode_frame(index, chunk_index, direction, marked, state)
    return fd if marked is frame else dataclasses.replace(fd, secret=True)


_NOT_FRAMED = (FrameKind.GARBAGE, FrameKind.TEXT)  # what a bare APDU reads as to the splitter
_BARE_FAULTS = frozenset(
    ("apdu.ber.length", "apdu.truncated", "apdu.trailing_bytes", "apdu.axdr.length",
     "apdu.unknown_tag", "apdu.internal_error", "apdu.axdr.choice", "apdu.axdr.type",
     "apdu.ber.unexpected")
)  # fmt: skip


def bare_apdu(data: bytes) -> DecodedFrame | None:
    """``data`` as an APDU with no HDLC or wrapper framing (gurux traces in PDU mode, Wireshark's
    DLMS pane, many poller logs), when its tag is one the codec knows and it decodes to its last
    byte; the direction comes from the tag (a GET request is sent by the client)."""
    from dlmsdoctor.codec.apdu import apdu_direction, decode_apdu, known_tag

    if not data or not known_tag(data[0]):
        return None
    if any(f.code in _BARE_FAULTS for f in decode_apdu(data).findings):
        return None
    direction = apdu_direction(data[0])
    who = {"tx": "client -> server", "rx": "server -> client"}.get(direction or "", "")
    note = Finding(
        "apdu.bare", Severity.INFO, 0, len(data), "apdu",
        "no HDLC frame or wrapper header around these bytes: read as a bare APDU"
        + (f" ({who}, from its tag)" if who else ""),
    )  # fmt: skip
    span = Span(0, len(data), "apdu.bare", "APDU (no framing)")
    fields: dict[str, object] = {"direction": direction, "direction_from": "apdu tag"}
    return DecodedFrame(
        FrameKind.APDU, 0, data, "bare APDU" + (f" {who}" if who else ""), (span,), (note,),
        fields, data,
    )  # fmt: skip


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
        findings = fd.findings
        errors = 0
        if findings:
            errors = sum(1 for f in findings if f.severity is Severity.ERROR)
            self.errors += errors
            self.warnings += sum(1 for f in findings if f.severity is Severity.WARNING)
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


def _learn_direction(frame: DecodedFrame, index: int, state: _Pipeline) -> DecodedFrame:
    """One direction per pair of address bytes: a frame whose direction only its address sizes
    suggest (or nothing) takes the direction an earlier frame with the same address bytes
    proved (its frame type or LLC), so that a meter's continuation segments (no LLC) are not
    shown as sent by the client while its first segment is shown as sent by the meter."""
    fields = frame.fields
    dest, src = fields.get("dest"), fields.get("src")
    if not isinstance(dest, dict) or not isinstance(src, dict):
        return frame
    if not getattr(frame, "_pending", False) and any(s.secret for s in frame.spans):
        return frame  # a segment carrying part of a secret (codec.secrets): a re-parse would
        # drop its marks and the masked findings, and show the password
    key = (dest.get("raw"), src.get("raw"))
    how, direction = fields.get("direction_from"), fields.get("direction")
    if how in ("frame type", "llc", "given") and direction in ("tx", "rx"):
        state.addresses[key] = (str(direction), index)
        state.addresses[(key[1], key[0])] = ("rx" if direction == "tx" else "tx", index)
        return frame
    learned = state.addresses.get(key)
    if learned is None or frame.kind is not FrameKind.HDLC:
        return frame
    from dlmsdoctor.codec.hdlc import parse_hdlc
    from dlmsdoctor.codec.stream import rebase

    again = parse_hdlc(frame.data, 0, learned[0], lazy_spans=False)
    if len(again.data) != len(frame.data):
        return frame
    note = Finding(
        "hdlc.direction.learned", Severity.INFO, frame.offset + 3, 2, "hdlc.address",
        f"direction from frame {learned[1]}, which has the same address bytes and says who "
        "sent it (frame type or LLC)",
    )  # fmt: skip
    extra = {k: v for k, v in fields.items() if k not in again.fields}
    moved = rebase(again, frame.offset) if frame.offset else again
    return DecodedFrame(
        moved.kind, moved.offset, frame.data, moved.summary, moved.spans,
        (*moved.findings, note), {**moved.fields, **extra, "direction_from": "addresses seen"},
        moved.apdu,
    )  # fmt: skip


def _without_llc_warning(frame: DecodedFrame) -> DecodedFrame:
    """A continuation segment carries no LLC header: that is the rule, not a fault."""
    if not any(f.code == "hdlc.llc.missing" for f in frame.findings):
        return frame
    findings = tuple(f for f in frame.findings if f.code != "hdlc.llc.missing")
    return DecodedFrame(
        frame.kind, frame.offset, frame.data, frame.summary, frame.spans, findings,
        {**frame.fields, "continuation": True}, frame.apdu,
    )  # fmt: skip


_HDLC, _APDU = FrameKind.HDLC, FrameKind.APDU
_FD_SETTERS = tuple(
    getattr(FrameDecode.__dict__[name], "__set__")  # noqa: B009  (slot descriptors)
    for name in ("index", "chunk", "direction", "frame", "apdu", "apdu_nested",
                 "reassembled_from", "repaired", "apdu_data", "secret")
)  # fmt: skip


def _frame_decode(
    index: int, chunk: int, direction: str | None, frame: DecodedFrame,
    apdu: ApduDecode | None, repaired: bytes | None,
) -> FrameDecode:  # fmt: skip
    """``FrameDecode(...)`` without the frozen dataclass's ``__init__`` (the hot path)."""
    out = object.__new__(FrameDecode)
    for setter, value in zip(
        _FD_SETTERS, (index, chunk, direction, frame, apdu, False, (), repaired, None, False),
        strict=True,
    ):
        setter(out, value)
    return out


_DECODE_APDU: list[Callable[..., ApduDecode]] = []


def _apdu_decoder() -> Callable[..., ApduDecode]:
    """The APDU decoder, imported on first use (link-level frames never need it)."""
    if not _DECODE_APDU:
        from dlmsdoctor.codec.apdu import decode_apdu

        _DECODE_APDU.append(decode_apdu)
    return _DECODE_APDU[0]


def _decode_frame(
    index: int,
    chunk_index: int,
    direction: str | None,
    frame: DecodedFrame,
    state: _Pipeline,
) -> FrameDecode:
    # This runs once per frame of a log: enum members and the APDU decoder are module globals.
    show_secrets = state.show_secrets
    kind = frame.kind
    if direction is None:
        if kind is _HDLC:
            frame = _learn_direction(frame, index, state)
        elif kind is _APDU:
            tag_direction = frame.fields.get("direction")
            direction = tag_direction if isinstance(tag_direction, str) else None
    repaired = None
    if kind is _HDLC and frame.findings and any(f.code in _REPAIRABLE for f in frame.findings):
        fixed = repair_hdlc(frame.data)
        repaired = fixed if fixed != frame.data else None

    apdu_bytes: bytes | None = None
    reassembled_from: tuple[int, ...] = ()
    fields = frame.fields
    if kind is _HDLC and fields.get("frame_type") in ("I", "UI"):
        pending = state.segment_frames.get(direction)
        if not pending and not fields.get("segmented"):
            apdu_bytes = frame.apdu  # a whole APDU in one frame: nothing to reassemble
        else:
            if pending is None:
                pending = state.segment_frames[direction] = []
            reassembler = state.reassemblers.setdefault(direction, Reassembler())
            if pending:
                frame = _without_llc_warning(frame)
            complete = reassembler.feed(frame)
            pending.append(index)
            if complete is None:
                return _frame_decode(index, chunk_index, direction, frame, None, repaired)
            apdu_bytes, reassembled_from = complete, tuple(pending)
            pending.clear()
    elif frame.apdu is not None:
        apdu_bytes = frame.apdu

    if not apdu_bytes:
        return _frame_decode(index, chunk_index, direction, frame, None, repaired)

    decode_apdu = _apdu_decoder()
    if not reassembled_from:
        base = _apdu_offset(frame, apdu_bytes)
        if base is not None:
            lazy = not state.options.spans
            apdu = decode_apdu(
                apdu_bytes, base_offset=base, show_secrets=show_secrets, lazy_spans=lazy
            )
            if lazy:
                # No span tree wanted: the APDU's spans stay apart (offsets absolute all the
                # same), and the frame's own are built only if something reads them.
                return _frame_decode(index, chunk_index, direction, frame, apdu, repaired)
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
