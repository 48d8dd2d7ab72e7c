"""Actions reached three ways, one meaning per key; copy, export, frames marks, decode, Host."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Label, OptionList, Static, TextArea

from dlmsdoctor.app import ACTIONS, DoctorApp, create_app
from dlmsdoctor.codec.hdlc import build_i
from dlmsdoctor.events import Direction
from dlmsdoctor.screens.decode import DecodeScreen
from dlmsdoctor.screens.export import ExportScreen
from dlmsdoctor.screens.frames import FramesScreen
from dlmsdoctor.screens.modals import HelpScreen
from dlmsdoctor.session import FrameRecord
from dlmsdoctor.widgets.decode_tree import DecodeTree
from dlmsdoctor.widgets.frame_list import FrameList
from dlmsdoctor.widgets.hex_view import HexView
from tests.tui.fixtures import SERVER, story_session


def test_every_action_has_a_key_and_no_key_two_meanings() -> None:
    from dlmsdoctor.app import DoctorApp as App

    keys: dict[str, str] = {}
    for binding in App.BINDINGS:
        key, action = binding.key, binding.action  # type: ignore[union-attr]
        assert keys.setdefault(key, action) == action or key in ("q", "ctrl+q"), key
    wanted = {"Export report", "Export capture", "Copy profile", "Credentials",
              "Next bad frame", "Run probe", "Save target", "Go to Object browser", "Go to Decode"}
    assert wanted <= {a.title for a in ACTIONS}
    # ctrl+r runs (the probe, a history session again, the browser's connection): the
    # credentials dialog no longer uses it for "reveal"
    from dlmsdoctor.screens.credentials import CredentialsScreen

    dialog_keys = {b.key for b in CredentialsScreen.BINDINGS}  # type: ignore[union-attr]
    assert "ctrl+r" not in dialog_keys and "ctrl+u" in dialog_keys


async def test_palette_and_menu_reach_every_action(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(80, 24)) as pilot:
        titles = {c.title for c in story_app.get_system_commands(story_app.screen)}
        assert {a.title for a in ACTIONS} <= titles
        await pilot.press("f1")
        await pilot.pause()
        menu = story_app.screen
        assert isinstance(menu, HelpScreen)
        options = menu.query_one("#help-actions", OptionList)
        assert options.option_count == len(ACTIONS)
        index = next(i for i, a in enumerate(ACTIONS) if a.title == "Next bad frame")
        options.highlighted = index
        options.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert story_app.screen.id == "frames"
        assert story_app.screen.query_one(FrameList).cursor == 5  # the broken FCS


async def test_copy_profile_has_the_cli_lines_and_a_file(
    story_app: DoctorApp, hermetic_dirs: Path
) -> None:
    async with story_app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        text = story_app.clipboard
        assert "gurux client: -h 192.0.2.10 -p 4059 -c 16" in text
        assert "[targets.meter]" in text and "dlmsdoctor probe 192.0.2.10:4059" in text
        files = list((hermetic_dirs / "data" / "profiles").glob("*.txt"))
        assert len(files) == 1 and files[0].read_text(encoding="utf-8") == text
        shown = " ".join(str(n.message) for n in story_app._notifications)
        assert str(files[0]) in shown and "OSC 52" in shown


async def test_export_says_secrets_stay_masked(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(story_app.screen, ExportScreen)
        assert not story_app.screen.query("#export-secrets")  # no option that cannot work
        note = str(story_app.screen.query_one("#export-secrets-note", Label).render())
        assert "masked" in note
        await pilot.press("escape")
        await pilot.pause()
        assert story_app.screen.id == "diagnosis"


async def test_undecoded_bytes_never_get_a_check_mark(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        frame_list = story_app.screen.query_one(FrameList)
        # frame 6 is "Port already in use\r\n": text from a bridge, not DLMS
        line = frame_list.render_line(7).text
        assert "✓" not in line and ("?" in line or "✗" in line), line
        assert "✓" in frame_list.render_line(3).text  # the UA


async def test_garbage_with_only_warnings_gets_a_question_mark() -> None:
    """33 bytes that are not DLMS (warnings only, no error) once got a check mark."""
    from dlmsdoctor.widgets.frame_decode import classify

    session = story_session()
    noise = bytes(range(0x80, 0x80 + 33))
    kind, summary, findings = classify(noise, "rx")
    assert not any(f.get("severity") == "error" for f in findings)  # nothing flagged it
    session.frames.append(FrameRecord(len(session.frames), 1, Direction.RX, 3.0, noise,
                                      "assoc.login", kind, summary=summary, findings=findings))
    app = create_app(session, start_screen="frames")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        frame_list = app.screen.query_one(FrameList)
        await pilot.press("end")
        await pilot.pause()
        line = next(frame_list.render_line(y).text for y in range(frame_list.size.height)
                    if frame_list.render_line(y).text.strip().startswith("8 "))
        assert "✓" not in line and " ? " in line, line


async def test_an_answer_with_another_invoke_id_is_flagged() -> None:
    session = story_session()
    base = len(session.frames)
    get = bytes.fromhex("C001C1000100002A0000FF0200")  # GET-Request invoke-id 1
    answer = bytes.fromhex("C401C2000907444C4430303031")  # GET-Response invoke-id 2
    for offset, (direction, apdu) in enumerate(((Direction.TX, get), (Direction.RX, answer))):
        frame = build_i(SERVER, 1, to_server=direction is Direction.TX, ns=1, nr=1, info=apdu)
        session.frames.append(FrameRecord(base + offset, 1, direction, 2.0 + offset, frame,
                                          "cosem.identity", "hdlc"))
    app = create_app(session, start_screen="frames")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        frame_list = app.screen.query_one(FrameList)
        assert frame_list.other_invoke_id(base + 1) == 1
        assert frame_list.other_invoke_id(base) is None
        frame_list.cursor = base + 1
        await pilot.pause()
        line = next(frame_list.render_line(y).text for y in range(frame_list.size.height)
                    if frame_list.render_line(y).text.strip().startswith(str(base + 1)))
        assert "≠" in line and "another invoke-id" in line, line


async def test_detail_panes_scroll_back_up_for_a_new_session(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3", "down", "down", "down", "down")
        await pilot.pause(0.2)
        screen = story_app.screen
        assert isinstance(screen, FramesScreen)
        tree = screen.query_one(DecodeTree)
        tree.scroll_to(y=5, animate=False)
        screen.query_one(HexView).scroll_to(y=2, animate=False)
        await pilot.pause()
        assert tree.scroll_y > 0
        story_app.show_session(story_session())  # a new run, another session
        await pilot.pause()
        assert tree.scroll_y == 0 and screen.query_one(HexView).scroll_y == 0


async def test_decode_screen_explains_like_the_cli() -> None:
    from dlmsdoctor.output.decode_view import brief_lines
    from dlmsdoctor.screens.decode import decode_text

    text = "TX 7E A0 07 03 21 93 0F 01 7E\n<- 7E A0 07 21 03 73 0A 7F 7E\nnoise ZZ\n"
    app = create_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f8")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DecodeScreen)
        screen.query_one(TextArea).text = text
        await pilot.press("ctrl+r")
        await pilot.pause()
        frames = screen.query_one("#decode-frames", OptionList)
        result = decode_text(text)
        assert frames.option_count == len(result.frames) >= 2
        notes = str(screen.query_one("#decode-notes", Static).render())
        cli = "\n".join(line.plain for line in brief_lines(result.frames[0]))
        assert notes == cli
        assert screen.query_one(HexView).data.startswith(bytes.fromhex("7EA007"))
        await pilot.press("down")
        await pilot.pause()
        assert "UA" in str(screen.query_one("#decode-notes", Static).render())


@pytest.mark.parametrize(
    ("typed", "host", "port"),
    [
        ("127.0.0.1:4061", "127.0.0.1", "4061"),
        ("[::1]:4062", "::1", "4062"),
        ("::1", "::1", "4059"),
        ("meter.example", "meter.example", "4059"),
    ],
)
async def test_host_takes_what_the_cli_takes(typed: str, host: str, port: str) -> None:
    from dlmsdoctor.widgets.target_form import TargetForm

    app = create_app(start_screen="probe")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        form = app.screen.query_one(TargetForm)
        form.query_one("#host", Input).value = typed
        values = form.values()
        assert (values.host, str(values.port)) == (host, port)
        assert form.query_one("#port", Input).value == port


async def test_a_bad_host_port_names_the_field() -> None:
    app = create_app(start_screen="probe")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen.query_one("#host", Input).value = "10.0.0.1:99999"
        await pilot.press("ctrl+r")
        await pilot.pause()
        shown = " ".join(str(n.message) for n in app._notifications)
        assert "port must be 1..65535" in shown
        assert app.focused is app.screen.query_one("#host", Input)


async def test_esc_goes_back_one_level(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3", "f2", "f5")
        await pilot.pause()
        assert story_app.screen.id == "history"
        await pilot.press("f1")  # a dialog first: esc closes it
        await pilot.pause()
        assert isinstance(story_app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert story_app.screen.id == "history"
        await pilot.press("escape")
        await pilot.pause()
        assert story_app.screen.id == "probe"  # no run under way: esc is "back" here too
        await pilot.press("escape")
        await pilot.pause()
        assert story_app.screen.id == "frames"
        await pilot.press("escape")
        await pilot.pause()
        assert story_app.screen.id == "diagnosis"  # where the app opened


async def test_probe_actions_before_its_first_visit(story_app: DoctorApp) -> None:
    """F6 and ctrl+s work though the Probe screen was never shown."""
    async with story_app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f6")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert story_app.screen.id == "diagnosis"
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.pause()
        assert story_app.screen.id == "probe"  # the form being saved comes into view
        shown = " ".join(str(n.message) for n in story_app._notifications)
        assert "Host is empty" in shown  # nothing to save yet
        assert story_app.focused is story_app.screen.query_one("#host", Input)


async def test_wide_diagnosis_shows_the_ladder_and_its_rungs_open_frames(
    story_app: DoctorApp,
) -> None:
    from dlmsdoctor.widgets.ladder import Ladder

    async with story_app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        ladder = story_app.screen.query_one("#diagnosis-ladder", Ladder)
        assert ladder.display and ladder.row_count == 6
        assert ladder.state_of("assoc.login") == "failed"
        await pilot.press("tab", "tab")  # causes -> evidence -> ladder
        assert story_app.focused is ladder
        ladder.move_cursor(row=ladder.get_row_index("assoc.login"))
        await pilot.press("enter")
        await pilot.pause()
        assert story_app.screen.id == "frames"
        frame_list = story_app.screen.query_one(FrameList)
        assert frame_list.frames[frame_list.cursor].step_id == "assoc.login"
    async with create_app(story_session()).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not pilot.app.screen.query_one("#diagnosis-ladder", Ladder).display
