"""Parse and lint one HDLC frame: ``parse_hdlc`` (never raises) and ``frame_extent``.

See ``dlmsdoctor.codec.hdlc`` for the finding codes.
"""

from __future__ import annotations

from collections.abc import Callable

from dlmsdoctor.codec.fast_span import fast_span
from dlmsdoctor.codec.hdlc_address import (
    address_dict,
    address_span,
    check_address_sizes,
    describe_address,
    scan_address,
)
from dlmsdoctor.codec.hdlc_fields import (
    _E,
    _I,
    FLAG,
    FORMAT_TYPE_A,
    LLC_TEXT,
    MAX_LENGTH,
    SEGMENT_BIT,
    U_MEANING,
    control_info,
    crc16_x25,
)
from dlmsdoctor.codec.hdlc_info import info_spans
from dlmsdoctor.codec.model import DecodedFrame, Finding, FrameKind, Span, hexs


def frame_extent(buf: bytes | bytearray | memoryview, offset: int = 0) -> int | None:
    """End offset (exclusive, closing flag included) of the frame whose opening flag is at
    ``offset``, per its length field.

    None when fewer than 3 bytes are there yet; when ``buf[offset]`` is not 0x7E, the format
    type is not 0xA or the length is too small for any frame (not HDLC: tell this from "wait for
    more" with ``len(buf) - offset >= 3``); or when the bytes up to the end have not all arrived.
    A wrong length field makes this extent wrong: ``parse_hdlc(...).end`` finds the real end
    (a flag after a right FCS) when the bytes are there.
    """
    if offset < 0 or offset + 3 > len(buf) or buf[offset] != FLAG:
        return None
    hi = buf[offset + 1]
    if hi & 0xF0 != 0xA0:
        return None
    length = ((hi & 0x07) << 8) | buf[offset + 2]
    if length < 7:  # format 2 + dest 1 + src 1 + control 1 + FCS 2
        return None
    end = offset + length + 2
    return end if end <= len(buf) else None


def _find_closing(buf: bytes, fmt_pos: int, start: int) -> int:
    """First position >= ``start`` holding a 0x7E whose preceding two bytes are a right FCS.

    Used only when the length field is wrong, to find where the frame really ends.
    """
    limit = min(len(buf), fmt_pos + MAX_LENGTH + 8)
    p = buf.find(b"\x7e", start, limit)
    while p != -1:
        if p - fmt_pos >= 7:
            fcs = buf[p - 2] | (buf[p - 1] << 8)
            if crc16_x25(buf[fmt_pos : p - 2]) == fcs:
                return p
        p = buf.find(b"\x7e", p + 1, limit)
    return -1


def parse_hdlc(
    buf: bytes | bytearray | memoryview,
    offset: int = 0,
    direction: str | None = None,
    *,
    lazy_spans: bool = True,
    end: int | None = None,
) -> DecodedFrame:
    """Decode one HDLC frame starting at ``offset`` (opening flag expected). Never raises.

    Findings, fields, summary and apdu are computed at once; with ``lazy_spans`` (the default)
    the span tree is built the first time ``.spans`` is read, by decoding again: most frames of
    a long capture are never shown, and building spans is most of the cost.

    ``end`` (exclusive, closing flag included when there is one) is where the caller knows the
    frame ends, from the wire around it (the stream splitter, for a frame whose header checksum
    is right but whose length field or closing flag is not): the length field and the flag are
    then checked against it (``hdlc.length.mismatch``, ``hdlc.flag.missing_end``).
    """
    try:
        data = buf if type(buf) is bytes else bytes(buf)
        if end is not None:
            return _parse(data, offset, direction, True, end)
        if lazy_spans:
            fast = _parse_clean_lazy(data, offset, direction)
            if fast is not None:
                return fast
        return _parse(data, offset, direction, not lazy_spans)
    except Exception as exc:  # a decoder bug must not take the caller down with it
        data = bytes(buf[offset:]) if 0 <= offset <= len(buf) else b""
        return DecodedFrame(
            kind=FrameKind.GARBAGE,
            offset=offset,
            data=data,
            summary=f"HDLC decoder error: {exc!r}",
            findings=(
                Finding("hdlc.decoder_error", _E, offset, len(data), "hdlc",
                         f"internal decoder error {exc!r}; please report these bytes"),
            ),
        )


