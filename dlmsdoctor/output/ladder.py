"""The probe ladder on a console: live while it runs, then the diagnosis.

On a terminal a rich ``Live`` table shows every rung as it starts and ends; on a pipe, or with
NO_COLOR/TERM=dumb, each rung prints one plain line when it ends (grep-able, no escape codes).
Both views are fed the engine's events through ``LadderView.on_event``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dlmsdoctor.codec.model import Severity
from dlmsdoctor.diagnosis.profile import gurux_args, server_text, toml_snippet
from dlmsdoctor.diagnosis.steps import (
    RECORDED_STATUS,
    RECORDED_SUMMARY,
    RECOVERED_BY,
    recovers,
)
from dlmsdoctor.diagnosis.verdict import is_note
from dlmsdoctor.diagnosis.words import plain_error
from dlmsdoctor.events import (
    Event,
    FindingRaised,
    FrameReceived,
    FrameSent,
    StepFinished,
    StepStarted,
    StepStatus,
)
from dlmsdoctor.session import Cause, Diagnosis, Session

MARK: dict[StepStatus, tuple[str, str]] = {
    StepStatus.PENDING: ("    ", "dim"),
    StepStatus.RUNNING: (" .. ", "cyan"),
    StepStatus.OK: (" ok ", "green"),
    StepStatus.WARNING: ("warn", "yellow"),
    StepStatus.FAILED: ("FAIL", "bold red"),
    StepStatus.SKIPPED: ("skip", "dim"),
    StepStatus.UNAVAILABLE: ("n/a ", "dim"),
    StepStatus.ERROR: ("BUG ", "bold magenta"),
    StepStatus.CANCELLED: ("stop", "yellow"),
    StepStatus.RECOVERED: ("rcvd", "yellow"),
}
STATUS_STYLE = {"ok": "bold green", "degraded": "bold yellow", "failed": "bold red",
                "cancelled": "bold yellow"}


@dataclass(slots=True)
class _Row:
    step_id: str
    title: str
    layer: str
    started: float
    status: StepStatus = StepStatus.RUNNING
    summary: str = ""
    finished: float | None = None


def use_live(console: Console) -> bool:
    """Live redraw only on a real terminal with colour allowed."""
    return console.is_terminal and not console.no_color and not console.is_dumb_terminal


class LadderView:
    def __init__(self, console: Console, *, live: bool | None = None) -> None:
        self.console = console
        self.live_mode = use_live(console) if live is None else live
        self.rows: dict[str, _Row] = {}
        self.frames_sent = 0
        self.frames_received = 0
        self.errors: dict[str, list[str]] = {}  # step id -> error finding messages
        self._live: Live | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> LadderView:
        if self.live_mode:
            self._live = Live(
                self._render(), console=self.console, refresh_per_second=10, transient=False
            )
            self._live.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()
            self._live = None

    # -- events --------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self.rows[event.step_id] = _Row(event.step_id, event.title, event.layer, event.at)
        elif isinstance(event, StepFinished):
            row = self.rows.get(event.step_id) or _Row(event.step_id, event.step_id, "", event.at)
            # finished again: a late answer settled it (a pipe's line then says so)
            again = row.finished is not None
            self.rows[event.step_id] = row
            row.status, row.summary, row.finished = event.status, event.summary, event.at
            if self.live_mode:
                # the live table redraws: a link rung a later rung recovered turns "rcvd"
                # (a pipe's lines are printed as they happen; render_diagnosis lists them)
                for earlier in self.rows.values():
                    if (earlier is not row and earlier.status is StepStatus.FAILED
                            and recovers(earlier.layer, row.layer, row.status)):
                        earlier.status = StepStatus.RECOVERED
                        earlier.summary = f"{earlier.summary}; recovered by {row.step_id}"
            else:
                self._print_plain(row, again)
        elif isinstance(event, FrameSent):
            self.frames_sent += 1
        elif isinstance(event, FrameReceived):
            self.frames_received += 1
        elif isinstance(event, FindingRaised) and event.severity is Severity.ERROR:
            messages = self.errors.setdefault(event.step_id, [])
            if event.message not in messages:
                messages.append(event.message)
        if self._live is not None:
            self._live.update(self._render())

    def _print_plain(self, row: _Row, again: bool = False) -> None:
        mark, style = MARK.get(row.status, ("    ", ""))
        line = Text()
        line.append(f"[{mark}] ", style=style)
        line.append(f"{row.step_id:<18} ", style="bold")
        if again:
            line.append("now: ", style="bold")  # settled by a later answer: replaces its line
        line.append(plain_error(row.summary or row.title))
        if row.finished is not None and row.status not in (StepStatus.SKIPPED,) and not again:
            line.append(f"  ({row.finished - row.started:.2f} s)", style="dim")
        self.console.print(line, soft_wrap=True)
        if row.status in (StepStatus.FAILED, StepStatus.ERROR):
            for message in self.errors.get(row.step_id, [])[:3]:
                self.console.print(Text(f"       ! {plain_error(message)}", style="red"),
                                   soft_wrap=True)

    def _render(self) -> RenderableType:
        table = Table(box=None, show_header=False, pad_edge=False, expand=False)
        table.add_column(width=6)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        table.add_column(justify="right", style="dim", no_wrap=True)
        for row in self.rows.values():
            mark, style = MARK.get(row.status, ("    ", ""))
            took = ""
            if row.finished is not None and row.status is not StepStatus.SKIPPED:
                took = f"{row.finished - row.started:.2f} s"
            table.add_row(
                Text(f"[{mark}]", style=style), row.step_id, plain_error(row.summary or row.title),
                took
            )
        footer = Text(
            f"frames: {self.frames_sent} sent, {self.frames_received} received", style="dim"
        )
        return Group(table, footer)


def render_diagnosis(
    console: Console, session: Session, *, saved: Path | None = None, verbose: bool = True
) -> None:
    """The verdict, the causes with evidence and actions, and the working settings."""
    diagnosis: Diagnosis | None = session.diagnosis
    console.print()
    if diagnosis is None:
        console.print("No diagnosis.")
        return
    settled = [s for s in session.steps
               if RECORDED_STATUS in s.details or RECORDED_SUMMARY in s.details]
    if settled:
        # the ladder above printed each rung as it ended; the whole run says more now (a rung a
        # later one recovered, text the framing rung got, one severity for unreadable objects)
        title = ("Recovered by a later rung (failed at the defaults):"
                 if all(s.status is StepStatus.RECOVERED for s in settled)
                 else "Rungs as the whole run shows them:")
        console.print(Text(title, style="bold"))
        for step in settled:
            mark, style = MARK.get(step.status, ("    ", ""))
            line = Text(f"[{mark}] ", style=style)
            line.append(f"{step.id:<18} ", style="bold")
            text = plain_error(step.summary)
            if step.status is StepStatus.RECOVERED:
                text += f"; recovered by {step.details.get(RECOVERED_BY, '?')}"
            line.append(text)
            console.print(line, soft_wrap=True)
        console.print()
    verdict = Text("Verdict: ", style="bold")
    verdict.append(diagnosis.status.upper(), style=STATUS_STYLE.get(diagnosis.status, "bold"))
    verdict.append(f"  {diagnosis.headline}")
    console.print(verdict, soft_wrap=True)
    faults = [c for c in diagnosis.causes if not is_note(c)]
    notes = [c for c in diagnosis.causes if is_note(c)]
    if faults:
        console.print()
        console.print(Text("Causes, most likely first:", style="bold"))
    for rank, cause in enumerate(faults, 1):
        _print_cause(console, f"{rank:>2}. ", cause, verbose)
    if notes:
        console.print()
        console.print(Text("Notes (observations, not faults):", style="bold"))
    for cause in notes:
        _print_cause(console, "  - ", cause, verbose)
    _print_profile(console, diagnosis)
    if saved is not None:
        console.print()
        console.print(Text(f"Session saved: {saved}", style="dim"), soft_wrap=True)


def _print_cause(console: Console, lead: str, cause: Cause, verbose: bool) -> None:
    head = Text(lead)
    head.append(f"[{cause.confidence:.0%}] ", style="bold")
    head.append(cause.title, style="bold")
    head.append(f"  ({cause.whose}; {cause.code})", style="dim")
    console.print(head, soft_wrap=True)
    if verbose and cause.explanation:
        console.print(Text(f"    Why: {cause.explanation}"), soft_wrap=True)
    for ev in cause.evidence[:4] if verbose else ():
        where = f"frame #{ev.frame}" if ev.frame is not None else (ev.step or ev.finding or "")
        console.print(Text(f"    Evidence ({where}): {ev.note}", style="dim"), soft_wrap=True)
    for action in cause.actions:
        label = "Do now" if action.when == "now" else "Later"
        console.print(Text(f"    {label}: {action.text}", style="cyan"), soft_wrap=True)


def _print_profile(console: Console, diagnosis: Diagnosis) -> None:
    profile = diagnosis.profile
    if profile is not None:
        console.print()
        console.print(Text("Working settings:", style="bold green"))
        console.print(
            Text(
                f"    {server_text(profile)}, client {profile.client_sap}, "
                f"authentication {profile.authentication}"
            ),
            soft_wrap=True,
        )
        console.print(Text(f"    gurux client: {gurux_args(profile)}"), soft_wrap=True)
        console.print(Text("    dlmsdoctor config:"))
        for line in toml_snippet(profile).splitlines():
            console.print(Text(f"      {line}"), soft_wrap=True)
