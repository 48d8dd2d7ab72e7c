"""Captures of a meter on IPv6: TCP over IPv6 headers, pings as ICMPv6 echo, checksums over the
IPv6 pseudo-header (RFC 8200 8.1), read back exactly; the address families mixed (an IPv4 client
of an IPv6 meter is drawn from its IPv4-mapped address; an IPv6 poller of an IPv4 meter from
the IPv4 stand-in, as the section comment says). No network: sessions made here."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from dlmsdoctor.output.capture import build_capture, write_capture
from dlmsdoctor.output.capture_read import read_capture, read_raw
from dlmsdoctor.session import PingRecord, Session
from tests.output.test_capture import TSHARK, tshark, tshark_problems

ROOT = Path(__file__).resolve().parents[2]
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt: tshark)")
BAD6 = "(icmpv6 && icmpv6.checksum.status != 1) || (tcp && tcp.checksum.status != 1)"


def _healthy(host: str, local: str, pings: bool = True) -> Session:
    session = Session.loads((ROOT / "captures" / "healthy.session.json").read_text())
    session.target.host = host
    session.settings["local_host"] = local
    if pings:
        session.pings = [PingRecord(0.001 * i, 0x1234, i, b"dlmsdoctor ping", 0.001 * i + 0.0004,
                                    0.0004) for i in range(1, 4)]
    return session


def test_a_meter_on_ipv6_is_drawn_over_ipv6_with_icmpv6_pings(tmp_path: Path) -> None:
    session = _healthy("2001:db8::5", "2001:db8::7")
    path = tmp_path / "v6.pcapng"
    write_capture(session, path)
    raw = read_raw(path)
    meter, client = (socket.inet_pton(socket.AF_INET6, a) for a in ("2001:db8::5", "2001:db8::7"))
    assert all(p.data[0] >> 4 == 6 for p in raw.packets)
    assert {(p.data[8:24], p.data[24:40]) for p in raw.packets} == {(client, meter),
                                                                    (meter, client)}
    icmp = [p for p in raw.packets if p.data[6] == 58]
    assert [p.data[40] for p in icmp] == [128, 129] * 3  # echo request, reply
    back = read_capture(path)
    assert [(p.ident, p.seq, p.payload, p.rtt) for p in back.pings] == [
        (p.ident, p.seq, p.payload, p.rtt) for p in session.pings]
    assert [f.data for f in back.frames] == [f.data for f in session.frames]
    assert not any("not an IP address" in c for c in raw.section_comments)


@needs_tshark
def test_tshark_checks_every_ipv6_checksum(tmp_path: Path) -> None:
    path = tmp_path / "v6.pcapng"
    write_capture(_healthy("2001:db8::5", "2001:db8::7"), path)
    assert tshark_problems(path) == ""
    assert tshark("-r", str(path), "-o", "tcp.check_checksum:TRUE", "-Y", BAD6).strip() == ""
    replies = tshark("-r", str(path), "-Y", "icmpv6.type == 129", "-T", "fields", "-e",
                     "icmpv6.echo.sequence_number").split()
    assert replies == ["1", "2", "3"]


def test_a_loopback_meter_on_ipv6_without_a_local_address_is_drawn_from_it(
        tmp_path: Path) -> None:
    session = _healthy("::1", "", pings=False)
    data, _ = build_capture(session)
    path = tmp_path / "lo6.pcapng"
    path.write_bytes(data)
    loopback = socket.inet_pton(socket.AF_INET6, "::1")
    assert all(p.data[8:24] == p.data[24:40] == loopback for p in read_raw(path).packets)


def test_an_ipv6_poller_of_an_ipv4_meter_keeps_the_ipv4_stand_in(tmp_path: Path) -> None:
    session = _healthy("192.0.2.15", "192.0.2.9", pings=False)
    session.kind = "tap"
    session.settings["listen"] = "[::1]:4059"
    session.connections = [dataclasses.replace(session.connections[0], client="[::1]:50000")]
    path = tmp_path / "mixed.pcapng"
    write_capture(session, path)
    raw = read_raw(path)
    assert all(p.data[0] >> 4 == 4 for p in raw.packets)
    assert {p.data[12:16] for p in raw.packets} == {bytes([192, 0, 2, 15]),
                                                    bytes([192, 0, 2, 9])}
    note = next(c for c in raw.section_comments if c.startswith("TAP: "))
    assert "Pollers of another address family than the meter's (::1)" in note
    assert "IPv4 stand-in" in note


def test_an_ipv4_poller_of_an_ipv6_meter_is_its_ipv4_mapped_address(tmp_path: Path) -> None:
    session = _healthy("::1", "", pings=False)
    session.kind = "tap"
    session.settings["listen"] = "127.0.0.1:4059"
    session.connections = [dataclasses.replace(session.connections[0],
                                               client="127.0.0.2:50000")]
    path = tmp_path / "mapped.pcapng"
    write_capture(session, path)
    raw = read_raw(path)
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.2")
    assert {p.data[8:24] for p in raw.packets} == {mapped, socket.inet_pton(socket.AF_INET6,
                                                                           "::1")}
    note = next(c for c in raw.section_comments if c.startswith("TAP: "))
    assert "IPv4-mapped" in note
    back = read_capture(path)
    assert back.connections[0].client == "127.0.0.2:50000"  # the session keeps the real one
