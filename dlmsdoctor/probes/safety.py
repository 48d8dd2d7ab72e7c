"""The lockout guard: stop at a proven lockout sign, hold passwords back at a plausible one.

A close by the meter right after our first frame, no byte back, has several causes (DOMAIN.md
section 3): a wrong framing, a login lockout, the meter's single session taken by another
client, a firewall proxy. The field report this tool exists for (ESTADO_MEDIDOR_2) read it as
"locked, power-cycle the meter" while the team's own poller held the only session. So:

- the run STOPS (``login.lockout``) only on stronger evidence: a failed password login earlier
  in THIS run (the meter answered, then drops us after our failure), or several failed logins in
  the ledger's window with no association accepted since (a meter counting failures);
- any other drop while failed logins are known (this run or the ledger) is a plausible lockout:
  ``target.closed_at_once`` lists the candidates, the safe probes go on (public client, no
  password), and password logins are held back (``safety.logins_held_back`` at each login rung)
  until a connection opened after the drop gets a DLMS answer: the meter then takes clients
  again, and the login budget is the guard as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlmsdoctor.codec.model import Severity
from dlmsdoctor.ledger import LedgerUnavailableError
from dlmsdoctor.probes import wire
from dlmsdoctor.probes.base import HeldBack, ProbeContext, RunStopped

# Failed logins in the ledger, none accepted since, that make a drop a lockout sign by
# themselves. One is not enough: a single earlier failure plus a close is exactly what a meter
# whose session another client holds shows.
LEDGER_FAILURES_FOR_LOCKOUT = 2

# What a close at once may mean, most common in the field first (the diagnosis ranks them).
CLOSE_CANDIDATES = ("session_taken", "lockout", "wrong_framing", "proxy")


@dataclass(frozen=True)
class DropEvidence:
    """What the guard knows when the meter drops a connection."""

    failed_run: int  # failed password logins earlier in this run (the close's own left out)
    failed_recent: int  # failed logins on this meter in the ledger's window (any run)
    failed_since_success: int  # of those, the ones after the last accepted association
    last_failure_age: float | None  # seconds since the newest failed login in the window
    login_tried: bool  # a password login was attempted in this run

    @property
    def proven(self) -> bool:
        return (self.failed_run > 0
                or self.failed_since_success >= LEDGER_FAILURES_FOR_LOCKOUT)

    @property
    def plausible(self) -> bool:
        return self.failed_run > 0 or self.failed_recent > 0


def weigh(ctx: ProbeContext, discount: int = 0) -> DropEvidence:
    budget = ctx.budget
    try:
        attempts = budget.ledger.attempts(budget.meter, budget.ledger.wall() - budget.window)
    except LedgerUnavailableError:
        attempts = []  # unreadable: only this run's own failures are known (and no password
        # is sent while the ledger is unusable)
    failed = [a for a in attempts if a.failed]
    since = 0
    for attempt in attempts:  # the ledger is in time order (append-only)
        # Only a password accepted clears the count: a public (no authentication) association
        # says nothing about the passwords that keep failing, and meters count them apart.
        if attempt.outcome == "accepted" and attempt.mechanism != "none":
            since = 0
        elif attempt.failed:
            since += 1
    newest = max((a.at for a in failed), default=None)
    return DropEvidence(
        failed_run=max(0, ctx.facts.failed_logins - discount),
        failed_recent=len(failed),
        # the close's own attempt is in the ledger already: left out here too
        failed_since_success=max(0, since - discount),
        last_failure_age=None if newest is None else round(budget.ledger.wall() - newest, 1),
        login_tried=ctx.facts.logins_tried > 0,
    )


def check_lockout(ctx: ProbeContext, step_id: str, reply: wire.Reply, *,
                  discount: int = 0) -> None:
    """Judge a close by the peer: raise ``RunStopped("lockout")`` on a proven lockout sign,
    hold password logins back on a plausible one, else nothing.

    ``discount``: failed logins to leave out, namely the attempt whose own answer was the
    close (a meter may close instead of sending a rejecting AARE: one such close is no sign)."""
    if reply.closed is None or not reply.closed.by_peer:
        return
    evidence = weigh(ctx, discount)
    how = reply.closed.how.value
    if evidence.proven:
        _stop(ctx, step_id, evidence, how)
    if not evidence.plausible:
        return
    conn_id = ctx.channel.conn_id if ctx.channel is not None else ctx.facts.conn_count
    first = ctx.facts.held_back is None
    ctx.facts.held_back = HeldBack(step_id, conn_id, evidence.failed_run,
                                   evidence.failed_recent)
    if not first:
        return  # already said; the hold now dates from this later drop
    own = ctx.budget.own_failures()
    ctx.emit(ctx.finding(
        step_id, "target.closed_at_once", Severity.WARNING,
        "The meter dropped the connection at once, and failed logins are known "
        f"({evidence.failed_recent} in the login ledger's window, {evidence.failed_run} in this "
        f"run{_own_text(own)}). dlmsdoctor's own failed logins may have locked the meter; but "
        "that is NOT proven: another client holding the meter's single session (often the "
        "site's own poller), a wrong framing or a proxy look the same. dlmsdoctor goes on with "
        "safe probes only and holds password logins back.",
        how=how, conn_id=conn_id, failed_logins_run=evidence.failed_run,
        failed_logins_recent=evidence.failed_recent,
        failed_since_success=evidence.failed_since_success,
        last_failure_age=evidence.last_failure_age, login_tried=evidence.login_tried,
        candidates=list(CLOSE_CANDIDATES), logins_held_back=True, own_failures=own,
        own_failures_earlier_runs=sum(1 for x in own if not x["this_run"])))


def _own_text(own: list[dict[str, object]]) -> str:
    """``: dlmsdoctor's at 14:02 (an earlier run) and 14:03 (this run)``; failures by other
    clients (a poller) are not in the ledger and cannot be listed."""
    if not own:
        return ""
    parts = [f"{x['at_text']} ({'this run' if x['this_run'] else 'an earlier run'})"
             for x in own[-4:]]
    return "; dlmsdoctor's own failed logins at " + ", ".join(parts)


def held_back(ctx: ProbeContext) -> HeldBack | None:
    """The active hold on password logins, if any. It ends when a connection opened after the
    drop got a DLMS answer to our frame: the meter takes clients again (a wrong framing found,
    the other client gone), and the login budget guards the passwords as usual."""
    hold = ctx.facts.held_back
    if hold is not None and ctx.facts.answered_conn > hold.conn_id:
        ctx.facts.held_back = hold = None
    return hold


def _stop(ctx: ProbeContext, step_id: str, evidence: DropEvidence, how: str) -> None:
    ctx.budget.locked_out = True
    ctx.facts.stop_reason = "lockout"
    own = ctx.budget.own_failures()
    if evidence.failed_run > 0:
        why = (f"after {evidence.failed_run} failed login(s) in this run, the meter now drops "
               "the connection at once")
    else:
        why = (f"{evidence.failed_since_success} failed logins in the login ledger's window, "
               "none accepted since, and now the meter drops the connection at once")
    by_us = (" These failed logins were dlmsdoctor's own" + _own_text(own)[len(
        "; dlmsdoctor's own failed logins"):] + ": this tool may have caused the lockout."
             if own else "")
    ctx.emit(ctx.finding(
        step_id, "login.lockout", Severity.ERROR,
        f"Lockout signature: {why}.{by_us} dlmsdoctor stops here and spends no password. Pause "
        "every poller (another client holding the meter's only session looks the same), wait "
        "out the lockout, and check the password and client SAP before the next try.",
        failed_logins_recent=evidence.failed_recent or evidence.failed_run,
        failed_logins_run=evidence.failed_run,
        failed_since_success=evidence.failed_since_success, how=how, own_failures=own,
        own_failures_earlier_runs=sum(1 for x in own if not x["this_run"])))
    raise RunStopped("lockout")
