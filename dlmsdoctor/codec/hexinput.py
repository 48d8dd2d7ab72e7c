"""Read hex the way people paste it: bare hex, log lines, dumps, ``0x`` lists, bytes literals.

``parse_hex_input(text)`` returns the byte chunks found, each with its direction (from log words
such as TX/RX/Sent/Recibido or arrows), its timestamp as written, its line number and its source
text, plus ``problems``: lines that meant hex but could not be read (odd digit count, a non-hex
character), so that nothing is lost silently. Never raises.

Accepted forms, per line:
- ``7E A0 07 ..``, ``7EA007..``, ``7e:a0:07``, ``7E-A0-07``, ``0x7E, 0xA0``, ``{0x7E,0xA0}``;
- ``\\x7e\\xa0..`` and Python bytes literals ``b'~\\xa0..'`` / ``bytearray(b'..')``;
- log lines: ``TX 7E ..``, ``RX: 7E ..``, ``Sent\\t7E ..``, ``<- 7E ..``, ``>> ..``,
  ``[2025-10-30 14:51:48.452] TX: ..``, ``2025-10-30 14:51:48,452 DEBUG dlms: TX ..``,
  ``Frame HDLC enviado: 7E A0 ..``; several markers on one line give several chunks;
- ``hexdump -C``, plain ``hexdump`` (little-endian words), ``xxd``, ``od -A x -t x1z`` and
  Wireshark "Copy as Hex Dump" rows (offset, hex, ascii), with "*" for repeated rows.

Rule for multi-line input: each line is its own chunk (a log with one frame per line: a damaged
line cannot change how the next ones are read), except that a line continues the chunk of the
line just before it when that chunk ends inside a frame and the line does not start a whole frame
of its own (loggers that write one line per socket read, dumps wrapped at 16 bytes); with
direction words, only a line of the same direction continues. A line of bare hex also continues
a chunk that is no frame at all (a wrapped dump of an APDU). A blank line always starts a new
chunk. Dump rows (with offsets) continue their dump while each offset equals the previous offset
plus the previous row's byte count.

Words are not hex: a token needs a digit, or must not read as a word ("Face", "Added", "de");
in prose (no direction word or timestamp on the line) a run inside other text needs 4 bytes
that are not words ("10 de 2025" is a date) or a 7E flag byte;
a lone byte counts only as ``0x..``/``\\x..`` or when it is all the line holds.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class HexChunk:
    """Bytes found on one line (or on a run of continuation lines)."""

    data: bytes
    direction: str | None  # "tx", "rx" or None
    line: int  # 1-based number of the first line
    timestamp: str | None  # as written in the input
    source: str  # the original line(s)


@dataclass(frozen=True, slots=True)
class HexProblem:
    """A line that meant hex but could not be read."""

    line: int
    message: str
    source: str


@dataclass(frozen=True, slots=True)
class HexInput:
    chunks: tuple[HexChunk, ...]
    problems: tuple[HexProblem, ...]

    @property
    def data(self) -> bytes:
        """Every chunk's bytes, in order."""
        return b"".join(c.data for c in self.chunks)


# ---------------------------------------------------------------------------------------------
# patterns

