"""An annotated hex view: offsets, hex bytes and ASCII, drawn line by line.

The screen hands it the frame's bytes, the byte ranges of findings and of secrets, and the range of
the selected field. Clicking a byte or moving the byte cursor posts ``HexView.ByteSelected`` so the
screen can select the field that holds it (attributes down, messages up).
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

OFFSET_WIDTH = 6  # "0000  "


def _printable(byte: int) -> str:
    return chr(byte) if 0x20 <= byte < 0x7F else "."


class HexView(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    HexView { background: $surface; }
    HexView > .hex-view--offset { color: $text-muted; }
    HexView > .hex-view--selected { background: $accent; color: $text; text-style: bold; }
    HexView > .hex-view--finding { color: $error; text-style: bold underline; }
    HexView > .hex-view--cursor { text-style: reverse; }
    HexView > .hex-view--secret { color: $warning; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "hex-view--offset",
        "hex-view--selected",
        "hex-view--finding",
        "hex-view--cursor",
        "hex-view--secret",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Byte left", show=False),
        Binding("right", "move(1)", "Byte right", show=False),
        Binding("up", "move_row(-1)", "Row up", show=False),
        Binding("down", "move_row(1)", "Row down", show=False),
    ]

    byte_cursor: reactive[int | None] = reactive(None, init=False)

    class ByteSelected(Message):
        """The user pointed at one byte (click or cursor keys)."""

        def __init__(self, hex_view: HexView, offset: int) -> None:
            super().__init__()
            self.hex_view = hex_view
            self.offset = offset

        @property
        def control(self) -> HexView:
            return self.hex_view

    def __init__(self, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self._data = b""
        self._selected: tuple[int, int] | None = None
        self._findings: list[tuple[int, int]] = []
        self._secrets: list[tuple[int, int]] = []
        self.show_secrets = False

    # -- data in ---------------------------------------------------------------------------
    @property
    def data(self) -> bytes:
        return self._data

    @property
    def selected(self) -> tuple[int, int] | None:
        return self._selected

    def show(
        self,
        data: bytes,
        findings: list[tuple[int, int]] | None = None,
        secrets: list[tuple[int, int]] | None = None,
    ) -> None:
        self._data = data
        self._findings = list(findings or [])
        self._secrets = list(secrets or [])
        self._selected = None
        self.set_reactive(HexView.byte_cursor, None)
        self._update_size()
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def select(self, offset: int, length: int) -> None:
        """Highlight a field's bytes and bring them into view."""
        self._selected = (offset, max(1, length))
        row = offset // self.bytes_per_row
        if not int(self.scroll_y) <= row < int(self.scroll_y) + self.size.height:
            self.scroll_to(y=row, animate=False)
        self.refresh()

    # -- geometry --------------------------------------------------------------------------
    @property
    def bytes_per_row(self) -> int:
        # n bytes need 6 + 3n + 1 + n cells: 16 -> 71, 8 -> 39; narrower panes get 4.
        width = self.scrollable_content_region.width
        return 16 if width >= 71 else 8 if width >= 39 else 4

    def _update_size(self) -> None:
        per_row = self.bytes_per_row
        rows = max(1, -(-len(self._data) // per_row))
        self.virtual_size = Size(OFFSET_WIDTH + per_row * 4 + 1, rows)

    def on_resize(self, event: events.Resize) -> None:
        self._update_size()

    def _offset_at(self, x: int, y: int) -> int | None:
        per_row = self.bytes_per_row
        row = y + int(self.scroll_y)
        x += int(self.scroll_x)
        hex_end = OFFSET_WIDTH + per_row * 3
        if OFFSET_WIDTH <= x < hex_end:
            column = (x - OFFSET_WIDTH) // 3
        elif hex_end + 1 <= x < hex_end + 1 + per_row:
            column = x - hex_end - 1
        else:
            return None
        offset = row * per_row + column
        return offset if offset < len(self._data) else None

    # -- input -----------------------------------------------------------------------------
    def on_click(self, event: events.Click) -> None:
        point = event.get_content_offset(self)
        if point is None:
            return
        offset = self._offset_at(point.x, point.y)
        if offset is not None:
            self.byte_cursor = offset

    def action_move(self, delta: int) -> None:
        if not self._data:
            return
        start = self.byte_cursor if self.byte_cursor is not None else -delta
        self.byte_cursor = max(0, min(len(self._data) - 1, start + delta))

    def action_move_row(self, delta: int) -> None:
        self.action_move(delta * self.bytes_per_row)

    def watch_byte_cursor(self, offset: int | None) -> None:
        self.refresh()
        if offset is not None:
            self.post_message(self.ByteSelected(self, offset))

    # -- rendering -------------------------------------------------------------------------
    def _in(self, ranges: list[tuple[int, int]], offset: int) -> bool:
        return any(start <= offset < start + length for start, length in ranges)

    def _byte_style(self, offset: int) -> Style:
        style = Style()
        if self._in(self._secrets, offset):
            style += self.get_component_rich_style("hex-view--secret")
        if self._selected and self._in([self._selected], offset):
            style += self.get_component_rich_style("hex-view--selected")
        if self._in(self._findings, offset):
            style += self.get_component_rich_style("hex-view--finding")
        if offset == self.byte_cursor:
            style += self.get_component_rich_style("hex-view--cursor")
        return style

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        per_row = self.bytes_per_row
        start = (y + scroll_y) * per_row
        if start >= len(self._data):
            return Strip.blank(width, base)
        chunk = self._data[start : start + per_row]
        segments = [
            Segment(f"{start:04X}  ", base + self.get_component_rich_style("hex-view--offset"))
        ]
        ascii_segments: list[Segment] = []
        for i, byte in enumerate(chunk):
            offset = start + i
            style = base + self._byte_style(offset)
            masked = not self.show_secrets and self._in(self._secrets, offset)
            segments.append(Segment("**" if masked else f"{byte:02X}", style))
            segments.append(Segment(" ", base))
            ascii_segments.append(Segment("*" if masked else _printable(byte), style))
        segments.append(Segment("   " * (per_row - len(chunk)) + " ", base))
        segments.extend(ascii_segments)
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, base)
