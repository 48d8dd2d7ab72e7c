"""The Diagnosis screen: ranked causes, their evidence (links to frames), actions, the profile."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, OptionList, Static
from textual.widgets.option_list import Option

from dlmsdoctor.events import Direction
from dlmsdoctor.screens.kinds import reads_line
from dlmsdoctor.screens.layout import BREAKPOINTS
from dlmsdoctor.screens.probe_messages import StepFramesRequested
from dlmsdoctor.session import Cause, ConnectionProfile, Evidence, Session
from dlmsdoctor.widgets.ladder import Ladder

_STATUS_STYLE = {"ok": "bold green", "degraded": "bold yellow", "failed": "bold red",
                 "cancelled": "bold yellow"}


def evidence_frame(session: Session, evidence: Evidence) -> int | None:
    """The frame an evidence item cites (F4's jump lands there): its own frame, else the frame
    that proves its probe finding (the meter's answer; our request for silence), else the first
    frame its step sent itself (not the release of a previous association it began with)."""
    if evidence.frame is not None:
        return evidence.frame
    if evidence.finding:
        from dlmsdoctor.diagnosis.evidence import claims_silence

        for finding in session.findings:
            if finding.code != evidence.finding or not finding.frames:
                continue
            if evidence.step and finding.step_id != evidence.step:
                continue
            by_index = {f.index: f for f in session.frames}
            cited = [by_index[i] for i in finding.frames if i in by_index]
            if not cited:
                return finding.frames[0]
            if claims_silence(finding.code):
                sent = [f for f in cited if f.direction is Direction.TX]
                return (sent[-1] if sent else cited[0]).index
            got = [f for f in cited if f.direction is Direction.RX]
            return (got[0] if got else cited[0]).index
    if evidence.step:
        from dlmsdoctor.diagnosis.steps import frame_owners

        owners = frame_owners(session)
        return next((f.index for f in session.frames
                     if f.step_id == evidence.step and f.index not in owners), None)
    return None


def profile_text(profile: ConnectionProfile | None) -> Text:
    if profile is None:
        return Text("No working connection profile: nothing got as far as an association.")
    text = Text("Working connection profile\n", style="bold")
    server = f"{profile.server_logical}"
    if profile.server_physical is not None:
        server += f"/{profile.server_physical}"
    rows = [
        ("host", f"{profile.host}:{profile.port}"),
        ("framing", profile.framing),
        ("server address", f"{server} ({profile.address_size}-byte)"),
        ("client SAP", str(profile.client_sap)),
        ("authentication", profile.authentication),
        ("credential set", profile.credential or "-"),
        ("max info tx/rx", f"{profile.max_info_tx or '-'}/{profile.max_info_rx or '-'}"),
        ("window tx/rx", f"{profile.window_tx or '-'}/{profile.window_rx or '-'}"),
        ("max PDU size", str(profile.max_pdu_size or "-")),
    ]
    for key, value in rows:
        text.append(f"  {key:<15}", style="dim")
        text.append(f"{value}\n")
    return text


def identity_text(identity: dict[str, object]) -> Text:
    """What the meter said about itself (read once associated); empty when nothing was read."""
    if not identity:
        return Text()
    text = Text("\nMeter identity\n", style="bold")
    for key, value in identity.items():
        text.append(f"  {key.replace('_', ' '):<24}", style="dim")
        text.append(f"{value}\n")
    return text


def reads_text(session: Session | None) -> Text:
    """A browsing session's reads, one a line with its value (a long one wraps: the value is
    what the technician came for) or why there is none; a probe run, a tap, a capture: nothing."""
    text = Text()
    if session is None or session.kind != "browse":
        return text
    from dlmsdoctor.browse import reads_of
    from dlmsdoctor.events import StepStatus

    text.append(f"Browsing session: {reads_line(session)}", style="bold")
    for step in reads_of(session):
        ok = step.status is StepStatus.OK
        text.append("\n  ✓ " if ok else "\n  ! ", style="bold green" if ok else "bold yellow")
        text.append(step.summary or step.title)
    return text


class DiagnosisScreen(Screen[None]):
    CSS_PATH = "diagnosis.tcss"
    # The app owns these actions (one meaning per key everywhere); shown here in the footer.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "app.copy_profile", "Copy profile"),
        Binding("r", "app.export('report')", "Report"),
        Binding("x", "app.export('capture')", "Capture"),
    ]
    AUTO_FOCUS = "#causes"
    HORIZONTAL_BREAKPOINTS = BREAKPOINTS

    class EvidenceChosen(Message):
        """The user followed an evidence link to a frame (the app switches to Frames)."""

        def __init__(self, frame_index: int) -> None:
            super().__init__()
            self.frame_index = frame_index

    class ExportRequested(Message):
        def __init__(self, what: str) -> None:
            super().__init__()
            self.what = what  # "report" or "capture"

    def __init__(self) -> None:
        super().__init__(id="diagnosis")
        self._ready = False
        self.session: Session | None = None
        self._causes: list[Cause] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="diagnosis-headline", classes="screen-title")
        with Horizontal(id="diagnosis-body"):
            yield OptionList(id="causes")
            # not a tab stop itself: tab goes from the causes straight to the evidence list
            with VerticalScroll(id="cause-detail", can_focus=False):
                yield Static("", id="cause-explanation")
                yield Static(
                    "Evidence (enter jumps to the frame)", id="evidence-title", classes="section"
                )
                yield OptionList(id="evidence")
                yield Static("", id="cause-actions")
                yield Static("", id="browse-reads")
                yield Static("", id="profile")
            # wide terminals: the session's ladder under the causes (enter: its frames); after
            # the detail so that tab goes causes -> evidence -> ladder
            yield Ladder(id="diagnosis-ladder")
        with Horizontal(id="diagnosis-buttons"):
            yield Button("Export report", id="export-report")
            yield Button("Export capture", id="export-capture")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#causes", OptionList).border_title = "Causes"
        self.query_one("#diagnosis-ladder", Ladder).border_title = "Ladder"
        self._ready = True
        self.show_session(self.session)

    def show_session(self, session: Session | None) -> None:
        self.session = session
        if not self._ready:
            return  # on_mount shows it
        headline = self.query_one("#diagnosis-headline", Static)
        causes = self.query_one("#causes", OptionList)
        causes.clear_options()
        self.query_one("#diagnosis-ladder", Ladder).reset(session.steps if session else [])
        diagnosis = session.diagnosis if session else None
        # a browsing session: what was read (once it is over; the live record has no steps)
        reads = self.query_one("#browse-reads", Static)
        reads.display = diagnosis is not None and session is not None and session.kind == "browse"
        reads.update(reads_text(session) if reads.display else "")
        if diagnosis is None:
            self._causes = []
            headline.update("No diagnosis yet: run a probe (F2) or open a session (ctrl+o).")
            self._show_cause(None)
            return
        line = Text()
        line.append(
            f"{diagnosis.status.upper()} ", style=_STATUS_STYLE.get(diagnosis.status, "bold")
        )
        line.append(diagnosis.headline)
        headline.update(line)
        # faults by confidence, then the notes (a "release confirmed late" is never first):
        # the diagnosis' own ranking, also for a session whose causes came unranked
        from dlmsdoctor.diagnosis.verdict import is_note

        self._causes = sorted(diagnosis.causes, key=lambda c: (is_note(c), -c.confidence))
        causes.add_options(
            Option(f"{c.confidence:>4.0%} {c.title} ({c.whose})", id=f"cause-{i}")
            for i, c in enumerate(self._causes)
        )
        causes.display = bool(self._causes)  # a healthy meter: no empty box
        if self._causes:
            causes.highlighted = 0
        self._show_cause(self._causes[0] if self._causes else None)
        profile = profile_text(diagnosis.profile)
        profile.append_text(identity_text(session.identity if session else {}))
        self.query_one("#profile", Static).update(profile)

    @on(Ladder.RowSelected, "#diagnosis-ladder")
    def _rung_selected(self, event: Ladder.RowSelected) -> None:
        step_id = str(event.row_key.value)
        frames = self.session.frames if self.session else []
        first = next((f.index for f in frames if f.step_id == step_id), None)
        if first is None:
            self.notify("This rung sent and received no frames.", timeout=3)
        else:
            self.post_message(StepFramesRequested(first))

    @on(OptionList.OptionHighlighted, "#causes")
    def _cause_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if 0 <= event.option_index < len(self._causes):
            self._show_cause(self._causes[event.option_index])

    def _show_cause(self, cause: Cause | None) -> None:
        evidence = self.query_one("#evidence", OptionList)
        evidence.clear_options()
        explanation = self.query_one("#cause-explanation", Static)
        actions = self.query_one("#cause-actions", Static)
        self.query_one("#evidence-title").display = cause is not None
        evidence.display = cause is not None
        if cause is None:
            diagnosis = self.session.diagnosis if self.session else None
            ok = diagnosis is not None and not diagnosis.causes
            explanation.update(
                "No cause to report: nothing went wrong that needs fixing." if ok else ""
            )
            actions.update("")
            return
        text = Text(cause.title, style="bold")
        text.append(f"  {cause.code}, {cause.confidence:.0%}, whose: {cause.whose}\n", style="dim")
        text.append(cause.explanation)
        explanation.update(text)
        session = self.session
        for i, item in enumerate(cause.evidence):
            frame = evidence_frame(session, item) if session else None
            where = f"frame #{frame}" if frame is not None else (item.step or "-")
            evidence.add_option(Option(f"→ {where}: {item.note}", id=f"evidence-{i}"))
        if cause.evidence:
            evidence.highlighted = 0  # tab then enter opens the first evidence's frame
        steps = Text("Actions\n", style="bold")
        for action in cause.actions:
            steps.append(f"  • {action.text}")
            steps.append(f" ({action.when})\n" if action.when != "now" else "\n", style="dim")
        actions.update(steps)

    @on(OptionList.OptionSelected, "#evidence")
    def _evidence_selected(self, event: OptionList.OptionSelected) -> None:
        cause_index = self.query_one("#causes", OptionList).highlighted
        if self.session is None or cause_index is None or cause_index >= len(self._causes):
            return
        cause = self._causes[cause_index]
        if event.option_index < len(cause.evidence):
            frame = evidence_frame(self.session, cause.evidence[event.option_index])
            if frame is not None:
                self.post_message(self.EvidenceChosen(frame))
            else:
                self.notify("This evidence does not point at a frame.", severity="warning")

    @on(Button.Pressed, "#export-report, #export-capture")
    def _export(self, event: Button.Pressed) -> None:
        self.action_export("report" if event.button.id == "export-report" else "capture")

    def action_export(self, what: str) -> None:
        self.post_message(self.ExportRequested(what))

