"""Serial, optical (IEC 62056-21 mode E) and RFC 2217 channels: issue 11 builds them here.

Until then the factory refuses clearly instead of pretending (no serial I/O is done)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlmsdoctor.link.channel import Channel, ConnectError
from dlmsdoctor.link.clock import Clock

if TYPE_CHECKING:
    from dlmsdoctor.engine import ProbeOptions


class SerialChannelFactory:
    def __init__(self, clock: Clock, options: ProbeOptions) -> None:
        self._clock = clock
        self._options = options

    async def __call__(self, host: str, port: int, timeout: float, conn_id: int) -> Channel:
        raise ConnectError("error", f"{self._options.link} links are not available in this "
                           "version of dlmsdoctor", 0.0)
