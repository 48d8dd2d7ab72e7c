"""`dlmsdoctor tap` in-process (CliRunner) with a real gurux client polling the simulated meter
through it: the --json document, the --jsonl stream, the report in Spanish, the capture with
every connection, secrets masked, usage errors with an empty stdout, exit codes."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from gurux_dlms.enums import Authentication
from gurux_dlms.objects import GXDLMSData

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.cli.tap_cmd import TapExit, tap
from dlmsdoctor.sim.meter import MeterThread
from tests.helpers.ser2net import free_port
from tests.sim.gurux_peer import GuruxPeer

PASSWORD = "s3cretPW"


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NO_COLOR", "1")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(tap, list(args), catch_exceptions=False)


def _wait_listening(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError("the tap does not listen")


def _poller(port: int, meter: Any, errors: list[BaseException]) -> None:
    """A poller with a wrong password (twice), then a good read left unreleased."""
    try:
        _wait_listening(port)
        time.sleep(0.1)  # the probe connection above is gone
        p = meter.profile
        for _ in range(2):
            with GuruxPeer(port, client_sap=1, authentication=Authentication.LOW,
                           password=PASSWORD, physical=p.server_physical or 0,
                           address_size=p.address_size) as peer, contextlib.suppress(Exception):
                peer.connect()
        with GuruxPeer(port, physical=p.server_physical or 0,
                       address_size=p.address_size) as peer:
            peer.connect()
            peer.read(GXDLMSData("0.0.42.0.0.255"), 2)
    except BaseException as exc:
        errors.append(exc)


def _run_with_poller(meter: Any, *extra: str) -> Result:
    port = free_port()
    errors: list[BaseException] = []
    thread = threading.Thread(target=_poller, args=(port, meter, errors))
    thread.start()
    result = invoke(f"127.0.0.1:{port}", f"127.0.0.1:{meter.port}", "--duration", "2.5",
                    *extra)
    thread.join(5)
    assert not errors, errors
    return result


def test_json_document_report_in_spanish_and_capture(tmp_path: Path) -> None:
    report, capture = tmp_path / "tap.md", tmp_path / "tap.pcapng"
    with MeterThread("default") as meter:
        result = _run_with_poller(meter, "--json", "--report", str(report), "--lang", "es",
                                  "--capture", str(capture), "--no-save")
    assert result.exit_code == TapExit.FAULTS, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "dlmsdoctor.tap" and doc["version"] == 1
    codes = {f["code"] for f in doc["findings"]}
    assert {"tap.poller.login_failed", "tap.poller.login_retries",
            "tap.poller.session_left_open"} <= codes
    assert doc["diagnosis"]["causes"][0]["code"] == "tap.poller.login_retries"
    clients = [c["client"] for c in doc["connections"]]
    assert len(clients) == 4 and all(c.startswith("127.0.0.1:") for c in clients)
    assert doc["meter"]["answer_times"]["AARQ"]["count"] == 3
    assert PASSWORD.encode().hex().upper() not in json.dumps(doc).replace(" ", "").upper()
    text = report.read_text(encoding="utf-8")
    assert "reintenta un login rechazado" in text and "Respuestas del medidor" in text
    assert "por el sistema de lectura" in text
    assert "TX = enviado por su sistema de lectura" in text
    assert "TX = enviado por dlmsdoctor" not in text

    from dlmsdoctor.output.capture_read import read_capture

    restored = read_capture(capture)
    assert restored.kind == "tap"
    assert len({f.conn_id for f in restored.frames}) == 3  # the listen check sent nothing
    blob = capture.read_bytes()
    assert PASSWORD.encode() not in blob
    if shutil.which("tshark"):
        out = subprocess.run(["tshark", "-r", str(capture), "-T", "fields", "-e",
                              "tcp.stream"], capture_output=True, text=True, timeout=60)
        assert len(set(out.stdout.split())) == 4  # every connection is its own TCP stream


def test_jsonl_streams_events_and_findings_as_they_come() -> None:
    with MeterThread("default") as meter:
        result = _run_with_poller(meter, "--jsonl", "--no-save")
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert all(x["schema"] == "dlmsdoctor.tap-events" for x in lines)
    events = [x["event"] for x in lines]
    assert events[0] == "tap_started" and events[-1] == "tap_finished"
    first_finding = events.index("finding_raised")
    assert first_finding < len(events) - 2  # live, not only at the end
    frames = [x for x in lines if x["event"] in ("frame_sent", "frame_received")]
    assert any(x.get("answers") is not None for x in frames)
    assert PASSWORD.encode().hex().upper() not in result.stdout.replace(" ", "").upper()


def test_human_output_saves_the_session_with_its_frames_file(tmp_path: Path) -> None:
    with MeterThread("default") as meter:
        result = _run_with_poller(meter)
    out = result.stdout
    assert "tap listening on 127.0.0.1:" in out
    assert "tap.poller.login_failed" in out and "Diagnosis: FAILED" in out
    assert "Meter answer times" in out
    sessions = tmp_path / "data" / "sessions"
    saved = sorted(sessions.glob("*.json"))
    frames = sorted(sessions.glob("*.frames.jsonl"))
    assert len(saved) == 1 and len(frames) == 1
    assert frames[0].name == saved[0].name.replace(".json", ".frames.jsonl")
    from dlmsdoctor.session import Session

    session = Session.loads(saved[0].read_text(encoding="utf-8"))
    assert session.kind == "tap"
    lines = [json.loads(x) for x in frames[0].read_text().splitlines()]
    frame_lines = [x for x in lines if "connection" not in x]
    assert len(frame_lines) == session.settings["tap"]["frames_total"]
    assert len(lines) - len(frame_lines) == session.settings["tap"]["connections_total"]


@pytest.mark.parametrize("args, message", [
    (["nonsense:port", "127.0.0.1:1"], "port must be"),
    (["127.0.0.1:4059", "127.0.0.1:99999"], "port must be"),
    (["127.0.0.1:4059", "127.0.0.1:1", "--json", "--jsonl"], "exclude each other"),
    (["127.0.0.1:4059", "127.0.0.1:1", "--duration", "0"], "--duration"),
    (["127.0.0.1:4059", "127.0.0.1:1", "--meter-address", "x/y"], "--meter-address"),
])
def test_usage_errors_exit_64_with_an_empty_stdout(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert message in result.stderr


def test_listen_address_in_use_exits_69() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = invoke(f"127.0.0.1:{port}", "127.0.0.1:1", "--duration", "1", "--no-save")
    assert result.exit_code == TapExit.CANNOT_LISTEN
    assert "cannot listen" in result.stderr and result.stdout == ""


def test_ctrl_c_ends_the_tap_with_the_diagnosis(tmp_path: Path) -> None:
    """As a user runs it: a real process, a poller, then Ctrl-C (SIGINT)."""
    import os
    import signal
    import sys

    port = free_port()
    with MeterThread("default") as meter:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dlmsdoctor", "tap", f"127.0.0.1:{port}",
             f"127.0.0.1:{meter.port}", "--frames", "--no-save"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            _wait_listening(port, 20)
            p = meter.profile
            with GuruxPeer(port, physical=p.server_physical or 0,
                           address_size=p.address_size) as peer:
                peer.connect()
                peer.read(GXDLMSData("0.0.42.0.0.255"), 2)
                peer.release()
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == TapExit.OK, err
    assert "poller -> meter" in out and "meter -> poller" in out  # --frames
    assert "Diagnosis: OK" in out and "Traceback" not in err
