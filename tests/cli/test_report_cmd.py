"""`dlmsdoctor report` in-process: formats, languages, output files, and no tracebacks ever."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.cli.report_cmd import report
from dlmsdoctor.output.capture import write_capture
from tests.output.seed_session import seed_session


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(report, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def session_json(tmp_path: Path) -> Path:
    path = tmp_path / "session.json"
    path.write_text(seed_session().dumps(), encoding="utf-8")
    return path


def test_markdown_to_stdout_by_default(session_json: Path) -> None:
    code, out, err = run(str(session_json))
    assert code == ExitCode.OK
    assert out.startswith("# dlmsdoctor diagnostic report: 192.168.1.135:3333")
    assert err == ""


def test_spanish_html_to_a_file(session_json: Path, tmp_path: Path) -> None:
    target = tmp_path / "informe.html"
    code, out, err = run(str(session_json), "--lang", "es", "-o", str(target))
    assert code == ExitCode.OK
    assert out == ""  # data goes to the file; the note goes to stderr
    assert "informe.html" in err
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")  # format taken from the extension
    assert 'lang="es"' in html and "Resumen ejecutivo" in html


def test_json_from_a_capture(tmp_path: Path) -> None:
    capture = tmp_path / "s.pcapng"
    write_capture(seed_session(), capture)
    code, out, _ = run(str(capture), "--format", "json")
    assert code == ExitCode.OK
    doc = json.loads(out)
    assert doc["schema"] == "dlmsdoctor.report"
    codes = [c["code"] for c in doc["diagnosis"]["causes"]]
    assert codes[:2] == ["client.malformed_frame", "hdlc.wrong_address"]


def test_a_saved_session_gets_todays_diagnosis_in_every_language(tmp_path: Path) -> None:
    """QA defect 5: a hand-written (or old) diagnosis in the file was shown in English while
    the Spanish followed the codes: the report re-diagnoses, one source for both."""
    from dlmsdoctor.session import Cause, Diagnosis

    session = seed_session()
    session.diagnosis = Diagnosis(status="degraded", headline="STALE HEADLINE", causes=[
        Cause(code="bridge.busy", title="STALE TITLE", confidence=0.5, whose="poller",
              explanation="x")])
    path = tmp_path / "old.json"
    path.write_text(session.dumps(), encoding="utf-8")
    docs = {}
    for lang in ("en", "es"):
        code, out, _ = run(str(path), "--format", "json", "--lang", lang)
        assert code == ExitCode.OK and "STALE" not in out
        docs[lang] = json.loads(out)
    assert ([c["code"] for c in docs["en"]["diagnosis"]["causes"]]
            == [c["code"] for c in docs["es"]["diagnosis"]["causes"]])
    assert "bridge.busy" not in [c["code"] for c in docs["en"]["diagnosis"]["causes"]]


@pytest.mark.parametrize("content", [None, "", "{not json", '{"schema": "other"}',
                                     '{"schema": "dlmsdoctor.session", "version": 99}',
                                     '{"schema": "dlmsdoctor.session", "version": 1}'])
def test_missing_or_damaged_session_is_a_message_and_exit_2(tmp_path: Path,
                                                            content: str | None) -> None:
    path = tmp_path / "s.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = run(str(path))
    assert code == ExitCode.UNUSABLE_INPUT
    assert out == ""
    assert err.startswith("dlmsdoctor: ") and "Traceback" not in err


def test_damaged_capture_is_a_message(tmp_path: Path) -> None:
    path = tmp_path / "s.pcapng"
    path.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\xff" * 40)
    code, out, err = run(str(path))
    assert code == ExitCode.UNUSABLE_INPUT
    assert out == "" and "damaged" in err


def test_unwritable_output_is_a_message(session_json: Path, tmp_path: Path) -> None:
    code, out, err = run(str(session_json), "-o", str(tmp_path / "no" / "dir" / "r.md"))
    assert code == ExitCode.USAGE
    assert out == "" and "cannot write report" in err


def test_unknown_output_extension_needs_format(session_json: Path, tmp_path: Path) -> None:
    """QA defect 7: -o r.pdf silently wrote Markdown."""
    code, out, err = run(str(session_json), "-o", str(tmp_path / "r.pdf"))
    assert code == ExitCode.USAGE and out == "" and ".pdf" in err
    assert not (tmp_path / "r.pdf").exists()
    code, _, err = run(str(session_json), "-o", str(tmp_path / "r.pdf"), "--format", "html")
    assert code == 0, err
    assert (tmp_path / "r.pdf").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_bad_option_is_a_usage_error(session_json: Path) -> None:
    code, _, _ = run(str(session_json), "--format", "pdf")
    assert code == 2  # click's own usage error


@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap (tshark package) missing")
def test_a_plain_pcap_gets_diagnosed_before_the_report(tmp_path: Path) -> None:
    """A tcpdump-style capture has frames only: the rules run on it (the tap's: another
    client's traffic is a poller's)."""
    ours = tmp_path / "s.pcapng"
    write_capture(seed_session(), ours, show_secrets=True)
    plain = tmp_path / "tcpdump.pcap"
    subprocess.run(["editcap", "-F", "pcap", str(ours), str(plain)], check=True,
                   capture_output=True, timeout=60)
    code, out, _ = run(str(plain), "--format", "json")
    assert code == ExitCode.OK
    doc = json.loads(out)
    codes = [c["code"] for c in doc["diagnosis"]["causes"]]
    assert "tap.poller.no_answer" in codes  # SNRMs to 1/1 unanswered, UA from 1/6678
    assert "tap.poller.malformed" in codes  # the seed's SNRM: group length 18 for 20 bytes
    assert doc["session"]["tool_version"] == "(foreign capture)"
