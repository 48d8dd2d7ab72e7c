"""The tap as one object: relay + decode + record + analyse, every face's single entry point.

``Tap`` listens, relays, and turns what it sees into the same events a probe yields
(``ConnectionOpened`` with ``client``, ``FrameSent`` = poller -> meter, ``FrameReceived`` = meter
-> poller, ``ConnectionClosed``, ``FindingRaised``) and into a ``Session`` of kind "tap". The CLI
and the TUI both call it; neither decodes anything of its own.

Bounded memory: every frame goes to a JSON-lines file as it is recorded (``frames_path``); the
Session in memory keeps the first ``keep_frames`` frames, every evidence frame and the last
``TAIL`` frames, with ``settings["tap"]["frames_file"]`` naming the file that has them all.
Secrets (the poller's LLS password in its AARQ) are masked in the session, the file and every
event unless ``show_secrets``; the relay itself forwards the bytes untouched, of course.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from dlmsdoctor import __version__
from dlmsdoctor.codec.hdlc import Reassembler
from dlmsdoctor.codec.model import DecodedFrame, FrameKind
from dlmsdoctor.codec.stream import StreamSplitter
from dlmsdoctor.events import (
    CloseHow,
    ConnectionClosed,
    ConnectionFailed,
    ConnectionOpened,
    Direction,
    Event,
    FindingRaised,
    FrameReceived,
    FrameSent,
)
from dlmsdoctor.session import (
    ConnectionRecord,
    FrameRecord,
    ProbeFinding,
    Session,
    Target,
    _encode,
)
from dlmsdoctor.tap.analysis import TapAnalyzer
from dlmsdoctor.tap.relay import METER, POLLER, Relay, RelayObserver

TAIL = 200  # last frames kept in memory besides the first ones and the evidence
DEFAULT_KEEP = 5000
SLICE = 4096  # bytes decoded at a time between socket events
BACKLOG_HIGH = 4 << 20  # relayed bytes waiting for decode: above this, reading pauses
BACKLOG_LOW = 1 << 20
KEEP_CONNECTIONS = 1000  # connection records in memory (all of them go to the frames file)
RECENT_CONNECTIONS = 50
STEP = "tap"


@dataclass(frozen=True, slots=True)
class TapOptions:
    listen_host: str
    listen_port: int
    target_host: str
    target_port: int
    connect_timeout: float = 10.0
    duration: float | None = None
    meter_address: tuple[int, int | None] | None = None  # LOGICAL/PHYSICAL the meter answers
    keep_frames: int = DEFAULT_KEEP
    show_secrets: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "listen": _hp(self.listen_host, self.listen_port),
            "target": _hp(self.target_host, self.target_port),
            "connect_timeout": self.connect_timeout,
            "duration": self.duration,
            "meter_address": (None if self.meter_address is None else
                              "/".join(str(x) for x in self.meter_address if x is not None)),
            "keep_frames": self.keep_frames,
        }


def _hp(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(slots=True)
class _Direction:
    splitter: StreamSplitter
    reassembler: Reassembler = field(default_factory=Reassembler)


class Tap(RelayObserver):
    """``tap = Tap(options, on_event=...)``; ``await tap.start()``; ... ``await tap.stop()``
    returns the Session (diagnosed)."""

    def __init__(self, options: TapOptions, *, on_event: Callable[[Event], None] | None = None,
                 frames_path: Path | None = None, wall: datetime | None = None,
                 on_record: Callable[[FrameRecord], None] | None = None,
                 vantage: str = "tap") -> None:
        """``on_record``: each FrameRecord as recorded (decoded, secrets masked), for a live
        frame list (the TUI). ``vantage``: "tap" (relaying, live) or "capture" (a recorded
        client's traffic replayed by ``tap.replay``; the findings then say what a capture
        shows, not what the tap did)."""
        self.options = options
        self.on_event = on_event
        self.on_record = on_record
        self.wall_start = wall or datetime.now(UTC)
        self.session = Session(
            id=uuid.uuid4().hex,
            tool_version=__version__,
            started_at=self.wall_start.isoformat(timespec="milliseconds"),
            target=Target(host=options.target_host, port=options.target_port),
            kind="tap",
            settings={**options.describe()},
        )
        self.relay = Relay(options.listen_host, options.listen_port, options.target_host,
                           options.target_port, self, connect_timeout=options.connect_timeout)
        self.analyzer = TapAnalyzer(self._finding, meter_address=options.meter_address,
                                    vantage=vantage)
        self.frames_path = frames_path
        self._file: IO[str] | None = None
        self._dirs: dict[tuple[int, str], _Direction] = {}
        self._conns: dict[int, ConnectionRecord] = {}
        self._recent_conns: deque[ConnectionRecord] = deque(maxlen=RECENT_CONNECTIONS)
        self.connection_count = 0
        self._first_close: dict[int, tuple[str, CloseHow, float]] = {}
        self._tail: deque[FrameRecord] = deque(maxlen=TAIL)
        self._kept: dict[int, FrameRecord] = {}
        self.frame_count = 0
        self.stopped_reason = ""
        self._stopped = False
        self._queue: deque[tuple[Callable[..., None], tuple[Any, ...], int]] = deque()
        self._backlog = 0
        self.internal_errors = 0
        self._paused = False
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.relay.port

    async def start(self) -> None:
        if self.frames_path is not None:
            self.frames_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._file = self.frames_path.open("w", encoding="utf-8")
            self.session.settings["frames_file"] = str(self.frames_path)
        await self.relay.start()
        self._worker = asyncio.ensure_future(self._work())
        self.session.settings["listen"] = _hp(self.options.listen_host, self.relay.port)

    async def run(self, cancel: asyncio.Event | None = None) -> Session:
        """Start, relay until ``cancel`` is set or the duration ends, stop; the Session."""
        await self.start()
        waiter = cancel or asyncio.Event()
        try:
            await asyncio.wait_for(waiter.wait(), self.options.duration)
            self.stopped_reason = "cancelled"
        except TimeoutError:
            self.stopped_reason = "duration"
        return await self.stop()

    async def stop(self, reason: str = "") -> Session:
        if not self._stopped:
            self._stopped = True
            await self.relay.stop()
            if self._worker is not None:
                self._worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._worker
        return self.finish(reason or self.stopped_reason or "stopped")

    def now(self) -> float:
        return self.relay.now()

    def _emit(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    # -- the relay's reports -----------------------------------------------------------------
    # The relay calls these from its protocol callbacks, right after forwarding. They only
    # queue the work: decoding runs in the worker task, a slice at a time between socket events,
    # so that a burst (or a flood of noise, slow to decode) never holds the next read back.
    # A backlog above BACKLOG_HIGH pauses reading until the worker catches up (BACKLOG_LOW).
    def accepted(self, conn: int, client: str, at: float) -> None:
        pass  # recorded when the target answers (opened) or not (failed)

    def opened(self, conn: int, client: str, at: float, connect_time: float,
               local: tuple[str, int]) -> None:
        self._enqueue(self._opened, (conn, client, at, connect_time, local))

    def failed(self, conn: int, client: str, at: float, reason: str, message: str,
               elapsed: float) -> None:
        self._enqueue(self._failed, (conn, client, at, reason, message, elapsed))

    def data(self, conn: int, side: str, at: float, data: bytes) -> None:
        for start in range(0, len(data), SLICE):
            piece = data[start : start + SLICE]
            self._enqueue(self._data, (conn, side, at, piece), len(piece))
        if self._backlog > BACKLOG_HIGH and not self._paused:
            self._paused = True
            self.relay.pause_reading()

    def closed(self, conn: int, side: str, at: float, how: CloseHow) -> None:
        self._enqueue(self._closed, (conn, side, at, how))

    def ended(self, conn: int, at: float) -> None:
        self._enqueue(self._ended, (conn, at))

    def gap(self, conn: int, at: float) -> None:
        """Not from the relay: a replayed capture kept only the ends of this connection."""
        self._enqueue(self._gap, (conn, at))

    def _enqueue(self, fn: Callable[..., None], args: tuple[Any, ...], size: int = 0) -> None:
        self._queue.append((fn, args, size))
        self._backlog += size
        self._wake.set()

    def _run_one(self) -> None:
        fn, args, size = self._queue.popleft()
        try:
            fn(*args)
        except Exception as exc:  # a bug of ours must not stop the recording (or the relay)
            self.internal_errors += 1
            if self.internal_errors <= 3:
                from dlmsdoctor.codec.model import Severity

                self._emit(FindingRaised(
                    STEP, "tap.internal_error", Severity.WARNING,
                    f"dlmsdoctor failed to analyse some relayed bytes ({type(exc).__name__}: "
                    f"{exc}); they were relayed unchanged. This is a dlmsdoctor bug, please "
                    "report it.", self.now()))
        self._backlog -= size
        if self._paused and self._backlog < BACKLOG_LOW:
            self._paused = False
            self.relay.resume_reading()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                self._run_one()
                await asyncio.sleep(0)  # socket events first

    def _drain_now(self) -> None:
        while self._queue:
            self._run_one()


    def _opened(self, conn: int, client: str, at: float, connect_time: float,
               local: tuple[str, int]) -> None:
        host, _, port = client.rpartition(":")
        record = ConnectionRecord(conn, self.options.target_host, self.options.target_port,
                                  at - connect_time, connect_time,
                                  local_port=int(port) if port.isdigit() else 0,
                                  client=client, relay_from=_hp(*local),
                                  note=f"relayed by the tap from {_hp(*local)}")
        self._conns[conn] = record
        self._keep_connection(record)
        # the capture draws the poller as the client end of each stream
        self.session.settings.setdefault("local_host", host.strip("[]"))
        self._dirs[(conn, POLLER)] = _Direction(StreamSplitter(direction="tx"))
        self._dirs[(conn, METER)] = _Direction(StreamSplitter(direction="rx"))
        self.analyzer.opened(conn, client, at - connect_time)
        self._emit(ConnectionOpened(conn, self.options.target_host, self.options.target_port,
                                    at - connect_time, connect_time, local_port=local[1],
                                    local_host=local[0], client=client))

    def _failed(self, conn: int, client: str, at: float, reason: str, message: str,
               elapsed: float) -> None:
        record = ConnectionRecord(conn, self.options.target_host, self.options.target_port,
                                  at - elapsed, failed=reason, closed_at=at, client=client,
                                  note=f"{message}; the poller's connection was "
                                  f"{'closed' if reason == 'timeout' else 'reset'} likewise")
        self._keep_connection(record)
        self._connection_done(record)
        self._emit(ConnectionFailed(conn, self.options.target_host, self.options.target_port,
                                    at, reason, message, elapsed))
        self.analyzer.failed(conn, client, at, reason, message)

    def _data(self, conn: int, side: str, at: float, data: bytes) -> None:
        direction = self._dirs.get((conn, side))
        if direction is None:
            return
        for chunk in direction.splitter.feed(data):
            self._chunk(conn, side, at, chunk, direction)

    def _closed(self, conn: int, side: str, at: float, how: CloseHow) -> None:
        direction = self._dirs.get((conn, side))
        if direction is not None:
            for chunk in direction.splitter.close():
                self._chunk(conn, side, at, chunk, direction)
        first = conn not in self._first_close
        if first:
            self._first_close[conn] = (side, how, at)
        self.analyzer.closed(conn, side, at, how)
        record = self._conns.get(conn)
        if record is None:
            return
        if first:
            by_peer = side == METER
            record.closed_at, record.close_how, record.closed_by_peer = at, how, by_peer
            self._emit(ConnectionClosed(conn, at, how, by_peer,
                                        note=f"the {side} closed first ({how.value.upper()})"))
        else:
            if record.then_closed_at is None and side != self._first_close[conn][0]:
                record.then_closed_at, record.then_close_how = at, how  # the other leg's end
            record.note += f"; the {side} closed ({how.value.upper()}) at t+{at:.3f} s"

    def _gap(self, conn: int, at: float) -> None:
        for side in (POLLER, METER):
            direction = self._dirs.get((conn, side))
            if direction is not None:  # a frame cut by the gap is not a frame: let it go
                direction.splitter = StreamSplitter(direction="tx" if side == POLLER else "rx")
                direction.reassembler.reset()
        self.analyzer.gap(conn)

    def _ended(self, conn: int, at: float) -> None:
        for side in (POLLER, METER):
            direction = self._dirs.pop((conn, side), None)
            if direction is not None:
                for chunk in direction.splitter.close():
                    self._chunk(conn, side, at, chunk, direction)
        record = self._conns.pop(conn, None)
        if record is not None and record.closed_at is None:
            record.closed_at, record.close_how, record.closed_by_peer = at, CloseHow.LOCAL, False
            self._emit(ConnectionClosed(conn, at, CloseHow.LOCAL, False,
                                        note="closed when the tap stopped"))
        if record is not None:
            self._connection_done(record)
        self.analyzer.ended(conn, at)

    def _keep_connection(self, record: ConnectionRecord) -> None:
        """A long run with a connection per poll keeps the first KEEP_CONNECTIONS records in
        memory and the last RECENT_CONNECTIONS (the file has them all)."""
        self.connection_count += 1
        if len(self.session.connections) < KEEP_CONNECTIONS:
            self.session.connections.append(record)

    def _connection_done(self, record: ConnectionRecord) -> None:
        if self._file is not None:
            self._file.write(json.dumps({"connection": _encode(asdict(record))},
                                        ensure_ascii=False) + "\n")
        if record not in self.session.connections:
            self._recent_conns.append(record)

    # -- one chunk ---------------------------------------------------------------------------
    def _chunk(self, conn: int, side: str, at: float, chunk: DecodedFrame,
               direction: _Direction) -> None:
        chunk = _as_frame(chunk, "tx" if side == POLLER else "rx")
        apdu_fields, apdu_summary = self._apdu(chunk, direction)
        index = self.frame_count
        self.frame_count += 1
        answers, late = self.analyzer.frame(conn, side, at, index, chunk, apdu_fields)
        data, masked = chunk.data, 0
        if side == POLLER and not self.options.show_secrets:
            from dlmsdoctor.recorder import mask_secrets

            data, masked = mask_secrets(chunk.data)
        tx = side == POLLER
        summary = chunk.summary + (f" | {apdu_summary}" if apdu_summary else "")
        record = FrameRecord(index, conn, Direction.TX if tx else Direction.RX, at, data, STEP,
                             chunk.kind.value, summary=summary,
                             findings=[{**f.to_json(), "offset": f.offset - chunk.offset}
                                       for f in chunk.findings],
                             answers=answers, late=late)
        if masked:
            record.findings.append({
                "code": "session.secret_masked", "severity": "info", "offset": 0,
                "length": len(data), "field": "apdu",
                "message": f"{masked} secret byte(s) replaced by '*' (FCS recomputed); "
                           "secrets never enter a session"})
        self._record(record)
        if tx:
            self._emit(FrameSent(conn, STEP, at, data))
        else:
            self._emit(FrameReceived(conn, STEP, at, data, answers, late))

    def _apdu(self, chunk: DecodedFrame, direction: _Direction
              ) -> tuple[dict[str, Any] | None, str]:
        apdu: bytes | None = None
        if chunk.kind is FrameKind.HDLC and chunk.fields.get("frame_type") == "I":
            whole = direction.reassembler.feed(chunk)
            apdu = whole if whole else None
        elif chunk.kind is FrameKind.WRAPPER:
            apdu = chunk.apdu
        if not apdu:
            return None, ""
        from dlmsdoctor.codec.apdu import decode_apdu

        decoded = decode_apdu(apdu)
        return dict(decoded.fields), decoded.summary

    def _record(self, record: FrameRecord) -> None:
        if self._file is not None:
            self._file.write(json.dumps(_encode(asdict(record)), ensure_ascii=False) + "\n")
        if len(self._kept) < self.options.keep_frames:
            self._kept[record.index] = record
        self._tail.append(record)
        if self.on_record is not None:
            self.on_record(record)

    def _finding(self, event: FindingRaised) -> None:
        # evidence frames stay in memory even past keep_frames
        for record in self._tail:
            if record.index in event.frames:
                self._kept.setdefault(record.index, record)
        self._emit(event)

    # -- the end -----------------------------------------------------------------------------
    def finish(self, reason: str, at: float | None = None) -> Session:
        """The diagnosed Session; ``at``: the end time (a replay's; else the relay's clock)."""
        if at is None:
            at = self.now() if self.relay._t0 else 0.0
        self._drain_now()
        for conn in list(self.analyzer.conns):
            self._ended(conn, at)
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        s = self.session
        for record in self._tail:
            self._kept.setdefault(record.index, record)
        s.frames = [self._kept[i] for i in sorted(self._kept)]
        known = {c.id for c in s.connections}
        s.connections += [c for c in self._recent_conns if c.id not in known]
        s.connections.sort(key=lambda c: c.id)
        s.findings = []
        for event, count, frames in self.analyzer.finding_data():
            s.findings.append(ProbeFinding(event.step_id, event.code, event.severity.value,
                                           _with_count(event.message, count), event.at,
                                           frames or list(event.frames),
                                           {**event.data, "count": count}))
        s.duration = at
        s.finished_at = (self.wall_start + timedelta(seconds=at)).isoformat(
            timespec="milliseconds")
        summary = self.analyzer.summary()
        summary["frames_total"] = self.frame_count
        summary["frames_kept"] = len(s.frames)
        summary["connections_total"] = self.connection_count
        summary["internal_errors"] = self.internal_errors
        summary["connections_kept"] = len(s.connections)
        s.settings["tap"] = summary
        s.identity = dict(self.analyzer.identity)  # what the poller read of the meter
        s.settings["stopped_reason"] = reason
        s.cancelled = False  # stopping a tap is how it ends, not a cancelled run
        from dlmsdoctor.tap.rules import diagnose

        s.diagnosis = diagnose(s)
        return s


def _as_frame(chunk: DecodedFrame, direction: str) -> DecodedFrame:
    """A "garbage" chunk that is one whole HDLC frame with a right FCS, decoded as a frame.

    The stream splitter does not take a frame whose address is 3 bytes (no such size exists,
    and noise must not become frames); a poller that sends one still deserves to be told
    exactly that, and the FCS proves it meant a frame."""
    data = chunk.data
    if chunk.kind is not FrameKind.GARBAGE or len(data) < 9 or data[0] != 0x7E or \
            data[-1] != 0x7E or data[1] >> 4 != 0xA:
        return chunk
    from dlmsdoctor.codec.crc import crc16_x25
    from dlmsdoctor.codec.hdlc import parse_hdlc

    if crc16_x25(data[1:-3]) != data[-3] | (data[-2] << 8):
        return chunk
    frame = parse_hdlc(data, 0, direction, lazy_spans=False)
    if frame.kind is not FrameKind.HDLC:
        return chunk
    return DecodedFrame(frame.kind, 0, data, frame.summary, frame.spans,
                        frame.findings, dict(frame.fields), frame.apdu)


def _with_count(message: str, count: int) -> str:
    return message if count <= 1 else f"{message} (seen {count} times)"


def load_all_frames(session: Session) -> Session:
    """The session with every frame and connection from its frames file (for a capture of a
    long run); the session as it is when there is no file or it cannot be read."""
    path = session.settings.get("frames_file")
    if not path:
        return session
    frames: list[FrameRecord] = []
    connections: dict[int, ConnectionRecord] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                doc = json.loads(line)
                if "connection" in doc:
                    c = doc["connection"]
                    c["close_how"] = CloseHow(c["close_how"]) if c.get("close_how") else None
                    record = ConnectionRecord(**c)
                    connections[record.id] = record
                    continue
                doc["direction"] = Direction(doc["direction"])
                doc["data"] = bytes.fromhex(doc["data"])
                frames.append(FrameRecord(**doc))
    except (OSError, ValueError, TypeError, KeyError):
        return session
    from dataclasses import replace

    for c in session.connections:  # still open when the file was last written
        connections.setdefault(c.id, c)
    return replace(session, frames=frames,
                   connections=[connections[i] for i in sorted(connections)])
