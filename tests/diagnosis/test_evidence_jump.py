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


async def test_the_probe_files_the_previous_release_under_it() -> None:
    """Against the simulator: the RLRQ/RLRE and DISC/UA closing the public association carry
    "release.previous" as they are recorded; the login's own frames begin with its SNRM; F4 on
    the refusal lands on the meter's AARE."""
    import asyncio

    from dlmsdoctor.config import parse_credential
    from dlmsdoctor.diagnosis.steps import PREVIOUS_RELEASE, frame_owners
    from dlmsdoctor.engine import ProbeOptions, run_probe
    from dlmsdoctor.ledger import MemoryLedger
    from dlmsdoctor.probes import association
    from dlmsdoctor.sim.meter import SimulatedMeter

    assert association.PREVIOUS_RELEASE == PREVIOUS_RELEASE
    async with SimulatedMeter("default") as meter:
        opts = ProbeOptions("127.0.0.1", meter.port, icmp=False, timeout=0.4,
                            banner_window=0.1, busy_retry_wait=0.1, release_timeout=0.5,
                            credentials=(parse_credential("bad=1:low:11111111"),))
        session = await run_probe(opts, ledger=MemoryLedger())
        await asyncio.sleep(0.05)
    released = [f for f in session.frames if f.step_id == PREVIOUS_RELEASE]
    kinds = [frame_facts(f).hdlc_type for f in released]
    assert "DISC" in kinds and len(released) >= 4, kinds
    tags = [frame_facts(f).apdu_tag for f in released]
    assert 0x62 in tags and 0x63 in tags  # RLRQ and RLRE
    login = [f for f in session.frames if f.step_id == "assoc.login.bad"]
    assert frame_facts(login[0]).hdlc_type == "SNRM"
    assert frame_owners(session) == {}
    diagnosis = apply(session)
    cause = next(c for c in diagnosis.causes if c.code == "auth.wrong_password")
    targets = [evidence_frame(session, ev) for ev in cause.evidence]
    assert targets and all(t is not None and frame_facts(session.frames[t]).apdu_tag == 0x61
                           for t in targets)
