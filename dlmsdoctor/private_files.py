"""Files that may hold a meter's identity, and with ``--show-secrets`` its secrets: sessions,
reports, captures. Written 0600 whatever the umask (issue 10 item 11), like the ledger."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_MODE = 0o600


def write_private(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` (created 0600, or truncated and made 0600); raises OSError.

    A path that is not a regular file (``/dev/stdout``, a FIFO) is written as it is: its mode
    belongs to someone else."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_MODE)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, PRIVATE_MODE)  # an existing file keeps its old mode otherwise
        view = memoryview(raw)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)
