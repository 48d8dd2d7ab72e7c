"""The consistency check: a diagnosed session, and what the faces rendered of it, never
contradict themselves.

``check(session, diagnosis, rendered={"md": ..., "html": ..., "json": ...}, lang="es")`` returns
the problems found (an empty list when the verdict and its reports hold together). The tests run
it over every demo scenario, every sample in ``captures/`` and their pcap copies, in both
languages and every report format.

Invariants (``Problem.code``):

- ``evidence.missing_frame``: every cited frame exists in the session.
- ``evidence.direction``: a cited frame has the direction its claim needs: what the meter did
  (a refusal, a UA, a DM, text) is proven by a frame it sent (RX); silence by our request (TX);
  a late answer by both.
- ``evidence.step``: a cited frame is filed under the step that sent it (or, for the release of
  a previous association a login step began with, under that release).
- ``evidence.order`` / ``evidence.repeated``: a cause's frames in frame order, each
  (frame, note) once.
- ``rungs.profile``: no rung below the association FAILED while the profile says the link
  works (it is RECOVERED then); no rung FAILED at all in an "ok" run.
- ``rungs.verdict``: "failed" has no working profile, "ok"/"degraded" have one.
- ``rungs.partition``: no rung both under "Works" and "Does not work"; one label per step.
- ``rungs.framing_text``: a framing rung that received text does not say "no answer".
- ``rungs.severity``: an unreadable object is a warning, in every read step.
- ``notes.ranked``: a note (an observation such as "release confirmed late") is never the top
  cause while a fault exists.
- ``cancelled``: a cancelled run is "cancelled" in the verdict and says so in every report.
- ``advice.done``: no action asks for what the run already did (reading the inactivity
  timeout it read, giving the serial number it was given, --framing auto when it ran with it,
  --disc-first when it sent DISC before the refused SNRM).
- ``figures.rounding``: a figure with a unit in a cause's title appears the same in its
  explanation or evidence (no "0.034 s" beside "0.03 s").
- ``text.repr``: no Python repr in a report (``None``, ``{'``, ``[{``, a float with 7+
  decimals) and no raw Python error message ("Connect call failed ('127.0.0.1', 1)").
- ``text.english``: a Spanish report has no English sentence of the catalogue (cause titles,
  explanations, actions, evidence notes, probe finding and codec messages) and nothing marked
  untranslated.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from dlmsdoctor.codec.model import FrameKind
from dlmsdoctor.diagnosis.evidence import claims_silence
from dlmsdoctor.diagnosis.facts import SessionFacts
from dlmsdoctor.diagnosis.registry import BENIGN
from dlmsdoctor.diagnosis.steps import frame_owners
from dlmsdoctor.diagnosis.words import CODEC_EN
from dlmsdoctor.events import Direction, StepStatus
from dlmsdoctor.session import Diagnosis, Session

# Cause codes whose claim is something the meter (or bridge) sent: at least one RX frame cited.
NEEDS_ANSWER = frozenset({
    "auth.wrong_password", "auth.mechanism_mismatch", "assoc.context_rejected",
    "assoc.rejected", "hdlc.dm", "hdlc.frmr", "hdlc.wrong_address", "bridge.kicked",
    "bridge.serial_error", "bridge.telnet", "meter.iec62056_21", "link.echo",
    "link.corrupt_replies", "link.reply_cut", "link.stale_bytes", "link.unasked_bytes",
    "meter.late_replies", "meter.slow_replies",
})
# ... and whose claim is that nothing came back: at least one TX frame cited.
NEEDS_REQUEST = frozenset({
    "hdlc.no_answer", "wrapper.no_answer", "assoc.no_answer", "client.malformed_frame",
    "meter.late_replies", "meter.slow_replies", "assoc.aarq_too_long",
})
_LINK_LAYERS = ("tcp", "framing", "hdlc", "wrapper", "address")
_REPR = (
    (re.compile(r"\bNone\b"), "None"),
    (re.compile(r"\{'"), "a dict repr"),
    (re.compile(r"\[\{"), "a list of dicts"),
    (re.compile(r"(?<![\w.])\d+\.\d{7,}"), "a float repr"),
    (re.compile(r"Connect call failed|\[Errno -?\d+\]|Traceback \(most recent"),
     "a Python error message"),
)
_FIGURE = re.compile(r"\d+(?:[.,]\d+)? (?:ms|s)\b")
# JSON report keys that hold recorded data on purpose (the English originals, raw settings)
_RAW_KEYS = frozenset({"recorded_explanation", "recorded_headline", "recorded_note", "message",
                       "settings", "identity", "hex", "short_hex", "fields", "step", "code",
                       "recorded_step", "finding", "values"})


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def check(
    session: Session,
    diagnosis: Diagnosis | None = None,
    *,
    rendered: dict[str, str] | None = None,
    lang: str = "en",
) -> list[Problem]:
    """Every invariant of the module docstring, over ``session`` (diagnosed: its steps settled)
    and ``diagnosis`` (default: the session's), and over the ``rendered`` reports in
    ``lang`` (format -> text)."""
    diagnosis = diagnosis if diagnosis is not None else session.diagnosis
    out: list[Problem] = []
    if diagnosis is None:
        if session.cancelled and rendered:
            out += _cancelled_text(rendered, lang)
        return out
    facts = SessionFacts(session)
    out += _evidence(session, facts, diagnosis)
    out += _rungs(session, facts, diagnosis)
    out += _verdict(session, diagnosis)
    for fmt, text in (rendered or {}).items():
        out += _text(session, diagnosis, fmt, text, lang)
    if rendered and session.cancelled:
        out += _cancelled_text(rendered, lang)
    return out


# ------------------------------------------------------------------------------- evidence


def _evidence(session: Session, f: SessionFacts, diagnosis: Diagnosis) -> list[Problem]:
    out: list[Problem] = []
    frames = {x.index: x for x in f.frames}
    findings = {(pf.code, pf.step_id): pf for pf in session.findings}
    owners = frame_owners(session)
    for cause in diagnosis.causes:
        cited = [ev.frame for ev in cause.evidence if ev.frame is not None]
        for ev in cause.evidence:
            if ev.frame is None:
                continue
            frame = frames.get(ev.frame)
            if frame is None:
                out.append(Problem("evidence.missing_frame",
                                   f"{cause.code} cites frame #{ev.frame}, not in the session"))
                continue
            if ev.step and ev.step not in (frame.record.step_id, owners.get(ev.frame)):
                out.append(Problem("evidence.step",
                                   f"{cause.code}: frame #{ev.frame} is filed under "
                                   f"{ev.step}, but {frame.record.step_id} sent it"))
            pf = findings.get((ev.finding, ev.step or "")) if ev.finding else None
            if pf is not None and not claims_silence(pf.code) and "late" not in pf.code:
                rx = [i for i in pf.frames if i in frames and not frames[i].tx
                      and frames[i].kind != FrameKind.ECHO]
                if rx and frame.tx:
                    out.append(Problem(
                        "evidence.direction",
                        f"{cause.code}: '{ev.note}' is the meter's doing but cites our frame "
                        f"#{ev.frame} (the meter's is #{rx[0]})"))
        present = [frames[i] for i in cited if i in frames]
        if cause.code in NEEDS_ANSWER and present and not any(not x.tx for x in present):
            out.append(Problem("evidence.direction",
                               f"{cause.code} cites no frame the meter sent"))
        if cause.code in NEEDS_REQUEST and present and not any(x.tx for x in present):
            out.append(Problem("evidence.direction",
                               f"{cause.code} cites no request of ours"))
        if cited != sorted(cited):
            out.append(Problem("evidence.order",
                               f"{cause.code}: frames cited out of order {cited}"))
        keys = [(ev.frame, ev.note) for ev in cause.evidence]
        if len(keys) != len(set(keys)):
            out.append(Problem("evidence.repeated", f"{cause.code}: the same evidence twice"))
    return out


# ---------------------------------------------------------------------------------- rungs


def _rungs(session: Session, f: SessionFacts, diagnosis: Diagnosis) -> list[Problem]:
    out: list[Problem] = []
    failed = [s for s in session.steps if s.status is StepStatus.FAILED]
    if diagnosis.profile is not None:
        for step in failed:
            if step.layer in _LINK_LAYERS and step.id != "tcp.connect":
                out.append(Problem("rungs.profile",
                                   f"{step.id} FAILED while the profile says the link works"))
    if diagnosis.status == "ok":
        for step in failed:
            if step.layer != "icmp":
                out.append(Problem("rungs.profile", f"{step.id} FAILED in an 'ok' run"))
    for step in session.steps:
        if step.layer == "framing" and "no answer" in step.summary:
            text = [x for x in f.frames if not x.tx and x.record.step_id == step.id
                    and any(c.startswith(("stream.iec62056_21", "stream.bridge"))
                            for c in x.codes)]
            if text:
                out.append(Problem("rungs.framing_text",
                                   f"{step.id} says 'no answer' but got text (frame "
                                   f"#{text[0].index})"))
        if step.layer == "cosem" and step.status is StepStatus.FAILED:
            refused = [pf for pf in session.findings
                       if pf.step_id == step.id and pf.code == "cosem.read_failed"]
            if refused and "no answer" not in step.summary:
                out.append(Problem("rungs.severity",
                                   f"{step.id}: unreadable objects FAILED here, a warning "
                                   "elsewhere"))
    return out


def _verdict(session: Session, diagnosis: Diagnosis) -> list[Problem]:
    out: list[Problem] = []
    status, profile = diagnosis.status, diagnosis.profile
    if session.cancelled != (status == "cancelled"):
        out.append(Problem("cancelled",
                           f"cancelled={session.cancelled} but the verdict is {status!r}"))
    if status == "failed" and profile is not None:
        out.append(Problem("rungs.verdict", "'failed' with a working profile"))
    if status in ("ok", "degraded") and profile is None:
        out.append(Problem("rungs.verdict", f"{status!r} without a working profile"))
    faults = [c for c in diagnosis.causes if c.code not in BENIGN]
    if faults and diagnosis.causes and diagnosis.causes[0].code in BENIGN:
        out.append(Problem("notes.ranked",
                           f"the note {diagnosis.causes[0].code} ranked above the faults"))
    out += _advice_done(session, diagnosis)
    for cause in diagnosis.causes:
        said = " ".join([cause.explanation, *(ev.note for ev in cause.evidence)])
        if not _FIGURE.search(said):
            continue
        for figure in _FIGURE.findall(cause.title):
            if figure not in said:
                out.append(Problem("figures.rounding",
                                   f"{cause.code}: the title says {figure!r}, its explanation "
                                   "and evidence do not"))
    return out


def _advice_done(session: Session, diagnosis: Diagnosis) -> list[Problem]:
    """Actions that ask for what the run already did."""
    done: list[tuple[str, str]] = []
    if "hdlc_inactivity_timeout" in session.identity:
        done.append(("0.0.22.0.0.255", "read the inactivity timeout"))
    if session.target.serial_number:
        done.append(("Give the serial number", "was given the serial number"))
    if session.target.framing in ("", "auto"):
        done.append(("Probe again with --framing auto", "ran with --framing auto"))
    f = SessionFacts(session)
    if f.tx_of_type("DISC") and f.rx_of_type("DM") and all(
        d.index < m.index for d in f.tx_of_type("DISC")[:1] for m in f.rx_of_type("DM")[-1:]
    ):
        done.append(("--disc-first sends DISC", "sent DISC before the refused SNRM"))
    out = []
    for cause in diagnosis.causes:
        for action in cause.actions:
            for words, what in done:
                if words in action.text:
                    out.append(Problem("advice.done",
                                       f"{cause.code} advises {words!r}; the run {what}"))
    return out


# ----------------------------------------------------------------------------------- text


def _strings(value: Any, key: str = "") -> list[str]:
    if key in _RAW_KEYS:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, str(k))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v, key)]
    return []


def _plain(fmt: str, text: str) -> str:
    """The words of a rendered report, without its markup escapes."""
    if fmt == "html":
        return html.unescape(re.sub(r"<[^>]+>", " ", text))
    if fmt == "md":
        return re.sub(r"\\(.)", r"\1", text)
    return text


def _english_catalogue(session: Session, diagnosis: Diagnosis) -> set[str]:
    sentences: set[str] = set()
    for cause in diagnosis.causes:
        sentences.add(cause.title)
        sentences.update(x.strip() for x in cause.explanation.split(". ") if len(x) > 30)
        sentences.update(a.text for a in cause.actions)
        sentences.update(ev.note for ev in cause.evidence if len(ev.note) > 12)
    sentences.update(pf.message for pf in session.findings if len(pf.message) > 12)
    sentences.update(text for entry in CODEC_EN.values() for text in entry.values())
    # text the meter or a bridge sent is quoted as it came, in whatever language
    quoted = {x.data.decode("latin-1", "replace").strip() for x in session.frames
              if x.direction is Direction.RX}
    # a sentence has words; a bare code ("assoc.auth_failure") is an identifier, shown as one
    return {s for s in sentences if " " in s.strip()
            and not any(s in q or q in s for q in quoted if q)}


def _text(session: Session, diagnosis: Diagnosis, fmt: str, text: str,
          lang: str) -> list[Problem]:
    out: list[Problem] = []
    if fmt == "json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            return [Problem("text.repr", f"json: not JSON ({exc})")]
        words = "\n".join(_strings(doc))
        out += _report_rungs(doc)
        if lang != "en":
            out += _untranslated_marks(doc)
    else:
        words = _plain(fmt, text)
        if fmt == "md":
            # the appendix's fenced blocks are protocol decodes (the standard's terms)
            words = "".join(words.split("```")[::2])
    for pattern, what in _REPR:
        m = pattern.search(words)
        if m is not None:
            around = words[max(0, m.start() - 40): m.end() + 40].replace("\n", " ")
            out.append(Problem("text.repr", f"{fmt}/{lang}: {what} in …{around}…"))
    if lang != "en":
        for sentence in sorted(_english_catalogue(session, diagnosis)):
            if sentence in words:
                out.append(Problem("text.english",
                                   f"{fmt}/{lang}: English sentence {sentence[:70]!r}"))
    return out


def _report_rungs(doc: dict[str, Any]) -> list[Problem]:
    """One label per step, and Works / Does not work / Recovered a partition of the rungs that
    agrees with their statuses."""
    out: list[Problem] = []
    rungs = doc.get("rungs", [])
    titles: dict[str, str] = {}
    for rung in rungs:
        other = titles.setdefault(rung["title"], rung["id"])
        if other != rung["id"]:
            out.append(Problem("rungs.partition",
                               f"{other} and {rung['id']} share the label {rung['title']!r}"))
    part = doc.get("partition", {})
    status = {r["id"]: r["status"] for r in rungs}
    seen: dict[str, str] = {}
    allowed = {"works": ("ok", "warning"), "fails": ("failed", "error"),
               "recovered": ("recovered",)}
    for side, ids in part.items():
        for step_id in ids:
            if step_id in seen:
                out.append(Problem("rungs.partition",
                                   f"{step_id} under both {seen[step_id]!r} and {side!r}"))
            seen[step_id] = side
            if status.get(step_id) not in allowed.get(side, ()):
                out.append(Problem("rungs.partition",
                                   f"{step_id} ({status.get(step_id)}) listed under {side!r}"))
    return out


# English glue words: in a sentence of a Spanish report's own words (titles, explanations,
# actions, evidence notes), they betray an English clause left inside a translation (a
# figure-carrying note only half said in Spanish).
_ENGLISH_GLUE = re.compile(r"\b(the|this|with|and|after|before|our|was|were|own|earlier)\b")


def _english_glue(lang: str, where: str, text: object) -> list[Problem]:
    if lang == "en" or not isinstance(text, str):
        return []
    quoted = re.sub(r"'[^']*'|\"[^\"]*\"", "", text)  # the meter's own words stay as they are
    m = _ENGLISH_GLUE.search(quoted)
    if m is None:
        return []
    return [Problem("text.english", f"json/{lang}: {where} keeps English ({m[0]!r}): "
                                    f"{text[:80]!r}")]


def _untranslated_marks(doc: dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    lang = str(doc.get("lang", "en"))
    for cause in doc.get("diagnosis", {}).get("causes", []):
        if not cause.get("translated", True):
            out.append(Problem("text.english", f"json: cause {cause.get('code')} has no "
                                               "translation"))
        if cause.get("translated", True):
            out += _english_glue(lang, f"{cause.get('code')} title", cause.get("title"))
            for action in cause.get("actions", []):
                out += _english_glue(lang, f"{cause.get('code')} action", action.get("text"))
        for ev in cause.get("evidence", []):
            if ev.get("note_translated", True):
                out += _english_glue(lang, f"{cause.get('code')} evidence", ev.get("note"))
            if not ev.get("note_translated", True):
                out.append(Problem("text.english",
                                   f"json: evidence note {ev.get('recorded_note')!r} of "
                                   f"{cause.get('code')} has no translation"))
    for finding in doc.get("findings", []):
        if not finding.get("translated", True):
            out.append(Problem("text.english",
                               f"json: finding {finding.get('code')} has no translation"))
    return out


def _cancelled_text(rendered: dict[str, str], lang: str) -> list[Problem]:
    # "cancelled", "CANCELADA", "se canceló": the same root in both languages
    return [Problem("cancelled", f"{fmt}/{lang}: a cancelled run not said to be cancelled")
            for fmt, text in rendered.items() if "cancel" not in _plain(fmt, text).lower()]
