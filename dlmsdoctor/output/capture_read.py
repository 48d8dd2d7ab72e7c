"""Read a capture back into a Session: a dlmsdoctor pcapng, or any pcap/pcapng with a DLMS stream.

A dlmsdoctor pcapng carries the Session (without frames) as JSON in its section header and one
machine comment per data packet: the Session comes back exactly (frames, directions, connection
ids, steps, timestamps to the microsecond; secret bytes stay masked if they were masked).

A foreign capture (tcpdump, Wireshark) is read by its TCP streams: the server port is the one the
first SYN went to (without a SYN: 4059 if seen, else the lower port), payload is taken in
sequence order (retransmissions dropped), and each direction is cut into frames with the codec's
``StreamSplitter``; a frame is timestamped by the segment that completed it. Streams whose
payload is neither HDLC nor the wrapper are left out unless their port is asked for.

The pcap/pcapng parsing is done here with ``struct``: it is small, never imports scapy, and
never raises anything but ``CaptureFormatError`` on damaged files.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import struct
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from dlmsdoctor.events import CloseHow, Direction
from dlmsdoctor.output.capture import (
    FRAME_COMMENT_PREFIX,
    SESSION_COMMENT_MORE,
    SESSION_COMMENT_PREFIX,
)
from dlmsdoctor.session import (
    ConnectionRecord,
    FrameRecord,
    PingRecord,
    Session,
    SessionFormatError,
    Target,
    format_host_port,
)

PCAPNG_SHB = 0x0A0D0D0A
_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}
# Link types whose packets we can walk down to IP.
LINK_ETHERNET, LINK_RAW, LINK_NULL, LINK_LOOP, LINK_SLL, LINK_IPV4, LINK_IPV6, LINK_SLL2 = (
    1, 101, 0, 108, 113, 228, 229, 276,
)  # fmt: skip


class CaptureFormatError(ValueError):
    """A file that is not a readable pcap/pcapng, or holds no DLMS stream."""


@dataclass(slots=True)
class RawPacket:
    ts_us: int
    linktype: int
    data: bytes
    comments: list[str] = field(default_factory=list)
    outbound: bool | None = None
    offset: int = 0  # where its block or record starts in the file (for messages)


@dataclass(slots=True)
class RawCapture:
    packets: list[RawPacket]
    section_comments: list[str]


# --------------------------------------------------------------------------- file formats


def _options(buf: bytes, pos: int, end: int, endian: str,
             base: int = 0) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    while pos + 4 <= end:
        code, length = struct.unpack_from(endian + "HH", buf, pos)
        if code == 0:
            break
        if pos + 4 + length > end:
            raise CaptureFormatError(f"at byte {base + pos}: option {code} of {length} bytes "
                                     "runs past the end of its block")
        out.append((code, buf[pos + 4 : pos + 4 + length]))
        pos += 4 + length + (-length) % 4
    return out


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


# Packets longer than this are damage whatever the header says (tcpdump's largest snapshot).
_MAX_PACKET = 262_144
# Timestamps past this (microseconds since 1970: the year 9999) are damage, not time.
_MAX_TS_US = 253_402_300_799 * 1_000_000
# A capture is read this many bytes at a time: a 200 MB file is never in memory at once.
_READ_SIZE = 1 << 18


def _timestamp(ticks: int, per_second: int, where: int) -> int:
    ts_us = ticks * 1_000_000 // per_second
    if not 0 <= ts_us <= _MAX_TS_US:
        raise CaptureFormatError(f"at byte {where}: packet timestamp out of range (expected a "
                                 "date before the year 10000; a damaged time or resolution)")
    return ts_us


class _Window:
    """A file read a block at a time: ``buf[pos:]`` is the unread part, ``base`` the file
    offset of ``buf[0]``."""

    __slots__ = ("base", "buf", "handle", "pos", "size")

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle, self.size = handle, size
        self.buf, self.base, self.pos = b"", 0, 0

    @property
    def at(self) -> int:
        return self.base + self.pos

    def need(self, n: int) -> bool:
        """At least ``n`` unread bytes in ``buf`` (False at the end of the file)."""
        while len(self.buf) - self.pos < n:
            more = self.handle.read(max(_READ_SIZE, n))
            if not more:
                return False
            self.buf = self.buf[self.pos :] + more
            self.base += self.pos
            self.pos = 0
        return True


def _pcapng_packets(win: _Window, comments: list[str]) -> Iterator[RawPacket]:
    """Blocks in order; raises CaptureFormatError naming the byte offset of the damage."""
    interfaces: list[tuple[int, int]] = []  # (linktype, units per second)
    endian = "<"
    seen = False
    while win.need(12):
        buf, pos, at = win.buf, win.pos, win.at
        block_type = struct.unpack_from("<I", buf, pos)[0]
        if block_type == PCAPNG_SHB:
            bom = buf[pos + 8 : pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                raise CaptureFormatError(f"at byte {at + 8}: section header byte-order magic "
                                         f"{bom.hex()} (expected 1a2b3c4d)")
            interfaces = []
        block_type, total = struct.unpack_from(endian + "II", buf, pos)
        if total < 12 or total % 4 or at + total > win.size:
            if seen and at + total > win.size and total % 4 == 0:
                break  # a file cut short: keep what was whole (tcpdump killed mid-write)
            raise CaptureFormatError(
                f"at byte {at}: block length {total} (expected a multiple of 4, at least 12, "
                f"within the file's {win.size} bytes)")
        if not win.need(total):
            break  # the file shrank while read
        buf, pos = win.buf, win.pos
        trailer = struct.unpack_from(endian + "I", buf, pos + total - 4)[0]
        if trailer != total:
            raise CaptureFormatError(f"at byte {at + total - 4}: block length {trailer} at the "
                                     f"end of the block (expected {total}, as at its start)")
        body, end = pos + 8, pos + total - 4
        base = at - pos  # file offset of buf[0]
        win.pos += total
        if block_type == PCAPNG_SHB:
            if body + 16 > end:
                raise CaptureFormatError(f"at byte {at}: section header block too short")
            comments += [_text(v) for c, v in _options(buf, body + 16, end, endian, base)
                         if c == 1]
        elif block_type == 1 and body + 8 <= end:
            linktype = struct.unpack_from(endian + "H", buf, body)[0]
            resolution = 1_000_000
            for code, value in _options(buf, body + 8, end, endian, base):
                if code == 9 and value:
                    exp = value[0]
                    resolution = 2 ** (exp & 0x7F) if exp & 0x80 else 10**exp
            interfaces.append((linktype, resolution))
        elif block_type == 6 and body + 20 <= end:
            iface, hi, lo, caplen, _orig = struct.unpack_from(endian + "IIIII", buf, body)
            if body + 20 + caplen > end:
                raise CaptureFormatError(f"at byte {at}: packet of {caplen} bytes in a block "
                                         f"of {total} (expected it to fit its block)")
            if iface < len(interfaces):
                linktype, resolution = interfaces[iface]
                data = buf[body + 20 : body + 20 + caplen]
                opts = _options(buf, body + 20 + caplen + (-caplen) % 4, end, endian, base)
                ts_us = _timestamp((hi << 32) | lo, resolution, base + body + 4)
                packet = RawPacket(ts_us, linktype, data, offset=at)
                for code, value in opts:
                    if code == 1:
                        packet.comments.append(_text(value))
                    elif code == 2 and len(value) == 4:
                        bits = struct.unpack(endian + "I", value)[0] & 0b11
                        packet.outbound = {1: False, 2: True}.get(bits)
                seen = True
                yield packet
        elif block_type == 3 and interfaces and body + 4 <= end:  # simple packet block
            seen = True
            yield RawPacket(0, interfaces[0][0], buf[body + 4 : end], offset=at)


def _pcap_packets(win: _Window) -> Iterator[RawPacket]:
    """Records in order; a last record cut short is left out (a capture killed mid-write)."""
    if not win.need(24):
        raise CaptureFormatError(f"pcap header of {len(win.buf)} bytes (expected 24)")
    buf = win.buf
    endian, resolution = _PCAP_MAGICS[buf[:4]]
    snaplen = struct.unpack_from(endian + "I", buf, 16)[0]
    linktype = struct.unpack_from(endian + "I", buf, 20)[0] & 0x0FFFFFFF
    win.pos = 24
    limit = max(snaplen, _MAX_PACKET)
    header = struct.Struct(endian + "IIII")
    while win.need(16):
        sec, frac, caplen, _orig = header.unpack_from(win.buf, win.pos)
        at = win.at
        if caplen > limit:
            raise CaptureFormatError(
                f"at byte {at}: packet record of {caplen} bytes (expected at most the file's "
                f"snapshot length, {snaplen})")
        if not win.need(16 + caplen):
            break  # the last record cut short (a capture killed mid-write): keep the whole ones
        pos = win.pos
        data = win.buf[pos + 16 : pos + 16 + caplen]
        win.pos = pos + 16 + caplen
        ts_us = _timestamp(sec * resolution + frac, resolution, at)
        yield RawPacket(ts_us, linktype, data, offset=at)


def _packets_of(path: str | Path, handle: BinaryIO, size: int,
                comments: list[str]) -> Iterator[RawPacket]:
    """The packets of an open capture file, read as they are needed."""
    win = _Window(handle, size)
    win.need(4)
    head = win.buf[:4]
    if head == struct.pack("<I", PCAPNG_SHB):
        return _pcapng_packets(win, comments)
    if head in _PCAP_MAGICS:
        return _pcap_packets(win)
    raise CaptureFormatError(f"{path} is not a pcap or pcapng file")


def read_pcapng(buf: bytes) -> RawCapture:
    """Blocks in order; raises CaptureFormatError naming the byte offset of the damage."""
    comments: list[str] = []
    packets = list(_pcapng_packets(_Window(io.BytesIO(buf), len(buf)), comments))
    return RawCapture(packets, comments)


def read_pcap(buf: bytes) -> RawCapture:
    """Records in order; a last record cut short is left out (a capture killed mid-write)."""
    return RawCapture(list(_pcap_packets(_Window(io.BytesIO(buf), len(buf)))), [])


def read_raw(path: str | Path) -> RawCapture:
    """Every packet of a capture in memory (for small files and tests: ``read_capture``
    streams)."""
    comments: list[str] = []
    with _open_capture(path) as (handle, size):
        packets = _guarded(path, _packets_of(path, handle, size, comments))
        return RawCapture(list(packets), comments)


@contextmanager
def _open_capture(path: str | Path) -> Iterator[tuple[BinaryIO, int]]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
        size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise CaptureFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        yield handle, size


def _guarded(path: str | Path, packets: Iterator[RawPacket]) -> Iterator[RawPacket]:
    """``packets``, a damage found on the way named with the file."""
    try:
        yield from packets
    except CaptureFormatError as exc:
        raise CaptureFormatError(f"{path}: {exc}") from None
    except struct.error as exc:  # a length check missed above: still a place and the file
        raise CaptureFormatError(f"{path}: damaged capture ({exc})") from None
    except OSError as exc:
        raise CaptureFormatError(f"cannot read {path}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------- IP and TCP


@dataclass(slots=True)
class IpPacket:
    src: str
    dst: str
    proto: int
    payload: bytes


def _ip_of(packet: RawPacket) -> IpPacket | None:
    data, link = packet.data, packet.linktype
    if link == LINK_ETHERNET:
        if len(data) < 14:
            return None
        ethertype, pos = struct.unpack_from("!H", data, 12)[0], 14
        while ethertype in (0x8100, 0x88A8) and len(data) >= pos + 4:  # VLAN tags
            ethertype, pos = struct.unpack_from("!H", data, pos + 2)[0], pos + 4
        data = data[pos:] if ethertype in (0x0800, 0x86DD) else b""
    elif link in (LINK_NULL, LINK_LOOP):
        data = data[4:]
    elif link == LINK_SLL:
        data = data[16:]
    elif link == LINK_SLL2:
        data = data[20:]
    elif link not in (LINK_RAW, LINK_IPV4, LINK_IPV6):
        return None
    if len(data) >= 20 and data[0] >> 4 == 4:
        ihl = (data[0] & 0x0F) * 4
        total = struct.unpack_from("!H", data, 2)[0]
        if struct.unpack_from("!H", data, 6)[0] & 0x1FFF:
            return None  # a later IP fragment: not reassembled
        src, dst = ".".join(map(str, data[12:16])), ".".join(map(str, data[16:20]))
        return IpPacket(src, dst, data[9], data[ihl : max(total, ihl)])
    if len(data) >= 40 and data[0] >> 4 == 6:
        plen = struct.unpack_from("!H", data, 4)[0]
        src, dst = _ipv6_text(data[8:24]), _ipv6_text(data[24:40])
        return IpPacket(src, dst, data[6], data[40 : 40 + plen])
    return None


def _ipv6_text(packed: bytes) -> str:
    """An IPv6 address as people write it; an IPv4-mapped one as ``::ffff:127.0.0.1``."""
    import ipaddress

    addr = ipaddress.IPv6Address(packed)
    mapped = addr.ipv4_mapped
    return f"::ffff:{mapped}" if mapped is not None else str(addr)


@dataclass(slots=True)
class TcpSegment:
    ts_us: int
    src: str
    sport: int
    dst: str
    dport: int
    seq: int
    flags: int
    payload: bytes


def _tcp(ts_us: int, ip: IpPacket) -> TcpSegment | None:
    seg = ip.payload
    if len(seg) < 20:
        return None
    sport, dport, seq, _ack, off, flags = struct.unpack_from("!HHIIBB", seg, 0)
    return TcpSegment(ts_us, ip.src, sport, ip.dst, dport, seq, flags, seg[(off >> 4) * 4 :])


# --------------------------------------------------------------------------- dlmsdoctor files


def _own_session(raw: RawCapture) -> Session | None:
    comments = raw.section_comments
    first = next((i for i, c in enumerate(comments) if c.startswith(SESSION_COMMENT_PREFIX)), None)
    if first is None:
        return None
    text = comments[first][len(SESSION_COMMENT_PREFIX) :]
    for more in comments[first + 1 :]:
        if not more.startswith(SESSION_COMMENT_MORE):
            break
        text += more[len(SESSION_COMMENT_MORE) :]
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CaptureFormatError(f"the session in the section header comment is damaged at "
                                 f"character {exc.pos}: {exc.msg}") from None
    except (RecursionError, ValueError):  # nested too deep; an int of thousands of digits
        raise CaptureFormatError("the session in the section header comment is not a "
                                 "session (nested too deeply, or a number too long)") from None
    if isinstance(doc, dict):
        doc["frames"] = []
    try:
        session = Session.from_json(doc)
    except SessionFormatError as exc:
        raise CaptureFormatError(f"the session in the section header comment: {exc}") from None
    frames: dict[int, FrameRecord] = {}
    for number, packet in enumerate(raw.packets, start=1):
        note = next((c for c in packet.comments if c.startswith(FRAME_COMMENT_PREFIX)), None)
        ip = _ip_of(packet)
        seg = _tcp(packet.ts_us, ip) if ip and ip.proto == 6 else None
        if note is None or seg is None:
            continue
        where = f"packet {number} (byte {packet.offset}): its dlmsdoctor comment"
        try:
            info = json.loads(note[len(FRAME_COMMENT_PREFIX) :])
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
            raise CaptureFormatError(f"{where} is not valid JSON") from None
        record = _frame_note(info, where, seg.payload)
        if record.index in frames:  # one received chunk written as several segments
            frames[record.index].data += seg.payload
            continue
        frames[record.index] = record
    session.frames = [frames[i] for i in sorted(frames)]
    return session


def _frame_note(info: Any, where: str, data: bytes) -> FrameRecord:
    """The FrameRecord a packet comment describes, each field checked."""
    if not isinstance(info, dict):
        raise CaptureFormatError(f"{where}: expected an object")

    def need(key: str, ok: Callable[[Any], bool], expected: str) -> Any:
        if key not in info:
            raise CaptureFormatError(f"{where}: {key} missing")
        if not ok(info[key]):
            raise CaptureFormatError(f"{where}: {key}: expected {expected}")
        return info[key]

    def counter(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31

    def seconds(v: Any) -> bool:
        return (isinstance(v, int | float) and not isinstance(v, bool)
                and math.isfinite(v) and abs(v) <= 1e12)

    index = need("index", counter, "a frame number")
    conn = need("conn", counter, "a connection number")
    direction = need("dir", lambda v: v in ("tx", "rx"), "tx or rx")
    at = need("at", seconds, "a time in seconds")
    step = info.get("step", "")
    kind = info.get("kind", "")
    if not isinstance(step, str) or not isinstance(kind, str):
        raise CaptureFormatError(f"{where}: step and kind: expected strings")
    answers = info.get("answers")  # written since the frames carry them; older files lack it
    if answers is not None and not counter(answers):
        raise CaptureFormatError(f"{where}: answers: expected a frame number")
    return FrameRecord(index=index, conn_id=conn, direction=Direction(direction),
                       at=float(at), data=data, step_id=step, kind=kind, answers=answers,
                       late=info.get("late") is True)


# --------------------------------------------------------------------------- foreign captures

# What a capture keeps (a poller's capture of 200 MB holds 1.7 million frames; the rules and
# the faces need the story, not every repetition): per connection its first and last frames,
# per run the first connections whole, the last ones whole and, up to a cap, those in between
# that show something (the rules judge failures from them). The rest is split and counted
# (by kind, direction, finding code; first and last time; bytes), not stored.
KEEP_FRAMES_PER_CONNECTION = (2_000, 500)  # (first, last)
# (first connections, last connections, connections in between that show something: a refusal,
# a reset, a close by the meter, a finding, bytes that are not frames)
KEEP_FRAMES_PER_RUN = (20_000, 10_000, 10_000)
_REORDER = 32  # segments held per direction waiting for a gap to fill (captured out of order)
_HOLD_UNDECIDED = 64  # segments held per connection not yet known to be DLMS
_SEQ = 0xFFFFFFFF
_TOMBSTONES = 4096  # connections over remembered (their last ACKs come after)

_Row = tuple[int, Direction, bytes, str, tuple[str, ...]]  # time, direction, data, kind, codes


@dataclass(slots=True)
class _Side:
    """One direction of a TCP connection: reassembly and its splitter."""

    direction: Direction
    started: bool = False
    next_seq: int = 0
    held: list[tuple[int, int, bytes]] = field(default_factory=list)  # (seq, time, payload)
    splitter: Any = None
    last_kind: str = ""  # the kind of the last chunk out, when nothing is pending
    last_ts: int = 0


@dataclass(slots=True)
class _Flow:
    client: tuple[str, int]
    server: tuple[str, int]
    order: int
    first_ts: int
    last_ts: int = 0
    closed: bool = False
    fins: int = 0  # 1: the client's FIN seen, 2: the server's
    syn: tuple[int, int] | None = None  # (time, seq) of the client's SYN
    synack_ts: int | None = None
    any_rst: bool = False
    end: tuple[int, bool, int] | None = None  # (time, by server, flags) of the first FIN/RST
    then: tuple[int, int] | None = None  # (time, flags) of the other side's FIN/RST after it
    dlms: bool | None = None  # None: not known yet (segments held)
    ended: bool = False  # over while not known to be DLMS (judged if its server proves so)
    held: list[TcpSegment] = field(default_factory=list)
    payloads_seen: int = 0
    server_spoke: bool = False
    conn_id: int = 0
    tx: _Side = field(default_factory=lambda: _Side(Direction.TX))
    rx: _Side = field(default_factory=lambda: _Side(Direction.RX))
    head: list[_Row] = field(default_factory=list)
    tail: deque[_Row] = field(default_factory=deque)
    dropped_frames: int = 0
    dropped_bytes: int = 0

    @property
    def kept(self) -> int:
        return len(self.head) + len(self.tail) + 1


# A connection judged already (RST, or FIN both ways): later segments without SYN are its
# last ACKs.
_ENDED = _Flow(("", 0), ("", 0), 0, 0, closed=True)


def _guess_roles(a: tuple[str, int], b: tuple[str, int]) -> tuple[tuple[str, int], ...]:
    if a[1] == 4059 or (b[1] != 4059 and a[1] < b[1]):
        return b, a
    return a, b


def _looks_dlms(data: bytes) -> bool:
    return data[:1] == b"\x7e" or data[:2] == b"\x00\x01"


def _bridge_text(first: bytes) -> bool:
    """A serial-to-TCP bridge's own message (``Port already in use``) as the server's first
    bytes: the meter's port, held by another client when the capture was made."""
    from dlmsdoctor.codec.stream import split_stream

    return any(f.fields.get("code") == "stream.bridge.busy"
               for f in split_stream(first[:512], direction="rx"))


