"""The login budget: the policy over the ledger (``ledger.py`` is the storage).

What is counted, the default numbers and when a secret is not sent again live here; one
``LoginBudget`` guards one run. See docs/probes.md "Safety" for the rules as users see them.

- at most ``per_set`` failed logins per credential set per run (default 1);
- at most ``max_failures`` failed logins per meter within ``window`` seconds, counting earlier
  runs;
- after an authentication failure (AARE diagnostic 13) no password is tried again on that client
  SAP in this run;
- after a lockout signature, nothing more is tried at all.

Raising a limit is explicit (the options), never automatic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlmsdoctor.ledger import Attempt, LoginLedger


@dataclass
class Verdict:
    allowed: bool
    code: str = ""  # login.budget, login.sap_blocked, login.lockout
    reason: str = ""
    data: dict[str, object] = field(default_factory=dict)


class LoginBudget:
    """The per-run login guard over a ledger."""

    def __init__(
        self,
        ledger: LoginLedger,
        meter: str,
        *,
        per_set: int = 1,
        max_failures: int = 3,
        window: float = 900.0,
    ) -> None:
        self.ledger = ledger
        self.meter = meter
        self.per_set = per_set
        self.max_failures = max_failures
        self.window = window
        self.failed_by_set: dict[str, int] = {}
        self.blocked_saps: set[int] = set()
        self.locked_out = False

    def check(self, credential: str, client_sap: int, mechanism: str) -> Verdict:
        if mechanism == "none":
            return Verdict(True)  # no password, nothing to lose
        if self.locked_out:
            return Verdict(False, "login.lockout", "the meter showed a lockout sign this run")
        if client_sap in self.blocked_saps:
            return Verdict(False, "login.sap_blocked",
                           f"an earlier login on client SAP {client_sap} failed with "
                           "authentication-failure; no further password is tried on it",
                           {"client_sap": client_sap})
        if self.per_set <= 0:
            return Verdict(False, "login.budget",
                           "password logins are turned off (a failed-login budget of 0)",
                           {"credential": credential, "limit": 0})
        if self.failed_by_set.get(credential, 0) >= self.per_set:
            return Verdict(False, "login.budget",
                           f"credential set {credential!r} already failed {self.per_set} time(s) "
                           "this run", {"credential": credential, "limit": self.per_set})
        recent = self.ledger.recent_failures(self.meter, self.window)
        if len(recent) >= self.max_failures:
            return Verdict(False, "login.budget",
                           f"{len(recent)} failed logins on this meter in the last "
                           f"{self.window / 60:g} min (limit {self.max_failures}); wait, or raise "
                           "it explicitly (probe --meter-login-budget)",
                           {"credential": credential, "failures_in_window": len(recent),
                            "window": self.window, "limit": self.max_failures})
        return Verdict(True)

    def record(self, credential: str, client_sap: int, mechanism: str, outcome: str,
               diagnostic: str = "") -> Attempt:
        attempt = Attempt(self.meter, self.ledger.wall(), credential, client_sap, mechanism,
                          outcome, diagnostic)
        self.ledger.record(attempt)
        if attempt.failed:
            self.failed_by_set[credential] = self.failed_by_set.get(credential, 0) + 1
        if diagnostic == "authentication-failure":
            self.blocked_saps.add(client_sap)
        return attempt

    def recent_failures(self) -> list[Attempt]:
        return self.ledger.recent_failures(self.meter, self.window)
