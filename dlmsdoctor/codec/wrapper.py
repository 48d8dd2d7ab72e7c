"""The DLMS/COSEM TCP/UDP wrapper (IEC 62056-47): build, parse, lint. Pure and sans-I/O.

PDU layout: ``version(2)=0x0001 | source wPort(2) | destination wPort(2) | length(2) | APDU``, all
big-endian; ``length`` counts the APDU bytes only. wPorts carry the client SAP and the server
logical device (1 = management).

``parse_wrapper`` never raises. Finding codes (stable):

- ``wrapper.empty`` (error): no bytes at the offset.
- ``wrapper.version`` (error): version is not 0x0001; when the bytes start ``7E A0..A8`` the
  message says they look like an HDLC frame (a meter speaking the wrapper reads them this way).
- ``wrapper.length.truncated`` (error): fewer than 8 header bytes, or fewer APDU bytes than the
  length says (kind PARTIAL).
- ``wrapper.length.mismatch`` (error): used by callers that know where the PDU ends
  (``parse_wrapper(..., end=n)``): the length field disagrees with the bytes present;
  ``corrected`` is the right length, hex.
- ``wrapper.length.zero`` (warning): length 0, a PDU without an APDU.
"""

from __future__ import annotations

from dlmsdoctor.codec.model import DecodedFrame, Finding, FrameKind, Severity, Span, hexs

WRAPPER_VERSION = 0x0001
HEADER_LENGTH = 8
IANA_PORT = 4059

_WPORT_NAMES = {
    0x01: "management client or logical device",
    0x10: "public client",
    0x20: "commonly the reading/management client",
    0x00: "no-station",
    0x7F: "broadcast",
}


def build_wrapper(src_wport: int, dst_wport: int, apdu: bytes) -> bytes:
    """A wrapper PDU: version 1, the two wPorts, the APDU length, the APDU."""
    if not (0 <= src_wport <= 0xFFFF and 0 <= dst_wport <= 0xFFFF):
        raise ValueError("wPorts are 16-bit")
    if len(apdu) > 0xFFFF:
        raise ValueError("APDU longer than the 16-bit length field")
    return (
        WRAPPER_VERSION.to_bytes(2, "big")
        + src_wport.to_bytes(2, "big")
        + dst_wport.to_bytes(2, "big")
        + len(apdu).to_bytes(2, "big")
        + apdu
    )


def wrapper_extent(buf: bytes | bytearray | memoryview, offset: int = 0) -> int | None:
    """End offset (exclusive) of the wrapper PDU at ``offset``, or None until all bytes arrived
    or when the version is not 0x0001 (not a wrapper PDU)."""
    if offset + HEADER_LENGTH > len(buf):
        return None
    if buf[offset] != 0 or buf[offset + 1] != 1:
        return None
    end = offset + HEADER_LENGTH + ((buf[offset + 6] << 8) | buf[offset + 7])
    return end if end <= len(buf) else None


def _wport_meaning(value: int) -> str:
    name = _WPORT_NAMES.get(value)
    return f"{value} ({name})" if name else str(value)


def parse_wrapper(
    buf: bytes | bytearray | memoryview, offset: int = 0, end: int | None = None
) -> DecodedFrame:
    """Decode one wrapper PDU at ``offset``. Never raises.

    ``end``, when given, is where the caller knows the PDU ends (e.g. one PDU per datagram):
    a length field that disagrees is then reported as ``wrapper.length.mismatch`` and the APDU
    taken up to ``end``.
    """
    try:
        data = buf if isinstance(buf, bytes) else bytes(buf)
        return _parse(data, offset, end)
    except Exception as exc:  # a decoder bug must not take the caller down with it
        rest = bytes(buf[offset:]) if 0 <= offset <= len(buf) else b""
        return DecodedFrame(
            FrameKind.GARBAGE, offset, rest, f"wrapper decoder error: {exc!r}",
            findings=(Finding("wrapper.decoder_error", Severity.ERROR, offset, len(rest),
                              "wrapper", f"internal decoder error {exc!r}"),),
        )


