"""What a tap says, as plain lines (console, TUI log) and as JSON (``--json``, ``--jsonl``).

One module writes the words, so the console, the JSON documents and the TUI say the same. No
rich here: the CLI prints these lines as they are (no colour codes in pipes).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dlmsdoctor.events import (
    ConnectionClosed,
    ConnectionFailed,
    ConnectionOpened,
    Event,
    FindingRaised,
    FrameReceived,
    FrameSent,
)
from dlmsdoctor.session import Session

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
             ("meter" if c.closed_by_peer else "poller"), "note": c.note}
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
