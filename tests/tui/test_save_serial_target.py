"""The TUI's "save target" on a serial line: the working line of the last run (or the form's
line and optical switch) goes into the config as a [targets.NAME] the CLI reads, and the saved
target, picked from the list, fills the form and probes the same line again."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input, Select

from dlmsdoctor.app import DoctorApp, create_app
from dlmsdoctor.config import TargetConfig, load_config
from dlmsdoctor.widgets.target_form import TargetForm
from tests.engine.pty_meter import pty_meter

pytestmark = pytest.mark.timeout(60)


async def _save_as(app: DoctorApp, pilot: object, name: str) -> str:
    await pilot.press("ctrl+s")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    field = app.screen.query_one("#name-input", Input)
    default = field.value
    field.value = name
    await pilot.press("enter")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    return default


async def test_a_serial_run_is_saved_and_probed_again_from_the_list(
        hermetic_dirs: Path) -> None:
    async with pty_meter(["line-rate=19200"]) as meter:
        device = str(meter.serial_path)
        app: DoctorApp = create_app(start_screen="probe")
        async with app.run_test(size=(100, 30)) as pilot:
            form = app.screen.query_one(TargetForm)
            form.query_one("#host", Input).value = device
            await pilot.pause()
            await pilot.press("ctrl+r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.session is not None and app.session.target.baud == "auto"
            default = await _save_as(app, pilot, "meter-a")
            assert default == device.removeprefix("/dev/").replace("/", "-")  # pts-3
            await app.workers.wait_for_complete()
            await pilot.pause()
            # the working profile: the rate the sweep found, in the config's keys
            saved = load_config().targets["meter-a"]
            assert saved == TargetConfig("meter-a", device, 0, server_address="1/1",
                                         address_size=2, link="serial", baud="19200",
                                         serial_format="8N1")
            text = (hermetic_dirs / "config" / "config.toml").read_text(encoding="utf-8")
            assert f'device = "{device}"\nbaud = 19200\n' in text

            # picked from the saved targets: the form takes its line, and the run uses it
            form.query_one("#host", Input).value = ""
            form.query_one("#baud", Select).value = "auto"
            form.query_one("#saved-target", Select).value = "meter-a"
            await pilot.pause()
            assert form.query_one("#host", Input).value == device
            assert form.query_one("#baud", Select).value == "19200"
            assert form.has_class("-serial")
            await pilot.press("ctrl+r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            session = app.session
            assert session is not None and session.target.baud == "19200"
            rates = next(f for f in session.findings if f.code == "serial.rates").data["rates"]
            assert [(r["baud"], r["outcome"]) for r in rates] == [(19200, "answer")]
        assert meter.unreleased_associations() == []


async def test_an_optical_head_from_the_form_is_saved_and_filled_back(
        hermetic_dirs: Path) -> None:
    app: DoctorApp = create_app(start_screen="probe")
    async with app.run_test(size=(100, 30)) as pilot:
        form = app.screen.query_one(TargetForm)
        form.query_one("#host", Input).value = "/dev/ttyUSB7"
        await pilot.pause()
        form.query_one("#optical", Checkbox).value = True
        form.query_one("#baud", Select).value = "4800"
        form.query_one("#serial", Input).value = "12345678"
        default = await _save_as(app, pilot, "door")
        assert default == "ttyUSB7"
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert load_config().targets["door"] == TargetConfig(
            "door", "/dev/ttyUSB7", 0, serial_number="12345678", link="optical", baud="4800")
        # typed by name in Host, the form fills from the config (the optical switch too)
        form.query_one("#optical", Checkbox).value = False
        form.query_one("#host", Input).value = "door"
        values = form.values()
        assert (values.host, values.link, values.baud) == ("/dev/ttyUSB7", "optical", "4800")
        assert form.query_one("#optical", Checkbox).value
