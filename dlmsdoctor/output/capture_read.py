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

import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def _options(buf: bytes, pos: int, end: int, endian: str) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    while pos + 4 <= end:
        code, length = struct.unpack_from(endian + "HH", buf, pos)
        if code == 0:
            break
        if pos + 4 + length > end:
            raise CaptureFormatError(f"at byte {pos}: option {code} of {length} bytes runs past "
                                     "the end of its block")
        out.append((code, buf[pos + 4 : pos + 4 + length]))
        pos += 4 + length + (-length) % 4
    return out


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


# Packets longer than this are damage whatever the header says (tcpdump's largest snapshot).
_MAX_PACKET = 262_144
# Timestamps past this (microseconds since 1970: the year 9999) are damage, not time.
_MAX_TS_US = 253_402_300_799 * 1_000_000


def _timestamp(ticks: int, per_second: int, where: int) -> int:
    ts_us = ticks * 1_000_000 // per_second
    if not 0 <= ts_us <= _MAX_TS_US:
        raise CaptureFormatError(f"at byte {where}: packet timestamp out of range (expected a "
                                 "date before the year 10000; a damaged time or resolution)")
    return ts_us


def read_pcapng(buf: bytes) -> RawCapture:
    """Blocks in order; raises CaptureFormatError naming the byte offset of the damage."""
    packets: list[RawPacket] = []
    comments: list[str] = []
    interfaces: list[tuple[int, int]] = []  # (linktype, units per second)
    endian = "<"
    pos = 0
    while pos + 12 <= len(buf):
        block_type = struct.unpack_from("<I", buf, pos)[0]
        if block_type == PCAPNG_SHB:
            bom = buf[pos + 8 : pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                raise CaptureFormatError(f"at byte {pos + 8}: section header byte-order magic "
                                         f"{bom.hex()} (expected 1a2b3c4d)")
            interfaces = []
        block_type, total = struct.unpack_from(endian + "II", buf, pos)
        if total < 12 or total % 4 or pos + total > len(buf):
            if packets and pos + total > len(buf) and total % 4 == 0:
                break  # a file cut short: keep what was whole (tcpdump killed mid-write)
            raise CaptureFormatError(
                f"at byte {pos}: block length {total} (expected a multiple of 4, at least 12, "
                f"within the file's {len(buf)} bytes)")
        trailer = struct.unpack_from(endian + "I", buf, pos + total - 4)[0]
        if trailer != total:
            raise CaptureFormatError(f"at byte {pos + total - 4}: block length {trailer} at the "
                                     f"end of the block (expected {total}, as at its start)")
        body, end = pos + 8, pos + total - 4
        if block_type == PCAPNG_SHB:
            if body + 16 > end:
                raise CaptureFormatError(f"at byte {pos}: section header block too short")
            comments += [_text(v) for c, v in _options(buf, body + 16, end, endian) if c == 1]
        elif block_type == 1 and body + 8 <= end:
            linktype = struct.unpack_from(endian + "H", buf, body)[0]
            resolution = 1_000_000
            for code, value in _options(buf, body + 8, end, endian):
                if code == 9 and value:
                    exp = value[0]
                    resolution = 2 ** (exp & 0x7F) if exp & 0x80 else 10**exp
            interfaces.append((linktype, resolution))
        elif block_type == 6 and body + 20 <= end:
            iface, hi, lo, caplen, _orig = struct.unpack_from(endian + "IIIII", buf, body)
            if body + 20 + caplen > end:
                raise CaptureFormatError(f"at byte {pos}: packet of {caplen} bytes in a block "
                                         f"of {total} (expected it to fit its block)")
            if iface < len(interfaces):
                linktype, resolution = interfaces[iface]
                data = buf[body + 20 : body + 20 + caplen]
                opts = _options(buf, body + 20 + caplen + (-caplen) % 4, end, endian)
                ts_us = _timestamp((hi << 32) | lo, resolution, body + 4)
                packet = RawPacket(ts_us, linktype, data, offset=pos)
                for code, value in opts:
                    if code == 1:
                        packet.comments.append(_text(value))
                    elif code == 2 and len(value) == 4:
                        bits = struct.unpack(endian + "I", value)[0] & 0b11
                        packet.outbound = {1: False, 2: True}.get(bits)
                packets.append(packet)
        elif block_type == 3 and interfaces and body + 4 <= end:  # simple packet block
            packets.append(RawPacket(0, interfaces[0][0], buf[body + 4 : end], offset=pos))
        pos += total
    return RawCapture(packets, comments)


def read_pcap(buf: bytes) -> RawCapture:
    """Records in order; a last record cut short is left out (a capture killed mid-write)."""
    if len(buf) < 24:
        raise CaptureFormatError(f"pcap header of {len(buf)} bytes (expected 24)")
    endian, resolution = _PCAP_MAGICS[buf[:4]]
    snaplen = struct.unpack_from(endian + "I", buf, 16)[0]
    linktype = struct.unpack_from(endian + "I", buf, 20)[0] & 0x0FFFFFFF
    packets: list[RawPacket] = []
    pos = 24
    while pos + 16 <= len(buf):
        sec, frac, caplen, _orig = struct.unpack_from(endian + "IIII", buf, pos)
        if caplen > max(snaplen, _MAX_PACKET):
            raise CaptureFormatError(
                f"at byte {pos}: packet record of {caplen} bytes (expected at most the file's "
                f"snapshot length, {snaplen})")
        data = buf[pos + 16 : pos + 16 + caplen]
        if len(data) < caplen:
            break  # the last record cut short (a capture killed mid-write): keep the whole ones
        ts_us = _timestamp(sec * resolution + frac, resolution, pos)
        packets.append(RawPacket(ts_us, linktype, data, offset=pos))
        pos += 16 + caplen
    return RawCapture(packets, [])


def read_raw(path: str | Path) -> RawCapture:
    try:
        buf = Path(path).read_bytes()
    except OSError as exc:
        raise CaptureFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        if buf[:4] == struct.pack("<I", PCAPNG_SHB):
            return read_pcapng(buf)
        if buf[:4] in _PCAP_MAGICS:
            return read_pcap(buf)
    except CaptureFormatError as exc:
        raise CaptureFormatError(f"{path}: {exc}") from None
    except struct.error as exc:  # a length check missed above: still a place and the file
        raise CaptureFormatError(f"{path}: damaged capture ({exc})") from None
    raise CaptureFormatError(f"{path} is not a pcap or pcapng file")


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
        import ipaddress

        plen = struct.unpack_from("!H", data, 4)[0]
        src = str(ipaddress.IPv6Address(data[8:24]))
        dst = str(ipaddress.IPv6Address(data[24:40]))
        return IpPacket(src, dst, data[6], data[40 : 40 + plen])
    return None


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
    return FrameRecord(index=index, conn_id=conn, direction=Direction(direction),
                       at=float(at), data=data, step_id=step, kind=kind)


# --------------------------------------------------------------------------- foreign captures


@dataclass(slots=True)
class _Flow:
    client: tuple[str, int]
    server: tuple[str, int]
    segments: list[TcpSegment] = field(default_factory=list)
    closed: bool = False


def _flows(segments: list[TcpSegment]) -> list[_Flow]:
    """TCP connections in order of their first packet; a SYN after a FIN/RST on the same
    addresses and ports starts a new one."""
    current: dict[frozenset[tuple[str, int]], _Flow] = {}
    out: list[_Flow] = []
    for seg in segments:
        a, b = (seg.src, seg.sport), (seg.dst, seg.dport)
        key = frozenset((a, b))
        is_syn = seg.flags & 0x12 == 0x02
        flow = current.get(key)
        if flow is None or (is_syn and flow.closed):
            flow = _Flow(a, b) if is_syn else _guess_roles(a, b)
            current[key] = flow
            out.append(flow)
        flow.segments.append(seg)
        if seg.flags & 0x05:
            flow.closed = True
    return out


def _guess_roles(a: tuple[str, int], b: tuple[str, int]) -> _Flow:
    if a[1] == 4059 or (b[1] != 4059 and a[1] < b[1]):
        return _Flow(b, a)
    return _Flow(a, b)


def _payloads(flow: _Flow, from_client: bool) -> list[tuple[int, bytes]]:
    """(time, new bytes) in sequence order: segments captured out of order are put back in
    order, retransmitted bytes are dropped, bytes after a gap the capture lost are kept."""
    src = flow.client if from_client else flow.server
    mine = [s for s in flow.segments if (s.src, s.sport) == src]
    syn = next((s for s in mine if s.flags & 0x02), None)
    data = [s for s in mine if s.payload and not s.flags & 0x02]
    if not data:
        return []
    base = (syn.seq + 1) & 0xFFFFFFFF if syn else data[0].seq
    data.sort(key=lambda s: (s.seq - base) & 0xFFFFFFFF)  # stable: first copy of a resend wins
    out: list[tuple[int, bytes]] = []
    next_seq = base
    for seg in data:
        skip = (next_seq - seg.seq) & 0xFFFFFFFF
        if skip > 0x7FFFFFFF:  # bytes before this segment were never captured: move on
            skip = 0
        if skip >= len(seg.payload):
            continue  # all of it seen already (a retransmission)
        out.append((seg.ts_us, seg.payload[skip:]))
        next_seq = (seg.seq + len(seg.payload)) & 0xFFFFFFFF
    return out


def _looks_dlms(data: bytes) -> bool:
    return data[:1] == b"\x7e" or data[:2] == b"\x00\x01"


def _dlms_flow(flow: _Flow) -> bool:
    data = [s.payload for s in flow.segments if s.payload]
    return any(_looks_dlms(d) for d in data[:2]) or _bridge_flow(flow)


def _bridge_flow(flow: _Flow) -> bool:
    """A serial-to-TCP bridge's own message (``Port already in use``) as the server's first
    bytes: the meter's port, held by another client when the capture was made."""
    from dlmsdoctor.codec.stream import split_stream

    first = next((s.payload for s in flow.segments
                  if s.payload and (s.src, s.sport) == flow.server), b"")
    return any(f.fields.get("code") == "stream.bridge.busy"
               for f in split_stream(first[:512], direction="rx"))


def _split(chunks: list[tuple[int, bytes]], direction: Direction) -> list[tuple[int, bytes, str]]:
    from dlmsdoctor.codec.stream import StreamSplitter

    splitter = StreamSplitter(direction=direction.value)
    out: list[tuple[int, bytes, str]] = []
    last = 0
    for ts, data in chunks:
        last = ts
        out += [(ts, f.data, f.kind.value) for f in splitter.feed(data)]
    out += [(last, f.data, f.kind.value) for f in splitter.close()]
    return out


def _foreign_session(raw: RawCapture, source: str, port: int | None) -> Session:
    segments: list[TcpSegment] = []
    icmp: list[tuple[int, IpPacket]] = []
    for packet in raw.packets:
        ip = _ip_of(packet)
        if ip is None:
            continue
        if ip.proto == 6:
            seg = _tcp(packet.ts_us, ip)
            if seg is not None:
                segments.append(seg)
        elif ip.proto == 1:
            icmp.append((packet.ts_us, ip))
    flows = _flows(segments)
    if port is not None:
        servers = {f.server for f in flows if f.server[1] == port}
    else:
        servers = {f.server for f in flows if f.server[1] == 4059 or _dlms_flow(f)}
    # Every connection to a DLMS server counts, also those that carried only a bridge's text.
    chosen = [f for f in flows if f.server in servers]
    if not chosen:
        where = f" on port {port}" if port is not None else ""
        raise CaptureFormatError(
            f"no DLMS TCP stream found in {source}{where} (HDLC or wrapper payload, or port "
            "4059); give the meter's port"
        )
    t0 = min([s.ts_us for s in segments] + [t for t, _ in icmp])
    host, server_port = chosen[0].server
    session = Session(
        id=f"capture:{Path(source).name}", tool_version="(foreign capture)",
        started_at=datetime.fromtimestamp(t0 / 1_000_000, UTC).isoformat(timespec="microseconds"),
        target=Target(host=host, port=server_port),
        settings={"source": str(source)},
    )
    rows: list[tuple[int, int, Direction, bytes, str]] = []
    for conn_id, flow in enumerate(chosen, start=1):
        session.connections.append(_connection(conn_id, flow, t0))
        for direction in (Direction.TX, Direction.RX):
            chunks = _payloads(flow, direction is Direction.TX)
            rows += [(ts, conn_id, direction, data, kind)
                     for ts, data, kind in _split(chunks, direction)]
    rows.sort(key=lambda r: (r[0], r[1]))
    session.frames = [
        FrameRecord(index=i, conn_id=c, direction=d, at=(ts - t0) / 1_000_000, data=data,
                    kind=kind)
        for i, (ts, c, d, data, kind) in enumerate(rows)
    ]
    session.pings = _pings(icmp, host, t0)
    last = max([s.ts_us for s in segments] + [t for t, _ in icmp])
    session.duration = (last - t0) / 1_000_000
    from dlmsdoctor.output.capture_steps import infer_rungs

    infer_rungs(session)  # the rungs the frames show, so the rules judge it like a run
    return session


def _connection(conn_id: int, flow: _Flow, t0: int) -> ConnectionRecord:
    host, port = flow.server
    conn = ConnectionRecord(id=conn_id, host=host, port=port, local_port=flow.client[1])
    segs = flow.segments
    syn = next((s for s in segs if s.flags & 0x12 == 0x02), None)
    synack = next((s for s in segs if s.flags & 0x12 == 0x12), None)
    start = syn.ts_us if syn else segs[0].ts_us
    if synack is not None:
        conn.opened_at = (synack.ts_us - t0) / 1_000_000
        conn.connect_time = (synack.ts_us - start) / 1_000_000
    elif syn is not None and any(s.flags & 0x04 for s in segs):
        conn.failed = "refused"  # never opened: opened_at stays None, as in a probe run
        conn.note = f"refused {(segs[-1].ts_us - start) / 1_000:.1f} ms after the SYN"
    elif syn is not None:
        conn.failed = "timeout"
    else:
        conn.opened_at = (start - t0) / 1_000_000  # capture began mid-connection
        conn.note = "capture started after the connection opened"
    end = next((s for s in segs if s.flags & 0x05 and not (syn and s is syn)), None)
    if end is not None and not conn.failed:
        conn.closed_at = (end.ts_us - t0) / 1_000_000
        conn.closed_by_peer = (end.src, end.sport) == flow.server
        if end.flags & 0x04:
            conn.close_how = CloseHow.RST
        else:
            conn.close_how = CloseHow.FIN if conn.closed_by_peer else CloseHow.LOCAL
    return conn


def _pings(icmp: list[tuple[int, IpPacket]], host: str, t0: int) -> list[PingRecord]:
    pings: dict[tuple[int, int], PingRecord] = {}
    for ts, ip in icmp:
        p = ip.payload
        if len(p) < 8:
            continue
        ident, seq = struct.unpack_from("!HH", p, 4)
        if p[0] == 8 and ip.dst == host:
            pings.setdefault((ident, seq), PingRecord((ts - t0) / 1e6, ident, seq, p[8:]))
        elif p[0] == 0 and ip.src == host and (ident, seq) in pings:
            ping = pings[(ident, seq)]
            ping.reply_at = (ts - t0) / 1e6
            ping.rtt = round(ping.reply_at - ping.at, 6)
    return list(pings.values())


# --------------------------------------------------------------------------- entry point


def read_capture(path: str | Path, port: int | None = None) -> Session:
    """A Session from a capture file; raises CaptureFormatError with a one-line message that
    names the file and, where there is one, the place (byte offset, packet) of the damage."""
    raw = read_raw(path)
    try:
        own = _own_session(raw)
        if own is not None:
            return own
        return _foreign_session(raw, str(path), port)
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
    if session.kind != "tap" and not session.frames and not session.steps:
        return session
    try:
        session.diagnosis = _diagnose(session)
    except Exception as exc:  # a rule bug: see the docstring
        if warn is not None:
            warn(f"warning: no new diagnosis ({type(exc).__name__}: {exc})")
    return session


def _diagnose(session: Session) -> Any:
    """The rules for the session's kind: a tap's (the poller's own traffic: no steps, its
    findings and counts) or the probe's (steps and frames; captures too)."""
    if session.kind == "tap":
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
