"""A read-only index over a Session that the diagnosis rules query.

Rules should read like the table in DOMAIN.md section 3 ("closed right after the first frame, no
bytes back"), not like loops over frame lists: this module computes those facts once per session.
Frame decodes are recomputed from the raw bytes with the codec (the Session's stored summary and
findings are a cache), so a session loaded from an older file is judged by today's decoder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any

from dlmsdoctor.codec.hdlc import parse_hdlc
from dlmsdoctor.codec.model import FrameKind
from dlmsdoctor.codec.stream import split_stream
from dlmsdoctor.codec.wrapper import parse_wrapper
from dlmsdoctor.events import CloseHow, Direction, StepStatus
from dlmsdoctor.session import (
    ConnectionRecord,
    FrameRecord,
    LoginRecord,
    ProbeFinding,
    Session,
    StepRecord,
)

# APDU tags the rules care about (IEC 62056-5-3 / Green Book 9.5).
TAG_AARQ = 0x60
TAG_AARE = 0x61
TAG_RLRQ = 0x62
TAG_RLRE = 0x63

# "Right after": the peer closed within this many seconds of our frame. A meter that drops a frame
# it dislikes closes within milliseconds; allow for a slow GPRS link.
CLOSE_RIGHT_AFTER_S = 2.0
# "Idle": nothing sent or received for at least this long before the peer closed (meters use
# tens of seconds; the simulator's inactivity fault uses fractions of a second).
IDLE_CLOSE_S = 0.25

# A peer that closes an unused connection after at least this long (and after more than this
# many handshake round trips) runs an idle timer.
QUIET_CLOSE_MIN_S = 0.02
QUIET_CLOSE_RTTS = 3.0

# AARE result-source-diagnostic (acse-service-user) names -> numbers (IEC 62056-5-3, Green Book).
_DIAGNOSTIC_NAMES = {
    "no-reason-given": 1,
    "application-context-name-not-supported": 2,
    "calling-ap-title-not-recognized": 3,
    "authentication-mechanism-name-not-recognised": 11,
    "authentication-mechanism-name-not-recognized": 11,
    "authentication-mechanism-name-required": 12,
    "authentication-failure": 13,
    "authentication-failed": 13,
    "authentication-required": 14,
}


def diagnostic_number(value: object) -> int | None:
    """The AARE diagnostic as a number, from a number, a digit string or its ACSE name."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().lower().replace("_", "-").replace(" ", "-")
    if text.isdigit():
        return int(text)
    for name, number in _DIAGNOSTIC_NAMES.items():
        if text.startswith(name):
            return number
    return None


@dataclass(frozen=True, slots=True)
class FrameFacts:
    """What one recorded chunk of bytes was, as far as the rules need to know."""

    record: FrameRecord
    kind: str  # FrameKind value
    hdlc_type: str | None = None  # SNRM, UA, DM, FRMR, I, RR, DISC, ...
    server: dict[str, Any] | None = None  # the server-side address dict of an HDLC frame
    client_sap: int | None = None
    params: dict[str, Any] | None = None  # SNRM/UA negotiated parameters
    info_length: int = 0
    apdu_tag: int | None = None
    wports: tuple[int, int] | None = None  # wrapper (source, destination)
    codes: frozenset[str] = frozenset()  # every codec finding code
    errors: frozenset[str] = frozenset()  # codec finding codes of error severity

    @property
    def index(self) -> int:
        return self.record.index

    @property
    def at(self) -> float:
        return self.record.at

    @property
    def tx(self) -> bool:
        return self.record.direction is Direction.TX

    @property
    def is_dlms(self) -> bool:
        return self.kind in (FrameKind.HDLC, FrameKind.WRAPPER)

    def server_text(self) -> str:
        if not self.server:
            return "?"
        physical = self.server.get("physical")
        logical = self.server.get("logical")
        size = self.server.get("size")
        if physical is None:
            return f"{logical} ({size}-byte)"
        return f"{logical}/{physical} ({size}-byte)"


