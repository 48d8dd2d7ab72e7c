"""Snapshots of every screen at 80x24, 100x30 and 160x50 (pytest-textual-snapshot).

Nothing on these screens reads the wall clock (times come from the session record), input
cursors are set not to blink, and workers are awaited before the picture is taken.
Update with ``pytest tests/tui --snapshot-update`` after checking the pictures by eye.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from dlmsdoctor.app import create_app
from dlmsdoctor.screens.frames import TREE_INTERVAL, FramesScreen
from tests.tui.fixtures import browse_session, mgmt_set, story_session, write_config

SIZES = [(80, 24), (100, 30), (160, 50)]

# The browser's tree as the simulated meter lists it (no meter needed for the picture).
BROWSER_OBJECTS = [
    (1, "0.0.42.0.0.255"), (1, "0.0.96.1.0.255"), (1, "1.0.0.2.0.255"), (3, "1.0.1.8.0.255"),
    (3, "1.0.32.7.0.255"), (8, "0.0.1.0.0.255"), (15, "0.0.40.0.0.255"), (23, "0.0.22.0.0.255"),
]
DECODE_INPUT = (
    "2026-01-01 10:00:00 TX 7E A0 07 03 21 93 0F 01 7E\n"
    "2026-01-01 10:00:00 RX 7E A0 07 21 03 73 0A 7F 7E\n"
)


async def _browser_listing(pilot: Pilot) -> None:
    from dlmsdoctor.cosem_values import ObjectEntry
    from dlmsdoctor.screens.browser import BrowserScreen

    screen = pilot.app.screen
    assert isinstance(screen, BrowserScreen)
    entries = [ObjectEntry(c, 0, bytes(int(p) for p in o.split("."))) for c, o in BROWSER_OBJECTS]
    screen._fill_tree(entries)
    await pilot.pause()


async def _decode_input(pilot: Pilot) -> None:
    from textual.widgets import TextArea

    pilot.app.screen.query_one(TextArea).text = DECODE_INPUT
    await pilot.press("ctrl+r")


async def _serial_host(pilot: Pilot) -> None:
    """A serial device typed in Host: the form shows the line's fields instead of TCP's."""
    pilot.app.screen.query_one("#host", Input).value = "/dev/ttyUSB0"
    await pilot.pause()


async def _ports(pilot: Pilot) -> None:
    """Find ports with two USB adapters plugged in (pyserial's list patched: the same picture
    on every machine)."""
    from types import SimpleNamespace
    from unittest import mock

    ports = [
        SimpleNamespace(device="/dev/ttyUSB0", description="FT232R USB UART - FT232R USB UART",
                        hwid="USB VID:PID=0403:6001 SER=A50285BI LOCATION=1-1.2:1.0"),
        SimpleNamespace(device="/dev/ttyACM0", description="IEC 62056-21 optical probe",
                        hwid="USB VID:PID=2341:0043 SER=7563 LOCATION=1-1.3:1.0"),
    ]
    with mock.patch("serial.tools.list_ports.comports", return_value=ports):
        await pilot.click("#find-ports")
        await pilot.pause()


def _before(*keys: str) -> Callable[[Pilot], object]:
    async def run(pilot: Pilot) -> None:
        for key in keys:
            if key == "<browser-listing>":
                await _browser_listing(pilot)
            elif key == "<decode-input>":
                await _decode_input(pilot)
            elif key == "<serial-host>":
                await _serial_host(pilot)
            elif key == "<ports>":
                await _ports(pilot)
            else:
                await pilot.press(key)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        screen = pilot.app.screen
        while isinstance(screen, FramesScreen) and not screen.tree_settled:
            await pilot.pause(TREE_INTERVAL)  # the throttled decode tree shows the last frame
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        for area in pilot.app.screen.query(TextArea):
            area.cursor_blink = False
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    "keys",
    [
        ("f4",),
        ("f3", "down", "down", "down"),
        ("f2",),
        ("f5",),
        ("f1",),
        ("f3", "down", "down", "down", "down", "down", "ctrl+t"),
        ("f2", "f6"),
        ("f7",),
        ("f7", "<browser-listing>"),
        ("f8", "<decode-input>"),
        ("r",),
        ("f4", "tab"),
        ("f2", "<serial-host>"),
        ("f2", "<ports>"),
    ],
    ids=[
        "diagnosis", "frames", "probe", "history", "menu", "frames-light", "credentials",
        "browser-empty", "browser", "decode", "export", "evidence", "probe-serial", "ports",
    ],
)
def test_screen_snapshot(
    snap_compare: Callable[..., bool],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: tuple[int, int],
    keys: tuple[str, ...],
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative sessions folder: the same picture on every run
    write_config(tmp_path, mgmt_set("s3cret"))
    folder = Path("sessions")
    folder.mkdir()
    (folder / "story.json").write_text(story_session().dumps(), encoding="utf-8")
    app = create_app(story_session(), sessions_dir=folder)
    assert snap_compare(app, terminal_size=size, run_before=_before(*keys))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("keys", [(), ("f2",), ("f5",)], ids=["diagnosis", "probe", "history"])
def test_browsing_session_snapshot(
    snap_compare: Callable[..., bool],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: tuple[int, int],
    keys: tuple[str, ...],
) -> None:
    """A browsing session reopened: its reads on Diagnosis, its ladder and words on Probe, its
    kind and reads in History."""
    monkeypatch.chdir(tmp_path)
    folder = Path("sessions")
    folder.mkdir()
    (folder / "browse.json").write_text(browse_session().dumps(), encoding="utf-8")
    app = create_app(browse_session(), sessions_dir=folder)
    assert snap_compare(app, terminal_size=size, run_before=_before(*keys))
