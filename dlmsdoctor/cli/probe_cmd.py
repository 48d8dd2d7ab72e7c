"""`dlmsdoctor probe HOST[:PORT]`: run the ladder against a meter, print the evidence and verdict.

The option names are a contract scripts depend on (issue 4): extend, never rename. Data goes to
stdout (the ladder and verdict, or the `--json` document, or the `--jsonl` stream); warnings and
errors to stderr. Usage mistakes (bad target, bad --cred, config errors) exit 64 with a message
and an empty stdout; Ctrl-C cancels the engine, which still releases the meter, then exits 130.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from enum import IntEnum
from pathlib import Path
from typing import Any

import click

from dlmsdoctor import __version__
from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.events import Event, StepStatus
from dlmsdoctor.session import Session


class ProbeExit(IntEnum):
    """Exit codes tell the deepest rung that failed: 10 + the rung's number in the ladder.

    A ping that fails alone never counts (ICMP is often filtered: TCP decides), so ICMP (11) is
    reserved. Rungs below the association that failed but were recovered (silence at 1/1, then
    the address matrix found the meter) do not count once an association worked.
    """

    OK = 0  # an association worked and no rung failed for good
    ICMP = 11  # reserved: ping failures alone are not faults
    TCP = 12  # no TCP connection, or the bridge behind it refused us (busy)
    FRAMING = 13  # connected, but neither HDLC nor the wrapper got an answer
    LINK = 14  # no HDLC link (silence, DM, FRMR at the given address)
    ADDRESS = 15  # address discovery found nothing
    ASSOCIATION = 16  # the public association (or its identity reads) failed
    LOGIN = 17  # a credential set was rejected (or its reads failed)
    RELEASE = 18  # the release was not confirmed: the meter may still hold the session
    # the run ended without a failed rung, but --report/--capture could not be written (the
    # session is saved and the verdict printed); sysexits' EX_CANTCREAT
    OUTPUT = 73
    # no rung failed, but a password login was not sent because the login ledger cannot be
    # read, written or locked (fix it, or --ignore-ledger-errors); sysexits' EX_NOPERM (74,
    # EX_IOERR, is every command's "writing the output failed")
    LEDGER = 77


_LAYER_EXIT = {
    "icmp": ProbeExit.ICMP,
    "tcp": ProbeExit.TCP,
    "framing": ProbeExit.FRAMING,
    "hdlc": ProbeExit.LINK,
    "address": ProbeExit.ADDRESS,
    "association": ProbeExit.ASSOCIATION,
    "cosem": ProbeExit.ASSOCIATION,
    "release": ProbeExit.RELEASE,
    "serial": ProbeExit.TCP,  # serial links (cli/targets.py): the line is the connection
    "optical": ProbeExit.FRAMING,
}


def _rung_exit(step_id: str, layer: str) -> ProbeExit | None:
    if step_id.startswith(("assoc.login.", "cosem.read.")):
        return ProbeExit.LOGIN
    return _LAYER_EXIT.get(layer)


def exit_code_for(session: Session) -> int:
    """One function maps a run's outcome to the process exit code (tested)."""
    if session.cancelled:
        return ExitCode.INTERRUPTED
    if any(s.status is StepStatus.ERROR for s in session.steps):
        return ExitCode.INTERNAL
    works = session.diagnosis is not None and session.diagnosis.profile is not None
    worst = ProbeExit.OK
    for step in session.steps:
        if step.status is not StepStatus.FAILED:
            continue
        code = _rung_exit(step.id, step.layer)
        if code is None or code is ProbeExit.ICMP:
            continue
        if works and code < ProbeExit.ASSOCIATION:
            continue  # recovered further down the ladder
        worst = max(worst, code)
    if worst is ProbeExit.OK and not works and session.steps:
        # nothing "failed" but nothing worked either (e.g. all skipped): say where it stopped
        ran = [s for s in session.steps if s.status in (StepStatus.OK, StepStatus.WARNING)]
        worst = ProbeExit.ASSOCIATION if ran else ProbeExit.TCP
    codes = {f.code for f in session.findings if not f.data.get("ignored")}
    if "login.already_rejected" in codes:
        worst = max(worst, ProbeExit.LOGIN)  # refused before: still a rejected credential set
    if worst is ProbeExit.OK and "login.ledger_unavailable" in codes:
        worst = ProbeExit.LEDGER
    return int(worst)


