"""The Frames screen: frame list, annotated hex view and decode tree of the selected frame."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static

from dlmsdoctor.codec.model import Finding, Span
from dlmsdoctor.screens.layout import FRAMES_BREAKPOINTS
from dlmsdoctor.session import FrameRecord, Session
from dlmsdoctor.widgets.decode_tree import DecodeTree
from dlmsdoctor.widgets.frame_decode import DecodeCache, FrameView
from dlmsdoctor.widgets.frame_list import FrameList
from dlmsdoctor.widgets.hex_view import HexView

# Rebuilding the decode tree costs about 7 ms a frame: while the cursor keeps moving (an arrow
# key held down) the tree follows at most this often, and always ends on the cursor's frame.
TREE_INTERVAL = 0.1


def _title(session: Session | None) -> str:
    if session is None:
        return "Frames: no session open (ctrl+o opens one, F2 probes a meter)"
    t = session.target
    return (
        f"Frames: {t.host}:{t.port} {t.framing}  ·  {len(session.frames)} frames  ·  {session.id}"
    )


class FramesScreen(Screen[None]):
    """Shows one session's frames; the app sets ``session`` and calls ``select_frame``."""

    CSS_PATH = "frames.tcss"
    AUTO_FOCUS = "#frame-list"
    HORIZONTAL_BREAKPOINTS = FRAMES_BREAKPOINTS

    def __init__(self) -> None:
        super().__init__(id="frames")
        self._ready = False
        self._pending_frame: int | None = None
        self._pending_bad = 0  # n pressed before the first visit
        self.session: Session | None = None
        self._cache = DecodeCache()
        self._view: FrameView | None = None
        self._tree_pending: FrameView | None = None  # to show when the throttle allows
        self._tree_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(_title(None), id="frames-title", classes="screen-title")
        with Horizontal(id="frames-body"):
            yield FrameList(id="frame-list")
            with Vertical(id="frame-detail"):
                yield HexView(id="hex")
                yield DecodeTree(id="decode-tree")
        yield Static("", id="frame-notes")
        yield Footer()

    # -- attributes down -------------------------------------------------------------------
    def show_session(self, session: Session | None) -> None:
        # A live run's final record replaces the live one: same frames, keep the user's place.
        same_run = (
            self.session is not None
            and session is not None
            and self.session.id.startswith("live-")
            and (self.session.target.host, self.session.target.port)
            == (session.target.host, session.target.port)
        )
        self.session = session
        if not self._ready:
            return  # on_mount shows it
        self.query_one("#frames-title", Static).update(_title(session))
        frames = session.frames if session else []
        if not same_run:
            self._cache.clear()  # indexes repeat across sessions
        self.query_one(FrameList).set_frames(frames, keep_cursor=same_run)
        if not same_run:
            # another session: the detail panes start at their top, not where the last one was
            for pane in (self.query_one(HexView), self.query_one(DecodeTree)):
                pane.scroll_home(animate=False)
        if not frames:
            self._show_frame(None)

    def on_mount(self) -> None:
        self._ready = True
        self.show_session(self.session)
        if self._pending_frame is not None:
            self.select_frame(self._pending_frame)
            self._pending_frame = None
        if self._pending_bad:
            step, self._pending_bad = self._pending_bad, 0
            self.next_bad_frame(step)

    def frames_added(self) -> None:
        """Frames were appended to the session being viewed (live run)."""
        if not self._ready:
            return  # on_mount shows them all
        self.query_one("#frames-title", Static).update(_title(self.session))
        frame_list = self.query_one(FrameList)
        was_empty = self._view is None
        frame_list.frames_added()
        if was_empty and frame_list.frames:
            self._show_frame(frame_list.frames[0], 0)

    def select_frame(self, frame_index: int) -> bool:
        """Show the frame with this session index (an evidence link landed here)."""
        if not self._ready:
            # Not composed yet (first visit): select it once the list is filled.
            self._pending_frame = frame_index
            frames = self.session.frames if self.session else []
            return any(record.index == frame_index for record in frames)
        found = self.query_one(FrameList).select_frame_index(frame_index)
        if found:
            self.query_one(FrameList).focus()
        return found

    def next_bad_frame(self, step: int = 1) -> None:
        """The next frame with an error (the app's n, from any screen)."""
        if not self._ready:  # first visit: once the list is filled
            self._pending_bad = step
            return
        frame_list = self.query_one(FrameList)
        frame_list.focus()
        frame_list.action_next_problem(step)

    # -- messages up -----------------------------------------------------------------------
    @on(FrameList.Highlighted)
    def _frame_highlighted(self, event: FrameList.Highlighted) -> None:
        frames = event.frame_list.frames
        if 0 <= event.position < len(frames):
            self._show_frame(frames[event.position], event.position)

    @on(DecodeTree.SpanSelected)
    def _span_selected(self, event: DecodeTree.SpanSelected) -> None:
        if event.in_frame:
            self.query_one(HexView).select(event.span.offset, event.span.length)
            self._describe(event.span)
        elif self._view is not None:  # a field of the reassembled APDU: not in these bytes
            self._describe(event.span, self._view.apdu_findings, self._view.apdu_title)

    @on(HexView.ByteSelected)
    def _byte_selected(self, event: HexView.ByteSelected) -> None:
        if self._view is None:
            return
        span = self._view.deepest_span_at(event.offset)
        if span is not None:
            self.query_one(DecodeTree).select_span(span)
            self.query_one(HexView).select(span.offset, span.length)
            self._describe(span)

    # -- rendering -------------------------------------------------------------------------
    def _show_frame(self, record: FrameRecord | None, position: int = -1) -> None:
        """Hex view and notes follow at once (cheap); the tree through ``_show_tree``."""
        hex_view = self.query_one(HexView)
        if record is None:
            self._view = None
            self._tree_pending = None
            hex_view.show(b"")
            self.query_one(DecodeTree).clear()
            self.query_one("#frame-notes", Static).update("")
            return
        frames = self.session.frames if self.session else []
        view = self._cache.get(record, frames, position)
        self._view = view
        hex_view.show(
            view.data,
            findings=[(f.offset, max(1, f.length)) for f in view.findings],
            secrets=view.secret_ranges(),
        )
        self.query_one("#frame-notes", Static).update(self._notes(record, view))
        self._show_tree(view)

    def _show_tree(self, view: FrameView) -> None:
        """Throttle: the first move rebuilds at once, later ones within TREE_INTERVAL wait for
        the timer, which shows only the latest (nothing when the cursor stopped)."""
        if self._tree_timer is None:
            self._build_tree(view)
            self._tree_timer = self.set_interval(TREE_INTERVAL, self._tree_tick)
        else:
            self._tree_pending = view

    def _tree_tick(self) -> None:
        view, self._tree_pending = self._tree_pending, None
        if view is not None:
            self._build_tree(view)
        elif self._tree_timer is not None:  # a quiet interval: the next move shows at once
            self._tree_timer.stop()
            self._tree_timer = None

    def _build_tree(self, view: FrameView) -> None:
        apdu = (view.apdu_title, view.apdu_spans, view.apdu_data) if view.apdu_spans else None
        self.query_one(DecodeTree).show(
            view.spans, view.findings, view.data, apdu=apdu, masked=view.masked
        )

    @property
    def tree_settled(self) -> bool:
        """The tree shows the cursor's frame (no rebuild is waiting for the throttle)."""
        return self._tree_pending is None

    def _notes(self, record: FrameRecord, view: FrameView) -> Text:
        text = Text()
        text.append(f"#{record.index} {record.direction.value.upper()} ", style="bold")
        text.append(f"{record.at:.3f}s conn {record.conn_id} step {record.step_id or '-'}")
        if view.reassembled_from:
            first, last = view.reassembled_from[0], view.reassembled_from[-1]
            text.append(f"  ends an APDU segmented over frames #{first}..#{last}")
        if not view.findings:
            text.append(f"  {view.summary}")
        for finding in (*view.findings, *view.apdu_findings):
            style = {"error": "bold red", "warning": "yellow"}.get(finding.severity.value, "")
            text.append(f"\n{finding.severity.value}: ", style=style)
            text.append(f"{finding.message} [{finding.code} @ {finding.offset}]")
            if finding.expected is not None or finding.found is not None:
                text.append(f" expected {finding.expected}, found {finding.found}")
        return text

    def _describe(
        self, span: Span, findings: tuple[Finding, ...] | None = None, within: str = ""
    ) -> None:
        if self._view is None:
            return
        notes = self.query_one("#frame-notes", Static)
        text = Text()
        text.append(f"{span.label or span.name}", style="bold")
        text.append(f" ({span.name}) bytes {span.offset}..{span.end - 1}")
        if within:
            text.append(f" of the {within}")
        if span.meaning and not span.secret:
            text.append(f": {span.meaning}")
        for finding in self._view.findings if findings is None else findings:
            if finding.offset < span.end and span.offset < finding.offset + max(1, finding.length):
                text.append(f"\n{finding.severity.value}: {finding.message}", style="red")
        notes.update(text)
