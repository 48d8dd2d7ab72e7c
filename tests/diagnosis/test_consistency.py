"""The consistency check (diagnosis/consistency.py): each invariant catches the defect it is for,
and nothing in the product breaks one: every demo scenario x {en, es} x {md, html, json}, every
sample in captures/, and each sample converted to pcap by tshark and read back."""

from __future__ import annotations

import asyncio
import copy
import tempfile
from pathlib import Path

import pytest

from dlmsdoctor.cli.demo_cmd import SCENARIOS, probe_scenario
from dlmsdoctor.codec.hdlc import ServerAddress
from dlmsdoctor.codec.model import Severity
from dlmsdoctor.diagnosis import apply, diagnose
from dlmsdoctor.diagnosis.consistency import Problem, check
from dlmsdoctor.diagnosis.steps import RECORDED_STATUS, frame_owners, unsettle
from dlmsdoctor.events import Direction, FindingRaised, StepStatus
from dlmsdoctor.output.capture_read import load_session_file
from dlmsdoctor.output.report import render_report
from dlmsdoctor.session import Diagnosis, Evidence, Session
from tests.diagnosis.story import Story
from tests.helpers.dlms_frames import (
    AARE_AUTH_FAIL,
    AARQ_LLS,
    RLRE,
    RLRQ,
    disc,
    i_rx,
    i_tx,
    snrm,
    ua,
)

FORMATS = ("md", "html", "json")
LANGS = ("en", "es")
CAPTURES = Path(__file__).resolve().parents[2] / "captures"
SAMPLES = sorted(p.name.removesuffix(".session.json") for p in CAPTURES.glob("*.session.json"))
A6678 = ServerAddress(1, 6678, 4)


def rendered(session: Session, lang: str) -> dict[str, str]:
    return {fmt: render_report(session, fmt, lang) for fmt in FORMATS}


def codes_of(problems: list[Problem]) -> set[str]:
    return {p.code for p in problems}


# -- each invariant catches its defect --------------------------------------------------------


def _wrong_password(story: Story, *, legacy: bool = False) -> tuple[int, int]:
    """A refused management login after the public one. The probe files the frames closing the
    public association under "release.previous"; ``legacy``: under the login, as sessions
    recorded before it did."""
    story.connect()
    story.step("tcp.connect", "tcp")
    story.tx(snrm())
    story.rx(ua())
    story.step("hdlc.snrm", "hdlc")
    story.public_association()
    story.step("assoc.public", "association")
    closing = "assoc.login.mgmt" if legacy else "release.previous"
    story.tx(i_tx(RLRQ, ns=1, nr=1), closing)  # closing the public association
    story.rx(i_rx(RLRE, ns=1, nr=2), closing)
    story.tx(disc(), closing)
    story.rx(ua(), closing)
    story.tx(snrm(), "assoc.login.mgmt")
    story.rx(ua(), "assoc.login.mgmt")
    aarq = story.tx(i_tx(AARQ_LLS), "assoc.login.mgmt")
    aare = story.rx(i_rx(AARE_AUTH_FAIL), "assoc.login.mgmt")
    story.finding("assoc.auth_failure", "assoc.login.mgmt", Severity.ERROR, (aarq, aare),
                  diagnostic=13, client_sap=1, credential="mgmt")
    story.login("mgmt", 1, "low", "rejected", "authentication-failure")
    story.step("assoc.login.mgmt", "association", StepStatus.FAILED, "rejected")
    return aarq, aare


def test_a_refusal_cites_the_meters_aare_and_the_check_knows_why(story: Story) -> None:
    aarq, aare = _wrong_password(story)
    session = story.session
    diagnosis = apply(session)
    cause = diagnosis.causes[0]
    assert cause.code == "auth.wrong_password"
    assert [ev.frame for ev in cause.evidence] == [aare]  # the AARE, once (not the AARQ)
    assert check(session, diagnosis) == []
    # a frame filed under a step that did not send it
    misfiled = copy.deepcopy(diagnosis)
    misfiled.causes[0].evidence[0].step = "assoc.public"
    assert "evidence.step" in codes_of(check(session, misfiled))
    # the defect of issue 9 item 3: "association refused" citing our AARQ
    cause.evidence.append(Evidence(note="association refused", frame=aarq,
                                   step="assoc.login.mgmt", finding="assoc.auth_failure"))
    assert "evidence.direction" in codes_of(check(session, diagnosis))