_NO_SPAN = Span(0, 0, "hdlc.none", "")
# The parser's span builder; ``hdlc._span`` is this too (tests import it from there).
_span = fast_span


def _no_span(*_args: object) -> Span:
    return _NO_SPAN


_SPANS_SLOT = DecodedFrame.__dict__["spans"]  # the dataclass slot behind the lazy property


class _LazySpansFrame(DecodedFrame):
    """A DecodedFrame whose ``spans`` are decoded on first access (then kept).

    Equal in every other respect to what ``parse_hdlc(..., lazy_spans=False)`` returns.
    """

    __slots__ = ("_direction", "_pending", "_source", "_start")
    _direction: str | None
    _pending: bool
    _source: bytes
    _start: int

    @classmethod
    def make(cls, kind: FrameKind, offset: int, data: bytes, summary: str,
             findings: tuple[Finding, ...], fields: dict[str, object], apdu: bytes | None,
             source: bytes, start: int, direction: str | None) -> DecodedFrame:
        # Fill the slots directly: the frozen-dataclass __init__ costs more than the decode.
        out = object.__new__(cls)
        s_kind, s_off, s_data, s_sum, s_spans, s_find, s_fields, s_apdu, s_src, s_start, s_dir, \
            s_pending = _LAZY_SETTERS
        s_kind(out, kind)
        s_off(out, offset)
        s_data(out, data)
        s_sum(out, summary)
        s_spans(out, ())
        s_find(out, findings)
        s_fields(out, fields)
        s_apdu(out, apdu)
        s_src(out, source)
        s_start(out, start)
        s_dir(out, direction)
        s_pending(out, True)
        return out

    @property
    def spans(self) -> tuple[Span, ...]:
        if self._pending:
            full = _parse(self._source, self._start, self._direction, True)
            _SPANS_SLOT.__set__(self, full.spans)
            object.__setattr__(self, "_pending", False)
            object.__setattr__(self, "_source", b"")
        spans: tuple[Span, ...] = _SPANS_SLOT.__get__(self)
        return spans

    @spans.setter
    def spans(self, value: tuple[Span, ...]) -> None:
        # Reached through object.__setattr__ in the dataclass __init__ (and replace()).
        _SPANS_SLOT.__set__(self, value)
        object.__setattr__(self, "_pending", False)


_LAZY_SETTERS = tuple(
    getattr(cls.__dict__[name], "__set__")  # noqa: B009  (slot descriptors, not attributes)
    for cls, name in (
        *((DecodedFrame, n) for n in ("kind", "offset", "data", "summary", "spans", "findings",
                                      "fields", "apdu")),
        *((_LazySpansFrame, n) for n in ("_source", "_start", "_direction", "_pending")),
    )
)


class ParseContext:
    """Accumulators for one parse (slots keep it cheap).

    ``mk`` builds spans: ``Span`` itself, or ``_no_span`` when the caller only wants the lint
    (findings, fields, summary); spans are then built on first access (see ``_LazySpansFrame``).
    """

    __slots__ = ("findings", "mk", "source", "spans", "start", "want")

    def __init__(self, want_spans: bool, source: bytes, start: int) -> None:
        self.spans: list[Span] = []
        self.findings: list[Finding] = []
        self.want = want_spans
        self.mk: Callable[..., Span] = _span if want_spans else _no_span
        self.source = source
        self.start = start

    def frame(self, kind: FrameKind, offset: int, data: bytes, summary: str,
              fields: dict[str, object], apdu: bytes | None = None,
              direction: str | None = None) -> DecodedFrame:
        if self.want:
            out = object.__new__(DecodedFrame)
            values = (kind, offset, data, summary, tuple(self.spans), tuple(self.findings),
                      fields, apdu)
            for setter, value in zip(_LAZY_SETTERS[:8], values, strict=True):
                setter(out, value)
            return out
        return _LazySpansFrame.make(kind, offset, data, summary, tuple(self.findings), fields,
                                    apdu, self.source, self.start, direction)