def _parse(buf: bytes, offset: int, end: int | None) -> DecodedFrame:
    n = len(buf) if end is None else min(end, len(buf))
    if offset < 0 or offset >= n:
        start = min(max(offset, 0), n)
        return DecodedFrame(
            FrameKind.PARTIAL, start, b"", "wrapper: no bytes",
            findings=(Finding("wrapper.empty", Severity.ERROR, start, 0, "wrapper",
                              "no bytes to decode"),),
        )
    spans: list[Span] = []
    findings: list[Finding] = []
    fields: dict[str, object] = {}
    have = n - offset
    if have >= 2:
        version = (buf[offset] << 8) | buf[offset + 1]
        fields["version"] = version
        ok = version == WRAPPER_VERSION
        spans.append(Span(offset, 2, "wrapper.version", "Version", version,
                          "1" if ok else f"0x{version:04X}, should be 0x0001"))
        if not ok:
            looks_hdlc = buf[offset] == 0x7E and buf[offset + 1] & 0xF0 == 0xA0
            message = (
                "version is not 0x0001: these bytes look like an HDLC frame (7E A.), which a "
                "meter speaking the wrapper reads as a bad version"
                if looks_hdlc
                else "version is not 0x0001"
            )
            findings.append(Finding("wrapper.version", Severity.ERROR, offset, 2,
                                    "wrapper.version", message, "00 01",
                                    hexs(buf[offset : offset + 2]), "00 01"))
    if have < HEADER_LENGTH:
        findings.append(Finding(
            "wrapper.length.truncated", Severity.ERROR, offset, have, "wrapper.header",
            f"only {have} of the 8 header bytes arrived", "8", str(have)))
        return DecodedFrame(FrameKind.PARTIAL, offset, buf[offset:n], "partial wrapper header",
                            tuple(spans), tuple(findings), fields)
    src = (buf[offset + 2] << 8) | buf[offset + 3]
    dst = (buf[offset + 4] << 8) | buf[offset + 5]
    length = (buf[offset + 6] << 8) | buf[offset + 7]
    fields["src_wport"] = src
    fields["dst_wport"] = dst
    fields["length"] = length
    spans.append(Span(offset + 2, 2, "wrapper.src_wport", "Source wPort", src,
                      _wport_meaning(src)))
    spans.append(Span(offset + 4, 2, "wrapper.dst_wport", "Destination wPort", dst,
                      _wport_meaning(dst)))
    apdu_pos = offset + HEADER_LENGTH
    present = n - apdu_pos
    spans.append(Span(offset + 6, 2, "wrapper.length", "Length", length,
                      f"{length} APDU bytes"))
    kind = FrameKind.WRAPPER
    if end is not None and length != present:
        findings.append(Finding(
            "wrapper.length.mismatch", Severity.ERROR, offset + 6, 2, "wrapper.length",
            f"length field says {length} APDU bytes but {present} are present",
            str(present), str(length), hexs(present.to_bytes(2, "big"))))
        apdu_end = n
    elif length > present:
        findings.append(Finding(
            "wrapper.length.truncated", Severity.ERROR, offset + 6, 2, "wrapper.length",
            f"length field says {length} APDU bytes but only {present} arrived",
            str(length), str(present)))
        kind = FrameKind.PARTIAL
        apdu_end = n
    else:
        apdu_end = apdu_pos + length
    if length == 0:
        findings.append(Finding("wrapper.length.zero", Severity.WARNING, offset + 6, 2,
                                "wrapper.length", "PDU carries no APDU"))
    apdu = buf[apdu_pos:apdu_end]
    if apdu:
        spans.append(Span(apdu_pos, len(apdu), "wrapper.apdu", "APDU", None,
                          f"{len(apdu)} bytes"))
    summary = f"WRAPPER wPort {src} -> {dst}, {len(apdu)} bytes APDU"
    if kind is FrameKind.PARTIAL:
        summary = f"partial {summary}, {length} announced"
    found_version = (buf[offset] << 8) | buf[offset + 1]
    if found_version != WRAPPER_VERSION:
        hdlc_like = buf[offset] == 0x7E and buf[offset + 1] & 0xF0 == 0xA0
        summary = (f"bad wrapper version 0x{found_version:04X}"
                   f"{' (looks like HDLC)' if hdlc_like else ''}: {summary}")
    return DecodedFrame(kind, offset, buf[offset:apdu_end], summary, tuple(spans),
                        tuple(findings), fields, apdu if kind is FrameKind.WRAPPER else None)
