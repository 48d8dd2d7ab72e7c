"""The relay: a TCP listener that connects to the target for each poller connection and copies
bytes both ways, unchanged, in order, as they come.

Transparent, never a party: each read is written to the other side before anything looks at it
(forward first, decode after; no waiting for whole frames); nothing of dlmsdoctor's own is ever
sent. A close is mirrored as it happened: FIN -> ``write_eof`` on the other side (half-close, the
other direction keeps flowing), RST -> SO_LINGER 0 and abort (the other side gets a RST too). A
target that cannot be reached closes the poller's connection the way a dead target would: refused
or unreachable -> RST; no answer -> closed when the connect timeout ends.

asyncio Protocols, not streams: ``data_received`` writes straight to the other transport, which
sends at once when its buffer is empty, so the relay adds one loop iteration, not a task hop.
Flow control: when one side's write buffer fills, the other side stops reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from dlmsdoctor.events import CloseHow

POLLER, METER = "poller", "meter"
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


class RelayObserver:
    """What the relay tells about each connection; ``Tap`` implements it (records, analyses).

    Times are seconds on the relay's clock. ``conn`` is 1, 2, ... in accept order."""

    def accepted(self, conn: int, client: str, at: float) -> None: ...

    def opened(self, conn: int, client: str, at: float, connect_time: float,
               local: tuple[str, int]) -> None: ...

    def failed(self, conn: int, client: str, at: float, reason: str, message: str,
               elapsed: float) -> None: ...

    def data(self, conn: int, side: str, at: float, data: bytes) -> None:
        """``side`` sent ``data`` (already forwarded to the other side)."""

    def closed(self, conn: int, side: str, at: float, how: CloseHow) -> None:
        """``side`` closed its sending direction (FIN) or reset the connection (RST)."""

    def ended(self, conn: int, at: float) -> None:
        """Both sockets of the relayed connection are gone."""


def format_peer(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = str(peer[0]), int(peer[1])
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(peer or "")


def _reset(transport: asyncio.BaseTransport | None) -> None:
    """Close with a RST (SO_LINGER 0), the way a dead or refusing peer ends a connection."""
    if transport is None:
        return
    _linger_zero(transport)
    transport.abort()  # type: ignore[attr-defined]  # also when closing: drop the buffer


def _linger_zero(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class _Side(asyncio.Protocol):
    def __init__(self, conn: _Relayed, name: str) -> None:
        self.conn = conn
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.eof = False  # it sent FIN
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:  # a relay must not hold small segments back (Nagle)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn.made(self)

    def data_received(self, data: bytes) -> None:
        self.conn.forward(self, data)

    def eof_received(self) -> bool:
        self.conn.eof(self)
        return True  # keep the other direction open: a half-close is mirrored, not widened

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.conn.lost(self, exc)

    def pause_writing(self) -> None:
        other = self.conn.other(self)
        if other is not None and other.transport is not None:
            other.transport.pause_reading()

    def resume_writing(self) -> None:
        other = self.conn.other(self)
        if other is not None and other.transport is not None and not other.lost and \
                self.conn.relay.reading:
            other.transport.resume_reading()


class _Relayed:
    """One poller connection and its connection to the target."""

    def __init__(self, relay: Relay, conn_id: int) -> None:
        self.relay = relay
        self.id = conn_id
        self.poller = _Side(self, POLLER)
        self.meter: _Side | None = None
        self.client = ""
        self.connecting: asyncio.Task[None] | None = None
        self.connect_start = 0.0
        self.poller_loss: Exception | None = None  # why the poller's socket went, if it did
        self.done = False

    def other(self, side: _Side) -> _Side | None:
        return self.meter if side is self.poller else self.poller

    def made(self, side: _Side) -> None:
        if side is not self.poller:
            # Told here, not after the connect coroutine resumes: the target may write at once
            # (a bridge's "Port already in use") and data_received can come before it resumes.
            self.meter = side
            assert side.transport is not None
            if not self.relay.reading:
                side.transport.pause_reading()
            local = side.transport.get_extra_info("sockname") or ("", 0)
            now = self.relay.now()
            self.relay.observer.opened(self.id, self.client, now, now - self.connect_start,
                                       (str(local[0]), int(local[1])))
            return
        assert side.transport is not None
        self.client = format_peer(side.transport.get_extra_info("peername"))
        # Hold the poller's bytes in the kernel until the target answers: nothing is lost,
        # nothing is reordered, and a refused target still sees none of them.
        side.transport.pause_reading()
        self.relay.observer.accepted(self.id, self.client, self.relay.now())
        self.connecting = asyncio.ensure_future(self._connect())
        self.connecting.add_done_callback(lambda _task: self._check_done())

    async def _connect(self) -> None:
        relay = self.relay
        loop = asyncio.get_running_loop()
        start = self.connect_start = relay.now()
        side = _Side(self, METER)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: side, relay.target_host, relay.target_port),
                relay.connect_timeout,
            )
        except TimeoutError:
            self._failed("timeout", f"no answer to the connection request within "
                         f"{relay.connect_timeout:g} s", start, reset=False)
            return
        except ConnectionRefusedError as exc:
            self._failed("refused", f"connection refused: {exc.strerror or exc}", start)
            return
        except socket.gaierror as exc:
            self._failed("dns", f"cannot resolve {relay.target_host!r}: {exc.strerror or exc}",
                         start)
            return
        except OSError as exc:
            reason = "unreachable" if exc.errno in _UNREACHABLE else "error"
            self._failed(reason, exc.strerror or str(exc), start)
            return
        assert side.transport is not None and self.meter is side
        if self.poller.lost:  # the poller gave up while we connected: mirror what it did
            self._mirror_loss(self.poller, self.poller_loss)
            return
        if self.poller.eof:
            side.transport.write_eof()
        if self.poller.transport is not None and not self.poller.eof and relay.reading:
            self.poller.transport.resume_reading()

    def _failed(self, reason: str, message: str, start: float, reset: bool = True) -> None:
        relay = self.relay
        relay.observer.failed(self.id, self.client, relay.now(), reason, message,
                              relay.now() - start)
        transport = self.poller.transport
        if transport is not None and not self.poller.lost:
            if reset:
                _reset(transport)
            else:
                transport.close()
        self._check_done()

    def forward(self, side: _Side, data: bytes) -> None:
        other = self.other(side)
        if other is not None and other.transport is not None and not other.lost:
            other.transport.write(data)  # first: the observer decodes after
        self.relay.observer.data(self.id, side.name, self.relay.now(), data)

    def eof(self, side: _Side) -> None:
        side.eof = True
        self.relay.observer.closed(self.id, side.name, self.relay.now(), CloseHow.FIN)
        other = self.other(side)
        if other is not None and other.transport is not None and not other.lost:
            if other.transport.can_write_eof():
                other.transport.write_eof()
            if other.eof:  # both directions finished: close once buffers are flushed
                other.transport.close()
                if side.transport is not None:
                    side.transport.close()

    def lost(self, side: _Side, exc: Exception | None) -> None:
        if side is self.poller:
            self.poller_loss = exc
        if self.meter is None and side is self.poller:
            # still connecting: the connect task mirrors the loss once it has a socket
            if exc is not None and not side.eof:
                self.relay.observer.closed(self.id, side.name, self.relay.now(), CloseHow.RST)
            self._check_done()
            return
        self._mirror_loss(side, exc)

    def _mirror_loss(self, side: _Side, exc: Exception | None) -> None:
        other = self.other(side)
        if exc is not None and not self.relay.stopping:
            # An error on a socket is a reset (ECONNRESET, EPIPE, ...): the other side gets one.
            if side is not self.poller or self.meter is not None:
                self.relay.observer.closed(self.id, side.name, self.relay.now(), CloseHow.RST)
            _reset(other.transport if other is not None else None)
        elif other is not None and other.transport is not None and not other.lost and \
                (not side.eof or other.eof):
            other.transport.close()  # gone without a FIN (our own close), or both done
        self._check_done()

    def _check_done(self) -> None:
        if self.done or not self.poller.lost:
            return
        if self.meter is None:
            if self.connecting is not None and not self.connecting.done():
                return  # its done-callback comes back here
        elif not self.meter.lost:
            return
        self.done = True
        self.relay.finished(self)

    def stop(self) -> None:
        """The tap is stopping: close both sides cleanly (FIN after what is buffered)."""
        if self.connecting is not None and not self.connecting.done():
            self.connecting.cancel()
        for side in (self.poller, self.meter):
            if side is not None and side.transport is not None and not side.lost:
                side.transport.close()