# -- the command --------------------------------------------------------------------------------


class UsageProblem(Exception):
    """A mistake on the command line or in the config: message, exit 64, nothing on stdout."""


def _fail_usage(message: str) -> None:
    click.echo(f"dlmsdoctor probe: {message}", err=True)
    sys.exit(ExitCode.USAGE)


def _warn(message: str) -> None:
    click.echo(f"dlmsdoctor: warning: {message}", err=True)


def build_options(
    target: str,
    *,
    framing: str | None = None,
    server_address: str | None = None,
    address_size: str | None = None,
    serial_number: str | None = None,
    creds: tuple[str, ...] = (),
    no_icmp: bool = False,
    timeout: float | None = None,
    max_failed_logins: int | None = None,
    meter_login_budget: int | None = None,
    disc_first: bool = False,
    config_path: Path | None = None,
    connect_timeout: float | None = None,
    login_safety: dict[str, Any] | None = None,
    baud: str | None = None,
    serial_format: str | None = None,
    optical: bool | None = None,
) -> Any:
    """Command line (and the config's targets and credential sets) -> ProbeOptions.

    ``optical`` None: not given (a config target keeps its own ``optical``); False:
    ``--no-optical``.

    Raises UsageProblem with a plain message for anything the user must fix."""
    from dlmsdoctor.config import ConfigError, load_config, parse_credential
    from dlmsdoctor.engine import OptionsError, ProbeOptions
    from dlmsdoctor.targets import LineError, check_framing

    try:
        # a named --config must exist: a typo must not silently mean "no config"
        config = load_config(config_path, required=config_path is not None)
        for warning in config.warnings:
            _warn(warning)
        named = config.targets.get(target)
        if named is not None:
            # a TCP meter, a serial line, an optical head or an RFC 2217 bridge; --baud,
            # --serial-format and --optical/--no-optical over the config's line settings
            from dlmsdoctor.targets import options_for_config

            options = options_for_config(named, baud=baud, serial_format=serial_format,
                                         optical=optical)
            framing = framing or named.framing
            server_address = server_address or named.server_address
            if address_size is None and named.address_size is not None:
                address_size = str(named.address_size)
            serial_number = serial_number or named.serial_number
            creds = tuple(named.credentials) + tuple(creds)
        else:  # TCP, or a serial line (--baud, --serial-format, --optical): cli/targets.py
            from dlmsdoctor.cli.targets import options_for

            options = options_for(target, baud=baud, serial_format=serial_format,
                                  optical=bool(optical))
        credentials = []
        for text in creds:
            if ":" in text:
                credentials.append(parse_credential(text))
            else:
                credentials.append(config.credential(text.strip()))
        names = [c.name for c in credentials]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise UsageProblem(f"credential set name {duplicate!r} given twice")
        changes: dict[str, Any] = {"credentials": tuple(credentials)}
        if framing:
            check_framing(options.link, framing)  # a serial line carries HDLC only
            changes["framing"] = framing
        if server_address:
            changes["server_address"] = ProbeOptions.parse_server_address(server_address)
        if address_size:
            changes["address_size"] = int(address_size)
        if serial_number:
            changes["serial_number"] = serial_number.strip()
        if no_icmp:
            changes["icmp"] = False
        if timeout is not None:
            if timeout <= 0:
                raise UsageProblem("--timeout must be a positive number of seconds")
            changes["timeout"] = timeout
        if connect_timeout is not None:
            if connect_timeout <= 0:
                raise UsageProblem("--connect-timeout must be a positive number of seconds")
            changes["connect_timeout"] = connect_timeout
        if max_failed_logins is not None:
            if max_failed_logins < 0:
                raise UsageProblem("--max-failed-logins cannot be negative")
            changes["max_failed_logins"] = max_failed_logins
        if meter_login_budget is not None:  # only when given: the default stays the engine's
            if meter_login_budget < 0:
                raise UsageProblem("--meter-login-budget cannot be negative")
            changes["ledger_max_failures"] = meter_login_budget
        if disc_first:
            changes["disc_first"] = True
        changes.update(_login_safety_changes(login_safety or {}))
        return dataclasses.replace(options, **changes)
    except (ConfigError, OptionsError, LineError) as exc:
        raise UsageProblem(str(exc)) from None


