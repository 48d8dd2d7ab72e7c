"""The record of one probe run: what every face renders and every export is written from.

A ``Session`` is plain data with a JSON round-trip (``to_json``/``from_json``) carrying a schema
name and version. Frames keep their raw bytes; their decode (spans) is recomputed from the bytes
with the codec when a view needs it, so the stored summary/findings are a cache, not the truth.
Secrets never enter a Session: credential sets are stored by name and mechanism only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from dlmsdoctor.events import CloseHow, Direction, StepStatus

SCHEMA = "dlmsdoctor.session"
SCHEMA_VERSION = 2  # 2: link fields, kind, frame answers/late, RECOVERED; 1 still reads


class SessionFormatError(ValueError):
    """A session document that cannot be read (wrong schema, newer version, broken JSON)."""


def format_host_port(host: str, port: int) -> str:
    """HOST:PORT as users type it, IPv6 addresses in brackets (``[::1]:4059``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(slots=True)
class Target:
    host: str
    port: int
    framing: str = "auto"  # auto, hdlc, wrapper
    server_address: str | None = None  # "LOGICAL/PHYSICAL" as the user gave it
    address_size: int | None = None
    serial_number: str | None = None
    link: str = "tcp"  # tcp, serial, optical, rfc2217
    device: str | None = None  # /dev/ttyUSB0, COM3, rfc2217://host:port
    baud: str | None = None  # "auto" or a rate, as asked; the rate that answered is in steps
    serial_format: str | None = None  # 8N1, 7E1, ...


@dataclass(slots=True)
class FrameRecord:
    index: int
    conn_id: int
    direction: Direction
    at: float  # seconds since the run started
    data: bytes
    step_id: str = ""
    kind: str = ""  # FrameKind value: hdlc, wrapper, bridge-message, ...
    answers: int | None = None  # index of the request frame this answers (FrameReceived)
    late: bool = False  # it came after the wait for that request had ended
    summary: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)  # codec Finding.to_json()


@dataclass(slots=True)
class StepRecord:
    id: str
    title: str
    layer: str
    status: StepStatus = StepStatus.PENDING
    started: float | None = None
    finished: float | None = None
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass(slots=True)
class ConnectionRecord:
    id: int
    host: str
    port: int
    opened_at: float | None = None
    connect_time: float | None = None
    failed: str | None = None  # refused, timeout, unreachable, ...
    closed_at: float | None = None
    close_how: CloseHow | None = None
    closed_by_peer: bool | None = None
    local_port: int = 0
    note: str = ""
    link: str = "tcp"
    client: str = ""  # tap: the poller's "host:port"
    bytes_dropped: int = 0  # received bytes not kept (a flood past the per-connection cap)


@dataclass(slots=True)
class PingRecord:
    at: float
    ident: int
    seq: int
    payload: bytes
    reply_at: float | None = None
    rtt: float | None = None


@dataclass(slots=True)
class ProbeFinding:
    step_id: str
    code: str
    severity: str
    message: str
    at: float
    frames: list[int] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class LoginRecord:
    step_id: str
    at: float
    credential: str
    client_sap: int
    mechanism: str
    outcome: str
    diagnostic: str = ""


@dataclass(slots=True)
class Evidence:
    """Why a cause is believed: a frame, a step or a probe finding, with a short note."""

    note: str
    frame: int | None = None
    step: str | None = None
    finding: str | None = None


@dataclass(slots=True)
class Action:
    text: str
    when: str = "now"  # now, later


@dataclass(slots=True)
class Cause:
    code: str  # stable, e.g. "bridge.busy", "hdlc.wrong_address", "auth.wrong_password"
    title: str  # plain words
    confidence: float  # 0..1
    whose: str  # meter, bridge, network, client, poller, unknown
    explanation: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)


@dataclass(slots=True)
class ConnectionProfile:
    """Settings that were shown to work, ready to paste into a client's configuration."""

    host: str
    port: int
    framing: str  # hdlc, wrapper
    server_logical: int
    server_physical: int | None
    address_size: int
    client_sap: int
    authentication: str  # none, low, gmac
    credential: str | None = None  # credential set name (never the secret)
    max_info_tx: int | None = None
    max_info_rx: int | None = None
    window_tx: int | None = None
    window_rx: int | None = None
    max_pdu_size: int | None = None
    # serial links (issue 11): the line that worked; host/port then name the device and 0
    link: str = "tcp"
    device: str | None = None
    baud: int | None = None
    format: str | None = None  # 8N1, 7E1, ...
    mode: str | None = None  # optical: "E" (IEC 62056-21 mode E)
    identification: str | None = None  # optical: the meter's identification line


