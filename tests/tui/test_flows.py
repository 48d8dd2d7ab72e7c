"""The issue's flows, key by key from opening the app, against the simulated meter on loopback.

Each test counts the keys it presses (typed text counts one key a character): the counts are the
ones docs/tui.md gives.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, OptionList

from dlmsdoctor.app import DoctorApp, create_app
from dlmsdoctor.screens.probe import ProbeScreen
from dlmsdoctor.widgets.frame_list import FrameList
from dlmsdoctor.widgets.ladder import Ladder
from tests.tui.fixtures import Keys, mgmt_set, tcp_meter, write_config

pytestmark = pytest.mark.timeout(90)


def _config(root: Path, port: int, password: str = "wrongpass") -> None:
    write_config(root, mgmt_set(password) + f'\n[targets.m]\nhost = "127.0.0.1"\nport = {port}\n'
                 'credentials = ["mgmt"]\n')


async def test_host_port_run_diagnosis_evidence_frame(hermetic_dirs: Path) -> None:
    """Host:port typed in Host -> run -> diagnosis -> evidence -> the frame."""
    async with tcp_meter() as meter:
        _config(hermetic_dirs, meter.port)
        app: DoctorApp = create_app()
        async with app.run_test(size=(80, 24)) as pilot:
            keys = Keys(pilot)
            await keys.settle()
            assert isinstance(app.focused, Input) and app.focused.id == "host"
            await keys.type(f"127.0.0.1:{meter.port}")
            await keys("ctrl+r")
            await keys.settle()
            form = app.screen
            assert isinstance(form, ProbeScreen)
            assert form.query_one("#host", Input).value == "127.0.0.1"
            assert form.query_one("#port", Input).value == str(meter.port)
            session = app.session
            assert session is not None and session.diagnosis is not None
            assert session.diagnosis.status == "ok", session.diagnosis.headline
            run_keys = keys.count
            assert run_keys == len(f"127.0.0.1:{meter.port}") + 1

            # A named target with a wrong password: a cause with evidence.
            await keys("f2")  # F2 on the Probe screen: focus back to Host
            assert isinstance(app.focused, Input) and app.focused.id == "host"
            app.focused.value = ""
            keys.count -= 1  # the field is cleared for the test; a technician selects it
            await keys.type("m")
            await keys("ctrl+r")
            await keys.settle()
            session = app.session
            assert session is not None and session.diagnosis is not None
            codes = [c.code for c in session.diagnosis.causes]
            assert "auth.wrong_password" in codes, codes
            await keys("f4")
            assert app.screen.id == "diagnosis"
            causes = app.screen.query_one("#causes", OptionList)
            wrong = codes.index("auth.wrong_password")
            for _ in range(wrong):
                await keys("down")
            await keys("tab", "enter")  # the evidence list, its first item
            assert app.screen.id == "frames"
            frame_list = app.screen.query_one(FrameList)
            frame = frame_list.frames[frame_list.cursor]
            assert frame.step_id.startswith("assoc.login")
            del causes
            # esc goes back one level: to the Diagnosis screen
            await keys("escape")
            assert app.screen.id == "diagnosis"
        assert meter.open_associations() == [] and meter.failed_logins() == 1


async def test_history_reopen_and_run_again(hermetic_dirs: Path) -> None:
    async with tcp_meter() as meter:
        app: DoctorApp = create_app()
        async with app.run_test(size=(100, 30)) as pilot:
            keys = Keys(pilot)
            await keys.probe(meter.port)
            first = app.session
            assert first is not None and first.diagnosis is not None
            # a new app, as the next morning: History -> reopen -> ladder, frames, diagnosis
        app = create_app()
        async with app.run_test(size=(100, 30)) as pilot:
            keys = Keys(pilot)
            await keys.settle()
            await keys("f5")
            await keys.settle()
            assert app.screen.query_one(DataTable).row_count == 1
            await keys("enter")
            assert app.screen.id == "diagnosis"
            assert app.session is not None and app.session.id == first.id
            await keys("f2")
            ladder = app.screen.query_one(Ladder)
            assert ladder.row_count == len(first.steps)
            assert ladder.state_of("assoc.public") == "ok"
            reopen_keys = keys.count
            assert reopen_keys == 3
            await keys("f3")
            assert len(app.screen.query_one(FrameList).frames) == len(first.frames)
            # run again: History, ctrl+r fills the form from the working profile and runs
            await keys("f5")
            await keys.settle()
            await keys("ctrl+r")
            await keys.settle()
            assert app.screen.id == "probe"
            assert app.screen.query_one("#port", Input).value == str(meter.port)
            assert app.screen.query_one("#server-address", Input).value == "1/1"
            again = app.session
            assert again is not None and again.id != first.id and again.diagnosis is not None
            assert again.diagnosis.status == "ok"
        assert meter.open_associations() == []


async def test_save_target_writes_the_working_profile(hermetic_dirs: Path) -> None:
    async with tcp_meter() as meter:
        app: DoctorApp = create_app()
        async with app.run_test(size=(80, 24)) as pilot:
            keys = Keys(pilot)
            await keys.probe(meter.port)
            await keys("ctrl+s")
            name = app.screen.query_one("#name-input", Input)
            name.value = ""
            await keys.type("sub3")
            await keys("enter")
            await keys.settle()
            text = (hermetic_dirs / "config" / "config.toml").read_text(encoding="utf-8")
            assert "[targets.sub3]" in text and 'server_address = "1/1"' in text
            assert 'framing = "hdlc"' in text
            # the saved name is a target the Host field takes
            await keys("f2")
            host = app.screen.query_one("#host", Input)
            host.value = "sub3"
            await keys("ctrl+r")
            await keys.settle()
            assert app.session is not None and app.session.target.port == meter.port


async def test_run_again_straight_from_history(hermetic_dirs: Path) -> None:
    """The app opened on History (the Probe screen never shown): ctrl+r still runs."""
    async with tcp_meter() as meter:
        app: DoctorApp = create_app()
        async with app.run_test(size=(80, 24)) as pilot:
            keys = Keys(pilot)
            await keys.probe(meter.port)
        app = create_app(start_screen="history")
        async with app.run_test(size=(80, 24)) as pilot:
            keys = Keys(pilot)
            await keys.settle()
            await keys("ctrl+r")
            await keys.settle()
            await keys.settle()
            assert keys.count == 1
            session = app.session
            assert session is not None and session.diagnosis is not None
            assert session.target.port == meter.port and session.diagnosis.status == "ok"


async def test_a_set_kept_for_the_session_logs_in_and_is_never_written(
    hermetic_dirs: Path,
) -> None:
    async with tcp_meter() as meter:
        app: DoctorApp = create_app()
        async with app.run_test(size=(80, 24)) as pilot:
            keys = Keys(pilot)
            await keys.settle()
            await keys.type(f"127.0.0.1:{meter.port}")
            await keys("f6")
            await keys.type("field")
            await keys("tab")
            await keys.type("1")
            await keys("tab", "tab")
            await keys.type("00000000")
            await keys("enter", "escape")  # added; esc picks it in the form
            assert app.screen.id == "probe"
            assert app.screen.query_one("#credential").value == "field"  # type: ignore[attr-defined]
            await keys("ctrl+r")
            await keys.settle()
            session = app.session
            assert session is not None
            login = session.step("assoc.login.field")
            assert login is not None and login.summary.startswith("accepted"), login
        assert not (hermetic_dirs / "config" / "config.toml").exists()
        # the session holds no secret either: the AARQ's password bytes are masked
        assert "3030303030303030" not in session.dumps().lower().replace(" ", "")
        assert meter.open_associations() == []