def test_the_previous_associations_release_is_filed_under_it(story: Story) -> None:
    _wrong_password(story)
    assert frame_owners(story.session) == {}  # filed at the source
    md = render_report(story.session, "md", "en")
    assert "Release of the previous association" in md
    assert "(sent during" not in md
    assert check(story.session, apply(story.session)) == []


def test_a_saved_sessions_release_is_refiled(story: Story) -> None:
    _wrong_password(story, legacy=True)
    owners = frame_owners(story.session)
    filed = sorted(owners)
    kinds = [story.session.frames[i].direction for i in filed]
    assert len(filed) == 4 and kinds == [Direction.TX, Direction.RX] * 2  # RLRQ/RLRE, DISC/UA
    assert set(owners.values()) == {"release.previous"}
    md = render_report(story.session, "md", "en")
    assert "Release of the previous association (sent during Login with set 'mgmt')" in md


def test_address_found_cites_the_ua_not_the_snrm(story: Story) -> None:
    story.connect()
    story.step("tcp.connect", "tcp")
    silent = story.tx(snrm(), "hdlc.snrm", dt=0.3)
    story.step("hdlc.snrm", "hdlc", StepStatus.FAILED, "no HDLC answer at 1/1")
    sent = story.tx(snrm(A6678), "address.discover")
    got = story.rx(ua(A6678), "address.discover")
    story.finding("address.found", "address.discover", Severity.INFO, (sent, got))
    story.step("address.discover", "address")
    story.public_association(A6678)
    story.step("assoc.public", "association")
    session = story.session
    diagnosis = apply(session)
    cause = next(c for c in diagnosis.causes if c.code == "hdlc.wrong_address")
    frames = [ev.frame for ev in cause.evidence]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
    assert got in frames and sent not in frames and silent in frames
    # the failed rung the discovery recovered is RECOVERED, its recorded status kept
    step = session.step("hdlc.snrm")
    assert step is not None and step.status is StepStatus.RECOVERED
    assert step.details[RECORDED_STATUS] == "failed"
    assert check(session, diagnosis) == []
    # out of order and twice are caught
    cause.evidence.reverse()
    cause.evidence.append(cause.evidence[0])
    assert {"evidence.order", "evidence.repeated"} <= codes_of(check(session, diagnosis))
    # a plain FAIL beside the working profile is caught, and settling again restores one truth
    unsettle(session)
    assert "rungs.profile" in codes_of(check(session, diagnosis))
    again = diagnose(session)
    assert session.step("hdlc.snrm").status is StepStatus.RECOVERED  # type: ignore[union-attr]
    assert [c.code for c in again.causes] == [c.code for c in diagnosis.causes]


def test_the_same_unreadable_object_is_a_warning_in_every_step(story: Story) -> None:
    story.connect()
    story.tx(snrm())
    story.rx(ua())
    story.step("hdlc.snrm", "hdlc")
    story.public_association()
    story.step("assoc.public", "association")
    for step in ("cosem.identity", "cosem.read.mgmt"):
        story.finding("cosem.read_failed", step, Severity.WARNING, obis="0.0.42.0.0.255",
                      attribute=2, result="object-undefined")
    story.step("cosem.identity", "cosem", StepStatus.WARNING, "serial number=1; 1 read denied")
    story.step("cosem.read.mgmt", "cosem", StepStatus.FAILED, "nothing readable; 1 read denied")
    session = story.session
    assert "rungs.severity" in codes_of(check(session, _fake()))
    apply(session)
    statuses = {s.id: s.status for s in session.steps if s.layer == "cosem"}
    assert set(statuses.values()) == {StepStatus.WARNING}
    assert check(session) == []


