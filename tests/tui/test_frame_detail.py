"""The Frames screen's detail: readable tree labels, reassembled APDUs, a throttled tree."""

from __future__ import annotations

import asyncio
import time

from textual import events

from dlmsdoctor.app import create_app
from dlmsdoctor.codec.decode import Chunk, decode_chunks
from dlmsdoctor.codec.hdlc import build_i, build_rr
from dlmsdoctor.events import Direction
from dlmsdoctor.screens.frames import TREE_INTERVAL, FramesScreen
from dlmsdoctor.session import FrameRecord, Session
from dlmsdoctor.widgets.decode_tree import DecodeTree
from dlmsdoctor.widgets.frame_list import FrameList
from dlmsdoctor.widgets.hex_view import HexView
from tests.tui.fixtures import AARQ, SERVER, big_session, story_session


def _labels(tree: DecodeTree) -> dict[str, str]:
    """Plain label of each node by span name (the first one of a name wins)."""
    out: dict[str, str] = {}
    stack = list(tree.root.children)
    while stack:
        node = stack.pop(0)
        if node.data is not None:
            out.setdefault(node.data.name, str(node.label))
        stack[:0] = list(node.children)
    return out


async def _settle(pilot: object, screen: FramesScreen) -> None:
    while not screen.tree_settled:
        await pilot.pause(TREE_INTERVAL)  # type: ignore[attr-defined]


async def test_tree_labels_give_meaning_and_bytes_not_raw_numbers() -> None:
    app = create_app(story_session(), start_screen="frames")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, FramesScreen)
        screen.query_one(FrameList).cursor = 3  # the AARQ I-frame
        await pilot.pause()
        await _settle(pilot, screen)
        labels = _labels(screen.query_one(DecodeTree))
        assert labels["hdlc.flag.start"] == "Opening flag  7E", labels["hdlc.flag.start"]
        frame_format = labels["hdlc.format"]
        assert "type A, not segmented" in frame_format and "A0 " in frame_format
        assert "4" not in frame_format.split("A0")[0].replace("44", "")  # no 41004
        assert "= " not in "".join(labels.values())
        # The LLS password "12345678" (31..38) stays masked, in meaning and in bytes.
        secret = labels["apdu.aarq.calling_authentication_value.value"]
        assert "••••" in secret and "** ** **" in secret
        assert "31 32 33" not in "".join(labels.values())
        assert "12345678" not in "".join(labels.values())


def _segmented_session() -> tuple[Session, list[bytes]]:
    """An AARQ split over three HDLC frames, the meter's RR frames and another connection's
    frames in between (its segments must not be mixed in)."""
    parts = [AARQ[:20], AARQ[20:40], AARQ[40:]]
    segments = [
        build_i(SERVER, 1, to_server=True, ns=0, nr=0, info=parts[0], segmented=True),
        build_i(SERVER, 1, to_server=True, ns=1, nr=0, info=parts[1], segmented=True, llc=False),
        build_i(SERVER, 1, to_server=True, ns=2, nr=0, info=parts[2], llc=False),
    ]
    rr = build_rr(SERVER, 1, to_server=False, nr=1)
    other = build_i(SERVER, 1, to_server=True, ns=0, nr=0, info=AARQ[:10], segmented=True)
    rows = [
        (1, Direction.TX, segments[0]),
        (2, Direction.TX, other),  # connection 2: a segment of something else
        (1, Direction.RX, rr),
        (1, Direction.TX, segments[1]),
        (1, Direction.RX, rr),
        (1, Direction.TX, segments[2]),
    ]
    session = story_session()
    session.frames = [
        FrameRecord(i, conn, direction, 0.1 * i, data, "assoc.login")
        for i, (conn, direction, data) in enumerate(rows)
    ]
    return session, segments


