"""The relay alone, against a plain TCP peer: bytes unchanged and in order, closes mirrored as
they happened (FIN as a half-close, RST as a RST), a dead target imitated, connections apart."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from dlmsdoctor.events import CloseHow, Direction
from dlmsdoctor.session import Session
from dlmsdoctor.tap.core import load_all_frames
from tests.tap.helpers import TapThread


class Target:
    """A listening socket; ``accept()`` hands back the next connection (blocking)."""

    def __init__(self, backlog: int = 8) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]

    def accept(self, timeout: float = 3.0) -> socket.socket:
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        conn.settimeout(timeout)
        return conn

    def close(self) -> None:
        self.sock.close()


def _recv_all(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _rst(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("backlog", ["default", "small"])
def test_bytes_both_ways_unchanged_in_order_including_a_large_burst(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backlog: str) -> None:
    if backlog == "small":  # the recorder falls behind at once: reading pauses and resumes
        import dlmsdoctor.tap.core as core

        monkeypatch.setattr(core, "BACKLOG_HIGH", 64 << 10)
        monkeypatch.setattr(core, "BACKLOG_LOW", 16 << 10)
    target = Target()
    # past the backlog, the relay goes at the decoder's pace (noise decodes slowly): less data
    rng = random.Random(backlog)  # seeded: a failure can be replayed
    up, down = (rng.randbytes(600_000), rng.randbytes(300_000)) if backlog == "default" else (
        rng.randbytes(300_000), rng.randbytes(150_000))
    with TapThread(target.port, frames_path=tmp_path / "frames.jsonl") as tap:
        client = socket.create_connection(("127.0.0.1", tap.port), timeout=20)
        server = target.accept(20)
        got: dict[str, bytes] = {}
        reader = threading.Thread(target=lambda: got.update(up=_recv_all(server, len(up))))
        reader.start()
        for i in range(0, 300, 7):  # small writes first, then one large
            client.sendall(up[i : i + 7])
        client.sendall(up[301:])
        server.sendall(down)
        got["down"] = _recv_all(client, len(down))
        reader.join(10)
        client.close()
        server.close()
        time.sleep(0.1)
        session = tap.stop()
    target.close()
    assert got["up"] == up and got["down"] == down
    # random bytes make tens of thousands of chunks: memory keeps a bounded part, the frames
    # file has every byte in order per direction (show_secrets: nothing masked)
    assert len(session.frames) < session.settings["tap"]["frames_total"]
    everything = load_all_frames(session)
    assert len(everything.frames) == session.settings["tap"]["frames_total"]
    assert b"".join(f.data for f in everything.frames if f.direction is Direction.TX) == up
    assert b"".join(f.data for f in everything.frames if f.direction is Direction.RX) == down


def test_fin_is_a_half_close_and_the_answer_still_flows() -> None:
    target = Target()
    with TapThread(target.port) as tap:
        client = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
        server = target.accept()
        client.sendall(b"question")
        client.shutdown(socket.SHUT_WR)  # FIN from the poller
        assert _recv_all(server, 100) == b"question"  # ... then EOF mirrored
        server.sendall(b"late answer")
        server.close()
        assert _recv_all(client, 100) == b"late answer"  # then EOF
        client.close()
        time.sleep(0.1)
        session = tap.stop()
    target.close()
    conn = session.connections[0]
    assert conn.close_how is CloseHow.FIN and conn.closed_by_peer is False
    assert "the meter closed (FIN)" in conn.note


def reset_through_tap(who: str) -> tuple[Session, int]:
    """One byte relayed, then ``who`` ("poller" or "meter") resets its connection; the other
    side must see a reset. The tap's session and the meter's port."""
    target = Target()
    with TapThread(target.port) as tap:
        client = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
        server = target.accept()
        client.sendall(b"x")
        assert server.recv(10) == b"x"
        closer, other = (client, server) if who == "poller" else (server, client)
        _rst(closer)
        with pytest.raises(ConnectionResetError):
            for _ in range(50):
                if not other.recv(10):
                    break
                time.sleep(0.02)
        other.close()
        time.sleep(0.1)
        session = tap.stop()
    target.close()
    return session, target.port


@pytest.mark.parametrize("who", ["poller", "meter"])
def test_rst_is_mirrored_as_rst(who: str) -> None:
    session, _ = reset_through_tap(who)
    conn = session.connections[0]
    assert conn.close_how is CloseHow.RST
    assert conn.closed_by_peer is (who == "meter")


def test_refused_target_resets_the_poller_and_is_recorded() -> None:
    holder = socket.socket()  # bound, not listening: the port stays ours and refuses
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    with TapThread(port) as tap:
        # on loopback the RST may beat connect()
        with pytest.raises(ConnectionResetError), \
                socket.create_connection(("127.0.0.1", tap.port), timeout=3) as client:
            client.recv(10)
        session = tap.stop()
    holder.close()
    conn = session.connections[0]
    assert conn.failed == "refused" and conn.client.startswith("127.0.0.1:")
    assert [f.code for f in session.findings] == ["tap.target.unreachable"]


def test_target_that_never_answers_closes_the_poller_after_the_connect_timeout() -> None:
    target = Target(backlog=0)
    fillers = []
    for _ in range(3):  # fill the accept queue: further SYNs are dropped, connects hang
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", target.port))
        fillers.append(s)
    time.sleep(0.1)
    with TapThread(target.port, connect_timeout=0.4) as tap:
        client = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
        start = time.monotonic()
        assert client.recv(10) == b""  # FIN, as a dead target's refusal never comes
        assert 0.35 < time.monotonic() - start < 2.0
        client.close()
        session = tap.stop()
    for s in fillers:
        s.close()
    target.close()
    assert session.connections[0].failed == "timeout"


def test_several_pollers_at_once_are_relayed_and_recorded_apart() -> None:
    target = Target()
    with TapThread(target.port) as tap:
        a = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
        sa = target.accept()
        b = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
        sb = target.accept()
        for _ in range(3):
            a.sendall(b"AAAA")
            b.sendall(b"BB")
            sa.sendall(b"to-a")
            sb.sendall(b"to-b")
        assert _recv_all(sa, 12) == b"AAAA" * 3 and _recv_all(sb, 6) == b"BB" * 3
        assert _recv_all(a, 12) == b"to-a" * 3 and _recv_all(b, 12) == b"to-b" * 3
        for s in (a, b, sa, sb):
            s.close()
        time.sleep(0.1)
        session = tap.stop()
    target.close()
    assert len(session.connections) == 2
    assert len({c.client for c in session.connections}) == 2
    for conn in session.connections:
        tx = b"".join(f.data for f in session.frames
                      if f.conn_id == conn.id and f.direction is Direction.TX)
        assert tx in (b"AAAA" * 3, b"BB" * 3)


def test_long_runs_keep_memory_bounded_and_the_file_keeps_everything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dlmsdoctor.tap.core as core

    monkeypatch.setattr(core, "KEEP_CONNECTIONS", 5)
    monkeypatch.setattr(core, "RECENT_CONNECTIONS", 3)
    monkeypatch.setattr(core, "TAIL", 4)
    target = Target(backlog=64)
    with TapThread(target.port, frames_path=tmp_path / "f.jsonl", keep_frames=10) as tap:
        for n in range(30):
            client = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
            server = target.accept()
            client.sendall(b"poll %d\n" % n)
            assert server.recv(100) == b"poll %d\n" % n
            server.sendall(b"answer\n")
            assert client.recv(100) == b"answer\n"
            client.close()
            server.close()
        time.sleep(0.2)
        session = tap.stop()
    target.close()
    tap_figures = session.settings["tap"]
    assert tap_figures["frames_total"] == 60 and tap_figures["connections_total"] == 30
    assert len(session.frames) == 10 + 4  # the first ones and the last ones
    assert [c.id for c in session.connections] == [1, 2, 3, 4, 5, 28, 29, 30]
    everything = load_all_frames(session)
    assert [c.id for c in everything.connections] == list(range(1, 31))
    assert len(everything.frames) == 60
    assert all(c.close_how is CloseHow.FIN for c in everything.connections)


def test_half_a_frame_is_forwarded_at_once_not_held_for_the_rest() -> None:
    from dlmsdoctor.codec.hdlc import ServerAddress, build_snrm

    snrm = build_snrm(ServerAddress(1, 17, 2), 16)
    target = Target()
    with TapThread(target.port) as tap:
        client = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
        server = target.accept()
        server.settimeout(1.0)
        client.sendall(snrm[:5])
        assert server.recv(100) == snrm[:5]  # the decoder still waits; the meter does not
        client.sendall(snrm[5:])
        assert server.recv(100) == snrm[5:]
        client.close()
        server.close()
        time.sleep(0.1)
        session = tap.stop()
    target.close()
    assert [f.data for f in session.frames] == [snrm]  # recorded as the one frame it is


def test_a_bug_in_the_analysis_never_stops_the_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlmsdoctor.tap.analysis import TapAnalyzer

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(TapAnalyzer, "frame", broken)
    target = Target()
    with TapThread(target.port) as tap:
        client = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
        server = target.accept()
        from dlmsdoctor.codec.hdlc import ServerAddress, build_snrm

        snrm = build_snrm(ServerAddress(1, 17, 2), 16)
        for _ in range(5):
            client.sendall(snrm)
            assert server.recv(100) == snrm
        assert tap.wait_finding("tap.internal_error")
        client.close()
        server.close()
        time.sleep(0.1)
        session = tap.stop()
    target.close()
    assert session.settings["tap"]["internal_errors"] >= 5
    assert len(tap.findings("tap.internal_error")) == 3  # said, not repeated without end


def test_an_ipv6_poller_is_recorded_with_its_bracketed_address() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    target = Target()
    with TapThread(target.port, listen_host="::1") as tap:
        client = socket.create_connection(("::1", tap.port), timeout=3)
        server = target.accept()
        client.sendall(b"x")
        assert server.recv(10) == b"x"
        client.close()
        server.close()
        time.sleep(0.1)
        session = tap.stop()
    target.close()
    assert session.connections[0].client.startswith("[::1]:")
    assert session.settings["listen"].startswith("[::1]:")