def _kind_of(record: FrameRecord) -> str:
    if record.kind:
        return record.kind
    data = record.data
    if data[:1] == b"\x7e":
        return FrameKind.HDLC.value
    if data[:2] == b"\x00\x01" and len(data) >= 8:
        return FrameKind.WRAPPER.value
    return FrameKind.GARBAGE.value


def frame_facts(record: FrameRecord) -> FrameFacts:
    """Decode one recorded frame with the codec (never raises: the codec does not).

    What the bytes say is cached by (bytes, direction, kind): a poller's capture repeats the
    same requests and answers thousands of times, and a large capture is decoded in a fraction
    of the time (``_decoded``). The record's own stored findings are added per record."""
    kind = _kind_of(record)
    stored = [f for f in record.findings if isinstance(f, dict)]
    # only frame-sized bytes are cached: the cache stays under 8192 x 2 KiB
    decode = _decoded if len(record.data) <= 2048 else _decoded.__wrapped__
    decoded = decode(record.data, record.direction.value, kind)
    codes, errors = decoded.codes, decoded.errors
    if stored:
        codes = codes | {str(f.get("code")) for f in stored}
        errors = errors | {str(f.get("code")) for f in stored if f.get("severity") == "error"}
    return FrameFacts(
        record=record, kind=kind, hdlc_type=decoded.hdlc_type, server=decoded.server,
        client_sap=decoded.client_sap, params=decoded.params, info_length=decoded.info_length,
        apdu_tag=decoded.apdu_tag, wports=decoded.wports, codes=codes, errors=errors)


@dataclass(frozen=True, slots=True)
class _Decoded:
    hdlc_type: str | None = None
    server: dict[str, Any] | None = None
    client_sap: int | None = None
    params: dict[str, Any] | None = None
    info_length: int = 0
    apdu_tag: int | None = None
    wports: tuple[int, int] | None = None
    codes: frozenset[str] = frozenset()
    errors: frozenset[str] = frozenset()


@lru_cache(maxsize=8192)
def _decoded(data: bytes, direction: str, kind: str) -> _Decoded:
    if kind in (FrameKind.HDLC, FrameKind.PARTIAL) and data[:1] == b"\x7e":
        frame = parse_hdlc(data, direction=direction)
        codes = frozenset(f.code for f in frame.findings)
        errors = frozenset(f.code for f in frame.findings if f.severity.value == "error")
        fields = frame.fields
        ftype = fields.get("frame_type")
        dest, src = fields.get("dest"), fields.get("src")
        server = dest if direction == Direction.TX.value else src
        client = src if direction == Direction.TX.value else dest
        info_offset = fields.get("info_offset")
        info_length = fields.get("info_length")
        apdu_tag = None
        if isinstance(info_offset, int) and isinstance(info_length, int) and info_length > 3:
            info = data[info_offset : info_offset + info_length]
            if info[:2] in (b"\xe6\xe6", b"\xe6\xe7"):
                apdu_tag = info[3] if len(info) > 3 else None
        params = fields.get("params")
        return _Decoded(
            hdlc_type=str(ftype) if ftype else None,
            server=server if isinstance(server, dict) else None,
            client_sap=client.get("sap") if isinstance(client, dict) else None,
            params=params if isinstance(params, dict) else None,
            info_length=info_length if isinstance(info_length, int) else 0,
            apdu_tag=apdu_tag, codes=codes, errors=errors)
    if kind == FrameKind.WRAPPER:
        frame = parse_wrapper(data)
        src_w, dst_w = frame.fields.get("src_wport"), frame.fields.get("dst_wport")
        wports = (src_w, dst_w) if isinstance(src_w, int) and isinstance(dst_w, int) else None
        return _Decoded(
            apdu_tag=data[8] if len(data) > 8 else None, info_length=max(0, len(data) - 8),
            wports=wports, codes=frozenset(f.code for f in frame.findings),
            errors=frozenset(f.code for f in frame.findings if f.severity.value == "error"))
    # text, telnet, garbage...: recognise again from the bytes (bridge messages and the like)
    codes_set: set[str] = set()
    errors_set: set[str] = set()
    for chunk in split_stream(data, direction=direction):
        codes_set |= {f.code for f in chunk.findings}
        errors_set |= {f.code for f in chunk.findings if f.severity.value == "error"}
    return _Decoded(codes=frozenset(codes_set), errors=frozenset(errors_set))