# Control byte -> (frame type, N(S), N(R), P/F), for the short cut below.
_CONTROL = tuple(control_info(c) for c in range(256))
_UNNUMBERED_NO_INFO = frozenset(("SNRM", "DISC", "UA", "DM"))


# (address bytes, is the server's) -> (address_dict, describe_address): a pure function of at
# most 4 bytes, looked up instead of computed for each frame (bounded: a log has few addresses).
_ADDRESSES: dict[tuple[bytes, bool], tuple[dict[str, object], str]] = {}


def _address(raw: bytes, server: bool) -> tuple[dict[str, object], str]:
    info = address_dict(raw, "server" if server else "client")
    known = (info, describe_address(info))
    if len(_ADDRESSES) < 1024:
        _ADDRESSES[(raw, server)] = known
    return known


def _parse_clean_lazy(buf: bytes, offset: int, direction: str | None) -> DecodedFrame | None:
    """``_parse(buf, offset, direction, False)`` for the frames a poll is made of, or None.

    Taken only when nothing is wrong or unusual: the length field and the closing flag agree,
    1-byte client and 1/2/4-byte server addresses, right HCS and FCS; an I or UI frame whose
    information field starts with an LLC header of quality 00, or an SNRM, DISC, UA or DM with
    no information field. Everything else (and every finding but the assumed direction) goes
    the general way, which gives the same frame for these (tested on every vector).
    """
    n = len(buf)
    if offset < 0 or offset + 9 > n or buf[offset] != FLAG:
        return None
    fmt_pos = offset + 1
    fmt = (buf[fmt_pos] << 8) | buf[fmt_pos + 1]
    declared = fmt & MAX_LENGTH
    content_end = fmt_pos + declared
    if (fmt & 0xF000) != FORMAT_TYPE_A or declared < 7 or content_end >= n \
            or buf[content_end] != FLAG:
        return None
    pos = fmt_pos + 2
    limit = content_end - 2
    # Addresses: each ends at the byte with the low bit set.
    p = pos
    while p < limit and not buf[p] & 1:
        p += 1
    dest_len = p - pos + 1
    if p >= limit or dest_len > 4:
        return None
    p += 1
    src_start = p
    while p < limit and not buf[p] & 1:
        p += 1
    src_len = p - src_start + 1
    ctrl_pos = p + 1
    if p >= limit or src_len > 4 or ctrl_pos >= limit:
        return None
    ctrl = buf[ctrl_pos]
    ftype, ns, nr, pf = _CONTROL[ctrl]
    after = ctrl_pos + 1
    rem = content_end - after
    if rem == 2:
        if ftype not in _UNNUMBERED_NO_INFO:
            return None
        info_pos = info_end = -1
    elif ftype == "I" or ftype == "UI":
        info_pos = ctrl_pos + 3
        info_end = content_end - 2
        if info_end - info_pos < 3 or buf[info_pos] != 0xE6 or buf[info_pos + 2] != 0 \
                or buf[info_pos + 1] not in (0xE6, 0xE7):
            return None
        if buf[after] | (buf[after + 1] << 8) != crc16_x25(buf[fmt_pos:after]):
            return None
    else:
        return None
    if buf[limit] | (buf[limit + 1] << 8) != crc16_x25(buf[fmt_pos:limit]):
        return None
    seg = bool(fmt & SEGMENT_BIT)
    findings: tuple[Finding, ...] = ()
    given_direction = direction
    if direction == "tx" or direction == "rx":
        direction_from = "given"
    elif ftype == "SNRM" or ftype == "DISC":
        direction, direction_from = "tx", "frame type"
    elif ftype == "UA" or ftype == "DM":
        direction, direction_from = "rx", "frame type"
    elif info_pos >= 0:
        direction = "tx" if buf[info_pos + 1] == 0xE6 else "rx"
        direction_from = "llc"
    else:  # not reached: every frame taken here has a frame type or an LLC that tells
        return None
    to_server = direction == "tx"
    server_len, client_len = (dest_len, src_len) if to_server else (src_len, dest_len)
    if client_len != 1 or server_len == 3:
        return None
    dest_key = (buf[pos : pos + dest_len], to_server)
    src_key = (buf[src_start:ctrl_pos], not to_server)
    dest_known = _ADDRESSES.get(dest_key) or _address(*dest_key)
    src_known = _ADDRESSES.get(src_key) or _address(*src_key)
    dest_info = dest_known[0].copy()  # callers may change their frame's fields
    src_info = src_known[0].copy()
    fields: dict[str, object] = {"segmented": seg, "frame_type": ftype, "poll_final": pf}
    if ns is not None:
        fields["ns"] = ns
    if nr is not None:
        fields["nr"] = nr
    fields["direction"] = direction
    fields["direction_from"] = direction_from
    fields["dest"] = dest_info
    fields["src"] = src_info
    apdu = None
    tail = ""
    if info_pos >= 0:
        llc = buf[info_pos : info_pos + 3]
        fields["llc"] = LLC_TEXT[llc]
        apdu_pos = info_pos + 3
        alen = info_end - apdu_pos
        if seg:
            tail = f"{alen} bytes APDU segment"
        else:
            tail = f"{alen} bytes APDU"
            if alen > 0:
                apdu = buf[apdu_pos:info_end]
        fields["info_offset"] = info_pos
        fields["info_length"] = info_end - info_pos
    end = content_end + 1
    # _summary(...), with the addresses described once per address seen
    if ftype == "I":
        head = f"I N(S)={ns} N(R)={nr}"
    elif nr is not None:
        head = f"{ftype} N(R)={nr}"
    else:
        head = ftype
    summary = f"{head} {src_known[1]} -> {dest_known[1]}"
    if pf:
        summary += " P" if to_server else " F"
    if seg:
        summary += " segmented"
    if tail:
        summary = f"{summary}, {tail}"
    return _LazySpansFrame.make(FrameKind.HDLC, offset, buf[offset:end], summary, findings,
                                fields, apdu, buf, offset, given_direction)


