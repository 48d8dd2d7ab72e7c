"""Events in, Session out: the recorder every run feeds.

Frames are decoded with the codec as they are recorded (kind, summary, codec findings) so that
faces and exports need no second pass; the raw bytes stay the truth (session.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

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
    """``data`` (a frame we sent) with every secret byte of its APDU (the LLS password, keys)
    replaced by ``*`` and the HDLC FCS recomputed; and how many bytes were masked.

    Secrets never enter a Session (session.py): the masked frame still decodes, and shows
    where the secret was."""
    from dlmsdoctor.codec.apdu import decode_apdu
    from dlmsdoctor.codec.crc import crc_bytes
    from dlmsdoctor.codec.hdlc import LLC_TO_SERVER, parse_hdlc
    from dlmsdoctor.codec.secrets import secret_offsets

    if data[:2] == b"\x00\x01" and len(data) > 8:
        start, is_hdlc = 8, False
    elif data[:1] == b"\x7e":
        fields = parse_hdlc(data, 0, "tx").fields
        info, length = fields.get("info_offset"), fields.get("info_length")
        if not isinstance(info, int) or not isinstance(length, int) or length <= 3:
            return data, 0
        start = info + (3 if data[info : info + 3] == LLC_TO_SERVER else 0)
        is_hdlc = True
    else:
        return data, 0
    apdu = data[start : len(data) - (3 if is_hdlc else 0)]
    hidden = secret_offsets(decode_apdu(apdu, base_offset=start).spans)
    if not hidden:
        return data, 0
    out = bytearray(data)
    for pos in hidden:
        if pos < len(out):
            out[pos] = 0x2A
    if is_hdlc:
        out[-3:-1] = crc_bytes(out[1:-3])
    return bytes(out), len(hidden)


class Recorder:
    def __init__(self, options: ProbeOptions, *, wall: datetime | None = None,
                 keep_secrets: bool = False) -> None:
        self.keep_secrets = keep_secrets
        self.wall_start = wall or datetime.now(UTC)
        self.last_tx: dict[int, bytes] = {}
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

    def add(self, event: Event) -> None:
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
            data, masked = event.data, 0
            if direction is Direction.TX and not self.keep_secrets:
                data, masked = mask_secrets(event.data)
            record = FrameRecord(len(s.frames), event.conn_id, direction, event.at, data,
                                 event.step_id)
            if isinstance(event, FrameReceived):
                record.answers, record.late = event.answers, event.late
            if direction is Direction.TX:
                self.last_tx[event.conn_id] = event.data
            decoded = decode_frame(event.data, direction,
                                   None if direction is Direction.TX
                                   else self.last_tx.get(event.conn_id))
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
            s.logins.append(LoginRecord(event.step_id, event.at, event.credential,
                                        event.client_sap, event.mechanism, event.outcome,
                                        event.diagnostic))

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
