"""Every kind of session the code makes or branches on has its words on screen (a browsing
session is never called a probe run), and the screens' words follow the kind."""

from __future__ import annotations

import ast
from pathlib import Path

import dlmsdoctor
from dlmsdoctor.browse import SESSION_KIND
from dlmsdoctor.events import StepStatus
from dlmsdoctor.screens.export import of_kind
from dlmsdoctor.screens.kinds import KIND_NAMES, kind_name, reads_line
from dlmsdoctor.session import Session, StepRecord, Target

ROOT = Path(dlmsdoctor.__file__).parent


def _is_session(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and "session" in node.id.lower()


def session_kinds() -> dict[str, str]:
    """kind -> where: every str a session's ``kind`` is set to (``session.kind = "capture"``,
    ``Session(..., kind="tap")``) or compared with (``session.kind == "tap"``)."""
    found: dict[str, str] = {}
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values: list[ast.AST] = []
            if isinstance(node, ast.Assign):
                if any(isinstance(t, ast.Attribute) and t.attr == "kind" and _is_session(t.value)
                       for t in node.targets):
                    values.append(node.value)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Session":
                values += [k.value for k in node.keywords if k.arg == "kind"]
            elif (isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute)
                  and node.left.attr == "kind" and _is_session(node.left.value)):
                values += node.comparators
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.setdefault(value.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_kind_has_its_words() -> None:
    kinds = session_kinds()
    assert {"tap", "capture", "browse"} <= set(kinds), kinds  # the scan sees them
    kinds.setdefault(SESSION_KIND, "browse.py")
    assert {kind: where for kind, where in kinds.items() if kind not in KIND_NAMES} == {}
    assert set(KIND_NAMES) >= {"probe", Session.__dataclass_fields__["kind"].default}


def _session(kind: str) -> Session:
    steps = [StepRecord("browse.get.1", "GET", "cosem", StepStatus.OK, summary="x = 1"),
             StepRecord("browse.get.2", "GET", "cosem", StepStatus.WARNING, summary="y: denied")]
    return Session("s", "0", "2026-01-01T00:00:00+00:00", Target("192.0.2.1", 4059), kind=kind,
                   steps=steps if kind == "browse" else [])


def test_the_words_follow_the_kind() -> None:
    assert kind_name(_session("browse")) == "browsing session"
    assert reads_line(_session("browse")) == "2 reads, 1 refused or unanswered"
    assert reads_line(_session("probe")) == ""  # a probe's GETs are no reads of a browser
    assert of_kind(_session("probe")) == ""
    assert of_kind(_session("browse")) == " of the browsing session"
    assert of_kind(_session("tap")) == " of the tap session"
