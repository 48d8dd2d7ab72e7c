"""What a tap says, as plain lines (console, TUI log) and as JSON (``--json``, ``--jsonl``).

One module writes the words, so the console, the JSON documents and the TUI say the same. No
rich here: the CLI prints these lines as they are (no colour codes in pipes).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dlmsdoctor.events import (
    CloseHow,
    ConnectionClosed,
    ConnectionFailed,
    ConnectionOpened,
    Event,
    FindingRaised,
    FrameReceived,
    FrameSent,
)
from dlmsdoctor.session import ConnectionRecord, Session

TAP_SCHEMA = "dlmsdoctor.tap"
TAP_SCHEMA_VERSION = 1
TAP_EVENTS_SCHEMA = "dlmsdoctor.tap-events"
TAP_EVENTS_SCHEMA_VERSION = 1
_MARK = {"error": "✗", "warning": "!", "info": "·"}
_SERVICES_ORDER = ("SNRM", "AARQ", "GET", "SET", "ACTION", "RR", "I", "RLRQ", "DISC")


def service_order(name: str) -> tuple[int, str]:
    """Services in the order a poll goes: SNRM, AARQ, GET, ..., RLRQ, DISC."""
    return (_SERVICES_ORDER.index(name) if name in _SERVICES_ORDER else 99, name)


def _t(at: float) -> str:
    return f"t+{at:8.3f}s"


def event_text(event: Event, *, frames: bool = False) -> str | None:
    """One console line for an event, or None for events the console does not show."""
    if isinstance(event, ConnectionOpened):
        return (f"{_t(event.at)}  conn {event.conn_id}: poller {event.client} -> "
                f"{_hp(event.host, event.port)} connected in {event.connect_time * 1000:.1f} ms")
    if isinstance(event, ConnectionFailed):
        return (f"{_t(event.at)}  conn {event.conn_id}: cannot reach {_hp(event.host, event.port)}"
                f" ({event.reason}: {event.message})")
    if isinstance(event, ConnectionClosed):
        return f"{_t(event.at)}  conn {event.conn_id}: closed, {event.note}"
    if isinstance(event, FindingRaised):
        mark = _MARK.get(event.severity.value, "-")
        cite = f" [frames {', '.join(f'#{i}' for i in event.frames)}]" if event.frames else ""
        return f"{_t(event.at)}  {mark} {event.code}: {event.message}{cite}"
    if frames and isinstance(event, FrameSent | FrameReceived):
        arrow = "poller -> meter" if isinstance(event, FrameSent) else "meter -> poller"
        return f"{_t(event.at)}  conn {event.conn_id}: {arrow} {len(event.data)} bytes"
    return None


def _hp(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --------------------------------------------------------------------------- the two legs
# A relayed connection is two TCP connections: the poller's to the tap (leg "poller") and the
# tap's own to the meter side (leg "meter"). The tap passes each close on to the other leg at
# once (FIN as FIN, RST as RST), so a leg ends by its far end's own close or by the tap passing
# on the other end's. The ConnectionRecord holds the first close (closed_at, close_how,
# closed_by_peer), the other end's (then_closed_at, then_close_how) and the tap's own address
# toward the meter (relay_from); ``legs`` reads both legs back from them.

def _close(by: str, how: str, at: float | None, **more: Any) -> dict[str, Any]:
    return {"by": by, "how": how, "at": at, **more}


def legs(conn: ConnectionRecord, listen: str, target: str) -> list[dict[str, Any]]:
    """The poller's leg and the meter's leg of a relayed connection: their ends, when each
    opened, and every close on it in time order (``by`` poller, meter or tap; ``how`` fin or
    rst; ``passed_on`` when the tap passed on the other end's close; ``stopped`` when the tap
    closed it because it stopped)."""
    poller: dict[str, Any] = {"leg": "poller", "from": conn.client or "?", "to": listen or "?",
                              "opened_at": conn.opened_at, "closes": []}
    meter: dict[str, Any] = {"leg": "meter", "from": conn.relay_from or "?", "to": target,
                             "opened_at": None, "connect_time": conn.connect_time,
                             "closes": []}
    if conn.failed:  # the tap closes the poller's leg the way a dead target would
        meter["failed"] = conn.failed
        how = "fin" if conn.failed == "timeout" else "rst"
        poller["closes"].append(_close("tap", how, conn.closed_at, passed_on="meter"))
        return [poller, meter]
    if conn.opened_at is not None and conn.connect_time is not None:
        meter["opened_at"] = round(conn.opened_at + conn.connect_time, 6)
    first_how = conn.close_how
    if first_how is CloseHow.LOCAL:  # the tap stopped with the connection open
        for leg in (poller, meter):
            leg["closes"].append(_close("tap", "fin", conn.closed_at, stopped=True))
        return [poller, meter]
    if first_how is None or conn.closed_at is None:
        return [poller, meter]  # still open
    first = "meter" if conn.closed_by_peer else "poller"
    other = "poller" if first == "meter" else "meter"
    by_leg = {"poller": poller, "meter": meter}
    how = "rst" if first_how is CloseHow.RST else "fin"
    by_leg[first]["closes"].append(_close(first, how, conn.closed_at))
    by_leg[other]["closes"].append(_close("tap", how, conn.closed_at, passed_on=first))
    if conn.then_closed_at is not None and conn.then_close_how is not None:
        then = "rst" if conn.then_close_how is CloseHow.RST else "fin"
        by_leg[other]["closes"].append(_close(other, then, conn.then_closed_at))
        by_leg[first]["closes"].append(_close("tap", then, conn.then_closed_at,
                                              passed_on=other))
    return [poller, meter]


_WHO = {"poller": "the poller", "meter": "the meter side", "tap": "the tap"}


def leg_lines(conn: ConnectionRecord, listen: str, target: str) -> list[str]:
    """Two lines, one per leg: its ends, when it opened and how it closed (``open``)."""
    out = []
    for leg in legs(conn, listen, target):
        name = "poller leg" if leg["leg"] == "poller" else "meter leg "
        text = f"{name}  {leg['from']} -> {leg['to']}"
        if leg.get("failed"):
            text += f"  could not connect ({leg['failed']})"
        elif leg["opened_at"] is not None:
            verb = "accepted" if leg["leg"] == "poller" else "connected"
            text += f"  {verb} t+{leg['opened_at']:.3f} s"
            if leg["leg"] == "meter" and isinstance(leg.get("connect_time"), int | float):
                text += f" in {leg['connect_time'] * 1000:.1f} ms"
        closes = []
        for c in leg["closes"]:
            at = "" if c["at"] is None else f" t+{c['at']:.3f} s"
            why = (", tap stopped" if c.get("stopped") else
                   f", passing on {_WHO[c['passed_on']]}'s" if c.get("passed_on") else "")
            closes.append(f"{_WHO[c['by']]} {c['how'].upper()}{at}{why}")
        text += "  closed: " + ("; ".join(closes) if closes else "still open")
        out.append(text)
    return out


def _ms(seconds: object) -> str:
    return f"{float(seconds) * 1000:.1f} ms" if isinstance(seconds, int | float) else "-"


def summary_lines(session: Session, saved: str | None = None) -> list[str]:
    """The end of a run: the diagnosis, the meter side's figures, where things were written."""
    tap = session.settings.get("tap", {})
    lines = [""]
    diag = session.diagnosis
    if diag is not None:
        lines.append(f"Diagnosis: {diag.status.upper()}: {diag.headline}")
        for rank, cause in enumerate(diag.causes, 1):
            frames = sorted({e.frame for e in cause.evidence if e.frame is not None})
            cite = f" [frames {', '.join(f'#{i}' for i in frames[:6])}]" if frames else ""
            lines.append(f"  {rank}. {cause.title} ({cause.whose}, confidence "
                         f"{cause.confidence:.0%}){cite}")
            lines.append(f"     {cause.explanation}")
            for action in cause.actions:
                lines.append(f"     -> {action.text}")
    frames = tap.get("frames", {})
    lines.append("")
    lines.append(f"Relayed: {tap.get('connections', 0)} connection(s), "
                 f"{frames.get('poller', 0)} frame(s) poller -> meter, "
                 f"{frames.get('meter', 0)} meter -> poller "
                 f"({tap.get('frames_total', 0)} recorded, {session.duration or 0:.1f} s)")
    times = tap.get("answer_times", {})
    if times:
        lines.append("Meter answer times (p50 / p90 / p99 / max, count, late):")
        for name in sorted(times, key=service_order):
            t = times[name]
            lines.append(f"  {name:<7} {_ms(t.get('p50'))} / {_ms(t.get('p90'))} / "
                         f"{_ms(t.get('p99'))} / {_ms(t.get('max'))}, {t.get('count', 0)}, "
                         f"{t.get('late', 0)} late")
    refusals = tap.get("refusals", {})
    if refusals:
        lines.append("Meter refusals: " + "; ".join(f"{k} x{v}" for k, v in refusals.items()))
    negotiated = tap.get("negotiated", {})
    if negotiated:
        lines.append("Negotiated: " + ", ".join(f"{k}={v}" for k, v in negotiated.items()
                                                 if not isinstance(v, list)))
    if saved:
        lines.append(f"Session saved: {saved}")
    return lines


