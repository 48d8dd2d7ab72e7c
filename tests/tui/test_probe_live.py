"""Drive whole probes from the Probe screen against the simulated meter on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Input, Select

from dlmsdoctor.app import DoctorApp, create_app
from dlmsdoctor.events import StepStatus
from dlmsdoctor.screens.probe import ProbeScreen
from dlmsdoctor.session import Session
from dlmsdoctor.widgets.frame_list import FrameList
from dlmsdoctor.widgets.ladder import Ladder
from tests.tui.fixtures import mgmt_set, record_ladder, tcp_meter, write_config

pytestmark = pytest.mark.timeout(60)


async def _fill(pilot: Pilot, port: int | None, credential: str | None = None) -> ProbeScreen:
    screen = pilot.app.screen
    assert isinstance(screen, ProbeScreen)
    assert port is not None  # the meter is listening
    screen.query_one("#host", Input).value = "127.0.0.1"
    screen.query_one("#port", Input).value = str(port)
    screen.query_one("#icmp", Checkbox).value = False  # loopback: nothing to learn from ping
    if credential:
        screen.query_one("#credential", Select).value = credential
    await pilot.pause()
    return screen


async def test_probe_runs_live_and_diagnoses(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = record_ladder(monkeypatch)
    async with tcp_meter() as meter:
        app: DoctorApp = create_app(start_screen="probe")
        async with app.run_test(size=(120, 40)) as pilot:
            await _fill(pilot, meter.port)
            await pilot.press("ctrl+r")
            await app.workers.wait_for_complete()
            await pilot.pause()

            running = {step for step, status in seen if status is StepStatus.RUNNING}
            finished_ok = {step for step, status in seen if status is StepStatus.OK}
            pending = {step for step, status in seen if status is StepStatus.PENDING}
            assert pending & running & finished_ok, seen  # pending -> running -> ok, live
            ladder = app.screen.query_one(Ladder)
            assert ladder.row_count >= 5

            session = app.session
            assert session is not None and session.diagnosis is not None
            assert session.diagnosis.status == "ok", session.diagnosis.headline
            assert session.diagnosis.profile is not None
            assert session.diagnosis.profile.client_sap == 16

            # Enter on a rung opens its first frame.
            step_id = session.frames[0].step_id
            ladder.move_cursor(row=ladder.get_row_index(step_id))
            ladder.focus()
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen.id == "frames"
            frame_list = app.screen.query_one(FrameList)
            assert frame_list.frames[frame_list.cursor].step_id == step_id
            assert len(frame_list.frames) == len(session.frames) > 4

            await pilot.press("f5")  # the run was saved in the data dir: History lists it
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.screen.query_one(DataTable).row_count == 1
        assert meter.unreleased_associations() == []


async def test_wrong_password_shows_the_cause(hermetic_dirs: Path) -> None:
    write_config(hermetic_dirs, mgmt_set("11111111"))
    async with tcp_meter() as meter:
        app = create_app(start_screen="probe")
        async with app.run_test(size=(120, 40)) as pilot:
            await _fill(pilot, meter.port, credential="mgmt")
            await pilot.press("ctrl+r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            session = app.session
            assert session is not None and session.diagnosis is not None
            codes = [cause.code for cause in session.diagnosis.causes]
            assert "auth.wrong_password" in codes, codes
            # the meter's budget is 2 failed logins per window: one spent, one left
            assert "failed logins left 1" in str(app.screen.query_one("#probe-status").render())
            await pilot.press("f4")
            await pilot.pause()
            assert "auth.wrong_password" in str(app.screen.query_one("#cause-explanation").render())
        assert meter.failed_logins() == 1  # one try per credential set, never more


async def test_cancel_releases_the_session() -> None:
    # Slow replies so the run is still inside the association when cancel arrives.
    async with tcp_meter(faults=["delay=0.2"]) as meter:
        app = create_app(start_screen="probe")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _fill(pilot, meter.port)
            await pilot.press("ctrl+r")
            while not meter.open_associations():  # wait for the meter to hold an association
                await pilot.pause(0.05)
            await pilot.pause(0.05)
            live = app.session
            assert live is not None and live.id.startswith("live-")
            assert live.frames, "frames appear while the run is under way"
            assert screen.running
            await pilot.press("escape")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert not screen.running
            session = app.session
            assert session is not None and session.cancelled
            statuses = {step.status for step in session.steps}
            assert StepStatus.CANCELLED in statuses or StepStatus.SKIPPED in statuses
        assert meter.open_associations() == []
        assert meter.unreleased_associations() == []
        assert any(e["event"] == "association.released" for e in meter.events)


async def test_quit_during_a_run_releases_first(hermetic_dirs: Path) -> None:
    async with tcp_meter(faults=["delay=0.2"]) as meter:
        app = create_app(start_screen="probe")
        async with app.run_test(size=(120, 40)) as pilot:
            await _fill(pilot, meter.port)
            await pilot.press("ctrl+r")
            while not meter.open_associations():
                await pilot.pause(0.05)
            await pilot.press("ctrl+q")
            await pilot.pause()
        assert app.return_code == 0
        assert meter.open_associations() == []
        assert any(e["event"] == "association.released" for e in meter.events)
        # The run ended through the engine (not killed): its cancelled session was saved.
        saved = list((hermetic_dirs / "data" / "sessions").glob("*.json"))
        assert len(saved) == 1
        assert Session.loads(saved[0].read_text(encoding="utf-8")).cancelled