@lru_cache(maxsize=4096)
def _whole_frame(data: bytes, direction: str) -> tuple[str, tuple[str, ...]] | None:
    """(kind, finding codes) when ``data`` is exactly one HDLC frame (flags at both ends, none
    inside: what the splitter would cut from it after a frame) or one wrapper frame; else None.
    Cached: a poller's capture repeats the same frames thousands of times."""
    from dlmsdoctor.codec.model import FrameKind
    from dlmsdoctor.codec.stream import split_stream

    frames = split_stream(data, direction=direction, lazy_spans=True)
    if len(frames) != 1 or frames[0].data != data:
        return None
    frame = frames[0]
    if frame.kind is FrameKind.HDLC:
        if data[-1] != 0x7E or data.find(b"\x7e", 1, len(data) - 1) >= 0:
            return None
    elif frame.kind is not FrameKind.WRAPPER:
        return None
    return frame.kind.value, tuple(sorted({f.code for f in frame.findings}))


class _Summary:
    """What was split and counted but not kept."""

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.kinds: Counter[str] = Counter()
        self.directions: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.first: int | None = None
        self.last: int | None = None
        self.connections = 0
        self.closes: Counter[str] = Counter()
        self.undecided_bytes = 0

    def add(self, row: _Row) -> None:
        ts, direction, data, kind, codes = row
        self.frames += 1
        self.bytes += len(data)
        self.kinds[kind] += 1
        self.directions[direction.value] += 1
        for code in codes:
            self.codes[code] += 1
        self.first = ts if self.first is None else min(self.first, ts)
        self.last = ts if self.last is None else max(self.last, ts)


