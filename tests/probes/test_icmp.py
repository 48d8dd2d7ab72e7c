"""ICMP against 127.0.0.1 only, with whatever method this machine allows."""

from __future__ import annotations

import asyncio

from dlmsdoctor.engine import ProbeOptions
from dlmsdoctor.events import FindingRaised, PingReplied, PingSent, StepFinished, StepStatus
from dlmsdoctor.ledger import MemoryLedger
from dlmsdoctor.link.clock import MonotonicClock
from dlmsdoctor.link.tcp import TcpChannelFactory
from dlmsdoctor.login_budget import LoginBudget
from dlmsdoctor.probes.base import ProbeContext
from dlmsdoctor.probes.icmp import IcmpProbe, _checksum, echo_request


def _ctx(options: ProbeOptions) -> ProbeContext:
    clock = MonotonicClock()
    return ProbeContext(options, clock=clock, channel_factory=TcpChannelFactory(clock),
                        emit=lambda e: None, cancel=asyncio.Event(),
                        budget=LoginBudget(MemoryLedger(), "x"))


def test_echo_request_checksum_verifies() -> None:
    packet = echo_request(0x1234, 7, b"abc")
    assert packet[0] == 8 and _checksum(packet) == 0


async def test_ping_loopback() -> None:
    ctx = _ctx(ProbeOptions("127.0.0.1", icmp_count=2, timeout=1.0))
    events = [e async for e in IcmpProbe().run(ctx)]
    done = events[-1]
    assert isinstance(done, StepFinished)
    if done.status is StepStatus.UNAVAILABLE:  # a sandbox with no way to ping: said plainly
        assert done.details.get("reason")
        return
    assert done.status is StepStatus.OK, done.summary
    assert done.details["received"] == 2 and done.details["loss"] == 0
    assert sum(isinstance(e, PingSent) for e in events) == 2
    replies = [e for e in events if isinstance(e, PingReplied)]
    assert len(replies) == 2 and all(0 <= r.rtt < 1.0 for r in replies)
    assert ctx.facts.rtt is not None


async def test_icmp_off_is_skipped() -> None:
    ctx = _ctx(ProbeOptions("127.0.0.1", icmp=False))
    assert IcmpProbe().skip_reason(ctx)


def test_system_ping_lines_parse() -> None:
    from dlmsdoctor.probes.icmp import _PING_LINE

    out = (b"PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.\n"
           b"64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.045 ms\n"
           b"64 bytes from 127.0.0.1: icmp_seq=3 ttl=64 time=112 ms\n"
           b"64 bytes from 10.0.0.1: icmp_seq=4 ttl=64 time<1 ms\n")
    found = [(int(m.group(1)), float(m.group(2))) for m in _PING_LINE.finditer(out)]
    assert found == [(1, 0.045), (3, 112.0), (4, 1.0)]


async def test_fallback_to_system_ping_then_unavailable(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from dlmsdoctor.probes import icmp

    async def no_socket(*args: object) -> icmp.PingResult:
        raise icmp.Unavailable("not permitted")

    monkeypatch.setattr(icmp, "_socket_pings", no_socket)
    ctx = _ctx(ProbeOptions("127.0.0.1", icmp_count=1, timeout=1.0))
    events = [e async for e in IcmpProbe().run(ctx)]
    done = events[-1]
    assert isinstance(done, StepFinished)
    if shutil.which("ping") is not None and done.status is not StepStatus.UNAVAILABLE:
        assert done.status is StepStatus.OK, done.summary
        assert done.details["method"] == "system-ping" and done.details["received"] == 1

    async def no_ping(*args: object) -> icmp.PingResult:
        raise icmp.Unavailable("no ping command")

    monkeypatch.setattr(icmp, "_system_ping", no_ping)
    ctx = _ctx(ProbeOptions("127.0.0.1", icmp_count=1, timeout=1.0))
    events = [e async for e in IcmpProbe().run(ctx)]
    done = events[-1]
    assert isinstance(done, StepFinished) and done.status is StepStatus.UNAVAILABLE
    finding = next(e for e in events
                   if isinstance(e, FindingRaised) and e.code == "icmp.unavailable")
    assert isinstance(finding, FindingRaised) and "not permitted" in str(finding.data["reason"])
