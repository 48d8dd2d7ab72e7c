"""The TX/RX frame list: one line per frame, drawn with the Line API.

Only the visible rows are ever rendered (toolong's approach), so a session of 100,000 frames costs
the same widgets as one of ten. The list holds a reference to the session's frame list; callers
append to it and call ``frames_added`` during a live run.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from dlmsdoctor.events import Direction
from dlmsdoctor.session import FrameRecord
from dlmsdoctor.widgets.frame_decode import RowCache, apdu_invoke_id, is_decoded, is_valid

HEADER = f"{'#':>6} {'time':>9} {'dir':<3} {'kind':<8} {'size':>5}   summary"
# Below WIDE_LIST columns the row drops the kind (the summary names it) and narrows the rest:
# the summary starts at column 21 instead of 38, so 80 columns read it.
WIDE_LIST = 110
COMPACT_HEADER = f"{'#':>5} {'time':>8} {'':<2}{'size':>4}   summary"

# The mark of a row: ✓ DLMS decoded clean, ✗ an error, ? bytes that are not DLMS (text, garbage,
# a cut frame: never a check mark), ≠ an answer whose invoke-id is not the request's.
MARKS = {"ok": "✓", "error": "✗", "raw": "?", "other-id": "≠"}


def row_mark(record: FrameRecord, valid: bool, other_id: int | None = None) -> str:
    if not valid:
        return MARKS["error"]
    if other_id is not None:
        return MARKS["other-id"]
    return MARKS["ok"] if is_decoded(record) else MARKS["raw"]


def format_row(
    record: FrameRecord,
    summary: str,
    valid: bool,
    *,
    other_id: int | None = None,
    compact: bool = False,
) -> str:
    mark = row_mark(record, valid, other_id)
    if other_id is not None:
        summary = f"[another invoke-id: the request had #{other_id}] {summary}"
    if compact:
        arrow = "→" if record.direction is Direction.TX else "←"
        return f"{record.index:>5} {record.at:>8.3f} {arrow} {len(record.data):>4} {mark} {summary}"
    arrow = "TX>" if record.direction is Direction.TX else "<RX"
    kind = (record.kind or "?")[:8]
    return (
        f"{record.index:>6} {record.at:>9.3f} {arrow:<3} {kind:<8} {len(record.data):>5} "
        f"{mark} {summary}"
    )


class FrameList(ScrollView, can_focus=True):
    """A virtual list of frames; posts ``FrameList.Highlighted`` when the cursor moves."""

    DEFAULT_CSS = """
    FrameList { background: $surface; }
    FrameList > .frame-list--header { text-style: bold; color: $text-muted; }
    FrameList > .frame-list--cursor { background: $accent 40%; }
    FrameList:focus > .frame-list--cursor { background: $accent; color: $text; }
    FrameList > .frame-list--tx { color: $text; }
    FrameList > .frame-list--rx { color: $secondary; }
    FrameList > .frame-list--invalid { color: $error; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "frame-list--header",
        "frame-list--cursor",
        "frame-list--tx",
        "frame-list--rx",
        "frame-list--invalid",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("n", "next_problem(1)", "Next bad frame"),
        Binding("N", "next_problem(-1)", "Previous bad frame", show=False),
    ]

    cursor: reactive[int] = reactive(0, init=False)

    class Highlighted(Message):
        """The cursor moved to a frame (by index into the list)."""

        def __init__(self, frame_list: FrameList, position: int) -> None:
            super().__init__()
            self.frame_list = frame_list
            self.position = position

        @property
        def control(self) -> FrameList:
            return self.frame_list

    def __init__(self, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self._frames: list[FrameRecord] = []
        self._known = 0  # frames already shown (the list is shared and grows during a run)
        self._width = len(HEADER)
        # The stored summary is the link level only ("I N(S)=0 N(R)=0 ..."): the visible rows are
        # decoded for their APDU, once each.
        self._rows = RowCache()
        self._invoke: dict[int, int | None] = {}  # position -> invoke-id (decoded once)

    # -- data in ---------------------------------------------------------------------------
    @property
    def frames(self) -> list[FrameRecord]:
        return self._frames

    def set_frames(self, frames: list[FrameRecord], keep_cursor: bool = False) -> None:
        """Show ``frames``; ``keep_cursor`` keeps the position (a live run's final record)."""
        position = min(self.cursor, len(frames) - 1) if keep_cursor and frames else 0
        self._frames = frames
        self._known = len(frames)
        self._rows = RowCache()  # another session: its marks come from its own findings
        self._invoke = {}
        self.set_reactive(FrameList.cursor, position)
        self._width = len(HEADER)
        self._update_size()
        if not keep_cursor:
            self.scroll_to(0, 0, animate=False)
        self.refresh()
        if frames:
            self.post_message(self.Highlighted(self, position))

    def frames_added(self) -> None:
        """New frames were appended to the shared list (live run).

        Like ``tail -f``: a cursor on the last frame follows the new ones; anywhere else it stays.
        """
        following = self._known > 0 and self.cursor >= self._known - 1
        self._known = len(self._frames)
        self._update_size()
        self.refresh()
        if following:
            self.cursor = self._known - 1

    def _update_size(self) -> None:
        # One header line plus one line per frame; width grows to the longest summary seen
        # on screen, so horizontal scroll works without measuring 100,000 rows up front.
        self.virtual_size = Size(self._width, len(self._frames) + 1)

    # -- cursor ----------------------------------------------------------------------------
    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self._frames) - 1)) if self._frames else 0

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_cursor_into_view()
        self.refresh()
        if self._frames:
            self.post_message(self.Highlighted(self, new))

    def _scroll_cursor_into_view(self) -> None:
        row = self.cursor + 1  # header is line 0
        top = int(self.scroll_y) + 1
        visible = max(1, self.scrollable_content_region.height - 1)
        if row < top:
            self.scroll_to(y=row - 1, animate=False)
        elif row >= top + visible:
            self.scroll_to(y=row - visible, animate=False)

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.scrollable_content_region.height - 1)

    def action_jump(self, where: int) -> None:
        self.cursor = len(self._frames) - 1 if where < 0 else where

    def row_facts(self, record: FrameRecord) -> tuple[str, bool]:
        """Summary (APDU first, then link level) and validity mark of a row."""
        return self._rows.get(record)

    def _invoke_id(self, position: int) -> int | None:
        if position not in self._invoke:
            self._invoke[position] = apdu_invoke_id(self._frames[position])
        return self._invoke[position]

    def other_invoke_id(self, position: int) -> int | None:
        """For an answer whose invoke-id differs from its request's: the request's id."""
        record = self._frames[position]
        if record.direction is not Direction.RX:
            return None
        got = self._invoke_id(position)
        if got is None:
            return None
        request = record.answers if isinstance(record.answers, int) else None
        if request is not None and 0 <= request < len(self._frames):
            candidates = [request]
        else:
            candidates = list(range(position - 1, max(-1, position - 64), -1))
        for earlier in candidates:
            other = self._frames[earlier]
            if other.direction is Direction.TX and other.conn_id == record.conn_id:
                sent = self._invoke_id(earlier)
                if sent is not None:
                    return sent if sent != got else None
        return None

    @property
    def compact(self) -> bool:
        return self.scrollable_content_region.width < WIDE_LIST

    def _valid(self, record: FrameRecord) -> bool:
        # A recorded frame's mark is in its stored findings: searching 100,000 of them for the
        # next bad one must not decode each.
        return is_valid(record) if record.summary else self._rows.get(record)[1]

    def action_next_problem(self, step: int) -> None:
        """Move to the next (step 1) or previous (-1) frame with an error finding."""
        position = self.cursor + step
        while 0 <= position < len(self._frames):
            if not self._valid(self._frames[position]):
                self.cursor = position
                return
            position += step
        self.notify("No more frames with errors that way.", timeout=3)

    def select_frame_index(self, frame_index: int) -> bool:
        """Move the cursor to the frame whose ``index`` is given (evidence links use this)."""
        frames = self._frames
        if 0 <= frame_index < len(frames) and frames[frame_index].index == frame_index:
            self.cursor = frame_index  # the usual case: indexes are positions
            return True
        for position, record in enumerate(frames):
            if record.index == frame_index:
                self.cursor = position
                return True
        return False

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        row = offset.y + int(self.scroll_y)
        if row >= 1:
            self.cursor = row - 1

    # -- rendering -------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        compact = self.compact
        if y == 0:
            text = COMPACT_HEADER if compact else HEADER
            style = self.get_component_rich_style("frame-list--header")
        else:
            position = y + scroll_y - 1
            if position >= len(self._frames):
                return Strip.blank(width, base)
            record = self._frames[position]
            summary, valid = self.row_facts(record)
            other = self.other_invoke_id(position)
            text = format_row(record, summary, valid, other_id=other, compact=compact)
            if len(text) > self._width:
                self._width = len(text)
                self.call_later(self._update_size)
            style = self.get_component_rich_style(
                "frame-list--tx" if record.direction is Direction.TX else "frame-list--rx"
            )
            if not valid or other is not None:
                style += self.get_component_rich_style("frame-list--invalid")
            if position == self.cursor:
                style += self.get_component_rich_style("frame-list--cursor")
        strip = Strip([Segment(text, base + style)])
        if y == 0:
            return strip.crop_extend(scroll_x, scroll_x + width, base)
        return strip.crop_extend(scroll_x, scroll_x + width, base + style)
