"""Pilot tests of the Frames screen: navigation, field <-> bytes, findings on bytes."""

from __future__ import annotations

import pytest

from dlmsdoctor.app import DoctorApp
from dlmsdoctor.codec.model import Span
from dlmsdoctor.widgets.decode_tree import DecodeTree
from dlmsdoctor.widgets.frame_list import FrameList
from dlmsdoctor.widgets.hex_view import OFFSET_WIDTH, HexView


async def test_frames_navigate_and_select_field(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        screen = story_app.screen
        assert screen.id == "frames"
        frame_list = screen.query_one(FrameList)
        assert frame_list.has_focus
        await pilot.press("down", "down", "down")  # frame 3: the AARQ I-frame
        await pilot.pause()
        assert frame_list.cursor == 3
        hex_view = screen.query_one(HexView)
        assert hex_view.data == story_app.session.frames[3].data  # type: ignore[union-attr]

        tree = screen.query_one(DecodeTree)
        node = next(
            n
            for n in tree._span_nodes.values()
            if n.data is not None and n.data.name == "apdu.aarq.mechanism_name"
        )
        tree.move_cursor(node)
        await pilot.pause()
        span = node.data
        assert isinstance(span, Span)
        assert hex_view.selected == (span.offset, span.length)


@pytest.mark.parametrize(("size", "expected_per_row"), [((160, 40), 16), ((120, 40), 8)])
async def test_clicking_a_byte_selects_its_field(
    story_app: DoctorApp, size: tuple[int, int], expected_per_row: int
) -> None:
    # Side by side from 150 columns (16 bytes a row); stacked below, the list full width.
    async with story_app.run_test(size=size) as pilot:
        await pilot.press("f3", "down", "down", "down")
        await pilot.pause()
        screen = story_app.screen
        hex_view = screen.query_one(HexView)
        per_row = hex_view.bytes_per_row
        assert per_row == expected_per_row
        target = 0x0C  # first byte of the APDU (AARQ tag 0x60) in this frame
        row, column = divmod(target, per_row)
        # +1: the hex view's border; the widget maps content offsets to bytes.
        await pilot.click(HexView, offset=(1 + OFFSET_WIDTH + 3 * column, 1 + row))
        await pilot.pause()
        tree = screen.query_one(DecodeTree)
        assert tree.cursor_node is not None and tree.cursor_node.data is not None
        chosen = tree.cursor_node.data
        assert chosen.offset <= target < chosen.end
        assert chosen.name.startswith("apdu.aarq")
        assert hex_view.selected == (chosen.offset, chosen.length)
        # Keys move the byte cursor; the field follows.
        await pilot.press("right")
        await pilot.pause()
        assert hex_view.byte_cursor == target + 1


async def test_secret_bytes_are_masked_and_findings_marked(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3", "down", "down", "down")
        await pilot.pause()
        hex_view = story_app.screen.query_one(HexView)
        text = "\n".join(hex_view.render_line(y).text for y in range(6))
        assert "31 32 33" not in text  # the password "12345678" never shows
        assert "**" in text
        await pilot.press("down", "down")  # frame 5: the AARE with a broken FCS
        await pilot.pause()
        fcs = len(hex_view.data) - 3
        assert any(s <= fcs < s + n for s, n in hex_view._findings)


async def test_frame_list_marks_invalid_frames(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        frame_list = story_app.screen.query_one(FrameList)
        lines = [frame_list.render_line(y).text for y in range(10)]
        assert "✗" in lines[6]  # header + frame 5 (broken FCS)
        assert "✓" in lines[3]  # frame 2, the UA


async def test_n_jumps_between_bad_frames(story_app: DoctorApp) -> None:
    async with story_app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3", "n")
        frame_list = story_app.screen.query_one(FrameList)
        assert frame_list.cursor == 5  # broken FCS
        await pilot.press("n")
        assert frame_list.cursor == 6  # "Port already in use": bytes outside a frame
        await pilot.press("N")
        assert frame_list.cursor == 5


async def test_rows_without_a_stored_summary_are_decoded() -> None:
    from dlmsdoctor.app import create_app
    from tests.tui.fixtures import story_session

    session = story_session()
    for record in session.frames:  # as read from a foreign capture: bytes only
        record.summary, record.kind, record.findings = "", "", []
    app = create_app(session, start_screen="frames")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        frame_list = app.screen.query_one(FrameList)
        assert "SNRM" in frame_list.render_line(1).text
        assert "✗" in frame_list.render_line(6).text  # the broken FCS, found by decoding
        await pilot.press("n")
        assert frame_list.cursor == 5


async def test_live_frames_follow_like_tail() -> None:
    from dlmsdoctor.app import create_app
    from dlmsdoctor.screens.frames import FramesScreen
    from tests.tui.fixtures import story_session

    session = story_session()
    extra = session.frames[4:]
    del session.frames[4:]
    app = create_app(session, start_screen="frames")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FramesScreen)
        frame_list = screen.query_one(FrameList)
        await pilot.press("end")
        session.frames.extend(extra[:2])  # a live run appends to the shared list
        screen.frames_added()
        await pilot.pause()
        assert frame_list.cursor == 5  # was on the last frame: follows
        await pilot.press("home")
        session.frames.extend(extra[2:])
        screen.frames_added()
        await pilot.pause()
        assert frame_list.cursor == 0  # was elsewhere: stays
        assert frame_list.virtual_size.height == len(session.frames) + 1


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_rows_show_the_apdu_first(size: tuple[int, int]) -> None:
    """An AARQ and an AARE are told apart though their I-frame headers look alike."""
    from dlmsdoctor.app import create_app
    from tests.tui.fixtures import story_session

    session = story_session()
    for record in session.frames:  # as the engine records them: the link level only
        record.summary = record.summary.split(" | ")[0]
    assert session.frames[3].summary.startswith("I N(S)=0")
    app = create_app(session, start_screen="frames")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        frame_list = app.screen.query_one(FrameList)
        aarq = frame_list.render_line(4).text  # header is line 0, frame 3 is line 4
        aare = frame_list.render_line(5).text
        assert len(aarq) <= size[0]
        assert "AARQ LN" in aarq
        assert "N(S)" not in aarq or aarq.index("AARQ") < aarq.index("N(S)")
        assert "AARE LN" in aare
        assert "SNRM" in frame_list.render_line(1).text  # no APDU: the link level as before
