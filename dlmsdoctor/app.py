"""The Textual app: the field technician's face of dlmsdoctor (``dlmsdoctor`` with no subcommand).

One factory, ``create_app``, builds it for ``main`` and for the tests (as posting does). The app
owns which session is shown; screens get it as an attribute and report back with messages.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.screens.browser import BrowserScreen
from dlmsdoctor.screens.credentials import CredentialStore
from dlmsdoctor.screens.decode import DecodeScreen
from dlmsdoctor.screens.diagnosis import DiagnosisScreen, profile_text
from dlmsdoctor.screens.export import (
    ExportRequest,
    ExportScreen,
    default_export_path,
    export,
    of_kind,
)
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
from dlmsdoctor.session import ConnectionProfile, Session

__all__ = ["DoctorApp", "PresetRun", "create_app", "load_session", "main"]

DARK_THEME = "textual-dark"
LIGHT_THEME = "textual-light"
SCREENS_IN_ORDER = ("probe", "frames", "diagnosis", "history", "browser", "decode")


@dataclass(frozen=True, slots=True)
class AppAction:
    """One thing the technician can do: a key, an entry in the palette and in the F1 menu
    (the three ways every action is reached). ``action`` is a Textual action string."""

    title: str
    help: str
    key: str  # as the footer shows it
    action: str


ACTIONS: tuple[AppAction, ...] = (
    AppAction("Go to Probe", "the target form and the ladder", "F2", "show('probe')"),
    AppAction("Go to Frames", "TX/RX frames, hex view and decode tree", "F3", "show('frames')"),
    AppAction("Go to Diagnosis", "causes, evidence, the working profile", "F4",
              "show('diagnosis')"),
    AppAction("Go to History", "saved sessions; enter reopens, ctrl+r runs again", "F5",
              "show('history')"),
    AppAction("Credentials", "add, edit, remove credential sets", "F6", "credentials"),
    AppAction("Go to Object browser", "read any attribute with the working profile (GET only)",
              "F7", "show('browser')"),
    AppAction("Go to Decode", "paste hex or log lines, get them explained", "F8", "show('decode')"),
    AppAction("Tap", "relay a poller to the meter and diagnose both (dlmsdoctor tap)", "F9",
              "tap"),
    AppAction("Run probe", "probe the target in the form (History: run that session again)",
              "ctrl+r", "run"),
    AppAction("Cancel run", "stop the probe; the meter is released", "esc (Probe)",
              "cancel_run"),
    AppAction("Save target", "save the form's target and its working profile to the config",
              "ctrl+s", "save_target"),
    AppAction("Export report", "the session as .md, .html or .json", "r", "export('report')"),
    AppAction("Export capture", "the session's frames as pcapng for Wireshark", "x",
              "export('capture')"),
    AppAction("Copy profile", "the working profile, gurux and config lines: clipboard and file",
              "c", "copy_profile"),
    AppAction("Next bad frame", "the next frame with an error (shift+n: previous)", "n",
              "next_bad_frame"),
    AppAction("Open session", "a saved session or a capture file", "ctrl+o", "open_session"),
    AppAction("Toggle light/dark", "the colour theme", "ctrl+t", "toggle_theme"),
    AppAction("Back", "one level back (a dialog, then the screen before)", "esc", "go_back"),
    AppAction("Help", "this menu: every action, its key, the keys of each screen", "F1",
              "help"),
    AppAction("Quit", "release anything open, then quit", "q / ctrl+q", "quit"),
)


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
        Binding("f1", "help", "Menu"),
        Binding("f2", "show('probe')", "Probe", show=False),
        Binding("f3", "show('frames')", "Frames", show=False),
        Binding("f4", "show('diagnosis')", "Diagnosis", show=False),
        Binding("f5", "show('history')", "History", show=False),
        Binding("f6", "credentials", "Credentials", show=False),
        Binding("f7", "show('browser')", "Browser", show=False),
        Binding("f8", "show('decode')", "Decode", show=False),
        Binding("f9", "tap", "Tap", show=False),
        Binding("ctrl+r", "run", "Run", show=False),
        Binding("ctrl+s", "save_target", "Save target", show=False),
        Binding("r", "export('report')", "Report", show=False),
        Binding("x", "export('capture')", "Capture", show=False),
        Binding("c", "copy_profile", "Copy profile", show=False),
        Binding("n", "next_bad_frame", "Next bad frame", show=False),
        Binding("escape", "go_back", "Back", show=False),
        Binding("ctrl+o", "open_session", "Open", show=False),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
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
        self.credentials = CredentialStore(config_path)
        self._start_screen = start_screen or ("diagnosis" if session else "probe")
        self._initial_theme = theme
        self._trail: list[str] = []  # screens visited, for esc

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
        self.install_screen(BrowserScreen(), "browser")
        self.install_screen(DecodeScreen(), "decode")
        self.push_screen(self._start_screen)
        if self.session is not None:
            self.call_after_refresh(self._show_opened_steps, self.session)

    def action_show(self, name: str) -> None:
        if name not in SCREENS_IN_ORDER:
            return
        if isinstance(self.screen, ModalScreen):
            return  # a dialog is open: it is answered (or escaped) first
        current = self.screen.id
        if current == name:
            if name == "probe":  # F2 on the Probe screen: back to Host, whatever has focus
                self.get_screen("probe", ProbeScreen).focus_host()
            return
        if current in SCREENS_IN_ORDER:
            self._trail.append(current)
            del self._trail[:-20]
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

    def _show_opened_steps(self, session: Session) -> None:
        self.get_screen("probe", ProbeScreen).show_opened(session)

    # -- actions (bindings, palette and the F1 menu all call these) ------------------------
    def action_help(self) -> None:
        def chosen(action: str | None) -> None:
            if action:
                self.call_later(self.run_action, action)

        self.push_screen(HelpScreen(ACTIONS), chosen)

    async def action_quit(self) -> None:
        """Quit; a run or a browser session under way is ended first so the meter is never
        left associated."""
        probe = self.get_screen("probe", ProbeScreen)
        browser = self.get_screen("browser", BrowserScreen)
        if probe.running or browser.connected:
            self.notify("Releasing the meter before quitting…")
        if probe.running:
            await probe.stop_run()
        if browser.connected:
            await browser.disconnect()
        self.exit(0)

    def action_tap(self) -> None:  # the Tap screen (dlmsdoctor tap), imported when asked for
        from dlmsdoctor.screens.tap import TapScreen

        self.push_screen(TapScreen())

    def action_go_back(self) -> None:
        """Esc: one level back. Dialogs close themselves; a screen goes to the one before."""
        if isinstance(self.screen, ModalScreen):
            self.screen.dismiss(None)
            return
        while self._trail:
            name = self._trail.pop()
            if name != self.screen.id:
                self.switch_screen(name)
                return

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT_THEME if self.theme == DARK_THEME else DARK_THEME

    def action_open_session(self) -> None:
        self.push_screen(OpenSessionScreen(), self.open_session_file)

    def action_run(self) -> None:
        if isinstance(self.screen, ModalScreen):
            return
        if self.screen.id == "history":
            self.get_screen("history", HistoryScreen).action_run_again()
            return
        if self.screen.id == "browser":
            self.get_screen("browser", BrowserScreen).action_connect()
            return
        self.action_show("probe")
        self.get_screen("probe", ProbeScreen).action_start()

    def action_cancel_run(self) -> None:
        self.get_screen("probe", ProbeScreen).action_cancel()

    def action_credentials(self) -> None:
        if isinstance(self.screen, ModalScreen):
            return
        self.get_screen("probe", ProbeScreen).action_credentials()

    def action_save_target(self) -> None:
        if isinstance(self.screen, ModalScreen):
            return
        self.action_show("probe")  # the form being saved is in view
        self.get_screen("probe", ProbeScreen).action_save_target()

    def action_next_bad_frame(self) -> None:
        if isinstance(self.screen, ModalScreen):
            return
        self.action_show("frames")
        self.get_screen("frames", FramesScreen).next_bad_frame()

    def action_copy_profile(self) -> None:
        """The working profile with the gurux and config lines the CLI prints: on the
        clipboard (OSC 52; not every terminal honours it) and in a file, whose path is said."""
        session = self.session
        diagnosis = session.diagnosis if session else None
        if session is None or diagnosis is None or diagnosis.profile is None:
            self.notify("No working connection profile to copy.", severity="warning")
            return
        text = profile_copy_text(diagnosis.profile)
        self.copy_to_clipboard(text)
        try:
            path = write_profile_file(session, text)
        except OSError as exc:
            self.notify(
                f"Sent to the clipboard (OSC 52: your terminal may ignore it); writing the "
                f"file failed: {exc}",
                severity="warning",
                timeout=10,
            )
            return
        self.notify(
            f"Sent to the clipboard (if your terminal takes OSC 52) and written to {path}",
            title="Profile copied",
            timeout=10,
        )

    def action_export(self, what: str) -> None:
        if isinstance(self.screen, ModalScreen):
            return
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

        default = default_export_path(session, what)
        self.push_screen(ExportScreen(what, default, of_kind(session)), write)

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
        self._show_opened_steps(session)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for item in ACTIONS:
            yield SystemCommand(
                item.title,
                f"{item.help}  [{item.key}]",
                lambda a=item.action: self.call_later(self.run_action, a),
            )

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
        self.action_export(event.what)

    @on(HistoryScreen.SessionChosen)
    def _history_session_chosen(self, event: HistoryScreen.SessionChosen) -> None:
        self.open_session_file(event.path)

    @on(HistoryScreen.RunAgain)
    def _history_run_again(self, event: HistoryScreen.RunAgain) -> None:
        try:
            session = load_session(event.path)
        except (OSError, ValueError) as exc:
            self.notify(f"Cannot open {event.path}: {exc}", severity="error", timeout=8)
            return
        if session.kind == "browse" and event.start:
            # a browsing session runs again as one: the browser, with the profile it used
            browser = self.get_screen("browser", BrowserScreen)
            if browser.connected:
                self.notify("The object browser holds a meter: release it first (F7, esc).",
                            severity="warning")
                return
            self.show_session(session, screen="browser")
            self.call_after_refresh(browser.action_connect)
            return
        self.action_show("probe")
        self.get_screen("probe", ProbeScreen).fill_from(session, start=event.start)


def profile_copy_text(profile: ConnectionProfile) -> str:
    """What "copy profile" gives: the settings, then the gurux and dlmsdoctor lines the CLI
    prints under "Working settings"."""
    from dlmsdoctor.diagnosis.profile import dlmsdoctor_args, gurux_args, toml_snippet

    lines = [profile_text(profile).plain.rstrip(), "", f"gurux client: {gurux_args(profile)}"]
    lines += [f"dlmsdoctor: {dlmsdoctor_args(profile)}", "", "dlmsdoctor config:"]
    lines += toml_snippet(profile).rstrip().splitlines()
    return "\n".join(lines) + "\n"


def write_profile_file(session: Session, text: str) -> Path:
    from dlmsdoctor import paths
    from dlmsdoctor.run import session_filename

    folder = paths.ensure_dir(paths.data_dir() / "profiles")
    path = folder / (Path(session_filename(session)).stem + ".txt")
    path.write_text(text, encoding="utf-8")
    return path


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
