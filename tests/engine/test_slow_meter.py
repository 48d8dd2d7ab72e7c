"""Time is evidence: a slow meter is slow, never deaf.

The slow-meter matrix runs the real ladder against the simulated meter on loopback with one
service answering late (``aare-delay``, ``get-delay``, ``ua-delay``): the login slower than the
wait by 0.5x, 1.5x and 3x, a slow GET, a slow link set-up. Each run must end with the right top
cause (the meter works, but slowly), an action that gives the timeout a poller needs, no cause
that blames a context or a cipher, and the later login within its grown wait. The demo's
default scenario must give its verdict on a loaded machine too.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlmsdoctor.config import parse_credential
from dlmsdoctor.engine import ProbeOptions
from dlmsdoctor.events import StepStatus
from dlmsdoctor.ledger import LoginLedger
from dlmsdoctor.run import probe_and_diagnose
from dlmsdoctor.session import Session
from dlmsdoctor.sim.meter import SimulatedMeter

pytestmark = pytest.mark.timeout(90)

WAIT = 0.4  # the client's reply timeout in these runs


async def _probe(faults: list[str], tmp_path: Path, port: int = 0,
                 **changes: object) -> tuple[Session, int]:
    async with SimulatedMeter("default", faults, port=port) as meter:
        assert meter.port is not None
        changes.setdefault("credentials", (parse_credential("mgmt=1:low:00000000"),))
        options = ProbeOptions(
            "127.0.0.1", meter.port, icmp=False, timeout=WAIT, connect_timeout=2.0,
            banner_window=0.1, busy_retry_wait=0.2, release_timeout=1.5,
            **changes)  # type: ignore[arg-type]
        result = await probe_and_diagnose(options, ledger=LoginLedger(tmp_path / "l.jsonl"),
                                          save=False)
        await asyncio.sleep(0.05)
        assert meter.open_associations() == [] and meter.unreleased_associations() == []
        return result.session, meter.failed_logins()


def _texts(session: Session) -> str:
    assert session.diagnosis is not None
    return " ".join(" ".join([c.title, c.explanation, *(a.text for a in c.actions)])
                    for c in session.diagnosis.causes).lower()


def _assert_slow_verdict(session: Session, service: str, delay: float) -> None:
    diagnosis = session.diagnosis
    assert diagnosis is not None
    codes = [c.code for c in diagnosis.causes]
    assert codes and codes[0] == "meter.late_replies", (codes, diagnosis.headline)
    top = diagnosis.causes[0]
    action = top.actions[0].text
    needed = float(re.search(r"at least (\d+(?:\.\d+)?) s", action).group(1))  # type: ignore[union-attr]
    assert needed > delay, action  # the timeout the user's poller needs
    assert "timeout" in action
    text = _texts(session)
    assert "ignores" not in text and "ciphering" not in text, text
    assert diagnosis.profile is not None  # it works
    slow = [f for f in session.findings if f.code == "timing.slow_service"]
    mine = [f for f in slow if f.data["service"] == service]
    assert mine, [f.data for f in slow]
    finding = max(mine, key=lambda f: float(f.data["delay"]))  # type: ignore[arg-type]
    assert float(finding.data["delay"]) >= delay - 0.01  # type: ignore[arg-type]
    request, answer = (session.frames[i] for i in finding.frames)
    assert request.direction == "tx" and answer.direction == "rx"
    assert answer.answers == request.index and answer.late
    assert finding.data["request_frame"] == request.index
    assert finding.data["answer_frame"] == answer.index
    # the evidence of the top cause cites both frames
    cited = {e.frame for e in top.evidence}
    assert {request.index, answer.index} <= cited


@pytest.mark.parametrize("slower_by", [0.5, 1.5, 3.0])
async def test_slow_login(slower_by: float, tmp_path: Path) -> None:
    delay = round(WAIT * (1 + slower_by), 3)
    session, failed = await _probe([f"aare-delay={delay}"], tmp_path)
    _assert_slow_verdict(session, "association", delay)
    codes = [f.code for f in session.findings]
    assert "assoc.no_answer" not in codes
    st = {s.id: s.status for s in session.steps}
    assert st["assoc.public"] is StepStatus.WARNING  # it worked, slowly
    public = session.step("assoc.public")
    assert public is not None and "slowly" in public.summary
    # the later login waited long enough (2 x the AARE's delay): plain OK, no late answer
    assert st["assoc.login.mgmt"] is StepStatus.OK
    answers = [f for f in session.frames if f.step_id == "assoc.login.mgmt"
               and f.direction == "rx" and f.answers is not None]
    assert answers and not any(f.late for f in answers)  # the UA and the AARE, in time
    assert failed == 0


async def test_login_a_prompt_meter_is_no_slow_meter(tmp_path: Path) -> None:
    """Half the wait: answered in time; nothing is said about slowness."""
    session, _ = await _probe([f"aare-delay={WAIT * 0.5}"], tmp_path)
    assert "timing.slow_service" not in [f.code for f in session.findings]
    assert session.diagnosis is not None and session.diagnosis.status == "ok"


async def test_login_slower_than_the_whole_listening_is_still_late(tmp_path: Path) -> None:
    """The AARE comes after the wait AND the late listening (0.4 + 2 s): the AARQ step fails,
    but the AARE, met during the next request, makes the verdict 'slow', never 'ignores'."""
    session, failed = await _probe(["aare-delay=3.0"], tmp_path)
    _assert_slow_verdict(session, "association", 3.0)
    assert "assoc.no_answer" not in [f.code for f in session.findings]
    st = {s.id: s.status for s in session.steps}
    assert st["assoc.login.mgmt"] is StepStatus.OK
    assert failed == 0


async def test_slow_get(tmp_path: Path) -> None:
    session, _ = await _probe(["get-delay=0.9"], tmp_path)
    _assert_slow_verdict(session, "get", 0.9)
    assert session.identity.get("serial_number") == "12345678"  # read, slowly


@pytest.mark.parametrize("delay", [0.6, 1.3])
async def test_slow_link(delay: float, tmp_path: Path) -> None:
    session, _ = await _probe([f"ua-delay={delay}"], tmp_path)
    _assert_slow_verdict(session, "link", delay)
    st = {s.id: s.status for s in session.steps}
    assert st["assoc.login.mgmt"] is StepStatus.OK


@pytest.mark.parametrize("late", ["ua-delay=0.45", "aare-delay=0.5", "get-delay=0.5",
                                  "delay=0.35"])
async def test_demo_verdict_holds_when_load_delays_an_answer(late: str, tmp_path: Path) -> None:
    """What load does to the demo, made deterministic: one answer later than the demo's
    0.3 s wait. The wrong address stays the top cause; the slowness is listed after it."""
    from dlmsdoctor.cli.demo_cmd import DEFAULT_SCENARIO, SCENARIOS, demo_options

    scenario = SCENARIOS[DEFAULT_SCENARIO]
    async with SimulatedMeter(scenario.profile, [*scenario.faults, late]) as meter:
        result = await probe_and_diagnose(demo_options(scenario, int(meter.port)),
                                          ledger=LoginLedger(tmp_path / "l.jsonl"), save=False)
    diagnosis = result.session.diagnosis
    assert diagnosis is not None
    codes = [c.code for c in diagnosis.causes]
    assert codes[:2] == [scenario.expect, "meter.late_replies"], codes
    assert "ignores our aarq" not in _texts(result.session)


@pytest.mark.slow
def test_demo_verdict_holds_on_a_loaded_machine(tmp_path: Path) -> None:
    """The demo's default scenario (0.3 s waits) while two CPU-bound processes run."""
    from dlmsdoctor.cli.demo_cmd import DEFAULT_SCENARIO, SCENARIOS, probe_scenario

    scenario = SCENARIOS[DEFAULT_SCENARIO]
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        for attempt in range(3):
            async def run(attempt: int = attempt) -> Session:
                async with SimulatedMeter(scenario.profile, list(scenario.faults)) as meter:
                    return await probe_scenario(  # type: ignore[no-any-return]
                        meter, scenario, LoginLedger(tmp_path / f"{attempt}.jsonl"))

            session = asyncio.run(run())
            assert session.diagnosis is not None
            causes = [c.code for c in session.diagnosis.causes]
            assert causes and causes[0] == scenario.expect, (attempt, causes)
            text = _texts(session)
            assert "ignores our aarq" not in text
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


