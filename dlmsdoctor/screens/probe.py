"""The Probe screen: target form, credentials, and the ladder running live."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Select, Static
from textual.worker import Worker

from dlmsdoctor.config import TargetConfig
from dlmsdoctor.engine import ProbeOptions
from dlmsdoctor.events import (
    Event,
    FindingRaised,
    FrameReceived,
    FrameSent,
    LoginAttempted,
    StepFinished,
    StepStarted,
    StepStatus,
)
from dlmsdoctor.screens import probe_messages as pm
from dlmsdoctor.screens.credentials import CredentialStore
from dlmsdoctor.screens.kinds import kind_name, reads_line
from dlmsdoctor.screens.layout import BREAKPOINTS, SHORT_BREAKPOINTS
from dlmsdoctor.screens.probe_run import (
    Prelude,
    PresetRun,
    build_options,
    live_frame,
    login_failed,
    logins_left,
    logins_left_text,
    new_session,
    planned_steps,
    preset_values,
    session_values,
    target_snippet,
)
from dlmsdoctor.session import Session, StepRecord
from dlmsdoctor.widgets.ladder import Ladder
from dlmsdoctor.widgets.target_form import (
    FormError,
    TargetForm,
    TargetValues,
    host_forms_line,
)


class ProbeScreen(Screen[None]):
    CSS_PATH = "probe.tcss"
    AUTO_FOCUS = "#host"
    HORIZONTAL_BREAKPOINTS = BREAKPOINTS
    VERTICAL_BREAKPOINTS = SHORT_BREAKPOINTS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "app.run", "Run"),
        Binding("escape", "cancel", "Cancel run"),
        Binding("f6", "app.credentials", "Credentials"),
        Binding("ctrl+s", "app.save_target", "Save"),
    ]

    def __init__(
        self,
        config_path: Path | None = None,
        sessions_dir: Path | None = None,
        preset: PresetRun | None = None,
    ) -> None:
        super().__init__(id="probe")
        self._config_path = config_path
        self._sessions_dir = sessions_dir
        self._preset = preset  # the demo: started on mount, runs neither saved nor in the ledger
        self._options: ProbeOptions | None = None  # the run under way
        self._cancel: asyncio.Event | None = None
        self._live: Session | None = None
        self._frames_seen = 0
        self._logins = 0
        self._logins_left: int | None = None  # None: no run of ours (an opened session)
        self._last_line = f"Ready. {host_forms_line()}"
        self._worker: Worker[None] | None = None
        self._opened_pending: Session | None = None
        self._ready = False  # composed and mounted (is_mounted is still False in on_mount)
        # actions asked for before the first visit (F5 then ctrl+r): run once mounted
        self._deferred: list[Callable[[], object]] = []

    def compose(self) -> ComposeResult:
        yield Static("Probe: where is the meter?", id="probe-title", classes="screen-title")
        if self._preset is not None:
            yield Static(self._preset.banner, id="demo-banner")
        with Horizontal(id="probe-body"):
            with Vertical(id="probe-left"):
                yield TargetForm(credentials=self._form_credentials(), id="target-form")
                with Horizontal(id="probe-buttons"):
                    yield Button("Run", id="run", variant="success", compact=True)
                    yield Button(
                        "Cancel", id="cancel", variant="error", compact=True, disabled=True
                    )
                    yield Button("Credentials…", id="credentials", compact=True)
                    yield Button("Save", id="save-target", compact=True)
            with Vertical(id="probe-right"):
                yield Ladder(id="ladder")
                yield Static(Text(self._last_line), id="probe-status")
        yield Footer()

    # -- config ----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._ready = True
        self._load_targets()
        pending, self._opened_pending = self._opened_pending, None
        if pending is not None and self._preset is None:
            self.show_opened(pending)
        if self._preset is not None:
            self.query_one(TargetForm).set_values(preset_values(self._preset))
            self.call_after_refresh(self._start_preset)
        deferred, self._deferred = self._deferred, []
        for action in deferred:
            self.call_after_refresh(action)

    def _later(self, action: Callable[[], object]) -> bool:
        """Before the screen is composed, keep ``action`` for on_mount; True when kept."""
        if self._ready:
            return False
        self._deferred.append(action)
        return True

    def _start_preset(self) -> None:
        preset = self._preset
        assert preset is not None
        self.app.notify(preset.story, title="Demo", timeout=6)
        options = preset.options
        self._begin(
            preset_values(preset),
            options,
            logins_left(options, preset.ledger),
            preset.prelude,
            preset.prelude_note,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="targets")
    def _load_targets(self) -> None:
        # Saved targets and their last result (newest session per host:port) from disk.
        from dlmsdoctor.config import ConfigError, load_config
        from dlmsdoctor.screens.history import last_results

        try:
            targets = load_config(self._config_path).targets
        except ConfigError:
            return  # already reported by _credential_names
        if targets:
            results = last_results(self._sessions_dir)
            self.app.call_from_thread(self._show_targets, targets, results)

    def _show_targets(self, targets: dict[str, TargetConfig], results: dict[str, str]) -> None:
        self.query_one(TargetForm).set_targets(targets, results)

    def _form_credentials(self) -> list[str]:
        # A preset's own credential sets are offered by name next to the config's.
        names = self._credential_names()
        if self._preset is not None:
            names += [c.name for c in self._preset.options.credentials if c.name not in names]
        return names

    def _credential_names(self) -> list[str]:
        from dlmsdoctor.config import ConfigError, load_config

        try:
            names = set(load_config(self._config_path).credentials)
        except ConfigError as exc:
            self.app.notify(str(exc), severity="error", timeout=10)
            names = set()
        return sorted(names | set(self._store.kept))

    @property
    def _store(self) -> CredentialStore:
        store = getattr(self.app, "credentials", None)
        if isinstance(store, CredentialStore):
            return store
        return CredentialStore(self._config_path)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # esc cancels a run; with none under way it goes back a level (the app's esc)
        if action == "cancel":
            return self.running
        return True

    def focus_host(self) -> None:
        if self._later(self.focus_host):
            return
        self.query_one("#host", Input).focus()

    def fill_from(self, session: Session, start: bool = False) -> None:
        """History's "run again": the form gets the session's target and working profile
        (``start``: and the probe runs)."""
        if self._later(lambda: self.fill_from(session, start)):
            return
        values = session_values(session)
        form = self.query_one(TargetForm)
        if values.credential and values.credential not in self._form_credentials():
            self.notify(
                f"Credential set {values.credential!r} is not defined: add it (F6) or pick one.",
                severity="warning",
            )
        form.set_values(values)
        self.show_opened(session)
        self.query_one("#run", Button).focus()
        if start:
            self.action_start()

    def show_opened(self, session: Session) -> None:
        """A session opened from History or a file: its ladder, as it ended."""
        if self.running:
            return
        self._live = session
        self._logins_left = None
        self._logins = len(session.logins)
        if not self._ready:
            self._opened_pending = session  # shown by on_mount
            return
        self.query_one(Ladder).reset(session.steps)
        headline = session.diagnosis.headline if session.diagnosis else ""
        when = session.started_at.replace("T", " ")[:19]
        if session.kind == "browse":  # its reads are rungs of the ladder, each with its value
            self._status(f"Browsing session of {when} (opened): {reads_line(session)}. "
                         f"{headline}  F7, ctrl+r browses again.".strip())
            return
        name = "Session" if session.kind == "probe" else kind_name(session).capitalize()
        self._status(f"{name} of {when} (opened). {headline}  ctrl+r probes again.".strip())

    @on(Button.Pressed, "#save-target")
    def action_save_target(self) -> None:
        """Save the form's target in the config, with the working profile of its last run."""
        if self._later(self.action_save_target):
            return
        form = self.query_one(TargetForm)
        try:
            values = form.values()
        except FormError as exc:  # plain text: "[v6]:port" is not markup
            self.notify(str(exc), severity="error", markup=False, timeout=10)
            form.query_one(f"#{exc.field_id}", Input).focus()
            return
        from dlmsdoctor.screens.modals import NameScreen

        def chosen(name: str | None) -> None:
            if name:
                self._save_target(name, values)

        default = values.host.replace(":", "-").replace(".", "-")
        if values.link != "tcp":  # /dev/ttyUSB0 -> ttyUSB0; rfc2217://h:p -> rfc2217-h-p
            default = "-".join(re.findall(r"[A-Za-z0-9_]+", values.host.removeprefix("/dev/")))
        self.app.push_screen(
            NameScreen("Save this target in the config as", default), chosen
        )

    def _save_target(self, name: str, values: TargetValues) -> None:
        from dlmsdoctor.config import ConfigError
        from dlmsdoctor.config_write import save_target

        session = self.app.session if hasattr(self.app, "session") else None
        snippet, note = target_snippet(name, values, session, self._store)
        try:
            path = save_target(name, snippet, self._config_path)
        except (ConfigError, OSError) as exc:
            self.notify(str(exc), title="Not saved", severity="error", timeout=10)
            return
        self.notify(f"Target {name!r} saved in {path}. {note}".strip(), timeout=10)
        self._load_targets()

    # -- actions ---------------------------------------------------------------------------
    @on(Button.Pressed, "#run")
    def _run_pressed(self) -> None:
        self.action_start()

    def action_start(self) -> None:
        if self._later(self.action_start):
            return
        if self._cancel is not None:
            return  # a run is under way: one at a time
        try:
            browser: Screen[None] | None = self.app.get_screen("browser")
        except KeyError:
            browser = None  # an app without the browser (tests of the screen alone)
        if browser is not None and getattr(browser, "connected", False):
            self.notify("The object browser holds the meter: release it first (F7, esc).",
                        severity="warning")
            return
        form = self.query_one(TargetForm)
        try:
            values = form.values()
        except FormError as exc:  # plain text: "[v6]:port" is not markup
            self.notify(str(exc), severity="error", markup=False, timeout=10)
            form.query_one(f"#{exc.field_id}", Input).focus()
            return
        try:
            options, budget = build_options(
                values, self._config_path, self._preset, self._store.kept
            )
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        self._begin(values, options, budget)

    @on(TargetForm.PortsRequested)
    def action_find_ports(self) -> None:
        """The serial ports pyserial finds, with their USB descriptions; one picked goes in Host."""
        from dlmsdoctor.screens.ports import PortsScreen

        def chosen(device: str | None) -> None:
            if device:
                form = self.query_one(TargetForm)
                form.set_device(device)
                form.query_one("#host", Input).focus()

        self.app.push_screen(PortsScreen(), chosen)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()  # the engine sees it, releases the association and returns
            self._status("Cancelling: releasing the session…")

    @on(Button.Pressed, "#credentials")
    def action_credentials(self) -> None:
        from dlmsdoctor.screens.credentials import CredentialsScreen

        def chosen(name: str | None) -> None:
            if not self._ready:
                return  # the form reads the sets when it is composed
            form = self.query_one(TargetForm)
            current = form.query_one("#credential", Select).value
            keep = current if isinstance(current, str) else None
            form.set_credentials(self._form_credentials(), name or keep)

        self.app.push_screen(CredentialsScreen(self._store), chosen)

    def _begin(
        self,
        values: TargetValues,
        options: ProbeOptions,
        budget: int,
        prelude: Prelude | None = None,
        prelude_note: str = "",
    ) -> None:
        self._cancel = asyncio.Event()
        self._options = options
        self._live = new_session(values)
        self._live.steps = planned_steps(options)
        self._frames_seen = 0
        self._logins = 0
        self._logins_left = budget
        self.query_one(Ladder).reset(self._live.steps)
        self.query_one(Ladder).scroll_home(animate=False)
        self.query_one("#run", Button).disabled = True
        self.query_one("#cancel", Button).disabled = False
        self.refresh_bindings()
        self._status(prelude_note if prelude else f"Probing {_where(options)}…")
        self.post_message(pm.LiveSessionStarted(self._live))
        self._worker = self._run(options, self._cancel, prelude)

    # -- the worker: only posts messages ---------------------------------------------------
    @work(exclusive=True, exit_on_error=False, group="probe")
    async def _run(
        self, options: ProbeOptions, cancel: asyncio.Event, prelude: Prelude | None = None
    ) -> None:
        frames: list[FrameSent | FrameReceived] = []

        def on_event(event: Event) -> None:
            if isinstance(event, FrameSent | FrameReceived):
                frames.append(event)
                self.post_message(pm.ProbeFramesArrived(frames, len(frames)))
            else:
                self.post_message(pm.ProbeEventArrived(event))

        # The same core call as `dlmsdoctor probe`: ladder, diagnosis, session saved (a preset's
        # runs are not saved and count logins in the preset's own ledger).
        from dlmsdoctor.run import probe_and_diagnose

        preset = self._preset
        try:
            if prelude is not None:
                await prelude(cancel)
                self.post_message(pm.PreludeFinished())
            result = await probe_and_diagnose(
                options,
                on_event=on_event,
                cancel=cancel,
                ledger=preset.ledger if preset is not None else None,
                save=preset is None,
                sessions_folder=self._sessions_dir,
            )
        except Exception as exc:  # shown to the user, never a traceback
            self.post_message(pm.ProbeFailed(f"{type(exc).__name__}: {exc}"))
            return
        if preset is not None:
            for step in result.session.steps:
                step.summary = preset.words(step.summary)
        self.post_message(pm.ProbeFinished(result.session, result.saved, result.save_error))

    # -- handlers own the state ------------------------------------------------------------
    @on(Ladder.RowSelected, "#ladder")
    def _rung_selected(self, event: Ladder.RowSelected) -> None:
        step_id = str(event.row_key.value)
        frames = self._live.frames if self._live else []
        first = next((f.index for f in frames if f.step_id == step_id), None)
        if first is None:
            self.notify("This rung sent and received no frames.", timeout=3)
        else:
            self.post_message(pm.StepFramesRequested(first))

    @on(pm.ProbeEventArrived)
    def _event_arrived(self, message: pm.ProbeEventArrived) -> None:
        event, live = message.event, self._live
        if live is None:
            return
        ladder = self.query_one(Ladder)
        if isinstance(event, StepStarted):
            step = live.step(event.step_id)
            if step is None:
                step = StepRecord(event.step_id, event.title, event.layer)
                live.steps.append(step)
            step.status, step.started = StepStatus.RUNNING, event.at
            ladder.update_step(step)
            self._status(f"{event.title}…")
        elif isinstance(event, StepFinished):
            step = live.step(event.step_id) or StepRecord(event.step_id, event.step_id, "")
            if step not in live.steps:
                live.steps.append(step)
            summary = self._preset.words(event.summary) if self._preset else event.summary
            step.status, step.finished, step.summary = event.status, event.at, summary
            ladder.update_step(step)
        elif isinstance(event, LoginAttempted):
            if event.settles:  # the late AARE of a login already counted: not another one
                self._status(f"Login as {event.credential}: {event.outcome} (its AARE came "
                             "late)")
                return
            self._logins += 1
            left = self._logins_left
            if login_failed(event.mechanism, event.outcome) and left is not None and left > 0:
                self._logins_left = left - 1
            self._status(f"Login as {event.credential}: {event.outcome}")
        elif isinstance(event, FindingRaised):
            self._status(f"{event.severity.value}: {event.message}")

    @on(pm.PreludeFinished)
    def _prelude_finished(self) -> None:
        # The prelude may have spent failed logins: the budget shown is the ledger's, now.
        options = self._options
        if options is None or self._preset is None:
            return
        self._logins_left = logins_left(options, self._preset.ledger)
        self._status(f"Probing {_where(options)}…")

    @on(pm.ProbeFramesArrived)
    def _frames_arrived(self, message: pm.ProbeFramesArrived) -> None:
        if self._live is None:
            return
        for event in message.frames[self._frames_seen : message.count]:
            self._live.frames.append(live_frame(len(self._live.frames), event))
        self._frames_seen = message.count
        self.post_message(pm.LiveFramesAdded())
        self._status(None)

    @on(pm.ProbeFinished)
    def _finished(self, message: pm.ProbeFinished) -> None:
        session = message.session
        if self._options is not None:
            # what the next run (ctrl+r) may spend: the ledger's count, as the engine makes it
            from dlmsdoctor.ledger import LoginLedger

            ledger = self._preset.ledger if self._preset is not None else LoginLedger()
            self._logins_left = logins_left(self._options, ledger)
        self._end_run()
        self.query_one(Ladder).reset(session.steps)
        self._live = session
        outcome = "cancelled, session released" if session.cancelled else "finished"
        headline = session.diagnosis.headline if session.diagnosis else ""
        self._status(f"Run {outcome}. {headline}".strip())
        if message.save_error:
            self.notify(message.save_error, severity="warning", timeout=8)
        elif session.diagnosis is not None:
            self.notify(
                f"{session.diagnosis.headline} (F4: causes and evidence)",
                title=f"Diagnosis: {session.diagnosis.status}",
                severity="information" if session.diagnosis.status == "ok" else "warning",
                timeout=8,
            )
        self.post_message(pm.RunCompleted(session))

    @on(pm.ProbeFailed)
    def _failed(self, message: pm.ProbeFailed) -> None:
        self._end_run()
        self._status(f"The run stopped: {message.error}")
        self.notify(message.error, title="Probe failed", severity="error", timeout=10)

    def _end_run(self) -> None:
        self._cancel = None
        self._options = None
        self.query_one("#run", Button).disabled = False
        self.query_one("#cancel", Button).disabled = True
        self.refresh_bindings()  # esc is "back" again, not "cancel run"

    def _status(self, line: str | None) -> None:
        text = Text()
        if line is not None:
            self._last_line = line
        text.append(self._last_line)
        frames = len(self._live.frames) if self._live else 0
        text.append(f"\nframes {frames}  ·  logins {self._logins}", style="dim")
        if self._live is not None and self._logins_left is not None:
            left = self._logins_left
            text.append(f"  ·  {logins_left_text(left)}", style="bold" if left > 0 else "bold red")
        self.query_one("#probe-status", Static).update(text)

    @property
    def running(self) -> bool:
        return self._cancel is not None

    async def stop_run(self, timeout: float = 15.0) -> None:
        """Cancel a run and wait until the engine has released the meter (used on quit)."""
        worker = self._worker
        if not self.running or worker is None:
            return
        self.action_cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker.wait(), timeout)


def _where(options: ProbeOptions) -> str:
    """The target as the status line names it (a serial line with its rate and format)."""
    from dlmsdoctor.targets import describe

    return describe(options)
