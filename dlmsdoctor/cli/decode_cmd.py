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


# Options of `decode` and whether each takes a value. Anything else that starts with '-' is
# input: log lines begin with arrows ("-> 7E A0 ..", "--> ..") that click would take for options.
_OPTIONS = {
    "-f": True,
    "--file": True,
    "--direction": True,
    "--json": False,
    "--show-secrets": False,
    "--help": False,
    "-h": False,
}


def hex_after_options(args: list[str]) -> list[str]:
    """Reorder ``args`` as options, then ``--``, then the input words, for click."""
    options: list[str] = []
    words: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            words.extend(args[i:])
            break
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg
        if name in _OPTIONS:
            options.append(arg)
            if _OPTIONS[name] and "=" not in arg and i < len(args):
                options.append(args[i])
                i += 1
        elif arg.startswith("-f") and len(arg) > 2 and arg[2] not in "> -<":
            options.append(arg)  # -fpoller.log
        else:
            words.append(arg)
    return [*options, "--", *words] if words else options


class _DecodeCommand(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hex_after_options(args))


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


@click.command(cls=_DecodeCommand, epilog=_EPILOG)
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
