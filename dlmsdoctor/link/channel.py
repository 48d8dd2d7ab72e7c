"""The byte-channel interface the probes use: TCP now, serial later, scripted in tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dlmsdoctor.events import CloseHow


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes as they arrived, with the run-clock time they were read."""

    data: bytes
    at: float


@dataclass(frozen=True, slots=True)
class CloseInfo:
    how: CloseHow
    by_peer: bool
    at: float
    note: str = ""


class ConnectError(Exception):
    """A connection that could not be opened.

    ``reason`` is one of refused, timeout, unreachable, dns, error.
    """

    def __init__(self, reason: str, message: str, elapsed: float) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.elapsed = elapsed


class Channel(Protocol):
    """One connection to the meter. ``host``/``port``: for TCP the peer; for a serial line the
    device (``/dev/ttyUSB0``, ``COM3``, ``rfc2217://h:p``) and port 0. ``link`` names the kind:
    tcp, serial, optical, rfc2217."""

    link: str
    conn_id: int
    host: str
    port: int
    opened_at: float
    connect_time: float
    local_host: str
    local_port: int

    @property
    def closed(self) -> CloseInfo | None:
        """How the connection ended, or None while it is open."""
        ...

    async def send(self, data: bytes) -> float:
        """Write ``data``; return the time it was handed to the OS. Never raises on a dead peer:
        the close is recorded in ``closed`` instead."""
        ...

    async def receive(self, timeout: float) -> Chunk | None:
        """The next bytes within ``timeout`` seconds; None on silence or when closed (see
        ``closed``)."""
        ...

    async def close(self) -> CloseInfo:
        """Shut down cleanly (idempotent); returns how the connection ended."""
        ...


class ChannelFactory(Protocol):
    async def __call__(self, host: str, port: int, timeout: float, conn_id: int) -> Channel:
        """Open a connection or raise ``ConnectError``."""
        ...
