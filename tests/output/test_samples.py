"""The curated samples in captures/: each pcapng matches its session, tshark reads it cleanly,
every report renders, and the README says what each one is."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlmsdoctor.events import Direction
from dlmsdoctor.output.capture_read import read_capture
from dlmsdoctor.output.report import render_report
from dlmsdoctor.output.report_frames import annotate
from dlmsdoctor.session import Session
from tests.output.test_capture import followed_streams, needs_tshark, tshark_problems

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
NAMES = sorted(p.name.removesuffix(".session.json") for p in CAPTURES.glob("*.session.json"))


def _load(name: str) -> Session:
    return Session.loads((CAPTURES / f"{name}.session.json").read_text(encoding="utf-8"))


def test_there_are_samples_and_the_readme_names_each() -> None:
    assert len(NAMES) >= 5
    readme = (CAPTURES / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert f"`{name}`" in readme, f"captures/README.md says nothing about {name}"
        assert (CAPTURES / f"{name}.pcapng").exists()


@pytest.mark.parametrize("name", NAMES)
def test_pcapng_holds_the_session_masked(name: str) -> None:
    session = _load(name)
    back = read_capture(CAPTURES / f"{name}.pcapng")
    assert len(back.frames) == len(session.frames)
    for a, b in zip(back.frames, session.frames, strict=True):
        assert (a.index, a.conn_id, a.direction, a.step_id) == (b.index, b.conn_id, b.direction,
                                                                 b.step_id)
        assert round(a.at * 1e6) == round(b.at * 1e6)
        assert a.data == annotate(b).data  # the session's bytes, secrets masked
    back.frames = session.frames
    assert back.to_json() == session.to_json()


@needs_tshark
@pytest.mark.parametrize("name", NAMES)
def test_tshark_reads_each_sample_cleanly(name: str) -> None:
    path = CAPTURES / f"{name}.pcapng"
    session = _load(name)
    assert tshark_problems(path) == ""
    opened = [c for c in session.connections if c.opened_at is not None and not c.failed]
    streams = followed_streams(path, len(opened))
    for conn, (client, server) in zip(opened, streams, strict=True):
        frames = [annotate(f) for f in session.frames if f.conn_id == conn.id]
        assert client == b"".join(f.data for f in frames if f.direction is Direction.TX)
        assert server == b"".join(f.data for f in frames if f.direction is Direction.RX)


@pytest.mark.parametrize("name", NAMES)
def test_every_report_of_each_sample_renders_without_secrets(name: str) -> None:
    session = _load(name)
    for fmt in ("md", "html", "json"):
        for lang in ("en", "es"):
            text = render_report(session, fmt, lang)
            assert session.target.host in text
            if name == "wrong-password":
                assert "99999999" not in text  # the scenario's (wrong) password
