"""Credentials: the credential sets the probe may use, secrets masked until shown.

Sets come from two places: the config file (remembered, mode 0600) and this TUI session (kept
in memory until the app quits). A new set is kept for the session unless "Remember" is ticked:
then it is written to the config file, and the dialog says where. Why not the OS keyring: the
CLI and the config's targets read credential sets from config.toml, a keyring needs a desktop
session (a service laptop over SSH or a headless box has none, and the ``keyring`` package then
falls back to a plain file of its own), and one more dependency would give the secret two homes
to keep in sync. A 0600 file, like ssh's keys, is the one place the CLI and the TUI share.

Keys (one meaning each, see docs/tui.md): enter in a field adds (or updates a set of the same
name); on the table enter uses the set, delete removes it, e edits it; ctrl+u shows or hides
secrets; esc closes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, DataTable, Input, Select, Static

from dlmsdoctor.config import (
    AUTH_MECHANISMS,
    ConfigError,
    Credential,
    load_config,
    parse_credential,
)

MASK = "••••••••"


def secret_of(cred: Credential) -> str | None:
    return cred.password or cred.authentication_key or cred.block_cipher_key


@dataclass
class CredentialStore:
    """The sets of this TUI session: the config's, plus those kept in memory only."""

    config_path: Path | None = None
    session: dict[str, Credential] | None = None

    def __post_init__(self) -> None:
        if self.session is None:
            self.session = {}

    @property
    def kept(self) -> dict[str, Credential]:
        assert self.session is not None
        return self.session

    def config_sets(self) -> dict[str, Credential]:
        return dict(load_config(self.config_path).credentials)

    def all(self) -> dict[str, Credential]:
        """Config sets, then session sets (a session set of the same name wins)."""
        try:
            sets = self.config_sets()
        except ConfigError:
            sets = {}
        return {**sets, **self.kept}

    def names(self) -> list[str]:
        return sorted(self.all())

    def get(self, name: str) -> Credential:
        if name in self.kept:
            return self.kept[name]
        return load_config(self.config_path).credential(name)

    def where(self, name: str) -> str:
        return "session" if name in self.kept else "config"

    def config_file(self) -> Path:
        from dlmsdoctor import paths

        return self.config_path or paths.config_file()

    def add(self, cred: Credential, remember: bool) -> str:
        """Keep or save ``cred``; returns the line that says where it went."""
        from dlmsdoctor.config_write import replace_credential

        if remember:
            path = replace_credential(cred, self.config_path)
            self.kept.pop(cred.name, None)
            return f"Saved {cred.name!r} in {path} (mode 0600)."
        self.kept[cred.name] = cred
        return f"{cred.name!r} is kept for this session only (not written anywhere)."

    def remove(self, name: str) -> str:
        from dlmsdoctor.config_write import remove_credential

        if self.kept.pop(name, None) is not None:
            return f"Removed {name!r} (it was kept for this session only)."
        if remove_credential(name, self.config_path):
            return f"Removed {name!r} from {self.config_file()}."
        return f"No set named {name!r}."


