"""Rules for the ICMP and TCP rungs (DOMAIN.md section 3, first rows)."""

from __future__ import annotations

from dlmsdoctor.diagnosis.facts import SessionFacts
from dlmsdoctor.diagnosis.registry import cause, ev_finding, ev_step, later, now, rule
from dlmsdoctor.session import Cause, Evidence


@rule(benign=("icmp.filtered",))
def icmp_filtered(f: SessionFacts) -> list[Cause]:
    """Ping fails but TCP connects: ICMP is filtered on the way; not a fault."""
    if f.pings_sent == 0 or f.pings_answered > 0 or not f.tcp_connected:
        return []
    evidence = [ev_step("icmp.ping", f"{f.pings_sent} echo requests, no reply")]
    evidence += [ev_finding(pf) for pf in f.findings("icmp.no_reply")]
    evidence.append(ev_step("tcp.connect", "TCP connected all the same"))
    return [
        cause(
            "icmp.filtered",
            "Ping gets no reply, but TCP works: ICMP is filtered (not a fault)",
            0.9,
            "network",
            "Many mobile networks and firewalls drop ICMP echo. The TCP connection proves the "
            "host is reachable, so the missing ping replies say nothing about the meter.",
            evidence,
            [later("Judge reachability by the TCP result, not by ping.")],
        )
    ]


def _tcp_failure(f: SessionFacts, reason: str) -> tuple[list[Evidence], bool]:
    failures = [c for c in f.connect_failures if c.failed == reason]
    findings = f.findings(f"tcp.{reason}")
    if (not failures and not findings) or f.tcp_connected:
        return [], False
    evidence = [ev_finding(pf) for pf in findings]
    if not evidence:
        evidence = [ev_step("tcp.connect", f"connection {reason}") for _ in failures[:1]]
    return evidence, True


@rule("tcp.refused")
def tcp_refused(f: SessionFacts) -> list[Cause]:
    evidence, hit = _tcp_failure(f, "refused")
    if not hit:
        return []
    host_up = f.pings_answered > 0
    port = f.session.target.port
    explanation = (
        f"The host answered the connection attempt to port {port} with a reset: it is up, but "
        "nothing listens on that port. Either the port is wrong (meters use 4059, bridges and "
        "modems often 3333, 4001, 10001...) or the DLMS service or bridge is not running."
    )
    if host_up:
        evidence.append(ev_step("icmp.ping", "the host answers ping"))
    return [
        cause(
            "tcp.refused",
            f"Connection refused on port {port}: wrong port, or the service is down",
            0.85,
            "unknown",
            explanation,
            evidence,
            [
                now("Check the port number in the meter's or modem's configuration."),
                now("If a serial-to-TCP bridge sits in front, check that it runs (ser2net)."),
            ],
        )
    ]


@rule("tcp.timeout")
def tcp_timeout(f: SessionFacts) -> list[Cause]:
    evidence, hit = _tcp_failure(f, "timeout")
    if not hit:
        return []
    if f.pings_answered > 0:
        evidence.append(ev_step("icmp.ping", "the host answers ping"))
        return [
            cause(
                "tcp.timeout",
                "TCP connection times out although the host answers ping: a firewall drops it",
                0.75,
                "network",
                "The host is reachable (ping), but nothing comes back to the TCP SYN: a firewall "
                "or the modem's port forwarding drops connections to this port.",
                evidence,
                [
                    now("Check the firewall and the modem's port forwarding for this port."),
                    later("Compare with a connection from inside the meter's network."),
                ],
            )
        ]
    return [
        cause(
            "tcp.timeout",
            "TCP connection times out: the meter's modem or the route to it is down",
            0.8,
            "network",
            "Neither ping nor TCP get an answer: the modem may be offline (no signal, APN, "
            "no data plan), the address may be wrong, or routing/VPN to it is broken.",
            evidence,
            [
                now("Check the modem: power, signal, APN and that it holds this IP address."),
                now("Trace the route (traceroute) and check the VPN to the meter network."),
            ],
        )
    ]


@rule("tcp.unreachable", "tcp.dns")
def tcp_unreachable(f: SessionFacts) -> list[Cause]:
    out = []
    evidence, hit = _tcp_failure(f, "unreachable")
    if hit:
        out.append(
            cause(
                "tcp.unreachable",
                "No route to the meter's address",
                0.85,
                "network",
                "The network (or this computer) reports the address as unreachable: no route, "
                "VPN down, or the wrong address.",
                evidence,
                [now("Check the address and this computer's route/VPN to the meter network.")],
            )
        )
    evidence, hit = _tcp_failure(f, "dns")
    if hit:
        out.append(
            cause(
                "tcp.dns",
                f"The name {f.session.target.host!r} does not resolve",
                0.95,
                "client",
                "The host name given could not be turned into an address.",
                evidence,
                [now("Check the spelling, or use the meter's IP address.")],
            )
        )
    return out
