"""Entry point. Subcommands are imported only when invoked so that start-up stays fast."""

from __future__ import annotations

import importlib
import sys

import click

from dlmsdoctor import __version__
from dlmsdoctor.cli.exit_codes import ExitCode

# name -> "module:attribute"; the module is imported only when the command runs.
_COMMANDS: dict[str, tuple[str, str]] = {
    "decode": ("dlmsdoctor.cli.decode_cmd:decode", "Explain DLMS/HDLC frames given as hex."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target[0].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in sorted(_COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, invoke_without_command=True)
@click.version_option(__version__, prog_name="dlmsdoctor")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """dlmsdoctor: find out why a DLMS/COSEM meter does not answer, with proof."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


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
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        click.echo(
            f"dlmsdoctor: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in dlmsdoctor; please report it with the command you ran.",
            err=True,
        )
        sys.exit(ExitCode.INTERNAL)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
