"""Process exit codes: one enum, tested, shared by every subcommand.

2 is bad input (a file or hex that cannot be read: a damaged session or capture names the file
and the place), 64 a usage mistake (command line, config, an option value), 70 only a bug of
ours. Click's own usage errors (an unknown option, a value not among the choices) keep click's 2.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # decode
    FINDINGS = 1  # decoded, but some frame has error-severity findings
    UNUSABLE_INPUT = 2  # an input that cannot be read: no hex, a damaged session or capture
    USAGE = 64  # bad command line or config (click's own usage errors also exit 2)
    INTERNAL = 70  # a bug of ours: the user gets a message, never a traceback
    IO_ERROR = 74  # writing the output failed (disk full, read-only; sysexits EX_IOERR)
    INTERRUPTED = 130
