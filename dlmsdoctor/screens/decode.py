"""The Decode screen: paste hex or log lines, read the same explanation as `dlmsdoctor decode`
(its lines, from ``output.decode_view``), with the hex view and the field tree of each frame."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from dlmsdoctor.codec.decode import Chunk, DecodeResult, FrameDecode, InputProblem, decode_chunks
from dlmsdoctor.codec.hexinput import parse_hex_input
from dlmsdoctor.screens.layout import FRAMES_BREAKPOINTS
from dlmsdoctor.widgets.decode_tree import DecodeTree
from dlmsdoctor.widgets.hex_view import HexView


def decode_text(text: str) -> DecodeResult:
    """What `dlmsdoctor decode` does with the same text: chunks found, decoded, problems kept."""
    found = parse_hex_input(text)
    chunks = [Chunk(c.data, c.direction, c.line, c.timestamp) for c in found.chunks]
    result = decode_chunks(chunks)
    problems = tuple(InputProblem(p.line, p.message, p.source) for p in found.problems)
    return DecodeResult(result.chunks, result.frames, problems + result.problems)


def explanation(fd: FrameDecode) -> Text:
    """The frame's lines as `dlmsdoctor decode --brief` prints them: head, summary, findings."""
    from dlmsdoctor.output.decode_view import brief_lines

    return Text("\n").join(brief_lines(fd))


class DecodeScreen(Screen[None]):
    CSS_PATH = "decode.tcss"
    AUTO_FOCUS = "#decode-input"
    HORIZONTAL_BREAKPOINTS = FRAMES_BREAKPOINTS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "decode", "Decode", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__(id="decode")
        self._result: DecodeResult | None = None

    def compose(self) -> ComposeResult:
        yield Static(
            "Decode: paste hex or log lines, then ctrl+r (the frames list follows)",
            id="decode-title",
            classes="screen-title",
        )
        yield TextArea(id="decode-input", soft_wrap=True, show_line_numbers=False)
        yield OptionList(id="decode-frames")
        with Horizontal(id="decode-detail"):
            yield HexView(id="decode-hex")
            with Vertical(id="decode-right"):
                yield DecodeTree(id="decode-tree")
                with VerticalScroll(id="decode-notes-box"):
                    yield Static("", id="decode-notes")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#decode-input", TextArea).border_title = "input"
        self.query_one("#decode-frames", OptionList).border_title = "frames"

    def action_decode(self) -> None:
        text = self.query_one("#decode-input", TextArea).text
        result = decode_text(text)
        self._result = result
        frames = self.query_one("#decode-frames", OptionList)
        frames.clear_options()
        for fd in result.frames:
            mark = ("✓" if fd.valid else "✗") if fd.is_dlms else "?"
            line = Text(f"{mark} {fd.index + 1:>3} {fd.direction or '  '} ", style="bold")
            line.append(fd.summary)
            frames.add_option(Option(line, id=f"frame-{fd.index}"))
        notes = self.query_one("#decode-notes", Static)
        if not result.frames:
            problems = "; ".join(f"line {p.line}: {p.message}" for p in result.problems)
            notes.update(problems or "No hex found: paste frames as hex (7E A0 ...) or log lines.")
            self.query_one(HexView).show(b"")
            self.query_one(DecodeTree).clear()
            return
        frames.highlighted = 0
        self._show(result.frames[0])
        frames.focus()

    @on(OptionList.OptionHighlighted, "#decode-frames")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if self._result is not None and 0 <= event.option_index < len(self._result.frames):
            self._show(self._result.frames[event.option_index])

    def _show(self, fd: FrameDecode) -> None:
        # Spans are offsets in the chunk (the pasted line) the frame came in: show that chunk.
        assert self._result is not None
        data = self._result.chunks[fd.chunk].data if fd.chunk < len(self._result.chunks) else b""
        spans = fd.all_spans
        secret = [(s.offset, s.length) for root in spans for s in root.walk() if s.secret]
        self.query_one(HexView).show(
            data, findings=[(f.offset, max(1, f.length)) for f in fd.frame.findings],
            secrets=secret,
        )
        separate = fd.apdu_spans_if_separate
        apdu = (f"APDU ({fd.apdu_type})", separate, fd.apdu_data or b"") if separate else None
        self.query_one(DecodeTree).show(spans, fd.frame.findings, data, apdu=apdu)
        self.query_one(HexView).select(fd.frame.offset, len(fd.frame.data))
        self.query_one("#decode-notes", Static).update(explanation(fd))
