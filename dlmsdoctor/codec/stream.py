"""Cut a byte stream into HDLC frames, wrapper PDUs, partial frames and recognised gaps.

``split_stream(buf)`` decodes a whole buffer (a paste, a capture); ``StreamSplitter`` does the
same for a socket, holding back only what more bytes could still change. Feeding a stream
byte by byte and then calling ``close()`` gives the chunks ``split_stream`` gives for the
whole: same kinds, bytes, absolute offsets, spans, findings and fields (compare those, not the
objects: the HDLC decoder may return a lazy-spans subclass of ``DecodedFrame`` on one path).
A ser2net message or an IEC 62056-21 line is given out as soon as its line end arrives, even
when nothing follows it; other text and noise wait for what ends them.

The chunks tile the buffer in order: each chunk starts where the previous one ended, except
after two HDLC frames that share one flag (``7E .. 7E .. 7E``, allowed by ISO/IEC 13239): the
second frame's chunk starts on the shared flag, so that its ``data`` is a whole frame, and
carries ``fields["shared_flag"] = True``.

Rules (why, in brief):
- At 7E the format field (type A, 11-bit length) says where the frame ends; a frame is taken
  when the byte there is the closing flag and either the FCS is right or both addresses are
  well formed (1, 2 or 4 bytes), so that random noise rarely becomes a "frame".
- A frame whose end lies beyond the buffer is PARTIAL (``stream.truncated``), unless a
  complete frame with a right FCS starts inside what it claims: then the start was noise.
- Checksums are trusted over lengths: a 7E followed by a header (addresses, control) whose HCS
  is right is a frame even when its length field or closing flag is wrong (bytes inserted, lost
  or flipped after the header); it ends at the first flag after its header that the wire proves
  to close it (the input ends after it, or a valid frame starts right after it or on it), and
  the decoder reports ``hdlc.length.mismatch`` / ``hdlc.flag.missing_end``. A frame or wrapper
  PDU that its own FCS does not prove never swallows a frame that its FCS proves.
- At 00 01 a wrapper PDU is taken when its wPorts fit in 14 bits, its length is not zero and
  its APDU starts with a known xDLMS/ACSE tag; found inside other bytes (after a gap), it also
  needs the whole PDU present and an APDU that ends where its length says.
- Told what was ``sent``, bytes that repeat it are an ECHO chunk. A partial repeat gives way
  to a complete, valid HDLC frame or wrapper PDU at the same place: a reply may share its
  first bytes with the request (wrapper wPorts 1 -> 1, HDLC client 1 / server 1).
- Everything else is a gap, handed to ``dlmsdoctor.codec.text.classify_gap``; gaps longer than
  64 KiB are cut into 64 KiB pieces so that a socket spewing noise holds bounded memory.

Finding codes emitted here (plus those of ``text``, ``hdlc`` and ``wrapper``):
- ``stream.truncated`` (error): a frame cut at the end, with how many bytes are missing.
- ``stream.bytes_outside_frame`` (warning): unrecognised bytes before, between or after frames.
- ``stream.decoder_error`` (error): a frame decoder raised; the bytes are kept, undecoded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from dlmsdoctor.codec import text
from dlmsdoctor.codec.crc import crc16_x25
from dlmsdoctor.codec.hdlc_parse import parse_hdlc
from dlmsdoctor.codec.model import DecodedFrame, Finding, FrameKind, Severity, Span

FLAG = 0x7E
MIN_HDLC_LENGTH = 7  # format(2) + dest(1) + src(1) + control(1) + FCS(2)
MAX_FRAME = 0x7FF + 2 + 8  # 11-bit length + 2 flags, plus slack for a wrong length field
MAX_LENGTH_MISMATCH_TRIES = 4  # flags tried for a frame whose length field is wrong
WRAPPER_HEADER = 8
MAX_GAP = 65536
MAX_WPORT = 0x3FFF

# First byte of an APDU a wrapper can carry (IEC 62056-5-3 / Green Book tag list).
APDU_TAGS = frozenset(
    (0x01, 0x05, 0x06, 0x08, 0x0C, 0x0D, 0x0E, 0x0F, 0x16, 0x18, 0x21, 0x22, 0x28, 0x2E,
     *range(0x60, 0x64), *range(0xC0, 0xE1))
)  # fmt: skip


class _NeedMore:
    """The answer at this position depends on bytes that have not arrived yet."""


NEED_MORE = _NeedMore()
_Result = DecodedFrame | _NeedMore | None


# ---------------------------------------------------------------------------------------------
# frame candidates


def _address_size(buf: bytes, p: int, end: int) -> int:
    """Bytes of the HDLC address at ``p`` (LSB=1 ends it); 0 if unterminated within 4 bytes,
    -1 if the bytes end before that is known."""
    for i in range(4):
        if p + i >= end:
            return -1
        if buf[p + i] & 1:
            return i + 1
    return 0


def _header_sane(buf: bytes, p: int, end: int) -> bool | None:
    """Are both addresses of the frame at ``p`` 1, 2 or 4 bytes? None: not all bytes are here."""
    dest = _address_size(buf, p + 3, end)
    if dest < 0:
        return None
    if dest not in (1, 2, 4):
        return False
    src = _address_size(buf, p + 3 + dest, end)
    if src < 0:
        return None
    return src in (1, 2, 4)


def _hdlc_length(buf: bytes, p: int) -> int:
    return ((buf[p + 1] & 0x07) << 8) | buf[p + 2]


def _fcs_ok(buf: bytes, p: int, q: int) -> bool:
    """Is there a right FCS before the flag at ``q`` for a frame opened at ``p``?"""
    if q - p < MIN_HDLC_LENGTH + 1:
        return False
    return crc16_x25(buf[p + 1 : q - 2]) == buf[q - 2] | (buf[q - 1] << 8)


def _valid_frame_starts_in(buf: bytes, start: int, stop: int) -> bool:
    """Does a complete HDLC frame with a right length and FCS start in [start, stop)?"""
    q = buf.find(FLAG, start, stop)
    while q >= 0:
        if q + 3 <= len(buf) and buf[q + 1] >> 4 == 0xA:
            e = q + _hdlc_length(buf, q) + 2
            if e <= len(buf) and buf[e - 1] == FLAG and _fcs_ok(buf, q, e - 1):
                return True
        q = buf.find(FLAG, q + 1, stop)
    return False


def _hdlc_end(buf: bytes, p: int, final: bool) -> tuple[int, bool] | _NeedMore | None:
    """Where the frame opened at ``p`` ends (after its closing flag) and whether its FCS proves
    it; None if no flag fits.

    The closing flag is the one the length field points at (if the FCS is right or the
    addresses are well formed), or else one of the next few flags with a right FCS before it:
    real clients send wrong length fields, and the frame must still be shown (the HDLC decoder
    then reports ``hdlc.length.mismatch``). Flags are tried in wire order so that a socket and a
    whole buffer decide alike. Returns ``len(buf) + 1`` for "truncated" in final mode.
    """
    n = len(buf)
    declared = p + _hdlc_length(buf, p) + 1  # where the closing flag should be
    stop = min(n, p + MAX_FRAME)
    tries = 0
    q = buf.find(FLAG, p + MIN_HDLC_LENGTH + 1, stop)
    while q >= 0:
        if q == declared:
            if _fcs_ok(buf, p, q):
                return q + 1, True
            if _header_sane(buf, p, q) is True:
                return q + 1, False
        elif tries < MAX_LENGTH_MISMATCH_TRIES:
            tries += 1
            if _fcs_ok(buf, p, q):
                return q + 1, True
        elif q > declared:
            return None
        q = buf.find(FLAG, q + 1, stop)
    if n >= p + MAX_FRAME or (tries >= MAX_LENGTH_MISMATCH_TRIES and declared < n):
        return None  # every try failed, nothing later can help
    if not final:
        return NEED_MORE
    return (n + 1, False) if declared >= n else None


def _header_length(buf: bytes, p: int, n: int) -> int:
    """Bytes from the flag at ``p`` through the HCS (flag, format, addresses, control, HCS), or
    0 when the addresses are not 1, 2 or 4 bytes or the header is not all here."""
    dest = _address_size(buf, p + 3, n)
    if dest not in (1, 2, 4):
        return 0
    src = _address_size(buf, p + 3 + dest, n)
    if src not in (1, 2, 4):
        return 0
    length = 3 + dest + src + 1 + 2
    return length if p + length <= n else 0


def _hcs_ok(buf: bytes, p: int, n: int) -> int:
    """Header length when the frame at ``p`` carries an information field and its HCS is right
    (the header, length field included, is then as its sender wrote it), else 0."""
    h = _header_length(buf, p, n)
    if not h or _hdlc_length(buf, p) < h - 1 + 2 + 1:  # room for HCS, info and FCS
        return 0
    return h if crc16_x25(buf[p + 1 : p + h - 2]) == buf[p + h - 2] | (buf[p + h - 1] << 8) else 0


def _valid_frame_at(buf: bytes, q: int, final: bool) -> bool | _NeedMore:
    """Is there a whole HDLC frame with a right FCS at ``q`` (its length field pointing at its
    closing flag)? NEED_MORE when its bytes have not all arrived."""
    n = len(buf)
    if q + 3 > n:
        return False if final else NEED_MORE
    if buf[q] != FLAG or buf[q + 1] >> 4 != 0xA or _hdlc_length(buf, q) < MIN_HDLC_LENGTH:
        return False
    e = q + _hdlc_length(buf, q) + 2
    if e > n:
        return False if final else NEED_MORE
    return buf[e - 1] == FLAG and _fcs_ok(buf, q, e - 1)


def _frame_inside(buf: bytes, start: int, stop: int, final: bool) -> bool | _NeedMore:
    """Does a valid HDLC frame start in [start, stop)? A damaged frame must not swallow it."""
    q = buf.find(FLAG, start, stop)
    while q >= 0:
        r = _valid_frame_at(buf, q, final)
        if r is not False:
            return r
        q = buf.find(FLAG, q + 1, stop)
    return False


def _damaged_end(buf: bytes, p: int, header: int, final: bool) -> int | _NeedMore:
    """End of a frame whose header checksum is right but whose length field or closing flag is
    not where they should be (bytes inserted, lost or flipped on the line).

    It ends at the first flag after its header that the wire proves to be a closing flag: the
    buffer ends right after it, or a valid frame starts right after it (doubled flags) or on it
    (a flag shared with the next frame when this one is longer than its length says; when
    shorter, it was cut and the next frame starts there). Without such a flag it takes what
    its length says, and never the start of a valid frame."""
    n = len(buf)
    declared_total = _hdlc_length(buf, p) + 2
    stop = min(n, p + MAX_FRAME)
    q = buf.find(FLAG, p + header, stop)
    while q >= 0:
        if q + 1 == n:
            return n if final else NEED_MORE
        after = _valid_frame_at(buf, q + 1, final) if buf[q + 1] == FLAG else False
        if isinstance(after, _NeedMore) or after:
            return after if isinstance(after, _NeedMore) else q + 1
        here = _valid_frame_at(buf, q, final)
        if isinstance(here, _NeedMore):
            return here
        if here:
            return q + 1 if q + 1 - p > declared_total else q
        q = buf.find(FLAG, q + 1, stop)
    if n < p + MAX_FRAME and not final:
        return NEED_MORE
    return min(n, p + declared_total)


def _hdlc_at(
    buf: bytes, p: int, final: bool, direction: str | None, lazy: bool = False
) -> _Result:
    n = len(buf)
    if p + 3 > n:
        if not final:
            return NEED_MORE
        if p + 2 == n and buf[p + 1] >> 4 == 0xA:
            return _partial_hdlc(buf, p, None, direction)
        return None
    if buf[p + 1] >> 4 != 0xA or _hdlc_length(buf, p) < MIN_HDLC_LENGTH:
        return None
    if _header_sane(buf, p, n) is False:
        return None
    found = _hdlc_end(buf, p, final)
    if isinstance(found, _NeedMore):
        return found
    if found is not None and not found[1] and found[0] <= n:
        # A frame that its FCS does not prove must not swallow one that its FCS does.
        inside = _frame_inside(buf, p + 1, found[0] - 1, final)
        if isinstance(inside, _NeedMore):
            return inside
        if not inside and buf[found[0] - 2] == FLAG and _hcs_ok(buf, p, n):
            # "7E 7E A0 ..": the flag the length points at opens the next frame, the one before
            # it may close this one (a byte was lost); let the wire around decide.
            inside = _valid_frame_at(buf, found[0] - 1, final)
            if isinstance(inside, _NeedMore):
                return inside
        if inside:
            found = None
    if found is None or (found[0] > n and _hcs_ok(buf, p, n) and _frame_inside(
        buf, p + 1, n, True
    )):
        # Trust the header checksum: bytes were inserted, lost or flipped after it.
        header = _hcs_ok(buf, p, n)
        if not header:
            return None
        damaged = _damaged_end(buf, p, header, final)
        if isinstance(damaged, _NeedMore):
            return damaged
        return _decode(_parse_hdlc_extent, buf, p, damaged, direction, "HDLC")
    e = found[0]
    if e <= n:
        # A right length field: the decoder finds the same end in place, no copy, no rebase.
        in_place = None
        if e == p + _hdlc_length(buf, p) + 2:
            in_place = _parse_hdlc_in_place_lazy if lazy else _parse_hdlc_in_place
        return _decode(_parse_hdlc, buf, p, e, direction, "HDLC", in_place)
    # Truncated: unless a real frame starts inside what this one claims (then it was noise).
    if _valid_frame_starts_in(buf, p + 1, n):
        return None
    return _partial_hdlc(buf, p, _hdlc_length(buf, p) + 2, direction)


def _wrapper_at(buf: bytes, p: int, final: bool, in_gap: bool = False) -> _Result:
    n = len(buf)
    if p + WRAPPER_HEADER + 1 > n:
        return None if final else NEED_MORE
    src = (buf[p + 2] << 8) | buf[p + 3]
    dst = (buf[p + 4] << 8) | buf[p + 5]
    length = (buf[p + 6] << 8) | buf[p + 7]
    if src > MAX_WPORT or dst > MAX_WPORT or length == 0 or buf[p + 8] not in APDU_TAGS:
        return None
    e = p + WRAPPER_HEADER + length
    if in_gap and e > n:
        return None if final else NEED_MORE
    if e <= n or final:
        # Never over a valid HDLC frame: "00 01", two wPorts and a tag are bytes a damaged
        # frame holds often (a structure of 1 element: 02 01 ..., a length: 00 01 ...).
        inside = _frame_inside(buf, p + 1, min(e, n), final)
        if inside is not False:
            return inside if isinstance(inside, _NeedMore) else None
    if in_gap and not _apdu_holds(buf[p + WRAPPER_HEADER : e]):
        # Found inside other bytes, the header counts only when its APDU ends where its
        # length says.
        return None
    if e <= n:
        return _decode(_parse_wrapper, buf, p, e, None, "wrapper")
    if not final:
        return NEED_MORE
    parsed = _decode(_parse_wrapper, buf, p, n, None, "wrapper")
    missing = e - n
    return _partial(parsed, buf, p, WRAPPER_HEADER + length, missing, "wrapper PDU", "wrapper")


_LENGTH_FAULTS = frozenset(
    ("apdu.ber.length", "apdu.truncated", "apdu.trailing_bytes", "apdu.axdr.length",
     "apdu.unknown_tag", "apdu.internal_error", "apdu.axdr.choice", "apdu.axdr.type")
)  # fmt: skip


def _apdu_holds(apdu: bytes) -> bool:
    """Does this APDU decode to its last byte, with no length or tag fault?"""
    from dlmsdoctor.codec.apdu import decode_apdu

    return not any(f.code in _LENGTH_FAULTS for f in decode_apdu(apdu).findings)


def _frame_at(
    buf: bytes, p: int, final: bool, direction: str | None, in_gap: bool = False,
    lazy: bool = False,
) -> _Result:  # fmt: skip
    b = buf[p]
    if b == FLAG:
        return _hdlc_at(buf, p, final, direction, lazy)
    if b == 0x00:
        if p + 1 >= len(buf):
            return None if final else NEED_MORE
        if buf[p + 1] == 0x01:
            return _wrapper_at(buf, p, final, in_gap)
    return None


# ---------------------------------------------------------------------------------------------
# decoding through hdlc.py / wrapper.py


def _parse_hdlc(data: bytes, direction: str | None) -> DecodedFrame:
    return parse_hdlc(data, 0, direction, lazy_spans=False)


def _parse_wrapper(data: bytes, direction: str | None) -> DecodedFrame:
    from dlmsdoctor.codec.wrapper import parse_wrapper

    return parse_wrapper(data, 0)


_Parser = Callable[[bytes, str | None], DecodedFrame]
_InPlace = Callable[[bytes, int, str | None], DecodedFrame]


def _parse_hdlc_extent(data: bytes, direction: str | None) -> DecodedFrame:
    """A damaged frame: the splitter decided where it ends (the whole of ``data``)."""
    return parse_hdlc(data, 0, direction, lazy_spans=False, end=len(data))


def _parse_hdlc_in_place_lazy(buf: bytes, p: int, direction: str | None) -> DecodedFrame:
    """Spans built on first access: outputs that show only fields and findings never pay."""
    return parse_hdlc(buf, p, direction, lazy_spans=True)


def _parse_hdlc_in_place(buf: bytes, p: int, direction: str | None) -> DecodedFrame:
    return parse_hdlc(buf, p, direction, lazy_spans=False)


def _decode(
    parser: _Parser,
    buf: bytes,
    p: int,
    e: int,
    direction: str | None,
    what: str,
    in_place: _InPlace | None = None,
) -> DecodedFrame:
    """Decode the frame ``buf[p:e]``: in place when ``in_place`` is given and ends where we
    decided, else alone (so the decoder cannot wander into the next frame) with its offsets then
    moved to ``p``. Copies one frame at most, never the whole buffer."""
    data = buf[p:e]
    kind = FrameKind.HDLC if what == "HDLC" else FrameKind.WRAPPER
    try:
        if in_place is not None:
            frame = in_place(buf, p, direction)
            if frame.offset == p and frame.end == e:
                return frame
        frame = parser(data, direction)
    except Exception as exc:  # decoders must not raise; if one does, keep the bytes
        finding = Finding(
            "stream.decoder_error", Severity.ERROR, p, len(data), what.lower(),
            f"The {what} decoder failed on these bytes ({type(exc).__name__}: {exc}); "
            "this is a dlmsdoctor bug, please report it with the hex.",
        )  # fmt: skip
        return DecodedFrame(kind, p, data, f"{what} (not decoded)", (), (finding,))
    if len(frame.data) != len(data):
        # The chunks must tile the stream: keep every byte we decided belongs to the frame.
        frame = dataclasses.replace(frame, data=data)
    return rebase(frame, p) if p else frame


def _partial_hdlc(buf: bytes, p: int, total: int | None, direction: str | None) -> DecodedFrame:
    parsed = _decode(_parse_hdlc, buf, p, len(buf), direction, "HDLC")
    if total is None:
        return _partial(parsed, buf, p, None, None, "HDLC frame", "hdlc")
    return _partial(parsed, buf, p, total, total - (len(buf) - p), "HDLC frame", "hdlc")


def _partial(
    parsed: DecodedFrame, buf: bytes, p: int, total: int | None, missing: int | None,
    what: str, layer: str,
) -> DecodedFrame:  # fmt: skip
    have = len(buf) - p
    if total is None or missing is None:
        how = f"{have} byte(s) arrived, the length field did not"
        summary = f"{what} cut after {have} byte(s)"
    else:
        how = f"{have} of {total} byte(s) arrived, {missing} missing"
        summary = f"{what} cut: {have} of {total} bytes, {missing} missing"
    finding = Finding(
        "stream.truncated", Severity.ERROR, p, have, layer,
        f"The {what} is cut at the end: {how}. The peer closed or stopped mid-frame (a "
        "reset meter, a bridge dropping the line, a read timeout too short), or the paste "
        "lost its end.",
        expected=None if total is None else str(total), found=str(have),
    )  # fmt: skip
    fields = dict(parsed.fields)
    fields.update({"layer": layer, "expected_length": total, "missing": missing})
    spans = tuple(s for s in parsed.spans if s.offset < len(buf))
    return DecodedFrame(
        FrameKind.PARTIAL, p, buf[p:], summary, spans, (*parsed.findings, finding), fields,
        parsed.apdu,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the scan


@dataclasses.dataclass
class _State:
    """Where a scan stands, so that a socket's splitter can resume exactly there."""

    pos: int  # next byte to decide
    after_hdlc: bool = False  # the chunk before ``pos`` was an HDLC frame (shared flag)
    echo_at: int | None = None  # where ``sent`` may come back
    scan_from: int = 0  # gap: no frame start before this position (resume hint)
    gap_origin: int | None = None  # start of the open gap when part of it was already given out
    gap_limit: int = 0  # open gap: bytes before this cannot belong to a frame
    after_gap: bool = False  # the chunk before ``pos`` came out of a gap (text, noise...)
    lazy: bool = False  # HDLC spans built on first access (callers that may not need them)