_TIMESTAMPS = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\d{1,2}/\d{1,2}/\d{2,4}[ ,]+\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,9})?"
    r"|\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2}"
    r"(?:[.,]\d{1,9})?"
    r"|(?<![0-9A-Fa-f:])\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?![0-9A-Za-z:])"
    r"|(?<=\[)\d{9,10}\.\d{1,9}(?=\])"
)
_TX_WORDS = "tx|sent|send|sending|snd|enviado|enviada|enviando|env[ií]o|envi[ée]"
_RX_WORDS = "rx|received|receive|receiving|recv|rcv|recibido|recibida|recibiendo|recepci[oó]n"
_MARKER = re.compile(
    rf"(?P<tx>(?<![0-9A-Za-z])(?:{_TX_WORDS})(?![0-9A-Za-z])|-->|->|=>|>>)"
    rf"|(?P<rx>(?<![0-9A-Za-z])(?:{_RX_WORDS})(?![0-9A-Za-z])|<--|<-|<=|<<)",
    re.IGNORECASE,
)
_BYTES_LITERAL = re.compile(r"""(?<![A-Za-z0-9_])b(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_X_ESCAPES = re.compile(r"(?:\\x[0-9A-Fa-f]{2})+")
_DUMP_ROW = re.compile(r"^(?P<off>[0-9A-Fa-f]{4,8}):?(?P<rest>[ \t]{1,3}\S.*)$")
_DUMP_TOKEN = re.compile(r"[ \t]{1,3}([0-9A-Fa-f]{4}|[0-9A-Fa-f]{2})(?=\s|$)")
# One token of hex: an even or odd run of hex digits between non-alphanumerics.
_TOKEN = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]+(?![0-9A-Za-z])")
_SEPARATORS = " \t,;:-_|{}[]()"
# Letters-only tokens that are words, not bytes (English and Spanish, as found in logs).
_WORDS = frozenset(
    {
        "a", "ab", "abba", "abbe", "accede", "ace", "aced", "ad", "add", "added", "ba", "bad",
        "bade", "be", "bead", "bed", "bee", "beef", "cab", "cafe", "cede", "dab", "dad", "de",
        "dead", "deaf", "deb", "decade", "deed", "efface", "fa", "fab", "face", "faced", "fad",
        "fade", "faded", "fe", "fed", "fee", "feed",
    }
)  # fmt: skip
_MIN_RUN = 2  # bytes, for hex found inside other text after a direction word or timestamp
# Hex inside prose with no direction word: "10 de Noviembre", "a bad cafe", "fe 2025" read as
# hex words. Such a run is bytes only when it is long or holds an HDLC flag.
_MIN_RUN_IN_PROSE = 4
_MIN_DIGITS_ONLY = 16  # a digits-only run inside text shorter than this is a number (a pid)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _is_hex_byte_token(tok: str) -> bool:
    """Is this run of hex digits meant as bytes, not a word or a small number?"""
    if not any(c.isdigit() for c in tok):
        if tok.lower() in _WORDS:
            return False
        if len(tok) > 2 and tok[0].isupper() and tok[1:].islower():
            return False  # "Face", "Added": capitalised words
    return True


# ---------------------------------------------------------------------------------------------
# one line


@dataclass(slots=True)
class _Found:
    data: bytes
    direction: str | None
    bare: bool  # the line held only hex (may continue the previous chunk)


@dataclass(slots=True)
class _LineResult:
    found: list[_Found]
    problems: list[str]
    timestamp: str | None
    marked: bool  # a direction word or timestamp was on the line


def _strict(text: str) -> bytes | str | None:
    """Hex meant as the whole of ``text``: bytes, an error message, or None if not hex."""
    body = text.strip().strip(_SEPARATORS + ".=")
    if not body:
        return None
    if "0x" in body.lower():
        parts = re.split(r"0[xX]", body)
        if parts[0].strip(_SEPARATORS):
            return None
        out = bytearray()
        for part in parts[1:]:
            m = re.match(r"[0-9A-Fa-f]{1,2}", part)
            rest = part[m.end() :] if m else part
            if not m or rest.strip(_SEPARATORS):
                shown = (part.strip() or "?")[:8]
                return f"'0x{shown}' is not a byte: use 0x followed by 1 or 2 hex digits"
            out.append(int(m.group(0), 16))
        return bytes(out)
    tokens = [t for t in re.split(r"[ \t,;:\-_|{}\[\]()]+", body) if t]
    # "7E AD BE 07": two-digit tokens throughout are bytes, even those that spell "ad" or "be".
    byte_structured = len(tokens) > 1 and all(len(t) == 2 for t in tokens)
    bad: str | None = None
    for tok in tokens:
        non_hex = [c for c in tok if c not in _HEX_DIGITS]
        if not non_hex:
            if not byte_structured and not _is_hex_byte_token(tok):
                return None  # a word such as "Face": this is text, not hex
            continue
        # "0G", "7x": a typo inside hex. "bytes", "OK": words, so the hex sits in text.
        if len(non_hex) == 1 and len(tok) <= 4 and non_hex[0].isalnum():
            bad = bad or f"{non_hex[0]!r} in {tok!r} is not a hex digit"
            continue
        return None
    if bad:
        return bad
    joined = "".join(tokens)
    if len(joined) < 2:
        return None
    if len(joined) % 2:
        odd = [t for t in tokens if len(t) % 2]
        where = f" (token {odd[0]!r})" if odd and len(tokens) > 1 else ""
        return f"odd number of hex digits ({len(joined)}){where}: a digit is missing or extra"
    return bytes.fromhex(joined)


def _digits_only(run: str) -> bool:
    return re.sub(r"[^0-9A-Fa-f]", "", run).isdigit()


def _lenient(text: str, marked: bool = True) -> list[bytes]:
    """Runs of hex bytes inside other text: the longest, and any others of 4+ bytes.

    Without a direction marker (``marked``) a run needs 4+ bytes or a 7E flag byte."""
    runs: list[tuple[int, int]] = []  # (start, end) in text
    start = end = -1
    nbytes = 0
    sizes: list[int] = []
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        near = start >= 0 and len(text[end : m.start()]) <= 3
        joins = near and text[end : m.start()].strip(" \t,:-") == ""
        # A two-letter word ("ad", "be", "de") is a byte only inside a run already begun.
        ok = len(tok) % 2 == 0 and (_is_hex_byte_token(tok) or (joins and len(tok) == 2))
        if ok and joins:
            end = m.end()
            nbytes += len(tok) // 2
            continue
        if start >= 0:
            runs.append((start, end))
            sizes.append(nbytes)
            start = -1
        if ok:
            start, end, nbytes = m.start(), m.end(), len(tok) // 2
    if start >= 0:
        runs.append((start, end))
        sizes.append(nbytes)
    good = [
        (r, n)
        for r, n in zip(runs, sizes, strict=True)
        if n >= _MIN_RUN
        and (n * 2 >= _MIN_DIGITS_ONLY or not _digits_only(text[r[0] : r[1]]))
        and (
            marked
            or _strong_bytes(text[r[0] : r[1]]) >= _MIN_RUN_IN_PROSE
            or _has_flag(text[r[0] : r[1]])
        )
    ]
    if not good:
        return []
    longest = max(n for _, n in good)
    out = []
    for (a, b), n in good:
        if n == longest or n >= 4:
            digits = re.sub(r"[^0-9A-Fa-f]", "", text[a:b])
            out.append(bytes.fromhex(digits))
    return out


def _strong_bytes(run: str) -> int:
    """Bytes in a run not counting word tokens ("10 de 2025" has 3: "de" is a word)."""
    return sum(len(t) // 2 for t in _TOKEN.findall(run) if _is_hex_byte_token(t))


def _has_flag(run: str) -> bool:
    digits = re.sub(r"[^0-9A-Fa-f]", "", run)
    return any(digits[i : i + 2].lower() == "7e" for i in range(0, len(digits) - 1, 2))


def _segments(text: str) -> list[tuple[str | None, str, bool]]:
    """Cut at direction markers: (direction, text after the marker, marker present)."""
    out: list[tuple[str | None, str, bool]] = []
    pos = 0
    direction: str | None = None
    marked = False
    for m in _MARKER.finditer(text):
        out.append((direction, text[pos : m.start()], marked))
        direction = "tx" if m.group("tx") else "rx"
        marked = True
        pos = m.end()
    out.append((direction, text[pos:], marked))
    return out


# The forms most logs use, read without the general search: bare hex, and "[time] TX: hex".
_FAST_HEX = r"[0-9A-Fa-f]{2}(?: [0-9A-Fa-f]{2})+|(?=[0-9A-Fa-f]*[0-9])(?:[0-9A-Fa-f]{2}){2,}"
_FAST_BARE = re.compile(_FAST_HEX)
_FAST_LOG = re.compile(
    r"(?:\[(?P<ts>[^\]]{8,40})\] ?|(?P<ts2>\d{4}-\d\d-\d\d[T ][\d:.,]{8,18}) )?"
    r"(?P<dir>TX|RX|tx|rx|Tx|Rx)(?::? ?)(?P<hex>" + _FAST_HEX + r")"
)


# What comes before the hex in _FAST_LOG: with spaced hex after it (checked without a regex),
# _FAST_LOG matches the line with the same groups (nothing in the head can match hex digits
# that follow it, so no other split of the line exists).
_FAST_LOG_HEAD = re.compile(
    r"(?:\[(?P<ts>[^\]]{8,40})\] ?|(?P<ts2>\d{4}-\d\d-\d\d[T ][\d:.,]{8,18}) )?"
    r"(?P<dir>TX|RX|tx|rx|Tx|Rx)(?::? ?)"
)


def _spaced_hex(text: str) -> bytes | None:
    """The bytes of ``text`` when it is ``HH HH ... HH`` (2 bytes or more), else None: what
    ``[0-9A-Fa-f]{2}(?: [0-9A-Fa-f]{2})+`` accepts, checked faster than that regex."""
    n = len(text)
    if n < 5 or n % 3 != 2 or text[2::3] != " " * (n // 3):
        return None
    try:
        data = bytes.fromhex(text)
    except ValueError:
        return None
    # Every separator is a space; n // 3 + 1 bytes means every other character is a hex digit.
    return data if len(data) == n // 3 + 1 else None


def _parse_line(line: str) -> _LineResult:
    """What one line holds; the common forms take a short cut that gives the same result."""
    head = _FAST_LOG_HEAD.match(line)
    if head is not None:
        data = _spaced_hex(line[head.end() :])
        if data is not None:
            ts = head.group("ts") or head.group("ts2")
            if ts is None or _TIMESTAMPS.fullmatch(ts):
                direction = "tx" if head.group("dir").lower() == "tx" else "rx"
                return _LineResult([_Found(data, direction, False)], [], ts, True)
    if _FAST_BARE.fullmatch(line):
        return _LineResult([_Found(bytes.fromhex(line), None, True)], [], None, False)
    m = _FAST_LOG.fullmatch(line)
    if m is not None:
        ts = m.group("ts") or m.group("ts2")
        if ts is None or _TIMESTAMPS.fullmatch(ts):
            direction = "tx" if m.group("dir").lower() == "tx" else "rx"
            found = _Found(bytes.fromhex(m.group("hex")), direction, False)
            return _LineResult([found], [], ts, True)
    return _parse_line_slow(line)


def _parse_line_slow(line: str) -> _LineResult:
    res = _LineResult([], [], None, False)
    text = line
    ts = _TIMESTAMPS.search(text)
    if ts and ts.group(0) == text.strip():
        ts = None  # "00:01:02" alone is three colon-separated bytes, not a time
    if ts:
        res.timestamp = ts.group(0)
        res.marked = True
        text = text[: ts.start()] + " " + text[ts.end() :]
    # Bytes literals and \x escapes first: their text would confuse the hex search.
    literal = _BYTES_LITERAL.search(text) or _X_ESCAPES.search(text)
    if literal:
        raw = literal.group(0)
        try:
            value = ast.literal_eval(raw if raw.startswith("b") else f"b'{raw}'")
        except (ValueError, SyntaxError):
            res.problems.append("the bytes literal cannot be read (bad escape or quote)")
            return res
        if isinstance(value, bytes) and value:
            direction, marked = _direction_before(text[: literal.start()])
            res.marked = res.marked or marked
            res.found.append(_Found(value, direction, False))
        return res
    segments = _segments(text)
    guessed: list[_Found] = []  # hex found inside other text, in a segment with no marker
    for direction, seg, marked in segments:
        res.marked = res.marked or marked
        whole_line = not marked and not res.timestamp and len(segments) == 1
        strict = _strict(seg)
        tail = re.split(r"[:=]", seg)[-1]
        if not isinstance(strict, bytes) and tail != seg:
            # "send(9): 7E A0 ..": the hex is what follows the last colon or equals sign.
            strict_tail = _strict(tail)
            if isinstance(strict_tail, bytes) and len(strict_tail) >= _MIN_RUN:
                strict = strict_tail
                whole_line = False
            elif strict is None:
                strict = strict_tail
        if isinstance(strict, bytes):
            if len(strict) >= _MIN_RUN or marked or whole_line or "0x" in seg.lower():
                res.found.append(_Found(strict, direction, whole_line))
            continue
        if isinstance(strict, str):
            res.problems.append(strict)  # meant hex, unreadable: report it, guess nothing
            continue
        # Text with hex inside ("Frame HDLC enviado: 7E A0 ...", "TX 7E A0 .. (9 bytes)").
        found = _lenient(tail, marked or bool(res.timestamp)) or _lenient(
            seg, marked or bool(res.timestamp)
        )
        target = res.found if marked else guessed
        target.extend(_Found(data, direction, False) for data in found)
    if not res.found:
        res.found = guessed  # hex after a direction word wins over numbers before it
    return res


def _direction_before(text: str) -> tuple[str | None, bool]:
    found = list(_MARKER.finditer(text))
    if not found:
        return None, False
    return ("tx" if found[-1].group("tx") else "rx"), True


def _dump_row(line: str) -> tuple[int, bytes] | None:
    """(offset, bytes) of a hexdump -C / xxd / Wireshark row, or None."""
    m = _DUMP_ROW.match(line)
    if not m:
        return None
    rest = m.group("rest")
    # Plain `hexdump` (no -C) prints a 7-digit offset and 16-bit words in little-endian order.
    swapped = len(m.group("off")) == 7
    out = bytearray()
    pos = 0
    while len(out) < 16:
        t = _DUMP_TOKEN.match(rest, pos)
        if not t:
            break
        group = bytes.fromhex(t.group(1))
        out += group[::-1] if swapped and len(group) == 2 else group
        pos = t.end()
    if not out:
        return None
    tail = rest[pos:]
    # What follows the hex must be the ascii column (after a wide gap or a '|'), or nothing.
    if tail.strip() and not (tail.startswith(("   ", "  |", " |", "\t")) or len(out) >= 16):
        return None
    return int(m.group("off"), 16), bytes(out)


# ---------------------------------------------------------------------------------------------
# the whole input


class _OpenFrame:
    """Does the chunk being built end inside a frame? Walks its frames by their length fields,
    resuming where the last call stopped, so a long dump costs linear time (no decode)."""

    __slots__ = ("pos",)

    def __init__(self) -> None:
        self.pos = 0

    def inside(self, data: bytearray) -> bool:
        n = len(data)
        p = self.pos
        framed = p == 0  # a wrapper header counts at the start or right after a frame
        while p < n:
            b = data[p]
            if b == 0x7E:
                if p + 3 > n:
                    break  # a flag and part of a format field: a frame begun
                length = ((data[p + 1] & 0x07) << 8) | data[p + 2]
                e = p + length + 2
                if data[p + 1] >> 4 == 0xA and length >= 7:
                    if e > n:
                        break
                    if data[e - 1] == 0x7E:
                        # the next frame may open on this closing flag (a shared flag)
                        p = e - 1 if e < n and data[e] >> 4 == 0xA else e
                        framed = True
                        continue
            elif b == 0x00 and framed and p + 1 < n and data[p + 1] == 0x01:
                if p + 8 > n:
                    break
                e = p + 8 + ((data[p + 6] << 8) | data[p + 7])
                if e > n:
                    break
                p = e
                continue
            framed = False
            q = data.find(b"\x7e", p + 1)
            p = n if q < 0 else q
        else:
            self.pos = n
            return False
        self.pos = p
        return True


def _whole_frame_at_start(data: bytes) -> bool:
    """Does ``data`` start with a whole HDLC frame (by its length field and closing flag)?"""
    if len(data) < 9 or data[0] != 0x7E or data[1] >> 4 != 0xA:
        return False
    e = (((data[1] & 0x07) << 8) | data[2]) + 2
    return e <= len(data) and data[e - 1] == 0x7E


def _continues(cur: _Building, found: _Found, bare: bool) -> bool:
    """Does this line continue the chunk before it? Only when that chunk ends inside a frame
    (a frame logged over several lines, one socket read per line) and this line does not start
    a whole frame of its own; or, for lines that hold only hex, when the chunk is no frame at
    all (a dump of other bytes). So in a log with one frame per line each line is its own
    chunk, and a damaged line cannot change how the next ones are read."""
    if not bare and (found.direction is None or found.direction != cur.direction):
        return False
    if cur.open_frame.inside(cur.data):
        return not _whole_frame_at_start(found.data)
    return bare and cur.data[:1] != b"\x7e" and cur.data[:2] != b"\x00\x01"


@dataclass(slots=True)
class _Building:
    data: bytearray
    direction: str | None
    line: int
    timestamp: str | None
    sources: list[str]
    open_frame: _OpenFrame = field(default_factory=_OpenFrame)

    def done(self) -> HexChunk:
        # HexChunk(...) without the frozen dataclass's __init__ (once per line of a log)
        out = _new(HexChunk)
        s_data, s_direction, s_line, s_timestamp, s_source = _HEX_CHUNK_SETTERS
        s_data(out, bytes(self.data))
        s_direction(out, self.direction)
        s_line(out, self.line)
        s_timestamp(out, self.timestamp)
        sources = self.sources
        s_source(out, sources[0] if len(sources) == 1 else "\n".join(sources))
        return out


_new = object.__new__
_HEX_CHUNK_SETTERS = tuple(
    getattr(HexChunk.__dict__[name], "__set__")  # noqa: B009  (slot descriptors)
    for name in ("data", "direction", "line", "timestamp", "source")
)


def parse_hex_input(text: str) -> HexInput:
    """Find the bytes in pasted text. Never raises."""
    chunks: list[HexChunk] = []
    problems: list[HexProblem] = []
    for item in iter_hex_input(text.splitlines()):
        if isinstance(item, HexChunk):
            chunks.append(item)
        else:
            problems.append(item)
    return HexInput(tuple(chunks), tuple(problems))


def iter_hex_input(lines: Iterable[str]) -> Iterator[HexChunk | HexProblem]:
    """``parse_hex_input`` line by line, for inputs too large to hold: chunks and problems in
    input order, each chunk given out as soon as a later line shows that it is complete.
    Holds one chunk in memory. Never raises."""
    cur: _Building | None = None
    dump_next: int | None = None  # offset the next dump row must have to continue
    last_row = b""  # the previous dump row, for "*" (repeated rows)
    repeat = False
    prev_gave_hex = False

    def close() -> Iterator[HexChunk]:
        nonlocal cur
        if cur is not None and cur.data:
            yield cur.done()
        cur = None

    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            yield from close()
            dump_next = None
            prev_gave_hex = False
            continue
        if line == "*" and dump_next is not None and cur is not None:
            repeat = True  # hexdump/od: the row above repeats until the next offset
            cur.sources.append(raw)
            continue
        row = _dump_row(line)
        if row is not None and dump_next is not None and cur is not None and repeat:
            missing = row[0] - dump_next
            if missing > 0 and last_row and missing % len(last_row) == 0:
                cur.data += last_row * (missing // len(last_row))
                dump_next = row[0]
        if row is not None and (row[0] == 0 or row[0] == dump_next):
            offset, data = row
            if offset == 0 or cur is None:
                yield from close()
                cur = _Building(bytearray(), None, number, None, [])
            cur.data += data
            cur.sources.append(raw)
            dump_next = offset + len(data)
            last_row, repeat = data, False
            prev_gave_hex = True
            continue
        if (
            dump_next is not None
            and cur is not None
            and repeat
            and re.fullmatch(r"[0-9A-Fa-f]{4,8}", line)
        ):
            missing = int(line, 16) - dump_next
            if missing > 0 and last_row and missing % len(last_row) == 0:
                cur.data += last_row * (missing // len(last_row))
                dump_next = int(line, 16)
        repeat = False
        if dump_next is not None and re.fullmatch(r"[0-9A-Fa-f]{4,8}", line):
            # hexdump's closing offset line: the length. Plain hexdump pads an odd length with
            # a 00 in the last word; this line says to drop it.
            if int(line, 16) == dump_next:
                continue
            if cur is not None and int(line, 16) == dump_next - 1 and cur.data[-1:] == b"\x00":
                del cur.data[-1]
                continue
        dump_next = None
        try:
            res = _parse_line(line)
        except Exception as exc:  # a reader bug must not lose the rest of the paste
            yield HexProblem(number, f"could not read this line ({exc})", raw)
            yield from close()
            prev_gave_hex = False
            continue
        for message in res.problems:
            yield HexProblem(number, message, raw)
        if not res.found:
            yield from close()
            prev_gave_hex = False
            continue
        for i, found in enumerate(res.found):
            bare_more = found.bare and not res.marked
            if cur is not None and i == 0 and prev_gave_hex and _continues(cur, found, bare_more):
                cur.data += found.data
                cur.sources.append(raw)
                continue
            yield from close()
            cur = _Building(bytearray(found.data), found.direction, number, res.timestamp, [raw])
        prev_gave_hex = True
    yield from close()


# ---------------------------------------------------------------------------------------------
# text or bytes?

_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v\x1b")  # tabs, line ends and colour escapes in logs
_MAX_CONTROL_SHARE = 0.05


def binary_reason(head: bytes, final: bool = False) -> str | None:
    """Why ``head`` (the first block of an input) is bytes, not text to read hex from; None when
    it is text. ``final`` says the input ends there (a cut UTF-8 sequence is then an error).

    A serial sniffer's dump or ``/dev/urandom`` is not a paste: reading it as text finds "hex"
    in random letters and calls it a frame. A few bytes of bad UTF-8 are tolerated: a log
    written in Latin-1 or cp1252 ("Recibido: trama válida") is text with accents.
    """
    if not head:
        return None
    nul = head.find(b"\x00")
    if nul >= 0:
        return f"a NUL byte at offset {nul}"
    if not final:
        # a block may end inside a UTF-8 sequence: leave its last (at most 3) bytes out
        cut = len(head)
        while cut > len(head) - 3 and cut > 0 and head[cut - 1] & 0xC0 == 0x80:
            cut -= 1
        if cut > 0 and head[cut - 1] >= 0xC0:
            head = head[: cut - 1]
    text = head.decode("utf-8", errors="replace")
    if not text:
        return None
    bad = text.count("\ufffd")
    if bad / len(text) > _MAX_CONTROL_SHARE:
        return f"{bad} byte(s) of invalid UTF-8 in the first {len(head)}"
    controls = sum(1 for c in text if ord(c) < 0x20 and ord(c) not in _TEXT_CONTROLS)
    controls += sum(1 for c in text if 0x7F <= ord(c) < 0xA0)
    if controls / len(text) > _MAX_CONTROL_SHARE:
        return f"{controls} control characters in the first {len(text)}"
    return None
