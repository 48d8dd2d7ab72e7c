"""The Textual app: the field technician's face of dlmsdoctor (``dlmsdoctor`` with no subcommand).

One factory, ``create_app``, builds it for ``main`` and for the tests (as posting does). The app
owns which session is shown; screens get it as an attribute and report back with messages.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.screens.diagnosis import DiagnosisScreen
from dlmsdoctor.screens.export import ExportRequest, ExportScreen, default_export_path, export
from dlmsdoctor.screens.frames import FramesScreen
from dlmsdoctor.screens.history import HistoryScreen
from dlmsdoctor.screens.modals import HelpScreen, OpenSessionScreen
from dlmsdoctor.screens.probe import ProbeScreen
from dlmsdoctor.screens.probe_messages import (
    LiveFramesAdded,
    LiveSessionStarted,
    RunCompleted,
    StepFramesRequested,
)
from dlmsdoctor.screens.probe_run import PresetRun
from dlmsdoctor.screens.recent import remember_opened
from dlmsdoctor.session import Session

__all__ = ["DoctorApp", "PresetRun", "create_app", "load_session", "main"]

DARK_THEME = "textual-dark"
LIGHT_THEME = "textual-light"
SCREENS_IN_ORDER = ("probe", "frames", "diagnosis", "history")


class DoctorApp(App[int]):
    TITLE = "dlmsdoctor"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        # q quits wherever no text input has focus (an Input takes the key first and types it);
        # ctrl+q quits from anywhere, an Input included. The footer shows them as one key,
        # "q/^q Quit", or "^q Quit" while the focused widget types q (get_key_display); it is
        # the first of the app's keys (Textual's own ctrl+q binding comes first) so that 80
        # columns still show it.
        Binding("q", "quit", "Quit", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "help", "Help"),
        Binding("f2", "show('probe')", "Probe"),
        Binding("f3", "show('frames')", "Frames"),
        Binding("f4", "show('diagnosis')", "Diagnosis"),
        Binding("f5", "show('history')", "History"),
        Binding("f7", "tap", "Tap", show=False),
        Binding("ctrl+o", "open_session", "Open"),
        Binding("ctrl+t", "toggle_theme", "Theme"),
    ]

    def __init__(
        self,
        session: Session | None = None,
        *,
        start_screen: str | None = None,
        sessions_dir: Path | None = None,
        config_path: Path | None = None,
        theme: str = DARK_THEME,
        preset: PresetRun | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.sessions_dir = sessions_dir
        self.config_path = config_path
        self.preset = preset
        self._start_screen = start_screen or ("diagnosis" if session else "probe")
        self._initial_theme = theme

    def get_key_display(self, binding: Binding) -> str:
        """ctrl+q's footer key names q too where q quits (no text field has focus)."""
        display = super().get_key_display(binding)
        if binding.key == "ctrl+q" and binding.action == "quit":
            focused = self.focused
            if focused is None or not focused.check_consume_key("q", "q"):
                return f"q/{display}"
        return display

    # -- screens ---------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.theme = self._initial_theme
        frames = FramesScreen()
        diagnosis = DiagnosisScreen()
        frames.session = diagnosis.session = self.session
        self.install_screen(
            ProbeScreen(
                config_path=self.config_path, sessions_dir=self.sessions_dir, preset=self.preset
            ),
            "probe",
        )
        self.install_screen(frames, "frames")
        self.install_screen(diagnosis, "diagnosis")
        self.install_screen(HistoryScreen(sessions_dir=self.sessions_dir), "history")
        self.push_screen(self._start_screen)

    def action_show(self, name: str) -> None:
        if name not in SCREENS_IN_ORDER or self.screen.id == name:
            return
        if isinstance(self.screen, ModalScreen):
            return  # a dialog is open: it is answered (or escaped) first
        if self.screen.id in SCREENS_IN_ORDER:
            self.switch_screen(name)
        else:
            self.push_screen(name)

    def show_session(self, session: Session | None, *, screen: str | None = None) -> None:
        """Make ``session`` the one every viewer shows (attributes down)."""
        self.session = session
        self.get_screen("frames", FramesScreen).show_session(session)
        self.get_screen("diagnosis", DiagnosisScreen).show_session(session)
        if session is not None:
            self.sub_title = f"{session.target.host}:{session.target.port}  {session.id}"
        if screen:
            self.action_show(screen)

    # -- actions (bindings, palette and help all call these) -------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        """Quit; a run under way is cancelled first so the meter is never left associated."""
        probe = self.get_screen("probe", ProbeScreen)
        if probe.running:
            self.notify("Releasing the meter before quitting…")
            await probe.stop_run()
        self.exit(0)

    def action_tap(self) -> None:  # the Tap screen (dlmsdoctor tap), imported when asked for
        from dlmsdoctor.screens.tap import TapScreen

        self.push_screen(TapScreen())

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT_THEME if self.theme == DARK_THEME else DARK_THEME

    def action_open_session(self) -> None:
        self.push_screen(OpenSessionScreen(), self.open_session_file)

    def open_session_file(self, path: Path | None) -> None:
        if path is None:
            return
        try:
            session = load_session(path)
        except (OSError, ValueError) as exc:  # SessionFormatError, CaptureFormatError
            self.notify(f"Cannot open {path}: {exc}", severity="error", timeout=8)
            return
        remember_opened(path)
        self.show_session(session, screen="diagnosis")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name in SCREENS_IN_ORDER:
            title = name.capitalize()
            yield SystemCommand(
                f"Go to {title}", f"Show the {title} screen", lambda n=name: self.action_show(n)
            )
        yield SystemCommand("Run probe", "Probe the target in the form", self._palette_run)
        yield SystemCommand(
            "Cancel run", "Stop the probe; the meter is released", self._palette_cancel
        )
        yield SystemCommand("Open session", "Open a saved session file", self.action_open_session)
        yield SystemCommand(
            "Toggle light/dark", "Switch the colour theme", self.action_toggle_theme
        )
        yield SystemCommand("Help", "Keys and screens", self.action_help)

    def _palette_run(self) -> None:
        self.action_show("probe")
        self.get_screen("probe", ProbeScreen).action_start()

    def _palette_cancel(self) -> None:
        self.get_screen("probe", ProbeScreen).action_cancel()

    # -- messages from screens -------------------------------------------------------------
    @on(DiagnosisScreen.EvidenceChosen)
    @on(StepFramesRequested)
    def _frame_requested(self, event: DiagnosisScreen.EvidenceChosen | StepFramesRequested) -> None:
        self.action_show("frames")
        if not self.get_screen("frames", FramesScreen).select_frame(event.frame_index):
            self.notify(f"Frame #{event.frame_index} is not in this session.", severity="warning")

    @on(LiveSessionStarted)
    def _live_session_started(self, event: LiveSessionStarted) -> None:
        self.show_session(event.session)

    @on(LiveFramesAdded)
    def _live_frames_added(self) -> None:
        self.get_screen("frames", FramesScreen).frames_added()

    @on(RunCompleted)
    def _run_completed(self, event: RunCompleted) -> None:
        # The engine's Session replaces the live one: same frames, plus the diagnosis.
        self.show_session(event.session)

    @on(DiagnosisScreen.ExportRequested)
    def _export_requested(self, event: DiagnosisScreen.ExportRequested) -> None:
        session = self.session
        if session is None:
            self.notify("Nothing to export: open or run a session first.", severity="warning")
            return

        def write(request: ExportRequest | None) -> None:
            if request is None:
                return
            try:
                self.notify(export(session, request), timeout=8)
            except (ValueError, OSError) as exc:
                self.notify(str(exc), title="Export failed", severity="error", timeout=10)

        default = default_export_path(session, event.what)
        self.push_screen(ExportScreen(event.what, default), write)

    @on(HistoryScreen.SessionChosen)
    def _history_session_chosen(self, event: HistoryScreen.SessionChosen) -> None:
        self.open_session_file(event.path)


