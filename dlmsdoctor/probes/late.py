"""Answers that come after their wait: a slow meter's late AARE settles the login it answers.

A late answer is met while another request waits (the next login's SNRM, the release's RLRQ or
DISC). It is recorded (its frame is in the Session, marked with the request it answers) and
reported here; a late AARE to a login recorded as "no-answer" settles that login: the ledger
(``LoginBudget.settle``), the session's logins (``LoginAttempted.settles``), the login's rung and
its refusal findings then say what the meter answered.
"""

from __future__ import annotations

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.codec.ber import ACSE_USER_DIAGNOSTIC_TEXT
from dlmsdoctor.codec.model import Severity
from dlmsdoctor.events import LoginAttempted, StepStatus
from dlmsdoctor.probes.base import ProbeContext, UnsettledLogin


def report_refusal(ctx: ProbeContext, step_id: str, f: dict[str, object],
                   frames: tuple[int, ...], who: dict[str, object]) -> str:
    """The findings of an AARE that refused the association (or of a failed HLS pass 4); the
    diagnostic in plain words."""
    diag = f.get("diagnostic")
    text = ACSE_USER_DIAGNOSTIC_TEXT.get(diag, str(f.get("diagnostic_name", ""))) if isinstance(
        diag, int) else str(f.get("diagnostic_name", ""))
    if f.get("diagnostic_source") == "hls-pass-4":
        text = ("HLS-GMAC authentication failed at pass 3/4: wrong authentication key, "
                "block cipher key or system title for this client SAP")
    data = {"result": f.get("result"), "source": f.get("diagnostic_source"),
            "diagnostic": diag, "diagnostic_text": text, **who}
    code = "assoc.rejected"
    if diag == 13:
        code = "assoc.auth_failure"
    elif diag in (11, 12, 14):
        code = "assoc.mechanism_mismatch"
    elif diag == 2:
        code = "assoc.context_mismatch"
    ctx.emit(ctx.finding(step_id, code, Severity.ERROR,
                         f"association refused ({f.get('result_name')}): {text}", frames,
                         **data))
    if f.get("service_error") or f.get("initiate_error"):
        ctx.emit(ctx.finding(step_id, "assoc.service_error", Severity.ERROR,
                             f"the meter refused the xDLMS parameters: "
                             f"{f.get('service_error') or f.get('initiate_error')}", frames,
                             text=str(f.get("service_error") or f.get("initiate_error"))))
    return text



def report_late(ctx: ProbeContext, step_id: str, late: list[tuple[int, bytes]]) -> None:
    """Answers to earlier requests that came while we waited for another: each is recorded
    (its frame is in the Session) and reported. A late AARE says the meter had accepted (or
    refused) an AARQ we gave up on: the RLRQ/DISC that follow end it."""
    facts = ctx.facts
    for index, apdu in late:
        if apdu[:1] == b"\x61":
            fields = decode_apdu(apdu).fields
            accepted = fields.get("result") == 0
            pending = facts.assoc_pending
            # the AARQ it answers: as matched on arrival, else the last one left unanswered
            request, seconds = ctx.answered_requests.get(index, (None, None))
            if request is None and pending is not None and pending.request_index >= 0:
                request = pending.request_index
            delay = None
            frames: tuple[int, ...] = (index,)
            if seconds is None and pending is not None:
                seconds = ctx.now() - pending.sent_at
            if seconds is not None:
                # from the AARQ to the AARE's arrival (as timing.slow_service counts it)
                delay = round(seconds, 3)
                facts.saw_delay("association", seconds)
            if request is not None:
                frames = (request, index)
                ctx.answered(request)
            login = ctx.unsettled_logins.pop(request, None) if request is not None else None
            client_sap = (login.attempt.client_sap if login is not None else
                          pending.client_sap if pending is not None else None)
            ctx.emit(ctx.finding(
                step_id, "assoc.late_answer", Severity.WARNING,
                f"the meter {'accepted' if accepted else 'refused'} our AARQ"
                + (f" (login {login.attempt.credential!r})" if login is not None else "")
                + " after we had given up on it"
                + (f" ({delay:.1f} s after it)" if delay is not None else "")
                + ("; our RLRQ/DISC end that association" if accepted else ""),
                frames, result="accepted" if accepted else "rejected", delay=delay,
                client_sap=client_sap,
                request_frame=frames[0] if len(frames) == 2 else None, answer_frame=index,
                login_step=login.step_id if login is not None else None))
            if login is not None:
                settle_login(ctx, login, fields, frames, delay)
        else:
            ctx.emit(ctx.finding(
                step_id, "release.late_answer", Severity.WARNING,
                "an answer to an earlier request arrived late (recorded, not acted on)",
                (index,), tag=apdu[:1].hex().upper()))


def settle_login(ctx: ProbeContext, login: UnsettledLogin, fields: dict[str, object],
                 frames: tuple[int, ...], delay: float | None) -> None:
    """A login recorded as "no-answer" got its AARE late: the ledger, the session's logins and
    the login's rung now say what the meter answered. A refused secret is then known refused
    (never sent again); an accepted one is not a failure."""
    attempt = login.attempt
    accepted = fields.get("result") == 0
    outcome = "accepted" if accepted else "rejected"
    diag_name = "" if accepted else str(fields.get("diagnostic_name", ""))
    ctx.budget.settle(attempt, outcome, diag_name)
    ctx.emit(LoginAttempted(login.step_id, ctx.now(), attempt.credential, attempt.client_sap,
                            attempt.mechanism, outcome, diag_name, settles=True))
    who = {"client_sap": attempt.client_sap, "mechanism": attempt.mechanism,
           "credential": attempt.credential}
    late = f"its AARE came {delay:.2f} s after the AARQ" if delay is not None else (
        "its AARE came late")
    if accepted:
        ctx.emit(ctx.finding(login.step_id, "assoc.accepted", Severity.INFO,
                             f"association accepted for client {attempt.client_sap} "
                             f"({attempt.mechanism}), late", frames,
                             max_pdu_size=fields.get("max_pdu_size"),
                             conformance=fields.get("conformance"), late=True, **who))
        summary = f"accepted, slowly: {late}, after the run had given up on it" + (
            " (the password is right)" if attempt.mechanism != "none" else "")
        status = StepStatus.WARNING
    else:
        text = report_refusal(ctx, login.step_id, fields, frames, who)
        summary, status = f"rejected ({late}): {text}", StepStatus.FAILED
    ctx.emit(ctx.finished(login.step_id, status, summary, result=fields.get("result"),
                          diagnostic=fields.get("diagnostic"), late=True,
                          delay=delay, **who))