def _gap_end(
    buf: bytes, st: _State, final: bool, direction: str | None
) -> tuple[int, _Result] | _NeedMore:
    """End of the gap at ``st.pos`` and the frame that ends it (None: buffer/piece end)."""
    n = len(buf)
    gs = st.pos
    origin = gs if st.gap_origin is None else st.gap_origin  # 64 KiB pieces count from here
    limit = min(n, origin + MAX_GAP)
    if st.echo_at is not None and st.echo_at > gs:
        limit = min(limit, st.echo_at)
    q = max(st.scan_from, gs + 1)
    # Next 7E and next 00 01, each searched once per hit, so noise costs one pass.
    f = buf.find(FLAG, q, limit)
    z = buf.find(b"\x00\x01", q, limit)
    while f >= 0 or z >= 0:
        c = f if z < 0 else z if f < 0 else min(f, z)
        r = _frame_at(buf, c, final, direction, in_gap=True, lazy=st.lazy)
        if isinstance(r, _NeedMore):
            st.scan_from = st.gap_limit = c
            return NEED_MORE
        if r is not None:
            return c, r
        if c == f:
            f = buf.find(FLAG, c + 1, limit)
        if c == z:
            z = buf.find(b"\x00\x01", c + 1, limit)
    if limit == n and limit < origin + MAX_GAP and not final and st.echo_at != limit:
        # The gap may go on; the last byte may still start a frame.
        st.scan_from = max(gs + 1, n - 1)
        st.gap_limit = n - 1 if buf[n - 1] in (FLAG, 0x00) else n
        return NEED_MORE
    return limit, None


