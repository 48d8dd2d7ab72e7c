"""`dlmsdoctor tap LISTEN TARGET`: relay the user's poller to the meter, record, diagnose both.

The option names are a contract (issue 12): extend, never rename. The poller is pointed at
LISTEN; for each of its connections the tap connects to TARGET and relays bytes both ways,
unchanged. Findings print as soon as they are known (stdout, or ``--jsonl`` events); Ctrl-C or
``--duration`` ends the run with the full diagnosis (or the ``--json`` document). Usage
mistakes exit 64 with an empty stdout; a LISTEN address that cannot be bound exits 69.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from enum import IntEnum
from pathlib import Path
from typing import Any

import click

from dlmsdoctor import __version__
from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.events import Event
from dlmsdoctor.session import Session


class TapExit(IntEnum):
    OK = 0  # nothing wrong seen (or only warnings)
    FAULTS = 1  # the diagnosis found a fault (status "failed")
    CANNOT_LISTEN = 69  # LISTEN could not be bound (in use, no permission); EX_UNAVAILABLE
    OUTPUT = 73  # --report/--capture could not be written


def exit_code_for(session: Session) -> int:
    if session.diagnosis is not None and session.diagnosis.status == "failed":
        return int(TapExit.FAULTS)
    return int(TapExit.OK)


def _fail_usage(message: str) -> None:
    click.echo(f"dlmsdoctor tap: {message}", err=True)
    sys.exit(ExitCode.USAGE)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``PORT`` (then 127.0.0.1: only this machine's poller)."""
    from dlmsdoctor.engine import OptionsError, parse_host_port

    text = text.strip()
    if text.isdigit():
        text = f"127.0.0.1:{text}"
    try:
        host, port = parse_host_port(text, default_port=0)
    except OptionsError as exc:
        raise click.UsageError(f"LISTEN {exc}".replace("target ", "")) from None
    if port == 0:
        raise click.UsageError(f"LISTEN {text!r}: give the port to listen on (HOST:PORT)")
    return host, port


def parse_target(text: str) -> tuple[str, int]:
    from dlmsdoctor.engine import OptionsError, parse_host_port

    try:
        return parse_host_port(text)
    except OptionsError as exc:
        raise click.UsageError(f"TARGET {exc}".replace("target ", "")) from None