def _fake() -> Diagnosis:
    return Diagnosis(status="degraded", headline="", causes=[], profile=None)


def test_a_cancelled_run_is_cancelled_everywhere(story: Story) -> None:
    story.connect()
    story.tx(snrm())
    story.rx(ua())
    story.step("hdlc.snrm", "hdlc")
    story.step("assoc.public", "association", StepStatus.CANCELLED, "cancelled")
    session = story.session
    session.cancelled = True
    diagnosis = apply(session)
    assert diagnosis.status == "cancelled" and "cancelled" in diagnosis.headline
    for lang in LANGS:
        text = rendered(session, lang)
        assert check(session, rendered=text, lang=lang) == []
    diagnosis.status = "degraded"  # the defect of item 7
    assert "cancelled" in codes_of(check(session, diagnosis))


def test_spanish_reports_with_english_or_reprs_are_caught(story: Story) -> None:
    _wrong_password(story)
    session = story.session
    apply(session)
    assert session.diagnosis is not None
    english_title = session.diagnosis.causes[0].title
    text = {"md": render_report(session, "md", "es") + f"\n{english_title}\nserver: None\n"}
    found = codes_of(check(session, rendered=text, lang="es"))
    assert {"text.english", "text.repr"} <= found
    assert check(session, rendered={"md": render_report(session, "md", "es")}, lang="es") == []


def test_a_late_aare_is_a_slow_meter_with_both_frames(story: Story) -> None:
    story.connect()
    story.tx(snrm())
    story.rx(ua())
    story.step("hdlc.snrm", "hdlc")
    aarq = story.tx(i_tx(AARQ_LLS), "assoc.public", dt=0.01)
    story.tx(i_tx(RLRQ, ns=1, nr=0), "release", dt=0.5)  # the wait ended: we moved on
    aare = story.rx(i_rx(AARE_AUTH_FAIL), "release", dt=0.9)
    diagnosis = apply(story.session)
    codes = [c.code for c in diagnosis.causes]
    assert "assoc.no_answer" not in codes  # never "ignores our AARQ"
    late = next(c for c in diagnosis.causes if c.code == "meter.late_replies")
    assert [ev.frame for ev in late.evidence] == [aarq, aare]
    assert "1.40 s" in late.title and "1.40 s" in late.explanation  # one rounding


def test_figures_rounded_two_ways_are_caught(story: Story) -> None:
    _wrong_password(story)
    session = story.session
    diagnosis = copy.deepcopy(apply(session))
    cause = diagnosis.causes[0]
    cause.title += " (here 0.034 s)"
    cause.explanation += " It closed after 0.03 s."
    assert "figures.rounding" in codes_of(check(session, diagnosis))


# -- the product holds every invariant ---------------------------------------------------------


_RUNS: dict[str, Session] = {}


def scenario_session(name: str) -> Session:
    """The demo scenario run once against the simulated meter, in-process (as the demo does);
    cached for both languages."""
    from dlmsdoctor.cli.demo_serial import meter_place
    from dlmsdoctor.ledger import LoginLedger
    from dlmsdoctor.sim.meter import SimulatedMeter

    async def one(folder: Path) -> Session:
        scenario = SCENARIOS[name]
        # where the demo puts it: TCP on a free port, or a pty for the serial scenarios
        meter = SimulatedMeter(scenario.profile, list(scenario.faults), host="127.0.0.1",
                               **meter_place(scenario.line))
        await meter.start()
        try:
            ledger = LoginLedger(folder / "ledger.jsonl")
            return await probe_scenario(meter, scenario, ledger)  # type: ignore[no-any-return]
        finally:
            await meter.stop()

    if name not in _RUNS:
        with tempfile.TemporaryDirectory() as tmp:
            _RUNS[name] = asyncio.run(one(Path(tmp)))
    return _RUNS[name]


