"""The login ledger: every login attempt on a meter, kept on disk so that runs add up.

A wrong password costs: meters count failures and lock the client out (DOMAIN.md sections 3 and
4). This module is the STORAGE; the policy built on it (what is counted, the budget, when a
secret is not sent again) is ``dlmsdoctor/login_budget.py``.

Format (one contract for every reader and writer; docs/probes.md "The login ledger"):
``ledger.jsonl`` under the data dir, JSON lines, one attempt per line, appended in time order::

    {"v": 2, "meter": "10.0.0.5:3333/1/17", "at": 1764800000.0, "credential": "reader",
     "client_sap": 32, "mechanism": "low", "outcome": "rejected",
     "diagnostic": "authentication-failure", "fingerprint": "pbkdf2-sha256$120000$<salt>$<hash>",
     "run": "<session id>"}

- ``meter``: ``host:port/LOGICAL/PHYSICAL`` (``meter_key``); ``at``: Unix time.
- ``outcome``: accepted, rejected, no-answer, closed. ``diagnostic``: the AARE diagnostic name.
- ``settles`` (optional): the ``at`` of an earlier line of the same run and meter that this line
  settles. A login recorded as ``no-answer`` whose AARE came later in the run (a slow meter)
  gets a second line with what the meter answered; readers take the later line instead of the
  earlier one (``attempts``). A reader that does not know the key counts both: one failure too
  many, the safe side.
- ``fingerprint``: for a password login, a salted, slow fingerprint of the secret bound to the
  meter, client SAP and mechanism (``fingerprint_secret``); never the secret. A later run asks
  ``rejected_secret`` whether the very secret it is about to send was refused already.
- Version 1 lines (no ``v``, no ``fingerprint``/``run``) are read as they are.
- Unknown keys (a newer dlmsdoctor) are kept in ``Attempt.extra``; a line that is not a JSON
  object with the known fields of the right types is skipped and reported in ``problems``:
  one damaged line never hides the others (a safety net must not fail open).

Failure is closed: a ledger that exists but cannot be read or written raises
``LedgerUnavailableError``; the budget then refuses password logins (safe probes go on).

Concurrency: ``lock()`` is an exclusive lock (``fcntl.flock`` on ``ledger.jsonl.lock``) held from
the budget check through the login to its record, so concurrent runs, in one process or many,
share one budget per meter.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import secrets
import stat
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dlmsdoctor import paths

FORMAT_VERSION = 2
FAILED_OUTCOMES = frozenset({"rejected", "closed", "no-answer"})
# pbkdf2 iterations: slow enough that a leaked ledger does not give an 8-digit LLS password
# away in minutes, fast enough (~0.1 s) for the few comparisons a run makes.
FINGERPRINT_ITERATIONS = 120_000
_FINGERPRINT_SCHEME = "pbkdf2-sha256"

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "meter": str,
    "at": (int, float),
    "credential": str,
    "client_sap": int,
    "mechanism": str,
    "outcome": str,
    "diagnostic": str,
    "fingerprint": str,
    "run": str,
    "settles": (int, float),
}
_REQUIRED = ("meter", "at", "credential", "client_sap", "mechanism", "outcome")


class LedgerUnavailableError(Exception):
    """The ledger exists but cannot be read, written or locked: password logins must stop."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"login ledger {path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Attempt:
    meter: str  # "host:port/L/P"
    at: float  # Unix time
    credential: str
    client_sap: int
    mechanism: str
    outcome: str  # accepted, rejected, no-answer, closed
    diagnostic: str = ""
    fingerprint: str = ""  # fingerprint_secret(...) of the secret sent, "" for no secret
    run: str = ""  # the session id of the run that made the attempt
    settles: float | None = None  # the ``at`` of the earlier line (same run) this one settles
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def failed(self) -> bool:
        # Only password logins count against the budget; a public (no-auth) AARQ spends nothing.
        return self.mechanism != "none" and self.outcome in FAILED_OUTCOMES

    @property
    def authentication_failure(self) -> bool:
        return self.outcome == "rejected" and self.diagnostic == "authentication-failure"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.extra)
        doc.update(v=FORMAT_VERSION, meter=self.meter, at=self.at, credential=self.credential,
                   client_sap=self.client_sap, mechanism=self.mechanism, outcome=self.outcome,
                   diagnostic=self.diagnostic)
        if self.fingerprint:
            doc["fingerprint"] = self.fingerprint
        if self.run:
            doc["run"] = self.run
        if self.settles is not None:
            doc["settles"] = self.settles
        return doc


@dataclass(frozen=True)
class LedgerProblem:
    line: int  # 1-based line number in the ledger file
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def meter_key(host: str, port: int, logical: int | None = None, physical: int | None = None) -> str:
    server = "" if logical is None else f"/{logical}/{'' if physical is None else physical}"
    host_part = f"[{host}]" if ":" in host else host
    return f"{host_part}:{port}{server}"