@dataclass(slots=True)
class Diagnosis:
    status: str  # "ok", "degraded", "failed": the one-word outcome
    headline: str  # one line: what is wrong, in plain words
    causes: list[Cause] = field(default_factory=list)
    profile: ConnectionProfile | None = None


@dataclass(slots=True)
class Session:
    id: str
    tool_version: str
    started_at: str  # ISO 8601 wall clock (UTC) at run time 0.0
    target: Target
    kind: str = "probe"  # probe, tap (a relayed poller), capture (read from a pcap/pcapng)
    settings: dict[str, Any] = field(default_factory=dict)  # timeouts, budgets, credential names
    finished_at: str | None = None
    duration: float | None = None
    steps: list[StepRecord] = field(default_factory=list)
    frames: list[FrameRecord] = field(default_factory=list)
    connections: list[ConnectionRecord] = field(default_factory=list)
    pings: list[PingRecord] = field(default_factory=list)
    findings: list[ProbeFinding] = field(default_factory=list)
    logins: list[LoginRecord] = field(default_factory=list)
    # logical device name, serial number, firmware, ...
    identity: dict[str, Any] = field(default_factory=dict)
    diagnosis: Diagnosis | None = None
    cancelled: bool = False

    # -- lookups faces need --------------------------------------------------------------
    def step(self, step_id: str) -> StepRecord | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def connection(self, conn_id: int) -> ConnectionRecord | None:
        return next((c for c in self.connections if c.id == conn_id), None)

    # -- JSON ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        doc = _encode(asdict(self))
        assert isinstance(doc, dict)
        return {"schema": SCHEMA, "version": SCHEMA_VERSION, **doc}

    def dumps(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_json(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, doc: Any) -> Session:
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise SessionFormatError("not a dlmsdoctor session document")
        version = doc.get("version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise SessionFormatError(
                f"session schema version {version!r} is newer than this dlmsdoctor understands "
                f"({SCHEMA_VERSION}); upgrade dlmsdoctor"
            )
        try:
            return _session_from_dict(doc)
        except (KeyError, TypeError, ValueError) as exc:
            raise SessionFormatError(f"session document is damaged: {exc}") from exc

    @classmethod
    def loads(cls, text: str) -> Session:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SessionFormatError(f"not valid JSON: {exc}") from exc
        return cls.from_json(doc)


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _session_from_dict(doc: dict[str, Any]) -> Session:
    diag = doc.get("diagnosis")
    diagnosis = None
    if diag is not None:
        profile = diag.get("profile")
        diagnosis = Diagnosis(
            status=diag["status"],
            headline=diag["headline"],
            causes=[
                Cause(
                    code=c["code"],
                    title=c["title"],
                    confidence=float(c["confidence"]),
                    whose=c["whose"],
                    explanation=c.get("explanation", ""),
                    evidence=[Evidence(**e) for e in c.get("evidence", [])],
                    actions=[Action(**a) for a in c.get("actions", [])],
                )
                for c in diag.get("causes", [])
            ],
            profile=ConnectionProfile(**profile) if profile else None,
        )
    return Session(
        id=doc["id"],
        tool_version=doc["tool_version"],
        started_at=doc["started_at"],
        target=Target(**doc["target"]),
        kind=doc.get("kind", "probe"),
        settings=doc.get("settings", {}),
        finished_at=doc.get("finished_at"),
        duration=doc.get("duration"),
        steps=[
            StepRecord(**{**s, "status": StepStatus(s["status"])}) for s in doc.get("steps", [])
        ],
        frames=[
            FrameRecord(
                **{**f, "direction": Direction(f["direction"]), "data": bytes.fromhex(f["data"])}
            )
            for f in doc.get("frames", [])
        ],
        connections=[
            ConnectionRecord(
                **{**c, "close_how": CloseHow(c["close_how"]) if c.get("close_how") else None}
            )
            for c in doc.get("connections", [])
        ],
        pings=[
            PingRecord(**{**p, "payload": bytes.fromhex(p["payload"])})
            for p in doc.get("pings", [])
        ],
        findings=[ProbeFinding(**f) for f in doc.get("findings", [])],
        logins=[LoginRecord(**x) for x in doc.get("logins", [])],
        identity=doc.get("identity", {}),
        diagnosis=diagnosis,
        cancelled=bool(doc.get("cancelled", False)),
    )
