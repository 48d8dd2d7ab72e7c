"""The record of one probe run: what every face renders and every export is written from.

A ``Session`` is plain data with a JSON round-trip (``to_json``/``from_json``) carrying a schema
name and version. Frames keep their raw bytes; their decode (spans) is recomputed from the bytes
with the codec when a view needs it, so the stored summary/findings are a cache, not the truth.
Secrets never enter a Session: credential sets are stored by name and mechanism only.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from dlmsdoctor.events import CloseHow, Direction, StepStatus

SCHEMA = "dlmsdoctor.session"
SCHEMA_VERSION = 2  # 2: link fields, kind, frame answers/late, RECOVERED; 1 still reads


_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")


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
    summary: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)  # codec Finding.to_json()
    answers: int | None = None  # index of the request frame this answers (FrameReceived)
    late: bool = False  # it came after the wait for that request had ended


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
    # The end that did not close first, when it closed too (tap: the other leg's far end;
    # capture: the other side's FIN or RST); closed_at/close_how are the first close.
    then_closed_at: float | None = None
    then_close_how: CloseHow | None = None
    relay_from: str = ""  # tap: its own "host:port" on its connection to the meter


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
    # probe, tap (a relayed poller), capture (read from a pcap/pcapng), browse (the TUI's
    # object browser: the engine's rungs to an association, then the reads the user asked for)
    kind: str = "probe"
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
        """A Session from a parsed JSON document, every field checked before use.

        Raises SessionFormatError naming the JSON path and what was expected
        (``frames[3].data: expected hex``); keys this version does not know are ignored."""
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise SessionFormatError("not a dlmsdoctor session document")
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SessionFormatError(f"version: expected a schema version number, found "
                                     f"{_shown(version)}")
        if version > SCHEMA_VERSION:
            raise SessionFormatError(
                f"session schema version {version} is newer than this dlmsdoctor understands "
                f"({SCHEMA_VERSION}); upgrade dlmsdoctor"
            )
        return _session_from_dict(doc)

    @classmethod
    def loads(cls, text: str) -> Session:
        try:
            doc = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise SessionFormatError(
                f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from exc
        except RecursionError:
            raise SessionFormatError("not a session: JSON nested too deeply") from None
        except _ConstantError as exc:
            raise SessionFormatError(str(exc)) from None
        except ValueError:  # Python's own limit: an integer of more than 4300 digits
            raise SessionFormatError("not a session: a number with thousands of digits") from None
        return cls.from_json(doc)


class _ConstantError(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _ConstantError(f"not valid JSON: {name} is not a number JSON allows")


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _session_from_dict(doc: dict[str, Any]) -> Session:
    session = _build(Session, doc, "")
    assert isinstance(session, Session)
    return session


# --------------------------------------------------------------------------- typed reading
# Each field is read by its annotation: a damaged document gives one line naming the path
# and what was expected, never a Python message ("Evidence() argument after ** must be a
# mapping") or a crash later, in a rule or a report, when a time turns out to be a string.

_INT_RANGE = (-(2**63), 2**63 - 1)
_FIELD_RANGES = {  # fields whose values outside these ranges no reader, report or pcapng takes
    "port": (0, 65535), "local_port": (0, 65535), "index": (0, 2**31 - 1),
    "conn_id": (0, 2**31 - 1), "ident": (0, 65535), "seq": (0, 65535),
    "client_sap": (0, 2**31 - 1), "frame": (0, 2**31 - 1), "answers": (0, 2**31 - 1),
}
# Fields with a default for new records that a saved record must still carry.
_ALWAYS_SAVED: dict[type, frozenset[str]] = {StepRecord: frozenset({"status"})}
_FLOAT_LIMIT = 1e12  # seconds or any measure: beyond it a value is damage, not a measurement
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string" if len(value) > 24 else json.dumps(value)
    return "a number"


def _build(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise SessionFormatError(f"{path or 'document'}: expected an object, found "
                                 f"{_shown(value)}")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        where = f"{path}.{f.name}" if path else f.name
        if f.name not in value:
            required = f.default is dataclasses.MISSING and (
                f.default_factory is dataclasses.MISSING)
            if required or f.name in _ALWAYS_SAVED.get(cls, ()):
                raise SessionFormatError(f"{where}: missing")
            continue
        kwargs[f.name] = _read(hints[f.name], value[f.name], where, f.name)
    return cls(**kwargs)


def _read(hint: Any, value: Any, path: str, name: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        if len(options) == 1:
            return _read(options[0], value, path, name)
        raise SessionFormatError(f"{path}: unexpected value")  # no such field today
    if origin is list:
        if not isinstance(value, list):
            raise SessionFormatError(f"{path}: expected a list, found {_shown(value)}")
        (item,) = typing.get_args(hint)
        return [_read(item, v, f"{path}[{i}]", name) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SessionFormatError(f"{path}: expected an object, found {_shown(value)}")
        return value
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value, path)
    if isinstance(hint, type) and issubclass(hint, Enum):
        allowed = [m.value for m in hint]
        if value not in allowed:
            raise SessionFormatError(f"{path}: expected one of {', '.join(allowed)}, found "
                                     f"{_shown(value)}")
        return hint(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise SessionFormatError(f"{path}: expected true or false, found {_shown(value)}")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise SessionFormatError(f"{path}: expected an integer, found {_shown(value)}")
        low, high = _FIELD_RANGES.get(name, _INT_RANGE)
        if not low <= value <= high:
            raise SessionFormatError(f"{path}: expected an integer from {low} to {high}")
        return value
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise SessionFormatError(f"{path}: expected a number, found {_shown(value)}")
        if not math.isfinite(value) or abs(value) > _FLOAT_LIMIT:
            raise SessionFormatError(f"{path}: expected a number of sensible size")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SessionFormatError(f"{path}: expected a string, found {_shown(value)}")
        return value
    if hint is bytes:
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            raise SessionFormatError(f"{path}: expected hex, found {_shown(value)}")
        return bytes.fromhex(value)
    raise SessionFormatError(f"{path}: cannot be read")  # a field type this reader lacks
