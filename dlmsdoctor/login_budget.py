"""The login budget: the policy over the ledger (``ledger.py`` is the storage).

What is counted, the default numbers and when a secret is not sent again live here; one
``LoginBudget`` guards one run. See docs/probes.md "Safety" for the rules as users see them.

- at most ``per_run`` failed password logins per run, across all credential sets (default 1);
- at most ``per_set`` failed logins per credential set per run (default 1);
- at most ``max_failures`` failed logins per meter within ``window`` seconds, counting earlier
  runs (default 2: the lowest lockout threshold seen in the field is 3, so the tool alone never
  reaches it);
- a secret the meter refused with authentication-failure (its fingerprint is in the ledger) is
  not sent again, in this run or a later one, unless ``retry_rejected`` (``--retry-rejected``);
- after an authentication failure (AARE diagnostic 13) no password is tried again on that client
  SAP in this run;
- after a lockout signature, nothing more is tried at all;
- a ledger that cannot be read, written or locked means no password login at all (failures
  could not be counted), unless ``ignore_ledger_errors`` (``--ignore-ledger-errors``).

Concurrency: ``slot()`` holds the ledger's exclusive lock from the check through the login to
its record, so concurrent runs (in one process or several) share one budget per meter.

Raising a limit is explicit (the options), never automatic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dlmsdoctor.ledger import Attempt, LedgerUnavailableError, LoginLedger, fingerprint_secret

if TYPE_CHECKING:
    from dlmsdoctor.config import Credential

DEFAULT_PER_RUN = 1
DEFAULT_PER_SET = 1
DEFAULT_MAX_FAILURES = 2
DEFAULT_WINDOW = 900.0


@dataclass
class Verdict:
    allowed: bool
    # login.budget, login.sap_blocked, login.lockout, login.already_rejected,
    # login.ledger_unavailable (refused, or allowed with a warning when overridden)
    code: str = ""
    reason: str = ""
    data: dict[str, object] = field(default_factory=dict)


def clock_text(at: float, now: float | None = None) -> str:
    """A wall time as a technician reads it: ``14:02`` today, ``2026-12-01 14:02`` otherwise
    (local time)."""
    moment = time.localtime(at)
    today = time.localtime(time.time() if now is None else now)
    if moment[:3] == today[:3]:
        return time.strftime("%H:%M", moment)
    return time.strftime("%Y-%m-%d %H:%M", moment)


def secret_of(cred: Credential) -> str | None:
    """What a credential set risks when sent: the LLS password, or the HLS keys; None for none."""
    if cred.auth == "low":
        return cred.password or ""
    if cred.auth == "gmac":
        return "|".join((cred.authentication_key or "", cred.block_cipher_key or "",
                         cred.system_title or ""))
    return None


@dataclass
class LoginSlot:
    """One password login admitted (or not) under the ledger lock."""

    verdict: Verdict
    fingerprint: str = ""
    sent: bool = False  # the AARQ went out: an outcome must be recorded
    recorded: bool = False


class LoginBudget:
    """The per-run login guard over a ledger."""

    def __init__(
        self,
        ledger: LoginLedger,
        meter: str,
        *,
        per_set: int = DEFAULT_PER_SET,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window: float = DEFAULT_WINDOW,
        per_run: int = DEFAULT_PER_RUN,
        run_id: str = "",
        retry_rejected: bool = False,
        ignore_ledger_errors: bool = False,
    ) -> None:
        self.ledger = ledger
        self.meter = meter
        self.per_set = per_set
        self.per_run = per_run
        self.max_failures = max_failures
        self.window = window
        self.run_id = run_id
        self.retry_rejected = retry_rejected
        self.ignore_ledger_errors = ignore_ledger_errors
        self.failed_by_set: dict[str, int] = {}
        self.failed_this_run = 0
        self.blocked_saps: set[int] = set()
        self.locked_out = False
        # the ledger's failure, once met: no password login from then on (unless overridden)
        self.unavailable: LedgerUnavailableError | None = None

    # -- the checks ------------------------------------------------------------------------------
    def check(self, credential: str, client_sap: int, mechanism: str) -> Verdict:
        """The rules that need no secret (fast; no lock)."""
        if mechanism == "none":
            return Verdict(True)  # no password, nothing to lose
        if self.locked_out:
            return Verdict(False, "login.lockout", "the meter showed a lockout sign this run")
        if client_sap in self.blocked_saps:
            return Verdict(False, "login.sap_blocked",
                           f"an earlier login on client SAP {client_sap} failed with "
                           "authentication-failure; no further password is tried on it",
                           {"client_sap": client_sap})
        if self.per_set <= 0 or self.per_run <= 0:
            return Verdict(False, "login.budget",
                           "password logins are turned off (a failed-login budget of 0)",
                           {"credential": credential, "limit": 0})
        if self.failed_this_run >= self.per_run:
            return Verdict(False, "login.budget",
                           f"{self.failed_this_run} failed login(s) in this run already (limit "
                           f"{self.per_run} per run; raise it explicitly with probe "
                           "--run-login-budget)",
                           {"credential": credential, "limit": self.per_run, "scope": "run",
                            "failures_in_run": self.failed_this_run})
        if self.failed_by_set.get(credential, 0) >= self.per_set:
            return Verdict(False, "login.budget",
                           f"credential set {credential!r} already failed {self.per_set} time(s) "
                           "this run", {"credential": credential, "limit": self.per_set,
                                        "scope": "set"})
        if self.unavailable is not None and not self.ignore_ledger_errors:
            return self._unavailable_verdict(self.unavailable)
        try:
            recent = self.ledger.recent_failures(self.meter, self.window)
        except LedgerUnavailableError as exc:
            return self._ledger_failed(exc)
        if len(recent) >= self.max_failures:
            times = ", ".join(clock_text(a.at) for a in recent[-3:])
            return Verdict(False, "login.budget",
                           f"{len(recent)} failed logins on this meter in the last "
                           f"{self.window / 60:g} min (at {times}; limit {self.max_failures}); "
                           "wait, or raise it explicitly (probe --meter-login-budget)",
                           {"credential": credential, "failures_in_window": len(recent),
                            "window": self.window, "limit": self.max_failures,
                            "scope": "meter", "failed_at": [a.at for a in recent]})
        return Verdict(True)

    async def admit(self, cred: Credential) -> LoginSlot:
        """Every rule, the secret's own history included; the fingerprint to record with it.
        Call it with the ledger locked (``slot``) so that the answer still holds at the send."""
        verdict = self.check(cred.name, cred.client_sap, cred.auth)
        secret = secret_of(cred)
        if not verdict.allowed or secret is None:
            return LoginSlot(verdict)
        if self.unavailable is None:
            try:
                self.ledger.check_writable()
            except LedgerUnavailableError as exc:
                verdict = self._ledger_failed(exc)
                if not verdict.allowed:
                    return LoginSlot(verdict)
        try:
            # pbkdf2 is slow on purpose (~0.1 s): off the event loop, whose clock times answers
            earlier = await asyncio.to_thread(self.ledger.rejected_secret, self.meter,
                                              cred.client_sap, cred.auth, secret)
        except LedgerUnavailableError as exc:
            verdict = self._ledger_failed(exc)
            if not verdict.allowed:
                return LoginSlot(verdict)
            earlier = None
        if earlier is not None and not self.retry_rejected:
            when = clock_text(earlier.at)
            return LoginSlot(Verdict(
                False, "login.already_rejected",
                f"this meter already rejected this very secret at {when} (local time, "
                "authentication failure); it is not sent again: --retry-rejected to try it "
                "again", {"credential": cred.name, "client_sap": cred.client_sap,
                         "mechanism": cred.auth, "rejected_at": earlier.at,
                         "rejected_at_text": when, "run": earlier.run,
                         "this_run": bool(earlier.run) and earlier.run == self.run_id}))
        fingerprint = await asyncio.to_thread(fingerprint_secret, secret, meter=self.meter,
                                              client_sap=cred.client_sap, mechanism=cred.auth)
        return LoginSlot(verdict, fingerprint)

    @contextlib.asynccontextmanager
    async def slot(self, cred: Credential,
                   cancel: asyncio.Event | None = None) -> AsyncIterator[LoginSlot]:
        """Hold the ledger's lock from the check through the login to its record.

        Yields the admitted (or refused) ``LoginSlot``; a slot whose AARQ went out but whose
        outcome was never recorded (cancelled half-way) is recorded as ``no-answer`` on exit:
        a failure for the budget, the safe side. Waiting for the lock (another run holds it)
        ends when ``cancel`` is set: the slot is then refused (code ``login.cancelled``)."""
        if secret_of(cred) is None:
            yield LoginSlot(self.check(cred.name, cred.client_sap, cred.auth))
            return
        locked: contextlib.AbstractAsyncContextManager[None] = contextlib.nullcontext()
        if self.unavailable is None:
            locked = self.ledger.lock()
        try:
            if not await _enter(locked, cancel):
                yield LoginSlot(Verdict(False, "login.cancelled", "cancelled while another run "
                                        "held the login ledger"))
                return
        except LedgerUnavailableError as exc:
            verdict = self._ledger_failed(exc)
            if not verdict.allowed:
                yield LoginSlot(verdict)
                return
            locked = contextlib.nullcontext()
        try:
            slot = await self.admit(cred)
            try:
                yield slot
            finally:
                if slot.sent and not slot.recorded:
                    self.record(cred.name, cred.client_sap, cred.auth, "no-answer",
                                fingerprint=slot.fingerprint)
        finally:
            await locked.__aexit__(None, None, None)

    # -- the record ------------------------------------------------------------------------------
    def record(self, credential: str, client_sap: int, mechanism: str, outcome: str,
               diagnostic: str = "", *, fingerprint: str = "") -> Attempt:
        attempt = Attempt(self.meter, self.ledger.wall(), credential, client_sap, mechanism,
                          outcome, diagnostic, fingerprint=fingerprint, run=self.run_id)
        if attempt.failed:
            self.failed_by_set[credential] = self.failed_by_set.get(credential, 0) + 1
            self.failed_this_run += 1
        if diagnostic == "authentication-failure":
            self.blocked_saps.add(client_sap)
        try:
            self.ledger.record(attempt)
        except LedgerUnavailableError as exc:
            if mechanism != "none":  # a public login risks nothing: its record may be lost
                self.unavailable = exc
        return attempt

    def settle(self, earlier: Attempt, outcome: str, diagnostic: str = "") -> Attempt:
        """What the meter answered to a login recorded as ``no-answer``: its AARE came later in
        the run. One more line settles the earlier one (``Attempt.settles``), so that a refused
        secret is known refused (never sent again) and an accepted one is not counted as a
        failure by later runs. This run's own counts stay as they were (the safe side)."""
        attempt = Attempt(self.meter, self.ledger.wall(), earlier.credential, earlier.client_sap,
                          earlier.mechanism, outcome, diagnostic, fingerprint=earlier.fingerprint,
                          run=earlier.run, settles=earlier.at)
        if diagnostic == "authentication-failure":
            self.blocked_saps.add(earlier.client_sap)
        try:
            self.ledger.record(attempt)
        except LedgerUnavailableError as exc:
            self.unavailable = exc
        return attempt

    def recent_failures(self) -> list[Attempt]:
        return self.ledger.recent_failures(self.meter, self.window)

    def own_failures(self) -> list[dict[str, object]]:
        """This tool's failed logins on this meter in the window, for a lockout verdict: when,
        which credential set, and whether this run or an earlier one made them. Failures by
        other clients (a poller) are not in the ledger; the findings say so."""
        try:
            failed = self.recent_failures()
        except LedgerUnavailableError:
            return []
        return [{"at": a.at, "at_text": clock_text(a.at), "credential": a.credential,
                 "client_sap": a.client_sap, "mechanism": a.mechanism, "outcome": a.outcome,
                 "diagnostic": a.diagnostic, "run": a.run,
                 "this_run": bool(a.run) and a.run == self.run_id} for a in failed]

    # -- the ledger failing ----------------------------------------------------------------------
    def _ledger_failed(self, exc: LedgerUnavailableError) -> Verdict:
        self.unavailable = exc
        if self.ignore_ledger_errors:
            return Verdict(True, "login.ledger_unavailable",
                           f"{exc} (ignored as asked: --ignore-ledger-errors; failures of this "
                           "run are not remembered)", _ledger_data(exc, ignored=True))
        return self._unavailable_verdict(exc)

    @staticmethod
    def _unavailable_verdict(exc: LedgerUnavailableError) -> Verdict:
        return Verdict(False, "login.ledger_unavailable",
                       f"{exc}: failed logins cannot be counted, so no password is sent. Fix: "
                       f"make {exc.path} a file you can read and write (check its owner and "
                       "mode; remove what stands in its place), or pass --ignore-ledger-errors "
                       "to log in anyway", _ledger_data(exc, ignored=False))


async def _enter(locked: contextlib.AbstractAsyncContextManager[None],
                 cancel: asyncio.Event | None) -> bool:
    """Enter ``locked``; False (and not held) when ``cancel`` is set first."""
    if cancel is None:
        await locked.__aenter__()
        return True
    enter = asyncio.ensure_future(locked.__aenter__())
    stop = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({enter, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if not enter.done():
        enter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await enter
    if enter.cancelled():
        return False
    enter.result()  # LedgerUnavailableError, if that is how it ended
    if cancel.is_set():  # had it, but the run is cancelled: give it back
        await locked.__aexit__(None, None, None)
        return False
    return True


def _ledger_data(exc: LedgerUnavailableError, *, ignored: bool) -> dict[str, object]:
    return {"path": str(exc.path), "problem": exc.message, "ignored": ignored}
