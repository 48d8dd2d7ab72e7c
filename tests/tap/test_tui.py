"""The Tap screen (F9): start a tap on the simulated meter, a poller sends the seed's SNRM
through it; the frame, its decode and the finding show live; stopping hands the diagnosed
session to the app's Frames and Diagnosis screens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Input

from dlmsdoctor.app import create_app
from dlmsdoctor.screens.tap import TapScreen
from dlmsdoctor.sim.meter import SimulatedMeter
from dlmsdoctor.widgets.frame_list import FrameList
from tests.helpers.ser2net import free_port
from tests.tap.test_poller_faults import SEED_SNRM

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))


async def _until(pilot, check, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError("timed out")


async def test_tap_screen_shows_frames_and_findings_live_then_the_diagnosis() -> None:
    async with SimulatedMeter("default") as meter:
        app = create_app(start_screen="probe")
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("f9")
            screen = app.screen
            assert isinstance(screen, TapScreen)
            port = free_port()
            screen.query_one("#tap-listen", Input).value = f"127.0.0.1:{port}"
            screen.query_one("#tap-target", Input).value = f"127.0.0.1:{meter.port}"
            await pilot.press("ctrl+r")
            await _until(pilot, lambda: "Relaying" in str(
                screen.query_one("#tap-status").render()))
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(SEED_SNRM)
            await writer.drain()
            await _until(pilot, lambda: any("tap.poller.malformed" in x for x in screen.lines))
            assert len(screen.frames) == 1 and screen.frames[0].data == SEED_SNRM
            assert screen.query_one(FrameList).frames is screen.frames
            assert "group length" in "\n".join(screen.lines)
            writer.close()
            await asyncio.sleep(0.2)
            await pilot.press("ctrl+x")
            await _until(pilot, lambda: screen.session is not None)
            assert app.session is screen.session and app.session.kind == "tap"
            assert app.session.diagnosis is not None
            assert app.session.diagnosis.causes[0].code == "tap.poller.malformed"