@pytest.mark.parametrize("password", ["00000000", "WRONGPW1"])
async def test_login_slower_than_the_release_that_follows_it(password: str,
                                                             tmp_path: Path) -> None:
    """The public AARE comes 4 s after its AARQ: after the wait and the late listening, and
    after the RLRQ and DISC that end it; the meter answers all of them late, in order, while
    the login's SNRM waits. The UA to that DISC is not the SNRM's, the SNRM's is not the
    AARQ's (QA: a login read as "unexpected answer", a refusal never recorded, the password
    sent again next run). The late AARE settles the public association; the login waits long
    enough and its AARE says accepted or refused; a refused password is not sent again."""
    creds = (parse_credential(f"mgmt=1:low:{password}"),)
    session, failed = await _probe(["aare-delay=4.0"], tmp_path, credentials=creds)
    st = {s.id: s.status for s in session.steps}
    assert st["assoc.public"] is StepStatus.WARNING  # settled by its late AARE
    assert (session.logins[0].credential, session.logins[0].outcome) == ("public", "accepted")
    diagnosis = session.diagnosis
    assert diagnosis is not None
    codes = [c.code for c in diagnosis.causes]
    if password == "00000000":
        assert st["assoc.login.mgmt"] is StepStatus.OK and failed == 0
        _assert_slow_verdict(session, "association", 4.0)
        return
    assert st["assoc.login.mgmt"] is StepStatus.FAILED and failed == 1
    assert codes[0] == "auth.wrong_password" and "meter.late_replies" in codes
    login = session.step("assoc.login.mgmt")
    assert login is not None and login.summary.startswith("rejected")
    # the next run on the same meter (same address: the ledger's key) does not send the
    # refused password again
    port = session.target.port
    again, failed_again = await _probe(["aare-delay=4.0"], tmp_path, port=port,
                                       credentials=creds)
    assert failed_again == 0
    assert "login.already_rejected" in [f.code for f in again.findings]