class _Printer:
    def __init__(self, mode: str, frames: bool) -> None:
        self.mode = mode
        self.frames = frames

    def emit(self, doc: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()

    def on_event(self, event: Event) -> None:
        from dlmsdoctor.tap.text import event_doc, event_text

        if self.mode == "jsonl":
            self.emit(event_doc(event))
        elif self.mode == "human":
            line = event_text(event, frames=self.frames)
            if line is not None:
                click.echo(line)


@click.command("tap")
@click.argument("listen", metavar="LISTEN")
@click.argument("target", metavar="TARGET")
@click.option("--duration", type=float, metavar="SECONDS",
              help="Stop by itself after this long (default: until Ctrl-C).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document at the end.")
@click.option("--jsonl", is_flag=True, help="Stream events (frames, findings) as JSON lines.")
@click.option("--report", metavar="PATH", help="Write a report (.md, .html or .json).")
@click.option("--report-format", type=click.Choice(["md", "html", "json"]),
              help="Format of the --report when its extension does not say it.")
@click.option("--lang", type=click.Choice(["en", "es"]), default="en", show_default=True,
              help="Language of the --report.")
@click.option("--capture", metavar="PATH",
              help="Write a pcapng of every relayed connection (opens in Wireshark).")
@click.option("--meter-address", metavar="LOGICAL/PHYSICAL",
              help="The meter's HDLC address, if known: the poller's address is checked "
                   "against it.")
@click.option("--connect-timeout", type=float, default=10.0, show_default=True,
              metavar="SECONDS", help="How long to wait for TARGET on each poller connection.")
@click.option("--frames", "show_frames", is_flag=True,
              help="Also print a line for every relayed frame.")
@click.option("--show-secrets", is_flag=True,
              help="Keep passwords in the session, JSON and capture (masked by default).")
@click.option("--no-save", is_flag=True, help="Do not save the session under the data dir.")
def tap(listen: str, target: str, duration: float | None, as_json: bool, jsonl: bool,
        report: str | None, report_format: str | None, lang: str, capture: str | None,
        meter_address: str | None, connect_timeout: float, show_frames: bool,
        show_secrets: bool, no_save: bool) -> None:
    """Relay your poller to the meter and diagnose both sides of their real traffic.

    Point the poller at LISTEN (HOST:PORT, or PORT for 127.0.0.1); each of its connections is
    relayed to TARGET (HOST[:PORT], port 4059 when omitted), bytes unchanged. dlmsdoctor never
    sends anything of its own. Example:

        dlmsdoctor tap 127.0.0.1:4059 192.0.2.15:3333
    """
    from dlmsdoctor.cli.probe_cmd import UsageProblem, check_extras
    from dlmsdoctor.tap.core import TapOptions

    if as_json and jsonl:
        _fail_usage("--json and --jsonl exclude each other")
    if duration is not None and duration <= 0:
        _fail_usage("--duration must be a positive number of seconds")
    if connect_timeout <= 0:
        _fail_usage("--connect-timeout must be a positive number of seconds")
    try:
        listen_host, listen_port = parse_listen(listen)
        target_host, target_port = parse_target(target)
    except click.UsageError as exc:
        _fail_usage(exc.message)
        return
    address = None
    if meter_address:
        from dlmsdoctor.engine import OptionsError, ProbeOptions

        try:
            parsed = ProbeOptions.parse_server_address(meter_address)
        except OptionsError as exc:
            _fail_usage(f"--meter-address: {exc}")
            return
        address = (parsed.logical, parsed.physical)
    try:
        report_format = check_extras(report, report_format, capture)
    except UsageProblem as exc:
        _fail_usage(str(exc))
        return
    options = TapOptions(listen_host, listen_port, target_host, target_port,
                         connect_timeout=connect_timeout, duration=duration,
                         meter_address=address, show_secrets=show_secrets)
    mode = "json" if as_json else "jsonl" if jsonl else "human"
    printer = _Printer(mode, show_frames)
    session, saved, code = _run(options, printer, save=not no_save)
    extras_ok = _extras(session, report, report_format, lang, capture, show_secrets)
    if not extras_ok and code == TapExit.OK:
        code = int(TapExit.OUTPUT)
    from dlmsdoctor.tap.text import line_doc, summary_lines, tap_document

    saved_text = str(saved) if saved else None
    if mode == "json":
        doc = tap_document(session, exit_code=code, saved=saved_text, show_secrets=show_secrets)
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
    elif mode == "jsonl":
        from dlmsdoctor.output.probe_json import diagnosis_doc

        printer.emit(line_doc("tap_finished", {
            "session_id": session.id, "duration": session.duration,
            "stopped_reason": session.settings.get("stopped_reason"),
            "diagnosis": diagnosis_doc(session.diagnosis), "exit_code": code,
            "saved": saved_text}))
    else:
        for line in summary_lines(session, saved_text):
            click.echo(line)
    sys.exit(code)


def _run(options: Any, printer: _Printer, *, save: bool) -> tuple[Session, Path | None, int]:
    from dlmsdoctor.cli.probe_cmd import cancel_on_sigint
    from dlmsdoctor.tap.core import Tap
    from dlmsdoctor.tap.text import line_doc

    folder, temp_dir = _frames_folder(save)
    frames_path: Path | None = None

    async def main() -> Session:
        nonlocal frames_path
        from dlmsdoctor.run import session_filename

        tap = Tap(options, on_event=printer.on_event)
        # next to the session file, under the same name
        frames_path = folder / session_filename(tap.session).replace(".json", ".frames.jsonl")
        tap.frames_path = frames_path
        try:
            await tap.start()
        except OSError as exc:
            click.echo(f"dlmsdoctor tap: cannot listen on {options.listen_host}:"
                       f"{options.listen_port}: {exc.strerror or exc}", err=True)
            sys.exit(TapExit.CANNOT_LISTEN)
        listen = tap.session.settings["listen"]
        target = tap.session.settings["target"]
        if printer.mode == "jsonl":
            printer.emit(line_doc("tap_started", {"listen": listen, "target": target,
                                                  "session_id": tap.session.id}))
        elif printer.mode == "human":
            until = (f"for {options.duration:g} s" if options.duration else "until Ctrl-C")
            click.echo(f"dlmsdoctor {__version__}: tap listening on {listen}, relaying to "
                       f"{target} ({until}). Point your poller at {listen}.")
        cancel = asyncio.Event()
        with cancel_on_sigint(cancel):
            try:
                await asyncio.wait_for(cancel.wait(), options.duration)
                reason = "interrupted"
            except TimeoutError:
                reason = "duration"
        return await tap.stop(reason)

    try:
        session = asyncio.run(main())
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        click.echo("Interrupted.", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    saved = None
    if save:
        from dlmsdoctor.run import save_session

        try:
            saved = save_session(session, folder)
        except OSError as exc:
            click.echo(f"dlmsdoctor: warning: could not save the session: "
                       f"{exc.strerror or exc}", err=True)
    session.settings["_temp_dir"] = temp_dir
    return session, saved, exit_code_for(session)


def _frames_folder(save: bool) -> tuple[Path, str | None]:
    """Where frames stream during the run: the saved sessions' folder, or a temporary folder
    (removed at the end) with --no-save."""
    from dlmsdoctor import paths

    if save:
        try:
            return paths.ensure_dir(paths.sessions_dir()), None
        except OSError:
            pass
    temp = tempfile.mkdtemp(prefix="dlmsdoctor-tap-")
    return Path(temp), temp


def _extras(session: Session, report: str | None, report_format: str | None, lang: str,
            capture: str | None, show_secrets: bool) -> bool:
    ok = True
    temp_dir = session.settings.pop("_temp_dir", None)
    try:
        if report:
            from dlmsdoctor.cli.report_cmd import pick_format
            from dlmsdoctor.output.report import write_report

            try:
                write_report(session, report, report_format or pick_format(None, report), lang)
                click.echo(f"Report written: {report}", err=True)
            except (OSError, ValueError) as exc:
                click.echo(f"dlmsdoctor: error: {exc}", err=True)
                ok = False
        if capture:
            from dlmsdoctor.output.capture import write_capture

            try:  # with every frame from the frames file (write_capture reads it for a tap)
                write_capture(session, capture, show_secrets=show_secrets)
                click.echo(f"Capture written: {capture}", err=True)
            except (OSError, ValueError) as exc:
                click.echo(f"dlmsdoctor: error: cannot write capture {capture}: {exc}",
                           err=True)
                ok = False
    finally:
        if temp_dir:
            session.settings.pop("frames_file", None)
            shutil.rmtree(temp_dir, ignore_errors=True)
    return ok
