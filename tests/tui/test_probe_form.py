"""The Probe screen's form: saved targets with their last result, credentials with a reveal."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, Checkbox, DataTable, Input, Select, Static

from dlmsdoctor.app import create_app
from dlmsdoctor.ledger import Attempt, LoginLedger
from dlmsdoctor.screens.credentials import MASK, CredentialsScreen
from tests.tui.fixtures import story_session, write_config

CONFIG = """
[credentials.mgmt]
client_sap = 1
auth = "low"
password = "s3cretpw"

[targets.substation]
host = "192.0.2.10"
port = 4059
server_address = "1/17"
credentials = ["mgmt"]
"""


def _setup(root: Path) -> Path:
    write_config(root, CONFIG)
    sessions = root / "data" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "story.json").write_text(story_session().dumps(), encoding="utf-8")
    return sessions


async def test_saved_target_fills_the_form(hermetic_dirs: Path) -> None:
    _setup(hermetic_dirs)
    app = create_app(start_screen="probe")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        saved = app.screen.query_one("#saved-target", Select)
        labels = [str(prompt) for prompt, _ in saved._options]
        assert any("substation (failed 2026-01-01)" in label for label in labels), labels
        saved.value = "substation"
        await pilot.pause()
        assert app.screen.query_one("#host", Input).value == "192.0.2.10"
        assert app.screen.query_one("#server-address", Input).value == "1/17"
        assert app.screen.query_one("#credential", Select).value == "mgmt"


async def test_credentials_masked_until_revealed(hermetic_dirs: Path) -> None:
    _setup(hermetic_dirs)
    app = create_app(start_screen="probe")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f6")
        await pilot.pause()
        assert isinstance(app.screen, CredentialsScreen)
        table = app.screen.query_one(DataTable)
        assert str(table.get_row_at(0)[3]) == MASK
        app.screen.query_one("#reveal", Checkbox).value = True
        await pilot.pause()
        assert str(table.get_row_at(0)[3]) == "s3cretpw"
        # Add a set with "Remember": it lands in the config file (mode 0600) and the table.
        app.screen.query_one("#new-name", Input).value = "reader"
        app.screen.query_one("#new-sap", Input).value = "32"
        app.screen.query_one("#new-secret", Input).value = "87654321"
        app.screen.query_one("#remember", Checkbox).value = True
        await pilot.click("#add")
        await pilot.pause()
        assert table.row_count == 2
        config = hermetic_dirs / "config" / "config.toml"
        assert "[credentials.reader]" in config.read_text(encoding="utf-8")
        assert config.stat().st_mode & 0o777 == 0o600
        assert str(config) in str(app.screen.query_one("#credentials-error").render())
        table.move_cursor(row=1)
        table.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.id == "probe"
        assert app.screen.query_one("#credential", Select).value == "reader"


async def test_history_shows_the_meter_ledger(hermetic_dirs: Path) -> None:
    _setup(hermetic_dirs)
    LoginLedger().record(Attempt("192.0.2.10:4059/1/17", 1.0, "mgmt", 1, "low", "rejected"))
    app = create_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f5")
        await app.workers.wait_for_complete()
        await pilot.pause()
        notes = str(app.screen.query_one("#history-notes", Static).render())
        assert "1 logins, 1 failed" in notes, notes


async def test_credential_sets_are_checked_before_saving(hermetic_dirs: Path) -> None:
    _setup(hermetic_dirs)
    app = create_app(start_screen="probe")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f6")
        await pilot.pause()
        screen = app.screen
        screen.query_one("#new-name", Input).value = "hls"
        screen.query_one("#new-sap", Input).value = "1"
        screen.query_one("#new-auth", Select).value = "gmac"
        screen.query_one("#new-secret", Input).value = "not-hex"
        await pilot.click("#add")
        await pilot.pause()
        assert "gmac needs" in str(screen.query_one("#credentials-error").render())
        assert screen.query_one(DataTable).row_count == 1  # nothing saved
        key = "00112233445566778899AABBCCDDEEFF"
        screen.query_one("#new-secret", Input).value = f"{key},{key},4D4D4D0000BC614E"
        screen.query_one("#remember", Checkbox).value = True
        screen.query_one("#add", Button).press()
        await pilot.pause()
        assert screen.query_one(DataTable).row_count == 2
        text = (hermetic_dirs / "config" / "config.toml").read_text(encoding="utf-8")
        assert 'auth = "gmac"' in text and "system_title" in text


async def test_credentials_enter_adds_for_the_session_delete_removes_e_edits(
    hermetic_dirs: Path,
) -> None:
    """Enter adds (kept in memory, nothing written), e edits in place, delete removes; the
    form offers the new set and a run can use it."""
    _setup(hermetic_dirs)
    config = hermetic_dirs / "config" / "config.toml"
    before = config.read_text(encoding="utf-8")
    app = create_app(start_screen="probe")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f6")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CredentialsScreen)
        assert app.focused is screen.query_one("#new-name", Input)
        await pilot.press(*"field", "tab", "3", "2", "tab", "tab", *"pw123456", "enter")
        await pilot.pause()
        table = screen.query_one(DataTable)
        assert table.row_count == 2
        assert config.read_text(encoding="utf-8") == before  # kept for the session only
        assert "session only" in str(screen.query_one("#credentials-error").render())
        row = [str(c) for c in table.get_row_at(0)]
        assert row[0] == "field" and row[3] == MASK and row[4] == "session"
        # edit in place: e fills the fields; a new SAP, the secret kept
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("e")
        await pilot.pause()
        assert screen.query_one("#new-name", Input).value == "field"
        screen.query_one("#new-sap", Input).value = "48"
        await pilot.press("enter")
        await pilot.pause()
        field = app.credentials.kept["field"]
        assert field.client_sap == 48 and field.password == "pw123456"
        # delete removes it: shift+tab from the name field reaches the table
        assert app.focused is screen.query_one("#new-name", Input)
        await pilot.press("shift+tab")
        assert app.focused is table
        table.move_cursor(row=0)
        await pilot.press("delete")
        await pilot.pause()
        assert table.row_count == 1 and "field" not in app.credentials.kept
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.id == "probe"
