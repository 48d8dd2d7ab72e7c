"""The History screen: sessions saved in the data directory and files opened before."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from dlmsdoctor.screens.kinds import reads_line
from dlmsdoctor.screens.recent import opened_files


@dataclass(frozen=True, slots=True)
class SessionSummary:
    path: Path
    started_at: str
    target: str
    status: str
    headline: str
    frames: int
    source: str = "run"  # run: saved by a probe; opened: a file opened in the TUI
    kind: str = "probe"  # Session.kind: probe, tap (a relayed poller), capture, browse
    reads: str = ""  # a browsing session's reads ("4 reads, 1 refused or unanswered")


def summarize(path: Path, source: str = "run") -> SessionSummary:
    """One history row; a damaged or vanished file is listed with the reason, not hidden."""
    from dlmsdoctor.output.capture_read import load_session_file

    try:
        session = load_session_file(path)
    except (OSError, ValueError) as exc:
        return SessionSummary(path, "?", path.name, "unreadable", str(exc)[:80], 0, source,
                              kind="?")
    diagnosis = session.diagnosis
    status = diagnosis.status if diagnosis else ("cancelled" if session.cancelled else "-")
    return SessionSummary(
        path=path,
        started_at=session.started_at.replace("T", " ")[:19],
        target=f"{session.target.host}:{session.target.port}",
        status=status,
        headline=diagnosis.headline if diagnosis else "",
        frames=len(session.frames),
        source=source,
        kind=session.kind,
        reads=reads_line(session),
    )


def list_sessions(folder: Path) -> list[SessionSummary]:
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [summarize(p) for p in paths]


def list_history(folder: Path) -> list[SessionSummary]:
    """Saved runs, newest first, then files opened earlier that are not among them."""
    rows = list_sessions(folder)
    seen = {row.path.resolve() for row in rows}
    rows += [summarize(p, "opened") for p in opened_files() if p.resolve() not in seen]
    return rows


def last_results(folder: Path | None) -> dict[str, str]:
    """``host:port`` -> the newest session's status and date ("failed 2026-01-01")."""
    if folder is None:
        from dlmsdoctor.paths import sessions_dir

        folder = sessions_dir()
    out: dict[str, str] = {}
    for row in list_sessions(folder):  # newest first
        if row.status != "unreadable":
            out.setdefault(row.target, f"{row.status} {row.started_at[:10]}")
    return out


def ledger_line(target: str) -> str:
    """The attempt ledger of one meter (``host:port``), in one line: what logins have cost."""
    from dlmsdoctor.engine import ProbeOptions
    from dlmsdoctor.ledger import LedgerUnavailableError, LoginLedger

    ledger = LoginLedger()
    try:
        attempts = [a for a in ledger.attempts() if a.meter.split("/", 1)[0] == target]
    except LedgerUnavailableError as exc:
        return (f"Ledger for {target}: unusable ({exc.message}); a probe sends no password "
                "until it is fixed.")
    if not attempts:
        return f"Ledger for {target}: no login attempts recorded."
    failed = [a for a in attempts if a.failed]
    last = attempts[-1]
    # What a probe with the default limits may still spend (login_budget.py's rules).
    options = ProbeOptions(host=target)
    recent = [a for a in failed if a.at >= ledger.wall() - options.ledger_window]
    left = max(0, min(options.run_max_failures, options.ledger_max_failures - len(recent)))
    return (
        f"Ledger for {target}: {len(attempts)} logins, {len(failed)} failed "
        f"({len(recent)} in the last {options.ledger_window / 60:g} min); last: "
        f"{last.credential} (client {last.client_sap}, {last.mechanism}) {last.outcome}; "
        f"a probe now may spend {left} failed login(s) (default limits)"
    )


class HistoryScreen(Screen[None]):
    CSS_PATH = "history.tcss"
    AUTO_FOCUS = "#history-table"
    # It reloads each time it is shown; r is "export report" everywhere, so no reload key.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "app.run", "Run again"),
        Binding("e", "fill_form", "Fill form"),
    ]

    class SessionChosen(Message):
        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    class RunAgain(Message):
        """Probe this session's target again: ``start`` runs at once, else the form is filled."""

        def __init__(self, path: Path, start: bool) -> None:
            super().__init__()
            self.path = path
            self.start = start

    def _current(self) -> SessionSummary | None:
        row = self.query_one(DataTable).cursor_row
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def action_run_again(self) -> None:
        row = self._current()
        if row is not None and row.status != "unreadable":
            self.post_message(self.RunAgain(row.path, start=True))

    def action_fill_form(self) -> None:
        row = self._current()
        if row is not None and row.status != "unreadable":
            self.post_message(self.RunAgain(row.path, start=False))

    def __init__(self, sessions_dir: Path | None = None) -> None:
        super().__init__(id="history")
        self._sessions_dir = sessions_dir
        self._rows: list[SessionSummary] = []

    @property
    def sessions_dir(self) -> Path:
        if self._sessions_dir is None:
            from dlmsdoctor.paths import sessions_dir

            self._sessions_dir = sessions_dir()
        return self._sessions_dir

    def compose(self) -> ComposeResult:
        yield Static("History", id="history-title", classes="screen-title")
        yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="history-notes")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("started (UTC)", "status", "target", "headline", "frames", "from",
                          "kind")
        self.action_reload()

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.action_reload()

    def action_reload(self) -> None:
        self.query_one("#history-title", Static).update(
            f"History: {self.sessions_dir}  (enter opens, ctrl+r runs again, e fills the form)"
        )
        self._load(self.sessions_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group="history")
    def _load(self, folder: Path) -> None:
        # Parsing many session files can take a while: do it off the UI thread.
        rows = list_history(folder)
        self.app.call_from_thread(self._show_rows, rows)

    def _show_rows(self, rows: list[SessionSummary]) -> None:
        self._rows = rows
        table = self.query_one(DataTable)
        table.clear()
        for i, row in enumerate(rows):
            table.add_row(
                row.started_at[:16],
                row.status,
                row.target,
                Text(row.headline),
                str(row.frames),
                row.source,
                row.kind,
                key=str(i),
            )
        notes = self.query_one("#history-notes", Static)
        notes.update(f"{len(rows)} sessions" if rows else "No saved sessions yet.")

    @on(DataTable.RowHighlighted, "#history-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        index = int(event.row_key.value or 0)
        if 0 <= index < len(self._rows):
            row = self._rows[index]
            notes = self.query_one("#history-notes", Static)
            # the whole headline, which the table cuts at 80 columns, then the meter's ledger
            kind = "" if row.kind == "?" else f"{row.kind} "  # a tap's, a capture's
            if row.reads:  # a browsing session: ctrl+r browses again
                kind = f"{row.kind} ({row.reads}) "
            notes.update(Text.assemble((f"{kind}{row.status}: ", "bold"),
                                       row.headline or "-", "\n",
                                       (ledger_line(row.target), "dim")))

    @on(DataTable.RowSelected, "#history-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        index = int(event.row_key.value or 0)
        if 0 <= index < len(self._rows):
            self.post_message(self.SessionChosen(self._rows[index].path))
