"""Rung 1: ICMP echo. Loss and RTT min/avg/max.

Three ways, best first: a raw socket with scapy building and dissecting the packets (needs
CAP_NET_RAW), an unprivileged ICMP datagram socket (Linux ``ping_group_range``), the system
``ping``. When none can run the step is UNAVAILABLE: that is this machine's limit, not the meter's.
A meter behind a GPRS modem often drops ICMP: no reply is a warning, TCP decides.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import statistics
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from dlmsdoctor.codec.model import Severity
from dlmsdoctor.events import Event, PingReplied, PingSent, StepStatus
from dlmsdoctor.probes.base import Probe, ProbeContext

PAYLOAD = b"dlmsdoctor-ping!" * 2
INTERVAL = 0.2  # between echo requests; short, the ladder is waiting


@dataclass
class PingResult:
    method: str
    sent: int = 0
    rtts: list[float] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


class Unavailable(Exception):
    pass


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    """ICMP echo request (type 8) with its checksum (RFC 792)."""
    head = bytes((8, 0, 0, 0)) + ident.to_bytes(2, "big") + seq.to_bytes(2, "big")
    csum = _checksum(head + payload)
    return head[:2] + csum.to_bytes(2, "big") + head[4:] + payload


async def _socket_pings(ctx: ProbeContext, step_id: str, address: str, raw: bool) -> PingResult:
    kind = socket.SOCK_RAW if raw else socket.SOCK_DGRAM
    try:
        sock = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
    except OSError as exc:
        raise Unavailable(str(exc)) from None
    result = PingResult("raw-socket (scapy)" if raw else "icmp-datagram-socket")
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    ident = os.getpid() & 0xFFFF
    timeout = ctx.reply_timeout() if ctx.options.timeout < 2 else min(ctx.options.timeout, 2.0)
    try:
        for seq in range(1, ctx.options.icmp_count + 1):
            ctx.check_cancel()
            packet = _build(ident, seq, raw)
            sent_at = ctx.now()
            try:
                await loop.sock_sendto(sock, packet, (address, 0))
            except OSError as exc:
                raise Unavailable(f"send failed: {exc}") from None
            result.sent += 1
            result.events.append(PingSent(step_id, sent_at, ident, seq, PAYLOAD))
            reply = await _await_reply(ctx, loop, sock, ident, seq, raw, timeout)
            if reply is not None:
                rtt = reply - sent_at
                result.rtts.append(rtt)
                result.events.append(PingReplied(step_id, reply, ident, seq, PAYLOAD, rtt))
            if seq < ctx.options.icmp_count:
                await ctx.sleep(INTERVAL)
    finally:
        sock.close()
    return result


def _build(ident: int, seq: int, raw: bool) -> bytes:
    if raw:
        from scapy.layers.inet import ICMP  # lazy: scapy is slow to import

        return bytes(ICMP(type=8, id=ident, seq=seq) / PAYLOAD)
    return echo_request(ident, seq, PAYLOAD)


def _parse_reply(data: bytes, raw: bool) -> tuple[int, int, int] | None:
    """(type, id, seq) of a received ICMP message (raw sockets deliver the IP header too)."""
    if raw:
        from scapy.layers.inet import ICMP, IP

        try:
            pkt = IP(data)
        except Exception:
            return None
        if ICMP not in pkt:
            return None
        icmp = pkt[ICMP]
        return int(icmp.type), int(icmp.id), int(icmp.seq)
    if len(data) < 8:
        return None
    return data[0], int.from_bytes(data[4:6], "big"), int.from_bytes(data[6:8], "big")


async def _await_reply(
    ctx: ProbeContext, loop: asyncio.AbstractEventLoop, sock: socket.socket, ident: int,
    seq: int, raw: bool, timeout: float,
) -> float | None:
    deadline = ctx.now() + timeout
    while (left := deadline - ctx.now()) > 0:
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 2048), left)
        except TimeoutError:
            return None
        parsed = _parse_reply(data, raw)
        # Datagram sockets rewrite the id to the socket's port: match on seq there.
        if parsed and parsed[0] == 0 and parsed[2] == seq and (not raw or parsed[1] == ident):
            return ctx.now()
    return None


_PING_LINE = re.compile(rb"icmp_seq=(\d+).*?time[=<]([\d.]+)\s*ms")


async def _system_ping(ctx: ProbeContext, step_id: str, address: str) -> PingResult:
    exe = shutil.which("ping")
    if exe is None:
        raise Unavailable("no ping command")
    count = ctx.options.icmp_count
    wait = max(1, int(min(ctx.options.timeout, 5)))
    start = ctx.now()
    try:
        proc = await asyncio.create_subprocess_exec(
            exe, "-n", "-c", str(count), "-i", str(INTERVAL), "-W", str(wait), address,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), count * (wait + 1) + 2)
    except (OSError, TimeoutError) as exc:
        raise Unavailable(f"ping failed to run: {exc}") from None
    if proc.returncode not in (0, 1):
        raise Unavailable(err.decode(errors="replace").strip() or f"ping exit {proc.returncode}")
    result = PingResult("system-ping", sent=count)
    for match in _PING_LINE.finditer(out):
        seq, rtt = int(match.group(1)), float(match.group(2)) / 1000.0
        result.rtts.append(rtt)
        # times are approximate: the system ping does not tell when each request left
        at = start + (seq - 1) * INTERVAL
        result.events.append(PingSent(step_id, at, 0, seq, b""))
        result.events.append(PingReplied(step_id, at + rtt, 0, seq, b"", rtt))
    return result


async def _resolve(host: str) -> str | None:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, family=socket.AF_INET)
    except (socket.gaierror, UnicodeError):
        return None
    return str(infos[0][4][0]) if infos else None


class IcmpProbe(Probe):
    id = "icmp.ping"
    title = "ICMP echo (ping)"
    layer = "icmp"

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        return None if ctx.options.icmp else "turned off (--no-icmp)"

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        address = await _resolve(ctx.options.host)
        if address is None:
            yield ctx.finished(self.id, StepStatus.UNAVAILABLE,
                               "no IPv4 address for this host (ICMP not tried)",
                               reason="no-ipv4-address")
            return
        result: PingResult | None = None
        reasons = []
        for attempt in ("raw", "dgram", "system"):
            try:
                if attempt == "system":
                    result = await _system_ping(ctx, self.id, address)
                else:
                    result = await _socket_pings(ctx, self.id, address, attempt == "raw")
                break
            except Unavailable as exc:
                reasons.append(f"{attempt}: {exc}")
        if result is None:
            yield ctx.finding(self.id, "icmp.unavailable", Severity.INFO,
                              "ICMP cannot be sent from this machine (no raw socket, no "
                              "datagram ICMP socket, no ping); this says nothing about the meter",
                              reason="; ".join(reasons))
            yield ctx.finished(self.id, StepStatus.UNAVAILABLE, "ICMP not possible here",
                               reason="; ".join(reasons))
            return
        for event in result.events:
            yield event
        received = len(result.rtts)
        loss = 1.0 - received / result.sent if result.sent else 1.0
        details: dict[str, object] = {"sent": result.sent, "received": received,
                                      "loss": round(loss, 3), "method": result.method}
        if received:
            details.update(rtt_min=min(result.rtts), rtt_avg=statistics.fmean(result.rtts),
                           rtt_max=max(result.rtts))
            ctx.facts.rtt = statistics.fmean(result.rtts)
        if received == 0:
            yield ctx.finding(self.id, "icmp.no_reply", Severity.WARNING,
                              "No echo reply: ICMP may simply be filtered (common on GPRS); "
                              "the TCP rung decides", sent=result.sent)
            yield ctx.finished(self.id, StepStatus.WARNING,
                               f"no reply to {result.sent} pings", **details)
            return
        ms = [min(result.rtts) * 1000, statistics.fmean(result.rtts) * 1000,
              max(result.rtts) * 1000]
        summary = f"{received}/{result.sent} replies, rtt {ms[0]:.1f}/{ms[1]:.1f}/{ms[2]:.1f} ms"
        if received < result.sent:
            yield ctx.finding(self.id, "icmp.loss", Severity.WARNING,
                              f"{loss:.0%} of pings lost", sent=result.sent, received=received,
                              loss=round(loss, 3))
            yield ctx.finished(self.id, StepStatus.WARNING, summary, **details)
            return
        yield ctx.finished(self.id, StepStatus.OK, summary, **details)