def _parse(
    buf: bytes, offset: int, direction: str | None, want_spans: bool, end: int | None = None
) -> DecodedFrame:
    n = len(buf) if end is None else min(end, len(buf))
    if offset < 0 or offset >= n:
        start = min(max(offset, 0), n)
        return DecodedFrame(
            kind=FrameKind.PARTIAL, offset=start, data=b"", summary="HDLC: no bytes",
            findings=(Finding("hdlc.empty", _E, start, 0, "hdlc", "no bytes to decode"),),
        )
    ctx = ParseContext(want_spans, buf, offset)
    mk = ctx.mk
    spans, findings = ctx.spans, ctx.findings
    fields: dict[str, object] = {}

    if buf[offset] == FLAG:
        spans.append(mk(offset, 1, "hdlc.flag.start", "Opening flag", 0x7E))
        fmt_pos = offset + 1
    else:
        findings.append(Finding(
            "hdlc.flag.missing_start", _E, offset, 1, "hdlc.flag.start",
            "frame does not start with the 0x7E flag", "7E", f"{buf[offset]:02X}"))
        fmt_pos = offset

    if fmt_pos + 2 > n:
        findings.append(Finding(
            "hdlc.length.truncated", _E, offset, n - offset, "hdlc.format",
            "bytes end before the format field", "2 format bytes", f"{n - fmt_pos}"))
        return ctx.frame(FrameKind.PARTIAL, offset, buf[offset:], "HDLC partial: no format",
                         fields, None, direction)

    fmt = (buf[fmt_pos] << 8) | buf[fmt_pos + 1]
    declared = fmt & MAX_LENGTH
    segmented = bool(fmt & SEGMENT_BIT)
    type_ok = (fmt & 0xF000) == FORMAT_TYPE_A
    fields["segmented"] = segmented
    if not type_ok:
        findings.append(Finding(
            "hdlc.format.type", _E, fmt_pos, 1, "hdlc.format.type",
            "format type is not 0xA: these bytes are not an HDLC frame as IEC 62056-46 uses",
            "A", f"{fmt >> 12:X}"))

    if end is not None and n - fmt_pos >= 7:
        return _parse_extent(buf, offset, n, fmt_pos, fmt, ctx, fields, direction)
    # Where does the content (format .. FCS) end? Trust the length field when the closing flag
    # is where it says; otherwise look for a flag preceded by a right FCS.
    declared_end = fmt_pos + declared
    content_end = -1
    closing_present = False
    if declared >= 7 and declared_end < n and buf[declared_end] == FLAG:
        content_end, closing_present = declared_end, True
    else:
        found_end = _find_closing(buf, fmt_pos, fmt_pos + 7)
        if found_end != -1:
            content_end, closing_present = found_end, True
            right = found_end - fmt_pos
            right_fmt = (fmt & ~MAX_LENGTH) | right if right <= MAX_LENGTH else fmt
            findings.append(Finding(
                "hdlc.length.mismatch", _E, fmt_pos, 2, "hdlc.format.length",
                f"length field says {declared} bytes between the flags but the frame has {right}",
                str(right), str(declared), f"{right_fmt:04X}"))
        elif declared_end > n or (declared_end == n and declared >= 7):
            # Not all bytes here (or just the closing flag missing): a partial frame.
            have = n - fmt_pos
            if declared_end > n:
                findings.append(Finding(
                    "hdlc.length.truncated", _E, fmt_pos, have, "hdlc.format.length",
                    f"length field says {declared} bytes but only {have} arrived",
                    str(declared), str(have)))
                return _finish(FrameKind.PARTIAL, buf, offset, n, fmt_pos, fmt, n, False,
                               ctx, fields, direction, truncated=True)
            findings.append(Finding(
                "hdlc.flag.missing_end", _E, n, 0, "hdlc.flag.end",
                "bytes end where the closing 0x7E flag should be", "7E", "end of data"))
            return _finish(FrameKind.PARTIAL, buf, offset, n, fmt_pos, fmt, n, False,
                           ctx, fields, direction)
        else:
            content_end = max(declared_end, min(fmt_pos + 2, n))
            if declared < 7:
                findings.append(Finding(
                    "hdlc.frame.short", _E, fmt_pos, 2, "hdlc.format.length",
                    f"length {declared} is too small for any frame (at least 7)",
                    ">= 7", str(declared)))
            else:
                findings.append(Finding(
                    "hdlc.flag.missing_end", _E, declared_end, 1, "hdlc.flag.end",
                    "no closing 0x7E flag where the length field says the frame ends",
                    "7E", f"{buf[declared_end]:02X}"))
    end = content_end + 1 if closing_present else content_end
    return _finish(FrameKind.HDLC, buf, offset, end, fmt_pos, fmt, content_end, closing_present,
                   ctx, fields, direction)


