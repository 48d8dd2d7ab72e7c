"""Quit keys: q quits where no text field has focus, ctrl+q from anywhere."""

from __future__ import annotations

from textual.widgets import Input
from textual.widgets._footer import FooterKey

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


async def test_footer_shows_q_where_it_quits_and_ctrl_q_in_a_text_field() -> None:
    app = create_app(story_session(), start_screen="frames")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        quit_key = next(k for k in app.screen.query(FooterKey) if k.description == "Quit")
        assert quit_key.key_display == "q/^q"
        await pilot.press("f2")  # the Probe screen: the host field has focus, q types there
        await pilot.pause()
        assert isinstance(app.focused, Input)
        quit_key = next(k for k in app.screen.query(FooterKey) if k.description == "Quit")
        assert quit_key.key_display == "^q"
        # 80 columns cut the footer: quit comes before the screen keys so it is still seen.
        assert quit_key.region.right <= 80 - len(" ^p palette")
    from dlmsdoctor.screens.modals import HELP_TEXT

    assert "q       quit (ctrl+q in a text field)" in HELP_TEXT
