"""Rules for what a serial-to-TCP bridge (or a non-DLMS peer) says instead of the meter.

ser2net wording and meaning: see dlmsdoctor/codec/text.py (cminyard/ser2net dataxfer.c).
"""

from __future__ import annotations

from dlmsdoctor.codec.model import FrameKind
from dlmsdoctor.diagnosis.facts import FrameFacts, SessionFacts
from dlmsdoctor.diagnosis.registry import cause, ev_finding, ev_frame, later, now, rule
from dlmsdoctor.session import Cause, Evidence

# A retry opened this soon after the busy close counts as "the engine's retry".
RETRY_WINDOW_S = 5.0


def _text(frame: FrameFacts) -> str:
    return frame.record.data.decode("latin-1", "replace").strip()


@rule("bridge.busy", benign=("bridge.teardown_busy",))
def bridge_busy(f: SessionFacts) -> list[Cause]:
    """`Port already in use`: the bridge's single connection is taken (seed report's story)."""
    frames = [x for x in f.frames_with_code("stream.bridge.busy", tx=False)]
    findings = f.findings("bridge.busy")
    if not frames and not findings:
        return []
    # Through: a later connection, opened soon after the busy one closed, reached the meter
    # (the engine's single retry after busy_retry_wait, docs/probes.md safety rule 6).
    busy_conns = {x.record.conn_id for x in frames}
    last_busy = max(
        (c for c in f.connections if c.id in busy_conns), key=lambda c: c.id, default=None
    )
    later_ok: list[FrameFacts] = []
    if last_busy is not None:
        end = last_busy.record.closed_at or max(x.at for x in frames)
        later_ok = [
            x
            for x in f.dlms_answers
            if x.record.conn_id > last_busy.id and x.at - end <= RETRY_WINDOW_S
        ] or [
            x
            for c in f.opened
            if c.id > last_busy.id
            and c.record.opened_at is not None
            and c.record.opened_at - end <= RETRY_WINDOW_S
            and not any("stream.bridge" in code for y in c.rx for code in y.codes)
            for x in c.frames[:1]
        ]
    if any(pf.data.get("after_retry") is False for pf in findings) and not later_ok:
        later_ok = [x for x in f.dlms_answers if x.record.conn_id not in busy_conns][:1]
    still_busy_after_retry = any(pf.data.get("after_retry") for pf in findings)
    evidence: list[Evidence] = [
        ev_frame(x, f"the bridge wrote {_text(x)!r} and closed") for x in frames[:3]
    ]
    evidence += [ev_finding(pf) for pf in findings[:2]]
    if later_ok and not still_busy_after_retry:
        evidence.append(ev_frame(later_ok[0], "a connection a moment later got through"))
        return [
            cause(
                "bridge.teardown_busy",
                "The bridge was busy at first, then let us through (not a fault)",
                0.7,
                "bridge",
                "ser2net answers 'Port already in use' while it tears down the previous "
                "connection (a fraction of a second after a client disconnects), or while "
                "another client finishes. A connection a moment later got through.",
                evidence,
                [later("Let your client wait about a second before reconnecting to a bridge.")],
            )
        ]
    for conn in f.connections:
        if any(x.record.conn_id == conn.id for x in frames) and conn.closed_by_peer:
            evidence.append(
                Evidence(note=f"connection {conn.id} closed by the bridge", step="tcp.connect")
            )
            break
    return [
        cause(
            "bridge.busy",
            "Another client holds the bridge's only connection, most likely your own poller",
            0.92,
            "poller",
            "The serial-to-TCP bridge (ser2net) answered 'Port already in use' and closed the "
            "connection: it accepts one client at a time and one is connected, still after a "
            "retry. Your frames never reached the meter, so nothing here says the meter is "
            "locked or misconfigured. The usual holder is the site's own polling service, "
            "which keeps its connection open (or reconnects in a loop).",
            evidence,
            [
                now(
                    "Pause or stop the other client (your polling service, SCADA, another "
                    "laptop) and run the probe again."
                ),
                now(
                    "Do not power-cycle the meter or conclude it is locked: the bridge refused "
                    "the connection, not the meter."
                ),
                later(
                    "Give diagnostics a turn: schedule polling windows, or give the bridge a "
                    "second port for maintenance access."
                ),
            ],
        )
    ]


_OTHER_BRIDGE = {
    "stream.bridge.device_busy": "another ser2net port on the same serial device is in use",
    "stream.bridge.device_error": "the bridge cannot open its serial device",
    "stream.bridge.denied": "the bridge refused this client's address",
    "stream.bridge.port_state": "the bridge port is disabled or shutting down",
    "stream.bridge.no_free_port": "the bridge had no free port",
}