class _CaptureReader:
    """One pass over the packets: TCP connections reassembled and split as they come."""

    def __init__(self, port: int | None, keep_connection: tuple[int, int],
                 keep_run: tuple[int, int, int]) -> None:
        self.port = port
        self.keep_connection = keep_connection
        self.keep_run = keep_run
        self.current: dict[frozenset[tuple[str, int]], _Flow] = {}
        self.flows = 0
        self.ended: deque[frozenset[tuple[str, int]]] = deque()
        self.dlms_servers: set[tuple[str, int]] = set()
        self.undecided: dict[tuple[str, int], list[_Flow]] = {}
        self.next_conn = 0
        self.first_dlms: _Flow | None = None
        self.head: list[_Flow] = []
        self.head_cost = 0
        self.tail: deque[_Flow] = deque()
        self.tail_cost = 0
        self.notable: list[_Flow] = []
        self.notable_cost = 0
        self.summary = _Summary()
        self.frames_total = 0
        self.t_first: int | None = None
        self.t_last: int | None = None
        self.icmp: list[tuple[int, IpPacket]] = []

    # -- packets ------------------------------------------------------------------------------
    def packet(self, packet: RawPacket) -> None:
        ip = _ip_of(packet)
        if ip is None:
            return
        if ip.proto == 6:
            seg = _tcp(packet.ts_us, ip)
            if seg is not None:
                self._time(seg.ts_us)
                self.segment(seg)
        elif ip.proto in (1, 58):  # ICMP, ICMPv6
            self._time(packet.ts_us)
            if len(self.icmp) < 100_000:  # pings, not a flood of them
                self.icmp.append((packet.ts_us, ip))

    def _time(self, ts: int) -> None:
        if self.t_first is None or ts < self.t_first:
            self.t_first = ts
        if self.t_last is None or ts > self.t_last:
            self.t_last = ts

    def segment(self, seg: TcpSegment) -> None:
        a, b = (seg.src, seg.sport), (seg.dst, seg.dport)
        key = frozenset((a, b))
        is_syn = seg.flags & 0x12 == 0x02
        flow = self.current.get(key)
        if flow is _ENDED:
            if not is_syn:
                return  # the last ACKs of a connection already judged
            flow = None
        if flow is None or (is_syn and flow.closed):
            if flow is not None:
                self._finish(flow)
            client, server = (a, b) if is_syn else _guess_roles(a, b)
            self.flows += 1
            flow = _Flow(client, server, self.flows, seg.ts_us)
            self.current[key] = flow
            if self.port is not None:
                flow.dlms = server[1] == self.port
            elif server[1] == 4059 or server in self.dlms_servers:
                flow.dlms = True
            if flow.dlms:
                self._chosen(flow)
            elif flow.dlms is None:
                waiting = self.undecided.setdefault(server, [])
                waiting.append(flow)
                if len(waiting) > _HOLD_UNDECIDED:  # many talks to a port that is not DLMS
                    self._let_go(waiting.pop(0))
        self._track(flow, seg, is_syn)
        if flow.dlms:
            self._take(flow, seg)
        elif flow.dlms is None:
            self._judge(flow, seg)
        if seg.flags & 0x04 or flow.fins == 3:  # nothing more can come: judge it now
            self._finish(flow)
            self.current[key] = _ENDED
            self.ended.append(key)
            if len(self.ended) > _TOMBSTONES:  # a poller's capture: tens of thousands
                old = self.ended.popleft()
                if self.current.get(old) is _ENDED:
                    del self.current[old]

    def _track(self, flow: _Flow, seg: TcpSegment, is_syn: bool) -> None:
        flow.last_ts = seg.ts_us
        flags = seg.flags
        first_syn = False
        if is_syn and flow.syn is None:
            flow.syn = (seg.ts_us, seg.seq)
            first_syn = True
        if flags & 0x12 == 0x12 and flow.synack_ts is None:
            flow.synack_ts = seg.ts_us
        if flags & 0x04:
            flow.any_rst = True
        if flags & 0x01:
            flow.fins |= 2 if (seg.src, seg.sport) == flow.server else 1
        if flags & 0x05:
            by_server = (seg.src, seg.sport) == flow.server
            if flow.end is None and not first_syn:
                flow.end = (seg.ts_us, by_server, flags)
            elif flow.end is not None and flow.then is None and by_server != flow.end[1]:
                flow.then = (seg.ts_us, flags)
            flow.closed = True

    def _judge(self, flow: _Flow, seg: TcpSegment) -> None:
        """A connection to a server not yet known as DLMS: its first two payloads decide."""
        if seg.payload:
            flow.payloads_seen += 1
            from_server = (seg.src, seg.sport) == flow.server
            if (flow.payloads_seen <= 2 and _looks_dlms(seg.payload)) or (
                    from_server and not flow.server_spoke and _bridge_text(seg.payload)):
                self._server_is_dlms(flow.server, extra=(flow, seg))
                return
            flow.server_spoke |= from_server
        flow.held.append(seg)
        if len(flow.held) > _HOLD_UNDECIDED:  # a long talk that is not DLMS: let it go
            self._let_go(flow)

    def _let_go(self, flow: _Flow) -> None:
        flow.dlms = False
        self.summary.undecided_bytes += sum(len(s.payload) for s in flow.held)
        flow.held = []

    def _server_is_dlms(self, server: tuple[str, int],
                        extra: tuple[_Flow, TcpSegment] | None = None) -> None:
        self.dlms_servers.add(server)
        waiting = sorted(self.undecided.pop(server, []), key=lambda f: f.order)
        for flow in waiting:
            if flow.dlms is False:
                continue  # its first bytes were let go (counted in undecided_bytes)
            flow.dlms = True
            self._chosen(flow)
            held, flow.held = flow.held, []
            for seg in held:
                self._take(flow, seg)
            if flow.ended:
                self._finish(flow)
        if extra is not None:
            self._take(*extra)

    def _chosen(self, flow: _Flow) -> None:
        self.next_conn += 1
        flow.conn_id = self.next_conn
        if self.first_dlms is None or flow.order < self.first_dlms.order:
            self.first_dlms = flow

    # -- reassembly ---------------------------------------------------------------------------
    def _take(self, flow: _Flow, seg: TcpSegment) -> None:
        side = flow.tx if (seg.src, seg.sport) == flow.client else flow.rx
        if seg.flags & 0x02:
            if not side.started:
                side.started, side.next_seq = True, (seg.seq + 1) & _SEQ
            return  # a SYN's payload is not the stream's
        if not seg.payload:
            return
        if not side.started:
            side.started, side.next_seq = True, seg.seq
        ahead = (seg.seq - side.next_seq) & _SEQ
        if 0 < ahead <= 0x7FFFFFFF:  # a gap: wait a little for the missing bytes
            side.held.append((seg.seq, seg.ts_us, seg.payload))
            if len(side.held) > _REORDER:
                self._flush_one(flow, side)
            return
        self._in_order(flow, side, seg.seq, seg.ts_us, seg.payload)

    def _in_order(self, flow: _Flow, side: _Side, seq: int, ts: int, payload: bytes) -> None:
        skip = (side.next_seq - seq) & _SEQ
        if skip > 0x7FFFFFFF:  # bytes before this segment were never captured: move on
            skip = 0
        if skip < len(payload):  # else all of it seen already (a retransmission)
            side.next_seq = (seq + len(payload)) & _SEQ
            self._feed(flow, side, ts, payload[skip:] if skip else payload)
        while side.held:  # what was waiting for this
            nearest = min(side.held, key=lambda h: (h[0] - side.next_seq) & _SEQ)
            ahead = (nearest[0] - side.next_seq) & _SEQ
            if 0 < ahead <= 0x7FFFFFFF:
                return
            side.held.remove(nearest)
            self._in_order(flow, side, *nearest)
            return

    def _flush_one(self, flow: _Flow, side: _Side) -> None:
        """The nearest held segment, the gap before it given up (the capture lost it)."""
        nearest = min(side.held, key=lambda h: (h[0] - side.next_seq) & _SEQ)
        side.held.remove(nearest)
        side.next_seq = nearest[0]
        self._in_order(flow, side, *nearest)

    def _feed(self, flow: _Flow, side: _Side, ts: int, data: bytes) -> None:
        side.last_ts = ts
        splitter = side.splitter
        if splitter is None:
            from dlmsdoctor.codec.stream import StreamSplitter

            splitter = side.splitter = StreamSplitter(direction=side.direction.value)
        elif side.last_kind and not splitter.pending:
            # After a whole frame, a segment that is one whole frame of the same kind is cut
            # the same by the splitter: take the cached cut (the decode is what costs).
            whole = _whole_frame(data, side.direction.value)
            if whole is not None and whole[0] == side.last_kind:
                self._frame(flow, (ts, side.direction, data, whole[0], whole[1]))
                return
        self._chunks(flow, side, ts, splitter.feed(data))

    def _chunks(self, flow: _Flow, side: _Side, ts: int, chunks: list[Any]) -> None:
        kind = ""
        for chunk in chunks:
            kind = chunk.kind.value
            codes = tuple(sorted({f.code for f in chunk.findings}))
            self._frame(flow, (ts, side.direction, chunk.data, kind, codes))
        if chunks:
            whole = kind in ("hdlc", "wrapper") and not side.splitter.pending
            side.last_kind = kind if whole else ""
        elif side.splitter.pending:
            side.last_kind = ""

    # -- what is kept -------------------------------------------------------------------------
    def _frame(self, flow: _Flow, row: _Row) -> None:
        self.frames_total += 1
        first, last = self.keep_connection
        if len(flow.head) < first:
            flow.head.append(row)
            return
        flow.tail.append(row)
        if len(flow.tail) > last:
            self._drop(flow, flow.tail.popleft())

    def _drop(self, flow: _Flow, row: _Row) -> None:
        self.summary.add(row)
        flow.dropped_frames += 1
        flow.dropped_bytes += len(row[2])

    def _finish(self, flow: _Flow) -> None:
        """A connection over (a new one on its ports, or the end of the capture)."""
        if flow.dlms is None:
            flow.ended = True  # kept (bounded) in case a later connection shows its server
            return
        if not flow.dlms:
            return
        for side in (flow.tx, flow.rx):
            while side.held:
                self._flush_one(flow, side)
            if side.splitter is not None:
                self._chunks(flow, side, side.last_ts, side.splitter.close())
                side.splitter = None
        first, last, notable = self.keep_run
        if self.head_cost + flow.kept <= first and not self.tail:
            self.head.append(flow)
            self.head_cost += flow.kept
            return
        self.tail.append(flow)
        self.tail_cost += flow.kept
        while self.tail_cost > last and len(self.tail) > 1:
            old = self.tail.popleft()
            self.tail_cost -= old.kept
            if self.notable_cost + old.kept <= notable and _notable(old):
                self.notable.append(old)
                self.notable_cost += old.kept
                continue
            for row in (*old.head, *old.tail):
                self.summary.add(row)
            self.summary.connections += 1
            self.summary.closes[_close_word(old)] += 1

    def finish(self) -> None:
        open_flows = [f for f in self.current.values() if f is not _ENDED]
        for flow in sorted(open_flows, key=lambda f: f.order):
            self._finish(flow)
        self.current = {}


