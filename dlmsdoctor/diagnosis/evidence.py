"""Evidence that cites the proof: the frame a claim rests on, in frame order, each once.

Rules say what they saw; this pass (run by ``diagnose`` over every cause, rules of later helpers
included) makes the citation right:

- a probe finding cited through its first frame (``ev_finding``) is re-pointed at the frame that
  proves it: the meter's answer for what the meter did (a refusal cites the AARE, "answers at
  1/6678" the UA), our request for silence (nothing came back: the request is the proof);
- an answer that came late (``FrameRecord.late``) is cited with its request (``answers``, else the
  last request before it on the same connection): both frames are the proof of a slow meter;
- items are sorted by frame (items without a frame keep their order, after the frames) and said
  once: the same frame with the same note, or a finding restating a frame already cited.
"""

from __future__ import annotations

from dlmsdoctor.codec.model import FrameKind
from dlmsdoctor.diagnosis.facts import FrameFacts, SessionFacts
from dlmsdoctor.diagnosis.words import plain_error
from dlmsdoctor.session import Cause, Evidence, ProbeFinding

# Finding codes whose claim is that nothing (or nothing usable) came back: the proof is the
# request. Everything else a probe reports is something the meter (or bridge) did: its frame.
_SILENCE_WORDS = ("no_answer", "not_found", "undetermined", "closed_after_first_frame",
                  "closed_at_once", "closed_every_time", "unconfirmed", "not_clean",
                  "lockout", "budget", "held_back", "sap_blocked")


def claims_silence(code: str) -> bool:
    return any(word in code for word in _SILENCE_WORDS)


def _finding_for(f: SessionFacts, ev: Evidence) -> ProbeFinding | None:
    if not ev.finding:
        return None
    candidates = [pf for pf in f.session.findings if pf.code == ev.finding
                  and (ev.step is None or pf.step_id == ev.step)]
    for pf in candidates:
        if ev.frame is None or (pf.frames and pf.frames[0] == ev.frame):
            return pf
    return None


def request_of(f: SessionFacts, answer: FrameFacts) -> FrameFacts | None:
    """The request an answer answers: ``answers`` when recorded, else the last frame we sent
    before it on the same connection."""
    by_index = {x.index: x for x in f.frames}
    if answer.record.answers is not None and answer.record.answers in by_index:
        return by_index[answer.record.answers]
    conn = f.conn_of(answer)
    sent = [x for x in (conn.frames if conn else []) if x.tx and x.index < answer.index]
    return sent[-1] if sent else None


def _proof(f: SessionFacts, ev: Evidence) -> list[Evidence]:
    by_index = {x.index: x for x in f.frames}
    pf = _finding_for(f, ev)
    if pf is not None and pf.frames:
        cited = [by_index[i] for i in pf.frames if i in by_index]
        sent = [x for x in cited if x.tx]
        got = [x for x in cited if not x.tx and x.kind != FrameKind.ECHO]
        if "late" in pf.code and got:
            answer = got[0]
            request = request_of(f, answer)
            out = []
            if request is not None:
                out.append(Evidence(note=f"request (frame #{request.index}), answered late",
                                    frame=request.index, step=ev.step, finding=ev.finding))
            out.append(Evidence(note=ev.note, frame=answer.index, step=ev.step,
                                finding=ev.finding))
            return out
        if claims_silence(pf.code):
            chosen = sent[-1] if sent else cited[0] if cited else None
        else:
            chosen = got[0] if got else cited[0] if cited else None
        if chosen is not None:
            ev = Evidence(note=ev.note, frame=chosen.index, step=ev.step, finding=ev.finding)
    frame = by_index.get(ev.frame) if ev.frame is not None else None
    if frame is not None and not frame.tx and frame.record.late:
        request = request_of(f, frame)
        if request is not None:
            return [Evidence(note=f"request (frame #{request.index}), answered late",
                             frame=request.index, step=ev.step), ev]
    return [ev]


def settle_evidence(f: SessionFacts, cause: Cause) -> None:
    """Re-point, order and dedupe one cause's evidence (in place)."""
    items: list[Evidence] = []
    for ev in cause.evidence:
        ev.note = plain_error(ev.note)
        items.extend(_proof(f, ev))
    framed = sorted((e for e in items if e.frame is not None), key=lambda e: e.frame or 0)
    unframed = [e for e in items if e.frame is None]
    rule_frames = {e.frame for e in items if e.frame is not None and not e.finding}
    out: list[Evidence] = []
    said: set[tuple[int | None, str]] = set()
    cited: set[int] = set()
    for ev in framed + unframed:
        key = (ev.frame, ev.note)
        if key in said:
            continue
        # a probe finding restating a frame a rule already cites adds nothing but its advice
        if ev.finding and ev.frame is not None and ev.frame in rule_frames:
            continue
        # each frame once: the first (the rule's own words) says it ("SNRM: no answer within
        # the timeout" and "request (frame #0), answered late" are one frame, one line)
        if ev.frame is not None and ev.frame in cited:
            continue
        said.add(key)
        if ev.frame is not None:
            cited.add(ev.frame)
        out.append(ev)
    cause.evidence = out
