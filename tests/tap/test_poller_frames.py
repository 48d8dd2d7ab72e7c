"""Frame-level mistakes of a poller, sent as raw bytes through the tap to the simulated meter:
a 3-byte server address, an address that cannot reach the meter's physical address, wrong
HDLC sequence numbers."""

from __future__ import annotations

import socket
import time

from dlmsdoctor.codec.hdlc import (
    CTRL_SNRM,
    PF_BIT,
    ServerAddress,
    build_frame,
    build_i,
    build_snrm,
    encode_client_address,
)
from dlmsdoctor.session import Session
from dlmsdoctor.sim.meter import MeterThread
from tests.tap.helpers import TapThread

AARQ_PUBLIC = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFF")


def _exchange(port: int, frames: list[bytes], wait: float = 0.3) -> list[bytes]:
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.settimeout(wait)
        for frame in frames:
            sock.sendall(frame)
            try:
                answers.append(sock.recv(4096))
            except TimeoutError:
                answers.append(b"")
    return answers


def _codes(session: Session) -> list[str]:
    return [f.code for f in session.findings]


def test_three_byte_server_address() -> None:
    bad = build_frame(dest=bytes([0x02, 0x02, 0x03]), src=encode_client_address(16),
                      control=CTRL_SNRM | PF_BIT)
    with MeterThread("default") as meter, TapThread(meter.port) as tap:
        assert _exchange(tap.port, [bad]) == [b""]
        time.sleep(0.1)
        session = tap.stop()
    finding = next(f for f in session.findings if f.code == "tap.poller.address_size3")
    assert finding.frames == [0] and "3-byte" in finding.message
    assert "tap.poller.no_answer" in _codes(session)


def test_address_that_cannot_reach_the_meters_physical_address() -> None:
    with MeterThread("default") as meter, \
            TapThread(meter.port, meter_address=(1, 6678)) as tap:
        _exchange(tap.port, [build_snrm(ServerAddress(1, 1, 2), 16)])
        time.sleep(0.1)
        session = tap.stop()
    finding = next(f for f in session.findings if f.code == "tap.poller.address_unreachable")
    assert finding.data["meter"] == "1/6678" and finding.data["size"] == 2
    assert "needs 4 bytes" in finding.message


def test_wrong_send_sequence_number_after_ua() -> None:
    address = ServerAddress(1, 1, 2)
    with MeterThread("default") as meter, TapThread(meter.port) as tap:
        answers = _exchange(tap.port, [
            build_snrm(address, 16),
            build_i(address, 16, to_server=True, ns=3, nr=0,  # N(S) must be 0 after UA
                    info=AARQ_PUBLIC),
        ])
        assert answers[0]  # the UA
        time.sleep(0.1)
        session = tap.stop()
    finding = next(f for f in session.findings if f.code == "tap.poller.sequence")
    assert finding.data["expected"] == 0 and finding.data["found"] == 3
    assert finding.frames == [2]  # SNRM 0, UA 1, the I-frame 2


def test_wrong_server_address_answered_by_silence() -> None:
    with MeterThread("default") as meter, TapThread(meter.port) as tap:
        p = meter.profile
        wrong = ServerAddress(p.server_logical, (p.server_physical or 1) + 40, 2)
        right = ServerAddress(p.server_logical, p.server_physical or 1, 2)
        assert _exchange(tap.port, [build_snrm(wrong, 16)]) == [b""]  # ignored: silence
        assert _exchange(tap.port, [build_snrm(right, 16)])[0]  # UA
        time.sleep(0.1)
        session = tap.stop()
    silence = next(f for f in session.findings if f.code == "tap.poller.no_answer")
    assert silence.frames == [0] and silence.data["client_sap"] == 16
    assert f"/{(p.server_physical or 1) + 40} " in silence.data["server"]
    assert "The meter did answer at server" in silence.message  # the right one, later


def test_answer_with_another_invoke_id() -> None:
    """A scripted meter (wrapper framing) answers GET invoke-id 1 with invoke-id 2."""
    from dlmsdoctor.codec.wrapper import build_wrapper
    from tests.tap.test_relay import Target

    get = build_wrapper(16, 1, bytes.fromhex("C001C1000100002A0000FF0200"))
    answer = build_wrapper(1, 16, bytes.fromhex("C401C20009024142"))
    target = Target()
    with TapThread(target.port) as tap:
        with socket.create_connection(("127.0.0.1", tap.port), timeout=3) as sock:
            meter_side = target.accept()
            sock.sendall(get)
            assert meter_side.recv(100) == get
            meter_side.sendall(answer)
            assert sock.recv(100) == answer
            meter_side.close()
        time.sleep(0.1)
        session = tap.stop()
    target.close()
    finding = next(f for f in session.findings if f.code == "tap.invoke_id.mismatch")
    assert finding.data["request"] == 1 and finding.data["answer"] == 2
    assert finding.frames == [0, 1]


def test_meter_refusal_is_told_with_its_request() -> None:
    with MeterThread("default", faults=["dm-on-snrm"]) as meter, TapThread(meter.port) as tap:
        p = meter.profile
        answers = _exchange(tap.port, [build_snrm(ServerAddress(1, p.server_physical or 1, 2),
                                                  16)])
        assert answers[0]  # the DM
        time.sleep(0.1)
        session = tap.stop()
    refused = next(f for f in session.findings if f.code == "tap.meter.refused")
    assert refused.data["what"] == "DM to SNRM" and refused.frames == [0, 1]
    assert session.settings["tap"]["refusals"] == {"DM to SNRM": 1}


def test_meter_side_closing_on_the_request() -> None:
    """A wrapper-only meter given HDLC closes the socket: the tap says so, not 'silence'."""
    with MeterThread("default", faults=["wrapper-only=close"]) as meter, \
            TapThread(meter.port) as tap:
        assert _exchange(tap.port, [build_snrm(ServerAddress(1, 1, 2), 16)]) == [b""]
        time.sleep(0.1)
        session = tap.stop()
    closed = next(f for f in session.findings if f.code == "tap.meter.closed_on_request")
    assert closed.data["service"] == "SNRM" and closed.frames == [0]
    assert "tap.poller.no_answer" not in _codes(session)
    assert session.connections[0].closed_by_peer is True


def test_wrong_checksum_is_named_with_the_right_one() -> None:
    good = build_snrm(ServerAddress(1, 1, 2), 16)
    bad = good[:-3] + bytes([good[-3] ^ 0x55]) + good[-2:]
    with MeterThread("default") as meter, TapThread(meter.port) as tap:
        assert _exchange(tap.port, [bad]) == [b""]  # the meter drops it
        time.sleep(0.1)
        session = tap.stop()
    finding = next(f for f in session.findings if f.code == "tap.poller.malformed")
    assert finding.data["codec"] == "hdlc.fcs.mismatch"
    assert finding.data["corrected"] == good[-3:-1].hex(" ").upper()
    assert "tap.poller.no_answer" in _codes(session)