@dataclass(slots=True)
class ConnFacts:
    """One TCP connection: its frames in order and how and when it ended."""

    record: ConnectionRecord
    frames: list[FrameFacts] = field(default_factory=list)
    # built once from ``frames`` (rules ask per frame: recomputing made large captures
    # quadratic): the position of each frame, the tx and rx lists
    _index: _ConnIndex | None = field(default=None, repr=False, compare=False)

    @property
    def id(self) -> int:
        return self.record.id

    def _built(self) -> _ConnIndex:
        index = self._index
        if index is None or index.source is not self.frames or index.size != len(self.frames):
            index = self._index = _ConnIndex(self.frames)
        return index

    @property
    def tx(self) -> list[FrameFacts]:
        return self._built().tx

    @property
    def rx(self) -> list[FrameFacts]:
        # An echo of our own bytes is not an answer from the meter.
        return self._built().rx

    @property
    def unasked(self) -> list[FrameFacts]:
        """Bytes received before we sent anything on this connection."""
        first_tx = next((f for f in self.frames if f.tx), None)
        return [f for f in self.rx if first_tx is None or f.record.index < first_tx.record.index]

    @property
    def closed_by_peer(self) -> bool:
        return bool(self.record.closed_by_peer) and self.record.close_how in (
            CloseHow.FIN,
            CloseHow.RST,
        )

    def answered_after(self, frame: FrameFacts) -> list[FrameFacts]:
        """Frames received after ``frame`` and before our next transmission (indexed once:
        a rule asking for every frame of a long connection stays linear)."""
        index = self._built()
        pos = index.position.get(id(frame))
        if pos is None:
            return []
        out: list[FrameFacts] = []
        frames = self.frames
        for i in range(pos + 1, len(frames)):
            f = frames[i]
            if f.tx:
                break
            if f.kind != FrameKind.ECHO:
                out.append(f)
        return out

    @property
    def last_activity(self) -> float | None:
        times = [f.at for f in self.frames]
        if self.record.opened_at is not None:
            times.append(self.record.opened_at)
        return max(times) if times else None

    @property
    def closed_right_after_tx(self) -> FrameFacts | None:
        """Our last frame, when the peer closed shortly after it without a byte in between."""
        if not self.closed_by_peer or self.record.closed_at is None or not self.frames:
            return None
        last = self.frames[-1]
        if not last.tx:
            # an echo of our frame still counts as "no answer"
            non_echo = [f for f in self.frames if f.kind != FrameKind.ECHO]
            if not non_echo or not non_echo[-1].tx:
                return None
            last = non_echo[-1]
        if self.record.closed_at - last.at > CLOSE_RIGHT_AFTER_S:
            return None
        return last

    @property
    def idle_before_close(self) -> float | None:
        if not self.closed_by_peer or self.record.closed_at is None:
            return None
        last = self.last_activity
        return None if last is None else self.record.closed_at - last


class _ConnIndex:
    """What ConnFacts derives from its frame list, computed once per list."""

    __slots__ = ("position", "rx", "size", "source", "tx")

    def __init__(self, frames: list[FrameFacts]) -> None:
        self.source = frames
        self.size = len(frames)
        self.position = {id(f): i for i, f in enumerate(frames)}
        self.tx = [f for f in frames if f.tx]
        self.rx = [f for f in frames if not f.tx and f.kind != FrameKind.ECHO]


