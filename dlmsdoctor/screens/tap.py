"""The Tap screen: relay the user's poller to the meter and watch it live.

LISTEN and TARGET as in `dlmsdoctor tap`; ctrl+r starts, ctrl+x stops. While it runs: the live
frame list (poller -> meter as TX, meter -> poller as RX), the decode of the frame under the
cursor, and the findings as they come. Stopping posts the diagnosed Session to the app, which
shows it in the Frames and Diagnosis screens like a probe run. The relay runs in a worker on the
app's event loop (the Tap is asyncio); the worker only posts messages, the handlers own state.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, RichLog, Static

from dlmsdoctor.events import ConnectionClosed, ConnectionFailed, ConnectionOpened, Event
from dlmsdoctor.events import FindingRaised as FindingEvent
from dlmsdoctor.session import FrameRecord, Session
from dlmsdoctor.widgets.decode_tree import DecodeTree
from dlmsdoctor.widgets.frame_decode import DecodeCache
from dlmsdoctor.widgets.frame_list import FrameList

LIVE_FRAMES = 20_000  # frames the live list holds; older ones are in the session's file


class TapLine(Message):
    """A line for the findings log (a finding, a connection opened or closed)."""

    def __init__(self, text: str, finding: bool) -> None:
        super().__init__()
        self.text = text
        self.finding = finding


class TapFramesAdded(Message):
    """Frames were appended to the live list (bursts collapse into one)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TapFramesAdded)


class TapStopped(Message):
    def __init__(self, session: Session | None, error: str = "") -> None:
        super().__init__()
        self.session = session
        self.error = error


class TapScreen(Screen[None]):
    CSS_PATH = "tap.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "start", "Start tap"),
        Binding("ctrl+x", "stop", "Stop tap", priority=True),  # before an Input's cut
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, listen: str = "127.0.0.1:4059", target: str = "") -> None:
        super().__init__()
        self._listen, self._target = listen, target
        self.frames: list[FrameRecord] = []
        self._pending: list[FrameRecord] = []
        self._stop = asyncio.Event()
        self._cache = DecodeCache()
        self.running = False
        self.session: Session | None = None
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="tap-form"):
            yield Label("Listen")
            yield Input(self._listen, placeholder="HOST:PORT the poller connects to",
                        id="tap-listen")
            yield Label("Target")
            yield Input(self._target, placeholder="meter HOST:PORT", id="tap-target")
            yield Button("Start", id="tap-start", variant="primary")
            yield Button("Stop", id="tap-stop", disabled=True)
        yield Static("Point your poller at LISTEN; ctrl+r starts the tap.", id="tap-status")
        with Horizontal(id="tap-body"):
            yield FrameList(id="tap-frames")
            yield DecodeTree(id="tap-decode")
        yield RichLog(id="tap-findings", wrap=True, markup=False, highlight=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(FrameList).set_frames(self.frames)

    # -- actions -----------------------------------------------------------------------------
    @on(Button.Pressed, "#tap-start")
    def action_start(self) -> None:
        if self.running:
            return
        from click import UsageError

        from dlmsdoctor.cli.tap_cmd import parse_listen, parse_target
        from dlmsdoctor.tap.core import TapOptions

        try:
            listen = parse_listen(self.query_one("#tap-listen", Input).value)
            target = parse_target(self.query_one("#tap-target", Input).value)
        except UsageError as exc:
            self._status(exc.message)
            return
        self._stop = asyncio.Event()
        self.frames.clear()
        self.query_one(FrameList).set_frames(self.frames)
        self.running = True
        self._buttons()
        self._run(TapOptions(listen[0], listen[1], target[0], target[1]))

    @on(Button.Pressed, "#tap-stop")
    def action_stop(self) -> None:
        self._stop.set()

    def _buttons(self) -> None:
        self.query_one("#tap-start", Button).disabled = self.running
        self.query_one("#tap-stop", Button).disabled = not self.running

    def _status(self, text: str) -> None:
        self.query_one("#tap-status", Static).update(text)

    # -- the worker --------------------------------------------------------------------------
    @work(exclusive=True, exit_on_error=False)
    async def _run(self, options: object) -> None:
        from dlmsdoctor.tap.core import Tap, TapOptions
        from dlmsdoctor.tap.text import event_text

        assert isinstance(options, TapOptions)

        def on_event(event: Event) -> None:
            if isinstance(event, FindingEvent | ConnectionOpened | ConnectionFailed |
                          ConnectionClosed):
                text = event_text(event)
                if text:
                    self.post_message(TapLine(text, isinstance(event, FindingEvent)))

        def on_record(record: FrameRecord) -> None:
            self._pending.append(record)
            self.post_message(TapFramesAdded())

        tap = Tap(options, on_event=on_event, on_record=on_record)
        try:
            await tap.start()
        except OSError as exc:
            self.post_message(TapStopped(None, f"cannot listen on {options.listen_host}:"
                                               f"{options.listen_port}: {exc.strerror or exc}"))
            return
        self._status(f"Relaying {tap.session.settings['listen']} -> "
                     f"{tap.session.settings['target']}: point your poller at "
                     f"{tap.session.settings['listen']}. ctrl+x stops.")
        await self._stop.wait()
        session = await tap.stop("stopped")
        self.post_message(TapStopped(session))

    # -- handlers ----------------------------------------------------------------------------
    @on(TapLine)
    def _line(self, message: TapLine) -> None:
        self.lines.append(message.text)
        self.query_one(RichLog).write(message.text)

    @on(TapFramesAdded)
    def _frames_added(self) -> None:
        pending, self._pending = self._pending, []
        self.frames.extend(pending)
        frame_list = self.query_one(FrameList)
        if len(self.frames) > LIVE_FRAMES:
            del self.frames[: len(self.frames) - LIVE_FRAMES // 2]
            frame_list.set_frames(self.frames, keep_cursor=False)
        else:
            frame_list.frames_added()

    @on(FrameList.Highlighted)
    def _highlighted(self, event: FrameList.Highlighted) -> None:
        if not 0 <= event.position < len(self.frames):
            return
        view = self._cache.get(self.frames[event.position], self.frames, event.position)
        apdu = (view.apdu_title, view.apdu_spans, view.apdu_data) if view.apdu_spans else None
        self.query_one(DecodeTree).show(view.spans, view.findings, view.data, apdu=apdu,
                                        masked=view.masked)

    @on(TapStopped)
    def _stopped(self, message: TapStopped) -> None:
        self.running = False
        self._buttons()
        if message.session is None:
            self._status(message.error)
            return
        self.session = message.session
        diag = message.session.diagnosis
        self._status(f"Stopped. {diag.status.upper()}: {diag.headline}" if diag else "Stopped.")
        from dlmsdoctor.screens.probe_messages import RunCompleted

        self.post_message(RunCompleted(message.session))  # the app shows it everywhere