def _scan(
    buf: bytes, st: _State, final: bool, sent: bytes | None, direction: str | None
) -> list[DecodedFrame]:
    """Decide chunks from ``st.pos`` on; stop where more bytes could change the answer."""
    out: list[DecodedFrame] = []
    n = len(buf)
    while st.pos < n:
        p = st.pos
        if st.echo_at == p and sent:
            k = text.echo_length(buf, p, n, sent)
            if not final and p + len(sent) > n and buf[p:n] == sent[: n - p]:
                return out  # still matching what we sent
            if 0 < k < len(sent):
                # A reply may share its first bytes with our request: a wrapper PDU between
                # equal wPorts (client 1 and logical device 1: the same 6-byte header, often 7),
                # an HDLC UA from server 1 to client 1. A complete, valid frame here beats a
                # partial echo; a whole echo stays an echo (those are the bytes we sent).
                r = _frame_at(buf, p, final, direction)
                if isinstance(r, _NeedMore):
                    return out
                if r is not None and _valid_frame(r):
                    k = 0
            st.echo_at = None
            if k:
                echo = text.recognise_echo(buf, p, n, sent)
                if echo is not None:
                    out.append(echo)
                    st.pos = echo.end
                    st.after_hdlc = False
                    st.after_gap = False
                    continue
        # Two frames may share one flag: the closing flag of one opens the next.
        if st.after_hdlc and buf[p] != FLAG:
            r = _hdlc_at(buf, p - 1, final, direction)
            if isinstance(r, _NeedMore):
                return out
            if r is not None and r.kind is FrameKind.HDLC:
                out.append(_with_fields(r, shared_flag=True))
                st.pos = r.end
                continue
            if r is not None:  # a partial frame opened by the shared flag
                partial = _with_fields(r, shared_flag=True)
                out.append(partial)
                st.pos = partial.end
                st.after_hdlc = False
                continue
        st.after_hdlc = False
        r = _frame_at(buf, p, final, direction, in_gap=st.after_gap, lazy=st.lazy)
        if isinstance(r, _NeedMore):
            return out
        if r is None:
            g = _gap_end(buf, st, final, direction)
            if isinstance(g, _NeedMore):
                early = _early_chunks(buf, st)
                st.after_gap = st.after_gap or bool(early)
                out.extend(early)
                return out
            ge, r = g
            out.extend(_gap_chunks(buf, p, ge))
            st.pos = ge
            st.scan_from = 0
            st.gap_origin = None
            st.after_gap = True
            if r is None or isinstance(r, _NeedMore):
                continue
        out.append(r)
        st.pos = r.end
        st.after_hdlc = r.kind is FrameKind.HDLC
        st.after_gap = False
    return out


