"""Rules about the client side: frames we (or the user's client) sent wrong, our own bugs, release,
and the login budget. The seed field report's team never saw that their own SNRM was malformed
(group length 0x12 for 20 bytes of parameters): a frame linted bad on TX is said plainly."""

from __future__ import annotations

from dlmsdoctor.codec.hdlc import parse_hdlc
from dlmsdoctor.codec.model import Finding, FrameKind, Severity
from dlmsdoctor.codec.wrapper import parse_wrapper
from dlmsdoctor.diagnosis.facts import TAG_RLRE, TAG_RLRQ, FrameFacts, SessionFacts
from dlmsdoctor.diagnosis.registry import cause, ev_finding, ev_frame, ev_step, later, now, rule
from dlmsdoctor.diagnosis.words import codec_text, codecs_text, expected_found
from dlmsdoctor.events import StepStatus
from dlmsdoctor.session import Action, Cause, Evidence


def _errors(frame: FrameFacts) -> list[Finding]:
    data = frame.record.data
    if frame.kind == FrameKind.HDLC:
        decoded = parse_hdlc(data, direction="tx")
    elif frame.kind == FrameKind.WRAPPER:
        decoded = parse_wrapper(data)
    else:
        return []
    return [x for x in decoded.findings if x.severity is Severity.ERROR]


@rule("client.malformed_frame")
def malformed_tx(f: SessionFacts) -> list[Cause]:
    # x.errors first: re-parsing every sent frame of a large capture cost seconds
    bad = [(x, _errors(x)) for x in f.frames if x.tx and x.is_dlms and x.errors]
    bad = [(x, errs) for x, errs in bad if errs]
    if not bad:
        return []
    frame, errs = bad[0]
    first = errs[0]
    detail = first.message
    figures = expected_found(first.code, first.expected, first.found, first.corrected)
    if figures:
        detail += f" ({figures})"
    answered = bool(f.answers_to(frame))
    evidence = [ev_frame(x, codecs_text([e.code for e in errs], tx=True)) for x, errs in bad[:3]]
    return [
        cause(
            "client.malformed_frame",
            f"A frame the client sent is malformed ({codec_text(first.code, tx=True)}): "
            "the meter may drop it",
            0.95 if not answered else 0.7,
            "client",
            f"Frame #{frame.index}: {detail}. Strict meters drop such frames silently or close "
            "the connection, which looks exactly like a dead or locked meter. The fault is in "
            "the client that built the frame, not in the meter.",
            evidence,
            [
                now(
                    "Fix the client's frame builder (or its library version) before blaming "
                    "the meter; `dlmsdoctor decode` shows the corrected bytes."
                ),
            ],
        )
    ]


@rule("dlmsdoctor.bug")
def engine_error(f: SessionFacts) -> list[Cause]:
    steps = [s for s in f.session.steps if s.status is StepStatus.ERROR]
    findings = f.findings("engine.exception")
    if not steps and not findings:
        return []
    evidence = [ev_step(s.id, s.summary or "internal error") for s in steps[:3]]
    evidence += [ev_finding(pf) for pf in findings[:2]]
    return [
        cause(
            "dlmsdoctor.bug",
            "dlmsdoctor hit an internal error; results after that step are incomplete",
            0.5,
            "client",
            "A probe raised an unexpected exception: this is a bug in dlmsdoctor, not a "
            "statement about the meter.",
            evidence,
            [later("Report it with the saved session file.")],
        )
    ]


@rule("release.not_clean", benign=("release.confirmed_late",))
def release_not_clean(f: SessionFacts) -> list[Cause]:
    findings = f.findings("release.not_clean")
    failed = [s for s in f.steps("release") if s.status is StepStatus.FAILED]
    if not findings and not failed:
        return []
    confirmed = _late_confirmations(f)
    if confirmed and not _unconfirmed_connections(f):
        # every connection we released got its RLRE or its DISC's UA/DM, only late (after the
        # probe's wait, often after Ctrl-C): the association is over; say so, not a fault
        return [
            cause(
                "release.confirmed_late",
                "The release was confirmed late: the meter holds no session of ours",
                0.9,
                "meter",
                "The meter answered our release after dlmsdoctor stopped waiting: "
                + "; ".join(note for _, note in confirmed)
                + ". An RLRE ends the association, and a UA to our DISC ends the link and "
                "the association with it.",
                [ev_frame(x, note) for x, note in confirmed[:3]],
                [later("On a link this slow, give the client a longer timeout.")],
            )
        ]
    evidence: list[Evidence] = [ev_finding(pf) for pf in findings[:2]]
    evidence += [ev_step(s.id, s.summary or "release failed") for s in failed[:1]]
    if f.session.cancelled:
        # the user stopped the run, the wait for the release with it: a note of what is not
        # known, not a fault of the meter
        return [
            cause(
                "release.not_clean",
                "The release was not confirmed before the run was cancelled",
                0.3,
                "unknown",
                "The run was cancelled while it released the meter, so no RLRE or UA was "
                "waited for. If the meter still holds the association, it ends at the meter's "
                "inactivity timeout.",
                evidence,
                [later("If the next poll is refused, wait for the meter's inactivity timeout.")],
            )
        ]
    return [
        cause(
            "release.not_clean",
            "The meter may still hold our association (release not confirmed)",
            0.55,
            "unknown",
            "No RLRE or UA confirmed the release. Behind a bridge, closing TCP does not end the "
            "meter's session, so the next client may be refused until the inactivity timeout.",
            evidence,
            [now("Wait for the meter's inactivity timeout before the next poll.")],
        )
    ]