def _parse_extent(
    buf: bytes, offset: int, end: int, fmt_pos: int, fmt: int, ctx: ParseContext,
    fields: dict[str, object], direction: str | None,
) -> DecodedFrame:  # fmt: skip
    """A frame whose end the caller found (see ``parse_hdlc``'s ``end``)."""
    declared = fmt & MAX_LENGTH
    closing_present = buf[end - 1] == FLAG
    content_end = end - 1 if closing_present else end
    right = content_end - fmt_pos
    if right != declared:
        right_fmt = (fmt & ~MAX_LENGTH) | right if right <= MAX_LENGTH else fmt
        how = "bytes were inserted" if right > declared else "bytes were lost"
        ctx.findings.append(Finding(
            "hdlc.length.mismatch", _E, fmt_pos, 2, "hdlc.format.length",
            f"length field says {declared} bytes between the flags but the frame has {right} "
            f"(its header checksum is right, so {how} after the header: line noise, a serial "
            "adapter turning LF into CR LF, a lost byte)",
            str(right), str(declared), f"{right_fmt:04X}"))
    if not closing_present:
        ctx.findings.append(Finding(
            "hdlc.flag.missing_end", _E, end, 0, "hdlc.flag.end",
            "no closing 0x7E flag: the next frame starts here", "7E",
            f"{buf[end]:02X}" if end < len(buf) else "end of data"))
    return _finish(FrameKind.HDLC, buf, offset, end, fmt_pos, fmt, content_end, closing_present,
                   ctx, fields, direction)


