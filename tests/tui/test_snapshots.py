"""Snapshots of every screen at 80x24 and 120x40 (pytest-textual-snapshot).

Nothing on these screens reads the wall clock (times come from the session record), input
cursors are set not to blink, and workers are awaited before the picture is taken.
Update with ``pytest tests/tui --snapshot-update`` after checking the pictures by eye.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from dlmsdoctor.app import create_app
from dlmsdoctor.screens.frames import TREE_INTERVAL, FramesScreen
from tests.tui.fixtures import story_session

SIZES = [(80, 24), (120, 40)]


def _before(*keys: str) -> Callable[[Pilot], object]:
    async def run(pilot: Pilot) -> None:
        for key in keys:
            await pilot.press(key)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        screen = pilot.app.screen
        while isinstance(screen, FramesScreen) and not screen.tree_settled:
            await pilot.pause(TREE_INTERVAL)  # the throttled decode tree shows the last frame
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
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
    ],
    ids=["diagnosis", "frames", "probe", "history", "help", "frames-light", "credentials"],
)
def test_screen_snapshot(
    snap_compare: Callable[..., bool],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: tuple[int, int],
    keys: tuple[str, ...],
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative sessions folder: the same picture on every run
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "config.toml").write_text(
        '[credentials.mgmt]\nclient_sap = 1\nauth = "low"\npassword = "s3cret"\n', "utf-8"
    )
    folder = Path("sessions")
    folder.mkdir()
    (folder / "story.json").write_text(story_session().dumps(), encoding="utf-8")
    app = create_app(story_session(), sessions_dir=folder)
    assert snap_compare(app, terminal_size=size, run_before=_before(*keys))
