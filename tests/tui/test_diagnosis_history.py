"""Pilot tests of the Diagnosis and History screens and the app shell."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, OptionList

from dlmsdoctor.app import DoctorApp, create_app
from dlmsdoctor.screens.modals import HelpScreen
from dlmsdoctor.widgets.frame_list import FrameList
from tests.tui.fixtures import story_session


async def test_causes_ranked_and_evidence_jumps_to_frame(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = story_app.screen
        assert screen.id == "diagnosis"
        causes = screen.query_one("#causes", OptionList)
        first = causes.get_option_at_index(0).prompt
        assert "Wrong password" in str(first)  # 0.9 ranks above 0.55
        evidence = screen.query_one("#evidence", OptionList)
        evidence.focus()
        evidence.highlighted = 0  # "AARE rejected" -> finding assoc.auth_failure -> frame 4
        await pilot.press("enter")
        await pilot.pause()
        assert story_app.screen.id == "frames"
        frame_list = story_app.screen.query_one(FrameList)
        assert frame_list.frames[frame_list.cursor].index == 4


async def test_second_cause_evidence_by_frame(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        causes = story_app.screen.query_one("#causes", OptionList)
        causes.focus()
        await pilot.press("down")
        evidence = story_app.screen.query_one("#evidence", OptionList)
        assert "UA at 1/17" in str(evidence.get_option_at_index(1).prompt)
        evidence.focus()
        evidence.highlighted = 1
        await pilot.press("enter")
        await pilot.pause()
        frame_list = story_app.screen.query_one(FrameList)
        assert frame_list.frames[frame_list.cursor].index == 2


async def test_history_lists_and_reopens_sessions(tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    folder.mkdir()
    session = story_session()
    (folder / "story.json").write_text(session.dumps(), encoding="utf-8")
    (folder / "broken.json").write_text("{not json", encoding="utf-8")
    app = create_app(sessions_dir=folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f5")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count == 2
        statuses = {str(table.get_row_at(i)[1]) for i in range(2)}
        assert statuses == {"failed", "unreadable"}
        row = next(i for i in range(2) if str(table.get_row_at(i)[1]) == "failed")
        table.move_cursor(row=row)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.id == "diagnosis"
        assert app.session is not None and app.session.id == session.id
        assert len(app.session.frames) == len(session.frames)


async def test_help_theme_and_palette_share_actions(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(story_app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert story_app.theme == "textual-dark"
        await pilot.press("ctrl+t")
        assert story_app.theme == "textual-light"
        titles = {c.title for c in story_app.get_system_commands(story_app.screen)}
        assert {"Go to Frames", "Open session", "Help", "Toggle light/dark"} <= titles


async def test_open_session_file_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something else"}', encoding="utf-8")
    app = create_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_session_file(bad)
        await pilot.pause()
        assert app.session is None
        good = tmp_path / "good.json"
        good.write_text(story_session().dumps(), encoding="utf-8")
        app.open_session_file(good)
        await pilot.pause()
        assert app.screen.id == "diagnosis" and app.session is not None


async def test_export_report_and_capture(story_app: DoctorApp, hermetic_dirs: Path) -> None:
    from dlmsdoctor.screens.export import ExportScreen

    async with story_app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.click("#export-report")
        await pilot.pause()
        assert isinstance(story_app.screen, ExportScreen)
        field = story_app.screen.query_one("#export-path", Input)
        report = hermetic_dirs / "out" / "story.html"
        field.value = str(report)
        await pilot.press("enter")
        await pilot.pause()
        assert report.is_file()
        assert "12345678" not in report.read_text(encoding="utf-8")  # secrets masked
        await pilot.click("#export-capture")
        await pilot.pause()
        default = Path(story_app.screen.query_one("#export-path", Input).value)
        assert default.suffix == ".pcapng" and str(hermetic_dirs) in str(default)
        await pilot.press("enter")
        await pilot.pause()
        assert default.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # pcapng section header


async def test_copy_profile_and_palette_commands(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(120, 40)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        assert "client SAP" in story_app.clipboard and "192.0.2.10:4059" in story_app.clipboard
        titles = {c.title for c in story_app.get_system_commands(story_app.screen)}
        assert {"Run probe", "Cancel run"} <= titles


async def test_opened_files_are_remembered_in_history(tmp_path: Path) -> None:
    capture = Path(__file__).resolve().parents[2] / "captures" / "busy-bridge.pcapng"
    elsewhere = tmp_path / "elsewhere" / "story.json"
    elsewhere.parent.mkdir()
    elsewhere.write_text(story_session().dumps(), encoding="utf-8")
    app = create_app(sessions_dir=tmp_path / "no-runs-yet")
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_session_file(elsewhere)
        if capture.is_file():
            app.open_session_file(capture)
        await pilot.press("f5")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert all(row[5] == "opened" for row in rows)
        assert rows[-1][1] == "failed"  # the story session, opened first, listed last
        assert table.row_count == (2 if capture.is_file() else 1)


async def test_healthy_meter_shows_profile_and_identity() -> None:
    path = Path(__file__).resolve().parents[2] / "captures" / "healthy.session.json"
    if not path.is_file():
        pytest.skip("captures/healthy.session.json not in this checkout")
    app = create_app(session_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert not screen.query_one("#causes", OptionList).display
        assert "No cause to report" in str(screen.query_one("#cause-explanation").render())
        profile = str(screen.query_one("#profile").render())
        assert "Working connection profile" in profile and "Meter identity" in profile
        assert app.session is not None
        assert str(app.session.identity["serial_number"]) in profile