def _notable(flow: _Flow) -> bool:
    """A connection the rules must see even in the middle of a long capture."""
    if flow.syn is not None and flow.synack_ts is None:
        return True  # refused or never answered
    if flow.any_rst or flow.dropped_frames or (flow.end is not None and flow.end[1]):
        return True  # reset, cut, or closed by the meter
    return any(row[4] or row[3] not in ("hdlc", "wrapper") for row in (*flow.head, *flow.tail))


def _close_word(flow: _Flow) -> str:
    if flow.synack_ts is None and flow.syn is not None:
        return "refused" if flow.any_rst else "timeout"
    if flow.end is None:
        return "open"
    _ts, by_server, flags = flow.end
    how = "rst" if flags & 0x04 else ("fin" if by_server else "local")
    return how + (" by peer" if by_server else "")


def _foreign_session(packets: Iterator[RawPacket], source: str, port: int | None,
                     keep_connection: tuple[int, int] = KEEP_FRAMES_PER_CONNECTION,
                     keep_run: tuple[int, int, int] = KEEP_FRAMES_PER_RUN) -> Session:
    reader = _CaptureReader(port, keep_connection, keep_run)
    for packet in packets:
        reader.packet(packet)
    reader.finish()
    flows = sorted([*reader.head, *reader.notable, *reader.tail], key=lambda f: f.order)
    first = reader.first_dlms
    if first is None or reader.t_first is None or reader.t_last is None:
        where = f" on port {port}" if port is not None else ""
        raise CaptureFormatError(
            f"no DLMS TCP stream found in {source}{where} (HDLC or wrapper payload, or port "
            "4059); give the meter's port"
        )
    t0 = reader.t_first
    host, server_port = first.server
    session = Session(
        id=f"capture:{Path(source).name}", tool_version="(foreign capture)",
        started_at=datetime.fromtimestamp(t0 / 1_000_000, UTC).isoformat(timespec="microseconds"),
        target=Target(host=host, port=server_port),
        settings={"source": str(source)},
    )
    rows: list[tuple[int, int, Direction, bytes, str]] = []
    for flow in flows:
        session.connections.append(_connection(flow, t0))
        rows += [(ts, flow.conn_id, d, data, kind)
                 for ts, d, data, kind, _codes in (*flow.head, *flow.tail)]
    rows.sort(key=lambda r: (r[0], r[1]))
    session.frames = [
        FrameRecord(index=i, conn_id=c, direction=d, at=(ts - t0) / 1_000_000, data=data,
                    kind=kind)
        for i, (ts, c, d, data, kind) in enumerate(rows)
    ]
    session.pings = _pings(reader.icmp, host, t0)
    session.duration = (reader.t_last - t0) / 1_000_000
    _note_summary(session, reader, flows, t0)  # first: the replay needs to know what was cut
    judge_foreign(session)
    return session


