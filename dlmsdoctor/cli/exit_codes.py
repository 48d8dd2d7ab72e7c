"""Process exit codes: one enum, tested, shared by every subcommand."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # decode
    FINDINGS = 1  # decoded, but some frame has error-severity findings
    UNUSABLE_INPUT = 2  # nothing that looks like hex/bytes could be read
    USAGE = 64  # bad command line or config (click's own usage errors also exit 2)
    INTERNAL = 70  # a bug of ours: the user gets a message, never a traceback
    INTERRUPTED = 130
