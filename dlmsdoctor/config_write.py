"""Edits of the config file the TUI makes on request: save a target, replace or remove a
credential set. ``config.py`` reads the file and appends new credential sets; this module
rewrites one ``[targets.NAME]`` or ``[credentials.NAME]`` table in place and leaves every other
line (comments included) as the user wrote it.

``target_table`` writes any target the config reads (a TCP meter, a serial line, an optical
head, an RFC 2217 bridge) in the keys ``config.py`` reads, so that it loads back as the same
``TargetConfig``; the TUI's save and the printed working profile both use it.

The file stays mode 0600: it may hold passwords. Secrets are written only when the user chose
to remember them (the TUI keeps the others for its session, in memory).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from dlmsdoctor import paths
from dlmsdoctor.config import (
    ConfigError,
    Credential,
    TargetConfig,
    load_config,
    save_credential,
    toml_key,
    toml_string,
)
from dlmsdoctor.target_rules import link_of

_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _header(kind: str, name: str) -> re.Pattern[str]:
    quoted = re.escape(name)
    return re.compile(rf'^\s*\[\s*{kind}\s*\.\s*(?:{quoted}|"{quoted}")\s*\]\s*(#.*)?$')


def _split_table(text: str, kind: str, name: str) -> tuple[str, str, bool]:
    """The file's text before and after the table ``[kind.name]``, and whether it was there.

    The table runs from its header to its last key line: comments and blank lines between it
    and the next header stay in ``after`` (they introduce the next table, or end the file)."""
    header = _header(kind, name)
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return text, "", False
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].strip().startswith("[")), len(lines))
    while end > start + 1 and (not lines[end - 1].strip()
                               or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return "".join(lines[:start]), "".join(lines[end:]), True


def _without_table(text: str, kind: str, name: str) -> tuple[str, bool]:
    """The file's text without the table ``[kind.name]`` (see ``_split_table``)."""
    before, after, found = _split_table(text, kind, name)
    if not found:
        return text, False
    if not before.strip() or before.endswith("\n\n"):
        after = after.lstrip("\n")  # no blank lines pile up where the table was
    joined = (before + after).rstrip("\n")
    return (joined + "\n" if joined else ""), True


def _with_table(text: str, kind: str, name: str, table: str) -> str:
    """``table`` where ``[kind.name]`` was, the lines around it as they were; a new table goes
    at the end, after a blank line."""
    before, after, found = _split_table(text, kind, name)
    table = table.strip("\n") + "\n"
    if not found:
        before = text.rstrip("\n")
        return (before + "\n\n" if before else "") + table
    if before and not before.endswith("\n"):
        before += "\n"
    return before + table + after


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
    where the target of that name was (at the end for a new one); the result must load back,
    else nothing is written."""
    path = path or paths.config_file()
    check_name(name)
    before = _read(path)
    _write(path, _with_table(before, "targets", name, snippet))
    try:
        load_config(path)
    except ConfigError:
        _write(path, before)  # never leave a config the CLI cannot read
        raise
    return path


def target_table(target: TargetConfig, notes: Mapping[str, str] | None = None) -> str:
    """The ``[targets.NAME]`` table that loads back as ``target``; ``notes`` adds a comment
    after a key's line (e.g. what a credential set named there is)."""
    notes = notes or {}
    lines = [f"[targets.{toml_key(target.name)}]"]

    def add(key: str, value: str) -> None:
        note = notes.get(key)
        lines.append(f"{key} = {value}" + (f"  # {note}" if note else ""))

    if target.link == "tcp":
        add("host", toml_string(target.host))
        add("port", str(target.port))
    else:
        # a serial device is the device key; an RFC 2217 bridge stays a host (its URL)
        add("host" if link_of(target.host) == "rfc2217" else "device", toml_string(target.host))
        if target.baud is not None:
            add("baud", target.baud if target.baud.isdigit() else toml_string(target.baud))
        if target.serial_format is not None:
            add("serial_format", toml_string(target.serial_format))
        if target.link == "optical":
            add("optical", "true")
    for key in ("framing", "server_address"):
        value = getattr(target, key)
        if value is not None:
            add(key, toml_string(value))
    if target.address_size is not None:
        add("address_size", str(target.address_size))
    if target.serial_number is not None:
        add("serial_number", toml_string(target.serial_number))
    if target.credentials:
        add("credentials", "[" + ", ".join(toml_string(c) for c in target.credentials) + "]")
    return "\n".join(lines) + "\n"


def save_target_config(target: TargetConfig, path: Path | None = None,
                       notes: Mapping[str, str] | None = None) -> Path:
    """Save ``target`` (``save_target`` with ``target_table``); it must load back as the same
    target, else the file is left as it was and ConfigError says what differs."""
    path = path or paths.config_file()
    before = _read(path)
    save_target(target.name, target_table(target, notes), path)
    loaded = load_config(path).targets.get(target.name)
    if loaded != target:
        _write(path, before)
        raise ConfigError(f"target {target.name!r} would not load back as it was saved "
                          f"(read {loaded!r}, meant {target!r}): not saved", path=path)
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
