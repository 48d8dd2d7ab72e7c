"""An asyncio TCP channel that timestamps every byte and tells FIN from RST from timeout.

How the peer closed matters to the diagnosis: a meter that speaks only the wrapper may close
with FIN on an HDLC frame, a firewall or a locked-out meter often resets (RST). On Linux a reset
surfaces as ``ConnectionResetError`` from ``read``, an orderly close as EOF, so no SO_LINGER trick
is needed on our side. Our own close is a clean shutdown (FIN), never a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from types import TracebackType

from dlmsdoctor.events import CloseHow
from dlmsdoctor.link.channel import Chunk, CloseInfo, ConnectError
from dlmsdoctor.link.clock import Clock, MonotonicClock

READ_SIZE = 4096
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


class TcpChannel:
    """One TCP connection. Use ``await TcpChannel.open(...)`` or ``async with`` (always closes)."""

    link = "tcp"

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        conn_id: int,
        host: str,
        port: int,
        clock: Clock,
        opened_at: float,
        connect_time: float,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._clock = clock
        self._closed: CloseInfo | None = None
        self.conn_id = conn_id
        self.host = host
        self.port = port
        self.opened_at = opened_at
        self.connect_time = connect_time
        sockname = writer.get_extra_info("sockname") or ("", 0)
        self.local_host = str(sockname[0])
        self.local_port = int(sockname[1])
        self.bytes_received = 0
        self.last_tx_at: float | None = None

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        timeout: float,
        conn_id: int = 1,
        clock: Clock | None = None,
    ) -> TcpChannel:
        clock = clock or MonotonicClock()
        start = clock.now()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 20), timeout
            )
        except TimeoutError:
            raise ConnectError(
                "timeout", f"no answer to the connection request within {timeout:g} s",
                clock.now() - start,
            ) from None
        except ConnectionRefusedError:
            # asyncio's own text ("Connect call failed ('127.0.0.1', 1)") says nothing to a user
            raise ConnectError("refused", _refused_text(host, port),
                               clock.now() - start) from None
        except socket.gaierror as exc:
            elapsed = clock.now() - start
            raise ConnectError("dns", f"the name {host!r} does not resolve "
                               f"({exc.strerror or exc})", elapsed) from None
        except OSError as exc:
            reason = _classify(exc)
            text = (_refused_text(host, port) if reason == "refused" else
                    f"{_where(host, port)} is unreachable ({exc.strerror or exc})"
                    if reason == "unreachable" else
                    f"cannot connect to {_where(host, port)} ({exc.strerror or exc})")
            raise ConnectError(reason, text, clock.now() - start) from None
        opened = clock.now()
        return cls(reader, writer, conn_id=conn_id, host=host, port=port, clock=clock,
                   opened_at=opened, connect_time=opened - start)

    @property
    def closed(self) -> CloseInfo | None:
        return self._closed

    async def send(self, data: bytes) -> float:
        at = self._clock.now()
        if self._closed is not None:
            return at
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionResetError, BrokenPipeError) as exc:
            self._mark_peer_close(CloseHow.RST, f"on send: {exc}")
        except OSError as exc:
            self._mark_peer_close(CloseHow.RST, f"on send: {exc}")
        self.last_tx_at = at
        return at

    async def receive(self, timeout: float) -> Chunk | None:
        if self._closed is not None:
            return None
        try:
            data = await asyncio.wait_for(self._reader.read(READ_SIZE), max(0.0, timeout))
        except TimeoutError:
            return None
        except ConnectionResetError as exc:
            self._mark_peer_close(CloseHow.RST, str(exc))
            return None
        except OSError as exc:
            self._mark_peer_close(CloseHow.RST, str(exc))
            return None
        if not data:
            self._mark_peer_close(CloseHow.FIN, "")
            return None
        self.bytes_received += len(data)
        return Chunk(data, self._clock.now())

    async def close(self) -> CloseInfo:
        if self._closed is None:
            self._closed = CloseInfo(CloseHow.LOCAL, False, self._clock.now())
            try:
                if self._writer.can_write_eof():
                    self._writer.write_eof()  # FIN first: a clean shutdown, not a reset
            except OSError:
                pass
        self._writer.close()
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(self._writer.wait_closed(), 2.0)
        return self._closed

    def _mark_peer_close(self, how: CloseHow, note: str) -> None:
        if self._closed is None:
            self._closed = CloseInfo(how, True, self._clock.now(), note)

    async def __aenter__(self) -> TcpChannel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.close())


def _refused_text(host: str, port: int) -> str:
    return (f"connection refused by {_where(host, port)}: nothing listens on that port, or a "
            "firewall rejects it")


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _classify(exc: OSError) -> str:
    if exc.errno in _UNREACHABLE:
        return "unreachable"
    if exc.errno == errno.ECONNREFUSED:
        return "refused"
    if exc.errno == errno.ETIMEDOUT:
        return "timeout"
    text = str(exc).lower()
    if "refused" in text:
        return "refused"
    if "unreachable" in text or "no route" in text:
        return "unreachable"
    return "error"


class TcpChannelFactory:
    """Opens ``TcpChannel``s on the run clock (what the engine uses by default)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def __call__(self, host: str, port: int, timeout: float, conn_id: int) -> TcpChannel:
        return await TcpChannel.open(host, port, timeout, conn_id, self._clock)
