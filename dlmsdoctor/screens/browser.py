"""The object browser: the association's object list as a tree by class and OBIS code, and any
attribute read on enter (GET only: the browser has no way to SET or call a method).

It connects with the working profile of the session on screen (the last run, or one reopened
from History), through ``browse.BrowseSession``: the engine's own rungs, login budget, ledger
and release. Esc (or quitting) releases the meter; every read is frames of the browsing
session, which is saved and shown in Frames, Diagnosis and the report like a probe run.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static, Tree
from textual.widgets.tree import TreeNode

from dlmsdoctor.browse import (
    SESSION_KIND,
    BrowseError,
    BrowseSession,
    OpenResult,
    ReadResult,
    options_for,
)
from dlmsdoctor.config import ConfigError, Credential
from dlmsdoctor.cosem_values import ObjectEntry, attribute_name, readable
from dlmsdoctor.engine import ProbeOptions
from dlmsdoctor.events import Event, FrameReceived, FrameSent
from dlmsdoctor.screens import probe_messages as pm
from dlmsdoctor.screens.kinds import reads_line
from dlmsdoctor.screens.layout import BREAKPOINTS
from dlmsdoctor.screens.probe_run import live_frame, new_session
from dlmsdoctor.session import ConnectionProfile, Session
from dlmsdoctor.widgets.decode_tree import DecodeTree
from dlmsdoctor.widgets.target_form import TargetValues

NodeData = ObjectEntry | tuple[ObjectEntry, int] | None


class BrowserScreen(Screen[None]):
    CSS_PATH = "browser.tcss"
    AUTO_FOCUS = "#objects"
    HORIZONTAL_BREAKPOINTS = BREAKPOINTS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "connect", "Connect"),
        Binding("escape", "release", "Release"),
        Binding("slash", "filter", "Filter"),
    ]

    class Opened(Message):
        def __init__(self, result: OpenResult) -> None:
            super().__init__()
            self.result = result

    class Read(Message):
        def __init__(self, node: TreeNode[NodeData], result: ReadResult | str) -> None:
            super().__init__()
            self.node = node
            self.result = result

    class Closed(Message):
        def __init__(self, session: Session | None, error: str = "") -> None:
            super().__init__()
            self.session = session
            self.error = error

    def __init__(self) -> None:
        super().__init__(id="browser")
        self._browser: BrowseSession | None = None
        self._live: Session | None = None
        self._opening = False
        self._release_done: asyncio.Future[None] | None = None
        self._objects: list[ObjectEntry] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="browser-title", classes="screen-title")
        with Horizontal(id="browser-body"):
            with Vertical(id="browser-left"):
                yield Input(placeholder="/ filter: OBIS code, name or class (enter: first match)",
                            id="object-filter", compact=True)
                yield Tree[NodeData]("objects", id="objects")
            with Vertical(id="browser-detail"):
                with VerticalScroll(id="value-box"):
                    yield Static("", id="value")
                yield DecodeTree(id="value-tree")
        yield Static("", id="browser-status")
        yield Footer()

    def on_mount(self) -> None:
        tree = self.query_one("#objects", Tree)
        tree.show_root = False
        tree.border_title = "objects (enter reads)"
        self._title()

    def on_screen_resume(self) -> None:
        self._title()

    # -- state -----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._browser is not None

    def _profile(self) -> ConnectionProfile | None:
        session: Session | None = getattr(self.app, "session", None)
        if session is None or session.diagnosis is None:
            return None
        return session.diagnosis.profile

    def _title(self) -> None:
        self.refresh_bindings()  # the footer's Connect / Release follow the state
        title = self.query_one("#browser-title", Static)
        if self._browser is not None:
            o = self._browser.options
            who = o.credentials[0].name if o.credentials else "public client 16"
            title.update(f"Object browser: {_where(o)} as {who}  (esc releases)")
            return
        profile = self._profile()
        if profile is None:
            title.update("Object browser: no working profile yet (run a probe, F2)")
            self._status("Run a probe (F2) or reopen a session (F5): the browser uses the "
                         "working profile it found.")
        else:
            who = profile.credential or "public client 16"
            title.update(f"Object browser: {_where(options_for(profile))}, {who}")
            self._status("ctrl+r connects (GET only; the meter is released on esc or quit).")

    def _status(self, line: str) -> None:
        self.query_one("#browser-status", Static).update(line)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "release":
            return self.connected  # else esc is the app's "back"
        if action == "connect":
            return not self.connected
        return True

    # -- connect -------------------------------------------------------------------------------
    def action_connect(self) -> None:
        if self._browser is not None or self._opening:
            return
        profile = self._profile()
        if profile is None:
            self.notify("No working profile: run a probe first (F2).", severity="warning")
            return
        probe = self.app.get_screen("probe")
        if getattr(probe, "running", False):
            self.notify("A probe run holds the meter: wait for it or cancel it (F2, esc).",
                        severity="warning")
            return
        credential: Credential | None = None
        if profile.authentication != "none" and profile.credential:
            try:
                credential = self.app.credentials.get(profile.credential)  # type: ignore[attr-defined]
            except ConfigError as exc:
                self.notify(f"{exc}: add it (F6).", severity="error")
                return
        preset = getattr(self.app, "preset", None)
        base = preset.options if preset is not None else None
        options = options_for(profile, credential, base)
        ledger = preset.ledger if preset is not None else None
        self._live = new_session(TargetValues(
            profile.host, profile.port, profile.framing, None, profile.address_size, None,
            profile.credential), kind=SESSION_KIND)
        self.post_message(pm.LiveSessionStarted(self._live))
        self._browser = BrowseSession(options, ledger=ledger, on_event=self._on_event)
        self._opening = True
        self.query_one("#objects", Tree).clear()
        self._status(f"Associating with {_where(options)}…")
        self._title()
        self._open(self._browser)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, FrameSent | FrameReceived) and self._live is not None:
            self._live.frames.append(live_frame(len(self._live.frames), event))
            self.post_message(pm.LiveFramesAdded())

    @work(exclusive=True, exit_on_error=False, group="browse")
    async def _open(self, browser: BrowseSession) -> None:
        try:
            result = await browser.open()
        except Exception as exc:  # shown, never a traceback
            result = OpenResult(False, f"{type(exc).__name__}: {exc}")
        self.post_message(self.Opened(result))

    @on(Opened)
    def _opened(self, message: Opened) -> None:
        self._opening = False
        result = message.result
        if not result.ok:
            self._status(f"No association: {result.reason}")
            self.notify(result.reason, title="Browser not connected", severity="error")
            self.run_worker(self.disconnect(), group="browse-close", exit_on_error=False)
            return
        self._fill_tree(result.objects)
        pdu = result.max_pdu_size
        blocks = result.object_list.blocks if result.object_list else 0
        self._status(
            f"{len(result.objects)} objects listed"
            + (f" in {blocks} blocks" if blocks else "")
            + (f"; max PDU {pdu}" if pdu else "")
            + (f"; object list: {result.reason}" if result.reason else "")
            + ". Enter reads an attribute."
        )
        self.query_one("#objects", Tree).focus()

    def _fill_tree(self, objects: list[ObjectEntry], pattern: str = "") -> None:
        self._objects = list(objects)
        tree: Tree[NodeData] = self.query_one("#objects", Tree)
        tree.clear()
        by_class: dict[int, list[ObjectEntry]] = {}
        for entry in objects:
            if _matches(entry, pattern):
                by_class.setdefault(entry.class_id, []).append(entry)
        for class_id in sorted(by_class):
            entries = sorted(by_class[class_id], key=lambda e: e.obis)
            label = Text(f"{entries[0].class_name} ", style="bold")
            label.append(f"(class {class_id}, {len(entries)})", style="dim")
            group = tree.root.add(label, data=None, expand=True)
            for entry in entries:
                text = Text(entry.obis_text)
                if entry.name:
                    text.append(f"  {entry.name}", style="dim")
                node = group.add(text, data=entry)
                for attribute in entry.attribute_ids():
                    node.add_leaf(self._attribute_label(entry, attribute), data=(entry, attribute))
        tree.root.expand()
        tree.move_cursor(tree.root.children[0] if tree.root.children else None)

    # -- filter ----------------------------------------------------------------------------
    def action_filter(self) -> None:
        self.query_one("#object-filter", Input).focus()

    @on(Input.Changed, "#object-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._objects:
            self._fill_tree(self._objects, event.value.strip())

    @on(Input.Submitted, "#object-filter")
    def _filter_submitted(self) -> None:
        """The first match opens, its value attribute (2) under the cursor: enter reads it."""
        tree: Tree[NodeData] = self.query_one("#objects", Tree)
        tree.focus()
        for group in tree.root.children:
            for node in group.children:
                node.expand()
                leaves = list(node.children)
                target = next((leaf for leaf in leaves if isinstance(leaf.data, tuple)
                               and leaf.data[1] == 2), leaves[0] if leaves else node)
                # the expanded lines exist after the next refresh: the cursor moves then
                self.call_after_refresh(self._move_cursor_to, target)
                return

    def _move_cursor_to(self, node: TreeNode[NodeData], tries: int = 3) -> None:
        tree: Tree[NodeData] = self.query_one("#objects", Tree)
        tree.move_cursor(node)
        if tree.cursor_node is not node and tries:
            self.call_after_refresh(self._move_cursor_to, node, tries - 1)

    @staticmethod
    def _attribute_label(entry: ObjectEntry, attribute: int, value: str = "") -> Text:
        text = Text(f"{attribute} {attribute_name(entry.class_id, attribute)}")
        if not readable(entry, attribute):
            text.append("  (not readable)", style="dim")
        if value:
            text.append(f" = {value}", style="bold")
        return text

    # -- read ------------------------------------------------------------------------------
    @on(Tree.NodeSelected, "#objects")
    def _selected(self, event: Tree.NodeSelected[NodeData]) -> None:
        data = event.node.data
        if isinstance(data, tuple):
            self.read_node(event.node)

    def read_node(self, node: TreeNode[NodeData]) -> None:
        browser = self._browser
        data = node.data
        if browser is None or not isinstance(data, tuple):
            return
        entry, attribute = data
        self._status(f"GET {entry.obis_text} {attribute_name(entry.class_id, attribute)}…")
        self._read(browser, node, entry, attribute)

    @work(exclusive=False, exit_on_error=False, group="browse-read")
    async def _read(self, browser: BrowseSession, node: TreeNode[NodeData], entry: ObjectEntry,
                    attribute: int) -> None:
        try:
            result: ReadResult | str = await browser.read(entry.class_id, entry.obis, attribute)
        except BrowseError as exc:
            result = str(exc)
        self.post_message(self.Read(node, result))

    @on(Read)
    def _read_done(self, message: Read) -> None:
        result = message.result
        data = message.node.data
        if not isinstance(data, tuple):
            return
        entry, attribute = data
        if isinstance(result, str):
            self._status(result)
            return
        shown = result.text if len(result.text) <= 60 else result.text[:59] + "…"
        message.node.set_label(self._attribute_label(entry, attribute, shown))
        self._show_value(result)
        self._status(f"{result.label}: {'read' if result.ok else result.error}"
                     + (f" ({result.blocks} blocks)" if result.blocks else ""))

    def _show_value(self, result: ReadResult) -> None:
        text = Text(result.label, style="bold")
        text.append(f"\nclass {result.class_id}, attribute {result.attribute}")
        if result.ok and result.decoded is not None:
            text.append(f", {result.decoded.type_name}, {len(result.data or b'')} bytes")
            if result.blocks:
                text.append(f", in {result.blocks} blocks")
            text.append("\n")
            text.append(result.text, style="bold green")
        else:
            text.append("\n")
            text.append(result.error, style="bold red")
        frames = ", ".join(f"#{i}" for i in result.frames[:8])
        if frames:
            text.append(f"\nframes {frames}{' …' if len(result.frames) > 8 else ''}", style="dim")
        self.query_one("#value", Static).update(text)
        tree = self.query_one("#value-tree", DecodeTree)
        if result.decoded is not None and result.decoded.span is not None:
            tree.show((result.decoded.span,), result.decoded.findings, result.data or b"")
        else:
            tree.clear()

    # -- release ---------------------------------------------------------------------------
    def action_release(self) -> None:
        if self._browser is not None:
            self.run_worker(self.disconnect(), group="browse-close", exit_on_error=False)

    async def disconnect(self) -> None:
        """Release the meter and keep the browsing session (saved, shown in the viewers)."""
        browser = self._browser
        if browser is None:
            return
        if self._release_done is not None:
            await self._release_done
            return
        self._release_done = asyncio.get_running_loop().create_future()
        self._status("Releasing the meter…")
        session: Session | None = None
        error = ""
        try:
            if self._opening:
                session = await browser.cancel()
            else:
                session = await browser.close()
        except Exception as exc:  # reported, never a traceback
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._browser = None
            self._opening = False
            closing, self._release_done = self._release_done, None
            if closing is not None and not closing.done():
                closing.set_result(None)
        self.post_message(self.Closed(session, error))

    @on(Closed)
    def _on_closed(self, message: Closed) -> None:
        session = message.session
        self._title()
        if session is None:
            self._status(f"Released. {message.error}".strip())
            return
        from dlmsdoctor.diagnosis import diagnose

        session.diagnosis = diagnose(session)
        release = session.step("release")
        saved = ""
        if getattr(self.app, "preset", None) is None:
            from dlmsdoctor.run import save_session

            sessions_dir = getattr(self.app, "sessions_dir", None)
            try:
                saved = f" Browsing session saved: {save_session(session, sessions_dir)}"
            except OSError as exc:
                saved = f" The browsing session could not be saved: {exc.strerror or exc}"
        self._status(f"Released ({release.summary if release else 'no release rung'}); "
                     f"{reads_line(session)}.{saved}")
        self.post_message(pm.RunCompleted(session))


def _where(options: ProbeOptions) -> str:
    """host:port, or the serial line with its rate and format (the Probe screen's words)."""
    from dlmsdoctor.targets import describe

    return describe(options)


def _matches(entry: ObjectEntry, pattern: str) -> bool:
    if not pattern:
        return True
    needle = pattern.lower()
    return any(needle in text.lower() for text in (
        entry.obis_text, entry.name, entry.class_name, f"class {entry.class_id}"))
