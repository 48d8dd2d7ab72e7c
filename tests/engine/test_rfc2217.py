"""Behind a REAL ser2net with a telnet(rfc2217) accepter whose serial rate (9600) is not the
meter's (19200): dlmsdoctor reads the bridge's settings, finds the meter's rate with
``--baud auto``, names the ser2net setting to change, and puts the bridge back as it was."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.pty_meter import probe, pty_meter
from tests.helpers.ser2net import Ser2net, skip_without_ser2net

# pyserial 3.5's RFC 2217 client calls Thread.setDaemon/setName
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:serial.rfc2217")


class Rfc2217Bridge(Ser2net):
    """The tests' ser2net, with the RFC 2217 accepter instead of the raw TCP one."""

    def __init__(self, workdir: Path, device: Path) -> None:
        super().__init__(workdir, device)
        text = self.config.read_text()
        assert "accepter: tcp," in text
        self.config.write_text(text.replace("accepter: tcp,", "accepter: telnet(rfc2217),tcp,"))


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Rfc2217Bridge]:
    skip_without_ser2net()
    bridge = Rfc2217Bridge(tmp_path, tmp_path / "meter")
    yield bridge
    bridge.stop()


async def _rates_seen(meter: object, seen: list[int], stop: asyncio.Event) -> None:
    """What the meter's side of the pty reads as the line rate, as it changes."""
    front = getattr(meter, "front_end", None)
    assert front is not None
    while not stop.is_set():
        rate = front.client_rate()
        if rate and (not seen or seen[-1] != rate):
            seen.append(rate)
        await asyncio.sleep(0.002)


async def test_behind_ser2net_rfc2217_at_the_wrong_rate(tmp_path: Path,
                                                        bridge: Rfc2217Bridge) -> None:
    async with pty_meter(["line-rate=19200"], device=bridge.device) as meter:
        await asyncio.to_thread(bridge.start)
        seen: list[int] = []
        stop = asyncio.Event()
        watcher = asyncio.ensure_future(_rates_seen(meter, seen, stop))
        try:
            run = await probe(meter, tmp_path, link="rfc2217",
                              target=f"rfc2217://127.0.0.1:{bridge.port}", baud="auto")
        finally:
            stop.set()
            await watcher
    settings = run.finding("rfc2217.settings")
    assert (settings.data["baud"], settings.data["format"]) == (9600, "8N1")
    rates = run.finding("serial.rates").data["rates"]
    assert [(r["baud"], r["outcome"]) for r in rates] == [(9600, "silence"), (19200, "answer")]
    assert run.step("assoc.public").status.value == "ok"
    cause = run.cause("rfc2217.bridge_settings")
    assert run.causes[0] == "rfc2217.bridge_settings" and cause.whose == "bridge"
    assert "'19200n81'" in cause.actions[0].text
    # the meter saw ser2net's 9600, our 19200, then the bridge's 9600 again (restored) before
    # the line went idle (38400: a pty nobody holds)
    active = [rate for rate in seen if rate != 38400]
    ours = active.index(19200)
    assert active[ours - 1 : ours + 2] == [9600, 19200, 9600], seen
    assert meter.unreleased_associations() == []


async def test_a_fixed_rate_through_the_bridge_is_not_swept(tmp_path: Path,
                                                            bridge: Rfc2217Bridge) -> None:
    async with pty_meter(["line-rate=19200"], device=bridge.device) as meter:
        await asyncio.to_thread(bridge.start)
        run = await probe(meter, tmp_path, link="rfc2217",
                          target=f"rfc2217://127.0.0.1:{bridge.port}", baud="9600",
                          timeout=0.4, discovery_budget=1, discovery_pace=0.0)
    assert [r["baud"] for r in run.finding("serial.rates").data["rates"]] == [9600]
    assert "serial.no_answer" in run.causes


async def test_a_raw_tcp_port_is_not_rfc2217(tmp_path: Path) -> None:
    async with pty_meter() as meter:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            run = await probe(meter, tmp_path, link="rfc2217",
                              target=f"rfc2217://127.0.0.1:{port}")
        finally:
            server.close()
    assert run.causes[0] == "rfc2217.unsupported"
