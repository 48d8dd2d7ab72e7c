"""Rungs 6 and 7: associations. The public client (16, no authentication) first, then one
association per credential set, each AARE result and diagnostic put into plain words.

Passwords are spent only here, and only within the login budget (``LoginBudget``): one failed
login per credential set per run, a small total per meter per window, none after an
authentication failure on the same client SAP, nothing after a lockout sign.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.codec.model import Severity
from dlmsdoctor.config import Credential
from dlmsdoctor.events import Event, LoginAttempted, StepStatus
from dlmsdoctor.login_budget import LoginSlot, Verdict
from dlmsdoctor.probes import apdus, hdlc, wire
from dlmsdoctor.probes.base import PendingAarq, Probe, ProbeContext, UnsettledLogin
from dlmsdoctor.probes.late import report_late, report_refusal
from dlmsdoctor.probes.safety import check_lockout, held_back
from dlmsdoctor.probes.tcp import ensure_connection, report_close

if TYPE_CHECKING:
    from dlmsdoctor.gx.client import GxClient

PUBLIC = Credential("public", 16, "none")
# The step the frames that close the previous association belong to (the same value as
# diagnosis/steps.PREVIOUS_RELEASE, which the reports title "Release of the previous
# association"): not the login that sends them first.
PREVIOUS_RELEASE = "release.previous"
# Client system title for HLS-GMAC when the credential set has none (8 bytes, FLAG-style
# 3 letters + 5 bytes); a fixed value so a meter's log shows the same client every run.
DEFAULT_CLIENT_SYSTEM_TITLE = "444C440000000001"



@dataclass
class AssocResult:
    outcome: str  # accepted, rejected, no-answer, closed, link-refused, no-connection
    fields: dict[str, object] = field(default_factory=dict)
    frames: list[int] = field(default_factory=list)
    reply: wire.Reply | None = None
    request_index: int = -1  # the AARQ (its last segment): what the AARE answers
    waited: float = 0.0  # the wait for the AARE; a later one is late
    listened: float = 0.0  # the whole time spent waiting, late listening included
    late: bool = False  # the AARE came after the wait (the meter is slow)
    delay: float | None = None  # AARQ to AARE, seconds

    @property
    def diagnostic_name(self) -> str:
        return str(self.fields.get("diagnostic_name", "")) if self.outcome == "rejected" else ""


def pending_aarq(ctx: ProbeContext) -> PendingAarq | None:
    """The AARQ whose outcome is unknown, if the meter may still accept it: not when the port
    turned out to speak the other framing (a port speaks one; the other's bytes are ignored)."""
    pending = ctx.facts.assoc_pending
    if pending is None:
        return None
    if ctx.facts.framing is not None and ctx.facts.framing != pending.framing:
        ctx.facts.assoc_pending = None
        return None
    return pending


async def release_association(ctx: ProbeContext, step_id: str,
                              timeout: float | None = None) -> bool:
    """RLRQ for the open association, and for an AARQ that got no answer (the meter may have
    accepted it late). True when an RLRE came back, or when there was nothing to release."""
    facts = ctx.facts
    pending = pending_aarq(ctx)
    if (facts.associated_sap is None and pending is None) or wire.peer_closed(ctx):
        facts.associated_sap = facts.assoc_pending = None
        return True
    sap = facts.associated_sap if facts.associated_sap is not None else (
        pending.client_sap if pending is not None else 0)
    framing = facts.framing if facts.associated_sap is not None or pending is None else (
        pending.framing)
    if timeout is None:
        timeout = ctx.release_wait() if ctx.releasing else None
    speculative = facts.associated_sap is None  # only an unanswered AARQ to end
    got = await wire.exchange_apdu(ctx, step_id, apdus.build_rlrq(), sap, timeout, framing)
    report_late(ctx, step_id, got.late)
    facts.associated_sap = facts.assoc_pending = None
    ok = got.apdu is not None and got.apdu[:1] == b"\x63"
    if not ok and not speculative:
        ctx.emit(ctx.finding(step_id, "release.rlrq_no_answer", Severity.WARNING,
                             "no RLRE to our release request", tuple(got.frames)))
    return ok


async def prepare_link(ctx: ProbeContext, step_id: str, client_sap: int) -> str | None:
    """Make the link ready for an AARQ from ``client_sap``; None when ready, else the reason."""
    facts = ctx.facts
    # What closes the previous association (RLRQ/RLRE, DISC/UA) is filed under that release,
    # not under this login: the login's own frames begin with its SNRM (or AARQ).
    await release_association(ctx, PREVIOUS_RELEASE)
    if facts.framing == "wrapper":
        return None if await ensure_connection(ctx, step_id) else "no connection"
    server = facts.server or ctx.options.first_server()
    if facts.link_client_sap == client_sap and not wire.peer_closed(ctx):
        return None
    if facts.link_client_sap is not None and not wire.peer_closed(ctx):
        await hdlc.disc(ctx, PREVIOUS_RELEASE, server, facts.link_client_sap)
    answer = await hdlc.snrm(ctx, step_id, server, client_sap)
    if answer.outcome == "ua":
        return None
    if answer.closed_at_once and answer.reply is not None:
        check_lockout(ctx, step_id, answer.reply)
    return f"SNRM for client {client_sap}: {answer.outcome}"


class HlsUnavailable(Exception):
    """HLS-GMAC cannot be run with this credential set (bad keys, gurux refused)."""


def _gmac_client(ctx: ProbeContext, cred: Credential) -> GxClient:
    from dlmsdoctor.gx.client import GxClient, GxClientError  # gurux: import only when needed

    title = cred.system_title or DEFAULT_CLIENT_SYSTEM_TITLE
    logical = ctx.facts.server.logical if ctx.facts.server else 1
    try:
        return GxClient(
            "gmac", client_system_title=bytes.fromhex(title),
            block_cipher_key=bytes.fromhex(cred.block_cipher_key or ""),
            authentication_key=bytes.fromhex(cred.authentication_key or ""),
            client_sap=cred.client_sap, server_address=logical,
        )
    except (GxClientError, ValueError) as exc:
        raise HlsUnavailable(str(exc)) from None


async def associate(
    ctx: ProbeContext, step_id: str, cred: Credential, timeout: float | None = None,
    patient: bool = True,
) -> AssocResult:
    """One AARQ/AARE (and for HLS-GMAC the pass 3/4 exchange).

    ``patient``: after the wait, listen on for a late AARE (``ctx.patience``): a meter that
    takes longer than the wait to log in is slow, not deaf, and its late AARE still settles the
    login (accepted or refused) instead of a password spent on an unknown outcome."""
    hls: GxClient | None = None
    if cred.auth == "gmac":
        hls = _gmac_client(ctx, cred)
        aarq = hls.build_aarq()
    else:
        password = cred.password.encode() if cred.auth == "low" and cred.password else None
        aarq = apdus.build_aarq(password)
    sent_at = ctx.now()
    wait = ctx.service_wait("association") if timeout is None else timeout
    patience = ctx.patience(wait) if patient else 0.0
    if ctx.facts.framing is not None:  # owed an RLRQ from now: a cancel may come at any await
        ctx.facts.assoc_pending = PendingAarq(cred.client_sap, ctx.facts.framing, sent_at)
    got = await wire.exchange_apdu(ctx, step_id, aarq, cred.client_sap, wait,
                                   patience=patience)
    result = AssocResult("no-answer", frames=got.frames, reply=got.reply,
                         request_index=got.answer_to, waited=wait, late=got.answer_late,
                         delay=got.delay, listened=ctx.now() - sent_at)
    # No answer (yet): the meter may still accept it, so the release must RLRQ it as well.
    ctx.facts.assoc_pending = None
    if got.apdu is None and got.reply.closed is None and ctx.facts.framing is not None:
        ctx.facts.assoc_pending = PendingAarq(cred.client_sap, ctx.facts.framing, sent_at,
                                              got.answer_to)
    if got.apdu is not None:
        decoded = decode_apdu(got.apdu)
        result.fields = dict(decoded.fields)
        if decoded.fields.get("apdu_type") == "AARE":
            accepted = decoded.fields.get("result") == 0
            result.outcome = "accepted" if accepted else "rejected"
            if accepted:
                ctx.facts.associated_sap = cred.client_sap
                ctx.facts.associated_name = cred.name
                pdu = decoded.fields.get("max_pdu_size")
                ctx.facts.max_pdu_size = pdu if isinstance(pdu, int) else None
        else:
            result.outcome = "other"
        if hls is not None and result.outcome == "accepted":
            await _hls_pass3(ctx, step_id, hls, got.apdu, result)
    elif got.reply.closed is not None:
        result.outcome = "closed"
        report_close(ctx, step_id, got.reply)
    elif got.reply.frame is not None:
        ftype = got.reply.frame_type
        result.outcome = "link-refused" if ftype in ("DM", "FRMR") else "other"
        if ftype in ("DM", "FRMR"):
            facts = ctx.facts
            facts.assoc_pending = None  # refused at the link layer: the AARQ was not taken
            if ftype == "FRMR" and facts.link_client_sap is not None:
                # FRMR leaves the link in the frame-reject state until SNRM or DISC: the
                # release still owes it a DISC
                facts.link_pending = (facts.server or ctx.options.first_server(),
                                      facts.link_client_sap)
            facts.link_client_sap = None
    return result


async def _hls_pass3(ctx: ProbeContext, step_id: str, hls: GxClient, aare: bytes,
                     result: AssocResult) -> None:
    """HLS pass 3/4: our f(StoC) in an ACTION, the meter's f(CtoS) back. A wrong key fails here
    (the AARE itself says accepted with diagnostic 14 authentication-required)."""
    hls.parse_aare(aare)
    if not hls.hls_pending:
        return
    from dlmsdoctor.gx.client import GxClientError

    try:
        request = hls.build_hls_reply()
    except GxClientError as exc:
        result.outcome, result.fields["hls_error"] = "no-answer", str(exc)
        return
    wait = ctx.service_wait("action")
    got = await wire.exchange_apdu(ctx, step_id, request, ctx.facts.associated_sap or 0, wait,
                                   patience=ctx.patience(wait))
    result.frames += [i for i in got.frames if i not in result.frames]
    if got.apdu is not None and hls.check_hls_response(got.apdu):
        return
    # The association is open but not authenticated: release keeps associated_sap to RLRQ it.
    result.outcome = "rejected" if got.apdu is not None else (
        "closed" if got.reply.closed is not None else "no-answer")
    result.reply = got.reply
    result.fields.update(result=1, diagnostic=13, diagnostic_name="authentication-failure",
                         diagnostic_source="hls-pass-4", result_name="rejected (HLS)")


def report_result(ctx: ProbeContext, step_id: str, cred: Credential,
                  result: AssocResult, slot: LoginSlot | None = None) -> tuple[StepStatus, str]:
    """Findings, LoginAttempted and the ledger entry for one AARQ (with the secret's
    fingerprint from ``slot`` for a password login)."""
    f = result.fields
    frames = tuple(result.frames)
    who = {"client_sap": cred.client_sap, "mechanism": cred.auth, "credential": cred.name}
    outcome = {"accepted": "accepted", "rejected": "rejected", "closed": "closed"}.get(
        result.outcome, "no-answer")
    diag_name = result.diagnostic_name
    ctx.emit(LoginAttempted(step_id, ctx.now(), cred.name, cred.client_sap, cred.auth, outcome,
                            diag_name))
    unavailable = ctx.budget.unavailable
    attempt = ctx.budget.record(cred.name, cred.client_sap, cred.auth, outcome, diag_name,
                                fingerprint=slot.fingerprint if slot is not None else "")
    if (result.outcome == "no-answer" and result.request_index >= 0 and result.reply is not None
            and result.reply.closed is None):
        # the AARE may still come later in the run: it then settles this record
        ctx.unsettled_logins[result.request_index] = UnsettledLogin(step_id, attempt)
    if slot is not None:
        slot.recorded = True
    if ctx.budget.unavailable is not None and unavailable is None and cred.auth != "none":
        exc = ctx.budget.unavailable
        ctx.emit(ctx.finding(
            step_id, "login.ledger_unavailable", Severity.ERROR,
            f"this login could not be recorded: {exc}; no further password is sent in this "
            "run (failures could not be counted)", path=str(exc.path), problem=exc.message,
            ignored=ctx.budget.ignore_ledger_errors, **who))
    if cred.auth != "none":
        ctx.facts.logins_tried += 1
    if result.outcome == "accepted":
        ctx.emit(ctx.finding(step_id, "assoc.accepted", Severity.INFO,
                             f"association accepted for client {cred.client_sap} ({cred.auth})",
                             frames, max_pdu_size=f.get("max_pdu_size"),
                             conformance=f.get("conformance"), **who))
        summary = (f"accepted: client {cred.client_sap}, {cred.auth}, max PDU "
                   f"{f.get('max_pdu_size')}")
        if result.late and result.delay is not None:
            # it works, but a client with this wait would have given up (timing.slow_service)
            return StepStatus.WARNING, (f"{summary}; slowly: the AARE came "
                                        f"{result.delay:.2f} s after the AARQ, later than the "
                                        f"{result.waited:.2f} s wait")
        return StepStatus.OK, summary
    if cred.auth != "none" and outcome != "accepted":
        ctx.facts.failed_logins += 1
    if result.outcome == "rejected":
        return StepStatus.FAILED, f"rejected: {report_refusal(ctx, step_id, f, frames, who)}"
    if result.outcome == "closed":
        if result.reply is not None:
            check_lockout(ctx, step_id, result.reply, discount=1 if cred.auth != "none" else 0)
        return StepStatus.FAILED, "the peer closed the connection after the AARQ"
    if result.outcome == "link-refused":
        ftype = result.reply.frame_type if result.reply else None
        why = ("it rejected the frame (FRMR: an information field longer than it really "
               "takes, whatever its UA said, or a frame not allowed now)" if ftype == "FRMR"
               else "it dropped the HDLC link (an inactivity timeout, or another client took "
               "the session)")
        ctx.emit(ctx.finding(step_id, "assoc.link_refused", Severity.ERROR,
                             f"the meter answered the AARQ with {ftype}: {why}",
                             frames, frame_type=ftype, **who))
        return StepStatus.FAILED, f"{ftype} instead of an AARE"
    if result.outcome == "other":
        ctx.emit(ctx.finding(step_id, "assoc.unexpected", Severity.ERROR,
                             f"an unexpected answer to the AARQ: "
                             f"{result.fields.get('apdu_type', 'not an AARE')}", frames,
                             apdu_type=result.fields.get("apdu_type"), **who))
        return StepStatus.FAILED, "unexpected answer to AARQ"
    listened = result.listened or (result.reply.waited if result.reply else 0.0)
    finding = ctx.finding(step_id, "assoc.no_answer", Severity.ERROR,
                          f"no AARE to our AARQ within {listened:.1f} s (the wait was "
                          f"{result.waited:.1f} s; AARQ too long for the link, or the meter "
                          "needs another context or ciphering)", frames,
                          waited=round(result.waited, 3), listened=round(listened, 3),
                          request_frame=result.request_index, **who)
    if result.request_index >= 0:
        # said at the end of the run, unless the AARE comes late meanwhile (then it is slow)
        ctx.defer(result.request_index, finding)
    else:
        ctx.emit(finding)
    return StepStatus.FAILED, f"no AARE within {listened:.1f} s"


class PublicAssociationProbe(Probe):
    id = "assoc.public"
    title = "Public association (client 16, no authentication)"
    layer = "association"
    requires = ("tcp.connect",)

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if not ctx.options.public:
            return "turned off"
        return _link_missing(ctx)

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        facts = ctx.facts
        if facts.associated_sap == PUBLIC.client_sap:
            yield ctx.finished(self.id, StepStatus.OK,
                               "accepted during framing detection (wrapper)",
                               client_sap=16, mechanism="none")
            return
        problem = await prepare_link(ctx, self.id, PUBLIC.client_sap)
        if problem is not None:
            yield ctx.finished(self.id, StepStatus.FAILED, problem, client_sap=16)
            return
        result = await associate(ctx, self.id, PUBLIC)
        status, summary = report_result(ctx, self.id, PUBLIC, result)
        yield ctx.finished(self.id, status, summary, client_sap=16, mechanism="none",
                           result=result.fields.get("result"),
                           diagnostic=result.fields.get("diagnostic"))


def _link_missing(ctx: ProbeContext) -> str | None:
    facts = ctx.facts
    if facts.framing == "wrapper":
        return None
    if facts.framing == "hdlc" and facts.hdlc_dm and facts.link_client_sap is None:
        return "the meter refuses the HDLC link (DM)"
    if facts.framing == "hdlc" and facts.server_confirmed:
        return None
    return "no working link (framing or server address unknown)"


class LoginProbe(Probe):
    """One association with a user credential set."""

    layer = "association"
    requires = ("tcp.connect",)

    def __init__(self, cred: Credential) -> None:
        self.cred = cred
        self.id = f"assoc.login.{cred.name}"
        self.title = f"Login {cred.name!r} (client {cred.client_sap}, {cred.auth})"

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if self.cred.auth != "none" and held_back(ctx) is not None:
            return None  # run() says why the password is held back (a finding)
        return _link_missing(ctx)

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        cred = self.cred
        who = {"client_sap": cred.client_sap, "mechanism": cred.auth}
        hold = held_back(ctx) if cred.auth != "none" else None
        if hold is not None:
            why = ("the meter dropped a connection at once while failed logins are known: a "
                   "lockout is possible (so is another client holding its session); no "
                   "password is spent until the meter answers again")
            yield ctx.finding(self.id, "safety.logins_held_back", Severity.WARNING,
                              f"login {cred.name!r} not attempted: {why}",
                              credential=cred.name, since_step=hold.step_id,
                              conn_id=hold.conn_id,
                              failed_logins_run=hold.failed_logins_run,
                              failed_logins_recent=hold.failed_logins_recent, **who)
            yield ctx.finished(self.id, StepStatus.SKIPPED, f"held back: {why}",
                               reason="held-back", **who)
            return
        if cred.auth == "gmac":
            try:
                _gmac_client(ctx, cred)
            except HlsUnavailable as exc:
                yield ctx.finding(self.id, "assoc.unsupported", Severity.INFO,
                                  f"HLS-GMAC cannot be run with this credential set ({exc}); "
                                  "no key was used", mechanism="gmac")
                yield ctx.finished(self.id, StepStatus.UNAVAILABLE, f"HLS-GMAC: {exc}", **who)
                return
        # a first look without the lock (no link set up for a login that cannot be sent) ...
        verdict = ctx.budget.check(cred.name, cred.client_sap, cred.auth)
        if not verdict.allowed:
            yield self._refused(ctx, verdict)
            yield ctx.finished(self.id, StepStatus.SKIPPED, verdict.reason,
                               reason=_skip_reason(verdict), **who)
            return
        problem = await prepare_link(ctx, self.id, cred.client_sap)
        if problem is not None:
            yield ctx.finished(self.id, StepStatus.FAILED, problem, **who)
            return
        # ... then the whole check, the login and its record under the ledger's lock: runs
        # against the same meter, here or in other processes, share one budget
        async with ctx.budget.slot(cred, ctx.cancel) as slot:
            ctx.check_cancel()  # cancelled while another run held the ledger
            verdict = slot.verdict
            if verdict.code == "login.ledger_unavailable" and verdict.allowed:
                yield ctx.finding(self.id, verdict.code, Severity.WARNING, verdict.reason,
                                  **verdict.data)
            if not verdict.allowed:
                yield self._refused(ctx, verdict)
                yield ctx.finished(self.id, StepStatus.SKIPPED, verdict.reason,
                                   reason=_skip_reason(verdict), **who)
                return
            slot.sent = True
            result = await associate(ctx, self.id, cred)
            status, summary = report_result(ctx, self.id, cred, result, slot)
        yield ctx.finished(self.id, status, summary, result=result.fields.get("result"),
                           diagnostic=result.fields.get("diagnostic"), **who)

    def _refused(self, ctx: ProbeContext, verdict: Verdict) -> Event:
        severity = Severity.ERROR if verdict.code == "login.ledger_unavailable" else (
            Severity.WARNING)
        return ctx.finding(self.id, verdict.code, severity,
                           f"login {self.cred.name!r} not attempted: {verdict.reason}",
                           **verdict.data)


def _skip_reason(verdict: Verdict) -> str:
    return {"login.already_rejected": "already-rejected",
            "login.ledger_unavailable": "ledger-unavailable"}.get(verdict.code, "budget")
