"""`dlmsdoctor decode`: explain frames given as hex, in the forms people paste."""

from __future__ import annotations

import codecs
import itertools
import sys
from collections.abc import Iterable, Iterator
from typing import BinaryIO, NoReturn

import click

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.codec.decode import (
    Chunk,
    DecodeOptions,
    DecodeTally,
    FrameDecode,
    InputProblem,
    iter_decode,
    new_chunk,
)
from dlmsdoctor.codec.hexinput import HexProblem, binary_reason, iter_hex_input

_EPILOG = """\b
Examples:
  dlmsdoctor decode 7E A0 07 03 21 93 0F 01 7E
  dlmsdoctor decode "TX 7E A0 21 02 03 21 93 73 56 81 80 12 ..."
  dlmsdoctor decode -f poller.log --json
  journalctl -u my-poller | dlmsdoctor decode -

\b
Exit codes: 0 every frame valid; 1 some frame has errors, or garbage, or no DLMS frame;
2 no usable hex in the input (or binary input without --raw).
"""


# Options of `decode` and whether each takes a value. Anything else that starts with '-' is
# input: log lines begin with arrows ("-> 7E A0 ..", "--> ..") that click would take for options.
_OPTIONS = {
    "-f": True,
    "--file": True,
    "--direction": True,
    "--json": False,
    "--show-secrets": False,
    "--raw": False,
    "--brief": False,
    "--full": False,
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


_BLOCK = 1 << 16
AUTO_BRIEF = 200  # frames: above this the view gives one line per frame unless --full
_MAX_PROBLEMS = 1000  # kept for --json and the unusable-input message; the rest are counted


class _Binary(Exception):
    """The input is bytes, not text with hex in it."""


def _open_input(
    hex_args: tuple[str, ...], path: str | None
) -> tuple[BinaryIO | None, list[str] | None]:
    """A binary stream to read (file or stdin), or the argument text as lines."""
    if path is not None and path != "-":
        try:
            return open(path, "rb"), None  # closed by the caller
        except OSError as exc:
            _unusable(f"cannot read {path}: {exc.strerror}")
    if path == "-" or hex_args == ("-",) or (not hex_args and not sys.stdin.isatty()):
        return sys.stdin.buffer, None
    return None, " ".join(hex_args).splitlines()


def _text_lines(stream: BinaryIO, first: bytes) -> Iterator[str]:
    """Lines of a UTF-8 stream, read a block at a time (bad bytes become U+FFFD)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    block = first
    while True:
        final = not block
        text = pending + decoder.decode(block, final=final)
        cut = len(text) if final else text.rfind("\n") + 1
        pending = text[cut:]
        yield from text[:cut].splitlines()
        if final:
            return
        block = stream.read(_BLOCK)


def _first_block(stream: BinaryIO, raw: bool) -> bytes:
    first = stream.read(_BLOCK)
    reason = binary_reason(first, final=len(first) < _BLOCK)
    if reason and not raw:
        raise _Binary(reason)
    return first


def _chunks(
    lines: Iterable[str], direction: str | None, problems: _Problems, tally: DecodeTally
) -> Iterator[Chunk]:
    for item in iter_hex_input(lines):
        if isinstance(item, HexProblem):
            problems.add(InputProblem(line=item.line, message=item.message, text=item.source))
            continue
        yield tally.add_chunk(
            new_chunk(item.data, direction or item.direction, item.line, item.timestamp)
        )


def _raw_blocks(
    stream: BinaryIO, first: bytes, direction: str | None, tally: DecodeTally
) -> Iterator[Chunk]:
    """A raw dump as one stream read a block at a time (memory stays flat on any size)."""
    block = first
    started = False
    while block:
        if started:
            tally.bytes += len(block)
            yield Chunk(data=block, direction=direction, continues=True)
        else:
            yield tally.add_chunk(Chunk(data=block, direction=direction))
            started = True
        block = stream.read(_BLOCK)


class _Problems:
    """Input problems: kept (up to a bound) for --json, and queued for the view to print."""

    def __init__(self, queue: bool) -> None:
        self.kept: list[InputProblem] = []
        self.omitted = 0
        self.queued: list[InputProblem] = []
        self._queue = queue  # the view prints them between frames; --json only keeps them

    def add(self, problem: InputProblem) -> None:
        if len(self.kept) < _MAX_PROBLEMS:
            self.kept.append(problem)
        else:
            self.omitted += 1
        if self._queue:
            self.queued.append(problem)

    def take(self) -> list[InputProblem]:
        out, self.queued = self.queued, []
        return out


def _unusable(message: str) -> NoReturn:
    click.echo(f"dlmsdoctor decode: {message}", err=True)
    raise click.exceptions.Exit(ExitCode.UNUSABLE_INPUT)


@click.command(cls=_DecodeCommand, epilog=_EPILOG)
@click.argument("hex_args", nargs=-1, metavar="[HEX]...")
@click.option(
    "-f",
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
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
@click.option(
    "--raw",
    is_flag=True,
    help="The file or standard input holds the bytes themselves (a serial sniffer's dump), "
    "not hex text: decode them as one stream.",
)
@click.option(
    "--brief",
    "view",
    flag_value="brief",
    default=None,
    help=f"One line per frame plus its findings (the default above {AUTO_BRIEF} frames).",
)
@click.option("--full", "view", flag_value="full", help="Every field of every frame, always.")
@click.option("--show-secrets", is_flag=True, help="Show passwords and keys instead of ********.")
def decode(
    hex_args: tuple[str, ...],
    path: str | None,
    as_json: bool,
    direction: str | None,
    raw: bool,
    view: str | None,
    show_secrets: bool,
) -> None:
    """Explain DLMS/HDLC/wrapper frames byte by byte, and check every length and checksum.

    HEX may be spaced or not, with 0x prefixes, Python bytes literals, or whole log lines such as
    "TX 7E A0 ..." or "[2025-10-30 14:51:48.452] RX: 7E A0 ...". With no HEX, reads standard input.
    Large logs are read, decoded and printed frame by frame.
    """
    stream, arg_lines = _open_input(hex_args, path)
    problems = _Problems(queue=not as_json)
    tally = DecodeTally()
    try:
        if stream is None:
            if raw:
                _unusable("--raw reads bytes from a file (-f) or standard input, not arguments")
            chunks: Iterable[Chunk] = _chunks(arg_lines or [], direction, problems, tally)
        else:
            first = _first_block(stream, raw)
            if raw:
                chunks = _raw_blocks(stream, first, direction, tally)
            else:
                chunks = _chunks(_text_lines(stream, first), direction, problems, tally)
        # Span trees only when an output shows them: --brief never, else decided on the first
        # frames (a long log gets one line, or one JSON object without spans, per frame).
        options = DecodeOptions(spans=view != "brief")
        decoded = iter_decode(chunks, show_secrets=show_secrets, options=options)
        frames = (tally.add(fd) for fd in decoded)
        head = next(frames, None)
        if head is None:
            msg = "no hex bytes found in the input"
            if problems.kept:
                msg += "; " + "; ".join(f"line {p.line}: {p.message}" for p in problems.kept[:3])
            _unusable(msg)
        waiting = [head]
        if view is None:
            # Decide on the first frames: hold up to AUTO_BRIEF, then choose.
            waiting += itertools.islice(frames, AUTO_BRIEF)
            if len(waiting) > AUTO_BRIEF:
                view = "brief"
                options.spans = False
                what = "one JSON object without span trees" if as_json else "one line"
                more = "(--full for span trees)" if as_json else "(--full for every field)"
                click.echo(
                    f"dlmsdoctor decode: more than {AUTO_BRIEF} frames: {what} per frame and "
                    f"its findings {more}",
                    err=True,
                )
        everything = itertools.chain(waiting, frames)
        if as_json:
            _write_json(everything, tally, problems, show_secrets, spans=view != "brief")
        else:
            _write_view(everything, tally, problems, view, show_secrets)
    except _Binary as exc:
        _unusable(
            f"the input is binary, not hex text ({exc}); to decode raw bytes as a received "
            "stream (a serial sniffer's dump), add --raw"
        )
    finally:
        if stream is not None and stream is not sys.stdin.buffer:
            stream.close()
    raise click.exceptions.Exit(ExitCode.FINDINGS if tally.has_errors else ExitCode.OK)


def _write_json(
    frames: Iterator[FrameDecode],
    tally: DecodeTally,
    problems: _Problems,
    show_secrets: bool,
    spans: bool,
) -> None:
    from dlmsdoctor.output.decode_json import DocumentWriter

    writer = DocumentWriter(sys.stdout, show_secrets, spans)
    for fd in frames:
        writer.frame(fd)
    writer.finish(tally, problems.kept, problems.omitted)


def _write_view(
    frames: Iterator[FrameDecode],
    tally: DecodeTally,
    problems: _Problems,
    view: str | None,
    show_secrets: bool,
) -> None:
    from dlmsdoctor.output.console import stdout_console
    from dlmsdoctor.output.decode_view import (
        LinePrinter,
        brief_lines,
        brief_plain,
        frame_lines,
        problem_line,
        summary_line,
    )

    printer = LinePrinter(stdout_console())
    render = brief_lines if view == "brief" else frame_lines
    # A frame with nothing to report is one line of plain text on a pipe: no rich Text for it.
    plain_brief = view == "brief" and printer.plain
    for fd in frames:
        if problems.queued:
            printer.print([problem_line(p) for p in problems.take()])
        line = brief_plain(fd) if plain_brief else None
        if line is not None:
            printer.write(line)
        else:
            printer.print(render(fd, show_secrets))
    printer.print([problem_line(p) for p in problems.take()])
    printer.print([summary_line(tally)])
    printer.flush()
