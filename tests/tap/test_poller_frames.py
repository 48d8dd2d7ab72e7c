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
