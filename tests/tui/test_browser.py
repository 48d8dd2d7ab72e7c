"""The object browser against the simulated meter: list, read a register with its scaler, read
the clock, release on quit (the meter's event log shows the release)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static, Tree

from dlmsdoctor.app import DoctorApp, create_app
from dlmsdoctor.screens.browser import BrowserScreen
from dlmsdoctor.sim.profile import load_profile
from tests.tui.fixtures import mgmt_set, story_at, story_session, tcp_meter, write_config

pytestmark = pytest.mark.timeout(60)


def _app(port: int, folder: Path) -> DoctorApp:
    return create_app(story_at(port), start_screen="diagnosis", sessions_dir=folder)


def _node(tree: Tree, obis: str, attribute: int | None = None):  # type: ignore[no-untyped-def]
    for group in tree.root.children:
        for node in group.children:
            if node.data is not None and node.data.obis_text == obis:
                if attribute is None:
                    return node
                return next(leaf for leaf in node.children if leaf.data[1] == attribute)
    raise AssertionError(f"{obis} not in the tree")


async def _connect(pilot: Pilot) -> None:
    """F7, ctrl+r: the browser associates with the working profile and lists the objects."""
    await pilot.press("f7", "ctrl+r")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def _read(pilot: Pilot, tree: Tree, leaf) -> None:  # type: ignore[no-untyped-def]
    """Open the attribute's object, put the cursor on it and read it (enter)."""
    leaf.parent.expand()
    await pilot.pause()
    tree.move_cursor(leaf)
    tree.focus()
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_list_read_register_and_clock_release_on_quit(tmp_path: Path) -> None:
    profile = load_profile("default")
    assert (profile.objects.voltage, profile.objects.voltage_scaler) == (2305, -1)
    async with tcp_meter(profile) as meter:
        app = _app(meter.port, tmp_path / "sessions")
        async with app.run_test(size=(100, 30)) as pilot:
            await _connect(pilot)
            screen = app.screen
            assert isinstance(screen, BrowserScreen) and screen.connected
            tree = screen.query_one("#objects", Tree)
            classes = [str(group.label) for group in tree.root.children]
            assert any(c.startswith("Register") for c in classes), classes
            assert any(c.startswith("Clock") for c in classes), classes
            voltage = _node(tree, "1.0.32.7.0.255")
            assert "L1 voltage" in str(voltage.label)

            # the register's value: its scaler is read and applied
            leaf = _node(tree, "1.0.32.7.0.255", 2)
            await _read(pilot, tree, leaf)
            assert "230.5 V" in str(leaf.label), leaf.label
            assert "230.5 V" in str(screen.query_one("#value", Static).render())

            clock = _node(tree, "0.0.1.0.0.255", 2)
            await _read(pilot, tree, clock)
            label = str(clock.label)
            assert "time = 20" in label and ":" in label, label  # a date, not hex

            gets = {(e["obis"], e["attribute"]) for e in meter.log.of("get")}
            assert {("0.0.40.0.0.255", 2), ("1.0.32.7.0.255", 3), ("1.0.32.7.0.255", 2),
                    ("0.0.1.0.0.255", 2)} <= gets
            assert meter.open_associations()  # still browsing
            # every read is frames of the session on screen
            live = app.session
            assert live is not None and live.id.startswith("live-") and len(live.frames) > 8
            # GET only: no SET-Request (C1) or ACTION-Request (C3) ever left the browser
            sent = [f.data for f in live.frames if f.direction.value == "tx"]
            assert not any(b"\xe6\xe6\x00\xc1" in d or b"\xe6\xe6\x00\xc3" in d for d in sent)
            assert sum(b"\xe6\xe6\x00\xc0" in d for d in sent) >= 4
            await pilot.press("ctrl+q")
            await pilot.pause()
        await asyncio.sleep(0.05)
        assert app.return_code == 0
        assert meter.open_associations() == [] and meter.unreleased_associations() == []
        released = meter.log.of("association.released")
        assert released and released[-1]["how"] == "rlrq"


async def test_esc_releases_and_the_session_is_saved_with_the_reads(tmp_path: Path) -> None:
    async with tcp_meter() as meter:
        folder = tmp_path / "sessions"
        app = _app(meter.port, folder)
        async with app.run_test(size=(80, 24)) as pilot:
            await _connect(pilot)
            screen = app.screen
            assert isinstance(screen, BrowserScreen)
            tree = screen.query_one("#objects", Tree)
            await _read(pilot, tree, _node(tree, "1.0.1.8.0.255", 2))
            await pilot.press("escape")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert not screen.connected
            assert app.screen.id == "browser"  # esc released; a second esc goes back
            session = app.session
            assert session is not None and not session.id.startswith("live-")
            assert any(s.id.startswith("browse.get.") and "1.0.1.8.0.255" in s.summary
                       for s in session.steps)
            assert session.step("release") is not None
            saved = list(folder.glob("*.json"))
            assert len(saved) == 1
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen.id == "diagnosis"
        assert meter.open_associations() == []


async def test_without_a_profile_the_browser_says_what_to_do() -> None:
    session = story_session()
    assert session.diagnosis is not None
    session.diagnosis = dataclasses.replace(session.diagnosis, profile=None)
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f7", "ctrl+r")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, BrowserScreen) and not screen.connected
        assert "run a probe" in str(screen.query_one("#browser-title", Static).render())


