"""Reading captures back: dlmsdoctor's own pcapng round-trips; foreign pcaps become Sessions."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dlmsdoctor.events import CloseHow, Direction
from dlmsdoctor.output.capture import write_capture
from dlmsdoctor.output.capture_read import (
    CaptureFormatError,
    load_session_file,
    read_capture,
    read_raw,
)
from dlmsdoctor.session import SessionFormatError
from tests.output.seed_session import POLLER_SNRM, seed_session

UA = bytes.fromhex("7EA0210203217373568180120502008006020080070400000001080400000001A6D97E")


def test_round_trip_same_frames_directions_and_microsecond_times(tmp_path: Path) -> None:
    original = seed_session()
    path = tmp_path / "s.pcapng"
    write_capture(original, path, show_secrets=True)
    back = read_capture(path)
    assert len(back.frames) == len(original.frames)
    for a, b in zip(back.frames, original.frames, strict=True):
        assert (a.index, a.conn_id, a.direction, a.data, a.step_id, a.kind) == (
            b.index, b.conn_id, b.direction, b.data, b.step_id, b.kind)
        assert round(a.at * 1e6) == round(b.at * 1e6)
    assert back.to_json() == original.to_json()  # steps, diagnosis, pings: everything


def test_round_trip_keeps_which_request_each_answer_answers_and_whether_late(
        tmp_path: Path) -> None:
    """QA: a capture of a slow meter opened later read "80%, answers the association late"
    where the run had said "65%, works but slowly": the frames lost their answers/late marks,
    and time is evidence."""
    original = seed_session()
    rx = [f for f in original.frames if f.direction is Direction.RX]
    tx = [f for f in original.frames if f.direction is Direction.TX]
    rx[0].answers, rx[0].late = tx[0].index, True
    rx[1].answers = tx[1].index
    path = tmp_path / "s.pcapng"
    write_capture(original, path, show_secrets=True)
    back = {f.index: f for f in read_capture(path).frames}
    assert [(back[f.index].answers, back[f.index].late) for f in original.frames] == [
        (f.answers, f.late) for f in original.frames]


def test_round_trip_of_a_masked_capture_keeps_the_mask(tmp_path: Path) -> None:
    path = tmp_path / "s.pcapng"
    write_capture(seed_session(), path)
    back = read_capture(path)
    assert b"11111111" not in back.frames[5].data
    assert b"********" in back.frames[5].data
    assert [f.data for f in back.frames[:5]] == [f.data for f in seed_session().frames[:5]]


def test_foreign_capture_without_comments_is_read_by_its_tcp_streams(tmp_path: Path) -> None:
    scapy_all = pytest.importorskip("scapy.all")
    IP, TCP, Ether, wrpcap = scapy_all.IP, scapy_all.TCP, scapy_all.Ether, scapy_all.wrpcap
    c, s = "10.0.0.5", "10.0.0.9"
    t0 = 1_700_000_000.0

    def seg(t: float, to_server: bool, seq: int, ack: int, flags: str, load: bytes = b"") -> Any:
        src, dst = (c, s) if to_server else (s, c)
        sport, dport = (51000, 3333) if to_server else (3333, 51000)
        pkt = Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, seq=seq, ack=ack,
                                                   flags=flags)
        if load:
            pkt = pkt / load
        pkt.time = t0 + t
        return pkt

    ua_head, ua_tail = UA[:10], UA[10:]
    two = POLLER_SNRM + bytes.fromhex("7EA0070321930F017E")  # two frames in one segment
    packets = [
        seg(0.000, True, 100, 0, "S"),
        seg(0.010, False, 900, 101, "SA"),
        seg(0.010, True, 101, 901, "A"),
        seg(0.020, True, 101, 901, "PA", two),
        seg(0.400, True, 101, 901, "PA", two),  # a retransmission: must not be read twice
        # a frame in two segments, captured out of order
        seg(0.520, False, 901 + len(ua_head), 101 + len(two), "PA", ua_tail),
        seg(0.500, False, 901, 101 + len(two), "PA", ua_head),
        seg(0.600, False, 901 + len(UA), 101 + len(two), "FA"),
        seg(0.600, True, 101 + len(two), 902 + len(UA), "FA"),
        # unrelated traffic on another port: left out
        Ether() / IP(src=c, dst="10.0.0.1") / TCP(sport=52000, dport=22, flags="PA") / b"SSH-2.0",
    ]
    packets[-1].time = t0 + 0.05
    path = tmp_path / "tcpdump.pcap"
    wrpcap(str(path), packets)
    session = read_capture(path)
    assert (session.target.host, session.target.port) == (s, 3333)
    assert [(f.direction, f.data) for f in session.frames] == [
        (Direction.TX, POLLER_SNRM), (Direction.TX, bytes.fromhex("7EA0070321930F017E")),
        (Direction.RX, UA)]
    assert [round(f.at, 6) for f in session.frames] == [0.02, 0.02, 0.52]
    conn = session.connections[0]
    assert conn.connect_time == pytest.approx(0.01)
    assert (conn.close_how, conn.closed_by_peer) == (CloseHow.FIN, True)


def test_foreign_capture_without_dlms_says_so(tmp_path: Path) -> None:
    scapy_all = pytest.importorskip("scapy.all")
    pkt = scapy_all.IP(src="10.0.0.5", dst="10.0.0.1") / scapy_all.TCP(
        sport=52000, dport=22, flags="PA") / b"SSH-2.0-OpenSSH"
    path = tmp_path / "ssh.pcap"
    scapy_all.wrpcap(str(path), [pkt])
    with pytest.raises(CaptureFormatError, match="no DLMS TCP stream"):
        read_capture(path)
    # ... unless the user names the port
    assert read_capture(path, port=22).frames[0].data == b"SSH-2.0-OpenSSH"


@pytest.mark.parametrize("content", [b"", b"\x0a\x0d\x0d\x0a\x00", b"\xd4\xc3\xb2\xa1short",
                                     b"{}", b"not json at all", bytes(range(256))])
def test_damaged_files_raise_plain_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    with pytest.raises((CaptureFormatError, SessionFormatError)):
        load_session_file(path)


def test_truncated_capture_keeps_the_whole_packets(tmp_path: Path) -> None:
    path = tmp_path / "s.pcapng"
    write_capture(seed_session(), path)
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(path.read_bytes()[:-100])  # tcpdump killed mid-write
    session = read_capture(cut)
    assert 0 < len(session.frames) <= 13


def test_session_json_loads_too(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(seed_session().dumps(), encoding="utf-8")
    assert load_session_file(path).to_json() == seed_session().to_json()


DUMPCAP = shutil.which("dumpcap")


@pytest.mark.skipif(DUMPCAP is None or os.geteuid() != 0,
                    reason="needs dumpcap (tshark package) and root to capture on loopback")
def test_real_loopback_capture_by_dumpcap_is_read(tmp_path: Path) -> None:
    """A capture made the way a user makes one: a real TCP exchange on loopback, dumpcap."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    path = tmp_path / "lo.pcapng"
    assert DUMPCAP is not None
    proc = subprocess.Popen([DUMPCAP, "-q", "-i", "lo", "-f", f"tcp port {port}", "-w",
                             str(path)], stderr=subprocess.PIPE, text=True)
    try:
        _wait_capturing(proc, path)

        def meter() -> None:
            conn, _ = server.accept()
            with conn:
                assert conn.recv(100) == bytes.fromhex("7EA0070321930F017E")
                conn.sendall(UA)

        thread = threading.Thread(target=meter)
        thread.start()
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(bytes.fromhex("7EA0070321930F017E"))
            got = b""
            while len(got) < len(UA):
                got += client.recv(100)
        thread.join(5)
        time.sleep(0.3)  # let dumpcap write the last packets
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        server.close()
    if not read_raw(path).packets:
        pytest.skip("dumpcap ran but captured nothing on loopback here")
    session = read_capture(path)
    assert session.target.port == port
    assert [(f.direction, f.data) for f in session.frames] == [
        (Direction.TX, bytes.fromhex("7EA0070321930F017E")), (Direction.RX, UA)]
    assert session.connections[0].close_how is not None