def judge_foreign(session: Session) -> Session:
    """A capture dlmsdoctor did not write shows another client (the user's poller, a head-end,
    GXDLMSDirector), never dlmsdoctor: its traffic is read as the tap reads a relayed poller
    (``tap.replay``), so the verdict and every finding speak of the poller, not of "our" frames,
    and no probe rule (ladder rungs, login budget) judges someone else's client."""
    from dlmsdoctor.tap.replay import judge_as_poller

    session.kind = "capture"
    return judge_as_poller(session)


def _note_summary(session: Session, reader: _CaptureReader, flows: list[_Flow],
                  t0: int) -> None:
    """Say what was counted and not kept: in the settings (every face shows them) and as a
    finding of the capture."""
    from dlmsdoctor.session import ProbeFinding

    summary = reader.summary
    cut = [f for f in flows if f.dropped_frames]
    if not summary.frames and not summary.connections and not cut \
            and not summary.undecided_bytes:
        return

    def at(ts: int | None) -> float | None:
        return None if ts is None else round((ts - t0) / 1_000_000, 6)

    doc: dict[str, Any] = {
        "frames_total": reader.frames_total,
        "frames_kept": len(session.frames),
        "frames_summarised": summary.frames,
        "bytes_summarised": summary.bytes,
        "connections_total": reader.next_conn,
        "connections_kept": len(flows),
        "connections_summarised": summary.connections,
        "connections_cut": {str(f.conn_id): f.dropped_frames for f in cut[:50]},
        "by_kind": dict(summary.kinds.most_common()),
        "by_direction": dict(summary.directions.most_common()),
        "by_finding": dict(summary.codes.most_common()),
        "closes_summarised": dict(summary.closes.most_common()),
        "first_at": at(summary.first),
        "last_at": at(summary.last),
        "bytes_not_dlms_dropped": summary.undecided_bytes,
        "caps": {"frames_per_connection": list(reader.keep_connection),
                 "frames_per_run": list(reader.keep_run)},
    }
    session.settings["capture_summary"] = doc
    message = summary_text(doc)
    frames_cut = [f.conn_id for f in cut]
    for flow in cut:
        record = session.connection(flow.conn_id)
        if record is not None:
            record.bytes_dropped = flow.dropped_bytes
            record.note = (record.note + "; " if record.note else "") + (
                f"{flow.dropped_frames} frame(s) in the middle counted, not kept")
    session.findings.append(ProbeFinding(
        step_id="capture", code="capture.summarised", severity="warning", message=message,
        at=doc["first_at"] or 0.0, data={"connections_cut": frames_cut[:50]}))