class CredentialsScreen(ModalScreen[str | None]):
    """Pick a credential set (returns its name), add, edit or remove one; esc returns the set
    added last (or None)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+u", "toggle_secrets", "Show secrets"),
    ]

    def __init__(self, store: CredentialStore | Path | None = None) -> None:
        super().__init__()
        self._store = store if isinstance(store, CredentialStore) else CredentialStore(store)
        self._names: list[str] = []
        self._added: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="credentials-box", classes="modal-box"):
            yield Static(
                "Credential sets  (table: enter uses, del removes, e edits)",
                classes="modal-title",
            )
            yield DataTable(id="credential-table", cursor_type="row")
            with Horizontal(classes="new-row"):
                yield Input(placeholder="name", id="new-name", compact=True)
                yield Input(placeholder="client SAP", id="new-sap", type="integer", compact=True)
                yield Select(
                    [(m, m) for m in AUTH_MECHANISMS],
                    value="low",
                    allow_blank=False,
                    id="new-auth",
                    compact=True,
                )
            with Horizontal(classes="new-row"):
                yield Input(
                    placeholder="password, or BLOCK_KEY,AUTH_KEY[,TITLE] for gmac",
                    password=True,
                    id="new-secret",
                    compact=True,
                )
                yield Button("Add", id="add", compact=True)
            with Horizontal(classes="reveal-row"):
                yield Checkbox("Remember (config.toml, 0600)", False, id="remember", compact=True)
                yield Checkbox("Show secrets ^u", False, id="reveal", compact=True)
            yield Static("enter in a field adds the set (a set of the same name is updated)",
                         id="credentials-error")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("name", "client", "auth", "secret", "kept in")
        self._fill()
        self.query_one("#new-name", Input).focus()

    def _fill(self, cursor: str | None = None) -> None:
        table = self.query_one(DataTable)
        table.clear()
        reveal = self.query_one("#reveal", Checkbox).value
        try:
            self._store.config_sets()
        except ConfigError as exc:
            self._say(str(exc), error=True)
        creds = self._store.all()
        self._names = sorted(creds)
        for name in self._names:
            cred = creds[name]
            secret = secret_of(cred)
            shown = "-" if secret is None else (secret if reveal else MASK)
            table.add_row(name, str(cred.client_sap), cred.auth, shown,
                          self._store.where(name), key=name)
        if cursor in self._names:
            table.move_cursor(row=self._names.index(cursor))

    def _say(self, line: str, error: bool = False) -> None:
        self.query_one("#credentials-error", Static).update(
            Text(line, style="bold red" if error else ""))

    @on(Checkbox.Changed, "#reveal")
    def _reveal_changed(self) -> None:
        reveal = self.query_one("#reveal", Checkbox).value
        self._fill(self._highlighted())
        self.query_one("#new-secret", Input).password = not reveal

    def action_toggle_secrets(self) -> None:
        reveal = self.query_one("#reveal", Checkbox)
        reveal.value = not reveal.value

    def _highlighted(self) -> str | None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        return self._names[row] if 0 <= row < len(self._names) else None

    @on(DataTable.RowSelected, "#credential-table")
    def _picked(self, event: DataTable.RowSelected) -> None:
        self.dismiss(str(event.row_key.value))

    def on_key(self, event: object) -> None:
        from textual.events import Key

        if not isinstance(event, Key) or self.focused is not self.query_one(DataTable):
            return
        if event.key == "delete":
            event.stop()
            self.action_remove()
        elif event.key == "e":
            event.stop()
            self.action_edit()

    def action_remove(self) -> None:
        name = self._highlighted()
        if name is None:
            return
        try:
            line = self._store.remove(name)
        except (ConfigError, OSError) as exc:
            self._say(str(exc), error=True)
            return
        if self._added == name:
            self._added = None
        self._fill()
        self._say(line)

    def action_edit(self) -> None:
        """Fill the fields with the set; its secret stays unless a new one is typed."""
        name = self._highlighted()
        if name is None:
            return
        cred = self._store.all()[name]
        self.query_one("#new-name", Input).value = cred.name
        self.query_one("#new-sap", Input).value = str(cred.client_sap)
        self.query_one("#new-auth", Select).value = cred.auth
        self.query_one("#new-secret", Input).value = ""
        self.query_one("#remember", Checkbox).value = self._store.where(name) == "config"
        self.query_one("#new-secret", Input).focus()
        self._say(f"Editing {name!r}: a blank secret keeps the current one; enter saves.")

    @on(Input.Submitted)
    @on(Button.Pressed, "#add")
    def _add(self) -> None:
        name = self.query_one("#new-name", Input).value.strip()
        sap_text = self.query_one("#new-sap", Input).value.strip()
        auth = str(self.query_one("#new-auth", Select).value)
        secret = self.query_one("#new-secret", Input).value or None
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not sap_text.isdigit():
            self._say(
                "A set needs a name (letters, digits, _ . -) and a client SAP (e.g. 1, 16, 32).",
                error=True,
            )
            return
        existing = self._store.all().get(name)
        if secret is None and existing is not None and existing.auth == auth:
            secret = _secret_spec(existing)  # editing: the secret stays
        # The CLI's own parser checks it: a password for low, hex keys for gmac.
        spec = f"{name}={sap_text}:{auth}" + (f":{secret}" if secret and auth != "none" else "")
        try:
            cred = parse_credential(spec)
            line = self._store.add(cred, self.query_one("#remember", Checkbox).value)
        except (ConfigError, OSError) as exc:
            self._say(str(exc), error=True)
            return
        self._added = name
        for field_id in ("#new-name", "#new-sap", "#new-secret"):
            self.query_one(field_id, Input).value = ""
        self._fill(name)
        self._say(line)
        self.query_one("#new-name", Input).focus()

    def action_close(self) -> None:
        self.dismiss(self._added)


def _secret_spec(cred: Credential) -> str | None:
    if cred.auth == "gmac":
        parts = [cred.block_cipher_key or "", cred.authentication_key or ""]
        if cred.system_title:
            parts.append(cred.system_title)
        return ",".join(parts)
    return cred.password
