"""The tap on its own event loop in a thread, for blocking clients (gurux-dlms, plain sockets),
and a gurux client that keeps every byte it sent and received."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from dlmsdoctor.events import Event
from dlmsdoctor.session import Session
from dlmsdoctor.tap.core import Tap, TapOptions
from tests.sim.gurux_peer import GuruxPeer


class TapThread:
    """``with TapThread(target_port) as tap:`` relays 127.0.0.1:tap.port -> target; ``tap.
    session`` holds the diagnosed Session after the block (or after ``stop()``)."""

    def __init__(self, target_port: int, *, frames_path: Path | None = None,
                 listen_host: str = "127.0.0.1", target_host: str = "127.0.0.1",
                 **options: Any) -> None:
        opts = TapOptions(listen_host, 0, target_host, target_port,
                          **{"show_secrets": True, **options})
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self.tap = Tap(opts, on_event=self._on_event, frames_path=frames_path)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="tap")
        self.session: Session | None = None

    def _on_event(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    @property
    def port(self) -> int:
        return self.tap.port

    def findings(self, code: str | None = None) -> list[Any]:
        from dlmsdoctor.events import FindingRaised

        with self._lock:
            return [e for e in self.events if isinstance(e, FindingRaised)
                    and (code is None or e.code == code)]

    def wait_finding(self, code: str, timeout: float = 2.0) -> list[Any]:
        """The findings ``code`` raised so far, waiting up to ``timeout`` s for the first (the
        relay forwards first and decodes after, so a client may see bytes a moment before)."""
        import time

        deadline = time.monotonic() + timeout
        while not (found := self.findings(code)) and time.monotonic() < deadline:
            time.sleep(0.01)
        return found

    def __enter__(self) -> TapThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.tap.start(), self._loop).result(10)
        return self

    def stop(self) -> Session:
        if self.session is None:
            self.session = asyncio.run_coroutine_threadsafe(
                self.tap.stop("stopped"), self._loop).result(60)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()
        return self.session

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RecordingPeer(GuruxPeer):
    """A GuruxPeer that keeps what it sent and received, in order."""

    def __init__(self, port: int, **kwargs: Any) -> None:
        super().__init__(port, **kwargs)
        self.sent = bytearray()

    def _packet(self, data: Any, reply: Any) -> None:
        if data is not None:
            self.sent += bytes(data)
        super()._packet(data, reply)
