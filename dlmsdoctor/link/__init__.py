"""Asyncio byte channels that timestamp every byte and record how a connection ended."""

from dlmsdoctor.link.channel import (
    Channel,
    ChannelFactory,
    Chunk,
    CloseInfo,
    ConnectError,
)
from dlmsdoctor.link.clock import Clock, FakeClock, MonotonicClock

__all__ = [
    "Channel",
    "ChannelFactory",
    "Chunk",
    "Clock",
    "CloseInfo",
    "ConnectError",
    "FakeClock",
    "MonotonicClock",
]
