"""The Probe screen on a serial line: a pty meter's path typed in Host runs the serial ladder
(the same core call as ``dlmsdoctor probe /dev/pts/N``), the optical switch signs on with
IEC 62056-21 mode E, and "Find ports" lists what pyserial finds with its USB descriptions."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, OptionList, Select, Static

from dlmsdoctor.app import DoctorApp, create_app
from dlmsdoctor.events import StepStatus
from dlmsdoctor.screens.ports import PortsScreen
from dlmsdoctor.screens.probe_run import session_values
from dlmsdoctor.widgets.target_form import TargetForm
from tests.tui.fixtures import record_ladder, serial_meter

pytestmark = pytest.mark.timeout(60)


async def test_a_serial_path_in_host_runs_the_serial_ladder(
    hermetic_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_ladder(monkeypatch)
    async with serial_meter() as meter:
        app: DoctorApp = create_app(start_screen="probe")
        async with app.run_test(size=(100, 30)) as pilot:
            form = app.screen.query_one(TargetForm)
            assert not form.query_one("#baud", Select).parent.display  # type: ignore[union-attr]
            await pilot.click("#host")
            await pilot.press(*str(meter.serial_path))
            await pilot.pause()
            # a serial Host: baud, format and the optical switch; no TCP port, no ping
            assert form.has_class("-serial")
            assert form.query_one("#baud", Select).parent.display  # type: ignore[union-attr]
            assert not form.query_one("#port", Input).parent.display  # type: ignore[union-attr]
            await pilot.press("ctrl+r")
            await app.workers.wait_for_complete()
            await pilot.pause()

            ok = {step for step, status in seen if status is StepStatus.OK}
            assert {"serial.line", "assoc.public", "cosem.identity", "release"} <= ok, seen
            assert not any(step.startswith(("tcp.", "net.")) for step, _ in seen), seen
            session = app.session
            assert session is not None and session.diagnosis is not None
            assert session.target.link == "serial"
            assert session.diagnosis.status == "ok", session.diagnosis.headline
            profile = session.diagnosis.profile
            assert profile is not None and profile.baud == 9600
            assert profile.device == meter.serial_path
            assert meter.unreleased_associations() == []
            # History's "run again" / e: the same line at the rate that answered
            again = session_values(session)
            assert (again.host, again.link, again.baud, again.port) == (
                str(meter.serial_path), "serial", "9600", 0)
            form.set_values(again)
            await pilot.pause()
            assert form.query_one("#baud", Select).value == "9600" and form.has_class("-serial")
            assert form.query_one("#port", Input).value == "4059"  # kept for a TCP Host
            status = str(app.screen.query_one("#probe-status", Static).render())
            assert "Traceback" not in status


async def test_the_optical_switch_signs_on_in_mode_e(
    hermetic_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_ladder(monkeypatch)
    async with serial_meter(optical=True) as meter:
        app: DoctorApp = create_app(start_screen="probe")
        async with app.run_test(size=(100, 30)) as pilot:
            form = app.screen.query_one(TargetForm)
            form.query_one("#host", Input).value = str(meter.serial_path)
            await pilot.pause()
            form.query_one("#optical", Checkbox).value = True
            await pilot.press("ctrl+r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            session = app.session
            assert session is not None and session.diagnosis is not None
            assert session.target.link == "optical"
            assert session.diagnosis.status == "ok", session.diagnosis.headline
            steps = [step for step, _ in seen]
            assert any(step.startswith("optical.") for step in steps), steps
            assert "assoc.public" in {s for s, st in seen if st is StepStatus.OK}
            again = session_values(session)  # run again: optical, signing on anew
            assert (again.link, again.baud) == ("optical", "auto")
            form.query_one("#optical", Checkbox).value = False
            form.set_values(again)
            assert form.query_one("#optical", Checkbox).value


async def test_a_bad_serial_setting_is_one_line_on_host(hermetic_dirs: Path) -> None:
    app: DoctorApp = create_app(start_screen="probe")
    async with app.run_test(size=(100, 30)) as pilot:
        form = app.screen.query_one(TargetForm)
        form.query_one("#host", Input).value = "serial:"
        await pilot.pause()
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.session is None or app.session.target.link != "serial"
        assert app.focused is form.query_one("#host", Input)
        shown = [str(n.message) for n in app._notifications]
        assert any("names no device" in m for m in shown), shown


def _fake_ports() -> list[SimpleNamespace]:
    return [
        SimpleNamespace(device="/dev/ttyUSB1", description="FT232R USB UART - FT232R USB UART",
                        hwid="USB VID:PID=0403:6001 SER=A50285BI"),
        SimpleNamespace(device="/dev/ttyACM0", description="IEC 62056-21 optical probe",
                        hwid="USB VID:PID=2341:0043"),
    ]


async def test_find_ports_lists_them_with_descriptions_and_fills_host(
    hermetic_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", _fake_ports)
    app: DoctorApp = create_app(start_screen="probe")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.click("#find-ports")
        await pilot.pause()
        assert isinstance(app.screen, PortsScreen)
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert labels[0].startswith("/dev/ttyACM0") and "optical probe" in labels[0]
        assert "FT232R USB UART" in labels[1] and "0403:6001" in labels[1]
        await pilot.press("down", "enter")
        await pilot.pause()
        form = app.screen.query_one(TargetForm)
        assert form.query_one("#host", Input).value == "/dev/ttyUSB1"
        assert form.has_class("-serial")


async def test_find_ports_says_when_there_is_none(
    hermetic_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", lambda: [])
    app: DoctorApp = create_app(start_screen="probe")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.click("#find-ports")
        await pilot.pause()
        assert isinstance(app.screen, PortsScreen)
        text = str(app.screen.query_one("#ports-none", Static).render())
        assert text.startswith("No serial port found")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.query_one(TargetForm).query_one("#host", Input).value == ""


async def test_a_serial_target_is_saved_in_the_config(hermetic_dirs: Path) -> None:
    """The config's [targets.NAME] holds a serial line (device, baud, serial_format, optical):
    Save asks for a name and writes a table the config loads back (more in
    test_save_serial_target.py)."""
    from dlmsdoctor.config import load_config

    app: DoctorApp = create_app(start_screen="probe")
    async with app.run_test(size=(100, 30)) as pilot:
        app.screen.query_one("#host", Input).value = "/dev/ttyUSB0"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ModalScreen)  # the name, ttyUSB0 by default
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        target = load_config().targets["ttyUSB0"]
        assert (target.host, target.link, target.baud, target.serial_format) == (
            "/dev/ttyUSB0", "serial", "auto", "8N1")
