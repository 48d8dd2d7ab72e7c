"""Events in, Session out: the recorder every run feeds.

Frames are decoded with the codec as they are recorded (kind, summary, codec findings) so that
faces and exports need no second pass; the raw bytes stay the truth (session.py).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dlmsdoctor import __version__
from dlmsdoctor.codec.model import DecodedFrame
from dlmsdoctor.events import (
    ConnectionClosed,
    ConnectionFailed,
    ConnectionOpened,
    Direction,
    Event,
    FindingRaised,
    FrameReceived,
    FrameSent,
    LoginAttempted,
    PingReplied,
    PingSent,
    StepFinished,
    StepStarted,
    StepStatus,
)
from dlmsdoctor.session import (
    ConnectionRecord,
    FrameRecord,
    LoginRecord,
    PingRecord,
    ProbeFinding,
    Session,
    StepRecord,
    Target,
)

if TYPE_CHECKING:
    from dlmsdoctor.engine import ProbeOptions
    from dlmsdoctor.probes.base import Facts


def decode_frame(data: bytes, direction: Direction, sent: bytes | None = None
                 ) -> DecodedFrame | None:
    """The codec's view of one recorded chunk (the first frame in it), or None if none.

    ``sent``: the last frame sent on that connection, so that an echo is told as one (the
    probes' own splitter saw it the same way when it arrived)."""
    from dlmsdoctor.codec.stream import split_stream

    chunks = split_stream(data, sent=sent if sent == data else None,
                          direction=direction.value)
    return chunks[0] if chunks else None


def mask_secrets(data: bytes) -> tuple[bytes, int]:
    """``data`` (one whole frame) with every secret byte of its APDU (the LLS password, keys)
    replaced by ``*`` and the HDLC FCS recomputed; and how many bytes were masked.

    A frame judged alone: an AARQ split over HDLC segments needs ``FrameMasker``, which follows
    the segments of each connection."""
    masker = FrameMasker()
    out, count = masker.mask(data, "tx")
    return out, count


class FrameMasker:
    """Secret bytes masked by meaning in every recorded frame, whatever the segmentation: the
    AARQ is followed across the HDLC segments of each connection and direction
    (``codec.secrets.SecretTracker``), and a whole frame we sent also has its APDU decoded and
    its secret spans masked. Received frames go through the tracker too: an echoing optical
    head or RS-485 adapter sends our AARQ back."""

    def __init__(self) -> None:
        from dlmsdoctor.codec.secrets import SecretTracker

        self.tracker = SecretTracker()

    def mask(self, data: bytes, direction: str, stream: object = None,
             frame: DecodedFrame | None = None) -> tuple[bytes, int]:
        """``data`` masked and the count of bytes masked. ``frame``: the codec's decode of
        ``data`` (offset 0) when the caller has it."""
        from dlmsdoctor.codec.model import FrameKind
        from dlmsdoctor.codec.secrets import mask_frame_bytes

        if frame is None or frame.kind not in (FrameKind.HDLC, FrameKind.WRAPPER):
            frame = decode_frame(data, Direction(direction if direction != "echo" else "tx"))
        if frame is None or frame.offset != 0 or frame.kind not in (FrameKind.HDLC,
                                                                    FrameKind.WRAPPER):
            return data, 0
        hidden = set(self.tracker.offsets(frame, (stream, direction)))
        if direction != "rx":
            hidden |= _decoded_secrets(frame)
        if not hidden:
            return data, 0
        return mask_frame_bytes(data, hidden), len(hidden)


def _decoded_secrets(frame: DecodedFrame) -> set[int]:
    """Secret offsets the APDU decoder marks in one frame holding a whole APDU."""
    from dlmsdoctor.codec.apdu import decode_apdu
    from dlmsdoctor.codec.hdlc import LLC_TO_CLIENT, LLC_TO_SERVER
    from dlmsdoctor.codec.model import FrameKind
    from dlmsdoctor.codec.secrets import secret_offsets

    data = frame.data
    if frame.kind is FrameKind.WRAPPER:
        start, end = 8, len(data)
    else:
        fields = frame.fields
        info, length = fields.get("info_offset"), fields.get("info_length")
        if (fields.get("segmented") or not isinstance(info, int) or not isinstance(length, int)
                or data[info : info + 3] not in (LLC_TO_SERVER, LLC_TO_CLIENT)):
            return set()  # a segment: the tracker follows those
        start, end = info + 3, info + length
    if end <= start:
        return set()
    return set(secret_offsets(decode_apdu(data[start:end], base_offset=start).spans))


def known_secrets(options: ProbeOptions) -> list[str | bytes]:
    """The secrets of a run's credential sets, for scrubbing free text (a safety net behind the
    masking by meaning); too short ones are left out: "1" would hide every digit."""
    out: list[str | bytes] = []
    for cred in options.credentials:
        if cred.password and len(cred.password) >= 4:
            out.append(cred.password)
        for key in (cred.block_cipher_key, cred.authentication_key):
            if key:
                try:
                    out.append(bytes.fromhex(key))
                except ValueError:
                    out.append(key)
    return out


class Recorder:
    def __init__(self, options: ProbeOptions, *, wall: datetime | None = None,
                 keep_secrets: bool = False) -> None:
        self.keep_secrets = keep_secrets
        self.wall_start = wall or datetime.now(UTC)
        self.last_tx: dict[int, bytes] = {}
        self.masker = FrameMasker()
        self.last_tx_raw: dict[int, bytes] = {}  # what went out, for telling an echo
        self._masked = 0  # bytes masked in the frame event being recorded
        # (bytes, sent, decode) of that frame, when masking left it as it was
        self._decoded: tuple[bytes, bytes | None, DecodedFrame | None] | None = None
        self.secrets = known_secrets(options)
        self.session = Session(
            id=uuid.uuid4().hex,
            tool_version=__version__,
            started_at=self.wall_start.isoformat(timespec="milliseconds"),
            target=Target(
                host=options.host,
                port=options.port,
                framing=options.framing,
                server_address=(None if options.server_address is None
                                else str(options.server_address)),
                address_size=options.address_size,
                serial_number=options.serial_number,
                link=options.link,
                device=options.host if options.link != "tcp" else None,
                baud=options.baud if options.link != "tcp" else None,
                serial_format=options.serial_format if options.link != "tcp" else None,
            ),
            settings=options.describe(),
        )

    def add(self, event: Event) -> Event:
        """Record ``event``; returns it as faces may show it (secrets masked)."""
        if self.keep_secrets:
            self._add(event)
            return event
        shown = self._scrub(event)
        self._add(shown)
        return shown

    def _scrub(self, event: Event) -> Event:
        if isinstance(event, FrameSent | FrameReceived):
            direction = "tx" if isinstance(event, FrameSent) else "rx"
            data, self._masked = self._mask(event.data, direction, event.conn_id)
            if direction == "tx":
                self.last_tx_raw[event.conn_id] = event.data
            return event if data is event.data else dataclasses.replace(event, data=data)
        if not self.secrets:
            return event
        if isinstance(event, FindingRaised):
            return dataclasses.replace(event, message=self._text(event.message),
                                       data=self._value(event.data))
        if isinstance(event, StepFinished):
            return dataclasses.replace(event, summary=self._text(event.summary),
                                       details=self._value(event.details))
        return event

    def _mask(self, data: bytes, direction: str, conn_id: int) -> tuple[bytes, int]:
        from dlmsdoctor.codec.model import FrameKind

        sent = self.last_tx_raw.get(conn_id) if direction == "rx" else None
        decoded = decode_frame(data, Direction(direction), sent)
        if direction == "rx" and decoded is not None and decoded.kind is FrameKind.ECHO:
            direction = "echo"  # our own frame sent back: masked as it was when it went out
        masked, count = self.masker.mask(data, direction, conn_id, decoded)
        if self.secrets:
            masked = self._bytes(masked)
        self._decoded = (masked, sent, decoded) if masked is data else None
        return masked, count

    def _bytes(self, data: bytes) -> bytes:
        from dlmsdoctor.codec.secrets import mask_frame_bytes

        hidden: set[int] = set()
        for secret in self.secrets:
            raw = secret.encode() if isinstance(secret, str) else secret
            start = data.find(raw)
            while start >= 0:
                hidden.update(range(start, start + len(raw)))
                start = data.find(raw, start + 1)
        return mask_frame_bytes(data, hidden) if hidden else data

    def _text(self, text: str) -> str:
        from dlmsdoctor.codec.secrets import mask_text

        return mask_text(text, self.secrets)

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, dict):
            return {k: self._value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._value(v) for v in value)
        return value

    def _add(self, event: Event) -> None:
        s = self.session
        if isinstance(event, StepStarted):
            step = s.step(event.step_id)
            if step is None:
                s.steps.append(StepRecord(event.step_id, event.title, event.layer,
                                          StepStatus.RUNNING, event.at))
            else:  # a step re-run (should not happen): keep the first start
                step.status = StepStatus.RUNNING
        elif isinstance(event, StepFinished):
            step = s.step(event.step_id)
            if step is None:
                step = StepRecord(event.step_id, event.step_id, "", started=event.at)
                s.steps.append(step)
            step.status = event.status
            step.finished = event.at
            step.summary = event.summary
            step.details = dict(event.details)
        elif isinstance(event, FrameSent | FrameReceived):
            direction = Direction.TX if isinstance(event, FrameSent) else Direction.RX
            data = event.data
            masked, self._masked = self._masked, 0
            record = FrameRecord(len(s.frames), event.conn_id, direction, event.at, data,
                                 event.step_id)
            if isinstance(event, FrameReceived):
                record.answers, record.late = event.answers, event.late
            if direction is Direction.TX:
                self.last_tx[event.conn_id] = data
            sent = None if direction is Direction.TX else self.last_tx.get(event.conn_id)
            known, self._decoded = self._decoded, None
            if known is not None and known[0] is data and known[1] == sent:
                decoded = known[2]  # decoded once already while masking: the same bytes
            else:
                decoded = decode_frame(data, direction, sent)
            if decoded is not None:
                record.kind = decoded.kind.value
                record.summary = decoded.summary
                record.findings = [f.to_json() for f in decoded.findings]
            if masked:
                record.findings.append({
                    "code": "session.secret_masked", "severity": "info", "offset": 0,
                    "length": len(data), "field": "apdu",
                    "message": f"{masked} secret byte(s) replaced by '*' (FCS recomputed); "
                               "secrets never enter a session"})
            s.frames.append(record)
        elif isinstance(event, ConnectionOpened):
            s.connections.append(ConnectionRecord(
                event.conn_id, event.host, event.port, event.at, event.connect_time,
                local_port=event.local_port, link=event.link, client=event.client))
        elif isinstance(event, ConnectionFailed):
            s.connections.append(ConnectionRecord(
                event.conn_id, event.host, event.port, failed=event.reason, note=event.message))
        elif isinstance(event, ConnectionClosed):
            conn = s.connection(event.conn_id)
            if conn is not None and conn.closed_at is None:
                conn.closed_at = event.at
                conn.close_how = event.how
                conn.closed_by_peer = event.by_peer
                conn.bytes_dropped = event.bytes_dropped
                if event.note:
                    conn.note = event.note
        elif isinstance(event, PingSent):
            s.pings.append(PingRecord(event.at, event.ident, event.seq, event.payload))
        elif isinstance(event, PingReplied):
            for ping in s.pings:
                if ping.ident == event.ident and ping.seq == event.seq and ping.rtt is None:
                    ping.reply_at = event.at
                    ping.rtt = event.rtt
                    break
        elif isinstance(event, FindingRaised):
            s.findings.append(ProbeFinding(event.step_id, event.code, event.severity.value,
                                           event.message, event.at, list(event.frames),
                                           dict(event.data)))
        elif isinstance(event, LoginAttempted):
            login = LoginRecord(event.step_id, event.at, event.credential, event.client_sap,
                                event.mechanism, event.outcome, event.diagnostic)
            earlier = next((i for i, x in enumerate(s.logins) if event.settles
                            and x.step_id == event.step_id and x.outcome == "no-answer"), None)
            if earlier is None:
                s.logins.append(login)
            else:  # the late AARE settles that login: one login, what the meter answered
                login.at = s.logins[earlier].at
                s.logins[earlier] = login

    def finish(self, facts: Facts, at: float) -> Session:
        s = self.session
        s.duration = at
        s.finished_at = (self.wall_start + timedelta(seconds=at)).isoformat(
            timespec="milliseconds")
        s.identity = dict(facts.identity)
        s.settings["facts"] = facts.as_json()
        s.settings["stopped_reason"] = facts.stop_reason
        s.cancelled = facts.stop_reason == "cancelled"
        return s