def _valid_frame(frame: DecodedFrame) -> bool:
    """A whole HDLC frame or wrapper PDU whose decoder found no error (FCS, HCS, length)."""
    return frame.kind in (FrameKind.HDLC, FrameKind.WRAPPER) and not any(
        f.severity is Severity.ERROR for f in frame.findings
    )


EARLY_WINDOW = 4096  # an open gap longer than this waits for its end (keeps feeding linear)
_EARLY_TRIGGERS = (b"\n", b"\r", b"\xff")


def _early_chunks(buf: bytes, st: _State) -> list[DecodedFrame]:
    """Chunks of an open gap that no later byte can change: a ser2net message or an IEC
    62056-21 line that has its line end, a telnet run followed by two other bytes, and what
    comes before them. A bridge that says "Port already in use" and then keeps quiet is thus
    reported at once, not when the socket closes."""
    start, limit = st.pos, st.gap_limit
    if limit - start > EARLY_WINDOW or not any(t in buf[start:limit] for t in _EARLY_TRIGGERS):
        return []
    chunks = _gap_chunks(buf, start, limit)
    last = max((i for i, c in enumerate(chunks) if _stable(c, limit)), default=-1)
    if last < 0:
        return []
    if st.gap_origin is None:
        st.gap_origin = start
    st.pos = chunks[last].end
    return chunks[: last + 1]


