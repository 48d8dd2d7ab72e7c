"""A damaged session JSON names the field at fault (QA defect 9), for every record list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlmsdoctor.output.capture_read import load_session_file
from dlmsdoctor.session import SessionFormatError
from tests.output.seed_session import seed_session


def _damaged(tmp_path: Path, change: object) -> Path:
    doc = json.loads(seed_session().dumps())
    change(doc)  # type: ignore[operator]
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(("where", "change"), [
    ("frames[3].data: expected hex", lambda d: d["frames"][3].update(data="zz")),
    ("frames[3].at: expected a number", lambda d: d["frames"][3].update(at="soon")),
    ("frames[0].direction: expected one of", lambda d: d["frames"][0].update(direction="up")),
    ("steps[1].status: missing", lambda d: d["steps"][1].pop("status")),
    ("connections[0].close_how: expected one of",
     lambda d: d["connections"][0].update(close_how="bang")),
    ("pings[0].payload: expected hex", lambda d: d["pings"][0].update(payload="xyz")),
    ("logins[0].client_sap: expected an integer",
     lambda d: d["logins"][0].update(client_sap="16")),
    ("diagnosis.causes[0].confidence: expected a number",
     lambda d: d["diagnosis"]["causes"][0].update(confidence="high")),
    ("target.port: missing", lambda d: d["target"].pop("port")),
])
def test_damaged_field_is_named(tmp_path: Path, where: str, change: object) -> None:
    with pytest.raises(SessionFormatError) as info:
        load_session_file(_damaged(tmp_path, change))
    assert where in str(info.value) and "s.json" in str(info.value)


def test_an_intact_session_loads(tmp_path: Path) -> None:
    session = load_session_file(_damaged(tmp_path, lambda d: None))
    assert len(session.frames) == len(seed_session().frames)
