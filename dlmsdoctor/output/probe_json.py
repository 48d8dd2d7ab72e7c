"""What `dlmsdoctor probe --json` prints (one document) and `--jsonl` streams (one event a line).

Both carry a schema name and version; scripts depend on them: add keys, never rename or remove
one without bumping the version. Frame bytes are masked (passwords in AARQs, keys) unless the
caller asks for secrets; the masking is the report writer's (``report_frames.annotate``), so the
JSON, the reports and the capture hide the same bytes.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dlmsdoctor.codec.model import hexs
from dlmsdoctor.diagnosis.profile import profile_forms
from dlmsdoctor.diagnosis.verdict import is_note
from dlmsdoctor.events import Direction, Event, FrameReceived, FrameSent
from dlmsdoctor.output.report_frames import annotate
from dlmsdoctor.session import Diagnosis, FrameRecord, Session

PROBE_SCHEMA = "dlmsdoctor.probe"
PROBE_SCHEMA_VERSION = 1
EVENTS_SCHEMA = "dlmsdoctor.probe-events"
EVENTS_SCHEMA_VERSION = 1


def _r(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def frame_doc(frame: FrameRecord, show_secrets: bool = False) -> dict[str, Any]:
    note = annotate(frame, show_secrets=show_secrets)
    return {
        "index": frame.index,
        "conn": frame.conn_id,
        "direction": frame.direction.value,
        "at": _r(frame.at),
        "step": frame.step_id,
        "kind": note.kind,
        "hex": hexs(note.data),
        "length": len(frame.data),
        "masked_bytes": note.secret_count,
        "summary": note.summary,
        "findings": list(frame.findings),
    }


def diagnosis_doc(diagnosis: Diagnosis | None) -> dict[str, Any] | None:
    if diagnosis is None:
        return None
    return {
        "status": diagnosis.status,
        "headline": diagnosis.headline,
        "causes": [
            # "note": an observation, not a fault (listed after the faults, never the verdict)
            {"rank": rank, "note": is_note(cause), **asdict(cause)}
            for rank, cause in enumerate(diagnosis.causes, 1)
        ],
    }


def profile_doc(diagnosis: Diagnosis | None) -> dict[str, Any] | None:
    if diagnosis is None or diagnosis.profile is None:
        return None
    return {**asdict(diagnosis.profile), "forms": profile_forms(diagnosis.profile)}


def probe_document(
    session: Session,
    *,
    exit_code: int | None = None,
    saved: str | None = None,
    show_secrets: bool = False,
) -> dict[str, Any]:
    """The one `--json` document."""
    return {
        "schema": PROBE_SCHEMA,
        "version": PROBE_SCHEMA_VERSION,
        "tool_version": session.tool_version,
        "session_id": session.id,
        "started_at": session.started_at,
        "finished_at": session.finished_at,
        "duration": _r(session.duration),
        "cancelled": session.cancelled,
        "stopped_reason": session.settings.get("stopped_reason"),
        "target": asdict(session.target),
        # effective options and negotiated facts; credential sets by name only (no secrets)
        "settings": session.settings,
        "steps": [
            {
                "id": s.id,
                "title": s.title,
                "layer": s.layer,
                "status": s.status.value,
                "started": _r(s.started),
                "finished": _r(s.finished),
                "duration": _r(s.duration),
                "summary": s.summary,
                "details": s.details,
            }
            for s in session.steps
        ],
        "connections": [
            {
                "id": c.id,
                "host": c.host,
                "port": c.port,
                "opened_at": _r(c.opened_at),
                "connect_time": _r(c.connect_time),
                "failed": c.failed,
                "closed_at": _r(c.closed_at),
                "close_how": c.close_how.value if c.close_how else None,
                "closed_by_peer": c.closed_by_peer,
            }
            for c in session.connections
        ],
        "frames": [frame_doc(f, show_secrets) for f in session.frames],
        "findings": [asdict(f) for f in session.findings],
        "logins": [asdict(x) for x in session.logins],
        "identity": session.identity,
        "diagnosis": diagnosis_doc(session.diagnosis),
        "profile": profile_doc(session.diagnosis),
        "exit_code": exit_code,
        "saved": saved,
    }


# -- the event stream ---------------------------------------------------------------------------


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _line(event: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"schema": EVENTS_SCHEMA, "version": EVENTS_SCHEMA_VERSION, "event": event, **body}


def event_line(event: Event, show_secrets: bool = False) -> dict[str, Any]:
    """One `--jsonl` record for an engine event; frame bytes masked like in the document."""
    body: dict[str, Any] = {}
    for key, value in asdict(event).items():
        if isinstance(value, bytes):
            value = value.hex()
        elif hasattr(value, "value"):  # StrEnum
            value = value.value
        body[key] = value
    if isinstance(event, FrameSent | FrameReceived):
        direction = Direction.TX if isinstance(event, FrameSent) else Direction.RX
        record = FrameRecord(-1, event.conn_id, direction, event.at, event.data, event.step_id)
        doc = frame_doc(record, show_secrets)
        body.pop("data", None)
        body.update(
            hex=doc["hex"],
            summary=doc["summary"],
            kind=doc["kind"],
            masked_bytes=doc["masked_bytes"],
        )
    return _line(_snake(type(event).__name__), body)


def run_started_line(target: dict[str, Any]) -> dict[str, Any]:
    return _line("run_started", {"target": target})


def run_finished_line(
    session: Session, *, exit_code: int | None = None, saved: str | None = None
) -> dict[str, Any]:
    return _line(
        "run_finished",
        {
            "session_id": session.id,
            "duration": _r(session.duration),
            "cancelled": session.cancelled,
            "diagnosis": diagnosis_doc(session.diagnosis),
            "profile": profile_doc(session.diagnosis),
            "exit_code": exit_code,
            "saved": saved,
        },
    )
