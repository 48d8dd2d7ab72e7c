"""The shared vocabulary of the codec: spans, findings and decoded frames.

Every decoder in ``dlmsdoctor.codec`` returns these. They are pure data: no I/O,
no rich, no gurux types. Offsets are always absolute within the buffer the caller
handed in, so an annotated hex view can highlight bytes without re-parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding is. Only ERROR makes ``dlmsdoctor decode`` exit non-zero."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Finding:
    """Something the decoder noticed about the bytes, good or bad.

    ``code`` is stable (scripts and the diagnosis rules match on it), dotted and
    lower-case, e.g. ``hdlc.fcs.mismatch``. ``expected``/``found``/``corrected``
    are short strings, hex for byte values (``"A6 D9"``), decimal for counts.
    ``corrected`` is the value that would make the field right, when one can be
    computed (a right FCS, a right length).
    """

    code: str
    severity: Severity
    offset: int
    length: int
    field: str
    message: str
    expected: str | None = None
    found: str | None = None
    corrected: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "severity": self.severity.value,
            "offset": self.offset,
            "length": self.length,
            "field": self.field,
            "message": self.message,
        }
        for key in ("expected", "found", "corrected"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class Span:
    """A named byte range in wire order, possibly with children (Kaitai-style).

    ``name`` is a stable machine id (``hdlc.address.dest``); ``label`` is what a
    person reads ("Destination address"); ``value`` is the decoded value in its
    natural type (int, str, bytes) or None for structural spans; ``meaning`` is
    a one-line human explanation ("server 1/17, 2-byte address"). ``secret``
    marks bytes that must be masked in output unless the user asks otherwise.
    """

    offset: int
    length: int
    name: str
    label: str
    value: object = None
    meaning: str = ""
    children: tuple[Span, ...] = ()
    secret: bool = False

    @property
    def end(self) -> int:
        return self.offset + self.length

    def value_text(self, raw: bytes) -> str:
        """The decoded value as text when it tells more than the span's own bytes ``raw`` and
        its meaning do, else "" (a flag's 126 says nothing the 7E does not). One rule for every
        face that lists fields: `decode`, the TUI's decode tree."""
        value = self.value
        if self.meaning or value is None or self.children or isinstance(value, bytes | bytearray):
            return ""
        if isinstance(value, int) and len(raw) == 1 and value == raw[0]:
            return ""
        return str(value)

    def walk(self) -> list[Span]:
        """This span and all descendants, depth-first in wire order."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


class FrameKind(StrEnum):
    """What a chunk of a byte stream turned out to be."""

    HDLC = "hdlc"
    WRAPPER = "wrapper"
    BRIDGE_MESSAGE = "bridge-message"  # ser2net & co. text such as "Port already in use"
    IEC62056_21 = "iec62056-21"  # "/XXX5..." identification or readout
    TELNET = "telnet"  # IAC negotiation (FF FB ..), RFC 2217
    ECHO = "echo"  # the bytes we just sent, coming back
    TEXT = "text"  # other printable text
    GARBAGE = "garbage"  # bytes that are none of the above
    PARTIAL = "partial"  # the start of a frame whose end never arrived
    APDU = "apdu"  # an APDU with no framing (`decode` of a bare APDU; never from a stream)


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One chunk of a stream, decoded as far as it could be.

    ``offset`` is where ``data`` starts in the buffer the caller decoded; every
    span and finding offset is absolute in that same buffer. ``summary`` is a
    one-line description (``"SNRM 16 -> 1/1 (P)"``). ``apdu_spans`` hold the
    decode of the DLMS APDU carried inside, when there is one, with offsets in
    the same absolute coordinates when the APDU sits contiguously in ``data``,
    or relative to ``apdu`` when it was reassembled from segments.
    """

    kind: FrameKind
    offset: int
    data: bytes
    summary: str
    spans: tuple[Span, ...] = ()
    findings: tuple[Finding, ...] = ()
    fields: dict[str, object] = field(default_factory=dict)
    apdu: bytes | None = None

    @property
    def valid(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


def hexs(data: bytes) -> str:
    """Upper-case, space-separated hex, the form people paste and read."""
    return data.hex(" ").upper()