def _stable(chunk: DecodedFrame, limit: int) -> bool:
    if chunk.kind is FrameKind.BRIDGE_MESSAGE:
        return chunk.data.endswith((b"\r\n", b"\n\r"))
    if chunk.kind is FrameKind.IEC62056_21:
        return True  # each form ends with CR LF or a BCC: nothing after it is looked at
    if chunk.kind is FrameKind.TELNET:
        return chunk.end + 2 <= limit  # the next IAC and its command are known not to follow
    return False


def _gap_chunks(buf: bytes, start: int, end: int) -> list[DecodedFrame]:
    chunks = text.classify_gap(buf, start, end)
    out = []
    for c in chunks:
        if c.kind is FrameKind.GARBAGE and not c.fields.get("flag_fill"):
            extra = Finding(
                "stream.bytes_outside_frame", Severity.WARNING, c.offset, len(c.data), "stream",
                f"{len(c.data)} byte(s) outside any frame: stale bytes from an earlier "
                "session buffered in a bridge or modem, noise, or a baud-rate mismatch on the "
                "serial side.",
            )  # fmt: skip
            c = dataclasses.replace(c, findings=(*c.findings, extra))
        out.append(c)
    return out


def _with_fields(frame: DecodedFrame, **extra: object) -> DecodedFrame:
    # A plain DecodedFrame: ``dataclasses.replace`` on a decoder's subclass could skip its setup.
    return DecodedFrame(
        frame.kind, frame.offset, frame.data, frame.summary, frame.spans, frame.findings,
        {**frame.fields, **extra}, frame.apdu,
    )  # fmt: skip


