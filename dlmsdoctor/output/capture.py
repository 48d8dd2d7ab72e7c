"""Write a Session as a pcapng file a vendor's engineer opens in Wireshark.

The blocks are written with ``struct`` (scapy 2.8's PcapNgWriter cannot set a section comment or
the per-packet direction flags), over LINKTYPE_RAW (101: bare IP packets, IPv4 or IPv6 by their
first nibble). Each connection becomes a synthetic but consistent TCP stream over IPv4, or over
IPv6 when the meter's address is IPv6 (a tap relaying ::1 to ::1): three-way handshake, contiguous
seq/ack, one
HDLC frame or wrapper PDU per segment (Wireshark's DLMS dissector expects exactly that), the close
as observed (FIN or RST, and by whom), real timestamps (``started_at`` + ``frame.at``) and right
checksums. Pings become ICMP echo request/reply with their id and sequence.

Every packet carries comments: a human one (dlmsdoctor's own decode, whatever the HDLC address
size, since Wireshark understands only 1-byte addresses) and a machine one (``dlmsdoctor:frame
...``) that ``capture_read`` uses to restore the Session exactly. The section header holds what the
file is, how to decode it on a port other than 4059, and the Session without its frames as JSON.
Secret bytes are masked in packets and comments unless ``show_secrets``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dlmsdoctor.events import CloseHow, Direction
from dlmsdoctor.output.report_frames import FrameNote, annotate
from dlmsdoctor.private_files import write_private
from dlmsdoctor.session import ConnectionRecord, Session

LINKTYPE_RAW = 101
SESSION_COMMENT_PREFIX = "dlmsdoctor-session-json: "
SESSION_COMMENT_MORE = "dlmsdoctor-session-json+: "  # continuation: an option holds < 64 KiB
MAX_SEGMENT = 65_000  # TCP payload bytes per packet: IPv4 total and IPv6 payload length are 16-bit
OPTION_LIMIT = 60_000  # bytes of one comment; pcapng option lengths are 16-bit
FRAME_COMMENT_PREFIX = "dlmsdoctor:frame "
FLAG_INBOUND = 0b01  # epb_flags direction bits (pcapng spec, section 4.3.1)
FLAG_OUTBOUND = 0b10
# Addresses from the documentation ranges (RFC 5737, RFC 3849) when the real ones are unknown.
CLIENT_STANDIN = "192.0.2.100"
CLIENT_STANDIN6 = "2001:db8::100"
# A serial line's bytes travel in a synthetic TCP stream to DLMS's port, so Wireshark decodes
# them without Decode As; the section comment says it was a serial line (docs/captures.md).
SERIAL_STANDIN_PORT = 4059
SERVER_STANDIN = "192.0.2.1"
_TCP_FIN, _TCP_SYN, _TCP_RST, _TCP_PSH, _TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_WINDOW = 64240


class CaptureWriteError(OSError):
    """The capture file could not be written."""


@dataclass(slots=True)
class Packet:
    ts_us: int
    data: bytes
    outbound: bool
    comments: list[str]
    order: int = 0


@dataclass(slots=True)
class CaptureStats:
    packets: int = 0
    tcp_segments: int = 0
    icmp: int = 0
    masked_bytes: int = 0
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- checksums, headers


def inet_checksum(data: bytes) -> int:
    """RFC 1071 ones' complement sum."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_packet(src: bytes, dst: bytes, proto: int, payload: bytes, ident: int) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, 64, proto, 0, src, dst
    )
    checksum = inet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def tcp_segment(
    src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes
) -> bytes:
    header = struct.pack(
        "!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, _WINDOW,
        0, 0,
    )
    pseudo = _pseudo_header(src, dst, 6, len(header) + len(payload))
    checksum = inet_checksum(pseudo + header + payload)
    return header[:16] + struct.pack("!H", checksum) + header[18:] + payload


def ipv6_packet(src: bytes, dst: bytes, next_header: int, payload: bytes) -> bytes:
    """An IPv6 header (no extension headers, flow label 0, hop limit 64) and its payload."""
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, 64, src, dst) + payload


