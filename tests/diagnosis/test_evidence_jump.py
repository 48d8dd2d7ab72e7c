"""The TUI's F4 evidence jump lands on the frame an evidence item cites (issue 9 item 3): the
meter's AARE for a refusal, never the RLRQ of the previous association's release that the login
step began with."""

from __future__ import annotations

from dlmsdoctor.codec.model import Severity
from dlmsdoctor.diagnosis import apply
from dlmsdoctor.diagnosis.facts import frame_facts
from dlmsdoctor.events import StepStatus
from dlmsdoctor.screens.diagnosis import evidence_frame
from dlmsdoctor.session import Evidence
from tests.diagnosis.story import Story
from tests.diagnosis.test_consistency import _wrong_password


def test_every_evidence_of_a_refused_login_jumps_to_the_aare(story: Story) -> None:
    aarq, aare = _wrong_password(story)
    session = story.session
    diagnosis = apply(session)
    cause = diagnosis.causes[0]
    assert [evidence_frame(session, ev) for ev in cause.evidence] == [aare]
    # an item with only the finding: the finding's proof, the AARE
    assert evidence_frame(session, Evidence(note="x", finding="assoc.auth_failure",
                                            step="assoc.login.mgmt")) == aare
    # an item with only the step: the step's own first frame (its SNRM), not the RLRQ it sent
    # to release the public association
    first_own = evidence_frame(session, Evidence(note="x", step="assoc.login.mgmt"))
    assert first_own is not None
    assert frame_facts(session.frames[first_own]).hdlc_type == "SNRM"
    assert first_own < aarq


def test_silence_jumps_to_our_request(story: Story) -> None:
    story.connect()
    silent = story.tx(b"\x7e\xa0\x07\x03\x21\x93\x0f\x01\x7e", dt=0.3)
    story.finding("hdlc.no_answer", "hdlc.snrm", Severity.WARNING, (silent,))
    story.step("hdlc.snrm", "hdlc", StepStatus.FAILED, "no answer")
    assert evidence_frame(story.session, Evidence(note="x", finding="hdlc.no_answer")) == silent
