"""Small typed modals: help, open a session file."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

HELP_TEXT = """\
Why does the meter not answer? dlmsdoctor finds out, with proof.

Screens
  F2  Probe      the target and the ladder, live; enter on a rung
                 opens its frames
                 ctrl+r runs, esc cancels (the meter is released),
                 F6 edits credential sets (secrets masked)
  F3  Frames     TX/RX frames, hex view and decode tree
  F4  Diagnosis  ranked causes; enter on evidence opens the frame;
                 c copies the working profile, r / x export
                 the report / the capture
  F5  History    saved sessions (enter re-opens) and the ledger

Everywhere
  ctrl+p  command palette       ctrl+o  open a session file
  ctrl+t  light / dark theme    f1      this help
  tab     next pane             q       quit (ctrl+q in a text field)

Frames
  up/down, pgup/pgdn, home/end move in the list (mouse too)
  n / N   next / previous frame with an error
  hex view: arrows move a byte cursor and select its field
  decode tree: moving onto a field highlights its bytes
  red underline: bytes with a finding; * masks a secret
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="modal-box"):
            yield Static("Help", classes="modal-title")
            with VerticalScroll():
                yield Static(Text(HELP_TEXT), id="help-text")
            yield Button("Close", id="help-close", variant="primary", compact=True)

    @on(Button.Pressed, "#help-close")
    def action_close(self) -> None:
        self.dismiss(None)


class OpenSessionScreen(ModalScreen[Path | None]):
    """Ask for a session file; returns its path, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, start: str = "") -> None:
        super().__init__()
        self._start = start

    def compose(self) -> ComposeResult:
        with Vertical(id="open-box", classes="modal-box"):
            yield Static(
                "Open a session (.json) or a capture (.pcapng, .pcap)", classes="modal-title"
            )
            yield Input(
                self._start, placeholder="path/to/session.json or capture.pcapng", id="open-path"
            )
            yield Label("", id="open-error")
            yield Button("Open", id="open-ok", variant="primary")

    @on(Input.Submitted, "#open-path")
    @on(Button.Pressed, "#open-ok")
    def _submit(self) -> None:
        path = Path(self.query_one("#open-path", Input).value.strip()).expanduser()
        if not path.is_file():
            self.query_one("#open-error", Label).update(f"No such file: {path}")
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