def ip_packet(src: bytes, dst: bytes, proto: int, payload: bytes, ident: int) -> bytes:
    """IPv4 or IPv6 by the addresses' size (4 or 16 bytes)."""
    if len(src) == 16:
        return ipv6_packet(src, dst, proto, payload)
    return ipv4_packet(src, dst, proto, payload, ident)


def _pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    """What the TCP and ICMPv6 checksums cover besides the segment (RFC 793, RFC 8200 8.1)."""
    if len(src) == 16:
        return struct.pack("!16s16sI3xB", src, dst, length, proto)
    return struct.pack("!4s4sBBH", src, dst, 0, proto, length)


def icmp_echo(reply: bool, ident: int, seq: int, payload: bytes,
              ipv6: tuple[bytes, bytes] | None = None) -> bytes:
    """An ICMP echo request or reply; ICMPv6 (types 128/129, checksum over the pseudo-header)
    when ``ipv6`` gives the (source, destination) addresses."""
    request_type, reply_type = (8, 0) if ipv6 is None else (128, 129)
    kind = reply_type if reply else request_type
    header = struct.pack("!BBHHH", kind, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    pseudo = b"" if ipv6 is None else _pseudo_header(
        ipv6[0], ipv6[1], 58, len(header) + len(payload))
    checksum = inet_checksum(pseudo + header + payload)
    return header[:2] + struct.pack("!H", checksum) + header[4:] + payload


# --------------------------------------------------------------------------- pcapng blocks


def fit_comment(text: str) -> bytes:
    """A comment as option bytes, cut (at a character boundary) to what one option holds."""
    data = text.encode("utf-8")
    if len(data) <= OPTION_LIMIT:
        return data
    note = "\n... (cut: a pcapng comment holds under 64 KiB; the report has the full decode)"
    head = data[: OPTION_LIMIT - len(note.encode())].decode("utf-8", errors="ignore")
    return (head + note).encode("utf-8")


def _option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * pad


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def section_header(comments: list[str], application: str) -> bytes:
    options = b"".join(_option(1, fit_comment(c)) for c in comments)
    options += _option(4, application.encode("utf-8")) + _option(0, b"")
    body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + options
    return _block(0x0A0D0D0A, body)


def interface_description(name: str) -> bytes:  # LINKTYPE_RAW: IPv4 and IPv6 alike
    options = _option(2, name.encode()) + _option(9, bytes([6])) + _option(0, b"")
    return _block(1, struct.pack("<HHI", LINKTYPE_RAW, 0, 0) + options)


def enhanced_packet(packet: Packet) -> bytes:
    data = packet.data
    body = struct.pack(
        "<IIIII", 0, packet.ts_us >> 32, packet.ts_us & 0xFFFFFFFF, len(data), len(data)
    )
    body += data + b"\x00" * ((-len(data)) % 4)
    options = b"".join(_option(1, fit_comment(c)) for c in packet.comments)
    flags = FLAG_OUTBOUND if packet.outbound else FLAG_INBOUND
    options += _option(2, struct.pack("<I", flags)) + _option(0, b"")
    return _block(6, body + options)


# --------------------------------------------------------------------------- the session


def start_epoch_us(session: Session) -> int:
    """Wall-clock microseconds of run time 0.0 (falls back to 0 for an unreadable date)."""
    try:
        moment = datetime.fromisoformat(session.started_at.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the Session writes UTC
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds

def _ip(host: str) -> bytes | None:
    """The packed address (4 or 16 bytes) of an IP address written as text; None otherwise.
    An IPv6 scope (``fe80::1%eth0``) is not on the wire: left out."""
    try:
        addr = ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return None
    return addr.packed


@dataclass(slots=True)
class _Endpoints:
    server: bytes
    client: bytes
    standin_note: str = ""


def _same_family(client: bytes | None, server: bytes) -> bytes | None:
    """``client`` in the server's family: an IPv4 client of an IPv6 meter as its IPv4-mapped
    address (``::ffff:a.b.c.d``, RFC 4291 2.5.5.2); an IPv6 client of an IPv4 meter cannot be
    drawn (None)."""
    if client is None or len(client) == len(server):
        return client
    if len(server) == 16:
        return ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + client).packed
    return None


def endpoints(session: Session) -> _Endpoints:
    server = _ip(session.target.host) if session.target.link == "tcp" else None
    note = ""
    if server is None and session.target.link != "tcp":
        server = ipaddress.IPv4Address(SERVER_STANDIN).packed  # a serial line: no address
    elif server is None:
        server = ipaddress.IPv4Address(SERVER_STANDIN).packed
        note = (
            f"the meter's address {session.target.host!r} is not an IP address: shown as "
            f"{SERVER_STANDIN}"
        )
    local = str(session.settings.get("local_host", "")) if session.settings else ""
    client = _same_family(_ip(local), server)
    if client is None:
        loopback = ipaddress.ip_address(server).is_loopback
        standin = CLIENT_STANDIN6 if len(server) == 16 else CLIENT_STANDIN
        client = server if loopback else ipaddress.ip_address(standin).packed
    return _Endpoints(server, client, note)


def split_parts(data: bytes) -> list[bytes]:
    """A recorded chunk cut into its frames, one per TCP segment as Wireshark's DLMS dissector
    expects; the chunk whole when its pieces do not tile it exactly (e.g. frames sharing a flag,
    where cutting would duplicate a byte and break the reassembled payload)."""
    try:
        from dlmsdoctor.codec.stream import split_stream

        chunks = split_stream(data)
    except Exception:  # the splitter should not raise; a capture must still be written
        return [data]
    if len(chunks) < 2:
        return [data]
    pos = 0
    for chunk in chunks:
        if chunk.offset != pos:
            return [data]
        pos = chunk.end
    return [c.data for c in chunks] if pos == len(data) else [data]


def frame_comment(note: FrameNote) -> str:
    """The human comment of a data packet: dlmsdoctor's decode of the frame it carries."""
    arrow = "client -> meter" if note.direction is Direction.TX else "meter or bridge -> client"
    lines = [
        f"dlmsdoctor frame #{note.index} {note.direction.value.upper()} ({arrow}), connection "
        f"{note.conn_id}, t+{note.at:.6f} s, step {note.step_id or '-'}",
        note.summary,
    ]
    for fld in note.fields:
        raw = fld.hex_in(note.data)
        raw = f" [{raw}]" if raw else ""
        lines.append(f"  {'  ' * fld.depth}{fld.label}{raw}: {fld.meaning}")
    lines += [f"  PROBLEM {p}" for p in note.problems]
    if note.secret_count:
        extra = "; FCS recomputed over the masked frame" if note.fcs_recomputed else ""
        lines.append(f"  {note.secret_count} secret byte(s) masked as '*'{extra}")
    return "\n".join(lines)


def machine_comment(note: FrameNote, kind: str, answers: int | None = None,
                    late: bool = False) -> str:
    """The frame's record for our reader; ``answers``/``late``: the request a received frame
    answers and whether after its wait (a capture opened later judges time as the run did)."""
    meta: dict[str, object] = {"index": note.index, "conn": note.conn_id,
                               "dir": note.direction.value, "at": round(note.at, 6),
                               "step": note.step_id, "kind": kind}
    if answers is not None:
        meta["answers"] = answers
        meta["late"] = late
    return FRAME_COMMENT_PREFIX + json.dumps(meta, separators=(",", ":"))


def poller_ends(conn: ConnectionRecord, ends: _Endpoints) -> _Endpoints:
    """The endpoints of a tap's connection: its poller's own address as the client, in the
    meter's family (an IPv4 poller of an IPv6 meter as its IPv4-mapped address; an IPv6
    poller of an IPv4 meter keeps the shared stand-in)."""
    if not conn.client:
        return ends
    client = _same_family(_ip(conn.client.rpartition(":")[0]), ends.server)
    return ends if client is None else _Endpoints(ends.server, client, ends.standin_note)


def tap_section(session: Session, ends: _Endpoints | None = None) -> str:
    """The section comment of a tap session: what was relayed, between what."""
    pollers = sorted({c.client.rpartition(":")[0].strip("[]")
                      for c in session.connections if c.client})
    server = (ends or endpoints(session)).server
    stood_in = [p for p in pollers if _same_family(_ip(p), server) is None]
    target = session.target
    listen = session.settings.get("listen") or "?"
    text = (f"TAP: dlmsdoctor tap listened on {listen} and relayed each poller connection to "
            f"the meter side {_hp(target.host, target.port)}, every byte unchanged and in order; "
            f"it sent nothing of its own. Pollers: {', '.join(pollers) or 'none'}. Each TCP "
            "stream here is one poller connection, drawn from the poller's own address and "
            "port straight to the meter side (the tap's own connection to the meter, from "
            "another port, is not drawn): TX = poller -> meter, RX = meter -> poller, at the "
            "times the tap saw them, closed first by whom the tap saw close first.")
    if stood_in:
        family = "IPv4" if len(server) == 4 else "IPv6"
        text += (f" Pollers of another address family than the meter's ({', '.join(stood_in)}) "
                 f"are drawn from the {family} stand-in (one TCP stream is one family); the "
                 "section's session keeps their addresses.")
    elif any(_ip(p) is not None and len(_ip(p) or b"") != len(server) for p in pollers):
        text += (" IPv4 pollers of this IPv6 meter side are drawn from their IPv4-mapped "
                 "addresses (::ffff:a.b.c.d).")
    return text


def _hp(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Stream:
    """One TCP connection's sequence numbers; packets are appended to ``out``."""

    def __init__(self, conn: ConnectionRecord, ends: _Endpoints, t0: int, out: list[Packet],
                 relayed: bool = False):
        self.conn = conn
        self.ends = ends
        self.t0 = t0
        self.out = out
        self.cport = conn.local_port or 49152 + conn.id % 16000
        self.sport = conn.port or SERIAL_STANDIN_PORT  # a serial line has no port: DLMS's
        # Deterministic initial sequence numbers keep golden files stable.
        self.cseq = (0x1000_0000 * conn.id + 0x0100) & 0xFFFFFFFF
        self.sseq = (0x8000_0000 + 0x0100_0000 * conn.id) & 0xFFFFFFFF
        self.ident = {True: 0x1000 * conn.id, False: 0x8000 + 0x100 * conn.id}
        # a tap's connection is drawn from its own poller (address and port), not dlmsdoctor;
        # so is another client's capture written again
        self.ends = poller_ends(conn, ends)
        self.client_name = "the poller" if conn.client else "dlmsdoctor"
        self.relayed = relayed  # a tap's: its own close is the tap's, when it stopped

    def ts(self, at: float) -> int:
        return self.t0 + round(at * 1_000_000)

    def send(self, at: float, from_client: bool, flags: int, payload: bytes,
             comments: list[str]) -> None:
        ends = self.ends
        src, dst = (ends.client, ends.server) if from_client else (ends.server, ends.client)
        sport, dport = (self.cport, self.sport) if from_client else (self.sport, self.cport)
        seq, ack = (self.cseq, self.sseq) if from_client else (self.sseq, self.cseq)
        if not flags & _TCP_ACK:
            ack = 0
        segment = tcp_segment(src, dst, sport, dport, seq, ack, flags, payload)
        self.ident[from_client] += 1
        packet = ip_packet(src, dst, 6, segment, self.ident[from_client])
        self.out.append(Packet(self.ts(at), packet, from_client, comments, len(self.out)))
        advance = len(payload) + (1 if flags & (_TCP_SYN | _TCP_FIN) else 0)
        if from_client:
            self.cseq += advance
        else:
            self.sseq += advance


def _tcp_packets(session: Session, ends: _Endpoints, t0: int, show_secrets: bool,
                 out: list[Packet], stats: CaptureStats) -> None:
    by_conn: dict[int, list[int]] = {}
    for pos, frame in enumerate(session.frames):
        by_conn.setdefault(frame.conn_id, []).append(pos)
    known = {c.id for c in session.connections}
    conns = list(session.connections)
    for conn_id in sorted(set(by_conn) - known):
        # Frames on a connection the recorder never described: show them on an assumed one.
        first = session.frames[by_conn[conn_id][0]].at
        conns.append(ConnectionRecord(id=conn_id, host=session.target.host,
                                      port=session.target.port, opened_at=first,
                                      connect_time=0.0, note="connection not recorded"))
    host = session.target.host
    for conn in conns:
        stream = _Stream(conn, ends, t0, out, relayed=session.kind == "tap")
        where = f"{host}:{conn.port}" if conn.port else f"serial line {host}"
        frames = [session.frames[p] for p in by_conn.get(conn.id, [])]
        if not frames and (conn.failed or conn.opened_at is None):
            _failed_connection(stream, conn, where)
            continue
        opened_at = conn.opened_at
        if opened_at is None or conn.failed:
            # Frames on a connection recorded without an open time: it did open, at the latest
            # when its first frame moved.
            opened_at = frames[0].at
            conn = dataclasses.replace(conn, opened_at=opened_at, failed=None)
            stream.conn = conn
        syn_at = max(opened_at - (conn.connect_time or 0.0), 0.0)
        stream.send(syn_at, True, _TCP_SYN, b"",
                    [f"connection {conn.id}: SYN to {where} (synthetic TCP: dlmsdoctor records "
                     f"the connection, not its packets)"])
        stream.send(opened_at, False, _TCP_SYN | _TCP_ACK, b"", [f"connection {conn.id}: "
                    f"SYN-ACK, connected in {(conn.connect_time or 0) * 1000:.1f} ms"])
        stream.send(opened_at, True, _TCP_ACK, b"", [f"connection {conn.id}: established"])
        last = opened_at
        for frame in frames:
            at = max(frame.at, last)
            last = at
            parts = split_parts(frame.data)
            for number, part in enumerate(parts, start=1):
                record = dataclasses.replace(frame, data=part) if len(parts) > 1 else frame
                note = annotate(record, show_secrets)
                stats.masked_bytes += note.secret_count
                human = frame_comment(note)
                if len(parts) > 1:
                    human = f"part {number} of {len(parts)} of one received chunk\n{human}"
                machine = machine_comment(note, frame.kind, frame.answers, frame.late)
                # An IPv4 packet holds under 64 KiB: a longer chunk (noise from a bridge) goes
                # out in several segments; the reader joins them by the frame index.
                pieces = [note.data[i : i + MAX_SEGMENT]
                          for i in range(0, len(note.data), MAX_SEGMENT)] or [b""]
                for k, piece in enumerate(pieces):
                    comments = [human, machine] if k == 0 else [
                        f"frame #{note.index} continued ({k + 1} of {len(pieces)})", machine]
                    stream.send(at, frame.direction is Direction.TX, _TCP_PSH | _TCP_ACK, piece,
                                comments)
                    stats.tcp_segments += 1
        _close(stream, conn, max(conn.closed_at if conn.closed_at is not None else last, last))


def _failed_connection(stream: _Stream, conn: ConnectionRecord, where: str) -> None:
    at = conn.opened_at if conn.opened_at is not None else (conn.closed_at or 0.0)
    elapsed = conn.connect_time or 0.0
    stream.send(max(at - elapsed, 0.0), True, _TCP_SYN, b"",
                [f"connection {conn.id}: SYN to {where}"])
    if conn.failed == "refused":
        stream.send(at, False, _TCP_RST | _TCP_ACK, b"",
                    [f"connection {conn.id}: refused (RST): nothing listens on {where}"])
    else:
        # Only the SYN was seen; a timeout or unreachable network sends nothing back.
        stream.out[-1].comments.append(
            f"connection {conn.id} failed: {conn.failed or 'unknown'} {conn.note}".rstrip()
        )


def _close(stream: _Stream, conn: ConnectionRecord, at: float) -> None:
    how = conn.close_how
    if how is None:
        return
    cid = conn.id
    if how is CloseHow.RST:
        by_peer = bool(conn.closed_by_peer)
        who = "the meter/bridge" if by_peer else stream.client_name
        stream.send(at, not by_peer, _TCP_RST | _TCP_ACK, b"",
                    [f"connection {cid}: reset (RST) by {who}"])
        return
    then_at = None if conn.then_closed_at is None else max(conn.then_closed_at, at)
    if how is CloseHow.FIN and conn.closed_by_peer:
        stream.send(at, False, _TCP_FIN | _TCP_ACK, b"",
                    [f"connection {cid}: closed by the meter/bridge (FIN) {conn.note}".rstrip()])
        if conn.then_close_how is CloseHow.RST and then_at is not None:
            stream.send(then_at, True, _TCP_RST | _TCP_ACK, b"",
                        [f"connection {cid}: then reset (RST) by {stream.client_name}"])
            return
        stream.send(at if then_at is None else then_at, True, _TCP_FIN | _TCP_ACK, b"",
                    [f"connection {cid}: {stream.client_name} closes its side too"])
        return
    reason = "after a timeout" if how is CloseHow.TIMEOUT else "when done"
    who = stream.client_name
    if how is CloseHow.LOCAL and stream.relayed:
        who, reason = "the tap", "when it stopped"
    stream.send(at, True, _TCP_FIN | _TCP_ACK, b"",
                [f"connection {cid}: closed by {who} (FIN) {reason}"])
    # The peer's answer to this FIN, when it was recorded (a tap, a capture); else it is not
    # invented.
    if then_at is not None and conn.then_close_how is not None:
        rst = conn.then_close_how is CloseHow.RST
        stream.send(then_at, False, (_TCP_RST if rst else _TCP_FIN) | _TCP_ACK, b"",
                    [f"connection {cid}: then {'reset (RST)' if rst else 'closed (FIN)'} by "
                     "the meter/bridge"])

def _icmp_packets(session: Session, ends: _Endpoints, t0: int, out: list[Packet],
                  stats: CaptureStats) -> None:
    ident = 0x4000
    v6 = len(ends.server) == 16
    proto = 58 if v6 else 1  # ICMPv6 or ICMP
    for ping in session.pings:
        ident += 1
        request = icmp_echo(False, ping.ident, ping.seq, ping.payload,
                            (ends.client, ends.server) if v6 else None)
        out.append(Packet(t0 + round(ping.at * 1_000_000),
                          ip_packet(ends.client, ends.server, proto, request, ident), True,
                          [f"ping id=0x{ping.ident:04x} seq={ping.seq}"], len(out)))
        stats.icmp += 1
        reply_at = ping.reply_at
        if reply_at is None and ping.rtt is not None:
            reply_at = ping.at + ping.rtt
        if reply_at is None:
            out[-1].comments.append("no reply")
            continue
        reply = icmp_echo(True, ping.ident, ping.seq, ping.payload,
                          (ends.server, ends.client) if v6 else None)
        rtt = (ping.rtt if ping.rtt is not None else reply_at - ping.at) * 1000
        out.append(Packet(t0 + round(reply_at * 1_000_000),
                          ip_packet(ends.server, ends.client, proto, reply, ident + 0x8000), False,
                          [f"ping reply id=0x{ping.ident:04x} seq={ping.seq}, RTT {rtt:.1f} ms"],
                          len(out)))
        stats.icmp += 1


def serial_section(session: Session) -> str:
    """The section comment of a serial session: what the synthetic TCP stream really was."""
    target = session.target
    rates = [f"{f.data.get('baud')} {f.data.get('format')} ({f.data.get('note')})"
             for f in session.findings if f.code == "serial.line"]
    what = {"optical": "an optical head (IEC 62056-21 mode E)",
            "rfc2217": "a serial port behind an RFC 2217 bridge"}.get(target.link,
                                                                     "a serial line")
    text = (f"SERIAL LINE: this session ran on {what}, device {target.device or target.host}, "
            f"not over TCP. Its bytes are carried here as a synthetic TCP stream "
            f"{CLIENT_STANDIN} -> {SERVER_STANDIN}:{SERIAL_STANDIN_PORT} (one frame per "
            "segment, in order, with the times they were written and read) so that Wireshark "
            "decodes the DLMS in them; the TCP handshake and close are not on the wire.")
    if rates:
        text += " Line settings, in order: " + "; ".join(rates) + "."
    if target.link == "optical":
        text += (" The IEC 62056-21 sign-on, identification and acknowledgement (at 300 baud) "
                 "come first, as text; HDLC follows at the agreed rate.")
    return text


def header_comments(session: Session, ends: _Endpoints, stats: CaptureStats) -> list[str]:
    port = session.target.port or (SERIAL_STANDIN_PORT if session.target.link != "tcp" else 0)
    lines = [
        f"dlmsdoctor {session.tool_version} {session.kind} session {session.id}: "
        f"{session.target.host}:{port}, started {session.started_at}",
        "The TCP/IP headers are synthetic but consistent (dlmsdoctor records connections and "
        "bytes, not packets); payloads, timestamps, directions and how each connection closed "
        "are as observed. Every data packet carries one HDLC frame or wrapper PDU and a comment "
        "with dlmsdoctor's own decode (full decode whatever the HDLC address size: Wireshark's "
        "DLMS dissector understands only 1-byte addresses).",
    ]
    if session.target.link != "tcp":
        lines.append(serial_section(session))
    if port != 4059:
        lines.append(
            f"DLMS on port {port}, not 4059: in Wireshark 4.6+ use Analyze > Decode As... "
            f"TCP port {port} -> DLMS, or tshark -d tcp.port=={port},dlms (older versions "
            "show TCP only; read the packet comments)."
        )
    else:
        lines.append("Wireshark 4.6+ decodes DLMS on port 4059 by itself; older versions show "
                     "TCP only: read the packet comments.")
    if session.kind == "tap":
        lines.append(tap_section(session, ends))
    if ends.standin_note:
        lines.append(ends.standin_note)
    if stats.masked_bytes:
        lines.append(f"{stats.masked_bytes} secret byte(s) (passwords, keys) are masked as '*'.")
    meta = session.to_json()
    meta.pop("frames", None)
    # ASCII JSON cut into pieces that each fit one option; the reader joins them in order.
    text = json.dumps(meta, ensure_ascii=True, separators=(",", ":"))
    size = OPTION_LIMIT - len(SESSION_COMMENT_MORE)
    pieces = [text[i : i + size] for i in range(0, len(text), size)] or [""]
    lines.append(SESSION_COMMENT_PREFIX + pieces[0])
    lines += [SESSION_COMMENT_MORE + piece for piece in pieces[1:]]
    return lines


def build_capture(session: Session, show_secrets: bool = False) -> tuple[bytes, CaptureStats]:
    """The pcapng bytes of a session and what went into them."""
    if session.kind == "tap":  # a long run keeps most frames in its file: the capture has all
        from dlmsdoctor.tap.core import load_all_frames

        session = load_all_frames(session)
    stats = CaptureStats()
    ends = endpoints(session)
    t0 = start_epoch_us(session)
    packets: list[Packet] = []
    _icmp_packets(session, ends, t0, packets, stats)
    _tcp_packets(session, ends, t0, show_secrets, packets, stats)
    packets.sort(key=lambda p: (p.ts_us, p.order))
    stats.packets = len(packets)
    from dlmsdoctor import __version__

    out = [
        section_header(header_comments(session, ends, stats), f"dlmsdoctor {__version__}"),
        interface_description("dlmsdoctor-synthetic-ipv6" if len(ends.server) == 16
                              else "dlmsdoctor-synthetic-ipv4"),
    ]
    out += [enhanced_packet(p) for p in packets]
    return b"".join(out), stats


def write_capture(session: Session, path: str | Path, show_secrets: bool = False) -> CaptureStats:
    """Write the session's pcapng; raises CaptureWriteError with a plain message on I/O errors."""
    data, stats = build_capture(session, show_secrets)
    try:
        write_private(path, data)  # 0600: it may hold identities (and asked-for secrets)
    except OSError as exc:
        raise CaptureWriteError(f"cannot write capture {path}: {exc.strerror or exc}") from exc
    return stats
