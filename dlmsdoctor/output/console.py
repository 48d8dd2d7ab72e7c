"""The one place that builds rich consoles: data to stdout, diagnostics to stderr.

Colour follows the terminal: none on a pipe, none with NO_COLOR (rich honours it), none with
TERM=dumb.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def stdout_console() -> Console:
    # soft_wrap on pipes so that long hex lines are not cut into pieces for grep
    is_tty = sys.stdout.isatty()
    return Console(
        file=sys.stdout,
        no_color=_no_color(),
        highlight=False,
        soft_wrap=not is_tty,
        width=None if is_tty else 160,
    )


def stderr_console() -> Console:
    return Console(file=sys.stderr, no_color=_no_color(), highlight=False, stderr=True)