def summary_text(doc: dict[str, Any]) -> str:
    """One sentence for a capture's summary (``settings["capture_summary"]``)."""
    parts = [f"{doc['frames_summarised']} of {doc['frames_total']} frames "
             f"({doc['bytes_summarised']} bytes) were counted but not kept"]
    if doc.get("connections_summarised"):
        closes = ", ".join(f"{n} {how}" for how, n in doc.get("closes_summarised", {}).items())
        parts.append(f"{doc['connections_summarised']} of {doc['connections_total']} "
                     f"connections summarised whole (closed: {closes})")
    if doc.get("connections_cut"):
        parts.append(f"{len(doc['connections_cut'])} connection(s) kept only their first and "
                     "last frames")
    if doc.get("first_at") is not None:
        parts.append(f"between {doc['first_at']:.3f} s and {doc['last_at']:.3f} s")
    kinds = ", ".join(f"{n} {k}" for k, n in doc.get("by_kind", {}).items())
    if kinds:
        parts.append(f"kinds: {kinds}")
    dirs = ", ".join(f"{n} {d.upper()}" for d, n in doc.get("by_direction", {}).items())
    if dirs:
        parts.append(dirs)
    codes = ", ".join(f"{c} x{n}" for c, n in list(doc.get("by_finding", {}).items())[:8])
    if codes:
        parts.append(f"findings: {codes}")
    if doc.get("bytes_not_dlms_dropped"):
        parts.append(f"{doc['bytes_not_dlms_dropped']} bytes of connections not yet known "
                     "as DLMS let go")
    return "; ".join(parts)


