"""The rule table: each rule is one small function from SessionFacts to zero or more Causes.

Rules are registered with ``@rule`` in the module that groups them by layer; ``RULES`` keeps
registration order so that ties in confidence rank the lower layer first (a busy bridge explains a
silent meter, not the other way round).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dlmsdoctor.diagnosis.facts import FrameFacts, SessionFacts
from dlmsdoctor.session import Action, Cause, Evidence, ProbeFinding

RuleFn = Callable[[SessionFacts], Iterable[Cause]]

WHOSE = frozenset({"meter", "bridge", "network", "client", "poller", "unknown"})

# Causes that are observations, not faults (e.g. ICMP filtered while TCP works): ranked after the
# faults whatever their confidence, and they never make the status "degraded" on their own.
BENIGN: set[str] = set()


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    codes: tuple[str, ...]  # the cause codes this rule may produce
    fn: RuleFn


RULES: list[Rule] = []


def rule(*codes: str, benign: tuple[str, ...] = ()) -> Callable[[RuleFn], RuleFn]:
    """Register a rule that may emit causes with these codes (``benign`` ones are notes)."""

    def register(fn: RuleFn) -> RuleFn:
        RULES.append(Rule(fn.__name__, tuple(codes) + tuple(benign), fn))
        BENIGN.update(benign)
        return fn

    return register


# -- small constructors the rules share ------------------------------------------------------


def now(text: str) -> Action:
    return Action(text=text, when="now")


def later(text: str) -> Action:
    return Action(text=text, when="later")


def ev_frame(frame: FrameFacts, note: str) -> Evidence:
    return Evidence(note=note, frame=frame.index, step=frame.record.step_id or None)


def ev_step(step_id: str, note: str) -> Evidence:
    return Evidence(note=note, step=step_id)


def ev_finding(pf: ProbeFinding, note: str | None = None) -> Evidence:
    return Evidence(
        note=note or pf.message,
        step=pf.step_id or None,
        finding=pf.code,
        frame=pf.frames[0] if pf.frames else None,
    )


def cause(
    code: str,
    title: str,
    confidence: float,
    whose: str,
    explanation: str,
    evidence: list[Evidence],
    actions: list[Action],
) -> Cause:
    assert whose in WHOSE, whose
    unique: list[Evidence] = []
    for item in evidence:  # the same frame cited twice with the same note says nothing more
        if item not in unique:
            unique.append(item)
    return Cause(
        code=code,
        title=title,
        confidence=round(max(0.0, min(1.0, confidence)), 2),
        whose=whose,
        explanation=explanation,
        evidence=unique,
        actions=actions,
    )