def split_stream(
    buf: bytes, *, sent: bytes | None = None, direction: str | None = None,
    lazy_spans: bool = False,
) -> list[DecodedFrame]:  # fmt: skip
    """Cut ``buf`` into frames and recognised chunks, in order, offsets absolute in ``buf``.

    ``sent`` is what was transmitted just before ``buf`` arrived: bytes at the start that repeat
    it are an ECHO chunk. With ``lazy_spans`` an HDLC frame builds its span tree the first time
    ``.spans`` is read (the same tree): for outputs that show only fields and findings. Never
    raises.
    """
    data = bytes(buf)
    if _one_clean_frame(data, sent):
        # The common case of a log line: the whole buffer is one frame whose length field and
        # closing flag agree, with well-formed addresses, no flag inside and no echo possible;
        # the scan would find exactly this frame (property-tested against it).
        if lazy_spans:
            return [_parse_hdlc_in_place_lazy(data, 0, direction)]
        return [_parse_hdlc_in_place(data, 0, direction)]
    st = _State(0, echo_at=0 if sent else None, lazy=lazy_spans)
    try:
        return _scan(data, st, True, sent, direction)
    except Exception as exc:  # last resort: a diagnostic tool must still show the bytes
        return _internal_error(data, 0, exc)


def _one_clean_frame(data: bytes, sent: bytes | None) -> bool:
    n = len(data)
    if (
        n < MIN_HDLC_LENGTH + 2
        or data[0] != FLAG
        or data[n - 1] != FLAG
        or data[1] >> 4 != 0xA
        or _hdlc_length(data, 0) + 2 != n
        or data.find(FLAG, 1, n - 1) >= 0
        or _header_sane(data, 0, n) is not True
    ):
        return False
    if sent:
        k = min(len(sent), text.MIN_PARTIAL_ECHO)
        if data[:k] == sent[:k]:
            return False  # maybe an echo of what was sent: the scan decides
    # No FCS check here: with no flag inside, the scan takes this frame whether its FCS is
    # right or not (and the decoder reports a wrong one).
    return True


