"""`dlmsdoctor demo` in the TUI: the app the command builds (demo_app), against the scenario's
simulated meter on its own thread (demo_meter), exactly as the command runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlmsdoctor.cli.demo_cmd import SCENARIOS, demo_app, demo_meter
from dlmsdoctor.events import StepStatus
from dlmsdoctor.screens.probe import ProbeScreen
from dlmsdoctor.widgets.target_form import TargetForm
from tests.tui.fixtures import record_ladder

pytestmark = pytest.mark.timeout(60)


async def test_demo_opens_on_the_probe_screen_and_diagnoses_live(
    hermetic_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_ladder(monkeypatch)
    scenario = SCENARIOS["wrong-address"]
    workdir = hermetic_dirs / "demo-tmp"
    with demo_meter(scenario) as meter:
        app = demo_app(scenario, meter.port, workdir)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            assert isinstance(screen, ProbeScreen)
            assert screen.running, "the demo starts its run by itself"
            banner = str(screen.query_one("#demo-banner").render())
            assert banner.startswith("DEMO: simulated meter, scenario wrong-address,")
            assert f"127.0.0.1:{meter.port}" in banner
            form = screen.query_one(TargetForm).values()
            assert (form.host, form.port, form.serial_number) == (
                "127.0.0.1",
                meter.port,
                "12345678",
            )
            assert form.icmp is False

            await app.workers.wait_for_complete()
            await pilot.pause()
            assert not screen.running
            states = {status for _, status in seen}
            assert {StepStatus.RUNNING, StepStatus.OK, StepStatus.FAILED} <= states, seen
            session = app.session
            assert session is not None and session.diagnosis is not None
            assert not session.id.startswith("live-")  # the engine's own Session, diagnosed
            assert session.diagnosis.causes[0].code == scenario.expect
            finals = {step.id: step.status for step in session.steps}
            assert finals["address.discover"] is StepStatus.OK, finals
            # the demo's own choices in its words (as the CLI demo), never an option the
            # user did not type; the rungs the discovery recovered marked so
            summaries = {step.id: step.summary for step in session.steps}
            assert summaries["icmp.ping"].startswith("turned off by the demo"), summaries
            assert "--no-icmp" not in " ".join(summaries.values())
            assert finals["hdlc.snrm"] is StepStatus.RECOVERED, finals
            ladder = app.screen.query_one("#ladder")
            assert ladder.state_of("hdlc.snrm") == "recovered"

            await pilot.press("f4")
            await pilot.pause()
            assert app.screen.id == "diagnosis"
            explanation = str(app.screen.query_one("#cause-explanation").render())
            assert scenario.expect in explanation

            await pilot.press("ctrl+q")
            await pilot.pause()
        assert app.return_code == 0
        assert meter.open_associations() == []
        assert meter.unreleased_associations() == []
    # Nothing in the user's dirs: not the ledger, not a session, not the config.
    assert not (hermetic_dirs / "data").exists()
    assert not (hermetic_dirs / "config").exists()
    assert not (workdir / "sessions").exists()


async def test_lockout_demo_runs_the_earlier_client_first(hermetic_dirs: Path) -> None:
    scenario = SCENARIOS["lockout"]
    with demo_meter(scenario) as meter:
        app = demo_app(scenario, meter.port, hermetic_dirs / "demo-tmp")
        async with app.run_test(size=(100, 30)) as pilot:
            status = str(app.screen.query_one("#probe-status").render())
            assert "earlier dlmsdoctor runs (not shown) log in with credential set mgmt" in status
            assert "11111111" not in status  # its password is not shown
            await app.workers.wait_for_complete()
            await pilot.pause()
            session = app.session
            assert session is not None and session.diagnosis is not None
            # The right password is refused only because the earlier client's wrong one
            # locked the meter: without the prelude there would be no lockout to find. (Which
            # candidate ranks first is the diagnosis's call, checked in tests/diagnosis.)
            codes = [cause.code for cause in session.diagnosis.causes]
            assert "auth.lockout" in codes, codes
            # the earlier runs' failures; the visible run adds none
            assert meter.failed_logins() == len(scenario.before)
            status = str(app.screen.query_one("#probe-status").render())
            assert "failed logins left" in status
            await pilot.press("ctrl+q")
            await pilot.pause()
        assert meter.open_associations() == []


async def test_quitting_the_demo_mid_run_releases_the_meter(hermetic_dirs: Path) -> None:
    scenario = SCENARIOS["slow"]  # 0.8 s replies: the run is still going when we quit
    with demo_meter(scenario) as meter:
        app = demo_app(scenario, meter.port, hermetic_dirs / "demo-tmp")
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            assert isinstance(screen, ProbeScreen) and screen.running
            while not meter.open_associations():  # quit while the meter holds an association
                await pilot.pause(0.05)
            await pilot.press("ctrl+q")
            await pilot.pause()
        assert app.return_code == 0
        assert not screen.running
        # The engine released it (RLRQ or DISC) before the app exited and the meter stopped.
        assert meter.open_associations() == []
        assert any(e["event"] == "association.released" for e in meter.events)
