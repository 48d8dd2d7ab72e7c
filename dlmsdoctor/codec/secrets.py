"""Masking helpers: secrets (passwords, keys) never reach a screen or an export unless asked.

Decoders mark secret byte ranges with ``Span.secret``; these helpers turn that into the offsets
to hide and into masked hex, and scrub known secret strings from free text (finding messages,
log lines) in their plain and hex spellings.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from dlmsdoctor.codec.model import DecodedFrame, Finding, FrameKind, Span

MASK_BYTE = "**"
MASK_TEXT = "********"
MIN_HEX_SECRET = 3  # shorter secrets are not scrubbed in hex form: "00" is everywhere in hex


def secret_offsets(spans: Iterable[Span]) -> frozenset[int]:
    """Absolute offsets of every byte under a span marked secret, anywhere in the tree."""
    out: set[int] = set()
    for root in spans:
        for span in root.walk():
            if span.secret and span.length > 0:
                out.update(range(span.offset, span.offset + span.length))
    return frozenset(out)


def mask_bytes(data: bytes, spans: Iterable[Span], *, offset: int = 0) -> list[str]:
    """One display token per byte of ``data`` (which starts at absolute ``offset``): upper-case
    hex, or ``**`` for a secret byte."""
    hidden = secret_offsets(spans)
    return [MASK_BYTE if offset + i in hidden else f"{b:02X}" for i, b in enumerate(data)]


def masked_hex(data: bytes, spans: Iterable[Span], *, offset: int = 0, sep: str = " ") -> str:
    """``data`` as hex with secret bytes shown as ``**``."""
    return sep.join(mask_bytes(data, spans, offset=offset))


def mask_text(text: str, secrets: Iterable[str | bytes], placeholder: str = MASK_TEXT) -> str:
    """``text`` with every known secret replaced by ``placeholder``.

    Each secret is scrubbed as written and, when at least MIN_HEX_SECRET bytes long, in the hex
    spellings a message may carry (``31 32 33``, ``313233``, any case).
    """
    needles: set[str] = set()
    hex_needles: set[str] = set()
    for secret in secrets:
        if isinstance(secret, bytes):
            raw = secret
            with contextlib.suppress(UnicodeDecodeError):  # binary keys are scrubbed as hex only
                needles.add(secret.decode("utf-8"))
        else:
            raw = secret.encode("utf-8")
            needles.add(secret)
        if len(raw) >= MIN_HEX_SECRET:
            hex_needles.add(raw.hex(" ").upper())
            hex_needles.add(raw.hex().upper())
    for needle in sorted((n for n in needles if n), key=len, reverse=True):
        text = text.replace(needle, placeholder)
    for needle in sorted(hex_needles, key=len, reverse=True):
        text = _replace_casefold(text, needle, placeholder)
    return text


def _replace_casefold(text: str, needle: str, placeholder: str) -> str:
    """Replace ``needle`` (upper-case hex) in ``text`` whatever the case of its letters."""
    upper = text.upper()
    if needle not in upper:
        return text
    out: list[str] = []
    pos = 0
    while True:
        hit = upper.find(needle, pos)
        if hit < 0:
            break
        out.append(text[pos:hit])
        out.append(placeholder)
        pos = hit + len(needle)
    out.append(text[pos:])
    return "".join(out)


# -- secrets by meaning, whatever the segmentation ---------------------------------------------
# An AARQ longer than the meter's max information field goes out in HDLC segments, and the
# password may straddle two of them: no single segment decodes as an AARQ. The secret bytes
# always FOLLOW the BER headers that say where they are (tag, length, inner tag, length), so a
# walk of the APDU bytes seen so far finds every secret byte as soon as it is sent: nothing
# has to be held back or masked afterwards.

_OPEN = 1 << 62  # "to the end of the APDU": a damaged AARQ is masked from the damage on
_AARQ_ELEMENTS = frozenset({0x80, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0x8A,
                            0x8B, 0xAC, 0xBD, 0xBE})
# an AARQ far longer than any real one, still undecided: judged damaged (memory stays bounded)
MAX_AARQ_PREFIX = 64 * 1024


class _Incomplete(Exception):
    """The bytes seen so far end inside a header: more are needed."""


def _length(buf: bytes, pos: int) -> tuple[int, int] | None:
    """BER definite length at ``pos``: (length, position after it); None when malformed;
    raises _Incomplete when ``buf`` ends inside it."""
    if pos >= len(buf):
        raise _Incomplete
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 3:
        return None
    if pos + 1 + count > len(buf):
        raise _Incomplete
    return int.from_bytes(buf[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def aarq_secret_ranges(apdu: bytes) -> tuple[list[tuple[int, int]], bool]:
    """Secret byte ranges ``(start, end)`` of an AARQ, from its first bytes (``apdu`` may be
    only the start of it): the calling-authentication-value (the LLS password, an HLS
    challenge) and a dedicated key in a plain InitiateRequest. ``end`` may lie beyond the bytes
    given. The second value says whether the answer is final (more bytes cannot add a range).

    Never raises. A damaged AARQ (unknown or out-of-order element, bad length) is secret from
    the damage on, as in the decoder: a wrong length may show a password as something else."""
    if not apdu:
        return [], False
    if apdu[0] != 0x60:
        return [], True
    ranges: list[tuple[int, int]] = []
    try:
        head = _length(apdu, 1)
        if head is None:
            return [(1, _OPEN)], True
        length, cur = head
        end = cur + length
        last = -1
        while cur < end:
            if cur >= len(apdu):
                return ranges, False
            tag = apdu[cur]
            number = tag & 0x1F
            got = _length(apdu, cur + 1)
            if tag not in _AARQ_ELEMENTS or number <= last or got is None:
                ranges.append((cur, _OPEN))
                return ranges, True
            last = number
            size, body = got
            if tag == 0xAC:
                ranges.append(_auth_value(apdu, body, size))
            elif tag == 0xBE:
                key = _dedicated_key(apdu, body, body + size)
                if key is not None:
                    ranges.append(key)
            cur = body + size
        return ranges, True
    except _Incomplete:
        return ranges, False


def _auth_value(apdu: bytes, body: int, size: int) -> tuple[int, int]:
    """The value of ``AC len {80|81} len value``; the whole element body when its inside is not
    that. Raises _Incomplete while the inner header is cut (no secret byte has come yet)."""
    if size < 2:
        return body, body + size
    if body >= len(apdu):
        raise _Incomplete
    if apdu[body] in (0x80, 0x81):
        inner = _length(apdu, body + 1)
        if inner is not None and inner[1] + inner[0] <= body + size:
            return inner[1], inner[1] + inner[0]
    return body, body + size


def _dedicated_key(apdu: bytes, body: int, end: int) -> tuple[int, int] | None:
    """``BE len 04 len 01 01 keylen key ...``: the dedicated key of a plain InitiateRequest
    (absent in ours; a ciphered one, tag 0x21, hides it already). Raises _Incomplete."""
    if body >= end:
        return None
    if body >= len(apdu):
        raise _Incomplete
    if apdu[body] != 0x04:
        return None
    got = _length(apdu, body + 1)
    if got is None:
        return None
    _, pos = got
    for need in (pos, pos + 1):
        if need >= len(apdu):
            raise _Incomplete
    if apdu[pos] != 0x01 or apdu[pos + 1] != 0x01:  # InitiateRequest, dedicated-key present
        return None
    if pos + 2 >= len(apdu):
        raise _Incomplete
    key_len = apdu[pos + 2]
    return pos + 3, pos + 3 + key_len


_LLC = (b"\xe6\xe6\x00", b"\xe6\xe7\x00")


def info_secret_ranges(info: bytes) -> tuple[list[tuple[int, int]], bool]:
    """``aarq_secret_ranges`` for the information field bytes of an HDLC APDU (its LLC header
    first, when it has one; the header itself may still be cut)."""
    if len(info) < 3 and any(llc.startswith(info) for llc in _LLC):
        return [], False
    skip = 3 if info[:3] in _LLC else 0
    ranges, settled = aarq_secret_ranges(info[skip:])
    return [(start + skip, end + skip) for start, end in ranges], settled


@dataclass
class _Stream:
    prefix: bytearray = field(default_factory=bytearray)  # information bytes until settled
    seen: int = 0  # information bytes so far (the segments fed)
    ranges: list[tuple[int, int]] = field(default_factory=list)
    settled: bool = False  # the secrets of this APDU are all known

    def add(self, part: bytes) -> list[tuple[int, int]]:
        """Positions (in ``part``) of its secret bytes."""
        base = self.seen
        self.seen += len(part)
        if not self.settled:
            self.prefix += part
            self.ranges, self.settled = info_secret_ranges(bytes(self.prefix))
            if not self.settled and len(self.prefix) > MAX_AARQ_PREFIX:
                self.ranges.append((len(self.prefix), _OPEN))
                self.settled = True
            if self.settled:
                self.prefix = bytearray()
        out: list[tuple[int, int]] = []
        for start, end in self.ranges:
            lo, hi = max(start, base), min(end, self.seen)
            if lo < hi:
                out.append((lo - base, hi - base))
        return out


class SecretTracker:
    """Which bytes of each frame are secret, BY MEANING: AARQs are followed across their HDLC
    segments (per stream: one per connection and direction), so a password split over two
    frames, or more, is found in each. The one function the recorder and ``decode`` call."""

    def __init__(self) -> None:
        self._streams: dict[Hashable, _Stream] = {}

    def offsets(self, frame: DecodedFrame, stream: Hashable = None) -> frozenset[int]:
        """Absolute offsets (as in ``frame``'s spans) of the secret bytes of ``frame``; feed
        every frame of a stream in order."""
        fields = frame.fields
        if frame.kind is FrameKind.WRAPPER:
            ranges, _ = aarq_secret_ranges(frame.data[8:])
            return _positions(frame.offset + 8, len(frame.data) - 8, ranges)
        if frame.kind is not FrameKind.HDLC or fields.get("frame_type") not in ("I", "UI"):
            return frozenset()
        info, length = fields.get("info_offset"), fields.get("info_length")
        if not isinstance(info, int) or not isinstance(length, int):
            return frozenset()
        rel = info - frame.offset
        part = frame.data[rel : rel + length]
        state = self._streams.get(stream)
        if state is None or part[:3] in _LLC:  # a new APDU (as the Reassembler sees it)
            state = self._streams[stream] = _Stream()
        hidden = state.add(part)
        if not fields.get("segmented"):
            del self._streams[stream]
        return frozenset(p for lo, hi in hidden for p in range(info + lo, info + hi))

    def in_progress(self, stream: Hashable = None) -> bool:
        """A segmented APDU of ``stream`` awaits more segments."""
        return stream in self._streams

    def reset(self, stream: Hashable = None) -> None:
        self._streams.pop(stream, None)


def _positions(base: int, size: int, ranges: Iterable[tuple[int, int]]) -> frozenset[int]:
    return frozenset(p for start, end in ranges
                     for p in range(base + start, base + min(end, size)))


def mask_frame_bytes(data: bytes, offsets: Iterable[int], *, base: int = 0) -> bytes:
    """``data`` (starting at absolute ``base``) with the bytes at ``offsets`` replaced by ``*``;
    an HDLC frame's FCS recomputed when it was right, so the masked frame still checks."""
    from dlmsdoctor.codec.crc import crc_bytes

    out = bytearray(data)
    for pos in offsets:
        if 0 <= pos - base < len(out):
            out[pos - base] = 0x2A
    if len(data) >= 5 and data[0] == 0x7E and data[-1] == 0x7E and crc_bytes(
            data[1:-3]) == data[-3:-1]:
        out[-3:-1] = crc_bytes(bytes(out[1:-3]))
    return bytes(out)


def mark_secrets(frame: DecodedFrame, tracker: SecretTracker,
                 stream: Hashable = None) -> DecodedFrame:
    """``frame`` with a span marked ``secret`` over each run of secret bytes the tracker finds
    in it, so every view that masks by spans masks them (``decode`` calls this on each frame of
    a stream: a segment of an AARQ holds no decodable APDU of its own)."""
    continued = tracker.in_progress(stream)
    hidden = tracker.offsets(frame, stream)
    if not hidden or not (continued or frame.fields.get("segmented")):
        return frame  # a whole APDU: the APDU decoder marks its secrets itself
    runs: list[Span] = []
    ordered = sorted(hidden)
    start = prev = ordered[0]
    for pos in [*ordered[1:], -2]:
        if pos != prev + 1:
            runs.append(Span(start, prev + 1 - start, "hdlc.info.secret", "Secret (segment)",
                             None, "part of a secret split over HDLC segments", secret=True))
            start = pos
        prev = pos
    return dataclasses.replace(frame, spans=(*frame.spans, *runs),
                               findings=_masked_findings(frame, hidden))


def _masked_findings(frame: DecodedFrame, hidden: frozenset[int]) -> tuple[Finding, ...]:
    """The frame's findings with the secret bytes they quote (a lint finding shows the bytes
    it found: "found 31 32 33" where a continuation segment has no LLC header) as ``**``."""
    out = []
    for finding in frame.findings:
        span = range(finding.offset, finding.offset + finding.length)
        if not any(p in hidden for p in span):
            out.append(finding)
            continue
        rel = finding.offset - frame.offset
        raw = frame.data[max(0, rel) : max(0, rel) + finding.length]
        plain = raw.hex(" ").upper()
        shown = " ".join(MASK_BYTE if finding.offset + i in hidden else f"{b:02X}"
                         for i, b in enumerate(raw))

        def scrub(text: str | None, plain: str = plain, shown: str = shown) -> str | None:
            if not text or not plain:
                return text
            text = _replace_casefold(text, plain, shown)
            return _replace_casefold(text, plain.replace(" ", ""), shown.replace(" ", ""))

        out.append(dataclasses.replace(
            finding, message=scrub(finding.message) or "", expected=scrub(finding.expected),
            found=scrub(finding.found), corrected=scrub(finding.corrected)))
    return tuple(out)