@rule("bridge.serial_error", "bridge.kicked")
def bridge_other(f: SessionFacts) -> list[Cause]:
    out: list[Cause] = []
    kicked = f.frames_with_code("stream.bridge.kicked", tx=False)
    if kicked:
        out.append(
            cause(
                "bridge.kicked",
                "Another client took the bridge's connection over from us",
                0.85,
                "poller",
                "ser2net wrote 'kicked off, new user is coming': its port is set to let a new "
                "connection take over the old one, and another client connected meanwhile.",
                [ev_frame(x, f"bridge: {_text(x)!r}") for x in kicked[:2]],
                [now("Stop the other client (often the poller) while diagnosing.")],
            )
        )
    frames = [x for code in _OTHER_BRIDGE for x in f.frames_with_code(code, tx=False)]
    if frames:
        first = frames[0]
        what = next(v for k, v in _OTHER_BRIDGE.items() if k in first.codes)
        out.append(
            cause(
                "bridge.serial_error",
                f"The serial-to-TCP bridge reports a problem: {what}",
                0.85,
                "bridge",
                f"The bridge wrote {_text(first)!r} instead of passing bytes to the meter. The "
                "problem is on the bridge's serial side, not in DLMS.",
                [ev_frame(x, f"bridge: {_text(x)!r}") for x in frames[:3]],
                [
                    now("Check the bridge: serial device name, cable, USB adapter, its log."),
                    now("Stop any other client of the same serial device."),
                ],
            )
        )
    return out


@rule("bridge.telnet")
def bridge_telnet(f: SessionFacts) -> list[Cause]:
    frames = f.frames_with_code("stream.telnet", tx=False)
    findings = f.findings("bridge.telnet")
    if not frames and not findings:
        return []
    evidence = [ev_frame(x, "telnet negotiation bytes (IAC ...)") for x in frames[:2]]
    evidence += [ev_finding(pf) for pf in findings[:1]]
    return [
        cause(
            "bridge.telnet",
            "The bridge speaks telnet (RFC 2217) instead of passing raw bytes",
            0.85,
            "bridge",
            "The bridge sent telnet option negotiation (FF FB / FF FD ...). A DLMS client expects "
            "a raw byte pipe; the negotiation bytes corrupt the first frames and 0xFF bytes in "
            "frames get doubled.",
            evidence,
            [now("Set the bridge port to raw mode (ser2net: 'raw' / no telnet option).")],
        )
    ]


@rule("meter.iec62056_21")
def iec62056_21(f: SessionFacts) -> list[Cause]:
    if f.session.target.link == "optical":
        return []  # the mode E handshake itself: rules_serial judges it
    frames = f.frames_with_code("stream.iec62056_21", tx=False)
    findings = f.findings("meter.iec62056_21")
    if not frames and not findings:
        return []
    evidence = [ev_frame(x, f"IEC 62056-21 text {_text(x)[:40]!r}") for x in frames[:2]]
    evidence += [ev_finding(pf) for pf in findings[:1]]
    return [
        cause(
            "meter.iec62056_21",
            "The port speaks IEC 62056-21 (mode A-E text), not DLMS",
            0.85,
            "meter",
            "The answer is an IEC 62056-21 identification or readout ('/XXX5...'). The meter "
            "(or its optical port) expects the mode E handshake before it switches to HDLC, "
            "or DLMS is served on another port.",
            evidence,
            [
                now(
                    "Use the meter's DLMS port, or a client that does the IEC 62056-21 mode E "
                    "handshake first."
                ),
                later("Check in the meter's settings which protocol each port serves."),
            ],
        )
    ]


@rule("link.echo")
def local_echo(f: SessionFacts) -> list[Cause]:
    frames = [
        x for x in f.frames if not x.tx and (x.kind == FrameKind.ECHO or "stream.echo" in x.codes)
    ]
    findings = f.findings("link.echo")
    if not frames and not findings:
        return []
    evidence = [ev_frame(x, "our own bytes came back") for x in frames[:2]]
    evidence += [ev_finding(pf) for pf in findings[:1]]
    answered = bool(f.dlms_answers)
    return [
        cause(
            "link.echo",
            "Every byte we send comes back (local echo)",
            0.6 if answered else 0.85,
            "bridge",
            "The interface echoes what it transmits: typical of optical heads and half-duplex "
            "RS-485 converters. Clients that do not expect it read their own request as the "
            "answer and fail." + (" The meter answered after the echo." if answered else ""),
            evidence,
            [
                now("Turn echo off on the converter, or enable echo suppression in the client."),
            ],
        )
    ]
