"""Files the TUI has opened (sessions and captures), remembered for the History screen.

A small JSON list in the data dir (``opened.json``), newest first. Written only when a file was
opened successfully, so the data dir appears on first write, never on read. A damaged list is
ignored, never fatal.
"""

from __future__ import annotations

import json
from pathlib import Path

from dlmsdoctor import paths

KEEP = 20


def opened_list_file() -> Path:
    return paths.data_dir() / "opened.json"


def opened_files() -> list[Path]:
    try:
        doc = json.loads(opened_list_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(doc, list):
        return []
    return [Path(item) for item in doc if isinstance(item, str)]


def remember_opened(path: Path) -> None:
    """Put ``path`` first in the list; an unwritable data dir only loses the memory."""
    resolved = path.expanduser().resolve()
    items = [resolved, *(p for p in opened_files() if p != resolved)][:KEEP]
    try:
        paths.ensure_dir(opened_list_file().parent)
        opened_list_file().write_text(json.dumps([str(p) for p in items], indent=1), "utf-8")
    except OSError:
        pass
