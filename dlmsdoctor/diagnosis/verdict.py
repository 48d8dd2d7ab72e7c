"""``diagnose(session)``: run every rule, rank the causes, build the profile and the headline."""

from __future__ import annotations

import logging

from dlmsdoctor.diagnosis.evidence import settle_evidence
from dlmsdoctor.diagnosis.facts import SessionFacts
from dlmsdoctor.diagnosis.profile import build_profile, server_text
from dlmsdoctor.diagnosis.registry import BENIGN, RULES
from dlmsdoctor.diagnosis.serial_facts import with_line
from dlmsdoctor.diagnosis.steps import settle, unsettle
from dlmsdoctor.session import Cause, ConnectionProfile, Diagnosis, Evidence, Session

log = logging.getLogger(__name__)

# A cause this sure, and not a benign note, makes a working meter "degraded".
DEGRADED_AT = 0.5


def rank(causes: list[Cause]) -> list[Cause]:
    """Faults by confidence (ties keep rule order: lower layers first), then the benign notes.

    One code appears once: the most confident instance keeps it, its evidence merged."""
    by_code: dict[str, Cause] = {}
    for c in causes:
        kept = by_code.get(c.code)
        if kept is None:
            by_code[c.code] = c
        elif c.confidence > kept.confidence:
            c.evidence.extend(e for e in kept.evidence if e not in c.evidence)
            by_code[c.code] = c
    ordered = list(by_code.values())
    return sorted(ordered, key=lambda c: (c.code in BENIGN, -c.confidence))


def run_rules(facts: SessionFacts) -> list[Cause]:
    causes: list[Cause] = []
    for r in RULES:
        try:
            found = list(r.fn(facts))
            for c in found:
                if c.code not in r.codes:  # the rule table is the catalogue docs are built on
                    log.warning("rule %s emitted undeclared cause code %s", r.name, c.code)
            causes.extend(found)
        except Exception as exc:  # one broken rule must not hide the others
            log.exception("diagnosis rule %s failed", r.name)
            causes.append(
                Cause(
                    code="dlmsdoctor.bug",
                    title=f"dlmsdoctor's diagnosis rule {r.name} failed",
                    confidence=0.1,
                    whose="client",
                    explanation=f"{type(exc).__name__}: {exc}",
                    evidence=[Evidence(note="internal error in the diagnosis")],
                )
            )
    return causes


def is_note(cause: Cause) -> bool:
    """An observation, not a fault (ICMP filtered, a release confirmed late): faces list it
    under notes, never as the most likely cause."""
    return cause.code in BENIGN


def diagnose(session: Session) -> Diagnosis:
    """Ranked causes, the working profile (or None), a status word and a one-line headline.

    It also settles the session's steps (``steps.settle``: recovered rungs, one severity per
    result), keeping what the engine recorded in each step's details: every face that shows a
    diagnosed session shows the same statuses. Running it twice gives the same result."""
    unsettle(session)
    facts = SessionFacts(session)
    causes = rank(run_rules(facts))
    for c in causes:
        settle_evidence(facts, c)
    profile = with_line(facts, build_profile(facts))  # serial: the line that worked
    faults = [c for c in causes if c.code not in BENIGN and c.confidence >= DEGRADED_AT]
    if session.cancelled:
        status = "cancelled"
    else:
        status = "failed" if profile is None else ("degraded" if faults else "ok")
    diagnosis = Diagnosis(
        status=status,
        headline=_headline(session, status, causes, profile),
        causes=causes,
        profile=profile,
    )
    settle(session, facts, diagnosis)
    return diagnosis


def apply(session: Session) -> Diagnosis:
    """Diagnose ``session`` and keep the verdict in it (``session.diagnosis``)."""
    session.diagnosis = diagnose(session)
    return session.diagnosis


def _headline(
    session: Session, status: str, causes: list[Cause], profile: ConnectionProfile | None
) -> str:
    top = next((c for c in causes if c.code not in BENIGN), None)
    if status == "cancelled":
        so_far = ""
        if profile is not None:
            so_far = (f" So far it works with {server_text(profile)}, client "
                      f"{profile.client_sap}, authentication {profile.authentication}.")
        elif top is not None:
            so_far = f" So far: {top.title} [{top.whose}]."
        return "The run was cancelled before it finished." + so_far
    if profile is not None:
        works = (
            f"{server_text(profile)}, client {profile.client_sap}, "
            f"authentication {profile.authentication}"
        )
        if status == "ok" or top is None:
            return f"The meter works: {works}."
        return f"{top.title} [{top.whose}]. Works with: {works}."
    if top is None:
        if not session.steps:
            return "Nothing was probed."
        return "No association was made and no known signature matched; see the ladder."
    action = next((a.text for a in top.actions if a.when == "now"), "")
    headline = f"{top.title} [{top.whose}]"
    return f"{headline}. {action}" if action else headline + "."