def _login_safety_changes(given: dict[str, Any]) -> dict[str, Any]:
    """--run-login-budget, --retry-rejected, --ignore-ledger-errors -> ProbeOptions fields
    (only what was given: the defaults stay the engine's)."""
    changes: dict[str, Any] = {}
    run_budget = given.get("run_login_budget")
    if run_budget is not None:
        if run_budget < 0:
            raise UsageProblem("--run-login-budget cannot be negative")
        changes["run_max_failures"] = run_budget
    if given.get("retry_rejected"):
        changes["retry_rejected"] = True
    if given.get("ignore_ledger_errors"):
        changes["ignore_ledger_errors"] = True
    return changes


LOGIN_SAFETY_OPTIONS = (
    click.option("--run-login-budget", type=int, metavar="N",
                 help="Failed logins allowed in this run across all credential sets "
                 "(default 1)."),
    click.option("--retry-rejected", is_flag=True,
                 help="Send a password this meter already rejected (the login ledger "
                 "remembers it); still within the budgets."),
    click.option("--ignore-ledger-errors", is_flag=True,
                 help="Log in even when the login ledger cannot be read or written (failures "
                 "of this run are then not remembered)."),
)


def login_safety_options(fn: Any) -> Any:
    for option in reversed(LOGIN_SAFETY_OPTIONS):
        fn = option(fn)
    return fn

# Ctrl-C, `kill` (SIGTERM, what service managers send) and a closed terminal (SIGHUP)
CANCEL_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                       if hasattr(signal, name))
BROKEN_PIPE_EXIT = 128 + 13  # as a shell reports a process ended by SIGPIPE


