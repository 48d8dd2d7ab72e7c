"""The login ledger: every login attempt on a meter, kept on disk so that runs add up.

A wrong password costs: meters count failures and lock the client out (DOMAIN.md section 3 and
4). The ledger is JSON lines under the data dir (``ledger.jsonl``), one attempt per line, keyed
by meter (``host:port`` + server address). ``LoginBudget`` is the per-run guard built on it:

- at most ``per_set`` failed logins per credential set per run (default 1);
- at most ``max_failures`` failed logins per meter within ``window`` seconds (default 3 / 15 min),
  counting earlier runs;
- after an authentication failure (AARE diagnostic 13) no password is tried again on that client
  SAP in this run;
- after a lockout signature, nothing more is tried at all.

Raising a limit is explicit (the options), never automatic. A damaged ledger line is skipped,
never fatal: the ledger is a safety net, not a source of crashes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dlmsdoctor import paths

FAILED_OUTCOMES = frozenset({"rejected", "closed", "no-answer"})


@dataclass(frozen=True)
class Attempt:
    meter: str  # "host:port/L/P"
    at: float  # Unix time
    credential: str
    client_sap: int
    mechanism: str
    outcome: str  # accepted, rejected, no-answer, closed
    diagnostic: str = ""

    @property
    def failed(self) -> bool:
        # Only password logins count against the budget; a public (no-auth) AARQ spends nothing.
        return self.mechanism != "none" and self.outcome in FAILED_OUTCOMES


def meter_key(host: str, port: int, logical: int | None = None, physical: int | None = None) -> str:
    server = "" if logical is None else f"/{logical}/{'' if physical is None else physical}"
    host_part = f"[{host}]" if ":" in host else host
    return f"{host_part}:{port}{server}"


class LoginLedger:
    """Append-only JSON lines of attempts. ``path=None``: the data dir's ``ledger.jsonl``."""

    def __init__(self, path: Path | None = None, *, wall: Callable[[], float] = time.time):
        self.path = path or paths.ledger_file()
        self.wall = wall

    def attempts(self, meter: str | None = None, since: float | None = None) -> list[Attempt]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (FileNotFoundError, OSError, UnicodeDecodeError):
            return []
        out = []
        for line in text.splitlines():
            try:
                doc = json.loads(line)
                attempt = Attempt(**doc)
            except (ValueError, TypeError):
                continue
            if meter is not None and attempt.meter != meter:
                continue
            if since is not None and attempt.at < since:
                continue
            out.append(attempt)
        return out

    def record(self, attempt: Attempt) -> None:
        paths.ensure_dir(self.path.parent)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(attempt), sort_keys=True) + "\n")

    def recent_failures(self, meter: str, window: float) -> list[Attempt]:
        return [a for a in self.attempts(meter, self.wall() - window) if a.failed]


class MemoryLedger(LoginLedger):
    """A ledger that never touches the disk (tests, ``--no-ledger`` style uses)."""

    def __init__(self, *, wall: Callable[[], float] = time.time) -> None:
        super().__init__(Path(os.devnull), wall=wall)
        self.items: list[Attempt] = []

    def attempts(self, meter: str | None = None, since: float | None = None) -> list[Attempt]:
        return [a for a in self.items if (meter is None or a.meter == meter)
                and (since is None or a.at >= since)]

    def record(self, attempt: Attempt) -> None:
        self.items.append(attempt)


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