def _finish(
    kind: FrameKind,
    buf: bytes,
    offset: int,
    end: int,
    fmt_pos: int,
    fmt: int,
    content_end: int,
    closing_present: bool,
    ctx: ParseContext,
    fields: dict[str, object],
    direction: str | None,
    truncated: bool = False,
) -> DecodedFrame:
    mk, want = ctx.mk, ctx.want
    given_direction = direction
    spans, findings = ctx.spans, ctx.findings
    declared = fmt & MAX_LENGTH
    seg = bool(fmt & SEGMENT_BIT)
    if want:
        spans.append(mk(
            fmt_pos, 2, "hdlc.format", "Frame format", fmt,
            f"type {fmt >> 12:X}, {'segmented' if seg else 'not segmented'}, length {declared}",
            (
                mk(fmt_pos, 1, "hdlc.format.type", "Format type", fmt >> 12,
                   "type 3 (0xA)" if fmt >> 12 == 0xA else "not HDLC type 3"),
                mk(fmt_pos, 1, "hdlc.format.segmentation", "Segmentation bit", seg,
                   "more segments follow" if seg else "last or only segment"),
                mk(fmt_pos, 2, "hdlc.format.length", "Frame length", declared,
                   "bytes between the flags"),
            ),
        ))
    summary_tail = ""
    pos = fmt_pos + 2
    # Addresses and control must leave 2 bytes for the FCS (unless the frame is truncated).
    limit = content_end if truncated else max(content_end - 2, pos)
    # 1-byte addresses are the common case: test them inline before the general scan.
    dest_len = 1 if pos < limit and buf[pos] & 1 else scan_address(buf, pos, limit)
    if dest_len > 0:
        p2 = pos + dest_len
        src_len = 1 if p2 < limit and buf[p2] & 1 else scan_address(buf, p2, limit)
    else:
        src_len = -1
    ctrl_pos = pos + dest_len + src_len if src_len > 0 else -1
    if dest_len < 0 or src_len < 0 or ctrl_pos >= limit:
        where = pos if dest_len < 0 else pos + max(dest_len, 0)
        if limit - where >= 4 or (not truncated and limit - where > 0):
            findings.append(Finding(
                "hdlc.address.unterminated", _E, where, min(4, limit - where), "hdlc.address",
                "no address byte with the low bit set (address end) within 4 bytes", None,
                hexs(buf[where : min(where + 4, limit)])))
        elif not truncated:
            findings.append(Finding(
                "hdlc.frame.short", _E, fmt_pos, content_end - fmt_pos, "hdlc",
                "too few bytes for addresses, control and FCS", ">= 7", str(content_end - fmt_pos)))
        if pos < limit:
            spans.append(mk(pos, limit - pos, "hdlc.unparsed", "Unparsed bytes"))
        if not truncated and content_end - 2 >= pos:
            _check_fcs(buf, fmt_pos, content_end, ctx)
        if closing_present:
            spans.append(mk(content_end, 1, "hdlc.flag.end", "Closing flag", 0x7E))
        return ctx.frame(kind, offset, buf[offset:end], "HDLC frame with bad addresses", fields,
                         None, direction)

    dest_raw = buf[pos : pos + dest_len]
    src_raw = buf[pos + dest_len : ctrl_pos]
    ctrl = buf[ctrl_pos]
    ftype, ns, nr, pf = control_info(ctrl)
    fields["frame_type"] = ftype
    fields["poll_final"] = pf
    if ns is not None:
        fields["ns"] = ns
    if nr is not None:
        fields["nr"] = nr

    # Info field bounds: HCS only when there is more than the FCS after the control byte.
    info_pos = ctrl_pos + 3
    rem = content_end - (ctrl_pos + 1)
    has_info = rem > 2 if not truncated else rem > 0
    info_end = content_end - 2 if not truncated else content_end
    info = buf[info_pos:info_end] if has_info and info_end > info_pos else b""

    # Direction: given, else from the frame type, the LLC, the address sizes, else assumed.
    dir_note = ""
    direction_from = "given"
    if direction not in ("tx", "rx"):
        direction_from = "frame type"
        if ftype in ("SNRM", "DISC"):
            direction = "tx"
        elif ftype in ("UA", "DM", "FRMR"):
            direction = "rx"
        elif info[:2] == b"\xe6\xe6":
            direction, direction_from = "tx", "llc"
        elif info[:2] == b"\xe6\xe7":
            direction, direction_from = "rx", "llc"
        elif dest_len > 1 and src_len == 1:
            direction, direction_from = "tx", "address sizes"
        elif src_len > 1 and dest_len == 1:
            direction, direction_from = "rx", "address sizes"
        else:
            direction, direction_from = "tx", "assumed"
            dir_note = "assumed client->server: 1-byte addresses and nothing else tells"
            findings.append(Finding(
                "hdlc.direction.assumed", _I, pos, dest_len + src_len, "hdlc.address",
                "both addresses are 1 byte and the frame type does not say who sent it: "
                "read as client -> server (destination = server)"))
    fields["direction"] = direction
    fields["direction_from"] = direction_from
    to_server = direction == "tx"
    dest_info = address_dict(dest_raw, "server" if to_server else "client")
    src_info = address_dict(src_raw, "client" if to_server else "server")
    fields["dest"] = dest_info
    fields["src"] = src_info
    if want:
        spans.append(address_span(mk, pos, dest_raw, dest_info, "hdlc.address.dest",
                                   "Destination address", dir_note))
        spans.append(address_span(mk, pos + dest_len, src_raw, src_info, "hdlc.address.src",
                                   "Source address", dir_note))
    server_len, client_len = (dest_len, src_len) if to_server else (src_len, dest_len)
    if server_len == 3 or client_len != 1:
        check_address_sizes(findings, (dest_raw, dest_info, pos),
                             (src_raw, src_info, pos + dest_len))

    if want:
        ctrl_children = [
            mk(ctrl_pos, 1, "hdlc.control.type", "Frame type", ftype, U_MEANING.get(ftype, "")),
            mk(ctrl_pos, 1, "hdlc.control.pf", "Poll/final bit", pf,
               ("poll" if to_server else "final") if pf else "clear"),
        ]
        if ns is not None:
            ctrl_children.append(mk(ctrl_pos, 1, "hdlc.control.ns", "N(S)", ns,
                                    f"send sequence number {ns}"))
        if nr is not None:
            ctrl_children.append(mk(ctrl_pos, 1, "hdlc.control.nr", "N(R)", nr,
                                    f"receive sequence number {nr}"))
        spans.append(mk(ctrl_pos, 1, "hdlc.control", "Control", ctrl,
                        f"{ftype}{' P/F' if pf else ''}", tuple(ctrl_children)))
    if ftype == "unknown" or ftype in ("REJ", "SREJ"):
        findings.append(Finding(
            "hdlc.control.unknown", _E, ctrl_pos, 1, "hdlc.control",
            f"control {ctrl:02X} is no frame type IEC 62056-46 uses", None, f"{ctrl:02X}"))

    after = ctrl_pos + 1
    if truncated:
        # Show what arrived; checksums cannot be checked.
        if after < content_end:
            spans.append(mk(after, content_end - after, "hdlc.unparsed",
                              "Bytes received so far"))
    elif rem < 2:
        findings.append(Finding(
            "hdlc.frame.short", _E, after, rem, "hdlc.fcs", "no room for the FCS", "2", str(rem)))
    elif rem == 2:
        _check_fcs(buf, fmt_pos, content_end, ctx)
    elif rem < 4:
        findings.append(Finding(
            "hdlc.frame.short", _E, after, rem, "hdlc.hcs",
            "bytes after the control field are neither an FCS nor HCS + info + FCS",
            "2 or >= 5", str(rem)))
        _check_fcs(buf, fmt_pos, content_end, ctx)
    else:
        hcs_found = buf[after] | (buf[after + 1] << 8)
        hcs_right = crc16_x25(buf[fmt_pos:after])
        if hcs_found == hcs_right:
            if want:
                spans.append(mk(after, 2, "hdlc.hcs", "Header check sequence",
                                hexs(buf[after : after + 2]), "right"))
        else:
            right = hexs(hcs_right.to_bytes(2, "little"))
            spans.append(mk(after, 2, "hdlc.hcs", "Header check sequence",
                              hexs(buf[after:after + 2]), f"wrong, should be {right}"))
            findings.append(Finding(
                "hdlc.hcs.mismatch", _E, after, 2, "hdlc.hcs",
                "header check sequence is wrong: a meter drops such a frame silently",
                right, hexs(buf[after:after + 2]), right))
        summary_tail = info_spans(buf, info_pos, info_end, ftype, to_server, seg, ctx, fields)
        _check_fcs(buf, fmt_pos, content_end, ctx)

    if closing_present:
        spans.append(mk(content_end, 1, "hdlc.flag.end", "Closing flag", 0x7E))
    if has_info:
        fields["info_offset"] = info_pos
        fields["info_length"] = max(info_end - info_pos, 0)
    summary = _summary(ftype, ns, nr, pf, dest_info, src_info, seg, summary_tail, kind)
    apdu = fields.pop("_apdu", None)
    return ctx.frame(kind, offset, buf[offset:end], summary, fields,
                     apdu if isinstance(apdu, bytes) else None, given_direction)