@contextlib.contextmanager
def cancel_on_signals(cancel: asyncio.Event, received: list[int] | None = None
                      ) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP set ``cancel`` (the engine then releases the meter: RLRQ,
    DISC, TCP close, and returns) instead of tearing the event loop down mid-frame; the signal
    numbers are appended to ``received``. Only possible from the main thread."""
    loop = asyncio.get_running_loop()
    installed: list[int] = []

    def handler(signum: int) -> None:
        if received is not None:
            received.append(signum)
        cancel.set()

    if threading.current_thread() is threading.main_thread():
        for signum in CANCEL_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, handler, signum)
                installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


cancel_on_sigint = cancel_on_signals  # the demo's name for it


class Output:
    """Where a run's events and result go: the ladder, the JSON document or the JSONL stream."""

    def __init__(self, mode: str) -> None:
        self.mode = mode  # "human", "json", "jsonl"
        self.ladder: Any = None
        # stdout went away (`probe --jsonl | head`, a closed terminal): stop writing, and
        # tell the run (``on_broken``) so that it releases the meter and ends
        self.broken = False
        self.on_broken: Any = None
        if mode == "human":
            from dlmsdoctor.output.console import stdout_console
            from dlmsdoctor.output.ladder import LadderView

            self.console = stdout_console()
            self.ladder = LadderView(self.console)

    def _emit_line(self, doc: dict[str, Any]) -> None:
        if self.broken:
            return
        with self.guard():
            sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
            sys.stdout.flush()

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Writes to stdout; a broken pipe (or EIO from a hung-up terminal) ends them quietly
        (stdout then goes to /dev/null)."""
        try:
            yield
        except OSError:  # BrokenPipeError, or EIO once the terminal is gone
            self._broke()

    def _broke(self) -> None:
        self.broken = True
        # whatever is still buffered for stdout must not raise again at exit
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        if self.on_broken is not None:
            self.on_broken()

    def started(self, target: dict[str, Any], intro: str = "") -> None:
        with self.guard():
            self._started(target, intro)

    def _started(self, target: dict[str, Any], intro: str = "") -> None:
        if self.mode == "jsonl":
            from dlmsdoctor.output.probe_json import run_started_line

            self._emit_line(run_started_line(target))
        elif self.mode == "human":
            if intro:
                self.console.print(intro, soft_wrap=True, highlight=False, markup=False)
            self.ladder.__enter__()

    def on_event(self, event: Event) -> None:
        if self.mode == "jsonl":
            from dlmsdoctor.output.probe_json import event_line

            self._emit_line(event_line(event))
        elif self.ladder is not None:
            with self.guard():
                self.ladder.on_event(event)

    def stop_live(self) -> None:
        if self.ladder is not None:
            with self.guard():
                self.ladder.__exit__(None, None, None)

    def finished(self, session: Session, exit_code: int, saved: Path | None) -> None:
        with self.guard():
            self._finished(session, exit_code, saved)
            sys.stdout.flush()

    def _finished(self, session: Session, exit_code: int, saved: Path | None) -> None:
        saved_text = str(saved) if saved is not None else None
        if self.mode == "json":
            from dlmsdoctor.output.probe_json import probe_document

            doc = probe_document(session, exit_code=exit_code, saved=saved_text)
            sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
        elif self.mode == "jsonl":
            from dlmsdoctor.output.probe_json import run_finished_line

            self._emit_line(run_finished_line(session, exit_code=exit_code, saved=saved_text))
        else:
            from dlmsdoctor.output.ladder import render_diagnosis

            render_diagnosis(self.console, session, saved=saved)


def check_extras(report: str | None, report_format: str | None, capture: str | None) -> str | None:
    """Before probing: the --report format, and whether the --report/--capture paths can be
    written at all, so that a typo costs no meter traffic. Returns the report format."""
    from dlmsdoctor.cli.report_cmd import known_format

    fmt = report_format
    if report and fmt is None:
        fmt = known_format(report)
        if fmt is None:
            raise UsageProblem(
                f"--report {report}: unknown extension {Path(report).suffix or '(none)'!r}; use "
                ".md, .html or .json, or give --report-format md|html|json"
            )
    for option, path in (("--report", report), ("--capture", capture)):
        if path:
            problem = _unwritable(Path(path))
            if problem:
                raise UsageProblem(f"{option} {path}: cannot write there ({problem})")
    return fmt


def _unwritable(path: Path) -> str | None:
    """Open the file for appending (created, then removed, when new): the only test that is
    right for root, read-only mounts and /proc alike."""
    existed = path.exists()
    if path.is_dir():
        return "it is a directory"
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    if not existed:
        with contextlib.suppress(OSError):
            path.unlink()
    return None


def write_extras(
    session: Session,
    report: str | None,
    capture: str | None,
    lang: str = "en",
    report_format: str | None = None,
) -> bool:
    """--report (in ``lang``) and --capture, after the verdict is printed and the session
    saved. Returns False when one could not be written (said on stderr): the exit code then
    says so too (``ProbeExit.OUTPUT``), never 0."""
    ok = True
    if report:
        try:
            from dlmsdoctor.output.report import write_report
        except ImportError:
            _warn("reports are not available in this build; skipped --report")
            ok = False
        else:
            from dlmsdoctor.cli.report_cmd import pick_format

            try:
                write_report(session, report, report_format or pick_format(None, report), lang)
                click.echo(f"Report written: {report}", err=True)
            except (OSError, ValueError) as exc:
                click.echo(f"dlmsdoctor: error: {exc}", err=True)
                ok = False
    if capture:
        try:
            from dlmsdoctor.output.capture import write_capture
        except ImportError:
            _warn("captures are not available in this build; skipped --capture")
            ok = False
        else:
            try:
                write_capture(session, capture)
                click.echo(f"Capture written: {capture}", err=True)
            except (OSError, ValueError) as exc:
                click.echo(f"dlmsdoctor: error: cannot write capture {capture}: {exc}", err=True)
                ok = False
    return ok


def final_exit(code: int, extras_ok: bool) -> int:
    """A failed rung's code wins; otherwise a --report/--capture that failed is OUTPUT."""
    if not extras_ok and code == ProbeExit.OK:
        return int(ProbeExit.OUTPUT)
    return code


