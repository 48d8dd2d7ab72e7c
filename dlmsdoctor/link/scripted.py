"""A channel that replays a script, on a fake clock: probe unit tests without sockets or sleeps.

A script is a list of steps consumed in order. ``Expect`` matches what the client sends next
(a mismatch is recorded in ``mismatches``, the test then fails on it); ``Deliver`` makes bytes
readable after a delay; ``Close`` ends the connection from the peer side. When the next step is
an ``Expect`` (or the script is done) the peer is silent: ``receive`` advances the clock by the
whole timeout and returns None, exactly what a real silent meter costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from dlmsdoctor.events import CloseHow
from dlmsdoctor.link.channel import Chunk, CloseInfo, ConnectError
from dlmsdoctor.link.clock import FakeClock


@dataclass(frozen=True)
class Expect:
    data: bytes | None = None  # None: accept any bytes
    match: Callable[[bytes], bool] | None = None


@dataclass(frozen=True)
class Deliver:
    data: bytes
    delay: float = 0.0


@dataclass(frozen=True)
class Close:
    how: CloseHow = CloseHow.FIN
    delay: float = 0.0


Step = Expect | Deliver | Close


@dataclass
class ScriptedChannel:
    link = "tcp"
    script: list[Step]
    clock: FakeClock
    conn_id: int = 1
    host: str = "127.0.0.1"
    port: int = 4059
    connect_time: float = 0.01
    opened_at: float = 0.0
    local_host: str = "127.0.0.1"
    local_port: int = 40000
    sent: list[bytes] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    _closed: CloseInfo | None = None

    @property
    def closed(self) -> CloseInfo | None:
        return self._closed

    async def send(self, data: bytes) -> float:
        at = self.clock.now()
        if self._closed is not None:
            return at
        self.sent.append(data)
        if self.script and isinstance(self.script[0], Expect):
            step = self.script.pop(0)
            assert isinstance(step, Expect)
            ok = (step.data is None or step.data == data) and (
                step.match is None or step.match(data)
            )
            if not ok:
                self.mismatches.append(f"expected {step.data!r}, got {data.hex(' ')}")
        return at

    async def receive(self, timeout: float) -> Chunk | None:
        if self._closed is not None:
            return None
        step = self.script[0] if self.script else None
        if isinstance(step, Deliver | Close) and step.delay <= timeout:
            self.script.pop(0)
            self.clock.advance(step.delay)
            if isinstance(step, Close):
                self._closed = CloseInfo(step.how, True, self.clock.now())
                return None
            return Chunk(step.data, self.clock.now())
        await self.clock.sleep(timeout)
        if isinstance(step, Deliver | Close):
            # the delay runs on while the client waits: keep what is left of it
            self.script[0] = replace(step, delay=step.delay - timeout)
        return None

    async def close(self) -> CloseInfo:
        if self._closed is None:
            self._closed = CloseInfo(CloseHow.LOCAL, False, self.clock.now())
        return self._closed


@dataclass
class ScriptedFactory:
    """One script per connection attempt, in order; a ``ConnectError`` entry fails that attempt."""

    scripts: Sequence[list[Step] | ConnectError]
    clock: FakeClock
    connect_time: float = 0.01
    channels: list[ScriptedChannel] = field(default_factory=list)
    attempts: int = 0

    async def __call__(self, host: str, port: int, timeout: float, conn_id: int) -> ScriptedChannel:
        index = self.attempts
        self.attempts += 1
        if index >= len(self.scripts):
            raise ConnectError("refused", "script has no more connections", 0.0)
        entry = self.scripts[index]
        if isinstance(entry, ConnectError):
            self.clock.advance(entry.elapsed)
            raise entry
        self.clock.advance(self.connect_time)
        channel = ScriptedChannel(list(entry), self.clock, conn_id, host, port,
                                  self.connect_time, self.clock.now())
        self.channels.append(channel)
        return channel
