"""Property: whatever a Session holds (any bytes, directions, times, closes), its pcapng reads back
to the same frames, and the TCP stream stays consistent. One batch also goes through tshark."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlmsdoctor.events import CloseHow, Direction
from dlmsdoctor.output.capture import build_capture
from dlmsdoctor.output.capture_read import read_capture, read_raw
from dlmsdoctor.session import ConnectionRecord, FrameRecord, PingRecord, Session, Target
from tests.output.test_capture import needs_tshark, tshark_problems

_conn = st.builds(
    lambda cid, opened, ct, close, peer, failed: ConnectionRecord(
        id=cid, host="10.1.2.3", port=4059, opened_at=opened, connect_time=ct,
        closed_at=None if close is None else opened + 5.0, close_how=close,
        closed_by_peer=peer, failed=failed, local_port=40000 + cid),
    st.just(0), st.floats(0.0, 5.0), st.floats(0.0, 0.5),
    st.sampled_from([None, *CloseHow]), st.booleans(),
    st.sampled_from([None, None, None, "refused", "timeout"]),
)


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    conns = draw(st.lists(_conn, min_size=1, max_size=3))
    for i, conn in enumerate(conns, start=1):
        conn.id = i
        conn.local_port = 40000 + i
    frames = []
    for index in range(draw(st.integers(0, 12))):
        conn = draw(st.sampled_from(conns))
        frames.append(FrameRecord(
            index=index, conn_id=conn.id,
            direction=draw(st.sampled_from(list(Direction))),
            at=round(draw(st.floats(0.0, 10.0)), 6),
            data=draw(st.binary(min_size=1, max_size=80)),
            step_id=draw(st.sampled_from(["", "tcp.connect", "hdlc.snrm"])),
        ))
    pings = [PingRecord(at=0.01 * i, ident=7, seq=i, payload=b"x" * i,
                        reply_at=0.01 * i + 0.002 if i % 2 else None) for i in range(3)]
    return Session(id="p", tool_version="0", started_at="2025-01-02T03:04:05.678901+00:00",
                   target=Target("10.1.2.3", 4059), frames=frames, connections=conns,
                   pings=pings)


def _check_tcp_consistency(path: Path) -> None:
    """Per TCP flow and direction: each segment starts where the previous one ended."""
    next_seq: dict[tuple[int, int], int] = {}
    for packet in read_raw(path).packets:
        data = packet.data
        assert struct.unpack_from("!H", data, 2)[0] == len(data)  # IP total length
        if data[9] != 6:
            continue
        sport, dport, seq = struct.unpack_from("!HHI", data, 20)
        flags, payload = data[33], data[40:]
        key = (sport, dport)
        if flags & 0x02:
            next_seq[key] = (seq + 1) & 0xFFFFFFFF
            continue
        assert next_seq.get(key, seq) == seq, f"gap in {key}"
        next_seq[key] = (seq + len(payload) + (1 if flags & 0x01 else 0)) & 0xFFFFFFFF


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions())
def test_any_session_round_trips(session: Session) -> None:
    data, _ = build_capture(session, show_secrets=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.pcapng"
        path.write_bytes(data)
        _check_tcp_consistency(path)
        back = read_capture(path)
    assert [(f.index, f.conn_id, f.direction, f.data, f.step_id) for f in back.frames] == [
        (f.index, f.conn_id, f.direction, f.data, f.step_id) for f in session.frames]
    assert [round(f.at * 1e6) for f in back.frames] == [round(f.at * 1e6) for f in session.frames]


@needs_tshark
def test_tshark_accepts_a_batch_of_random_sessions(tmp_path: Path) -> None:
    seen = []

    @settings(max_examples=6, deadline=None, database=None)
    @given(sessions())
    def collect(session: Session) -> None:
        seen.append(session)

    collect()
    for n, session in enumerate(seen):
        path = tmp_path / f"r{n}.pcapng"
        path.write_bytes(build_capture(session, show_secrets=True)[0])
        assert tshark_problems(path) == "", f"session {n}: {session.connections}"