def load_session(path: Path) -> Session:
    """A session JSON, a dlmsdoctor pcapng, or a foreign pcap/pcapng with a DLMS TCP stream."""
    from dlmsdoctor.output.capture_read import load_and_diagnose

    return load_and_diagnose(path)  # judged by today's rules, as `dlmsdoctor open` does


def create_app(
    session: Session | None = None,
    *,
    session_path: str | Path | None = None,
    start_screen: str | None = None,
    sessions_dir: Path | None = None,
    config_path: Path | None = None,
    theme: str = DARK_THEME,
    preset: PresetRun | None = None,
) -> DoctorApp:
    """Build the app for ``main``, ``dlmsdoctor demo`` and the tests.

    ``preset``: a run the Probe screen fills in and starts by itself (the demo; see
    ``screens.probe_run.PresetRun``). Raises ValueError/OSError on a bad session file.
    """
    if session is None and session_path is not None:
        session = load_session(Path(session_path))
        remember_opened(Path(session_path))
    return DoctorApp(
        session,
        start_screen=start_screen,
        sessions_dir=sessions_dir,
        config_path=config_path,
        theme=theme,
        preset=preset,
    )


def main(session_path: str | None = None) -> int:
    """Run the TUI (optionally on a saved session) and return the process exit code."""
    try:
        app = create_app(session_path=session_path)
    except (OSError, ValueError) as exc:
        print(f"dlmsdoctor: cannot open {session_path}: {exc}", file=sys.stderr)
        return int(ExitCode.UNUSABLE_INPUT)
    result = app.run()
    return int(result if result is not None else (app.return_code or 0))