# the stories of the issue run by default; the others with -m slow
_QUICK = ("wrong-address", "wrong-password", "iec62056-21", "bad-fcs", "echo")


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", [
    name if name in _QUICK else pytest.param(name, marks=pytest.mark.slow)
    for name in sorted(SCENARIOS)
])
def test_every_demo_scenario_is_consistent(name: str, lang: str) -> None:
    session = scenario_session(name)
    assert session.diagnosis is not None
    if SCENARIOS[name].expect:
        assert session.diagnosis.causes[0].code == SCENARIOS[name].expect
    problems = check(session, rendered=rendered(session, lang), lang=lang)
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_is_consistent(name: str, lang: str) -> None:
    for path in (CAPTURES / f"{name}.session.json", CAPTURES / f"{name}.pcapng"):
        session = load_session_file(path)
        apply(session)
        problems = check(session, rendered=rendered(session, lang), lang=lang)
        assert problems == [], f"{path.name}\n" + "\n".join(map(str, problems))


# A capture dlmsdoctor did not write is another client's traffic, judged by the tap's rules,
# not by these probe invariants: tests/output/test_foreign_capture.py checks it.


def test_a_refused_connection_is_said_in_words_not_pythons(story: Story) -> None:
    """Issue 9 item 8: "Connect call failed ('127.0.0.1', 1)" never reaches a person."""
    python = "connection refused: Connect call failed ('127.0.0.1', 1)"
    story.recorder.add(FindingRaised("tcp.connect", "tcp.refused", Severity.ERROR,
                                     f"connection refused (RST): {python}", 10.0))
    story.step("tcp.connect", "tcp", StepStatus.FAILED, f"refused: {python}")
    session = story.session
    apply(session)
    for lang in LANGS:
        text = rendered(session, lang)
        assert check(session, rendered=text, lang=lang) == []
        # (the JSON keeps the recorded message under "message", as data; its text is in words)
        assert "Connect call failed" not in text["md"] + text["html"]
    en = render_report(session, "md", "en")
    assert "nothing accepts connections at 127.0.0.1:1" in en
    raw = {"md": en + f"\n{python}\n"}
    assert "text.repr" in codes_of(check(session, rendered=raw, lang="en"))


def test_a_late_answer_is_cited_with_the_request_it_answers(story: Story) -> None:
    """``FrameRecord.answers``/``.late`` pair a late answer with its request, even when we sent
    another frame in between (pairing by time alone would pick that one)."""
    from dlmsdoctor.diagnosis.evidence import settle_evidence
    from dlmsdoctor.diagnosis.facts import SessionFacts
    from dlmsdoctor.events import FrameReceived
    from dlmsdoctor.session import Cause

    story.connect()
    request = story.tx(snrm(), dt=0.01)
    story.tx(disc(), "release", dt=0.5)  # the wait ended; the release began
    story.recorder.add(FrameReceived(story.conn_id, "release", story._tick(0.4), ua(),
                                     answers=request, late=True))
    late = len(story.session.frames) - 1
    assert story.session.frames[late].late and story.session.frames[late].answers == request
    cause = Cause("meter.late_replies", "slow", 0.8, "meter",
                  evidence=[Evidence(note="the UA came late", frame=late)])
    settle_evidence(SessionFacts(story.session), cause)
    assert [ev.frame for ev in cause.evidence] == [request, late]


def test_a_bad_fcs_from_the_meter_is_damage_not_a_frame_it_drops() -> None:
    """Issue 9 item 8: "a meter drops such a frame silently" is for frames we send."""
    session = scenario_session("bad-fcs")
    for lang, damaged, dropped, heads in (
        ("en", "damaged on the way", "drops such a frame", ("## Diagnosis", "## Recommended")),
        ("es", "se dañó en el camino", "descarta esa trama", ("## Diagnóstico", "## Acciones")),
    ):
        md = render_report(session, "md", lang)
        assert damaged in md and dropped not in md
        causes = md[md.index(heads[0]):md.index(heads[1])]
        notes = [line for line in causes.splitlines() if line.startswith("- ")]
        assert notes and not any(line.startswith("- hdlc.") for line in notes)  # words