def _internal_error(data: bytes, base: int, exc: Exception) -> list[DecodedFrame]:
    finding = Finding(
        "stream.decoder_error", Severity.ERROR, base, len(data), "stream",
        f"The stream splitter failed ({type(exc).__name__}: {exc}); this is a dlmsdoctor bug, "
        "please report it with the hex.",
    )  # fmt: skip
    return [DecodedFrame(FrameKind.GARBAGE, base, data, "undecoded bytes", (), (finding,))]


# ---------------------------------------------------------------------------------------------
# streaming


class StreamSplitter:
    """Incremental ``split_stream`` for a socket: feed bytes as they come, close at the end.

    Offsets are absolute in the whole stream since the splitter was made. Held back: a frame
    whose end has not arrived, and a gap that may still grow (text and noise are only cut when
    a frame follows, 64 KiB have piled up, or the stream closes).
    """

    def __init__(self, *, sent: bytes | None = None, direction: str | None = None) -> None:
        self._buf = b""
        self._base = 0  # stream offset of self._buf[0]
        self._direction = direction
        self._sent = sent
        self._state = _State(0, echo_at=0 if sent else None)
        self._closed = False

    @property
    def pending(self) -> int:
        """Bytes received but not yet returned as chunks."""
        return len(self._buf) - self._state.pos

    def expect_echo(self, sent: bytes) -> None:
        """We just transmitted ``sent``: the next bytes may repeat it."""
        self._sent = sent
        self._state.echo_at = len(self._buf)

    def feed(self, data: bytes) -> list[DecodedFrame]:
        """Chunks that ``data`` completed, in order."""
        if self._closed or not data:
            return []
        self._buf += bytes(data)
        return self._run(final=False)

    def close(self) -> list[DecodedFrame]:
        """Everything still held, a frame cut short becoming PARTIAL (the peer closed)."""
        if self._closed:
            return []
        self._closed = True
        return self._run(final=True)

    def _run(self, final: bool) -> list[DecodedFrame]:
        st = self._state
        try:
            chunks = _scan(self._buf, st, final, self._sent, self._direction)
        except Exception as exc:
            chunks = _internal_error(self._buf[st.pos :], st.pos, exc)
            st.pos = len(self._buf)
        out = [rebase(c, self._base) for c in chunks] if self._base else chunks
        self._trim()
        return out

    def _trim(self) -> None:
        # Keep the shared-flag byte before pos, and nothing older.
        st = self._state
        keep_from = st.pos - 1 if st.after_hdlc and st.pos > 0 else st.pos
        if keep_from <= 0:
            return
        self._buf = self._buf[keep_from:]
        self._base += keep_from
        st.pos -= keep_from
        st.scan_from = max(0, st.scan_from - keep_from)
        st.gap_limit = max(0, st.gap_limit - keep_from)
        if st.gap_origin is not None:
            st.gap_origin -= keep_from  # may go negative: only the 64 KiB count uses it
        if st.echo_at is not None:
            st.echo_at -= keep_from


def rebase(frame: DecodedFrame, delta: int) -> DecodedFrame:
    """The same frame with every offset moved by ``delta`` (direct constructors: this runs for
    every frame a socket delivers, and ``dataclasses.replace`` is slow)."""
    fields = {
        k: (v + delta if k.endswith("_offset") and isinstance(v, int) else v)
        for k, v in frame.fields.items()
    }
    findings = tuple(
        Finding(f.code, f.severity, f.offset + delta, f.length, f.field, f.message,
                f.expected, f.found, f.corrected)
        for f in frame.findings
    )  # fmt: skip
    return DecodedFrame(
        frame.kind, frame.offset + delta, frame.data, frame.summary,
        tuple(_rebase_span(s, delta) for s in frame.spans), findings, fields, frame.apdu,
    )  # fmt: skip


def _rebase_span(span: Span, delta: int) -> Span:
    children = tuple(_rebase_span(c, delta) for c in span.children) if span.children else ()
    return Span(
        span.offset + delta, span.length, span.name, span.label, span.value, span.meaning,
        children, span.secret,
    )  # fmt: skip
