"""The simulated meter on real transports: TCP (HDLC or wrapper) and a serial device (pty).

In-process use::

    async with SimulatedMeter("default", faults=["lockout=3,60"]) as meter:
        ...connect to 127.0.0.1:meter.port...
        assert meter.failed_logins() == 0

``MeterThread`` runs the same meter on its own event loop in a thread, for blocking clients
(gurux-dlms's client, plain sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Coroutine, Sequence
from pathlib import Path
from types import TracebackType

from dlmsdoctor.codec import hdlc
from dlmsdoctor.codec.hdlc import ServerAddress
from dlmsdoctor.codec.model import hexs
from dlmsdoctor.codec.wrapper import build_wrapper, parse_wrapper
from dlmsdoctor.sim.association import MeterCore
from dlmsdoctor.sim.events import EventLog
from dlmsdoctor.sim.faults import Faults, parse_faults
from dlmsdoctor.sim.links import (
    HdlcServerLink,
    LinkOutput,
    WrapperServerLink,
    looks_like_hdlc,
    looks_like_wrapper,
    split_hdlc,
)
from dlmsdoctor.sim.optical import LineFrontEnd, LineSettings
from dlmsdoctor.sim.profile import Profile, load_profile
from dlmsdoctor.sim.transport import ByteStream, PtyStream, TcpStream, open_serial

# What ser2net 4.x writes to a second client when its one connection is taken.
BRIDGE_BUSY_TEXT = b"Port already in use\r\n"
# IEC 62056-21 identification: "/" + FLAG id + baud-rate character (5 = 9600) + identification.
IEC62056_21_ID = b"/DLD5SIM-METER\r\n"
READ_SIZE = 4096


def stale_bytes_for(profile: Profile) -> bytes:
    """What a bridge or modem buffered from an earlier session: the tail of an I-frame answer
    (cut at its start, as when the buffer wrapped) and then a whole frame to another client."""
    physical = profile.server_physical if profile.address_size > 1 else None
    address = ServerAddress(profile.server_logical, physical, profile.address_size)
    old_answer = hdlc.build_i(address, 16, to_server=False, ns=3, nr=4,
                              info=bytes.fromhex("C4 01 C1 00 06 00 12 D6 87"))
    if profile.framing == "wrapper":
        old_pdu = build_wrapper(1, 16, bytes.fromhex("C4 01 C1 00 06 00 12 D6 87"))
        return old_pdu[5:] + build_wrapper(1, 32, bytes.fromhex("63 03 80 01 00"))
    return old_answer[7:] + hdlc.build_rr(address, 32, to_server=False, nr=2)


def garbage_like(frame: bytes) -> bytes:
    """Bytes as long as the frame that no decoder can take for HDLC or the wrapper."""
    out = bytes(((i * 37 + 0x81) & 0xFF) for i in range(max(len(frame), 4)))
    return out.replace(b"\x7e", b"\x5e")


def with_bad_fcs(frame: bytes) -> bytes:
    if len(frame) < 4 or frame[0] != hdlc.FLAG:
        return frame
    return frame[:-3] + bytes([frame[-3] ^ 0xFF, frame[-2]]) + frame[-1:]


_AUTH_VALUE = re.compile(rb"\xac(.)\x80(.)", re.DOTALL)


def redacted_hex(frame: bytes) -> str:
    """Hex of a received frame with any AARQ calling-authentication-value (the LLS password)
    shown as ``**`` bytes: the event log never holds a secret."""
    out = hexs(frame).split(" ") if frame else []
    if b"\x60" not in frame or b"\xa1\x09\x06\x07\x60\x85\x74" not in frame:
        return " ".join(out)
    for match in _AUTH_VALUE.finditer(frame):
        outer, inner = match.group(1)[0], match.group(2)[0]
        start = match.end()
        if outer == inner + 2 and start + inner <= len(frame):
            out[start : start + inner] = ["**"] * inner
    return " ".join(out)


def describe(frame: bytes, direction: str) -> str:
    if looks_like_hdlc(frame):
        return hdlc.parse_hdlc(frame, 0, direction).summary
    if looks_like_wrapper(frame):
        return parse_wrapper(frame).summary
    return f"{len(frame)} bytes, no frame"


class SimulatedMeter:
    """A simulated DLMS/COSEM meter serving TCP on ``host:port`` (0: any free port) and/or a
    serial device. ``framing`` overrides the profile's; faults may be a ``Faults`` or specs."""

    def __init__(
        self,
        profile: Profile | str = "default",
        faults: Faults | Sequence[str] = (),
        *,
        host: str = "127.0.0.1",
        port: int | None = 0,
        framing: str | None = None,
        events_path: str | Path | None = None,
        serial_device: str | Path | None = None,
        line: LineSettings | None = None,
    ) -> None:
        loaded = load_profile(profile) if isinstance(profile, str) else profile
        self.faults = faults if isinstance(faults, Faults) else parse_faults(list(faults))
        forced = self.faults.forced_framing or framing
        if forced:
            loaded = loaded.with_changes(framing=forced)
        self.profile = loaded
        self.host = host
        self.port = port
        self.serial_device = serial_device
        self.serial_path: str | None = None
        self.log = EventLog(events_path)
        self.core = MeterCore(self.profile, self.faults, self.log)
        self._server: asyncio.Server | None = None
        self._streams: dict[int, ByteStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._serial: PtyStream | None = None
        # serial line emulation (rate, timing, optical mode E): sim/optical.py; None: raw pty
        self.line = line
        self.front_end: LineFrontEnd | None = None

    # ---- observability ---------------------------------------------------------------------

    @property
    def events(self) -> list[dict[str, object]]:
        return self.log.events

    def failed_logins(self) -> int:
        return self.log.failed_logins()

    def rejected_logins(self) -> int:
        return self.log.rejected_logins()

    def open_associations(self) -> list[int]:
        return self.log.open_associations()

    def unreleased_associations(self) -> list[dict[str, object]]:
        return self.log.unreleased_associations()

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def banner(self) -> str:
        where = []
        if self._server is not None:
            where.append(self.address)
        if self.serial_path:
            where.append(self.serial_path)
        return f"listening on {' and '.join(where)} ({self.profile.describe_address()})"

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        from dlmsdoctor.gx.server import warm_up

        warm_up()  # the first AARE as prompt as the next (no import on the first login)
        if self.port is not None:
            self._server = await asyncio.start_server(self._on_tcp, self.host, self.port)
            self.port = self._server.sockets[0].getsockname()[1]
        if self.serial_device is not None:
            self._serial = open_serial(str(self.serial_device), keep_slave=self.line is None)
            self.serial_path = self._serial.path
            stream: ByteStream = self._serial
            if self.line is not None:
                self.front_end = LineFrontEnd(self._serial, self.line, self.faults, self.log)
                stream = self.front_end
            self._spawn(self._serve_serial(stream))
        self.log.emit("meter.started", address=self.banner(), profile=self.profile.name,
                      faults=list(self.faults.specs))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Cancel sessions first: each closes its own stream and logs "closed by the meter: stop".
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for stream in list(self._streams.values()):
            await stream.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        if self._serial is not None:
            self._serial.dispose()
        self.log.emit("meter.stopped")
        self.log.close()

    async def __aenter__(self) -> SimulatedMeter:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- connections -----------------------------------------------------------------------

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        stream = TcpStream(reader, writer)
        conn = self.core.new_connection_id()
        self._streams[conn] = stream
        try:
            await _Session(self, stream, conn, closable=True).run(
                f"{peer[0]}:{peer[1]}" if peer else "?"
            )
        finally:
            self._streams.pop(conn, None)
            if task is not None:
                self._tasks.discard(task)

    async def _serve_serial(self, stream: ByteStream) -> None:
        conn = self.core.new_connection_id()
        await _Session(self, stream, conn, closable=False).run(
            f"serial:{getattr(stream, 'path', '?')}")


class _Session:
    """One connection (or the serial line) with the meter's faults applied around its link."""

    def __init__(self, meter: SimulatedMeter, stream: ByteStream, conn: int, closable: bool):
        self.meter = meter
        self.core = meter.core
        self.faults = meter.faults
        self.log = meter.log
        self.stream = stream
        self.conn = conn
        self.closable = closable
        self.framing = meter.profile.framing
        self.link: HdlcServerLink | WrapperServerLink
        self.closed_reason: str | None = None

    def _new_link(self, refuse_with_dm: bool = False) -> HdlcServerLink | WrapperServerLink:
        if self.framing == "wrapper":
            return WrapperServerLink(self.core, self.conn)
        return HdlcServerLink(self.core, self.conn, refuse_with_dm=refuse_with_dm)

    def _close(self, reason: str) -> None:
        """Close the connection after this frame; a serial line cannot be closed, so there
        the fault only shows as what was (not) sent."""
        if self.closable:
            self.closed_reason = reason
        else:
            self.log.emit("close.skipped", self.conn, reason=reason)

    async def _write_raw(self, data: bytes, what: str) -> None:
        self.log.emit("bytes.sent", self.conn, hex=hexs(data), what=what)
        await self.stream.write(data)

    async def _send(self, frames: list[bytes], service: str = "") -> None:
        f = self.faults
        slow = f.delay_for(service)
        if slow and frames:  # a meter busy on this request (key derivation, a slow CPU)
            self.log.emit("reply.delayed", self.conn, service=service, seconds=slow)
            await asyncio.sleep(slow)
        for frame in frames:
            if f.delay:
                await asyncio.sleep(f.delay)
            if f.latency:
                await asyncio.sleep(f.latency)
            if f.garbage_reply:
                await self._write_raw(garbage_like(frame), "fault:garbage-reply")
                continue
            wire = with_bad_fcs(frame) if f.bad_fcs else frame
            if f.cut_reply:
                cut = wire[: max(1, len(wire) // 2)]
                self.log.emit("frame.sent", self.conn, hex=hexs(cut), framing=self.framing,
                              decode=f"cut after {len(cut)} of {len(wire)} bytes: "
                                     + describe(wire, "rx"))
                await self.stream.write(cut)
                self._close("fault:cut-reply")
                return
            self.log.emit("frame.sent", self.conn, hex=hexs(wire), framing=self.framing,
                          decode=describe(wire, "rx"))
            await self.stream.write(wire)

    async def run(self, peer: str) -> None:
        meter, core, f = self.meter, self.core, self.faults
        self.log.emit("connection.opened", self.conn, peer=peer)
        how = "meter"
        try:
            if f.bridge_busy and self.closable:
                await self._write_raw(BRIDGE_BUSY_TEXT, "fault:bridge-busy")
                self.closed_reason = "fault:bridge-busy"
                return
            locked_at_connect = core.lockout_rule is not None and core.is_locked()
            taken = bool(core.active_connections) and f.single_session is not None
            core.active_connections.add(self.conn)
            self.link = self._new_link(refuse_with_dm=taken and f.single_session == "dm")
            if f.stale_bytes:
                await self._write_raw(stale_bytes_for(meter.profile), "fault:stale-bytes")
            how = await self._loop(locked_at_connect, taken and f.single_session == "close")
        except (ConnectionResetError, BrokenPipeError):
            how = "rst"
        except asyncio.CancelledError:
            self.closed_reason = self.closed_reason or "stop"
        finally:
            core.active_connections.discard(self.conn)
            link = getattr(self, "link", None)
            if link is not None:
                link.disconnect("close", released=False)
            await self.stream.close()
            self.log.emit("connection.closed", self.conn, how=how,
                          reason=self.closed_reason if how == "meter" else None)

    async def _loop(self, locked_at_connect: bool, close_as_second: bool) -> str:
        f, profile = self.faults, self.meter.profile
        inactivity = f.inactivity if f.inactivity is not None else profile.inactivity_timeout
        buf = bytearray()
        while self.closed_reason is None:
            try:
                data = await asyncio.wait_for(self.stream.read(READ_SIZE), inactivity or None)
            except TimeoutError:
                self.link.disconnect("inactivity", released=False)
                if self.closable:
                    self.closed_reason = "inactivity"
                    break
                self.log.emit("link.reset", self.conn, reason="inactivity")
                self.link = self._new_link()
                if isinstance(self.stream, LineFrontEnd):  # an optical port: back to 300 baud
                    self.stream.reset_line("inactivity")
                continue
            if not data:
                return "fin"
            if f.latency:
                await asyncio.sleep(f.latency)
            if f.echo and not getattr(self.stream, "echoes", False):
                await self._write_raw(data, "fault:echo")
            buf += data
            frames = self._frames(buf)
            if self.closed_reason:
                break
            if f.iec62056_21 and (frames or data):
                self.log.emit("frame.received", self.conn, hex=redacted_hex(data),
                              framing=self.framing, decode=describe(data, "tx"))
                buf.clear()
                await self._write_raw(IEC62056_21_ID, "fault:iec62056-21")
                continue
            for raw in frames:
                self.log.emit("frame.received", self.conn, hex=redacted_hex(raw),
                              framing=self.framing,
                              decode=describe(raw, "tx"))
                if locked_at_connect and self.closable:
                    self.closed_reason = "fault:lockout"
                    break
                if close_as_second and self.closable:
                    self.closed_reason = "fault:single-session"
                    break
                out: LinkOutput
                if isinstance(self.link, HdlcServerLink):
                    out = self.link.on_frame(raw)
                else:
                    out = self.link.on_pdu(raw)
                if out.note:
                    self.log.emit("frame.ignored" if not out.frames else "frame.note", self.conn,
                                  note=out.note)
                await self._send(out.frames, out.service)
                if out.close:
                    self._close(out.close)
                if self.closed_reason:
                    break
        return "meter"

    def _frames(self, buf: bytearray) -> list[bytes]:
        """Frames of this meter's framing off ``buf``; reacts to the other framing per faults."""
        f = self.faults
        if self.framing == "wrapper":
            assert isinstance(self.link, WrapperServerLink)
            pdus = self.link.split(buf)
            if buf and not looks_like_wrapper(buf) and buf != b"\x00":  # 00: maybe a header
                other = looks_like_hdlc(buf)
                self.log.emit("bytes.ignored", self.conn, hex=redacted_hex(bytes(buf)),
                              decode=describe(bytes(buf), "tx"))
                buf.clear()
                if other and f.wrapper_only == "close":
                    self._close("fault:wrapper-only")
            return pdus
        frames, skipped = split_hdlc(buf)
        if skipped:
            self.log.emit("bytes.ignored", self.conn, hex=redacted_hex(skipped),
                          decode=describe(skipped, "tx"))
            if looks_like_wrapper(skipped) and f.hdlc_only == "close":
                self._close("fault:hdlc-only")
        return frames


class MeterThread:
    """A ``SimulatedMeter`` on its own event loop in a daemon thread (for blocking clients)."""

    def __init__(self, profile: Profile | str = "default", faults: Sequence[str] | Faults = (),
                 **kwargs: object) -> None:
        self.meter = SimulatedMeter(profile, faults, **kwargs)  # type: ignore[arg-type]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="simulated-meter")

    def __enter__(self) -> SimulatedMeter:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.meter.start(), self._loop).result(10)
        return self.meter

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self.meter.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