def run_and_print(
    options: Any,
    output: Output,
    *,
    save: bool = True,
    ledger: Any = None,
    intro: str = "",
) -> tuple[Session, int, Path | None]:
    """Run, diagnose, save and print (the demo takes the same run.probe_and_diagnose and the
    same Output); returns the session, the exit code and where the session was saved."""
    from dlmsdoctor.run import probe_and_diagnose

    received: list[int] = []

    warnings: list[str] = []

    async def main() -> tuple[Session, Path | None, str | None]:
        cancel = asyncio.Event()
        output.on_broken = cancel.set  # nobody reads any more: release the meter and end
        if output.broken:
            cancel.set()
        with cancel_on_signals(cancel, received):
            result = await probe_and_diagnose(
                options, on_event=output.on_event, cancel=cancel, ledger=ledger, save=save
            )
        warnings.extend(result.ledger_warnings)
        return result.session, result.saved, result.save_error

    output.started({"host": options.host, "port": options.port}, intro)
    try:
        session, saved, save_error = asyncio.run(main())
    finally:
        output.stop_live()
    code = exit_code_for(session)
    if received and session.cancelled:
        code = 128 + received[0]  # 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP, as shells report
    output.finished(session, code, saved)
    if output.broken:
        code = BROKEN_PIPE_EXIT
    for warning in warnings:
        _warn(warning)
    if save_error:
        _warn(save_error)
    return session, code, saved


@click.command("probe")
@click.argument("target", metavar="HOST[:PORT]|DEVICE|rfc2217://HOST:PORT")
@click.option(
    "--framing",
    type=click.Choice(["auto", "hdlc", "wrapper"]),
    default=None,
    help="Framing to use; auto detects it safely (default).",
)
@click.option(
    "--server-address",
    metavar="LOGICAL/PHYSICAL",
    help="HDLC server address, e.g. 1/17 (default: discover, starting with 1/1).",
)
@click.option(
    "--address-size",
    type=click.Choice(["1", "2", "4"]),
    default=None,
    help="HDLC server address size in bytes.",
)
@click.option(
    "--serial-number",
    metavar="SN",
    help="Adds the addresses derived from this serial number to discovery.",
)
@click.option(
    "--cred",
    "creds",
    multiple=True,
    metavar="[NAME=]SAP:AUTH[:SECRET]",
    help="A credential set (AUTH none|low|gmac), or the NAME of a set in the config. Repeatable.",
)
@click.option("--no-icmp", is_flag=True, help="Skip the ping rung.")
@click.option(
    "--timeout",
    type=float,
    metavar="SECONDS",
    help="Reply timeout (default 5 s; scaled up on slow links).",
)
@click.option(
    "--connect-timeout",
    type=float,
    metavar="SECONDS",
    help="TCP connect timeout (default 10 s, for GPRS modems that wake up slowly).",
)
@click.option(
    "--max-failed-logins",
    type=int,
    metavar="N",
    help="Failed logins allowed per credential set in this run (default 1; the limit per run, "
    "--run-login-budget, holds too).",
)
@click.option(
    "--meter-login-budget",
    type=int,
    metavar="N",
    help="Failed logins allowed per meter within 15 min, counting earlier runs (default 2). "
    "Raise only knowingly: each failure brings a lockout closer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document to stdout.")