async def test_a_slow_release_holds_up_the_next_login_but_does_not_fail_it(
        tmp_path: Path) -> None:
    """The RLRE comes 3 s after the RLRQ that ends the public association; the DISC and the
    login's SNRM wait in the meter's queue behind it (QA: "SNRM for client 1: other", the UA
    called garbage, exit 17 with the right password). The SNRM listens on while the meter
    still owes earlier answers, takes its own UA, and the login works; the RLRQ is the slow
    one, and the queued DISC and SNRM are not called slow."""
    session, failed = await _probe(["rlre-delay=3.0"], tmp_path)
    st = {s.id: s.status for s in session.steps}
    assert st["assoc.login.mgmt"] is StepStatus.OK and failed == 0
    _assert_slow_verdict(session, "release", 3.0)
    slow = {f.data["service"] for f in session.findings if f.code == "timing.slow_service"}
    assert slow == {"release"}, slow
    assert "link.garbage" not in [f.code for f in session.findings]


async def test_a_read_answered_after_the_run_gave_up_is_slow_not_failed(tmp_path: Path) -> None:
    """The identity GET is answered 3 s late (0.4 s wait + 2 s listening): its answer comes
    during the next step. The identity rung is then a warning (answered slowly), never a
    failure beside the verdict "works"."""
    session, _ = await _probe(["get-delay=3.0"], tmp_path)
    identity = session.step("cosem.identity")
    assert identity is not None and identity.status is StepStatus.WARNING
    assert identity.summary.startswith("answered slowly")
    assert not any(s.status is StepStatus.FAILED for s in session.steps)
