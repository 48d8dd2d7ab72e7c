"""A 100,000-frame session scrolls without creating widgets per frame (Line API)."""

from __future__ import annotations

import time

from dlmsdoctor.app import create_app
from dlmsdoctor.widgets.frame_list import FrameList
from tests.tui.fixtures import big_session

FRAMES = 100_000


async def test_large_session_scrolls_without_widgets_per_frame() -> None:
    app = create_app(big_session(FRAMES), start_screen="frames")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        frame_list = screen.query_one(FrameList)
        assert len(frame_list.frames) == FRAMES
        nodes_before = len(list(app.screen.walk_children(with_self=True)))
        assert nodes_before < 100  # a screen's worth of widgets, not a widget per frame

        started = time.perf_counter()
        for _ in range(50):
            await pilot.press("pagedown")
        await pilot.press("end")
        await pilot.pause()
        elapsed = time.perf_counter() - started

        assert frame_list.cursor == FRAMES - 1
        assert frame_list.scroll_y > FRAMES - 100
        last_line = frame_list.render_line(frame_list.scrollable_content_region.height - 1)
        assert str(FRAMES - 1) in last_line.text
        nodes_after = len(list(app.screen.walk_children(with_self=True)))
        assert nodes_after == nodes_before
        # Drawing a page at the far end costs what it costs at the start: only visible rows.
        height = frame_list.scrollable_content_region.height
        started = time.perf_counter()
        for _ in range(10):
            for y in range(height):
                frame_list.render_line(y)
        page = (time.perf_counter() - started) / 10
        assert page < 0.05, page
        # Pilot waits for a full redraw after each key: a loose bound that still catches an
        # O(frames) step per keypress (that would take seconds per key at 100,000 frames).
        assert elapsed < 30, elapsed
        print(
            f"\n{FRAMES} frames: {nodes_before} DOM nodes before and after; 51 page moves "
            f"{elapsed:.2f}s under Pilot; one page of {height} rows drawn in {page * 1000:.1f} ms"
        )
