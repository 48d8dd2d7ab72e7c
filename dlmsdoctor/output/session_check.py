"""Check a session JSON document field by field before it is turned into a Session.

A damaged file (edited by hand, cut short, from another tool) must give one line that names the
field, ``frames[3].data: expected hex``, not a Python message (``'status'``,
``non-hexadecimal number found in fromhex() arg``) or, worse, a crash later in the rules when a
time is a string. Only the fields the report, the TUI and the diagnosis rely on are checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dlmsdoctor.events import CloseHow, Direction, StepStatus
from dlmsdoctor.session import SessionFormatError

Check = Callable[[Any], str | None]  # None: fine; else what was expected

_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")


def _number(value: Any) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return None if ok else "expected a number"


def _optional_number(value: Any) -> str | None:
    return None if value is None else _number(value)


def _integer(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    return None if ok else "expected an integer"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else "expected a string"


def _hex(value: Any) -> str | None:
    return None if isinstance(value, str) and _HEX.fullmatch(value) else "expected hex"


def _one_of(*values: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in values else f"expected one of {', '.join(values)}"

    return check


def _optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


def _dict(value: Any) -> str | None:
    return None if isinstance(value, dict) else "expected an object"


def _int_list(value: Any) -> str | None:
    ok = isinstance(value, list) and all(_integer(x) is None for x in value)
    return None if ok else "expected a list of integers"


# field -> (required, check), per list of records
_RECORDS: dict[str, dict[str, tuple[bool, Check]]] = {
    "steps": {
        "id": (True, _text), "title": (True, _text), "layer": (True, _text),
        "status": (True, _one_of(*(s.value for s in StepStatus))),
        "started": (False, _optional_number), "finished": (False, _optional_number),
        "summary": (False, _text), "details": (False, _dict),
    },
    "frames": {
        "index": (True, _integer), "conn_id": (True, _integer),
        "direction": (True, _one_of(*(d.value for d in Direction))),
        "at": (True, _number), "data": (True, _hex), "step_id": (False, _text),
        "kind": (False, _text), "summary": (False, _text),
    },
    "connections": {
        "id": (True, _integer), "host": (True, _text), "port": (True, _integer),
        "opened_at": (False, _optional_number), "connect_time": (False, _optional_number),
        "closed_at": (False, _optional_number),
        "close_how": (False, _optional(_one_of(*(c.value for c in CloseHow)))),
    },
    "pings": {
        "at": (True, _number), "ident": (True, _integer), "seq": (True, _integer),
        "payload": (True, _hex), "reply_at": (False, _optional_number),
        "rtt": (False, _optional_number),
    },
    "findings": {
        "step_id": (True, _text), "code": (True, _text), "severity": (True, _text),
        "message": (True, _text), "at": (True, _number), "frames": (False, _int_list),
        "data": (False, _dict),
    },
    "logins": {
        "step_id": (True, _text), "at": (True, _number), "credential": (True, _text),
        "client_sap": (True, _integer), "mechanism": (True, _text), "outcome": (True, _text),
    },
}

_TOP: dict[str, tuple[bool, Check]] = {
    "id": (True, _text), "tool_version": (True, _text), "started_at": (True, _text),
    "target": (True, _dict), "duration": (False, _optional_number),
}

_CAUSE: dict[str, tuple[bool, Check]] = {
    "code": (True, _text), "title": (True, _text), "confidence": (True, _number),
    "whose": (True, _text),
}


def check_session_doc(doc: Any) -> None:
    """Raise SessionFormatError naming the first field that is missing or of the wrong type.

    A document that is not a session at all (no schema) is left to ``Session.from_json``."""
    if not isinstance(doc, dict) or "schema" not in doc:
        return
    _check_fields(doc, _TOP, "")
    target = doc["target"]
    _check_fields(target, {"host": (True, _text), "port": (True, _integer)}, "target.")
    for key, fields in _RECORDS.items():
        records = doc.get(key, [])
        if not isinstance(records, list):
            raise SessionFormatError(f"{key}: expected a list")
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise SessionFormatError(f"{key}[{i}]: expected an object")
            _check_fields(record, fields, f"{key}[{i}].")
    diagnosis = doc.get("diagnosis")
    if diagnosis is None:
        return
    if not isinstance(diagnosis, dict):
        raise SessionFormatError("diagnosis: expected an object")
    _check_fields(diagnosis, {"status": (True, _text), "headline": (True, _text)}, "diagnosis.")
    causes = diagnosis.get("causes", [])
    if not isinstance(causes, list):
        raise SessionFormatError("diagnosis.causes: expected a list")
    for i, cause in enumerate(causes):
        if not isinstance(cause, dict):
            raise SessionFormatError(f"diagnosis.causes[{i}]: expected an object")
        _check_fields(cause, _CAUSE, f"diagnosis.causes[{i}].")


def _check_fields(record: dict[str, Any], fields: dict[str, tuple[bool, Check]],
                  where: str) -> None:
    for name, (required, check) in fields.items():
        if name not in record:
            if required:
                raise SessionFormatError(f"{where}{name}: missing")
            continue
        problem = check(record[name])
        if problem:
            raise SessionFormatError(f"{where}{name}: {problem}")