def _check_fcs(buf: bytes, fmt_pos: int, content_end: int, ctx: ParseContext) -> None:
    mk = ctx.mk
    fcs_pos = content_end - 2
    found = buf[fcs_pos] | (buf[fcs_pos + 1] << 8)
    right = crc16_x25(buf[fmt_pos:fcs_pos])
    if found == right:
        if ctx.want:
            ctx.spans.append(mk(fcs_pos, 2, "hdlc.fcs", "Frame check sequence",
                                hexs(buf[fcs_pos:content_end]), "right"))
        return
    found_hex = hexs(buf[fcs_pos:content_end])
    right_hex = hexs(right.to_bytes(2, "little"))
    ctx.spans.append(mk(fcs_pos, 2, "hdlc.fcs", "Frame check sequence", found_hex,
                          f"wrong, should be {right_hex}"))
    ctx.findings.append(Finding(
        "hdlc.fcs.mismatch", _E, fcs_pos, 2, "hdlc.fcs",
        "frame check sequence is wrong: a meter drops such a frame silently",
        right_hex, found_hex, right_hex))


def _summary(
    ftype: str,
    ns: int | None,
    nr: int | None,
    pf: bool,
    dest: dict[str, object],
    src: dict[str, object],
    segmented: bool,
    tail: str,
    kind: FrameKind,
) -> str:
    if ftype == "I":
        head = f"I N(S)={ns} N(R)={nr}"
    elif nr is not None:
        head = f"{ftype} N(R)={nr}"
    else:
        head = ftype
    text = f"{head} {describe_address(src)} -> {describe_address(dest)}"
    if pf:
        text += " P" if dest["role"] == "server" else " F"
    if segmented:
        text += " segmented"
    if tail:
        text = f"{text}, {tail}"
    if kind is FrameKind.PARTIAL:
        text = f"partial {text}"
    return text
