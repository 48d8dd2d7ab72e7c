"""The lockout guard: stop the run at the first sign that the meter locks us out.

The signature (DOMAIN.md section 3, and the field report this tool exists for): after a failed
login, connections are closed by the meter at once, before any answer. Hammering on then only
prolongs the lockout. A failed login counts whether it happened in this run or, per the ledger,
in a recent run (the user's poller may have spent them too, but we only know ours).
"""

from __future__ import annotations

from dlmsdoctor.codec.model import Severity
from dlmsdoctor.probes import wire
from dlmsdoctor.probes.base import ProbeContext, RunStopped


def check_lockout(ctx: ProbeContext, step_id: str, reply: wire.Reply, *,
                  discount: int = 0) -> None:
    """Raise ``RunStopped("lockout")`` when a close-at-once follows failed logins.

    ``discount``: failed logins to leave out, namely the attempt whose own answer was the
    close (a meter may close instead of sending a rejecting AARE: one such close is no sign)."""
    if reply.closed is None or not reply.closed.by_peer:
        return
    recent = ctx.budget.recent_failures()
    if max(ctx.facts.failed_logins, len(recent)) - discount <= 0:
        return
    ctx.budget.locked_out = True
    ctx.facts.stop_reason = "lockout"
    ctx.emit(ctx.finding(
        step_id, "login.lockout", Severity.ERROR,
        "The meter drops the connection at once after failed logins: it is most likely locking "
        "this client out. dlmsdoctor stops here. Pause every poller, wait out the lockout (or "
        "reset the meter), and check the password and client SAP before the next try.",
        failed_logins_recent=len(recent) + (0 if recent else ctx.facts.failed_logins),
        how=reply.closed.how.value))
    raise RunStopped("lockout")
