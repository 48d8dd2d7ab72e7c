"""One probe run as every face wants it: the engine's ladder, then the diagnosis, then the
session saved under the data dir. `probe`, `demo` and the TUI call this, so they cannot drift.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

from dlmsdoctor import paths
from dlmsdoctor.diagnosis import diagnose
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.ledger import LoginLedger
from dlmsdoctor.private_files import write_private
from dlmsdoctor.probes.base import OnEvent
from dlmsdoctor.session import ProbeFinding, Session


@dataclass(slots=True)
class RunResult:
    session: Session
    saved: Path | None  # where the session was written, None when not saved
    save_error: str | None = None  # why saving failed (the run itself still counts)
    # damaged login-ledger lines skipped during the run (one line each: "FILE: line N: why")
    ledger_warnings: list[str] = field(default_factory=list)


def session_filename(session: Session) -> str:
    """``20261124T004500Z-10.0.0.5-3333-1a2b3c4d.json``: sortable, one per run."""
    stamp = re.sub(r"[^0-9T]", "", session.started_at.split(".")[0]) + "Z"
    host = re.sub(r"[^A-Za-z0-9.-]", "_", session.target.host)
    return f"{stamp}-{host}-{session.target.port}-{session.id[:8]}.json"


def save_session(session: Session, folder: Path | None = None) -> Path:
    folder = paths.ensure_dir(folder or paths.sessions_dir())
    path = folder / session_filename(session)
    write_private(path, session.dumps())  # 0600: it names the meter, maybe its secrets
    return path


async def probe_and_diagnose(
    options: ProbeOptions,
    *,
    on_event: OnEvent | None = None,
    cancel: asyncio.Event | None = None,
    ledger: LoginLedger | None = None,
    save: bool = True,
    sessions_folder: Path | None = None,
) -> RunResult:
    """Run the ladder, diagnose the evidence, save the session. Never raises for a meter's
    behaviour; OSError while saving is reported in ``save_error``, not raised."""
    ledger = ledger if ledger is not None else LoginLedger()
    session = await run_probe(options, on_event=on_event, cancel=cancel, ledger=ledger)
    warnings = ledger_warnings(session, ledger)
    session.diagnosis = diagnose(session)
    saved: Path | None = None
    error: str | None = None
    if save:
        try:
            saved = save_session(session, sessions_folder)
        except OSError as exc:
            error = f"could not save the session: {exc.strerror or exc}"
    return RunResult(session, saved, error, warnings)


def ledger_warnings(session: Session, ledger: LoginLedger) -> list[str]:
    """Damaged ledger lines the run skipped, as a warning finding in the session (naming the
    file and the lines) and as lines for the console: a damaged safety net must be seen."""
    problems = list(ledger.problems)
    if not problems:
        return []
    shown = problems[:5]
    more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
    message = (f"the login ledger {ledger.path} has {len(problems)} damaged line(s), skipped: "
               + "; ".join(str(p) for p in shown) + more
               + ". The other lines still count; fix or remove the damaged ones.")
    session.findings.append(ProbeFinding(
        "ledger", "ledger.damaged_lines", "warning", message, session.duration or 0.0, [],
        {"path": str(ledger.path), "lines": [p.line for p in problems],
         "reasons": [p.reason for p in shown]}))
    return [f"login ledger {ledger.path}: {p} (line skipped)" for p in shown] + (
        [f"login ledger {ledger.path}: {more.strip(' ()')}"] if more else [])
