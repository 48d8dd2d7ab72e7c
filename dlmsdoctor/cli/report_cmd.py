"""`dlmsdoctor report`: a diagnostic report (Markdown, HTML or JSON; English or Spanish)."""

from __future__ import annotations

from pathlib import Path

import click

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.session import Session

_EPILOG = """\b
Examples:
  dlmsdoctor report session.json
  dlmsdoctor report session.json --format html --lang es -o informe.html
  dlmsdoctor report capture.pcapng --port 3333 --format json

\b
SESSION is a session JSON saved by dlmsdoctor, a dlmsdoctor pcapng, or a pcap/pcapng with a DLMS
TCP stream (tcpdump, Wireshark). Exit codes: 0 written; 2 the file cannot be read; 64 bad options
(an -o extension other than .md/.html/.json needs --format).
"""

_SUFFIX_FORMAT = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
                  ".json": "json"}


def pick_format(fmt: str | None, output: str | None) -> str:
    """The --format given, else the output file's extension, else Markdown."""
    if fmt:
        return fmt
    if output:
        return _SUFFIX_FORMAT.get(Path(output).suffix.lower(), "md")
    return "md"


def known_format(output: str) -> str | None:
    """The format the output file's extension names, or None when it names none we write."""
    return _SUFFIX_FORMAT.get(Path(output).suffix.lower())


def load_or_exit(ctx: click.Context, path: str, port: int | None) -> Session:
    """The Session in ``path``, or a one-line message on stderr and exit 2 (never a traceback)."""
    from dlmsdoctor.output.capture_read import load_and_diagnose

    try:
        return load_and_diagnose(path, port,
                                 warn=lambda text: click.echo(f"dlmsdoctor: {text}", err=True))
    except ValueError as exc:  # SessionFormatError and CaptureFormatError
        click.echo(f"dlmsdoctor: {exc}", err=True)
        ctx.exit(ExitCode.UNUSABLE_INPUT)


def emit_report(ctx: click.Context, session: Session, output: str | None, fmt: str, lang: str,
                show_secrets: bool) -> None:
    from dlmsdoctor.output.report import ReportError, write_report

    try:
        text = write_report(session, output if output and output != "-" else None, fmt, lang,
                            show_secrets)
    except ReportError as exc:
        click.echo(f"dlmsdoctor: {exc}", err=True)
        ctx.exit(ExitCode.USAGE)
    if not output or output == "-":
        click.echo(text, nl=False)
    else:
        click.echo(f"report written to {output}", err=True)


@click.command(epilog=_EPILOG)
@click.argument("session_path", metavar="SESSION", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default=None,
              help="Report format (default: from -o's extension, else md).")
@click.option("--lang", type=click.Choice(["en", "es"]), default="en", show_default=True,
              help="Report language.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the report here instead of standard output.")
@click.option("--port", type=int, default=None,
              help="For a foreign capture: the meter's TCP port (default: found from the SYN).")
@click.option("--show-secrets", is_flag=True,
              help="Show passwords and keys in clear (they are masked by default).")
@click.pass_context
def report(ctx: click.Context, session_path: str, fmt: str | None, lang: str,
           output: str | None, port: int | None, show_secrets: bool) -> None:
    """Write a diagnostic report from a saved session or a capture."""
    if output and output != "-" and fmt is None and known_format(output) is None:
        # r.pdf must not silently be Markdown: say it before reading anything
        click.echo(f"dlmsdoctor: -o {output}: unknown extension "
                   f"{Path(output).suffix or '(none)'!r}; use .md, .html or .json, or --format",
                   err=True)
        ctx.exit(ExitCode.USAGE)
    session = load_or_exit(ctx, session_path, port)
    emit_report(ctx, session, output, pick_format(fmt, output), lang, show_secrets)