def _mark_echoes(frames: list[FrameFacts]) -> list[FrameFacts]:
    """An RX chunk equal to the TX just before it is a local echo (optical head, RS-485), even
    when the recorder decoded it as a frame: it never saw what we sent."""
    out: list[FrameFacts] = []
    last_tx: bytes | None = None
    for f in frames:
        if f.tx:
            last_tx = f.record.data
        elif last_tx is not None and f.kind != FrameKind.ECHO and f.record.data == last_tx:
            f = replace(f, kind=FrameKind.ECHO.value)
            last_tx = None
        else:
            last_tx = None
        out.append(f)
    return out


class SessionFacts:
    """The Session, indexed for rules. Cheap to build; decodes each frame once."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- frames and connections ------------------------------------------------------------
    @cached_property
    def frames(self) -> list[FrameFacts]:
        """Every frame in recording order (the same objects the connections hold)."""
        return sorted((f for c in self.connections for f in c.frames), key=lambda f: f.index)

    @cached_property
    def connections(self) -> list[ConnFacts]:
        by_id = {c.id: ConnFacts(c) for c in self.session.connections}
        for f in (frame_facts(r) for r in self.session.frames):
            conn = by_id.get(f.record.conn_id)
            if conn is None:  # a frame whose connection was not recorded: still evidence
                conn = by_id[f.record.conn_id] = ConnFacts(
                    ConnectionRecord(id=f.record.conn_id, host="", port=0)
                )
            conn.frames.append(f)
        for conn in by_id.values():
            conn.frames.sort(key=lambda f: (f.at, f.index))
            conn.frames = _mark_echoes(conn.frames)
        return sorted(by_id.values(), key=lambda c: c.id)

    @property
    def opened(self) -> list[ConnFacts]:
        return [c for c in self.connections if c.record.opened_at is not None]

    @cached_property
    def echoes(self) -> set[int]:
        return {f.index for c in self.connections for f in c.frames if f.kind == FrameKind.ECHO}

    def frames_with_code(self, prefix: str, *, tx: bool | None = None) -> list[FrameFacts]:
        """Frames carrying a codec finding whose code starts with ``prefix``."""
        return [
            f
            for f in self.frames
            if (tx is None or f.tx == tx) and any(c.startswith(prefix) for c in f.codes)
        ]

    def rx_of_type(self, hdlc_type: str) -> list[FrameFacts]:
        return [f for f in self.frames if not f.tx and f.hdlc_type == hdlc_type]

    def tx_of_type(self, hdlc_type: str) -> list[FrameFacts]:
        return [f for f in self.frames if f.tx and f.hdlc_type == hdlc_type]

    @cached_property
    def _conn_by_id(self) -> dict[int, ConnFacts]:
        return {c.id: c for c in self.connections}

    def conn_of(self, frame: FrameFacts) -> ConnFacts | None:
        return self._conn_by_id.get(frame.record.conn_id)

    def answers_to(self, frame: FrameFacts) -> list[FrameFacts]:
        conn = self.conn_of(frame)
        return [] if conn is None else conn.answered_after(frame)

    @cached_property
    def dlms_answers(self) -> list[FrameFacts]:
        """Received HDLC frames or wrapper PDUs that decoded cleanly: the meter spoke DLMS."""
        return [f for f in self.frames if not f.tx and f.is_dlms and not f.errors]

    def framing_answered(self, framing: str) -> bool:
        return any(f.kind == framing for f in self.dlms_answers)

    def framing_sent(self, framing: str) -> bool:
        return any(f.tx and f.kind == framing for f in self.frames)

    # -- idle timers ---------------------------------------------------------------------------
    @cached_property
    def quiet_closes(self) -> list[ConnFacts]:
        """Connections the peer closed after a while although no byte went either way: the
        peer runs an idle timer. A close within a few handshake round trips is a refusal at
        connect, not idleness."""
        out = []
        for c in self.connections:
            rec = c.record
            if not c.closed_by_peer or c.frames or rec.opened_at is None or rec.closed_at is None:
                continue
            floor = max(QUIET_CLOSE_MIN_S, QUIET_CLOSE_RTTS * (rec.connect_time or 0.0))
            if rec.closed_at - rec.opened_at >= floor:
                out.append(c)
        return out

    def closed_by_idle_timer(self, conn: ConnFacts) -> bool:
        """A close "right after our frame" that falls when the peer's idle timer (seen on a
        quiet close) runs out anyway."""
        rec = conn.record
        if not self.quiet_closes or rec.opened_at is None or rec.closed_at is None:
            return False
        timer = min(
            (c.record.closed_at or 0.0) - (c.record.opened_at or 0.0) for c in self.quiet_closes
        )
        lifetime = rec.closed_at - rec.opened_at
        return abs(lifetime - timer) <= max(0.05, timer * 0.3)

    # -- probe findings, steps, logins ------------------------------------------------------
    def findings(self, *codes: str) -> list[ProbeFinding]:
        """Probe findings with one of these exact codes (or ``prefix.*``)."""
        out = []
        for pf in self.session.findings:
            for code in codes:
                if pf.code == code or (code.endswith(".*") and pf.code.startswith(code[:-1])):
                    out.append(pf)
                    break
        return out

    def has(self, *codes: str) -> bool:
        return bool(self.findings(*codes))

    def steps(self, layer: str) -> list[StepRecord]:
        return [s for s in self.session.steps if s.layer == layer]

    def step_status(self, step_id: str) -> StepStatus | None:
        step = self.session.step(step_id)
        return None if step is None else step.status

    @property
    def logins(self) -> list[LoginRecord]:
        return list(self.session.logins)

    def rejected_logins(self, *diagnostics: int) -> list[LoginRecord]:
        out = []
        for login in self.session.logins:
            if login.outcome != "rejected":
                continue
            number = diagnostic_number(login.diagnostic)
            if not diagnostics or number in diagnostics:
                out.append(login)
        return out

    def rejections(self, *diagnostics: int) -> list[ProbeFinding]:
        """assoc.* rejection findings whose diagnostic is one of ``diagnostics``."""
        out = []
        for pf in self.findings(
            "assoc.rejected",
            "assoc.auth_failure",
            "assoc.mechanism_mismatch",
            "assoc.context_mismatch",
        ):
            number = diagnostic_number(pf.data.get("diagnostic"))
            if number is None:
                number = diagnostic_number(pf.data.get("diagnostic_text"))
            if not diagnostics or number in diagnostics:
                out.append(pf)
        return out

    # -- network ------------------------------------------------------------------------------
    @property
    def pings_sent(self) -> int:
        step = self.session.step("icmp.ping")
        if step is not None and isinstance(step.details.get("sent"), int):
            return int(step.details["sent"])
        return len(self.session.pings)

    @property
    def pings_answered(self) -> int:
        step = self.session.step("icmp.ping")
        if step is not None and isinstance(step.details.get("received"), int):
            return int(step.details["received"])
        return sum(1 for p in self.session.pings if p.reply_at is not None)

    @property
    def ping_rtt(self) -> float | None:
        step = self.session.step("icmp.ping")
        if step is not None:
            value = step.details.get("rtt_avg")
            if isinstance(value, int | float):
                return float(value)
        rtts = [p.rtt for p in self.session.pings if p.rtt is not None]
        return sum(rtts) / len(rtts) if rtts else None

    @property
    def tcp_connected(self) -> bool:
        return bool(self.opened)

    @property
    def connect_failures(self) -> list[ConnectionRecord]:
        return [c for c in self.session.connections if c.failed]

    @property
    def facts(self) -> dict[str, Any]:
        value = self.session.settings.get("facts")
        return value if isinstance(value, dict) else {}

    def ever(self, items: Iterable[object]) -> bool:
        return any(True for _ in items)
