"""Each client fault of issue 12, made by a real client through the tap against the simulated
meter, and the finding the user gets with its evidence frames."""

from __future__ import annotations

import socket
import time

import pytest
from gurux_dlms import GXDLMSException
from gurux_dlms.enums import Authentication
from gurux_dlms.objects import GXDLMSData

from dlmsdoctor.events import Direction
from dlmsdoctor.session import Session
from dlmsdoctor.sim.meter import MeterThread
from tests.tap.helpers import RecordingPeer, TapThread

# The seed's SNRM (ESTADO_MEDIDOR_2.md): group length 0x12 where 20 (0x14) bytes follow.
SEED_SNRM = bytes.fromhex(
    "7EA0210203219373568180120502008006020080070400000001080400000001A6D97E")


def _peer(meter, port, **kw):  # type: ignore[no-untyped-def]
    p = meter.profile
    return RecordingPeer(port, physical=p.server_physical or 0, address_size=p.address_size,
                         **kw)


def _finding(session: Session, code: str):  # type: ignore[no-untyped-def]
    found = [f for f in session.findings if f.code == code]
    assert found, f"no {code} in {[f.code for f in session.findings]}"
    return found[0]


def _frame(session: Session, index: int):  # type: ignore[no-untyped-def]
    return next(f for f in session.frames if f.index == index)


def test_seed_snrm_with_wrong_group_length_is_named_and_its_silence_explained() -> None:
    with MeterThread("default") as meter, TapThread(meter.port) as tap:
        with socket.create_connection(("127.0.0.1", tap.port)) as sock:
            sock.sendall(SEED_SNRM)
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                sock.recv(100)  # a strict meter drops it: silence
        live = tap.wait_finding("tap.poller.malformed", 1.0)  # raised as soon as the frame went by
        time.sleep(0.1)
        session = tap.stop()
    assert live and live[0].data["codec"] == "hdlc.params.group_length"
    malformed = _finding(session, "tap.poller.malformed")
    assert malformed.data["found"] == "12" and malformed.data["corrected"] == "14"
    evidence = _frame(session, malformed.frames[0])
    assert evidence.direction is Direction.TX and evidence.data == SEED_SNRM
    silence = _finding(session, "tap.poller.no_answer")
    assert silence.frames == [evidence.index]
    assert "hdlc.params.group_length" in silence.message
    assert session.diagnosis is not None and session.diagnosis.status == "failed"
    assert session.diagnosis.causes[0].code == "tap.poller.malformed"
    assert session.diagnosis.causes[0].whose == "poller"


def test_wrong_password_retry_loop_counts_failures_and_time_to_lockout() -> None:
    with MeterThread("default") as meter, TapThread(meter.port) as tap:
        for _ in range(3):
            with _peer(meter, tap.port, client_sap=1, authentication=Authentication.LOW,
                       password="wrong-pw") as peer, pytest.raises(GXDLMSException):
                peer.connect()
            time.sleep(0.3)
        session = tap.stop()
    failed = _finding(session, "tap.poller.login_failed")
    assert failed.data["diagnostic"] == "authentication-failure"
    assert failed.data["count"] == 3
    retries = [f for f in session.findings if f.code == "tap.poller.login_retries"]
    locked = next(f for f in retries if f.data["left"] == 0)
    assert locked.data["failures"] == 3 and 0.2 < locked.data["pace"] < 2.0
    assert "locked now" in locked.message
    # evidence: the three rejected AAREs (and the AARQ of the first)
    aares = [_frame(session, i) for i in locked.frames]
    assert sum("rejected" in f.summary for f in aares) == 3
    assert session.diagnosis is not None
    assert session.diagnosis.causes[0].code == "tap.poller.login_retries"


def test_closing_without_release_leaves_the_session_open() -> None:
    with MeterThread("default") as meter, TapThread(meter.port) as tap:
        with _peer(meter, tap.port) as peer:
            peer.connect()
            peer.read(GXDLMSData("0.0.42.0.0.255"), 2)
        time.sleep(0.2)
        session = tap.stop()
    left = _finding(session, "tap.poller.session_left_open")
    assert left.data["what"] == "association (no RLRQ)"
    aare = _frame(session, left.frames[0])
    assert "AARE" in aare.summary and "accepted" in aare.summary
    conn = session.connections[0]
    assert conn.closed_by_peer is False


def test_timeout_shorter_than_a_delayed_meter() -> None:
    with MeterThread("default", faults=["delay=0.6"]) as meter, TapThread(meter.port) as tap:
        for _ in range(2):  # the poller gives up after 0.25 s and reconnects
            with _peer(meter, tap.port, timeout=0.25) as peer, pytest.raises(TimeoutError):
                peer.connect()
        time.sleep(1.0)  # the late answers arrive after the poller left
        session = tap.stop()
    late = _finding(session, "tap.poller.timeout_too_short")
    assert late.data["service"] == "SNRM"
    assert late.data["waited"] < 0.4 < 0.55 < late.data["answer_time"]
    request, answer = (_frame(session, i) for i in late.frames[:2])
    assert request.direction is Direction.TX and "SNRM" in request.summary
    assert answer.direction is Direction.RX and answer.late and answer.answers == request.index
    times = session.settings["tap"]["answer_times"]["SNRM"]
    assert times["late"] >= 1 and times["p50"] >= 0.55


def test_late_answer_reaches_the_next_session_as_stale_bytes() -> None:
    """A bridge that buffers what the meter wrote while no client was connected (scripted
    here: the first connection's answer is delivered on the second), and a poller that gave
    up on the first connection too early."""
    from dlmsdoctor.codec.hdlc import ServerAddress, build_snrm, build_ua
    from tests.tap.test_relay import Target

    address = ServerAddress(1, 17, 2)
    snrm, ua = build_snrm(address, 16), build_ua(address, 16)
    target = Target()
    with TapThread(target.port) as tap:
        first = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
        bridge_side = target.accept()
        first.sendall(snrm)
        assert bridge_side.recv(100) == snrm
        first.close()  # the poller's timeout: it gives up and reconnects
        bridge_side.close()
        time.sleep(0.3)
        second = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
        bridge_side = target.accept()
        bridge_side.sendall(ua)  # the meter's late UA, buffered by the bridge
        assert second.recv(100) == ua
        second.sendall(snrm)
        bridge_side.recv(100)
        bridge_side.sendall(ua)
        second.recv(100)
        second.close()
        bridge_side.close()
        time.sleep(0.2)
        session = tap.stop()
    target.close()
    stale = _finding(session, "tap.meter.stale_bytes")
    source, stale_frame = (_frame(session, i) for i in stale.frames[:2])
    assert source.conn_id == 1 and source.direction is Direction.TX and source.data == snrm
    assert stale_frame.conn_id == 2 and stale_frame.data == ua
    late = _finding(session, "tap.poller.timeout_too_short")
    assert late.frames == [source.index, stale_frame.index]
    assert "stale bytes" in late.message
