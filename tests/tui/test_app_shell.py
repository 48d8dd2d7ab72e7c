"""The app's entry points and message plumbing, without a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlmsdoctor.app import create_app, main
from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.events import FrameSent
from dlmsdoctor.screens.probe_messages import LiveFramesAdded, ProbeEventArrived, ProbeFramesArrived
from dlmsdoctor.session import SessionFormatError
from dlmsdoctor.widgets.frame_list import FrameList
from tests.tui.fixtures import story_session


def test_main_refuses_a_bad_session_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]", encoding="utf-8")
    assert main(str(bad)) == ExitCode.UNUSABLE_INPUT
    assert "cannot open" in capsys.readouterr().err
    assert main(str(tmp_path / "missing.json")) == ExitCode.UNUSABLE_INPUT


def test_create_app_loads_a_session_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(story_session().dumps(), encoding="utf-8")
    app = create_app(session_path=path)
    assert app.session is not None and len(app.session.frames) == 8
    path.write_text('{"schema": "dlmsdoctor.session", "version": 99}', encoding="utf-8")
    with pytest.raises(SessionFormatError):
        create_app(session_path=path)


def test_high_rate_messages_collapse_and_others_do_not() -> None:
    frame = FrameSent(1, "hdlc.snrm", 0.1, b"\x7e")
    frames = [frame, frame]
    older = ProbeFramesArrived(frames, 1)
    newer = ProbeFramesArrived(frames, 2)
    assert newer.can_replace(older)  # cumulative: the newer one carries everything
    assert LiveFramesAdded().can_replace(LiveFramesAdded())
    step = ProbeEventArrived(frame)
    assert not step.can_replace(ProbeEventArrived(frame))


async def test_mouse_click_selects_a_frame() -> None:
    app = create_app(story_session(), start_screen="frames")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        # Row 0 is the header and the border adds one: frame 4 sits on line 1 + 1 + 4.
        await pilot.click(FrameList, offset=(10, 6))
        await pilot.pause()
        assert app.screen.query_one(FrameList).cursor == 4


SNRM = bytes.fromhex("7EA0070321930F017E")  # DOMAIN.md's known-good SNRM

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


@pytest.mark.parametrize("name", ["seed-story.pcapng", "seed-story.session.json"])
async def test_opens_the_seed_story_capture_and_session(name: str) -> None:
    path = CAPTURES / name
    if not path.is_file():
        pytest.skip(f"{path} not in this checkout")
    app = create_app(session_path=path)
    assert app.session is not None and app.session.frames
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        frame_list = app.screen.query_one(FrameList)
        assert len(frame_list.frames) == len(app.session.frames)
        await pilot.press("end")
        await pilot.pause()
        assert frame_list.cursor == len(app.session.frames) - 1


async def test_palette_navigates_and_dialogs_block_navigation() -> None:
    from dlmsdoctor.screens.modals import HelpScreen

    app = create_app(story_session())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"go to hist")
        await app.workers.wait_for_complete()  # the palette searches in a worker
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.id == "history"
        await pilot.press("f1", "f3")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)  # F3 waits until the dialog is closed
        await pilot.press("escape", "f3")
        await pilot.pause()
        assert app.screen.id == "frames"
        assert len(app.screen_stack) == 2  # the default screen and one main screen


async def test_a_burst_of_frames_collapses_into_few_redraws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dlmsdoctor.screens.probe import ProbeScreen
    from dlmsdoctor.screens.probe_run import new_session
    from dlmsdoctor.widgets.target_form import TargetValues

    handled: list[str | None] = []
    original = ProbeScreen._status

    def spy(self: ProbeScreen, line: str | None) -> None:
        handled.append(line)
        original(self, line)

    app = create_app(start_screen="probe")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ProbeScreen)
        screen._live = new_session(TargetValues("127.0.0.1", 4059, "auto", None, None, None, None))
        monkeypatch.setattr(ProbeScreen, "_status", spy)
        frames = [FrameSent(1, "hdlc.snrm", i / 1000, SNRM) for i in range(200)]
        for count in range(1, len(frames) + 1):  # one burst, posted within one tick
            screen.post_message(ProbeFramesArrived(frames, count))
        await pilot.pause()
        assert len(screen._live.frames) == 200  # nothing lost
        assert 1 <= len(handled) < 20, len(handled)  # ...and far fewer redraws than frames