def _connection(flow: _Flow, t0: int) -> ConnectionRecord:
    host, port = flow.server
    client_host, client_port = flow.client
    conn = ConnectionRecord(id=flow.conn_id, host=host, port=port, local_port=client_port,
                            client=format_host_port(client_host, client_port))
    start = flow.syn[0] if flow.syn else flow.first_ts
    if flow.synack_ts is not None:
        conn.opened_at = (flow.synack_ts - t0) / 1_000_000
        conn.connect_time = (flow.synack_ts - start) / 1_000_000
    elif flow.syn is not None:
        # never opened: opened_at stays None, as in a probe run; when it was given up on (the
        # RST, or the last SYN) is its close, how long that took its connect time
        conn.failed = "refused" if flow.any_rst else "timeout"
        conn.closed_at = (flow.last_ts - t0) / 1_000_000
        conn.connect_time = (flow.last_ts - start) / 1_000_000
        if flow.any_rst:
            conn.note = f"refused {(flow.last_ts - start) / 1_000:.1f} ms after the SYN"
    else:
        conn.opened_at = (start - t0) / 1_000_000  # capture began mid-connection
        conn.note = "capture started after the connection opened"
    if flow.end is not None and not conn.failed:
        ts, by_server, flags = flow.end
        conn.closed_at = (ts - t0) / 1_000_000
        conn.closed_by_peer = by_server
        if flags & 0x04:
            conn.close_how = CloseHow.RST
        else:
            conn.close_how = CloseHow.FIN if by_server else CloseHow.LOCAL
        if flow.then is not None:  # the other side's own close (FIN or RST)
            conn.then_closed_at = (flow.then[0] - t0) / 1_000_000
            conn.then_close_how = CloseHow.RST if flow.then[1] & 0x04 else CloseHow.FIN
    return conn