def tap_document(session: Session, *, exit_code: int | None = None, saved: str | None = None,
                 show_secrets: bool = False) -> dict[str, Any]:
    """The one ``--json`` document (schema ``dlmsdoctor.tap``)."""
    from dlmsdoctor.output.probe_json import diagnosis_doc, frame_doc

    tap = session.settings.get("tap", {})
    return {
        "schema": TAP_SCHEMA,
        "version": TAP_SCHEMA_VERSION,
        "tool_version": session.tool_version,
        "session_id": session.id,
        "started_at": session.started_at,
        "finished_at": session.finished_at,
        "duration": session.duration,
        "stopped_reason": session.settings.get("stopped_reason"),
        "listen": session.settings.get("listen"),
        "target": _hp(session.target.host, session.target.port),
        "connections": [
            {"id": c.id, "client": c.client, "opened_at": c.opened_at,
             "connect_time": c.connect_time, "failed": c.failed, "closed_at": c.closed_at,
             "close_how": c.close_how.value if c.close_how else None,
             "closed_by": None if c.closed_by_peer is None else
             ("meter" if c.closed_by_peer else "poller"), "note": c.note,
             "legs": legs(c, str(session.settings.get("listen") or ""),
                          _hp(session.target.host, session.target.port))}
            for c in session.connections
        ],
        "findings": [asdict(f) for f in session.findings],
        "diagnosis": diagnosis_doc(session.diagnosis),
        "meter": {
            "answer_times": tap.get("answer_times", {}),
            "refusals": tap.get("refusals", {}),
            "negotiated": tap.get("negotiated", {}),
        },
        "counts": {k: tap.get(k) for k in ("connections", "failed_connections", "frames",
                                           "bytes", "logins", "frames_total", "frames_kept")},
        "frames_file": session.settings.get("frames_file"),
        "frames": [frame_doc(f, show_secrets) for f in session.frames],
        "exit_code": exit_code,
        "saved": saved,
    }


def event_doc(event: Event) -> dict[str, Any]:
    """One ``--jsonl`` line: the probe's event line under the tap's events schema."""
    from dlmsdoctor.output.probe_json import event_line

    doc = event_line(event)
    doc["schema"], doc["version"] = TAP_EVENTS_SCHEMA, TAP_EVENTS_SCHEMA_VERSION
    return doc


def line_doc(event: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"schema": TAP_EVENTS_SCHEMA, "version": TAP_EVENTS_SCHEMA_VERSION, "event": event,
            **body}
