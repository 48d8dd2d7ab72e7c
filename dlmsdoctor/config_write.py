"""Edits of the config file the TUI makes on request: save a target, replace or remove a
credential set. ``config.py`` reads the file and appends new credential sets; this module
rewrites one ``[targets.NAME]`` or ``[credentials.NAME]`` table in place and leaves every other
line (comments included) as the user wrote it.

The file stays mode 0600: it may hold passwords. Secrets are written only when the user chose
to remember them (the TUI keeps the others for its session, in memory).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dlmsdoctor import paths
from dlmsdoctor.config import ConfigError, Credential, load_config, save_credential

_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _header(kind: str, name: str) -> re.Pattern[str]:
    quoted = re.escape(name)
    return re.compile(rf'^\s*\[\s*{kind}\s*\.\s*(?:{quoted}|"{quoted}")\s*\]\s*(#.*)?$')


def _without_table(text: str, kind: str, name: str) -> tuple[str, bool]:
    """The file's text without the table ``[kind.name]`` (header to the next header)."""
    header = _header(kind, name)
    out: list[str] = []
    skipping = found = False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if header.match(line):
            skipping = found = True
            continue
        if skipping and stripped.startswith("["):
            skipping = False
        if not skipping:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()  # no blank lines pile up where tables were removed
    joined = "".join(out)
    return (joined + "\n" if joined and not joined.endswith("\n") else joined), found


def _write(path: Path, text: str) -> None:
    paths.ensure_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"name {name!r}: use letters, digits, _ . - (e.g. substation-3)")
    return name


def save_target(name: str, snippet: str, path: Path | None = None) -> Path:
    """Write ``snippet`` (a ``[targets.NAME]`` table, e.g. ``diagnosis.profile.toml_snippet``)
    in place of any target of that name; the result must load back, else nothing is written."""
    path = path or paths.config_file()
    check_name(name)
    before = _read(path)
    rest, _ = _without_table(before, "targets", name)
    text = (rest + ("\n" if rest else "")) + snippet.rstrip("\n") + "\n"
    _write(path, text)
    try:
        load_config(path)
    except ConfigError:
        _write(path, before)  # never leave a config the CLI cannot read
        raise
    return path


def remove_credential(name: str, path: Path | None = None) -> bool:
    """Remove ``[credentials.NAME]``; False when it was not there. A target that names the set
    keeps loading only if the set is gone from it too: such targets make this refuse."""
    path = path or paths.config_file()
    config = load_config(path)
    users = sorted(t.name for t in config.targets.values() if name in t.credentials)
    if users:
        raise ConfigError(
            f"credential set {name!r} is used by target(s) {', '.join(users)}: edit them first",
            path=path,
        )
    text, found = _without_table(_read(path), "credentials", name)
    if found:
        _write(path, text)
    return found


def replace_credential(cred: Credential, path: Path | None = None) -> Path:
    """Save ``cred``, replacing a set of the same name (edit in place)."""
    path = path or paths.config_file()
    text, found = _without_table(_read(path), "credentials", cred.name)
    if found:
        _write(path, text)
    return save_credential(cred, path)
