"""`dlmsdoctor open` in-process: summaries of sessions and captures, exports, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.cli.open_cmd import open_
from dlmsdoctor.output.capture import write_capture
from dlmsdoctor.output.capture_read import read_capture
from dlmsdoctor.session import Session
from tests.output.seed_session import seed_session


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(open_, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout, result.stderr


def test_summary_of_a_dlmsdoctor_capture(tmp_path: Path) -> None:
    path = tmp_path / "s.pcapng"
    write_capture(seed_session(), path)
    code, out, _ = run(str(path))
    assert code == ExitCode.OK
    assert "192.168.1.135:3333" in out
    assert "status  degraded" in out
    assert "13 (7 TX, 6 RX) on 3 connection(s)" in out
    assert "conn 1  192.168.1.135:3333  1 frame(s), closed: fin by peer" in out
    assert "cause 1  95%  client.malformed_frame" in out
    assert "cause 2  90%  hdlc.wrong_address" in out


def test_session_json_to_capture_and_back(tmp_path: Path) -> None:
    session_path = tmp_path / "s.json"
    session_path.write_text(seed_session().dumps(), encoding="utf-8")
    capture = tmp_path / "vendor.pcapng"
    code, _, err = run(str(session_path), "--capture", str(capture), "--show-secrets")
    assert code == ExitCode.OK and "capture written" in err
    assert read_capture(capture).to_json() == seed_session().to_json()


def test_capture_to_saved_session_and_report(tmp_path: Path) -> None:
    capture = tmp_path / "s.pcapng"
    write_capture(seed_session(), capture)
    saved, report = tmp_path / "back.json", tmp_path / "r.json"
    code, out, _ = run(str(capture), "--save", str(saved), "--report", str(report),
                       "--lang", "es")
    assert code == ExitCode.OK
    assert Session.loads(saved.read_text(encoding="utf-8")).id == "seed-0001"
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["lang"] == "es" and doc["schema"] == "dlmsdoctor.report"
    assert "session seed-0001" in out


def test_report_to_stdout_prints_only_the_report(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(seed_session().dumps(), encoding="utf-8")
    code, out, _ = run(str(path), "--report", "-", "--format", "md")
    assert code == ExitCode.OK
    assert out.startswith("# dlmsdoctor diagnostic report")
    assert "status  degraded" not in out


def test_missing_file_is_a_message(tmp_path: Path) -> None:
    code, out, err = run(str(tmp_path / "nope.pcapng"))
    assert code == ExitCode.UNUSABLE_INPUT
    assert out == "" and err.startswith("dlmsdoctor: cannot read")


def test_foreign_capture_without_dlms_says_which_port(tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    # a valid pcap header with no packets (tcpdump with a filter that matched nothing)
    path.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    code, out, err = run(str(path))
    assert code == ExitCode.UNUSABLE_INPUT
    assert out == "" and "no DLMS TCP stream" in err


def test_ipv6_targets_are_shown_in_brackets() -> None:
    from dlmsdoctor.cli.open_cmd import summary_lines
    from dlmsdoctor.session import ConnectionRecord, Session, Target

    session = Session(
        id="x", tool_version="0", started_at="2026-11-24T00:00:00+00:00",
        target=Target("::1", 4059), connections=[ConnectionRecord(1, "::1", 4059)],
    )
    text = "\n".join(summary_lines(session))
    assert "[::1]:4059" in text and " ::1:4059" not in text


def test_a_late_release_confirmation_is_a_note_and_recovered_rungs_are_recovered(
    tmp_path: Path,
) -> None:
    """Issue 9 items 4 and 7: "release confirmed late" is never ranked as a cause, and a rung
    that failed at the defaults and was recovered is not shown as a plain failure."""
    from tests.diagnosis.story import recovered_link_late_release

    story = recovered_link_late_release()
    path = tmp_path / "late.json"
    path.write_text(story.session.dumps(), encoding="utf-8")
    code, out, _ = run(str(path))
    assert code == ExitCode.OK
    assert "note     release.confirmed_late" in out
    assert not any(line.startswith("  cause") and "confirmed_late" in line
                   for line in out.splitlines())
    assert "step framing.detect     recovered" in out
