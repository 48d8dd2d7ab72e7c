"""Export from the Diagnosis screen: the report (md/html/json) or the capture (pcapng)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from dlmsdoctor import paths
from dlmsdoctor.screens.kinds import kind_name
from dlmsdoctor.session import Session


@dataclass(frozen=True, slots=True)
class ExportRequest:
    what: str  # "report" or "capture"
    path: Path
    show_secrets: bool = False


def default_export_path(session: Session, what: str) -> Path:
    from dlmsdoctor.run import session_filename

    stem = Path(session_filename(session)).stem
    if what == "capture":
        return paths.captures_dir() / f"{stem}.pcapng"
    return paths.data_dir() / "reports" / f"{stem}.md"


def export(session: Session, request: ExportRequest) -> str:
    """Write the file; returns a line for the technician. Raises ValueError/OSError on failure."""
    from dlmsdoctor.output.capture import write_capture
    from dlmsdoctor.output.report import FORMATS, write_report

    paths.ensure_dir(request.path.parent)
    of = of_kind(session)
    if request.what == "capture":
        stats = write_capture(session, request.path, show_secrets=request.show_secrets)
        return f"Capture{of} written: {request.path} ({stats.packets} packets)"
    fmt = request.path.suffix.lstrip(".").lower() or "md"
    if fmt not in FORMATS:
        raise ValueError(f"report format from the file name: use .{', .'.join(FORMATS)}")
    write_report(session, request.path, fmt=fmt, show_secrets=request.show_secrets)
    return f"Report{of} written: {request.path}"


def of_kind(session: Session) -> str:
    """" of the browsing session" (a tap, a capture too); "" for a probe run, the usual case."""
    return "" if session.kind == "probe" else f" of the {kind_name(session)}"


class ExportScreen(ModalScreen[ExportRequest | None]):
    """Where to write the report or capture; returns the request, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, default: Path, of: str = "") -> None:
        super().__init__()
        self._what = what
        self._default = default
        self._of = of  # " of the browsing session": what the file will hold

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box", classes="modal-box"):
            title = (
                f"Export the capture{self._of} (pcapng)" if self._what == "capture"
                else f"Export the report{self._of}"
            )
            yield Static(title, classes="modal-title")
            if self._what == "report":
                yield Label("The file name picks the format: .md, .html or .json")
            yield Input(str(self._default), id="export-path")
            # A session never holds a secret (the recorder masks them as it records): an
            # "include secrets" choice would promise what no export can do.
            yield Label("Passwords are masked (********) in every session and export.",
                        id="export-secrets-note")
            with Horizontal(id="export-buttons"):
                yield Button("Export", id="export-ok", variant="primary", compact=True)
                yield Button("Cancel", id="export-cancel", compact=True)

    @on(Input.Submitted, "#export-path")
    @on(Button.Pressed, "#export-ok")
    def _submit(self) -> None:
        text = self.query_one("#export-path", Input).value.strip()
        if not text:
            return
        self.dismiss(ExportRequest(self._what, Path(text).expanduser()))

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