def _pings(icmp: list[tuple[int, IpPacket]], host: str, t0: int) -> list[PingRecord]:
    pings: dict[tuple[int, int], PingRecord] = {}
    for ts, ip in icmp:
        p = ip.payload
        if len(p) < 8:
            continue
        ident, seq = struct.unpack_from("!HH", p, 4)
        request, reply = (128, 129) if ip.proto == 58 else (8, 0)  # ICMPv6 or ICMP echo
        if p[0] == request and ip.dst == host:
            pings.setdefault((ident, seq), PingRecord((ts - t0) / 1e6, ident, seq, p[8:]))
        elif p[0] == reply and ip.src == host and (ident, seq) in pings:
            ping = pings[(ident, seq)]
            ping.reply_at = (ts - t0) / 1e6
            ping.rtt = round(ping.reply_at - ping.at, 6)
    return list(pings.values())


# --------------------------------------------------------------------------- entry point


def read_capture(path: str | Path, port: int | None = None, *,
                 keep_connection: tuple[int, int] | None = None,
                 keep_run: tuple[int, int, int] | None = None) -> Session:
    """A Session from a capture file; raises CaptureFormatError with a one-line message that
    names the file and, where there is one, the place (byte offset, packet) of the damage.

    The file is read as it is needed: a foreign capture keeps ``keep_connection`` frames of
    each connection (first, last) and ``keep_run`` of the run (first and last connections
    whole, notable ones in between); the rest is counted in ``settings["capture_summary"]``."""
    comments: list[str] = []
    with _open_capture(path) as (handle, size):
        try:
            packets = _guarded(path, _packets_of(path, handle, size, comments))
            first = next(packets, None)  # a pcapng's section header (its comments) read by now
            if any(c.startswith(SESSION_COMMENT_PREFIX) for c in comments):
                raw = RawCapture([*([first] if first else []), *packets], comments)
                own = _own_session(raw)
                if own is not None:
                    return own
            head = iter([first] if first is not None else [])
            return _foreign_session(itertools.chain(head, packets), str(path), port,
                                    keep_connection or KEEP_FRAMES_PER_CONNECTION,
                                    keep_run or KEEP_FRAMES_PER_RUN)
        except CaptureFormatError as exc:
            text = str(exc)
            raise CaptureFormatError(text if str(path) in text else f"{path}: {text}") from None
        except (struct.error, ValueError, IndexError, KeyError, OverflowError) as exc:
            # a check missed above: the user still gets the file and a plain line, not a trace
            raise CaptureFormatError(f"{path}: damaged capture ({type(exc).__name__}: "
                                     f"{' '.join(str(exc).split())[:200]})") from None


def load_and_diagnose(path: str | Path, port: int | None = None,
                      warn: Callable[[str], None] | None = None) -> Session:
    """What every face opens: the Session in ``path`` judged by today's rules.

    A capture from tcpdump has no diagnosis, an old session an old one; a report, the console
    and the TUI must all say what the rules say now (one source). A rule bug must not cost the
    user the frames: ``warn`` gets one line and the file's own diagnosis (if any) stays."""
    session = load_session_file(path, port)
    if session.kind not in ("tap", "capture") and not session.frames and not session.steps:
        return session
    try:
        session.diagnosis = _diagnose(session)
    except Exception as exc:  # a rule bug: see the docstring
        if warn is not None:
            warn(f"warning: no new diagnosis ({type(exc).__name__}: {exc})")
    return session


def _diagnose(session: Session) -> Any:
    """The rules for the session's kind: a tap's (the poller's own traffic: no steps, its
    findings and counts) for a tap run and for a capture of another client, or the probe's
    (dlmsdoctor's own run: steps and frames)."""
    if session.kind == "capture" and not isinstance(session.settings.get("tap"), dict):
        judge_foreign(session)  # saved by an older dlmsdoctor with the probe's rungs
    if session.kind in ("tap", "capture"):
        from dlmsdoctor.tap.rules import diagnose as diagnose_tap

        return diagnose_tap(session)
    from dlmsdoctor.diagnosis import diagnose

    return diagnose(session)


def load_session_file(path: str | Path, port: int | None = None) -> Session:
    """A Session from a session JSON or a capture, told apart by their first bytes.

    Raises CaptureFormatError or SessionFormatError (both ValueError) with a plain message.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise CaptureFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if head == struct.pack("<I", PCAPNG_SHB) or head in _PCAP_MAGICS:
        return read_capture(path, port)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SessionFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SessionFormatError(
            f"{path}: neither a dlmsdoctor session (JSON, UTF-8; byte {exc.start} is not "
            "UTF-8) nor a pcap/pcapng capture"
        ) from None
    try:
        return Session.loads(text)
    except SessionFormatError as exc:
        raise SessionFormatError(f"{path}: {_one_line(str(exc))}") from None
    except RecursionError:  # a reader deeper than JSON's own guard: still damage, said once
        raise SessionFormatError(f"{path}: nested too deeply") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