@dataclass(slots=True)
class RelayStats:
    accepted: int = 0
    active: int = 0


class Relay:
    """``await Relay(...).start()`` listens; ``await relay.stop()`` closes everything."""

    def __init__(self, listen_host: str, listen_port: int, target_host: str, target_port: int,
                 observer: RelayObserver, *, connect_timeout: float = 10.0,
                 clock: Callable[[], float] | None = None) -> None:
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.target_host = target_host
        self.target_port = target_port
        self.observer = observer
        self.connect_timeout = connect_timeout
        self._clock = clock
        self._t0 = 0.0
        self._server: asyncio.Server | None = None
        self._conns: dict[int, _Relayed] = {}
        self._next_id = 0
        self.stopping = False
        self.stats = RelayStats()
        self._idle = asyncio.Event()
        self._idle.set()
        self.reading = True  # False while the recorder catches up

    def now(self) -> float:
        if self._clock is not None:
            return self._clock()
        return asyncio.get_running_loop().time() - self._t0

    @property
    def port(self) -> int:
        """The port it listens on (the real one when 0 was asked)."""
        if self._server is None or not self._server.sockets:
            return self.listen_port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        self._server = await loop.create_server(self._accept, self.listen_host, self.listen_port,
                                                reuse_address=True)

    def _accept(self) -> _Side:
        self._next_id += 1
        conn = _Relayed(self, self._next_id)
        self._conns[conn.id] = conn
        self.stats.accepted += 1
        self.stats.active += 1
        self._idle.clear()
        return conn.poller

    def finished(self, conn: _Relayed) -> None:
        if self._conns.pop(conn.id, None) is not None:
            self.stats.active -= 1
            self.observer.ended(conn.id, self.now())
        if not self._conns:
            self._idle.set()

    def pause_reading(self) -> None:
        """Stop reading every socket (the recorder is behind); ``resume_reading`` undoes it."""
        self.reading = False
        for conn in self._conns.values():
            for side in (conn.poller, conn.meter):
                if side is not None and side.transport is not None and not side.lost:
                    side.transport.pause_reading()

    def resume_reading(self) -> None:
        self.reading = True
        for conn in self._conns.values():
            for side in (conn.poller, conn.meter):
                if side is not None and side.transport is not None and not side.lost and \
                        (side is not conn.poller or conn.meter is not None):
                    side.transport.resume_reading()

    async def stop(self, grace: float = 1.0) -> None:
        """Stop accepting, close open connections (FIN), wait up to ``grace`` s for them."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns.values()):
            conn.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        for conn in list(self._conns.values()):  # still there: they are gone for us anyway
            conn.done = True
            self.finished(conn)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), grace)