# -- fingerprints --------------------------------------------------------------------------------
def _fingerprint_message(secret: bytes | str, meter: str, client_sap: int, mechanism: str) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    return b"\0".join((meter.encode(), str(client_sap).encode(), mechanism.encode(), raw))


def fingerprint_secret(secret: bytes | str, *, meter: str, client_sap: int, mechanism: str,
                       salt: bytes | None = None,
                       iterations: int = FINGERPRINT_ITERATIONS) -> str:
    """A salted, slow, one-way fingerprint of ``secret`` bound to one meter, client SAP and
    mechanism: ``pbkdf2-sha256$ITER$SALT_HEX$HASH_HEX``. Never reversible to the secret."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", _fingerprint_message(secret, meter, client_sap,
                                                                mechanism), salt, iterations)
    return f"{_FINGERPRINT_SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def fingerprint_matches(fingerprint: str, secret: bytes | str, *, meter: str, client_sap: int,
                        mechanism: str) -> bool:
    """True when ``fingerprint`` was made from this very secret for this meter/SAP/mechanism."""
    try:
        scheme, iterations, salt_hex, digest_hex = fingerprint.split("$")
        if scheme != _FINGERPRINT_SCHEME:
            return False
        iters = int(iterations)
        if not 1 <= iters <= 10_000_000:
            return False
        salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    again = hashlib.pbkdf2_hmac("sha256", _fingerprint_message(secret, meter, client_sap,
                                                               mechanism), salt, iters)
    return hmac.compare_digest(again, digest)


def parse_line(line: str) -> Attempt | str:
    """One ledger line as an Attempt, or the reason it cannot be one."""
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):
        return "not valid JSON"
    if not isinstance(doc, dict):
        return "not a JSON object"
    missing = [k for k in _REQUIRED if k not in doc]
    if missing:
        return f"missing {', '.join(missing)}"
    for key, kind in _FIELDS.items():
        if key in doc and (not isinstance(doc[key], kind) or isinstance(doc[key], bool)):
            return f"{key} has the wrong type ({type(doc[key]).__name__})"
    if not math.isfinite(doc["at"]):
        return f"at is not a time ({doc['at']})"  # NaN would fall outside every window
    settles = doc.get("settles")
    extra = {k: v for k, v in doc.items() if k not in _FIELDS and k != "v"}
    return Attempt(
        meter=doc["meter"], at=float(doc["at"]), credential=doc["credential"],
        client_sap=doc["client_sap"], mechanism=doc["mechanism"], outcome=doc["outcome"],
        diagnostic=doc.get("diagnostic", ""), fingerprint=doc.get("fingerprint", ""),
        run=doc.get("run", ""), settles=None if settles is None else float(settles),
        extra=MappingProxyType(extra),
    )


class LoginLedger:
    """Append-only JSON lines of attempts. ``path=None``: the data dir's ``ledger.jsonl``."""

    def __init__(self, path: Path | None = None, *, wall: Callable[[], float] = time.time):
        self.path = path or paths.ledger_file()
        self.wall = wall
        self.problems: list[LedgerProblem] = []  # damaged lines skipped at the last read

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    # -- reading -----------------------------------------------------------------------------
    def _read_all(self) -> list[Attempt]:
        raw = self._read_bytes()
        if raw is None:
            self.problems = []
            return []
        out: list[Attempt] = []
        problems: list[LedgerProblem] = []
        lines = raw.split(b"\n")
        for number, line_bytes in enumerate(lines, 1):
            if not line_bytes.strip():
                continue
            last = number == len(lines)  # no newline after it: cut short, or never ended
            try:
                line = line_bytes.decode("utf-8")
                damage = ""
            except UnicodeDecodeError:
                # read what can be read: a damaged byte in a name must not hide the failure
                # the line records (the budget would then allow one login too many)
                line = line_bytes.decode("utf-8", errors="replace")
                damage = "not UTF-8 text"
            parsed = parse_line(line)
            if isinstance(parsed, str):
                reason = f"{damage}; {parsed}" if damage else parsed
                if last:
                    reason += " (the last line, without a newline: cut short?)"
                problems.append(LedgerProblem(number, reason))
                continue
            if damage:
                problems.append(LedgerProblem(number, f"{damage} (read with the bad bytes "
                                                      "replaced)"))
            out.append(parsed)
        self.problems = problems
        return out

    def _read_bytes(self) -> bytes | None:
        """The file's bytes (None: there is no ledger yet). A line another run is appending
        right now may be caught half-written: the read is tried again briefly before a last
        line without its newline is judged."""
        raw = b""
        for attempt in range(4):
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise LedgerUnavailableError(self.path, "cannot be read "
                                             f"({exc.strerror or exc})") from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise LedgerUnavailableError(self.path, "is not a regular file")
                chunks = []
                while chunk := os.read(fd, 1 << 20):
                    chunks.append(chunk)
                raw = b"".join(chunks)
            except OSError as exc:
                raise LedgerUnavailableError(self.path, "cannot be read "
                                             f"({exc.strerror or exc})") from None
            finally:
                os.close(fd)
            if not raw or raw.endswith(b"\n") or attempt == 3:
                break
            time.sleep(0.01 * (attempt + 1))
        return raw

    def attempts(self, meter: str | None = None, since: float | None = None) -> list[Attempt]:
        """Attempts in file order, filtered; raises ``LedgerUnavailableError`` when unreadable.
        A line settled by a later one (``settles``: a late AARE) is left out: the later line
        says what the meter answered."""
        every = self._read_all()
        settled = {(a.meter, a.run, a.settles) for a in every if a.settles is not None}
        return [a for a in every
                if (meter is None or a.meter == meter) and (since is None or a.at >= since)
                and (not settled or (a.meter, a.run, a.at) not in settled)]

    def recent_failures(self, meter: str, window: float) -> list[Attempt]:
        return [a for a in self.attempts(meter, self.wall() - window) if a.failed]

    def rejected_secret(self, meter: str, client_sap: int, mechanism: str,
                        secret: bytes | str) -> Attempt | None:
        """The newest attempt whose very secret this meter refused with authentication-failure
        on this client SAP and mechanism (at any time: a wrong password stays wrong)."""
        for attempt in reversed(self.attempts(meter)):
            if (attempt.authentication_failure and attempt.client_sap == client_sap
                    and attempt.mechanism == mechanism and attempt.fingerprint
                    and fingerprint_matches(attempt.fingerprint, secret, meter=meter,
                                            client_sap=client_sap, mechanism=mechanism)):
                return attempt
        return None

    # -- writing -----------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Raise ``LedgerUnavailableError`` unless an attempt could be recorded now."""
        os.close(self._open_append())

    def record(self, attempt: Attempt) -> None:
        """Append one attempt (one write, fsynced); raises ``LedgerUnavailableError``.

        One ``write`` of the whole line on an O_APPEND descriptor: concurrent runs' lines never
        interleave (each lands whole at the end of the file)."""
        line = (json.dumps(attempt.to_json(), sort_keys=True, ensure_ascii=False)
                + "\n").encode("utf-8", errors="replace")
        fd = self._open_append()
        try:
            # Writers take turns (a short flock on the file itself; lock() guards the longer
            # check-login-record on its own lock file): the look at the last byte then never
            # sees another writer's line half-written, which would add an empty line.
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
            # a file damaged without a final newline must not glue our line to its last one
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line
            written = os.write(fd, line)
            if written != len(line):  # the disk filled up: the rest raises ENOSPC, or fits
                written += os.write(fd, line[written:])
            if written != len(line):
                raise OSError(28, "short write (disk full?)")
            os.fsync(fd)
        except OSError as exc:
            raise LedgerUnavailableError(self.path, f"cannot be written ({exc.strerror or exc})"
                                         ) from None
        finally:
            os.close(fd)

    def _open_append(self) -> int:
        """The ledger opened for appending (created 0600); only a regular file will do: a FIFO
        or a device in its place would block a run or swallow its records."""
        try:
            paths.ensure_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK
                         | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LedgerUnavailableError(self.path, f"cannot be written ({exc.strerror or exc})"
                                         ) from None
        try:
            kind_ok = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            kind_ok = False
        if not kind_ok:
            os.close(fd)
            raise LedgerUnavailableError(self.path, "is not a regular file")
        return fd

    # -- locking -----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lock(self, timeout: float = 60.0) -> AsyncIterator[None]:
        """Hold the ledger exclusively (other runs, other processes) for a check-login-record.

        Raises ``LedgerUnavailableError`` when the lock file cannot be opened or the lock is
        not had within ``timeout`` seconds. Polls without blocking the event loop."""
        import fcntl

        try:
            paths.ensure_dir(self.lock_path.parent)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LedgerUnavailableError(self.path, "its lock file cannot be opened "
                                         f"({exc.strerror or exc})") from None
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LedgerUnavailableError(
                            self.path, f"another run held its lock for over {timeout:g} s"
                        ) from None
                    await asyncio.sleep(0.02)
                except OSError as exc:
                    raise LedgerUnavailableError(self.path, "cannot be locked "
                                                 f"({exc.strerror or exc})") from None
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class MemoryLedger(LoginLedger):
    """A ledger that never touches the disk (tests, the TUI's demo). Locks within the process."""

    def __init__(self, *, wall: Callable[[], float] = time.time) -> None:
        super().__init__(Path(os.devnull), wall=wall)
        self.items: list[Attempt] = []
        self._lock = asyncio.Lock()

    def _read_all(self) -> list[Attempt]:
        self.problems = []
        return list(self.items)

    def check_writable(self) -> None:
        return None

    def record(self, attempt: Attempt) -> None:
        self.items.append(attempt)

    @contextlib.asynccontextmanager
    async def lock(self, timeout: float = 60.0) -> AsyncIterator[None]:
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout)
        except TimeoutError:
            raise LedgerUnavailableError(self.path, "another run held its lock") from None
        try:
            yield
        finally:
            self._lock.release()
