"""What each kind of session is called on screen (``Session.kind``), so that a browsing session,
a tap or a capture reopened from History or exported never reads as a probe run."""

from __future__ import annotations

from dlmsdoctor.events import StepStatus
from dlmsdoctor.session import Session

# Session.kind -> its name in a sentence; tests/tui/test_browse_kind.py checks that every kind
# the code creates has one.
KIND_NAMES = {
    "probe": "probe run",
    "tap": "tap session",
    "capture": "capture",
    "browse": "browsing session",
}


def kind_name(session: Session) -> str:
    return KIND_NAMES.get(session.kind, f"{session.kind} session")


def reads_line(session: Session) -> str:
    """A browsing session's reads in a few words ("3 reads, 1 refused"); "" for other kinds."""
    if session.kind != "browse":
        return ""
    from dlmsdoctor.browse import reads_of

    done = reads_of(session)
    refused = sum(1 for step in done if step.status is not StepStatus.OK)
    return f"{len(done)} read{'s' if len(done) != 1 else ''}" + (
        f", {refused} refused or unanswered" if refused else "")
