"""Entry point. Subcommands are imported only when invoked so that start-up stays fast."""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys

import click

from dlmsdoctor import __version__
from dlmsdoctor.cli.exit_codes import ExitCode

# name -> "module:attribute"; the module is imported only when the command runs.
_COMMANDS: dict[str, tuple[str, str]] = {
    "probe": ("dlmsdoctor.cli.probe_cmd:probe", "Diagnose a meter: climb the ladder, rank causes."),
    "demo": ("dlmsdoctor.cli.demo_cmd:demo", "Diagnose the built-in simulated meter with a fault."),
    "decode": ("dlmsdoctor.cli.decode_cmd:decode", "Explain DLMS/HDLC frames given as hex."),
    "simulate": (
        "dlmsdoctor.cli.simulate_cmd:simulate",
        "Run a simulated meter with field faults.",
    ),
    "report": ("dlmsdoctor.cli.report_cmd:report", "Write a report from a session or capture."),
    "open": ("dlmsdoctor.cli.open_cmd:open_", "Load a session or capture (pcap/pcapng)."),
    "tap": ("dlmsdoctor.cli.tap_cmd:tap", "Relay your poller to the meter; diagnose both sides."),
}
_ORDER = ["probe", "demo", "decode", "simulate", "report", "open", "tap"]


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_ORDER)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target[0].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][1]) for name in _ORDER]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, invoke_without_command=True)
@click.version_option(__version__, prog_name="dlmsdoctor")
@click.option(
    "--session",
    "session_path",
    type=click.Path(dir_okay=False),
    help="Open a saved session or capture in the TUI.",
)
@click.pass_context
def cli(ctx: click.Context, session_path: str | None) -> None:
    """dlmsdoctor: find out why a DLMS/COSEM meter does not answer, with proof.

    With no command, opens the terminal user interface (on a terminal).
    """
    if ctx.invoked_subcommand is not None:
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # A script or a pipe: a full-screen app would hang it. Say what there is instead.
        if session_path is not None:
            click.echo(
                "dlmsdoctor: the TUI needs a terminal; without one use "
                f"`dlmsdoctor open {session_path}` or `dlmsdoctor report {session_path}`",
                err=True,
            )
            raise click.exceptions.Exit(ExitCode.USAGE)
        click.echo(ctx.get_help())
        return
    from dlmsdoctor.app import main as tui_main

    raise click.exceptions.Exit(tui_main(session_path))


def run() -> None:
    """Console-script entry: no traceback ever reaches the user."""
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        sys.exit(ExitCode.OK)
    except Exception as exc:
        code = _input_or_usage(exc)
        if code is not None:  # a command that let a reader's or parser's error through
            click.echo(f"dlmsdoctor: {' '.join(str(exc).split())}", err=True)
            sys.exit(code)
        if isinstance(exc, OSError) and exc.errno in _CANNOT_WRITE:
            click.echo(f"dlmsdoctor: cannot write: {exc.strerror}", err=True)  # disk full...
            sys.exit(ExitCode.IO_ERROR)
        click.echo(
            f"dlmsdoctor: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in dlmsdoctor; please report it with the command you ran.",
            err=True,
        )
        sys.exit(ExitCode.INTERNAL)
    # Commands end with click's Exit(code); with standalone_mode=False click returns that code.
    sys.exit(_flushed(code if isinstance(code, int) else ExitCode.OK))


# Writing fails for reasons that are the machine's, not a bug: say so (exit 74, EX_IOERR
# "an I/O error") instead of "internal error".
_CANNOT_WRITE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


def _flushed(code: int) -> int:
    """Flush stdout here, where a failure can still be said in one line (at interpreter exit
    Python would print "Exception ignored ..." and exit 120)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        click.echo(f"dlmsdoctor: cannot write the output: {exc.strerror}", err=True)
        return ExitCode.IO_ERROR if code == ExitCode.OK else code
    return code


# Errors that are the input's or the user's, not ours, by the module that defines them: a
# command should catch them itself; if one slips through, it still is not "internal error".
_NOT_A_BUG = {
    "dlmsdoctor.session": (("SessionFormatError",), ExitCode.UNUSABLE_INPUT),
    "dlmsdoctor.output.capture_read": (("CaptureFormatError",), ExitCode.UNUSABLE_INPUT),
    "dlmsdoctor.config": (("ConfigError",), ExitCode.USAGE),
    "dlmsdoctor.engine": (("OptionsError",), ExitCode.USAGE),
    "dlmsdoctor.sim.profile": (("ProfileError",), ExitCode.USAGE),
}


def _input_or_usage(exc: BaseException) -> ExitCode | None:
    for module_name, (names, code) in _NOT_A_BUG.items():
        module = sys.modules.get(module_name)  # not loaded: its errors cannot have been raised
        for name in names:
            kind = getattr(module, name, None) if module is not None else None
            if isinstance(kind, type) and isinstance(exc, kind):
                return code
    return None
