"""Release on every exit path (issue 10 item 4): whatever await a run is cancelled at, by the
cancel flag (Ctrl-C, SIGTERM, SIGHUP, a broken pipe) or by cancelling its task (the TUI), the
meter's own event log shows no association and no HDLC link left up.

The channel is wrapped to count its operations (connect, send, receive); run k is cancelled at
the k-th of them, for every k a full run has."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.config import parse_credential
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.ledger import MemoryLedger
from dlmsdoctor.link.clock import MonotonicClock
from dlmsdoctor.link.tcp import TcpChannelFactory

sim = pytest.importorskip("dlmsdoctor.sim.meter")

FAST: dict[str, Any] = {"icmp": False, "timeout": 0.4, "banner_window": 0.05,
                        "busy_retry_wait": 0.05, "release_timeout": 0.6,
                        "discovery_budget": 2, "discovery_pace": 0.0}


class CountingChannel:
    def __init__(self, inner: Any, counter: Counter) -> None:
        self._inner = inner
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def closed(self) -> Any:
        return self._inner.closed

    async def send(self, data: bytes) -> float:
        self._counter.tick(f"send {data[:12].hex()}")
        return float(await self._inner.send(data))

    async def receive(self, timeout: float) -> Any:
        self._counter.tick("receive")
        return await self._inner.receive(timeout)

    async def close(self) -> Any:
        return await self._inner.close()


class Counter:
    """A channel factory whose operations are counted; ``at``: the one that cancels the run."""

    def __init__(self, at: int | None, trigger: Callable[[], None]) -> None:
        self.inner = TcpChannelFactory(MonotonicClock())
        self.at = at
        self.trigger = trigger
        self.count = 0
        self.where = ""

    def tick(self, what: str) -> None:
        self.count += 1
        if self.count == self.at:
            self.where = what
            self.trigger()

    async def __call__(self, host: str, port: int, timeout: float, conn_id: int) -> Any:
        self.tick("connect")
        return CountingChannel(await self.inner(host, port, timeout, conn_id), self)


def links_left_up(events: list[dict[str, object]]) -> list[object]:
    """Connections that closed with an HDLC link up (a UA to an SNRM, no DISC after it)."""
    up: dict[object, bool] = {}
    last: dict[object, str | None] = {}
    left = []
    for e in events:
        conn = e.get("conn")
        if e["event"] in ("frame.received", "frame.sent"):
            data = bytes.fromhex(str(e["hex"]).replace("*", "0").replace(" ", ""))
            if not data.startswith(b"\x7e"):
                continue
            ftype = hd.parse_hdlc(data, 0, None).fields.get("frame_type")
            if e["event"] == "frame.received":
                last[conn] = str(ftype)
                if ftype == "DISC":
                    up[conn] = False
            elif ftype == "UA" and last.get(conn) == "SNRM":
                up[conn] = True
        elif e["event"] == "connection.closed" and up.get(conn):
            left.append(conn)
    return left


async def run_cancelled(profile: str, at: int | None, mode: str, faults: tuple[str, ...] = (),
                        **options: Any) -> tuple[Counter, list[str], list[object]]:
    """One run cancelled at operation ``at``; (counter, unreleased associations, links up)."""
    async with sim.SimulatedMeter(profile, faults) as meter:
        cancel = asyncio.Event()
        task: asyncio.Task[Any] | None = None

        def trigger() -> None:
            if mode == "flag":
                cancel.set()
            else:
                assert task is not None
                task.cancel()

        counter = Counter(at, trigger)
        creds = (parse_credential("mgmt=1:low:00000000"),)
        opts = ProbeOptions("127.0.0.1", meter.port, credentials=creds, **{**FAST, **options})
        task = asyncio.create_task(run_probe(opts, cancel=cancel, ledger=MemoryLedger(),
                                             channel_factory=counter))
        try:
            await task
        except asyncio.CancelledError:
            assert mode == "task"
        await asyncio.sleep(0.1)  # let the meter log the close
        dropped = [f"{e.get('conn')}:{e.get('how')}" for e in meter.unreleased_associations()]
        return counter, dropped, links_left_up(meter.events)


CASES = [
    # (profile, faults, options): an HDLC meter, a slow one (answers pending at the cancel,
    # some arriving during the release), and a wrapper meter (the wrapper AARQ of framing
    # detection pending)
    ("default", (), {}),
    ("default", ("delay=0.25",), {}),
    ("wrapper", (), {}),
    ("wrapper", ("delay=0.25",), {}),
]


async def _sweep(profile: str, faults: tuple[str, ...], options: dict[str, Any], mode: str,
                 step: int) -> list[str]:
    full, dropped, links = await run_cancelled(profile, None, mode, faults, **options)
    assert dropped == [] and links == [], "an uncancelled run releases"
    bad = []
    for k in range(1, full.count + 1, step):
        counter, dropped, links = await run_cancelled(profile, k, mode, faults, **options)
        if dropped or links:
            bad.append(f"{profile}{list(faults)} {mode} k={k} ({counter.where}): "
                       f"associations dropped {dropped}, links left up {links}")
    return bad


@pytest.mark.parametrize("mode", ["flag", "task"])
@pytest.mark.parametrize(("profile", "faults", "options"), CASES)
async def test_cancel_at_sampled_awaits_leaves_nothing_open(
        profile: str, faults: tuple[str, ...], options: dict[str, Any], mode: str) -> None:
    assert await _sweep(profile, faults, options, mode, step=5) == []


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["flag", "task"])
@pytest.mark.parametrize(("profile", "faults", "options"), CASES)
async def test_cancel_at_every_await_leaves_nothing_open(
        profile: str, faults: tuple[str, ...], options: dict[str, Any], mode: str) -> None:
    assert await _sweep(profile, faults, options, mode, step=1) == []
