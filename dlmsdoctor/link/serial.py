"""Serial, optical (IEC 62056-21) and RFC 2217 channels: the same ``Channel`` as TCP.

pyserial opens the port and applies its settings (rate, data bits, parity, stop bits, and
``exclusive=True``: an flock that a second dlmsdoctor or minicom respects; the tty is also put in
exclusive mode, TIOCEXCL, while held); reading is done
without pyserial-asyncio(-fast). On POSIX a port has a file descriptor, and ``loop.add_reader``
on it is exactly what those adapters do internally; doing it here costs no dependency, keeps
every chunk stamped on the run clock the moment it is read (as ``TcpChannel`` does), and keeps
the rate switch of the optical handshake (drain, then new settings) under our control instead of
behind a transport. An RFC 2217 port (``rfc2217://host:port``) has no readable descriptor (a
pyserial thread speaks telnet on the socket), so a small reader thread hands its chunks to the
loop, stamped when the loop gets them.

Opening checks, in order, before a byte is sent: the device exists; no live process holds a
UUCP lock file for it; no other process has it open (``/proc/*/fd``, Linux); then the open
itself, where EACCES names the device's group (join ``dialout``) and EBUSY/the flock name a
holder. Those failures are ``LineOpenError`` (a ``ConnectError``) with the evidence attached.

A pseudo-terminal cannot carry 7 data bits or parity (Linux forces 8 bits and clears PARENB;
glibc then fails ``tcsetattr`` with EINVAL): on a pty the rate is applied with 8N1 and the
channel says so in ``format_note``; on real hardware the same failure is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import struct
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlmsdoctor.events import CloseHow
from dlmsdoctor.link.channel import Chunk, CloseInfo, ConnectError
from dlmsdoctor.link.clock import Clock
from dlmsdoctor.link.serial_line import (
    Holder,
    LineFormat,
    byte_time,
    device_group,
    holders,
    is_pty,
    lock_holder,
    parse_baud,
    scan_holders,
)

if TYPE_CHECKING:
    from pathlib import Path

    from dlmsdoctor.engine import ProbeOptions

READ_SIZE = 4096
OPTICAL_SIGNON_BAUD = 300
OPTICAL_SIGNON_FORMAT = "7E1"
# After the DISC of a mode E session the meter goes back to 300 baud IEC mode (IEC 62056-21
# Annex E); it needs up to the reaction time tr (200 ms min, 1500 ms max) before a new sign-on
# is heard. The channel keeps the port for this long after the release before letting go.
OPTICAL_BACK_TO_IEC = 0.3
PTY_NOTE = ("a pseudo-terminal cannot carry {fmt}: {baud} baud applied with 8 data bits, no "
            "parity (real ports take it)")
RFC2217_PARITY = {1: "N", 2: "O", 3: "E", 4: "M", 5: "S"}
RFC2217_STOP = {1: 1.0, 2: 2.0, 3: 1.5}


class LineOpenError(ConnectError):
    """The line could not be opened. ``reason``: no-device, permission, held, locked,
    rfc2217-unsupported, refused, format, error; ``holders`` the processes holding it."""

    def __init__(self, reason: str, message: str, elapsed: float = 0.0, *,
                 holders: tuple[Holder, ...] = (), group: str | None = None,
                 ports: tuple[str, ...] = ()) -> None:
        super().__init__(reason, message, elapsed)
        self.holders = holders
        self.group = group
        self.ports = ports


@dataclass
class BridgeSettings:
    """What an RFC 2217 bridge's serial port was set to before we touched it."""

    baud: int
    data_format: str
    raw: dict[str, int] = field(default_factory=dict)


def device_name(target: str) -> str:
    """``serial:NAME`` -> NAME (``serial:ttyUSB0`` -> ``/dev/ttyUSB0`` where that exists);
    other forms unchanged."""
    if not target.startswith("serial:"):
        return target
    name = target[len("serial:"):]
    if os.name == "posix" and not name.startswith("/") and os.path.exists(f"/dev/{name}"):
        return f"/dev/{name}"
    return name


