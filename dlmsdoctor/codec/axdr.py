"""A-XDR (IEC 61334-6) decoding for xDLMS: lengths, the ``Data`` CHOICE, date-time, and
the fields the GET/SET/ACTION services share (invoke id, attribute and method descriptors,
access selection, results, data blocks, SEQUENCE OF).

Every decoder here takes a :class:`DecodeContext` (the buffer, the absolute base
offset and the findings collected so far), a position and an end, and returns
spans with absolute offsets plus the next position. Nothing raises on bad bytes:
a short or inconsistent field becomes a finding and a span over what is there.

Finding codes emitted here:
``apdu.truncated`` (a fixed-size field runs past the end of the APDU),
``apdu.axdr.length`` (an A-XDR length or element count larger than the bytes present),
``apdu.axdr.type`` (unknown Data type tag), ``apdu.axdr.depth`` (nesting or size guard hit),
``apdu.axdr.choice`` (a CHOICE tag that does not exist), ``apdu.access_error`` (a
data-access-result other than success).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from dlmsdoctor.codec.fast_span import _SPAN_SETTERS
from dlmsdoctor.codec.model import Finding, Severity, Span, hexs
from dlmsdoctor.codec.obis import (
    DATA_ACCESS_RESULTS,
    class_name,
    dotted_obis,
    format_obis,
    obis_name,
)

Fields = dict[str, object]
_new_span = object.__new__

# Guards against hostile or corrupt input: nesting depth and total spans per APDU.
MAX_DEPTH = 24
MAX_SPANS = 20000
MASK = "********"

DATA_TYPE_NAMES: dict[int, str] = {
    0: "null-data",
    1: "array",
    2: "structure",
    3: "boolean",
    4: "bit-string",
    5: "double-long",
    6: "double-long-unsigned",
    9: "octet-string",
    10: "visible-string",
    12: "utf8-string",
    13: "bcd",
    15: "integer",
    16: "long",
    17: "unsigned",
    18: "long-unsigned",
    19: "compact-array",
    20: "long64",
    21: "long64-unsigned",
    22: "enum",
    23: "float32",
    24: "float64",
    25: "date-time",
    26: "date",
    27: "time",
    255: "dont-care",
}

# Fixed-size types: tag -> (size, struct format). Big-endian per A-XDR.
_FIXED: dict[int, tuple[int, str]] = {
    3: (1, ">B"),
    5: (4, ">i"),
    6: (4, ">I"),
    13: (1, ">B"),
    15: (1, ">b"),
    16: (2, ">h"),
    17: (1, ">B"),
    18: (2, ">H"),
    20: (8, ">q"),
    21: (8, ">Q"),
    22: (1, ">B"),
    23: (4, ">f"),
    24: (8, ">d"),
}
_STRUCTS = {fmt: struct.Struct(fmt) for _, fmt in _FIXED.values()}
# tag -> (size, unpack_from, type name): what decode_data needs for a fixed-size value
_FIXED_DECODE = {
    tag: (size, _STRUCTS[fmt].unpack_from, DATA_TYPE_NAMES[tag])
    for tag, (size, fmt) in _FIXED.items()
}

_DAYS = ("", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _date_value_text(tag: int, raw: bytes) -> str:
    """A date-time (25), date (26) or time (27) value as people read it; a day-of-week 00
    (as Aidon meters send) is a date with a note, "invalid ..." when it is none."""
    dt_text: str | None
    if tag == 25:
        dt_text = format_datetime(raw)
    elif tag == 26:
        dt_text = format_date(raw[:4])
        if dt_text is not None and raw[4] != 0xFF and 1 <= raw[4] <= 7:
            dt_text += " " + _DAYS[raw[4]]
        elif dt_text is not None and raw[4] == 0x00:
            dt_text += " (day-of-week 00 read as not specified)"
    else:
        dt_text = format_time(raw)
    return dt_text if dt_text is not None else "invalid " + hexs(raw)


class DecodeContext:
    """State shared by the decoders of one APDU: buffer, base offset, findings, guards."""

    __slots__ = (
        "base",
        "buf",
        "errors",
        "findings",
        "guard_hit",
        "mask_raw",
        "show_secrets",
        "spans_left",
    )

    def __init__(self, buf: bytes, base: int, show_secrets: bool) -> None:
        self.buf = buf
        self.base = base
        self.show_secrets = show_secrets
        self.findings: list[Finding] = []
        self.errors = 0  # findings of severity ERROR so far
        self.spans_left = MAX_SPANS
        self.guard_hit = False  # the rest was shown raw: counts that run short are not errors
        # Set while decoding an AARQ/AARE: bytes shown raw there (damaged or unknown parts)
        # may hold the password or a challenge, so they are masked like secrets.
        self.mask_raw = False

    def span(
        self,
        pos: int,
        length: int,
        name: str,
        label: str,
        value: object = None,
        meaning: str = "",
        children: tuple[Span, ...] = (),
        secret: bool = False,
    ) -> Span:
        self.spans_left -= 1
        if secret and not self.show_secrets:
            value, meaning = MASK, MASK
        if length < 0:
            length = 0
        # fast_span inlined (the commonest call of an APDU decode)
        span = _new_span(Span)
        s_off, s_len, s_name, s_label, s_value, s_meaning, s_children, s_secret = _SPAN_SETTERS
        s_off(span, self.base + pos)
        s_len(span, length)
        s_name(span, name)
        s_label(span, label)
        s_value(span, value)
        s_meaning(span, meaning)
        s_children(span, children)
        s_secret(span, secret)
        return span

    def raw(self, pos: int, end: int, name: str, label: str, meaning: str = "") -> Span:
        data = self.buf[pos:end]
        return self.span(
            pos, end - pos, name, label, data, meaning or f"{len(data)} bytes", secret=self.mask_raw
        )

    def finding(
        self,
        code: str,
        pos: int,
        length: int,
        field: str,
        message: str,
        *,
        severity: Severity = Severity.ERROR,
        expected: str | None = None,
        found: str | None = None,
        corrected: str | None = None,
    ) -> None:
        if severity is Severity.ERROR:
            self.errors += 1
        self.findings.append(
            Finding(
                code,
                severity,
                self.base + pos,
                max(0, length),
                field,
                message,
                expected,
                found,
                corrected,
            )
        )

    def need(self, pos: int, end: int, size: int, field: str) -> bool:
        """True when ``size`` bytes are present at ``pos``; else a truncation finding."""
        if pos + size <= end:
            return True
        have = max(0, end - pos)
        self.finding(
            "apdu.truncated",
            pos,
            have,
            field,
            f"{field}: {size} bytes needed, {have} present",
            expected=str(size),
            found=str(have),
        )
        return False


def encode_length(n: int) -> bytes:
    """BER/A-XDR definite length encoding."""
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def read_length(ctx: DecodeContext, pos: int, end: int, field: str) -> tuple[int, int] | None:
    """A-XDR length at ``pos``: (value, bytes used), or None when it cannot be read."""
    buf = ctx.buf
    if pos >= end:
        ctx.need(pos, end, 1, field + " length")
        return None
    first = buf[pos]
    if first < 0x80:
        return first, 1
    count = first & 0x7F
    if count == 0 or count > 4:
        ctx.finding(
            "apdu.axdr.length",
            pos,
            1,
            field,
            f"{field}: length byte {first:02X} is not a valid definite length",
            found=f"{first:02X}",
        )
        return None
    if not ctx.need(pos + 1, end, count, field + " length"):
        return None
    return int.from_bytes(buf[pos + 1 : pos + 1 + count], "big"), 1 + count


def clamp(
    ctx: DecodeContext,
    len_pos: int,
    len_size: int,
    start: int,
    declared: int,
    end: int,
    field: str,
    code: str = "apdu.axdr.length",
) -> int:
    """End of a field of ``declared`` bytes starting at ``start``; a finding when it overruns."""
    if start + declared <= end:
        return start + declared
    have = end - start
    ctx.finding(
        code,
        len_pos,
        len_size,
        field,
        f"{field}: length says {declared} bytes, only {have} present",
        expected=str(have),
        found=str(declared),
        corrected=hexs(encode_length(have)),
    )
    return end


def is_text(data: bytes) -> bool:
    """Printable ASCII (what meters put in names and serial numbers)."""
    return bool(data) and data.isascii() and data.decode("ascii").isprintable()


def octet_value(data: bytes) -> tuple[object, str]:
    """Python value and meaning of an octet-string: text, a date-time, or bytes."""
    if is_text(data):
        text = data.decode("ascii")
        return text, repr(text)
    if len(data) == 12:
        dt = format_datetime(data)
        if dt is not None:
            return dt, "date-time " + dt
    return bytes(data), hexs(data) if len(data) <= 32 else f"{len(data)} bytes"


def format_date(d: bytes) -> str | None:
    """``YYYY-MM-DD`` with ``*`` for not-specified parts; None when not a plausible date."""
    year = (d[0] << 8) | d[1]
    month, day = d[2], d[3]
    if not (month == 0xFF or 1 <= month <= 12 or month in (0xFD, 0xFE)):
        return None
    if not (day == 0xFF or 1 <= day <= 31 or day in (0xFD, 0xFE)):
        return None
    ys = "****" if year == 0xFFFF else f"{year:04d}"
    ms = "**" if month >= 0xFD else f"{month:02d}"
    ds = "**" if day >= 0xFD else f"{day:02d}"
    return f"{ys}-{ms}-{ds}"


def format_time(t: bytes) -> str | None:
    hour, minute, second, hundredths = t[0], t[1], t[2], t[3]
    if (hour != 0xFF and hour > 23) or (minute != 0xFF and minute > 59):
        return None
    if (second != 0xFF and second > 59) or (hundredths != 0xFF and hundredths > 99):
        return None
    parts = ["**" if v == 0xFF else f"{v:02d}" for v in (hour, minute, second)]
    out = ":".join(parts)
    if hundredths not in (0, 0xFF):
        out += f".{hundredths:02d}"
    return out


def format_datetime(dt: bytes) -> str | None:
    """COSEM date-time (12 bytes, Blue Book 4.1.6.1) as text; None when implausible."""
    date = format_date(dt[0:4])
    dow = dt[4]
    time = format_time(dt[5:9])
    if date is None or time is None or not (dow in (0x00, 0xFF) or 1 <= dow <= 7):
        return None
    out = f"{date} {time}"
    if dow == 0x00:
        # Aidon and others send 00; the Blue Book (4.1.6.1) has 1..7 and FF "not specified".
        out += " (day-of-week 00 read as not specified)"
    deviation = int.from_bytes(dt[9:11], "big", signed=True)
    if deviation != -0x8000:
        out += f" dev {deviation:+d} min"
    status = dt[11]
    if status not in (0, 0xFF):
        out += f" status 0x{status:02X}"
    return out


def decode_data(
    ctx: DecodeContext, pos: int, end: int, name: str, label: str, depth: int = 0
) -> tuple[Span, int, object]:
    """One A-XDR ``Data`` value at ``pos``: (span, next position, python value)."""
    buf = ctx.buf
    if pos >= end:
        ctx.need(pos, end, 1, label)
        return ctx.span(pos, 0, name, label, None, "missing"), end, None
    tag = buf[pos]
    if depth > MAX_DEPTH or ctx.spans_left <= 0:
        ctx.guard_hit = True
        ctx.finding(
            "apdu.axdr.depth",
            pos,
            end - pos,
            label,
            "nesting or size guard reached: rest shown raw",
            severity=Severity.WARNING,
        )
        return ctx.raw(pos, end, name, label, "not decoded (guard)"), end, None
    fixed = _FIXED_DECODE.get(tag)
    if fixed is not None:  # the commonest values first, with one table look-up
        size, unpack, fixed_name = fixed
        if pos + 1 + size > end:
            ctx.need(pos + 1, end, size, label)
            return (
                ctx.span(pos, end - pos, name, label, None, f"{fixed_name}, truncated"), end, None
            )
        value: object = unpack(buf, pos + 1)[0]
        if tag == 3:
            value = value != 0
        meaning = f"{fixed_name} {value}"
        return ctx.span(pos, 1 + size, name, label, value, meaning), pos + 1 + size, value
    tname = DATA_TYPE_NAMES.get(tag)
    if tag in (9, 10, 12):
        got = read_length(ctx, pos + 1, end, label)
        if got is None:
            return ctx.span(pos, end - pos, name, label, None, f"{tname}, bad length"), end, None
        n, lsize = got
        start = pos + 1 + lsize
        stop = clamp(ctx, pos + 1, lsize, start, n, end, label)
        data = buf[start:stop]
        if tag == 9:
            value, meaning = octet_value(data)
            meaning = f"octet-string[{len(data)}] {meaning}"
        else:
            value = data.decode("utf-8" if tag == 12 else "latin-1", errors="replace")
            meaning = f"{tname} {value!r}"
        return ctx.span(pos, stop - pos, name, label, value, meaning), stop, value
    if tag in (1, 2):
        return _decode_sequence(ctx, pos, end, name, label, depth, tag)
    if tag == 4:
        got = read_length(ctx, pos + 1, end, label)
        if got is None:
            return ctx.span(pos, end - pos, name, label, None, "bit-string, bad length"), end, None
        bits, lsize = got
        start = pos + 1 + lsize
        stop = clamp(ctx, pos + 1, lsize, start, (bits + 7) // 8, end, label)
        text = "".join(f"{b:08b}" for b in buf[start:stop])[:bits]
        return ctx.span(pos, stop - pos, name, label, text, f"bit-string {text}"), stop, text
    if tag in (25, 26, 27):
        size = {25: 12, 26: 5, 27: 4}[tag]
        if not ctx.need(pos + 1, end, size, label):
            return ctx.span(pos, end - pos, name, label, None, f"{tname}, truncated"), end, None
        raw = buf[pos + 1 : pos + 1 + size]
        shown = _date_value_text(tag, raw)
        span = ctx.span(pos, 1 + size, name, label, shown, f"{tname} {shown}")
        return span, pos + 1 + size, shown
    if tag in (0, 255):
        return ctx.span(pos, 1, name, label, None, tname or ""), pos + 1, None
    if tag == 19:
        return _decode_compact_array(ctx, pos, end, name, label)
    ctx.finding(
        "apdu.axdr.type",
        pos,
        1,
        label,
        f"unknown Data type tag {tag} (0x{tag:02X})",
        found=str(tag),
    )
    return ctx.raw(pos, end, name, label, f"unknown type {tag}"), end, None


class NotPlain(Exception):
    """``data_value`` met something ``decode_data`` would report (a finding) or show raw."""


_NOT_PLAIN = NotPlain()


def _plain_length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """``read_length`` when it has nothing to report, else NotPlain."""
    if pos >= end:
        raise _NOT_PLAIN
    first = buf[pos]
    if first < 0x80:
        return first, 1
    count = first & 0x7F
    if count == 0 or count > 4 or pos + 1 + count > end:
        raise _NOT_PLAIN
    return int.from_bytes(buf[pos + 1 : pos + 1 + count], "big"), 1 + count


def data_value(buf: bytes, pos: int, end: int, depth: int = 0) -> tuple[object, int]:
    """The value ``decode_data`` gives for the Data at ``pos`` and the position after it,
    without its spans; raises NotPlain where ``decode_data`` would add a finding (truncation,
    bad length, unknown type, guard) or show bytes raw (compact-array), so that the caller can
    take the general path. The caller keeps the span count under MAX_SPANS (a span per byte
    at most: an APDU shorter than MAX_SPANS bytes)."""
    if pos >= end or depth > MAX_DEPTH:
        raise _NOT_PLAIN
    tag = buf[pos]
    fixed = _FIXED_DECODE.get(tag)
    if fixed is not None:
        size = fixed[0]
        if pos + 1 + size > end:
            raise _NOT_PLAIN
        value: object = fixed[1](buf, pos + 1)[0]
        if tag == 3:
            value = value != 0
        return value, pos + 1 + size
    if tag == 1 or tag == 2:
        count, lsize = _plain_length(buf, pos + 1, end)
        cur = pos + 1 + lsize
        values: list[object] = []
        for _ in range(count):
            if cur >= end:
                raise _NOT_PLAIN
            item, cur = data_value(buf, cur, end, depth + 1)
            values.append(item)
        return values, cur
    if tag == 9 or tag == 10 or tag == 12:
        n, lsize = _plain_length(buf, pos + 1, end)
        start = pos + 1 + lsize
        stop = start + n
        if stop > end:
            raise _NOT_PLAIN
        data = buf[start:stop]
        if tag == 9:
            return octet_value(data)[0], stop
        return data.decode("utf-8" if tag == 12 else "latin-1", errors="replace"), stop
    if tag == 0 or tag == 255:
        return None, pos + 1
    if tag == 4:
        bits, lsize = _plain_length(buf, pos + 1, end)
        start = pos + 1 + lsize
        stop = start + (bits + 7) // 8
        if stop > end:
            raise _NOT_PLAIN
        return "".join(f"{b:08b}" for b in buf[start:stop])[:bits], stop
    if tag == 25 or tag == 26 or tag == 27:
        size = {25: 12, 26: 5, 27: 4}[tag]
        if pos + 1 + size > end:
            raise _NOT_PLAIN
        return _date_value_text(tag, buf[pos + 1 : pos + 1 + size]), pos + 1 + size
    raise _NOT_PLAIN  # compact-array (shown raw) or an unknown type (a finding)


def _decode_sequence(
    ctx: DecodeContext, pos: int, end: int, name: str, label: str, depth: int, tag: int
) -> tuple[Span, int, object]:
    kind = "array" if tag == 1 else "structure"
    got = read_length(ctx, pos + 1, end, label)
    if got is None:
        return ctx.span(pos, end - pos, name, label, None, f"{kind}, bad count"), end, None
    count, lsize = got
    cur = pos + 1 + lsize
    children: list[Span] = []
    values: list[object] = []
    for i in range(count):
        if cur >= end:
            if ctx.guard_hit:
                break
            ctx.finding(
                "apdu.axdr.length",
                pos + 1,
                lsize,
                label,
                f"{label}: {kind} of {count} elements, only {i} present",
                expected=str(i),
                found=str(count),
                corrected=hexs(encode_length(i)),
            )
            break
        child, cur, value = decode_data(ctx, cur, end, f"{name}.{i}", f"[{i}]", depth + 1)
        children.append(child)
        values.append(value)
    return (
        ctx.span(pos, cur - pos, name, label, None, f"{kind} of {count}", tuple(children)),
        cur,
        values,
    )


def _skip_type_description(ctx: DecodeContext, pos: int, end: int, depth: int) -> int:
    """Compact-array type description (Blue Book 4.1.6.1): returns the position after it."""
    if pos >= end or depth > MAX_DEPTH:
        return end
    tag = ctx.buf[pos]
    if tag == 1:  # array: count (2 bytes) + element type
        return _skip_type_description(ctx, pos + 3, end, depth + 1)
    if tag == 2:  # structure: count + types
        got = read_length(ctx, pos + 1, end, "compact-array type")
        if got is None:
            return end
        cur = pos + 1 + got[1]
        for _ in range(got[0]):
            cur = _skip_type_description(ctx, cur, end, depth + 1)
            if cur >= end:
                return end
        return cur
    return pos + 1


def _decode_compact_array(
    ctx: DecodeContext, pos: int, end: int, name: str, label: str
) -> tuple[Span, int, object]:
    desc_end = _skip_type_description(ctx, pos + 1, end, 0)
    got = read_length(ctx, desc_end, end, label) if desc_end < end else None
    if got is None:
        return ctx.raw(pos, end, name, label, "compact-array, not decoded"), end, None
    n, lsize = got
    stop = clamp(ctx, desc_end, lsize, desc_end + lsize, n, end, label)
    children = (
        ctx.raw(pos + 1, desc_end, name + ".type", "type description"),
        ctx.raw(desc_end + lsize, stop, name + ".contents", "array contents"),
    )
    meaning = f"compact-array, {n} content bytes"
    span = ctx.span(pos, stop - pos, name, label, None, meaning, children)
    return span, stop, bytes(ctx.buf[desc_end + lsize : stop])


# ---------------------------------------------------------------- xDLMS fields common to services


def read_uint(
    ctx: DecodeContext,
    pos: int,
    end: int,
    size: int,
    name: str,
    label: str,
    names: dict[int, str] | None = None,
) -> tuple[Span, int, int | None]:
    """Unsigned big-endian integer of ``size`` bytes, optionally named."""
    if not ctx.need(pos, end, size, label):
        return ctx.span(pos, max(0, end - pos), name, label, None, "truncated"), end, None
    value = int.from_bytes(ctx.buf[pos : pos + size], "big")
    meaning = str(value)
    if names is not None:
        meaning = names.get(value, f"unknown ({value})")
    return ctx.span(pos, size, name, label, value, meaning), pos + size, value


def read_invoke_id(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int]:
    """Invoke-Id-And-Priority (Green Book 9.3.8): bits 0-3 id, bit 6 confirmed, bit 7 high."""
    if not ctx.need(pos, end, 1, "invoke-id-and-priority"):
        return ctx.span(pos, 0, name + ".invoke_id", "Invoke id and priority"), end
    b = ctx.buf[pos]
    fields["invoke_id"] = b & 0x0F
    meaning = (
        f"invoke id {b & 0x0F}, {'confirmed' if b & 0x40 else 'unconfirmed'}, "
        f"{'high' if b & 0x80 else 'normal'} priority"
    )
    return ctx.span(pos, 1, name + ".invoke_id", "Invoke id and priority", b, meaning), pos + 1


def read_descriptor(
    ctx: DecodeContext, pos: int, end: int, fields: Fields | None, name: str, method: bool = False
) -> tuple[Span, int, str]:
    """Cosem-Attribute-Descriptor or Cosem-Method-Descriptor: class, instance, id (9 bytes)."""
    label = "Method descriptor" if method else "Attribute descriptor"
    if not ctx.need(pos, end, 9, label):
        return ctx.raw(pos, end, name, label, "truncated"), end, "?"
    buf = ctx.buf
    cid = (buf[pos] << 8) | buf[pos + 1]
    obis = buf[pos + 2 : pos + 8]
    item = buf[pos + 8]
    cname = class_name(cid)
    oname = obis_name(obis)
    ob_text = format_obis(obis)
    key = "method" if method else "attribute"
    children = (
        ctx.span(pos, 2, name + ".class_id", "Class id", cid, cname),
        ctx.span(
            pos + 2,
            6,
            name + ".instance_id",
            "Instance id (OBIS)",
            ob_text,
            f"{ob_text} {oname}".rstrip(),
        ),
        ctx.span(pos + 8, 1, name + "." + key, key.capitalize(), item, f"{key} {item}"),
    )
    text = f"{cname} {ob_text}{' (' + oname + ')' if oname else ''} {key} {item}"
    if fields is not None:
        fields["class_id"] = cid
        fields["class_name"] = cname
        fields["obis"] = dotted_obis(obis)
        if oname:
            fields["obis_name"] = oname
        fields[key] = item
    return ctx.span(pos, 9, name, label, None, text, children), pos + 9, text


def read_access_selection(ctx: DecodeContext, pos: int, end: int, name: str) -> tuple[Span, int]:
    """Selective-Access-Descriptor OPTIONAL: 00 absent, 01 selector + parameters."""
    if not ctx.need(pos, end, 1, "access selection"):
        return ctx.span(pos, 0, name, "Access selection"), end
    if ctx.buf[pos] == 0:
        return ctx.span(pos, 1, name, "Access selection", False, "absent"), pos + 1
    sel, cur, selector = read_uint(
        ctx,
        pos + 1,
        end,
        1,
        name + ".selector",
        "Access selector",
        {1: "range descriptor", 2: "entry descriptor"},
    )
    params, cur, _ = decode_data(ctx, cur, end, name + ".parameters", "Access parameters")
    return (
        ctx.span(
            pos, cur - pos, name, "Access selection", True, f"selector {selector}", (sel, params)
        ),
        cur,
    )


def read_octets(
    ctx: DecodeContext, pos: int, end: int, name: str, label: str, secret: bool = False
) -> tuple[Span, int, bytes]:
    """A-XDR OCTET STRING: length + bytes."""
    got = read_length(ctx, pos, end, label)
    if got is None:
        return ctx.raw(pos, end, name, label, "bad length"), end, b""
    n, lsize = got
    stop = clamp(ctx, pos, lsize, pos + lsize, n, end, label)
    data = ctx.buf[pos + lsize : stop]
    meaning = hexs(data) if len(data) <= 16 else f"{len(data)} bytes"
    return ctx.span(pos, stop - pos, name, label, data, meaning, secret=secret), stop, data


def read_data_result(
    ctx: DecodeContext, pos: int, end: int, fields: Fields | None, name: str
) -> tuple[Span, int, str]:
    """Get-Data-Result CHOICE: [0] data, [1] data-access-result."""
    if not ctx.need(pos, end, 1, "result"):
        return ctx.span(pos, 0, name, "Result"), end, "?"
    if ctx.buf[pos] == 0:
        data, cur, value = decode_data(ctx, pos + 1, end, name + ".data", "Data")
        if fields is not None:
            fields["value"] = value
            fields["access_result"] = "success"
        text = data.meaning if len(data.meaning) <= 60 else data.meaning[:57] + "..."
        sel = ctx.span(pos, 1, name + ".choice", "Result choice", 0, "data")
        return ctx.span(pos, cur - pos, name, "Result", None, "data", (sel, data)), cur, text
    if ctx.buf[pos] == 1:
        res, cur, code = read_access_result(
            ctx, pos + 1, end, name + ".access_result", "Data access result"
        )
        text = res.meaning
        if fields is not None:
            fields["access_result"] = text
        sel = ctx.span(pos, 1, name + ".choice", "Result choice", 1, "data-access-result")
        return ctx.span(pos, cur - pos, name, "Result", code, text, (sel, res)), cur, text
    ctx.finding(
        "apdu.axdr.choice",
        pos,
        1,
        "result",
        f"result choice {ctx.buf[pos]} unknown",
        expected="0 or 1",
        found=str(ctx.buf[pos]),
    )
    return ctx.raw(pos, end, name, "Result", "unknown choice"), end, "?"


def access_finding(ctx: DecodeContext, pos: int, code: int | None, text: str) -> None:
    if code is not None and code != 0:
        ctx.finding(
            "apdu.access_error",
            pos,
            1,
            "data-access-result",
            f"meter answered {text}",
            severity=Severity.WARNING,
            found=text,
        )


def read_access_result(
    ctx: DecodeContext, pos: int, end: int, name: str, label: str
) -> tuple[Span, int, int | None]:
    """One Data-Access-Result byte; anything but success is also a finding."""
    res, cur, code = read_uint(ctx, pos, end, 1, name, label, DATA_ACCESS_RESULTS)
    access_finding(ctx, pos, code, res.meaning)
    return res, cur, code


def read_block_sa(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str, number_size: int = 4
) -> tuple[Span, int]:
    """DataBlock-SA: last-block BOOLEAN, block-number Unsigned32, raw-data OCTET STRING.

    ``number_size`` 2 reads the short-name DataBlock-G, whose block number is Unsigned16.
    """
    last, cur, lb = read_uint(ctx, pos, end, 1, name + ".last_block", "Last block")
    num, cur, bn = read_uint(ctx, cur, end, number_size, name + ".block_number", "Block number")
    raw, cur, data = read_octets(ctx, cur, end, name + ".raw_data", "Raw data")
    fields["last_block"] = bool(lb)
    fields["block_number"] = bn
    meaning = f"block {bn}{' (last)' if lb else ''}, {len(data)} bytes"
    return ctx.span(pos, cur - pos, name, "Data block", None, meaning, (last, num, raw)), cur


def read_count(
    ctx: DecodeContext, pos: int, end: int, name: str, label: str
) -> tuple[Span, int, int]:
    got = read_length(ctx, pos, end, label)
    if got is None:
        return ctx.span(pos, 0, name, label), end, 0
    n, lsize = got
    return ctx.span(pos, lsize, name, label, n, f"{n} items"), pos + lsize, n


def read_list(
    ctx: DecodeContext,
    pos: int,
    end: int,
    name: str,
    label: str,
    item: Callable[[int, int], tuple[Span, int]],
) -> tuple[Span, int, int]:
    """SEQUENCE OF: an A-XDR count then items; stops at the end of the bytes."""
    cnt, cur, n = read_count(ctx, pos, end, name + ".count", label + " count")
    children = [cnt]
    for i in range(n):
        if cur >= end:
            if ctx.guard_hit:
                break
            ctx.finding(
                "apdu.axdr.length",
                pos,
                cnt.length,
                label,
                f"{label}: {n} items announced, {i} present",
                expected=str(i),
                found=str(n),
                corrected=hexs(encode_length(i)),
            )
            break
        child, cur = item(cur, i)
        children.append(child)
    return ctx.span(pos, cur - pos, name, label, n, f"{n} items", tuple(children)), cur, n
