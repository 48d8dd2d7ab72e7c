"""Damaged session JSON: exit 2 with one line naming the file and the JSON path, never a
traceback, a Python-internal message or exit 70 (issue 10 item 8)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlmsdoctor.output.capture_read import load_session_file
from dlmsdoctor.session import Session, SessionFormatError
from tests.helpers.damage import CAPTURES, PYTHON_WORDS, mutate_bytes, mutate_json, run_cli

SESSION_SAMPLES = sorted(CAPTURES.glob("*.session.json"))
DOCS = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SESSION_SAMPLES}


def _check(path: Path) -> str:
    errors = ""
    for command in ("open", "report"):
        got = run_cli([command, str(path)])
        assert got.problems(path) == [], (command, got.code, got.stderr[-500:])
        assert not any(word in got.stderr for word in PYTHON_WORDS), got.stderr
        errors = got.stderr
    return errors


def _write(tmp_path: Path, text: str, name: str = "s.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("sample", SESSION_SAMPLES, ids=[p.name for p in SESSION_SAMPLES])
def test_mutations_of_every_saved_session(sample: Path, tmp_path: Path) -> None:
    rng = random.Random(sample.name)
    doc = DOCS[sample.name]
    for n in range(16):
        if n % 4 == 3:
            _, data = mutate_bytes(sample.read_bytes(), rng)
            path = tmp_path / f"{n}.json"
            path.write_bytes(data)
        else:
            _, text = mutate_json(doc, rng)
            path = _write(tmp_path, text, f"{n}.json")
        _check(path)


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(DOCS)), seed=st.integers(0, 2**32 - 1),
       rounds=st.integers(1, 4))
def test_hypothesis_json_mutations(name: str, seed: int, rounds: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    doc: Any = DOCS[name]
    text = json.dumps(doc)
    for _ in range(rounds):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            break  # already not JSON: one damage is enough
        _, text = mutate_json(doc, rng)
    _check(_write(tmp_path, text))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None, database=None)
@given(field=st.sampled_from(["target", "steps", "frames", "connections", "pings", "findings",
                              "logins", "identity", "settings", "diagnosis", "duration",
                              "cancelled", "kind"]), value=json_values)
def test_any_json_value_in_any_top_field_is_read_or_named(field: str, value: Any) -> None:
    doc = dict(DOCS["wrong-password.session.json"])
    doc[field] = value
    try:
        Session.from_json(doc)
    except SessionFormatError as exc:
        assert str(exc).startswith(field), str(exc)


def test_json_nested_100000_deep_is_named_not_a_recursion_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "[" * 100_000)
    message = _check(path)
    assert str(path) in message and "Recursion" not in message
    deep = json.dumps(DOCS["healthy.session.json"]).replace(
        '"identity": {', '"identity": {"x": ' + "[" * 100_000 + "]" * 100_000 + ", ", 1)
    _check(_write(tmp_path, deep, "deep.json"))


@pytest.mark.parametrize(("change", "where"), [
    (lambda d: d["diagnosis"]["causes"][0].update(evidence=[5]),
     "diagnosis.causes[0].evidence[0]: expected an object, found a number"),
    (lambda d: d["diagnosis"]["causes"][0].update(actions="now"),
     "diagnosis.causes[0].actions: expected a list"),
    (lambda d: d["diagnosis"].update(profile=[]), "diagnosis.profile: expected an object"),
    (lambda d: d["target"].update(port=70000), "target.port: expected an integer from 0 to"),
    (lambda d: d["frames"][0].update(index=-1), "frames[0].index: expected an integer from 0"),
    (lambda d: d["steps"][0].update(details=[]), "steps[0].details: expected an object"),
    (lambda d: d.update(cancelled="yes"), "cancelled: expected true or false"),
    (lambda d: d["frames"][0].update(late=1), "frames[0].late: expected true or false"),
    (lambda d: d.update(version="2"), "version: expected a schema version number"),
])
def test_damaged_fields_are_named_with_their_path(change: Any, where: str,
                                                  tmp_path: Path) -> None:
    doc = json.loads(json.dumps(DOCS["wrong-password.session.json"]))
    change(doc)
    path = _write(tmp_path, json.dumps(doc))
    with pytest.raises(SessionFormatError) as info:
        load_session_file(path)
    assert where in str(info.value) and str(path) in str(info.value)
    assert _check(path).count("\n") == 1


def test_nan_and_infinity_are_not_times(tmp_path: Path) -> None:
    text = json.dumps(DOCS["healthy.session.json"]).replace('"duration": ', '"duration": NaN, '
                                                            '"x": ', 1)
    message = _check(_write(tmp_path, text))
    assert "NaN" in message


def test_unknown_keys_are_ignored_not_fatal(tmp_path: Path) -> None:
    """A field a later dlmsdoctor adds (same schema version) must not make the file unreadable."""
    doc = json.loads(json.dumps(DOCS["healthy.session.json"]))
    doc["frames"][0]["added_later"] = 1
    doc["target"]["added_later"] = "x"
    session = load_session_file(_write(tmp_path, json.dumps(doc)))
    assert len(session.frames) == len(doc["frames"])


def test_a_number_of_thousands_of_digits_is_named_not_pythons_limit(tmp_path: Path) -> None:
    text = json.dumps(DOCS["healthy.session.json"]).replace(
        '"identity": {', '"identity": {"x": ' + "9" * 5000 + ", ", 1)
    message = _check(_write(tmp_path, text))
    assert "thousands of digits" in message and "set_int_max_str_digits" not in message
