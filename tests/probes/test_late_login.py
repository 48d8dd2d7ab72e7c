"""A password login whose AARE comes after every wait (the login was recorded as "no-answer"):
when the AARE arrives later in the run, the ledger, the session's logins and the rung say what
the meter answered. A refused secret is then never sent again, as if it had been refused at
once (issue 9 item 2, issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.config import parse_credential
from dlmsdoctor.diagnosis import diagnose
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.events import CloseHow, StepStatus
from dlmsdoctor.ledger import LoginLedger, MemoryLedger
from dlmsdoctor.link.clock import FakeClock
from dlmsdoctor.link.scripted import Close, Deliver, Expect, ScriptedFactory, Step
from dlmsdoctor.probes import apdus

from .meterscript import AARE_AUTH_FAILURE, AARE_OK, RLRE, S11, HdlcMeter, healthy_public, is_snrm

PASSWORD = b"12345678"
CRED = parse_credential("meter=1:low:12345678")
OPTS = ProbeOptions("192.0.2.10", 4059, icmp=False, timeout=1.0, release_timeout=2.0,
                    credentials=(CRED,))


def _carries(apdu: bytes):  # type: ignore[no-untyped-def]
    return lambda data: data[:2] == b"\x7e\xa0" and hd.LLC_TO_SERVER + apdu in data


def _script(late_aare: bytes) -> list[Step]:
    meter = HdlcMeter()
    script = healthy_public(meter)[:-2]
    script += [Expect(hd.build_disc(S11, 16)), Deliver(meter.ua(), 0.01)]
    m1 = HdlcMeter(S11, 1)
    script += [Expect(match=is_snrm(S11, 1)), Deliver(m1.ua(), 0.01)]
    script += [Expect(match=_carries(apdus.build_aarq(PASSWORD)))]  # silence past every wait
    script += [Expect(match=_carries(apdus.build_rlrq())), Deliver(m1.i(late_aare), 0.3)]
    script += [Deliver(m1.i(RLRE), 0.1)]
    script += [Expect(hd.build_disc(S11, 1)), Deliver(m1.ua(), 0.01)]
    return script


async def _run(script: list[Step], ledger: MemoryLedger):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    factory = ScriptedFactory([script], clock)
    session = await run_probe(OPTS, clock=clock, channel_factory=factory, ledger=ledger)
    return session, factory


def _sent_password(factory: ScriptedFactory) -> bool:
    return any(PASSWORD in data for channel in factory.channels for data in channel.sent)


async def test_a_late_refusal_settles_the_login_and_the_secret_is_not_sent_again(
        tmp_path: Path) -> None:
    ledger = LoginLedger(tmp_path / "ledger.jsonl")
    session, factory = await _run(_script(AARE_AUTH_FAILURE), ledger)
    assert factory.channels[0].mismatches == []
    # one login, what the meter answered (not "no-answer" beside a refusal)
    assert [(x.credential, x.outcome, x.diagnostic) for x in session.logins] == [
        ("public", "accepted", ""), ("meter", "rejected", "authentication-failure")]
    step = session.step("assoc.login.meter")
    assert step is not None and step.status is StepStatus.FAILED
    assert step.summary.startswith("rejected (its AARE came 3.30 s after the AARQ)")
    # the refusal is cited with the meter's AARE (and the AARQ it answers)
    refusal = next(f for f in session.findings if f.code == "assoc.auth_failure")
    aarq, aare = (session.frames[i] for i in refusal.frames)
    assert aarq.direction == "tx" and aare.direction == "rx" and aare.answers == aarq.index
    assert "assoc.no_answer" not in {f.code for f in session.findings}
    diagnosis = diagnose(session)
    assert diagnosis.causes[0].code == "auth.wrong_password"
    # the ledger: the no-answer line and the line that settles it; readers see one refusal
    lines = [json.loads(x) for x in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [(x["credential"], x["outcome"]) for x in lines] == [
        ("public", "accepted"), ("meter", "no-answer"), ("meter", "rejected")]
    assert lines[2]["settles"] == lines[1]["at"] and lines[2]["run"] == lines[1]["run"]
    assert lines[2]["fingerprint"] == lines[1]["fingerprint"]
    failures = ledger.recent_failures(lines[1]["meter"], 900)
    assert [(a.outcome, a.diagnostic) for a in failures] == [
        ("rejected", "authentication-failure")]  # one failure, not two
    # the next run does not send the refused secret again
    meter = HdlcMeter()
    script = healthy_public(meter)[:-2]
    script += [Expect(hd.build_disc(S11, 16)), Deliver(meter.ua(), 0.01)]
    m1 = HdlcMeter(S11, 1)
    script += [Expect(match=is_snrm(S11, 1)), Deliver(m1.ua(), 0.01)]
    script += [Expect(hd.build_disc(S11, 1)), Deliver(m1.ua(), 0.01)]
    again, factory = await _run(script, ledger)
    assert factory.channels[0].mismatches == []
    assert not _sent_password(factory)
    refused = next(f for f in again.findings if f.code == "login.already_rejected")
    assert refused.data["credential"] == "meter"


async def test_a_late_acceptance_is_no_failure_for_the_next_run() -> None:
    ledger = MemoryLedger()
    session, factory = await _run(_script(AARE_OK), ledger)
    assert factory.channels[0].mismatches == []
    assert [(x.credential, x.outcome) for x in session.logins][-1] == ("meter", "accepted")
    step = session.step("assoc.login.meter")
    assert step is not None and step.status is StepStatus.WARNING
    assert "accepted, slowly" in step.summary and "password is right" in step.summary
    meter = ledger.items[-1].meter
    assert ledger.recent_failures(meter, 900) == []
    assert [a.outcome for a in ledger.attempts(meter)] == ["accepted", "accepted"]
    assert diagnose(session).causes[0].code == "meter.late_replies"


async def test_an_aarq_the_meter_never_answers_stays_a_failure() -> None:
    """The control: no AARE at all, the login stays "no-answer" (a failure for the budget)."""
    meter = HdlcMeter()
    script = healthy_public(meter)[:-2]
    script += [Expect(hd.build_disc(S11, 16)), Deliver(meter.ua(), 0.01)]
    m1 = HdlcMeter(S11, 1)
    script += [Expect(match=is_snrm(S11, 1)), Deliver(m1.ua(), 0.01)]
    script += [Expect(match=_carries(apdus.build_aarq(PASSWORD)))]
    script += [Expect(match=_carries(apdus.build_rlrq())), Close(CloseHow.FIN, 2.5)]
    ledger = MemoryLedger()
    session, _factory = await _run(script, ledger)
    assert [(x.credential, x.outcome) for x in session.logins][-1] == ("meter", "no-answer")
    assert [a.outcome for a in ledger.recent_failures(ledger.items[-1].meter, 900)] == [
        "no-answer"]