def available_ports() -> tuple[str, ...]:
    """Serial ports pyserial finds, with their USB descriptions (for the no-device message)."""
    try:
        from serial.tools import list_ports
    except ImportError:
        return ()
    out = []
    for info in sorted(list_ports.comports(), key=lambda p: p.device):
        desc = info.description if info.description and info.description != "n/a" else ""
        out.append(f"{info.device} ({desc})" if desc else info.device)
    return tuple(out)


class SerialChannel:
    """One open serial line (local device or RFC 2217 bridge)."""

    def __init__(self, port: Any, *, link: str, device: str, conn_id: int, clock: Clock,
                 opened_at: float, connect_time: float, baud: int, data_format: LineFormat,
                 format_note: str = "", bridge: BridgeSettings | None = None) -> None:
        self._port = port
        self._clock = clock
        self._closed: CloseInfo | None = None
        self._queue: asyncio.Queue[Chunk | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._fd: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._tx_done_at = 0.0
        self.link = link
        self.conn_id = conn_id
        self.host = device
        self.port = 0
        self.opened_at = opened_at
        self.connect_time = connect_time
        self.local_host = ""
        self.local_port = 0
        self.baud = baud
        self.data_format = data_format
        self.format_note = format_note
        self.bridge = bridge
        self.mode_e = False  # set by the optical handshake: the release then waits for IEC mode
        self.holders_unchecked = 0  # processes whose open files could not be checked
        self.bytes_received = 0
        fd = getattr(port, "fd", None)
        if isinstance(fd, int):
            self._fd = fd
            os.set_blocking(fd, False)
            _exclusive(fd, True)
            self._loop.add_reader(fd, self._on_readable)
        else:
            with contextlib.suppress(Exception):  # a blocking read that wakes 20 times a second
                port.timeout = 0.05
            self._thread = threading.Thread(target=self._read_thread, daemon=True,
                                            name=f"dlmsdoctor serial reader {device}")
            self._thread.start()

    # -- reading --------------------------------------------------------------------------
    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: the adapter was unplugged, the pty's other side is gone
            self._gone(f"the device went away: {exc.strerror or exc}")
            return
        if not data:
            self._gone("the device hung up")
            return
        self._queue.put_nowait(Chunk(data, self._clock.now()))

    def _read_thread(self) -> None:
        port = self._port
        while not self._stop.is_set():
            try:
                data = port.read(max(1, port.in_waiting))
            except Exception as exc:  # pyserial raises SerialException when the bridge closes
                if not self._stop.is_set():
                    self._loop.call_soon_threadsafe(self._gone, f"the bridge closed: {exc}")
                return
            if data:
                self._loop.call_soon_threadsafe(self._push, data)

    def _push(self, data: bytes) -> None:
        self._queue.put_nowait(Chunk(data, self._clock.now()))

    def _gone(self, note: str) -> None:
        if self._fd is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
        if self._closed is None:
            self._closed = CloseInfo(CloseHow.RST, True, self._clock.now(), note)
        self._queue.put_nowait(None)

    @property
    def closed(self) -> CloseInfo | None:
        # bytes read before the line went away are still delivered
        return self._closed if self._queue.empty() else None

    async def receive(self, timeout: float) -> Chunk | None:
        if self._queue.empty() and self._closed is not None:
            return None
        try:
            chunk = await asyncio.wait_for(self._queue.get(), max(0.0, timeout))
        except TimeoutError:
            return None
        if chunk is not None:
            self.bytes_received += len(chunk.data)
        return chunk

    # -- writing --------------------------------------------------------------------------
    async def send(self, data: bytes) -> float:
        at = self._clock.now()
        if self._closed is not None:
            return at
        try:
            if self._fd is not None:
                view = memoryview(data)
                while view:
                    try:
                        view = view[os.write(self._fd, view):]
                    except BlockingIOError:
                        await asyncio.sleep(0.002)
            else:
                await asyncio.to_thread(self._port.write, data)
        except Exception as exc:
            self._gone(f"on send: {exc}")
            return at
        self._tx_done_at = max(at, self._tx_done_at) + byte_time(len(data), self.baud,
                                                                 self.data_format)
        return at

    async def drain(self) -> None:
        """Wait until what we sent has left the line at its rate (a pty's tcdrain returns at
        once, and an RFC 2217 bridge's is out of reach: the byte time is computed)."""
        wait = self._tx_done_at - self._clock.now()
        if wait > 0:
            await self._clock.sleep(wait)

    async def set_line(self, baud: int, data_format: LineFormat) -> str:
        """Apply new settings once what was sent has left; returns a note ('' when exact)."""
        await self.drain()
        note = await asyncio.to_thread(_apply, self._port, baud, data_format, self.host,
                                       self.link == "rfc2217")
        self.baud, self.data_format, self.format_note = baud, data_format, note
        return note

    # -- closing --------------------------------------------------------------------------
    async def close(self) -> CloseInfo:
        if self._closed is None:
            if self.mode_e:
                await self.drain()
                await self._clock.sleep(OPTICAL_BACK_TO_IEC)
            self._closed = CloseInfo(CloseHow.LOCAL, False, self._clock.now())
        if self._fd is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
            _exclusive(self._fd, False)
        self._stop.set()
        await asyncio.to_thread(self._release_port)
        return self._closed

    def _release_port(self) -> None:
        port = self._port
        if self.bridge is not None and port.is_open:
            # put the bridge back as it was: the site's poller relies on its settings
            with contextlib.suppress(Exception):
                fmt = LineFormat.parse(self.bridge.data_format)
                _set_all(port, self.bridge.baud, fmt.bytesize, fmt.parity, _stop(fmt))
        with contextlib.suppress(Exception):
            port.close()
        if self._thread is not None:
            self._thread.join(2)


def _exclusive(fd: int, on: bool) -> None:
    """TIOCEXCL: while we hold the line, a program that opens it later (a poller service
    starting up) gets EBUSY instead of stealing our bytes; TIOCNXCL gives it back."""
    try:
        import fcntl
        import termios

        fcntl.ioctl(fd, termios.TIOCEXCL if on else termios.TIOCNXCL)
    except (ImportError, AttributeError, OSError):
        pass  # not a tty that supports it: the flock still keeps dlmsdoctors apart


def _stop(fmt: LineFormat) -> float | int:
    return 1 if fmt.stopbits == 1 else (2 if fmt.stopbits == 2 else 1.5)


def _set_all(port: Any, baud: int, bytesize: int, parity: str, stopbits: float | int,
             reconfigure: bool = True) -> None:
    """All settings in ONE reconfiguration: pyserial's ``apply_settings`` sets them one by one,
    and an intermediate state (8 bits with the old parity) is what a pty refuses."""
    port._baudrate, port._bytesize, port._parity, port._stopbits = (baud, bytesize, parity,
                                                                    stopbits)
    if reconfigure and port.is_open:
        port._reconfigure_port()


def _apply(port: Any, baud: int, fmt: LineFormat, device: str, remote: bool) -> str:
    """Apply all settings at once; on a pty fall back to 8N1 at the same rate (noted)."""
    import termios

    try:
        _set_all(port, baud, fmt.bytesize, fmt.parity, _stop(fmt))
        return _forced_note(port, baud, fmt, device)
    except (termios.error, ValueError, OSError) as exc:
        if remote or not is_pty(device) or (fmt.bytesize == 8 and fmt.parity == "N"):
            raise LineOpenError("format", f"{device} refuses {baud} {fmt}: {exc}") from None
    _set_all(port, baud, 8, "N", _stop(fmt))
    return PTY_NOTE.format(fmt=fmt, baud=baud)


def _forced_note(port: Any, baud: int, fmt: LineFormat, device: str) -> str:
    """A pty accepts 7E1 silently and forces 8 bits, no parity: say so when it did."""
    if (fmt.bytesize == 8 and fmt.parity == "N") or not is_pty(device):
        return ""
    import termios

    try:
        cflag = termios.tcgetattr(port.fd)[2]
    except (termios.error, OSError, AttributeError, TypeError):
        return ""
    if cflag & termios.CSIZE == termios.CS8 and not cflag & termios.PARENB:
        return PTY_NOTE.format(fmt=fmt, baud=baud)
    return ""


# -- opening --------------------------------------------------------------------------------


def _open_local(device: str, baud: int, fmt: LineFormat) -> tuple[Any, str]:
    import termios

    import serial

    port = serial.Serial()
    port.port = device
    port.baudrate = baud
    port.bytesize = fmt.bytesize
    port.parity = fmt.parity
    port.stopbits = _stop(fmt)
    port.timeout = 0
    port.exclusive = True
    try:
        port.open()
        note = _forced_note(port, baud, fmt, device)
    except termios.error:
        if not is_pty(device):
            raise
        port.bytesize, port.parity = 8, "N"
        port.open()
        note = PTY_NOTE.format(fmt=fmt, baud=baud)
    return port, note


def _rfc2217_class() -> type:
    from serial import rfc2217

    answers_of = {rfc2217.SERVER_SET_BAUDRATE: "baud", rfc2217.SERVER_SET_DATASIZE: "datasize",
                  rfc2217.SERVER_SET_PARITY: "parity", rfc2217.SERVER_SET_STOPSIZE: "stopsize"}

    class QueryingRfc2217Serial(rfc2217.Serial):
        """pyserial's RFC 2217 client, which first ASKS the bridge for its settings (value 0
        means "tell me", RFC 2217 section 3) before pushing its own; ``adopt`` keeps the
        bridge's settings as the first ones tried."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.bridge_answers: dict[str, int] = {}
            self._querying = False
            self._queried = False
            self.adopt = False
            super().__init__(*args, **kwargs)

        def _telnet_process_subnegotiation(self, suboption: bytes) -> None:
            kind = answers_of.get(suboption[1:2]) if suboption[0:1] == rfc2217.COM_PORT_OPTION \
                else None
            if self._querying and kind is not None:
                value = bytes(suboption[2:])
                self.bridge_answers[kind] = int.from_bytes(value, "big") if value else 0
                return
            super()._telnet_process_subnegotiation(suboption)

        def _reconfigure_port(self) -> None:
            if not self._queried:
                self._queried = True
                self._query()
                if self.adopt and len(self.bridge_answers) == 4:
                    a = self.bridge_answers
                    if a["baud"] and a["datasize"] and a["parity"] in RFC2217_PARITY:
                        _set_all(self, a["baud"], a["datasize"], RFC2217_PARITY[a["parity"]],
                                 {1: 1, 2: 2, 3: 1.5}.get(a["stopsize"], 1), reconfigure=False)
            super()._reconfigure_port()

        def _query(self) -> None:
            import time

            self._querying = True
            try:
                for option, size in ((rfc2217.SET_BAUDRATE, "!I"), (rfc2217.SET_DATASIZE, "!B"),
                                     (rfc2217.SET_PARITY, "!B"), (rfc2217.SET_STOPSIZE, "!B")):
                    self.rfc2217_send_subnegotiation(option, struct.pack(size, 0))
                deadline = time.monotonic() + self._network_timeout
                while len(self.bridge_answers) < 4 and time.monotonic() < deadline:
                    time.sleep(0.02)
            finally:
                self._querying = False

    return QueryingRfc2217Serial


def _open_rfc2217(url: str, baud: int, fmt: LineFormat, adopt: bool) -> tuple[Any, BridgeSettings
                                                                           | None]:
    cls = _rfc2217_class()
    port = cls()
    port.adopt = adopt
    # ser2net does not acknowledge SET-CONTROL (flow control) on every device: do not wait for
    # it (pyserial's own option for such servers)
    port.port = url if "?" in url else url + "?ign_set_control"
    port.baudrate, port.bytesize, port.parity, port.stopbits = (baud, fmt.bytesize, fmt.parity,
                                                                _stop(fmt))
    port.timeout = 0.05
    port.open()
    a = port.bridge_answers
    bridge = None
    if len(a) == 4 and a["baud"]:
        stop = RFC2217_STOP.get(a["stopsize"], 1.0)
        text = f"{a['datasize']}{RFC2217_PARITY.get(a['parity'], '?')}" + (
            "1.5" if stop == 1.5 else str(int(stop)))
        bridge = BridgeSettings(a["baud"], text, dict(a))
    return port, bridge


async def open_line(
    target: str, baud: int, fmt: LineFormat, *, link: str, conn_id: int, clock: Clock,
    adopt_bridge: bool = False, lock_dirs: tuple[Path, ...] | None = None,
) -> SerialChannel:
    """Open ``target`` (a device path, ``COM3``, ``serial:NAME`` or ``rfc2217://host:port``) or
    raise ``LineOpenError`` with the evidence; nothing is ever written before it is open."""
    start = clock.now()
    device = device_name(target)
    if device.startswith("rfc2217://"):
        try:
            port, bridge = await asyncio.to_thread(_open_rfc2217, device, baud, fmt, adopt_bridge)
        except Exception as exc:
            text = str(exc)
            reason = "rfc2217-unsupported" if "RFC2217" in text or "accept" in text else (
                "refused" if "refused" in text.lower() else "error")
            raise LineOpenError(reason, f"{device}: {text}", clock.now() - start) from None
        opened = clock.now()
        actual = fmt
        if bridge is not None and adopt_bridge:
            baud, actual = bridge.baud, LineFormat.parse(bridge.data_format)
        return SerialChannel(port, link=link, device=device, conn_id=conn_id, clock=clock,
                             opened_at=opened, connect_time=opened - start, baud=baud,
                             data_format=actual, bridge=bridge)
    if device.startswith("/") and not os.path.exists(device):
        ports = available_ports()
        found = f"; serial ports found: {', '.join(ports)}" if ports else \
            "; no serial port was found on this computer"
        raise LineOpenError("no-device", f"{device} does not exist{found}", clock.now() - start,
                            ports=ports)
    from dlmsdoctor.link import serial_line

    lock = lock_holder(device, serial_line.LOCK_DIRS if lock_dirs is None else lock_dirs)
    if lock is not None:
        raise LineOpenError("locked", f"{device} is locked by {lock} ({lock.how})",
                            clock.now() - start, holders=(lock,))
    open_by, unchecked = scan_holders(device)
    others = tuple(open_by)
    if others:
        raise LineOpenError("held", f"{device} is open in another program: "
                            + "; ".join(map(str, others)), clock.now() - start, holders=others)
    try:
        port, note = await asyncio.to_thread(_open_local, device, baud, fmt)
    except Exception as exc:
        code = getattr(exc, "errno", None)
        text = str(exc)
        if code == errno.EACCES or isinstance(exc, PermissionError):
            group = device_group(device)
            raise LineOpenError("permission", f"no permission to open {device}" + (
                f" (it belongs to group {group!r})" if group else ""), clock.now() - start,
                group=group) from None
        if code in (errno.EBUSY, errno.EWOULDBLOCK) or "exclusively lock" in text:
            again = tuple(holders(device))
            who = "; ".join(map(str, again)) or "a process this user cannot see"
            raise LineOpenError("held", f"{device} is in exclusive use by {who}",
                                clock.now() - start, holders=again) from None
        if code == errno.ENOENT:
            raise LineOpenError("no-device", f"{device} does not exist",
                                clock.now() - start) from None
        raise LineOpenError("error", f"cannot open {device}: {text}",
                            clock.now() - start) from None
    opened = clock.now()
    channel = SerialChannel(port, link=link, device=device, conn_id=conn_id, clock=clock,
                            opened_at=opened, connect_time=opened - start, baud=baud,
                            data_format=fmt, format_note=note)
    channel.holders_unchecked = unchecked
    return channel


def first_settings(options: ProbeOptions) -> tuple[int, LineFormat]:
    """The settings a line opens with: optical 300 7E1 (the sign-on); else the asked rate, or
    9600 for ``auto`` (the sweep's first), in the asked format."""
    if options.link == "optical":
        return OPTICAL_SIGNON_BAUD, LineFormat.parse(OPTICAL_SIGNON_FORMAT)
    rate = parse_baud(options.baud)
    return (rate or 9600), LineFormat.parse(options.serial_format)


class SerialChannelFactory:
    """Opens the run's serial line (what ``engine.run_probe`` uses for non-TCP links)."""

    def __init__(self, clock: Clock, options: ProbeOptions) -> None:
        self._clock = clock
        self._options = options

    async def __call__(self, host: str, port: int, timeout: float, conn_id: int) -> SerialChannel:
        baud, fmt = first_settings(self._options)
        adopt = self._options.link == "rfc2217" and self._options.baud == "auto"
        return await open_line(host, baud, fmt, link=self._options.link, conn_id=conn_id,
                               clock=self._clock, adopt_bridge=adopt)
