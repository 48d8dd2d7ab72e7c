"""The engine's promises: bugs become ERROR steps, dependents are skipped, release always runs,
events reach on_event in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.events import Event, StepStarted, StepStatus
from dlmsdoctor.ledger import MemoryLedger
from dlmsdoctor.link.clock import FakeClock
from dlmsdoctor.link.scripted import ScriptedFactory
from dlmsdoctor.probes.base import Probe, ProbeContext
from dlmsdoctor.probes.release import ReleaseProbe
from dlmsdoctor.probes.tcp import TcpProbe


class Boom(Probe):
    id = "test.boom"
    title = "raises"
    layer = "hdlc"
    requires = ("tcp.connect",)

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        raise ValueError("bug")


class After(Probe):
    id = "test.after"
    title = "needs boom"
    layer = "association"
    requires = ("test.boom",)

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        raise AssertionError("must not run")
        yield  # pragma: no cover


class Waits(Probe):
    id = "test.waits"
    title = "waits for cancel"
    layer = "hdlc"

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        await ctx.sleep(3600)
        yield ctx.finished(self.id, StepStatus.OK, "never")


async def test_exception_becomes_error_and_skips_dependents() -> None:
    clock = FakeClock()
    seen: list[Event] = []
    session = await run_probe(
        ProbeOptions("192.0.2.1", icmp=False), clock=clock, ledger=MemoryLedger(),
        channel_factory=ScriptedFactory([[]], clock), on_event=seen.append,
        plan=[TcpProbe(), Boom(), After(), ReleaseProbe()])
    st = {s.id: s for s in session.steps}
    assert st["test.boom"].status is StepStatus.ERROR
    assert "ValueError: bug" in st["test.boom"].details["exception"]
    assert st["test.after"].status is StepStatus.SKIPPED
    assert st["release"].status is StepStatus.OK
    err = next(f for f in session.findings if f.code == "engine.exception")
    assert err.severity == "error" and "not a fault of the meter" in err.message
    assert isinstance(seen[0], StepStarted) and len(seen) >= 8
    assert session.connections[0].close_how is not None  # the socket was closed


class StuckClock(FakeClock):
    """Sleeping never ends: only cancellation gets a probe out of ``ctx.sleep``."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


async def test_cancel_event_stops_and_release_still_runs() -> None:
    clock = StuckClock()
    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, cancel.set)
    session = await asyncio.wait_for(run_probe(
        ProbeOptions("192.0.2.1", icmp=False), clock=clock, ledger=MemoryLedger(),
        channel_factory=ScriptedFactory([[]], clock), cancel=cancel,
        plan=[TcpProbe(), Waits(), After(), ReleaseProbe()]), 5)
    st = {s.id: s.status for s in session.steps}
    assert st["test.waits"] is StepStatus.CANCELLED
    assert st["test.after"] is StepStatus.CANCELLED
    assert st["release"] is StepStatus.OK
    assert session.cancelled
