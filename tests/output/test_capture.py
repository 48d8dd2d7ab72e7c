"""The pcapng writer: block structure, TCP consistency, masking, and tshark reading it for real."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from dlmsdoctor.events import CloseHow, Direction
from dlmsdoctor.output.capture import (
    FRAME_COMMENT_PREFIX,
    build_capture,
    inet_checksum,
    write_capture,
)
from dlmsdoctor.output.capture_read import read_raw
from dlmsdoctor.session import ConnectionRecord, FrameRecord, Session
from tests.helpers.dlms_frames import PASSWORD
from tests.output.seed_session import seed_session

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt: tshark)")
# Anything tshark finds wrong: malformed packets, TCP analysis flags (retransmission, lost or
# unseen segments, dup ACKs...), a checksum that is not good, expert errors, and warnings on any
# packet but an observed RST (tshark warns "Connection reset" on every RST, rightly).
BAD = (
    '_ws.malformed || tcp.analysis.flags || (tcp && tcp.checksum.status != 1) || '
    '(ip && ip.checksum.status != 1) || (icmp && icmp.checksum.status != 1) || '
    '_ws.expert.severity >= "error" || (_ws.expert.severity >= "warning" && !tcp.flags.reset)'
)
CHECKSUMS = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"]


def tshark(*args: str) -> str:
    assert TSHARK is not None
    done = subprocess.run([TSHARK, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def tshark_problems(path: Path) -> str:
    return tshark("-r", str(path), *CHECKSUMS, "-Y", BAD).strip()


def followed_streams(path: Path, count: int) -> list[tuple[bytes, bytes]]:
    """Per TCP stream, the reassembled (client->server, server->client) payload per tshark."""
    out = []
    for stream in range(count):
        text = tshark("-r", str(path), "-q", "-z", f"follow,tcp,raw,{stream}")
        client, server = b"", b""
        body = text.split("Node 1:", 1)[1].splitlines()[1:]
        for line in body:
            if line.startswith("====") or not line.strip():
                continue
            if line.startswith("\t"):
                server += bytes.fromhex(line.strip())
            else:
                client += bytes.fromhex(line.strip())
        out.append((client, server))
    return out


def _seed_capture(tmp_path: Path, **kw: bool) -> tuple[Session, Path]:
    session = seed_session()
    path = tmp_path / "seed.pcapng"
    write_capture(session, path, **kw)
    return session, path


# --------------------------------------------------------------------------- structure


def test_checksum_is_rfc1071() -> None:
    # RFC 1071 example words 0x0001 0xf203 0xf4f5 0xf6f7 sum to 0xddf2; checksum is ~sum.
    assert inet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == (~0xDDF2) & 0xFFFF


def test_blocks_section_comment_and_one_packet_per_frame(tmp_path: Path) -> None:
    session, path = _seed_capture(tmp_path)
    raw = read_raw(path)
    assert raw.section_comments[0].startswith("dlmsdoctor 0.1.0 probe session seed-0001")
    decode_as = next(c for c in raw.section_comments if "Decode As" in c)
    assert "tshark -d tcp.port==3333,dlms" in decode_as
    assert "4.6" in decode_as
    data_packets = [p for p in raw.packets
                    if any(c.startswith(FRAME_COMMENT_PREFIX) for c in p.comments)]
    assert len(data_packets) == len(session.frames)
    # Direction flags: TX outbound, RX inbound, for every packet that has a frame.
    for packet, frame in zip(data_packets, session.frames, strict=True):
        assert packet.outbound is (frame.direction is Direction.TX)
        assert packet.data.endswith(frame.data) or frame.index == 5  # 5 holds the password


def test_password_is_masked_in_packets_and_comments_unless_asked(tmp_path: Path) -> None:
    session = seed_session()
    masked, stats = build_capture(session)
    assert PASSWORD not in masked
    assert stats.masked_bytes == len(PASSWORD)
    assert b"********" in masked  # the bytes themselves, as '*'
    clear, _ = build_capture(session, show_secrets=True)
    assert PASSWORD in clear


def test_masked_frame_keeps_a_right_fcs(tmp_path: Path) -> None:
    from dlmsdoctor.codec.hdlc import parse_hdlc

    _, path = _seed_capture(tmp_path)
    raw = read_raw(path)
    aarq = next(p for p in raw.packets if any('"index":5' in c for c in p.comments))
    frame = aarq.data[40:]
    assert PASSWORD not in frame
    decoded = parse_hdlc(frame, 0, "tx")
    assert decoded.valid, decoded.findings


def test_comment_carries_full_decode_of_4_byte_address(tmp_path: Path) -> None:
    _, path = _seed_capture(tmp_path)
    raw = read_raw(path)
    ua = next(p for p in raw.packets if any('"index":4' in c for c in p.comments))
    human = ua.comments[0]
    assert "physical 6678, 4-byte address" in human
    assert "max info 128/128 window 1/1" in human


def test_timestamps_are_start_plus_frame_time(tmp_path: Path) -> None:
    _, path = _seed_capture(tmp_path)
    raw = read_raw(path)
    # 2025-11-10T10:21:04.250000Z
    t0 = 1762770064_250000
    stamps = [p.ts_us for p in raw.packets if any('"index":1,' in c for c in p.comments)]
    assert stamps == [t0 + 2_731_000]
    assert [p.ts_us for p in raw.packets] == sorted(p.ts_us for p in raw.packets)


def _tcp_flags(packet_data: bytes) -> int:
    return packet_data[20 + 13]


def test_close_as_observed_fin_by_peer_and_rst(tmp_path: Path) -> None:
    session = seed_session()
    session.connections[2].close_how = CloseHow.RST
    session.connections[2].closed_by_peer = True
    data, _ = build_capture(session)
    path = tmp_path / "rst.pcapng"
    path.write_bytes(data)
    raw = read_raw(path)
    tcp = [p for p in raw.packets if p.data[9] == 6]
    by_port: dict[int, list[tuple[int, bool]]] = {}
    for p in tcp:
        sport, dport = struct.unpack_from("!HH", p.data, 20)
        by_port.setdefault(sport if sport != 3333 else dport, []).append(
            (_tcp_flags(p.data), sport == 3333))
    # connection 1: the bridge closed it: its FIN first, then ours
    assert by_port[50412][-2:] == [(0x11, True), (0x11, False)]
    # connection 2: we closed it (only our FIN is known)
    assert by_port[50414][-1] == (0x11, False)
    # connection 3: reset by the peer, nothing after
    assert by_port[50418][-1] == (0x14, True)


def test_refused_connection_is_syn_then_rst(tmp_path: Path) -> None:
    session = seed_session()
    session.frames = []
    session.connections = [ConnectionRecord(id=1, host="192.168.1.135", port=3333,
                                            opened_at=0.2, connect_time=0.01, failed="refused",
                                            local_port=40000)]
    data, _ = build_capture(session)
    path = tmp_path / "refused.pcapng"
    path.write_bytes(data)
    tcp = [p for p in read_raw(path).packets if p.data[9] == 6]
    assert [_tcp_flags(p.data) for p in tcp] == [0x02, 0x14]


def test_hostname_target_gets_a_documentation_address(tmp_path: Path) -> None:
    session = seed_session()
    session.target.host = "meter.example"
    data, _ = build_capture(session)
    path = tmp_path / "named.pcapng"
    path.write_bytes(data)
    raw = read_raw(path)
    assert any("192.0.2.1" in c and "meter.example" in c for c in raw.section_comments)


# --------------------------------------------------------------------------- tshark


@needs_tshark
def test_tshark_finds_no_problem_and_checks_every_checksum(tmp_path: Path) -> None:
    _, path = _seed_capture(tmp_path)
    assert tshark_problems(path) == ""
    statuses = tshark("-r", str(path), *CHECKSUMS, "-T", "fields", "-e", "ip.checksum.status",
                      "-e", "tcp.checksum.status", "-e", "icmp.checksum.status").split()
    assert statuses and set(statuses) == {"1"}  # 1 = good, for every IP, TCP and ICMP header


@needs_tshark
def test_the_problem_filter_catches_a_bad_checksum(tmp_path: Path) -> None:
    """The check above can fail: flip one byte of a TCP header and tshark must see it."""
    _, path = _seed_capture(tmp_path)
    data = bytearray(path.read_bytes())
    pos = data.find(bytes.fromhex("7ea0210203"))
    data[pos - 3] ^= 0xFF  # urgent pointer: covered by the TCP checksum only
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(bytes(data))
    assert "CHECKSUM INCORRECT" in tshark_problems(bad)


@needs_tshark
def test_tshark_reassembled_payload_equals_the_session_frames(tmp_path: Path) -> None:
    session, path = _seed_capture(tmp_path, show_secrets=True)
    streams = followed_streams(path, len(session.connections))
    for conn, (client, server) in zip(session.connections, streams, strict=True):
        tx = b"".join(f.data for f in session.frames
                      if f.conn_id == conn.id and f.direction is Direction.TX)
        rx = b"".join(f.data for f in session.frames
                      if f.conn_id == conn.id and f.direction is Direction.RX)
        assert (client, server) == (tx, rx)


@needs_tshark
def test_tshark_sees_comments_and_matching_ping_replies(tmp_path: Path) -> None:
    session, path = _seed_capture(tmp_path)
    comments = tshark("-r", str(path), "-Y", "frame.comment", "-T", "fields", "-e",
                      "frame.number").split()
    packets = tshark("-r", str(path), "-T", "fields", "-e", "frame.number").split()
    assert comments == packets  # every packet has a comment
    rows = tshark("-r", str(path), "-Y", "icmp.type == 0", "-T", "fields", "-e", "icmp.ident",
                  "-e", "icmp.seq", "-e", "icmp.resp_to").splitlines()
    assert len(rows) == len(session.pings)
    assert all(len(r.split("\t")) == 3 and r.split("\t")[2] for r in rows)  # reply matched


@needs_tshark
def test_tshark_reads_a_wrapper_session_and_odd_frames(tmp_path: Path) -> None:
    """Wrapper PDUs, an empty-payload connection and a frame at the same instant as the close."""
    from dlmsdoctor.codec.wrapper import build_wrapper

    session = seed_session()
    session.target.port = 4059
    session.connections = [
        ConnectionRecord(id=1, host="192.168.1.135", port=4059, opened_at=1.0,
                         connect_time=0.01, closed_at=1.5, close_how=CloseHow.TIMEOUT,
                         local_port=41000),
        ConnectionRecord(id=2, host="192.168.1.135", port=4059, opened_at=2.0,
                         connect_time=0.01, closed_at=2.0, close_how=CloseHow.RST,
                         closed_by_peer=True, local_port=41001),
    ]
    apdu = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F040000181DFFFF")
    aarq = build_wrapper(16, 1, apdu)
    session.frames = [
        FrameRecord(0, 1, Direction.TX, 1.1, aarq, "assoc.login", "wrapper"),
        FrameRecord(1, 1, Direction.RX, 1.5, b"\x00\x01\x00\x01", "assoc.login", "partial"),
    ]
    path = tmp_path / "wrapper.pcapng"
    write_capture(session, path)
    assert tshark_problems(path) == ""
    assert followed_streams(path, 1)[0] == (aarq, b"\x00\x01\x00\x01")


@needs_tshark
def test_a_received_chunk_with_two_frames_becomes_two_segments(tmp_path: Path) -> None:
    session = seed_session()
    rr = bytes.fromhex("7EA00A210002682D5157F57E")  # a second frame glued to the UA
    session.frames[4].data += rr
    path = tmp_path / "glued.pcapng"
    write_capture(session, path)
    raw = read_raw(path)
    parts = [p for p in raw.packets if any('"index":4,' in c for c in p.comments)]
    assert [p.data[40:] for p in parts] == [seed_session().frames[4].data, rr]
    assert parts[0].comments[0].startswith("part 1 of 2")
    assert tshark_problems(path) == ""
    _, server = followed_streams(path, 3)[2]
    assert server.startswith(session.frames[4].data)
    # ... and reading it back gives the chunk as recorded
    from dlmsdoctor.output.capture_read import read_capture

    assert read_capture(path).frames[4].data == session.frames[4].data


@needs_tshark
def test_big_sessions_and_decodes_fit_pcapng_comment_limits(tmp_path: Path) -> None:
    """pcapng option lengths are 16-bit: a session header over 64 KiB is cut into pieces, a
    huge per-packet decode is shortened, and both the file and the round trip stay right."""
    from dlmsdoctor.output.capture_read import read_capture
    from dlmsdoctor.session import ProbeFinding

    session = seed_session()
    session.findings += [ProbeFinding("cosem.identity", "x.y", "info", "z" * 500, 9.5)
                         for _ in range(400)]  # ~200 KB of JSON
    session.frames[12].data = b"A" * 70_000  # a text chunk whose comment would exceed 64 KiB
    path = tmp_path / "big.pcapng"
    write_capture(session, path, show_secrets=True)
    raw = read_raw(path)
    assert sum(c.startswith("dlmsdoctor-session-json+: ") for c in raw.section_comments) >= 3
    assert all(len(c.encode()) < 65_536 for p in raw.packets for c in p.comments)
    assert read_capture(path).to_json() == session.to_json()
    assert tshark_problems(path) == ""


def _variants() -> dict[str, Session]:
    """Every shape of session the tests above write, for tshark to read too."""
    rst = seed_session()
    rst.connections[2].close_how = CloseHow.RST
    rst.connections[2].closed_by_peer = True
    local_rst = seed_session()
    local_rst.connections[1].close_how = CloseHow.RST
    local_rst.connections[1].closed_by_peer = False
    refused = seed_session()
    refused.frames = []
    refused.connections = [ConnectionRecord(id=1, host="192.168.1.135", port=3333,
                                            opened_at=0.2, connect_time=0.01,
                                            failed="refused", local_port=40000),
                           ConnectionRecord(id=2, host="192.168.1.135", port=3333,
                                            opened_at=None, failed="timeout",
                                            local_port=40001)]
    named = seed_session()
    named.target.host = "meter.example"
    timeout = seed_session()
    timeout.connections[1].close_how = CloseHow.TIMEOUT
    unclosed = seed_session()
    unclosed.connections[2].close_how = None
    unclosed.cancelled = True
    return {"rst-by-peer": rst, "rst-local": local_rst, "refused-and-timeout": refused,
            "hostname": named, "timeout-close": timeout, "cancelled-open": unclosed,
            "masked": seed_session()}


@needs_tshark
@pytest.mark.parametrize("name", sorted(_variants()))
def test_tshark_reads_every_variant_cleanly(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.pcapng"
    write_capture(_variants()[name], path)
    assert tshark_problems(path) == ""
