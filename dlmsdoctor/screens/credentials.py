"""Credentials: the named credential sets of the config file, secrets masked until revealed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

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
    save_credential,
)

MASK = "••••••••"


def secret_of(cred: Credential) -> str | None:
    return cred.password or cred.authentication_key or cred.block_cipher_key


class CredentialsScreen(ModalScreen[str | None]):
    """Pick a credential set (returns its name) or add one; escape returns None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close"),
        Binding("ctrl+r", "reveal", "Reveal"),
    ]

    def __init__(self, config_path: Path | None = None) -> None:
        super().__init__()
        self._config_path = config_path
        self._names: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="credentials-box", classes="modal-box"):
            yield Static("Credential sets (enter picks one)", classes="modal-title")
            yield DataTable(id="credential-table", cursor_type="row")
            with Horizontal(classes="reveal-row"):
                yield Checkbox("Reveal secrets", False, id="reveal", compact=True)
            yield Static("New set", classes="modal-title")
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
                    placeholder="password (low) or BLOCK_KEY,AUTH_KEY[,TITLE] (gmac)",
                    password=True,
                    id="new-secret",
                    compact=True,
                )
                yield Button("Add", id="add", compact=True)
            yield Static("", id="credentials-error")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("name", "client SAP", "auth", "secret")
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        reveal = self.query_one("#reveal", Checkbox).value
        try:
            creds = load_config(self._config_path).credentials
        except ConfigError as exc:
            self.query_one("#credentials-error", Static).update(str(exc))
            creds = {}
        self._names = sorted(creds)
        for name in self._names:
            cred = creds[name]
            secret = secret_of(cred)
            shown = "-" if secret is None else (secret if reveal else MASK)
            table.add_row(name, str(cred.client_sap), cred.auth, shown, key=name)

    @on(Checkbox.Changed, "#reveal")
    def _reveal_changed(self) -> None:
        self._fill()
        self.query_one("#new-secret", Input).password = not self.query_one(
            "#reveal", Checkbox
        ).value

    def action_reveal(self) -> None:
        reveal = self.query_one("#reveal", Checkbox)
        reveal.value = not reveal.value

    @on(DataTable.RowSelected, "#credential-table")
    def _picked(self, event: DataTable.RowSelected) -> None:
        self.dismiss(str(event.row_key.value))

    @on(Button.Pressed, "#add")
    def _add(self) -> None:
        error = self.query_one("#credentials-error", Static)
        name = self.query_one("#new-name", Input).value.strip()
        sap_text = self.query_one("#new-sap", Input).value.strip()
        auth = str(self.query_one("#new-auth", Select).value)
        secret = self.query_one("#new-secret", Input).value or None
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not sap_text.isdigit():
            error.update(
                "A set needs a name (letters, digits, _ . -) and a client SAP (e.g. 1, 16, 32)."
            )
            return
        # The CLI's own parser checks it: a password for low, hex keys for gmac.
        spec = f"{name}={sap_text}:{auth}" + (f":{secret}" if secret and auth != "none" else "")
        try:
            cred = parse_credential(spec)
        except ConfigError as exc:
            error.update(str(exc))
            return
        try:
            save_credential(cred, self._config_path)
        except (ConfigError, OSError) as exc:
            error.update(str(exc))
            return
        error.update("")
        for field_id in ("#new-name", "#new-sap", "#new-secret"):
            self.query_one(field_id, Input).value = ""
        self._fill()

    def action_cancel(self) -> None:
        self.dismiss(None)