async def test_browser_logs_in_with_the_profiles_credential_set(
    tmp_path: Path, hermetic_dirs: Path
) -> None:
    """A profile found with a credential set: the browser logs in with it (the engine's login
    rung, the ledger records it) and a probe cannot start while the browser holds the meter."""
    from dlmsdoctor.ledger import LoginLedger

    write_config(hermetic_dirs, mgmt_set("00000000"))
    async with tcp_meter() as meter:
        session = story_at(meter.port, client_sap=1, authentication="low", credential="mgmt")
        app = create_app(session, sessions_dir=tmp_path / "sessions")
        async with app.run_test(size=(80, 24)) as pilot:
            await _connect(pilot)
            screen = app.screen
            assert isinstance(screen, BrowserScreen) and screen.connected
            assert screen.query_one("#objects", Tree).root.children
            logins = meter.log.of("login")
            assert logins[-1]["client_sap"] == 1 and logins[-1]["outcome"] == "accepted"
            attempts = LoginLedger().attempts()
            assert attempts and attempts[-1].credential == "mgmt"
            await pilot.press("f2", "ctrl+r")  # the browser holds the meter: no probe now
            await pilot.pause()
            assert not app.get_screen("probe").running  # type: ignore[attr-defined]
            shown = " ".join(str(n.message) for n in app._notifications)
            assert "object browser holds the meter" in shown
            await pilot.press("ctrl+q")
            await pilot.pause()
        await asyncio.sleep(0.05)
        assert meter.open_associations() == []


async def test_keyboard_only_read_with_the_filter(tmp_path: Path) -> None:
    """F7, ctrl+r, /, the OBIS code, enter (the value attribute is under the cursor), enter."""
    async with tcp_meter() as meter:
        app = _app(meter.port, tmp_path / "sessions")
        async with app.run_test(size=(80, 24)) as pilot:
            pressed = ["f7", "ctrl+r"]
            await pilot.press(*pressed)
            await app.workers.wait_for_complete()
            await pilot.pause()
            typed = ["slash", *"32.7", "enter"]
            await pilot.press(*typed)
            await pilot.pause()
            await pilot.pause()
            screen = app.screen
            tree = screen.query_one("#objects", Tree)
            assert [str(g.label).split(" ")[0] for g in tree.root.children] == ["Register"]
            assert tree.cursor_node is not None and tree.cursor_node.data[1] == 2
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert "230.5 V" in str(tree.cursor_node.label)
            assert len(pressed) + len(typed) + 1 == 9  # docs/tui.md gives this count
            await pilot.press("escape")
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert meter.open_associations() == []


async def test_a_browsing_session_is_listed_reopened_exported_and_run_again_as_one(
    tmp_path: Path, hermetic_dirs: Path
) -> None:
    """Kind "browse" from the browser to History (kind column, notes), reopened (its reads on
    Diagnosis and F2, in a browsing session's words), exported (the dialog and the report say
    so) and run again from History: the browser connects, not a probe."""
    folder = tmp_path / "sessions"
    async with tcp_meter() as meter:
        app = _app(meter.port, folder)
        async with app.run_test(size=(80, 24)) as pilot:
            await _connect(pilot)
            assert app.session is not None and app.session.kind == "browse"  # the live one too
            tree = app.screen.query_one("#objects", Tree)
            await _read(pilot, tree, _node(tree, "1.0.32.7.0.255", 2))
            await pilot.press("escape")
            await app.workers.wait_for_complete()
            await pilot.pause()
            status = str(app.screen.query_one("#browser-status", Static).render())
            assert "3 reads" in status and "Browsing session saved" in status, status
        (saved,) = folder.glob("*.json")
        assert '"kind": "browse"' in saved.read_text(encoding="utf-8")

        app = create_app(sessions_dir=folder)  # the next morning
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("f5")
            await app.workers.wait_for_complete()
            await pilot.pause()
            table = app.screen.query_one(DataTable)
            assert table.get_row_at(0)[-1] == "browse"
            notes = str(app.screen.query_one("#history-notes", Static).render())
            assert notes.startswith("browse (3 reads) ok:"), notes
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen.id == "diagnosis"
            reads = str(app.screen.query_one("#browse-reads", Static).render())
            assert reads.startswith("Browsing session: 3 reads"), reads
            assert "1.0.32.7.0.255 value = 230.5 V" in reads
            await pilot.press("f2")
            await pilot.pause()
            status = str(app.screen.query_one("#probe-status", Static).render())
            assert "Browsing session of" in status and "probes again" not in status, status

            await pilot.press("f4", "r")
            await pilot.pause()
            title = str(app.screen.query_one(".modal-title", Static).render())
            assert title == "Export the report of the browsing session"
            app.screen.query_one("#export-path", Input).value = str(tmp_path / "r.md")
            await pilot.press("enter")
            await pilot.pause()
            shown = " ".join(str(n.message) for n in app._notifications)
            assert "Report of the browsing session written" in shown, shown
            report = (tmp_path / "r.md").read_text(encoding="utf-8")
            assert "object browser read" in report and "230.5 V" in report

            await pilot.press("f5")
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press("ctrl+r")  # run again: browse again
            await app.workers.wait_for_complete()
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, BrowserScreen) and screen.connected
            assert not app.get_screen("probe").running  # type: ignore[attr-defined]
            await pilot.press("escape")
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert meter.open_associations() == [] and meter.unreleased_associations() == []
        assert len(list(folder.glob("*.json"))) == 2  # the second browsing session, saved