@click.option("--jsonl", is_flag=True, help="Stream events as JSON lines to stdout.")
@click.option("--report", metavar="PATH", help="Write a report (.md, .html or .json).")
@click.option(
    "--report-format",
    type=click.Choice(["md", "html", "json"]),
    help="Format of the --report when its extension does not say it.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "es"]),
    default="en",
    show_default=True,
    help="Language of the --report (as in `dlmsdoctor report --lang`).",
)
@click.option("--capture", metavar="PATH", help="Write a pcapng capture of the run.")
@click.option("--disc-first", is_flag=True, help="Send DISC first to clear a stale link.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: the user config dir).",
)
@click.option("--no-save", is_flag=True, help="Do not save the session under the data dir.")
@login_safety_options
@click.option("--baud", metavar="auto|RATE",
              help="Serial targets: the line's rate, or auto (9600 first, then the common "
              "rates; default).")
@click.option("--serial-format", metavar="8N1|7E1|8E1|...",
              help="Serial targets: data bits, parity, stop bits (default 8N1).")
@click.option("--optical/--no-optical", default=None,
              help="Serial targets: an optical head (IEC 62056-21 mode E: sign-on at 300 7E1, "
              "then HDLC); --no-optical: a config target's optical = true as a plain line.")
def probe(
    target: str,
    framing: str | None,
    server_address: str | None,
    address_size: str | None,
    serial_number: str | None,
    creds: tuple[str, ...],
    no_icmp: bool,
    timeout: float | None,
    connect_timeout: float | None,
    max_failed_logins: int | None,
    meter_login_budget: int | None,
    as_json: bool,
    jsonl: bool,
    report: str | None,
    report_format: str | None,
    lang: str,
    capture: str | None,
    disc_first: bool,
    config_path: Path | None,
    no_save: bool,
    baud: str | None,
    serial_format: str | None,
    optical: bool | None,
    **login_safety: Any,
) -> None:
    """Probe a meter rung by rung and say what is wrong, with the evidence.

    HOST[:PORT] is an address (port 4059 when omitted; IPv6 as [ADDR]:PORT) or the name of a
    target in the config (a TCP meter, a serial line or an optical head: options given here
    win over its keys). Exit codes tell the deepest rung that failed (see docs/diagnosis.md).

    A serial line: /dev/ttyUSB0, COM3 or serial:NAME (with --baud, --serial-format, --optical);
    rfc2217://HOST:PORT for a bridge with RFC 2217 (see docs/serial.md).
    """
    if as_json and jsonl:
        _fail_usage("--json and --jsonl exclude each other")
    try:
        options = build_options(
            target,
            framing=framing,
            server_address=server_address,
            address_size=address_size,
            serial_number=serial_number,
            creds=creds,
            no_icmp=no_icmp,
            timeout=timeout,
            max_failed_logins=max_failed_logins,
            meter_login_budget=meter_login_budget,
            disc_first=disc_first,
            config_path=config_path,
            connect_timeout=connect_timeout,
            login_safety=login_safety,
            baud=baud,
            serial_format=serial_format,
            optical=optical,
        )
        report_format = check_extras(report, report_format, capture)
    except UsageProblem as exc:
        _fail_usage(str(exc))
        return
    output = Output("json" if as_json else "jsonl" if jsonl else "human")
    from dlmsdoctor.cli.targets import describe

    intro = f"dlmsdoctor {__version__}: probing {describe(options)}\n"
    try:
        session, code, _ = run_and_print(options, output, save=not no_save, intro=intro)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    extras_ok = write_extras(session, report, capture, lang, report_format)
    sys.exit(final_exit(code, extras_ok))