def _release_answers(conn_frames: list[FrameFacts]) -> list[tuple[FrameFacts, str]]:
    """RLREs after our RLRQ and UA/DM after our DISC on one connection (late ones included)."""
    out: list[tuple[FrameFacts, str]] = []
    # the last ones: a DISC sent first (--disc-first) and its UA say nothing about the release
    rlrq = next((x for x in reversed(conn_frames) if x.tx and x.apdu_tag == TAG_RLRQ), None)
    disc = next((x for x in reversed(conn_frames) if x.tx and x.hdlc_type == "DISC"), None)
    for x in conn_frames:
        if x.tx:
            continue
        if rlrq is not None and x.index > rlrq.index and x.apdu_tag == TAG_RLRE:
            out.append((x, f"RLRE (frame #{x.index}) to our RLRQ (frame #{rlrq.index})"))
        elif disc is not None and x.index > disc.index and x.hdlc_type in ("UA", "DM"):
            out.append((x, f"{x.hdlc_type} (frame #{x.index}) to our DISC (frame #{disc.index})"))
    return out


def _released_conns(f: SessionFacts) -> list[list[FrameFacts]]:
    return [c.frames for c in f.connections
            if any(x.tx and (x.apdu_tag == TAG_RLRQ or x.hdlc_type == "DISC") for x in c.frames)]


def _late_confirmations(f: SessionFacts) -> list[tuple[FrameFacts, str]]:
    return [item for frames in _released_conns(f) for item in _release_answers(frames)]


def _unconfirmed_connections(f: SessionFacts) -> bool:
    return any(not _release_answers(frames) for frames in _released_conns(f))


@rule("login.budget")
def login_budget(f: SessionFacts) -> list[Cause]:
    """Credential sets the login budget skipped: a set the user asked for was NOT tried, so
    the run cannot say it works; degraded, with the limit that stopped it and how to lift it."""
    findings = f.findings("login.budget", "login.sap_blocked", "safety.logins_held_back",
                          "login.already_rejected", "login.ledger_unavailable")
    # an unusable ledger the user chose to ignore held nothing back
    findings = [pf for pf in findings
                if not (pf.code == "login.ledger_unavailable" and pf.data.get("ignored"))]
    if not findings:
        return []
    names = sorted({str(pf.data.get("credential") or pf.step_id.rpartition(".")[2] or "?")
                    for pf in findings})
    actions: list[Action] = []
    if any(pf.code != "safety.logins_held_back" for pf in findings):
        actions.append(now("Fix the failing credential set first (its password and client SAP)."))
    else:
        actions.append(now("Pause the polling service (and any other client), then probe again."))
    for pf in findings:
        limit = pf.data.get("limit")
        if pf.code == "safety.logins_held_back":
            text = ("Held back because the meter dropped a connection at once while failed "
                    "logins are known: pause the other clients, and once the meter answers "
                    "again, probe again to test this set.")
        elif pf.code == "login.sap_blocked":
            text = ("Its client SAP already had an authentication failure this run; after "
                    "fixing that password, probe again.")
        elif pf.code == "login.already_rejected":
            when = pf.data.get("rejected_at_text") or "an earlier run"
            text = (f"The meter already rejected this very password at {when} (local time); "
                    "it was not sent again. Correct it and probe again; only if you know the "
                    "meter takes it now, add --retry-rejected.")
        elif pf.code == "login.ledger_unavailable":
            text = (f"The login ledger {pf.data.get('path', '')} cannot be used "
                    f"({pf.data.get('problem', '')}), so no password was sent: make it a file "
                    "you can read and write, or add --ignore-ledger-errors.")
        elif pf.data.get("scope") == "run":
            text = (f"Only {limit} failed login(s) per run across all sets: after fixing the "
                    "failing set, probe again (or --run-login-budget N, knowingly).")
        elif "failures_in_window" in pf.data:
            window = pf.data.get("window")
            minutes = f"{float(window) / 60:g} min" if isinstance(window, (int, float)) else ""
            text = (f"The per-meter limit ({limit} failed logins in {minutes}, counting earlier "
                    "runs) lifts by itself as those failures age out: wait. Only if you know the "
                    "meter tolerates more, raise it explicitly for one run: "
                    f"--meter-login-budget {int(limit) + 1 if isinstance(limit, int) else 'N'}.")
        elif limit == 0:
            text = "Password logins were turned off (--max-failed-logins 0)."
        else:
            text = ("That set already failed in this run; --max-failed-logins raises the "
                    "per-set limit (each failure brings a lockout closer).")
        if all(a.text != text for a in actions):
            actions.append(later(text))
    return [
        cause(
            "login.budget",
            "Credential set(s) not tried, to protect the meter from a lockout: "
            + ", ".join(repr(n) for n in names),
            # held back only: a consequence of the drop the other causes explain, listed below
            # them; otherwise a set the user asked for is untested: degraded at least
            0.6 if any(pf.code != "safety.logins_held_back" for pf in findings) else 0.3,
            "client",
            "The login budget (failed logins per set per run, and per meter within a time "
            "window across runs) was spent, or an earlier authentication failure on that client "
            "SAP stopped further tries, or passwords were held back after the meter dropped a "
            "connection at once. These sets were not tested: this run does not show that "
            "they work.",
            [ev_finding(pf) for pf in findings[:3]],
            actions,
        )
    ]
