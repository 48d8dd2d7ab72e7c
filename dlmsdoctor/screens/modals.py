"""Small typed modals: help, open a session file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from dlmsdoctor.widgets.target_form import host_forms_help

HELP_TEXT = """\
Why does the meter not answer? dlmsdoctor finds out, with proof.

Every action above is also in the command palette (ctrl+p); each key
means one thing everywhere. Keys in a screen:
  Probe      Host takes what `dlmsdoctor probe` takes:
{host_forms}
             F2 again goes back to Host; enter on a rung opens its frames
  Diagnosis  enter on evidence opens the frame
  History    enter reopens (ladder, frames, diagnosis); ctrl+r runs it
             again; e fills the form only
  Browser    ctrl+r connects with the working profile; enter on an
             attribute reads it (GET only); esc releases the meter
  Decode     paste hex or log lines, ctrl+r (or enter) decodes
  Credentials  enter in a field adds; on the table enter uses,
             del removes, e edits; ctrl+u shows secrets

Everywhere
  tab     next pane             q       quit (ctrl+q in a text field)

Frames
  up/down, pgup/pgdn, home/end move in the list (mouse too)
  n / N   next / previous frame with an error
  hex view: arrows move a byte cursor and select its field
  decode tree: moving onto a field highlights its bytes
  red underline: bytes with a finding; * masks a secret
""".format(host_forms="\n".join(host_forms_help(13)))


class HelpScreen(ModalScreen[str | None]):
    """F1: every action with its key, as a menu (enter runs one), then the keys of each screen.
    Returns the chosen action string, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1", "close", "Close")]

    def __init__(self, actions: Sequence[Any] = ()) -> None:
        super().__init__()
        self._actions = list(actions)

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="modal-box"):
            yield Static("Menu: enter runs an action (esc closes)", classes="modal-title")
            yield OptionList(
                *(
                    Option(Text.assemble((f"{a.key:<8}", "bold"), f"{a.title}: {a.help}"),
                           id=f"action-{i}")
                    for i, a in enumerate(self._actions)
                ),
                id="help-actions",
            )
            with VerticalScroll(id="help-scroll"):
                yield Static(Text(HELP_TEXT), id="help-text")
            yield Button("Close", id="help-close", variant="primary", compact=True)

    @on(OptionList.OptionSelected, "#help-actions")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        index = event.option_index
        if 0 <= index < len(self._actions):
            self.dismiss(self._actions[index].action)

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


class NameScreen(ModalScreen[str | None]):
    """Ask for a name (saving a target); returns it, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, default: str = "") -> None:
        super().__init__()
        self._title = title
        self._default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="name-box", classes="modal-box"):
            yield Static(f"{self._title} (enter saves, esc cancels)", classes="modal-title")
            yield Input(self._default, placeholder="letters, digits, _ . -", id="name-input")
            yield Label("", id="name-error")

    @on(Input.Submitted, "#name-input")
    def _submit(self) -> None:
        import re

        name = self.query_one("#name-input", Input).value.strip()
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            self.query_one("#name-error", Label).update(
                "Use letters, digits, _ . - (e.g. substation-3)."
            )
            return
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)
