"""Quit keys: q quits where no text field has focus, ctrl+q from anywhere."""

from __future__ import annotations

from textual.widgets import Input

from dlmsdoctor.app import create_app
from tests.tui.fixtures import story_session


async def test_q_quits_from_a_list() -> None:
    app = create_app(story_session(), start_screen="frames")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.screen.id == "frames"
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0
        assert not app.is_running


async def test_q_in_a_text_field_types_and_ctrl_q_still_quits() -> None:
    app = create_app(start_screen="probe")
    async with app.run_test(size=(80, 24)) as pilot:
        host = app.screen.query_one("#host", Input)
        host.focus()
        host.value = ""
        await pilot.press("q", "a")
        await pilot.pause()
        assert host.value == "qa"
        assert app.is_running
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running


async def test_footer_and_help_name_q_as_quit() -> None:
    app = create_app(story_session(), start_screen="frames")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        footer_keys = {
            b.key_display or b.key
            for (_, b, enabled, _) in app.screen.active_bindings.values()
            if b.show and enabled
        }
        assert "q/^q" in footer_keys
        await pilot.press("f1")
        await pilot.pause()
        from dlmsdoctor.screens.modals import HELP_TEXT

        assert "q       quit" in HELP_TEXT
