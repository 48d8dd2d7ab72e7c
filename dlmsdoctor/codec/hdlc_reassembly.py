"""Reassemble APDUs segmented over HDLC I-frames (format S bit)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dlmsdoctor.codec.hdlc_fields import _W
from dlmsdoctor.codec.model import DecodedFrame, Finding


@dataclass
class Reassembler:
    """Joins the info fields of segmented I-frames (format S bit set on all but the last).

    ``feed`` takes each decoded I-frame of one direction in arrival order and returns the whole
    APDU (LLC header stripped from the first segment) when the last segment arrives, else None.
    Out-of-order N(S) is reported in ``findings`` (code ``hdlc.segment.sequence``).
    """

    findings: list[Finding] = field(default_factory=list)
    _parts: list[bytes] = field(default_factory=list)
    _next_ns: int | None = None

    @property
    def pending(self) -> bool:
        return bool(self._parts)

    def reset(self) -> None:
        self._parts.clear()
        self._next_ns = None

    def feed(self, frame: DecodedFrame) -> bytes | None:
        f = frame.fields
        if f.get("frame_type") not in ("I", "UI"):
            return None
        ns = f.get("ns")
        if isinstance(ns, int) and self._next_ns is not None and ns != self._next_ns:
            self.findings.append(Finding(
                "hdlc.segment.sequence", _W, frame.offset, len(frame.data), "hdlc.control.ns",
                f"segment N(S)={ns} but {self._next_ns} was expected next",
                str(self._next_ns), str(ns)))
        if isinstance(ns, int):
            self._next_ns = (ns + 1) & 7
        info_offset, info_length = f.get("info_offset"), f.get("info_length")
        part = b""
        if isinstance(info_offset, int) and isinstance(info_length, int):
            rel = info_offset - frame.offset
            part = frame.data[rel : rel + info_length]
        starts_apdu = part[:2] in (b"\xe6\xe6", b"\xe6\xe7")
        if self._parts and starts_apdu:
            # An LLC header opens a new APDU: the previous one never got its last segment.
            self.findings.append(Finding(
                "hdlc.segment.incomplete", _W, frame.offset, len(frame.data), "hdlc.format",
                f"a new APDU started before the last segment of the previous one "
                f"({len(self._parts)} segment(s) dropped)", "last segment", "new APDU"))
            self._parts.clear()
        self._parts.append(part)
        if f.get("segmented"):
            return None
        apdu = b"".join(self._parts)
        # the LLC header is stripped from the joined bytes: tiny segments may split it too
        if apdu[:3] in (b"\xe6\xe6\x00", b"\xe6\xe7\x00"):
            apdu = apdu[3:]
        self._parts.clear()
        return apdu
