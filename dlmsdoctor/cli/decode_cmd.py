"""`dlmsdoctor decode`: explain frames given as hex, in the forms people paste."""

from __future__ import annotations

import json
import sys

import click

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.codec.decode import Chunk, DecodeResult, InputProblem, decode_chunks
from dlmsdoctor.codec.hexinput import parse_hex_input

_EPILOG = """\b
Examples:
  dlmsdoctor decode 7E A0 07 03 21 93 0F 01 7E
  dlmsdoctor decode "TX 7E A0 21 02 03 21 93 73 56 81 80 12 ..."
  dlmsdoctor decode -f poller.log --json
  journalctl -u my-poller | dlmsdoctor decode -

\b
Exit codes: 0 every frame valid; 1 some frame has errors; 2 no usable hex in the input.
"""


def _read_input(hex_args: tuple[str, ...], file: click.File | None) -> str:
    if file is not None:
        return str(file.read())  # type: ignore[attr-defined]
    if hex_args == ("-",) or (not hex_args and not sys.stdin.isatty()):
        return sys.stdin.read()
    return " ".join(hex_args)


def _decode_text(text: str, direction: str | None, show_secrets: bool) -> DecodeResult:
    parsed = parse_hex_input(text)
    chunks = [
        Chunk(
            data=c.data,
            direction=direction or c.direction,
            line=c.line,
            timestamp=c.timestamp,
        )
        for c in parsed.chunks
    ]
    result = decode_chunks(chunks, show_secrets=show_secrets)
    problems = tuple(
        InputProblem(line=p.line, message=p.message, text=p.source) for p in parsed.problems
    )
    return DecodeResult(chunks=result.chunks, frames=result.frames, problems=problems)


@click.command(epilog=_EPILOG)
@click.argument("hex_args", nargs=-1, metavar="[HEX]...")
@click.option(
    "-f",
    "--file",
    "file",
    type=click.File("r", encoding="utf-8", errors="replace"),
    help="Read hex or log lines from a file ('-' for standard input).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document instead of the view."
)
@click.option(
    "--direction",
    type=click.Choice(["tx", "rx"]),
    default=None,
    help="Treat every chunk as sent (tx) or received (rx); default: from log words, else guess.",
)
@click.option("--show-secrets", is_flag=True, help="Show passwords and keys instead of ********.")
def decode(
    hex_args: tuple[str, ...],
    file: click.File | None,
    as_json: bool,
    direction: str | None,
    show_secrets: bool,
) -> None:
    """Explain DLMS/HDLC/wrapper frames byte by byte, and check every length and checksum.

    HEX may be spaced or not, with 0x prefixes, Python bytes literals, or whole log lines such as
    "TX 7E A0 ..." or "[2025-10-30 14:51:48.452] RX: 7E A0 ...". With no HEX, reads standard input.
    """
    text = _read_input(hex_args, file)
    result = _decode_text(text, direction, show_secrets)
    if not result.frames:
        msg = "no hex bytes found in the input"
        if result.problems:
            msg += "; " + "; ".join(f"line {p.line}: {p.message}" for p in result.problems[:3])
        click.echo(f"dlmsdoctor decode: {msg}", err=True)
        raise click.exceptions.Exit(ExitCode.UNUSABLE_INPUT)

    if as_json:
        from dlmsdoctor.output.decode_json import decode_document

        click.echo(json.dumps(decode_document(result, show_secrets), indent=2, ensure_ascii=False))
    else:
        from dlmsdoctor.output.console import stdout_console
        from dlmsdoctor.output.decode_view import render_result

        render_result(stdout_console(), result, show_secrets)
    raise click.exceptions.Exit(ExitCode.FINDINGS if result.has_errors else ExitCode.OK)
