"""One truth per run: the steps' statuses as every face shows them, settled once the verdict is
known, and which step each frame belongs to.

The engine records what each rung saw when it ran; the diagnosis knows what came after. A rung
that failed at the defaults and was recovered by a later rung (silence at 1/1, then the address
discovery found 1/6678) is ``RECOVERED``; the same unreadable object is a warning whichever login
read it. The recorded status and summary stay in the step's details (``recorded_status``,
``recorded_summary``): settling never loses history, and settling twice gives the same result.
"""

from __future__ import annotations

import contextlib

from dlmsdoctor.diagnosis.facts import TAG_RLRE, TAG_RLRQ, SessionFacts, frame_facts
from dlmsdoctor.events import Direction, StepStatus
from dlmsdoctor.session import Diagnosis, Session, StepRecord

RECORDED_STATUS = "recorded_status"
RECORDED_SUMMARY = "recorded_summary"
RECOVERED_BY = "recovered_by"

# Rungs below the association: a later rung that got further proves them recoverable.
_LINK_LAYERS = ("framing", "hdlc", "wrapper", "address")
# A step of one of these layers that ended OK proves the link (and the framing) works.
_PROVING_LAYERS = ("hdlc", "wrapper", "address", "association", "cosem")
_WORKED = (StepStatus.OK, StepStatus.WARNING, StepStatus.RECOVERED)

# Frames an association step sends to close what an earlier step left open, before its own
# SNRM/AARQ: they belong to that release, not to the login. The probe files them under this
# step id as it sends them (probes/association.py prepare_link, same value);
# ``frame_owners`` refiles them in sessions recorded before it did.
PREVIOUS_RELEASE = "release.previous"


def recovers(failed: StepRecord | str, later_layer: str, later_status: StepStatus) -> bool:
    """A later step (``later_layer``, ``later_status``) recovers a failed rung of layer
    ``failed`` (a StepRecord or its layer): it got further down the ladder."""
    layer = failed if isinstance(failed, str) else failed.layer
    return (layer in _LINK_LAYERS and later_layer in _PROVING_LAYERS
            and later_status in (StepStatus.OK, StepStatus.WARNING))


def unsettle(session: Session) -> None:
    """Back to what the engine recorded (the rules judge the recorded run)."""
    for step in session.steps:
        recorded = step.details.pop(RECORDED_STATUS, None)
        if isinstance(recorded, str):
            with contextlib.suppress(ValueError):
                step.status = StepStatus(recorded)
        summary = step.details.pop(RECORDED_SUMMARY, None)
        if isinstance(summary, str):
            step.summary = summary
        step.details.pop(RECOVERED_BY, None)


def _set(step: StepRecord, status: StepStatus, summary: str | None = None) -> None:
    if status is not step.status:
        step.details.setdefault(RECORDED_STATUS, step.status.value)
        step.status = status
    if summary is not None and summary != step.summary:
        step.details.setdefault(RECORDED_SUMMARY, step.summary)
        step.summary = summary


def settle(session: Session, facts: SessionFacts, diagnosis: Diagnosis) -> None:
    """Apply what the whole run shows to the steps (after ``unsettle`` and the rules)."""
    steps = session.steps
    for i, step in enumerate(steps):
        if step.status is StepStatus.FAILED and step.layer in _LINK_LAYERS:
            rescuer = next(
                (later for later in steps[i + 1 :]
                 if recovers(step, later.layer, later.status)),
                None,
            )
            if rescuer is None and diagnosis.profile is not None:
                rescuer = next((s for s in steps[i + 1 :] if s.status in _WORKED), None)
            if rescuer is not None:
                _set(step, StepStatus.RECOVERED)
                step.details[RECOVERED_BY] = rescuer.id
    _same_severity_for_reads(session, facts)
    _say_what_framing_got(session, facts)


def _same_severity_for_reads(session: Session, facts: SessionFacts) -> None:
    """Objects the meter would not serve (missing, denied) are a warning in every read step: the
    association works; only silence or a lost link fails a read step. A read whose answer
    came after the run gave up on it (met during a later step) was slow, not unanswered."""
    answered: dict[int, tuple[float, bool]] = {}  # request -> (delay, late)
    frames = {f.index: f for f in session.frames}
    for frame in session.frames:
        request = frames.get(frame.answers) if frame.answers is not None else None
        if request is not None:
            answered[request.index] = (frame.at - request.at, frame.late)
    for step in session.steps:
        if step.layer != "cosem" or step.status is not StepStatus.FAILED:
            continue
        refused = [f for f in session.findings
                   if f.step_id == step.id and f.code == "cosem.read_failed"]
        if refused and "no answer" not in step.summary:
            _set(step, StepStatus.WARNING)
            continue
        sent = [x.index for x in facts.frames if x.record.step_id == step.id
                and x.tx and x.apdu_tag is not None]
        if sent and all(i in answered for i in sent) and any(answered[i][1] for i in sent):
            slowest = max(answered[i][0] for i in sent)
            _set(step, StepStatus.WARNING,
                 f"answered slowly: the meter's answer came after the wait (the slowest "
                 f"{slowest:.2f} s after its request), met during a later step")


def _say_what_framing_got(session: Session, facts: SessionFacts) -> None:
    """Text on the line (IEC 62056-21, a bridge's message) is an answer: the framing rung says
    what it got, not "no answer"."""
    for step in session.steps:
        if step.layer != "framing" or step.status not in (StepStatus.FAILED,
                                                          StepStatus.RECOVERED):
            continue
        got = [x for x in facts.frames if not x.tx and x.record.step_id == step.id
               and any(c.startswith(("stream.iec62056_21", "stream.bridge", "stream.telnet"))
                       for c in x.codes)]
        if not got:
            continue
        text = got[0].record.data.decode("latin-1", "replace").strip()
        if any(c.startswith("stream.iec62056_21") for c in got[0].codes):
            summary = f"IEC 62056-21 text instead of DLMS: {text[:40]!r}"
        elif any(c.startswith("stream.telnet") for c in got[0].codes):
            summary = "telnet negotiation instead of DLMS"
        else:
            summary = f"the bridge answered {text[:60]!r} instead of the meter"
        _set(step, step.status, summary)


def frame_owners(session: Session) -> dict[int, str]:
    """Frame index -> the step it belongs to, where that differs from the recorded step id.

    The probe files the RLRQ/RLRE and DISC/UA that close the previous association under
    ``PREVIOUS_RELEASE`` itself: for its sessions this is empty. Sessions recorded before it did
    (saved runs, samples) filed them under the login that sent them first: those leading
    frames of an association step are refiled here."""
    out: dict[int, str] = {}
    by_step: dict[str, list[int]] = {}
    for frame in session.frames:
        by_step.setdefault(frame.step_id, []).append(frame.index)
    frames = {f.index: f for f in session.frames}
    for step_id, indexes in by_step.items():
        if not step_id.startswith("assoc."):
            continue
        closing = False
        for index in indexes:
            record = frames[index]
            ff = frame_facts(record)
            if record.direction is Direction.TX:
                closing = ff.apdu_tag == TAG_RLRQ or ff.hdlc_type == "DISC"
            else:
                closing = closing and (ff.apdu_tag == TAG_RLRE or ff.hdlc_type in ("UA", "DM"))
            if not closing:
                break
            out[index] = PREVIOUS_RELEASE
    return out