def _wait_capturing(proc: subprocess.Popen[str], path: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.skip(f"dumpcap could not capture: {proc.stderr.read() if proc.stderr else ''}")
        if path.exists() and path.stat().st_size > 0:
            time.sleep(0.2)
            return
        time.sleep(0.05)
    pytest.skip("dumpcap did not start capturing in 10 s")




@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap (tshark package) missing")
@pytest.mark.parametrize("fmt", ["pcap", "nsecpcap"])
def test_our_capture_stripped_to_plain_pcap_reads_as_foreign(tmp_path: Path, fmt: str) -> None:
    """Without comments (a plain pcap, microsecond or nanosecond) only the TCP streams tell the
    story: the frames, directions and connections must still come back."""
    original = seed_session()
    ours = tmp_path / "s.pcapng"
    write_capture(original, ours, show_secrets=True)
    plain = tmp_path / "s.pcap"
    subprocess.run(["editcap", "-F", fmt, str(ours), str(plain)], check=True,
                   capture_output=True, timeout=60)
    back = read_capture(plain)
    assert back.tool_version == "(foreign capture)"
    assert [(f.conn_id, f.direction, f.data) for f in back.frames] == [
        (f.conn_id, f.direction, f.data) for f in original.frames]
    t0 = original.pings[0].at  # the first packet of the file
    assert [round(f.at + t0, 6) for f in back.frames] == [f.at for f in original.frames]
    assert [(c.close_how, c.closed_by_peer) for c in back.connections] == [
        (CloseHow.FIN, True), (CloseHow.LOCAL, False), (CloseHow.LOCAL, False)]
    assert [p.rtt for p in back.pings] == [p.rtt for p in original.pings]