async def test_last_segment_shows_the_reassembled_apdu_like_decode() -> None:
    session, segments = _segmented_session()
    expected = decode_chunks([Chunk(s, "tx") for s in segments]).frames[-1]
    assert expected.apdu is not None and expected.reassembled_from == (0, 1, 2)
    app = create_app(session, start_screen="frames")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, FramesScreen)
        tree = screen.query_one(DecodeTree)
        frame_list = screen.query_one(FrameList)

        frame_list.cursor = 3  # a middle segment: segments only
        await pilot.pause()
        await _settle(pilot, screen)
        assert not any("reassembled" in str(n.label) for n in tree.root.children)

        frame_list.cursor = 5  # the last segment
        await pilot.pause()
        await _settle(pilot, screen)
        top = [str(n.label) for n in tree.root.children]
        assert "APDU reassembled from frames #0, #3, #5 (" in top[-1], top
        apdu_node = tree.root.children[-1]
        aarq = apdu_node.children[0]
        assert aarq.data is not None and aarq.data.name == expected.apdu.spans[0].name
        assert expected.apdu.summary in str(aarq.label)
        labels = _labels(tree)
        secret = labels["apdu.aarq.calling_authentication_value.value"]
        assert "••••" in secret and "31 32" not in secret
        # Moving onto a field of the reassembled APDU does not highlight the frame's bytes.
        tree.move_cursor(aarq)
        await pilot.pause()
        assert "of the APDU reassembled" in str(screen.query_one("#frame-notes").render())


async def test_holding_down_rebuilds_the_tree_a_few_times_not_per_frame() -> None:
    app = create_app(big_session(100_000), start_screen="frames")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, FramesScreen)
        await pilot.pause()
        frame_list = screen.query_one(FrameList)
        tree = screen.query_one(DecodeTree)
        await _settle(pilot, screen)
        nodes_before = len(list(screen.walk_children(with_self=True)))
        builds_before = tree.builds
        moves = 60
        started = time.perf_counter()
        for _ in range(moves):  # a held arrow key: the terminal repeats it every 25 ms or so
            app.post_message(events.Key("down", None))
            await asyncio.sleep(0.025)
        elapsed = time.perf_counter() - started
        await _settle(pilot, screen)
        await pilot.pause(TREE_INTERVAL * 2)
        builds = tree.builds - builds_before
        assert frame_list.cursor == moves
        # One rebuild per throttle interval at most (plus the first and the last), not per move.
        assert builds <= elapsed / TREE_INTERVAL + 3, (builds, elapsed)
        assert builds < moves / 2, builds
        # The tree ends on the cursor's frame: the AARQ (frame 3 of each 8) has its APDU nodes.
        cursor_has_aarq = moves % 8 == 3
        has_aarq = any("AARQ" in str(n.label) for n in tree._span_nodes.values())
        assert has_aarq == cursor_has_aarq
        assert len(list(screen.walk_children(with_self=True))) == nodes_before
        print(f"\n{moves} key repeats in {elapsed:.2f} s: the tree was rebuilt {builds} times")


async def test_a_password_split_over_segments_stays_masked_in_each() -> None:
    """The LLS password (APDU bytes 30..37) lies in the middle segment (frame #3) at 19..26:
    that frame's own decode cannot know it is secret; the reassembled APDU does."""
    session, _ = _segmented_session()
    password = b"12345678"
    assert password in session.frames[3].data
    at = session.frames[3].data.index(password)
    app = create_app(session, start_screen="frames")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, FramesScreen)
        screen.query_one(FrameList).cursor = 3
        await pilot.pause()
        await _settle(pilot, screen)
        hex_view = screen.query_one(HexView)
        shown = "".join(hex_view.render_line(y).text for y in range(hex_view.size.height))
        assert "31 32 33" not in shown and "12345678" not in shown, shown
        assert all(hex_view._in(hex_view._secrets, at + i) for i in range(len(password)))
        labels = "".join(_labels(screen.query_one(DecodeTree)).values())
        assert "31 32 33" not in labels
