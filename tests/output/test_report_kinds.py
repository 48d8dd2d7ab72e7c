"""The report says who TX and RX are for each kind of session, and the tap's own wording pairs
English and Spanish with the same placeholders."""

from __future__ import annotations

import dataclasses
import string

import pytest

from dlmsdoctor.output.report import build_report, render_report
from tests.output.seed_session import seed_session


@pytest.mark.parametrize(("kind", "lang", "tx"), [
    ("probe", "en", "dlmsdoctor"), ("tap", "en", "your poller"),
    ("capture", "en", "the client"), ("tap", "es", "su sistema de lectura"),
])
def test_roles_follow_the_sessions_kind(kind: str, lang: str, tx: str) -> None:
    session = dataclasses.replace(seed_session(), kind=kind)
    doc = build_report(session, lang)
    assert doc["session"]["kind"] == kind
    assert doc["roles"]["tx"] == tx


def test_a_probe_session_with_a_tap_kind_gets_no_probe_words() -> None:
    """The kind alone decides the words: the seed probe relabelled as a tap has no steps said."""
    session = dataclasses.replace(seed_session(), kind="tap", steps=[])
    md = render_report(session, "md", "en")
    assert "TX = sent by your poller" in md and "TX = sent by dlmsdoctor" not in md
    assert "dlmsdoctor tested" not in md and "dlmsdoctor relayed your poller" in md
    probe = render_report(seed_session(), "md", "en")
    assert "TX = sent by dlmsdoctor" in probe and "dlmsdoctor tested" in probe


def test_tap_wording_has_both_languages_with_the_same_placeholders() -> None:
    from dlmsdoctor.output import i18n_tap

    tables = {"TAP_S": i18n_tap.TAP_S, "TAP_SETTING": i18n_tap.TAP_SETTING,
              "TAP_STOPPED": i18n_tap.TAP_STOPPED, "KIND_S_TAP": i18n_tap.KIND_S_TAP,
              **{f"ROLES[{k}]": v for k, v in i18n_tap.ROLES.items()}}
    for name, table in tables.items():
        for key, entry in table.items():
            assert set(entry) == {"en", "es"}, (name, key)
            fields = [{f for _, f, _, _ in string.Formatter().parse(text) if f}
                      for text in entry.values()]
            assert fields[0] == fields[1], (name, key)


def test_spanish_tap_causes_keep_the_runs_figures() -> None:
    """The catalogue's Spanish explanation is general; the timing that proves the cause is
    said too (the English report has it in the recorded explanation)."""
    from dlmsdoctor.session import ProbeFinding, Session, Target
    from dlmsdoctor.tap.rules import diagnose

    session = Session("t1", "0.1.0", "2026-12-03T23:00:00+00:00", Target("192.0.2.15", 3333),
                      kind="tap", settings={"tap": {"frames": {"poller": 2, "meter": 1}}})
    session.findings.append(ProbeFinding(
        "tap", "tap.poller.timeout_too_short", "error", "The meter answered GET (frame #0) "
        "after 1.500 s, but your poller had closed the connection 1.000 s after sending it.",
        1.5, [0, 1], {"service": "GET", "answer_time": 1.5, "waited": 1.0, "count": 1}))
    session.diagnosis = diagnose(session)
    es = render_report(session, "md", "es")
    assert "El medidor respondió GET a los 1,50 s, pero su sistema de lectura se rindió a los " \
           "1,00 s." in es
    assert "your poller had closed the connection 1.000 s" in render_report(session, "md", "en")
