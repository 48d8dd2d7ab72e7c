"""A tap relaying ::1 <-> ::1: its pcapng carries IPv6 headers tshark reads without a malformed
packet, a bad checksum or an expert error, with every poller stream as it was relayed; dlmsdoctor
reads it back exactly, and as a foreign capture (tshark's own pcap of it) too. A poller on IPv4
relayed to an IPv6 meter is drawn from its IPv4-mapped address (one TCP stream, one family).

Real loopback sockets: a gurux-dlms client polls the simulated meter through the tap."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from gurux_dlms.enums import Authentication
from gurux_dlms.objects import GXDLMSData

from dlmsdoctor.events import Direction
from dlmsdoctor.output.capture import write_capture
from dlmsdoctor.output.capture_read import load_and_diagnose, read_capture, read_raw
from dlmsdoctor.session import Session
from dlmsdoctor.sim.meter import MeterThread
from tests.output.test_capture import TSHARK, followed_streams, tshark, tshark_problems
from tests.sim import gurux_peer
from tests.tap.helpers import TapThread


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _ipv6_loopback(),
                                reason="this machine has no IPv6 loopback (::1)")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt: tshark)")
# tshark_problems' filter checks IPv4 and ICMP checksums; these are IPv6's own
BAD6 = '(icmpv6 && icmpv6.checksum.status != 1) || (ipv6 && ipv6.plen == 0 && !tcp && !icmpv6)'


def _poll(port: int, host: str, **kw: Any) -> None:
    """A gurux client that connects to ``host`` (the tap's listening address)."""
    real = socket.create_connection

    def to_host(address: Any, timeout: Any = None, source_address: Any = None) -> socket.socket:
        return real((host, address[1]), timeout)

    with mock.patch.object(gurux_peer.socket, "create_connection", to_host):
        peer = gurux_peer.GuruxPeer(port, **kw)
    with peer:
        peer.connect()
        peer.read(GXDLMSData("0.0.42.0.0.255"), 2)
        peer.release()


@pytest.fixture(scope="module", params=["::1", "127.0.0.1"], ids=["poller6", "poller4"])
def relayed(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The meter on ::1; the tap listens on ``param`` and relays to [::1]:meter; two polls (the
    first logs in with LLS: a password to mask), then the tap stops."""
    listen = request.param
    folder = tmp_path_factory.mktemp("ipv6")
    with MeterThread("default", host="::1") as meter, \
            TapThread(meter.port, listen_host=listen, target_host="::1",
                      show_secrets=False) as tap:
        _poll(tap.port, listen, client_sap=1, password="00000000",
              authentication=Authentication.LOW)
        _poll(tap.port, listen)
        session = tap.stop()
    path = folder / "tap6.pcapng"
    write_capture(session, path)
    yield {"session": session, "path": path, "folder": folder, "listen": listen}


def test_the_tap_relayed_and_recorded_over_ipv6(relayed: dict[str, Any]) -> None:
    session: Session = relayed["session"]
    assert session.target.host == "::1"
    assert session.diagnosis is not None and session.diagnosis.status == "ok"
    assert len(session.connections) == 2
    prefix = "[::1]:" if relayed["listen"] == "::1" else "127.0.0.1:"
    assert all(c.client.startswith(prefix) for c in session.connections)
    assert all(c.relay_from.startswith("[::1]:") for c in session.connections)


def test_the_capture_has_ipv6_headers_with_the_real_addresses(relayed: dict[str, Any]) -> None:
    raw = read_raw(relayed["path"])
    assert raw.packets and all(p.linktype == 101 for p in raw.packets)
    assert all(p.data[0] >> 4 == 6 for p in raw.packets)  # every packet: IPv6
    meter = socket.inet_pton(socket.AF_INET6, "::1")
    poller = meter if relayed["listen"] == "::1" else socket.inet_pton(
        socket.AF_INET6, "::ffff:127.0.0.1")
    for p in raw.packets:
        assert {p.data[8:24], p.data[24:40]} == {poller, meter}
        assert int.from_bytes(p.data[4:6], "big") == len(p.data) - 40  # payload length


@needs_tshark
def test_tshark_reads_it_without_a_problem(relayed: dict[str, Any]) -> None:
    path: Path = relayed["path"]
    assert tshark_problems(path) == ""
    assert tshark("-r", str(path), "-o", "tcp.check_checksum:TRUE", "-Y", BAD6).strip() == ""
    expert = tshark("-r", str(path), "-q", "-z", "expert")
    assert "Errors" not in expert and "Warns" not in expert and "Malformed" not in expert
    sources = set(tshark("-r", str(path), "-T", "fields", "-e", "ipv6.src").split())
    expected = "::1" if relayed["listen"] == "::1" else "::ffff:127.0.0.1"
    assert sources == {"::1", expected}
    assert tshark("-r", str(path), "-Y", "ip").strip() == ""  # no IPv4 packet at all
    session: Session = relayed["session"]
    for conn, (client, server) in zip(session.connections,
                                      followed_streams(path, len(session.connections)),
                                      strict=True):
        frames = [f for f in session.frames if f.conn_id == conn.id]
        assert client == b"".join(f.data for f in frames if f.direction is Direction.TX)
        assert server == b"".join(f.data for f in frames if f.direction is Direction.RX)


def test_dlmsdoctor_reads_its_ipv6_capture_back_exactly(relayed: dict[str, Any]) -> None:
    session: Session = relayed["session"]
    back = read_capture(relayed["path"])
    assert back.kind == "tap" and back.target.host == "::1"
    assert [(f.index, f.conn_id, f.direction, f.data) for f in back.frames] == [
        (f.index, f.conn_id, f.direction, f.data) for f in session.frames]
    assert all(abs(a.at - b.at) < 1e-6 for a, b in zip(back.frames, session.frames,
                                                        strict=True))
    assert [c.client for c in back.connections] == [c.client for c in session.connections]
    assert b"00000000" not in b"".join(f.data for f in back.frames)  # masked, as recorded


@needs_tshark
def test_its_foreign_copy_is_read_as_the_pollers_ipv6_traffic(relayed: dict[str, Any]) -> None:
    """tshark's pcap of the file (no dlmsdoctor comments): the IPv6 streams are followed and
    judged as the poller's, with the addresses on the wire."""
    assert TSHARK is not None
    plain = relayed["folder"] / f"foreign-{relayed['listen'].replace(':', '_')}.pcap"
    subprocess.run([TSHARK, "-r", str(relayed["path"]), "-F", "pcap", "-w", str(plain)],
                   check=True, capture_output=True, timeout=60)
    foreign = load_and_diagnose(plain)
    session: Session = relayed["session"]
    assert foreign.kind == "capture" and foreign.target.host == "::1"
    assert foreign.target.port == session.target.port
    expected = "[::1]:" if relayed["listen"] == "::1" else "[::ffff:127.0.0.1]:"
    assert all(c.client.startswith(expected) for c in foreign.connections)
    assert [f.data for f in foreign.frames] == [f.data for f in session.frames]
    assert foreign.diagnosis is not None and foreign.diagnosis.status == "ok"
