"""A late answer is said once, with one timeout, in both languages (issue 9: time is evidence;
evidence in frame order, once; reports in Spanish completely, figures kept)."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from dlmsdoctor.diagnosis.evidence import settle_evidence
from dlmsdoctor.diagnosis.facts import SessionFacts
from dlmsdoctor.diagnosis.words import timeout_needed
from dlmsdoctor.events import FrameReceived
from dlmsdoctor.output.i18n_notes import figured_es, note_es
from dlmsdoctor.output.report import render_report
from dlmsdoctor.session import Cause, Evidence, Session
from tests.diagnosis.story import Story
from tests.helpers.dlms_frames import disc, snrm, ua


def test_one_timeout_for_one_delay() -> None:
    assert timeout_needed(0.8) == 2.0
    assert timeout_needed(1.5) == 3.0
    assert timeout_needed(2.0) == timeout_needed(2.003) == 3.0
    assert timeout_needed(3.1) == 5.0


def test_a_late_request_is_cited_once(story: Story) -> None:
    """The rule's "no answer within the timeout" and the late answer's "answered late" are one
    frame: one line (the demo's slow scenario cited frame #0 twice)."""
    story.connect()
    request = story.tx(snrm(), dt=0.01)
    story.tx(disc(), "release", dt=0.5)
    story.recorder.add(FrameReceived(story.conn_id, "release", story._tick(0.4), ua(),
                                     answers=request, late=True))
    late = len(story.session.frames) - 1
    cause = Cause("meter.late_replies", "slow", 0.8, "meter", evidence=[
        Evidence(note="SNRM: no answer within the timeout", frame=request),
        Evidence(note="the UA arrived 900 ms after the SNRM", frame=late)])
    settle_evidence(SessionFacts(story.session), cause)
    assert [(ev.frame, ev.note) for ev in cause.evidence] == [
        (request, "SNRM: no answer within the timeout"),
        (late, "the UA arrived 900 ms after the SNRM")]


def test_figures_said_in_spanish() -> None:
    assert note_es("AARQ (association): no answer within the 1 s wait") == (
        "AARQ (asociación): sin respuesta dentro de la espera de 1 s")
    assert note_es("the GET answer came 2.00 s after it") == (
        "La respuesta al GET llegó 2,00 s después")
    assert figured_es("Set your poller's reply timeout to at least 2.5 s (dlmsdoctor: "
                      "--timeout 2.5); the slowest answer took 1.50 s.") == (
        "Configure el tiempo de espera de respuesta de su sistema de lectura en al menos "
        "2,5 s (dlmsdoctor: --timeout 2.5); la respuesta más lenta tardó 1,50 s.")  # typed: a dot
    assert figured_es("something else") is None


async def _slow_get_session() -> Session:
    from dlmsdoctor.engine import ProbeOptions
    from dlmsdoctor.ledger import MemoryLedger
    from dlmsdoctor.run import probe_and_diagnose
    from dlmsdoctor.sim.meter import SimulatedMeter

    async with SimulatedMeter("default", ["get-delay=1.05"]) as meter:
        options = ProbeOptions("127.0.0.1", meter.port, icmp=False, timeout=0.5,
                               banner_window=0.1, busy_retry_wait=0.1, release_timeout=0.5)
        result = await probe_and_diagnose(options, ledger=MemoryLedger(), save=False)
        await asyncio.sleep(0.05)
    return result.session  # type: ignore[no-any-return]


def test_slow_gets_one_cause_one_timeout_both_languages() -> None:
    session = asyncio.run(_slow_get_session())
    assert session.diagnosis is not None
    codes = [c.code for c in session.diagnosis.causes]
    assert codes[0] == "meter.late_replies", codes
    assert "meter.slow_replies" not in codes  # the same answers, said once
    top = session.diagnosis.causes[0]
    frames = [ev.frame for ev in top.evidence if ev.frame is not None]
    assert frames == sorted(set(frames))  # in frame order, each once
    timeouts = set(re.findall(r"--timeout ([\d.]+)", " ".join(a.text for a in top.actions)))
    assert len(timeouts) == 1
    es = render_report(session, "md", "es")
    assert "nota registrada" not in es and "no answer within" not in es
    assert "la respuesta al GET llegó" in es
    assert f"--timeout {timeouts.pop().replace('.', ',')}" in es


def test_a_meter_closing_on_the_wrong_address_logs_no_rule_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    """The console printed "rule closed_after_first_frame emitted undeclared cause code
    hdlc.wrong_address" beside the ladder."""
    from dlmsdoctor.engine import ProbeOptions
    from dlmsdoctor.ledger import MemoryLedger
    from dlmsdoctor.run import probe_and_diagnose
    from dlmsdoctor.sim.meter import SimulatedMeter

    async def run() -> Session:
        async with SimulatedMeter("serial-last4", ["wrong-address=close"]) as meter:
            options = ProbeOptions("127.0.0.1", meter.port, icmp=False, timeout=0.4,
                                   banner_window=0.1, busy_retry_wait=0.1, release_timeout=0.5,
                                   serial_number="12345678")
            result = await probe_and_diagnose(options, ledger=MemoryLedger(), save=False)
            await asyncio.sleep(0.05)
        return result.session  # type: ignore[no-any-return]

    with caplog.at_level(logging.WARNING):
        session = asyncio.run(run())
    assert session.diagnosis is not None
    assert session.diagnosis.causes[0].code == "hdlc.wrong_address"
    assert not [r for r in caplog.records if "undeclared" in r.getMessage()]


def test_a_failed_connection_is_said_in_spanish_in_the_json(story: Story) -> None:
    """The Spanish JSON kept the link's English note ("connection refused by ... nothing
    listens ...") and "falló: refused"."""
    import json

    from dlmsdoctor.diagnosis import apply
    from dlmsdoctor.diagnosis.consistency import check
    from dlmsdoctor.events import ConnectionFailed

    note = ("connection refused by 127.0.0.1:45006: nothing listens on that port, or a "
            "firewall rejects it")
    story.recorder.add(ConnectionFailed(1, "127.0.0.1", 45006, 0.01, "refused", note, 0.001))
    session = story.session
    apply(session)
    text = render_report(session, "json", "es")
    conn = json.loads(text)["measurements"]["connections"][0]
    assert conn["close_text"] == "falló: rechazada"
    assert conn["note"].startswith("conexión rechazada por 127.0.0.1:45006")
    assert conn["recorded_note"] == note
    assert check(session, rendered={"json": text}, lang="es") == []


def test_the_lockout_guards_own_failures_are_said_in_spanish() -> None:
    note = ("the run stopped: the connection was closed at once, with 2 failed login(s) recent "
            "in the login ledger; dlmsdoctor's own failed logins on this meter: 23:35 (an "
            "earlier run), 23:36 (this run)")
    assert note_es(note) == (
        "la prueba se detuvo: la conexión se cerró de inmediato, con 2 autenticación(es) "
        "fallida(s) recientes en el registro de intentos; autenticaciones fallidas de "
        "dlmsdoctor en este medidor: 23:35 (una prueba anterior), 23:36 (esta prueba)")
    assert figured_es("Maybe a login lockout caused by dlmsdoctor's own failed logins at "
                      "23:35, 23:36 (not proven)") == (
        "Quizás un bloqueo de autenticación causado por los intentos fallidos de dlmsdoctor a "
        "las 23:35, 23:36 (no probado)")


def test_the_check_catches_english_left_inside_a_spanish_note(story: Story) -> None:
    import copy
    import json

    from dlmsdoctor.diagnosis import apply
    from dlmsdoctor.diagnosis.consistency import check
    from tests.diagnosis.test_consistency import _wrong_password

    _wrong_password(story)
    session = story.session
    apply(session)
    text = render_report(session, "json", "es")
    assert check(session, rendered={"json": text}, lang="es") == []
    doc = json.loads(text)
    bad = copy.deepcopy(doc)
    bad["diagnosis"]["causes"][0]["evidence"][0]["note"] += "; dlmsdoctor's own failed logins"
    problems = check(session, rendered={"json": json.dumps(bad)}, lang="es")
    assert [p.code for p in problems] == ["text.english"]
    quoted = copy.deepcopy(doc)  # the meter's own words, quoted, stay as they are
    quoted["diagnosis"]["causes"][0]["evidence"][0]["note"] += " 'the meter said this'"
    assert check(session, rendered={"json": json.dumps(quoted)}, lang="es") == []
