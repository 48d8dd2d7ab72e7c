"""`dlmsdoctor probe` in-process (CliRunner): exit codes, the --json document, the --jsonl stream,
usage errors with an empty stdout, secrets masked, and the exit-code mapping function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.cli.probe_cmd import ProbeExit, exit_code_for, probe
from dlmsdoctor.diagnosis import diagnose
from dlmsdoctor.events import Event, StepStatus
from dlmsdoctor.sim.meter import MeterThread
from tests.diagnosis.story import Story
from tests.helpers.dlms_frames import snrm, ua

FAST = ["--no-icmp", "--timeout", "0.3"]


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NO_COLOR", "1")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(probe, list(args), catch_exceptions=False)


# -- exit code mapping ----------------------------------------------------------------------------


def _diagnosed(story: Story) -> Story:
    story.session.diagnosis = diagnose(story.session)
    return story


def test_exit_ok_for_a_healthy_run_even_when_ping_is_filtered() -> None:
    story = Story().healthy()
    story.session.steps[0].status = StepStatus.FAILED  # icmp.ping
    assert exit_code_for(_diagnosed(story).session) == ProbeExit.OK


def test_exit_tcp_when_nothing_connects() -> None:
    story = _diagnosed(Story().ping(received=0).connect_fails("refused"))
    assert exit_code_for(story.session) == ProbeExit.TCP == 12


def test_exit_is_the_deepest_failed_rung_unless_recovered() -> None:
    story = Story()
    story.connect()
    story.step("tcp.connect", "tcp")
    story.step("framing.detect", "framing", StepStatus.FAILED)
    story.step("hdlc.snrm", "hdlc", StepStatus.FAILED)
    story.step("address.discover", "address", StepStatus.FAILED)
    assert exit_code_for(_diagnosed(story).session) == ProbeExit.ADDRESS
    # the same failures, then discovery worked and an association was made: recovered
    story = Story()
    story.connect()
    story.step("framing.detect", "framing", StepStatus.FAILED)
    story.tx(snrm())
    story.rx(ua())
    story.public_association()
    story.step("assoc.public", "association")
    story.step("assoc.login.mgmt", "association", StepStatus.FAILED)
    assert exit_code_for(_diagnosed(story).session) == ProbeExit.LOGIN


def test_exit_internal_for_our_bug_and_130_for_cancel() -> None:
    story = _diagnosed(Story().step("hdlc.snrm", "hdlc", StepStatus.ERROR))
    assert exit_code_for(story.session) == ExitCode.INTERNAL
    story.session.cancelled = True
    assert exit_code_for(story.session) == ExitCode.INTERRUPTED


def test_probe_exit_codes_do_not_clash_with_exit_code() -> None:
    shared = {int(c) for c in ExitCode}
    assert all(int(c) not in shared for c in ProbeExit if c is not ProbeExit.OK)


# -- usage errors: message on stderr, nothing on stdout, exit 64 -----------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["host:99999"],
        ["[::1"],
        ["127.0.0.1", "--cred", "nonsense"],
        ["127.0.0.1", "--cred", "1:blah:x"],
        ["127.0.0.1", "--server-address", "one/two"],
        ["127.0.0.1", "--json", "--jsonl"],
        ["127.0.0.1", "--timeout", "-1"],
        # QA defect 8: sizes that cannot hold the address, a secret dropped by auth none
        ["127.0.0.1", "--server-address", "1/200", "--address-size", "1"],
        ["127.0.0.1", "--server-address", "1/17", "--address-size", "1"],
        ["127.0.0.1", "--server-address", "1/200", "--address-size", "2"],
        ["127.0.0.1", "--server-address", "200"],
        ["127.0.0.1", "--cred", "1:none:extra"],
    ],
)
def test_usage_errors(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()


def test_broken_config_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[credentials.x\nclient_sap = 1\n")
    result = invoke("127.0.0.1", "--config", str(config))
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert "bad.toml" in result.stderr


def test_missing_config_is_a_usage_error_and_an_open_one_a_warning(tmp_path: Path) -> None:
    """QA defect 6: a named --config that does not exist was silently ignored; a config with
    a password readable by others gave no warning."""
    result = invoke("127.0.0.1", "--config", str(tmp_path / "nonexist.toml"))
    assert result.exit_code == ExitCode.USAGE and result.stdout == ""
    assert "nonexist.toml" in result.stderr and "no such config file" in result.stderr
    config = tmp_path / "open.toml"
    config.write_text('[credentials.m]\nclient_sap = 1\nauth = "low"\npassword = "Sekret9"\n')
    config.chmod(0o644)
    result = invoke("127.0.0.1", "--config", str(config), "--cred", "m", "--timeout", "-1")
    assert "warning" in result.stderr and "chmod 600" in result.stderr
    assert "Sekret9" not in result.stderr


def test_secret_in_a_bad_cred_is_never_echoed() -> None:
    result = invoke("127.0.0.1", "--cred", "x=1:bogus:SuperSecret123")
    assert result.exit_code == ExitCode.USAGE
    assert "SuperSecret123" not in result.stderr


# -- real runs against the simulated meter ------------------------------------------------------


def test_json_document_against_a_healthy_meter(tmp_path: Path) -> None:
    with MeterThread("default") as meter:
        result = invoke(f"127.0.0.1:{meter.port}", *FAST, "--json", "--cred", "mgmt=1:low:00000000")
        opened = meter.open_associations()
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "dlmsdoctor.probe" and doc["version"] == 1
    assert doc["target"]["port"] == meter.port
    assert doc["settings"]["credentials"] == [{"name": "mgmt", "client_sap": 1, "auth": "low"}]
    assert "00000000" not in json.dumps(doc["settings"])
    assert {"id", "status", "started", "finished", "duration", "summary"} <= set(doc["steps"][0])
    assert [s["id"] for s in doc["steps"]][:2] == ["icmp.ping", "tcp.connect"]
    frame = doc["frames"][0]
    assert {"direction", "at", "hex", "summary", "findings"} <= set(frame)
    assert frame["direction"] == "tx" and frame["hex"].startswith("7E A0")
    assert doc["diagnosis"]["status"] == "ok"
    assert doc["diagnosis"]["causes"] == []
    profile = doc["profile"]
    assert profile["framing"] == "hdlc" and profile["client_sap"] == 1
    assert profile["authentication"] == "low" and profile["credential"] == "mgmt"
    assert "-c 1 -s 1 -l 1 -a Low" in profile["forms"]["gurux_args"]
    assert 'server_address = "1/1"' in profile["forms"]["toml"]
    # the LLS password (ASCII 00000000 = 30 x8) never appears, masked in the AARQ
    assert "30 30 30 30 30 30 30 30" not in result.stdout
    assert any(f["masked_bytes"] for f in doc["frames"])
    assert opened == []
    saved = Path(doc["saved"])
    assert saved.is_file() and saved.parent == tmp_path / "data" / "sessions"


def test_busy_bridge_exit_code_and_plain_ladder() -> None:
    with MeterThread("default", ["bridge-busy"]) as meter:
        result = invoke(f"127.0.0.1:{meter.port}", *FAST)
    assert result.exit_code == ProbeExit.TCP
    out = result.stdout
    assert "\x1b[" not in out  # plain when piped / NO_COLOR
    assert "[FAIL] tcp.connect" in out
    assert "Verdict: FAILED" in out
    assert "poller" in out and "Port already in use" in out


def test_jsonl_stream(tmp_path: Path) -> None:
    with MeterThread("default", ["wrapper-only"]) as meter:
        result = invoke(f"127.0.0.1:{meter.port}", *FAST, "--jsonl")
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert all(x["schema"] == "dlmsdoctor.probe-events" and x["version"] == 1 for x in lines)
    assert lines[0]["event"] == "run_started"
    assert lines[-1]["event"] == "run_finished"
    assert lines[-1]["diagnosis"]["causes"][0]["code"] == "framing.wrapper_only"
    events = {x["event"] for x in lines}
    assert {"step_started", "step_finished", "frame_sent", "connection_opened"} <= events
    sent = next(x for x in lines if x["event"] == "frame_sent")
    assert sent["hex"] and "data" not in sent
    # a wrapper-only meter that answers works: degraded with the wrapper profile, exit 0
    assert result.exit_code == lines[-1]["exit_code"] == 0
    assert lines[-1]["diagnosis"]["status"] == "degraded"
    assert lines[-1]["profile"]["framing"] == "wrapper"


def test_report_and_capture_are_written(tmp_path: Path) -> None:
    report, capture = tmp_path / "r.md", tmp_path / "c.pcapng"
    with MeterThread("default") as meter:
        result = invoke(
            f"127.0.0.1:{meter.port}",
            *FAST,
            "--no-save",
            "--report",
            str(report),
            "--capture",
            str(capture),
        )
    assert result.exit_code == 0, result.stderr
    assert report.read_text().startswith("# dlmsdoctor diagnostic report: 127.0.0.1:")  # en default
    assert capture.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # pcapng section header block
    assert not (tmp_path / "data" / "sessions").exists()  # --no-save: no session file


def test_report_lang_es_writes_a_spanish_report(tmp_path: Path) -> None:
    report = tmp_path / "informe.html"
    with MeterThread("default", ["wrapper-only"]) as meter:
        result = invoke(
            f"127.0.0.1:{meter.port}", *FAST, "--no-save", "--report", str(report), "--lang", "es"
        )
    assert result.exit_code != ExitCode.INTERNAL, result.stderr  # the report is the point here
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="es">' in html
    assert "Informe de diagnóstico dlmsdoctor" in html and "Resumen ejecutivo" in html
    assert "diagnostic report" not in html and "Executive summary" not in html
    assert "Report written" in result.stderr


def test_report_lang_must_be_en_or_es() -> None:
    result = CliRunner().invoke(probe, ["127.0.0.1:1", "--report", "r.md", "--lang", "fr"])
    assert result.exit_code == 2 and "--lang" in result.stderr and not result.stdout


def test_report_and_capture_paths_are_checked_before_probing(tmp_path: Path) -> None:
    """QA defect 7: an unwritable --report/--capture, or --report r.pdf, is said up front
    (exit 64, nothing probed), not after the run with exit 0."""
    with MeterThread("default") as meter:
        target = f"127.0.0.1:{meter.port}"
        for args in (
            ["--report", str(tmp_path / "missing" / "dir" / "r.md")],
            ["--capture", str(tmp_path / "missing" / "x.pcapng")],
            ["--report", str(tmp_path / "r.pdf")],
            ["--report", str(tmp_path)],
        ):
            result = invoke(target, *FAST, "--no-save", *args)
            assert result.exit_code == ExitCode.USAGE, (args, result.stderr)
            assert result.stdout == "" and args[1] in result.stderr
        # nothing reached the meter: the mistakes were caught before probing
        assert not [e for e in meter.events if e.get("event") == "connection.opened"]
        assert not (tmp_path / "r.pdf").exists()
        # --report-format makes any name acceptable
        result = invoke(target, *FAST, "--no-save", "--report", str(tmp_path / "r.pdf"),
                        "--report-format", "md")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "r.pdf").read_text(encoding="utf-8").startswith("#")


def test_a_report_that_fails_after_the_run_never_exits_0(tmp_path: Path) -> None:
    from dlmsdoctor.cli.probe_cmd import final_exit, write_extras

    story = _diagnosed(Story().healthy())
    gone = tmp_path / "gone"
    assert not write_extras(story.session, str(gone / "r.md"), None)
    assert not write_extras(story.session, None, str(gone / "c.pcapng"))
    assert write_extras(story.session, str(tmp_path / "r.md"), str(tmp_path / "c.pcapng"))
    assert final_exit(ProbeExit.OK, False) == ProbeExit.OUTPUT == 73
    assert final_exit(ProbeExit.LOGIN, False) == ProbeExit.LOGIN  # the rung's code wins
    assert final_exit(ProbeExit.OK, True) == 0


def test_named_target_and_credential_from_the_config(tmp_path: Path) -> None:
    with MeterThread("serial-derived") as meter:
        config = tmp_path / "config.toml"
        config.write_text(
            '[credentials.mgmt]\nclient_sap = 1\nauth = "low"\npassword = "00000000"\n\n'
            f'[targets.m2]\nhost = "127.0.0.1"\nport = {meter.port}\n'
            'serial_number = "12345678"\ncredentials = ["mgmt"]\n'
        )
        result = invoke("m2", *FAST, "--config", str(config), "--json", "--no-save")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["diagnosis"]["causes"][0]["code"] == "hdlc.wrong_address"
    assert doc["profile"]["server_physical"] == 6678
    assert doc["profile"]["credential"] == "mgmt"


def test_ctrl_c_cancels_releases_and_exits_130(tmp_path: Path) -> None:
    """SIGINT while associated: the engine still releases (RLRQ or DISC), then exit 130."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {
        **os.environ,
        "DLMSDOCTOR_DATA_DIR": str(tmp_path / "data"),
        "NO_COLOR": "1",
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    with MeterThread("default", ["delay=0.3"]) as meter:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dlmsdoctor",
                "probe",
                f"127.0.0.1:{meter.port}",
                "--no-icmp",
                "--timeout",
                "2",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        deadline = time.monotonic() + 15
        while not meter.open_associations() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert meter.open_associations(), "the probe never associated"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 130, (out, err)
        assert b"Traceback" not in err
        assert meter.open_associations() == []
        released = [e["how"] for e in meter.log.of("association.released")]
        assert len(released) == 1 and released[0] in ("rlrq", "disc"), released
        assert meter.unreleased_associations() == []


def test_ladder_is_live_on_a_terminal_and_plain_otherwise() -> None:
    import io

    from rich.console import Console

    from dlmsdoctor.codec.model import Severity
    from dlmsdoctor.events import FindingRaised, StepFinished, StepStarted
    from dlmsdoctor.output.ladder import LadderView, render_diagnosis

    events: list[Event] = [
        StepStarted("tcp.connect", "TCP", "tcp", 0.0),
        FindingRaised("tcp.connect", "bridge.busy", Severity.ERROR, "bridge busy", 0.1),
        StepFinished("tcp.connect", StepStatus.FAILED, "bridge busy: another client", 0.2),
    ]
    tty = io.StringIO()
    console = Console(file=tty, force_terminal=True, no_color=False, width=100)
    with LadderView(console) as view:
        assert view.live_mode
        for event in events:
            view.on_event(event)
    assert "\x1b[" in tty.getvalue() and "tcp.connect" in tty.getvalue()

    pipe = io.StringIO()
    plain = Console(file=pipe, force_terminal=False, no_color=True, width=100)
    with LadderView(plain) as view:
        assert not view.live_mode
        for event in events:
            view.on_event(event)
    text = pipe.getvalue()
    assert "\x1b[" not in text
    assert text.splitlines()[0].startswith("[FAIL] tcp.connect")
    assert "! bridge busy" in text
    story = _diagnosed(Story().ping(received=3).connect_fails("refused", dt=0.02))
    render_diagnosis(plain, story.session)
    assert "Verdict: FAILED" in pipe.getvalue() and "tcp.refused" in pipe.getvalue()


def test_every_event_type_has_a_jsonl_line_with_secrets_masked() -> None:
    from dlmsdoctor.codec.model import Severity
    from dlmsdoctor.events import (
        CloseHow,
        ConnectionClosed,
        ConnectionFailed,
        ConnectionOpened,
        FindingRaised,
        FrameReceived,
        FrameSent,
        LoginAttempted,
        PingReplied,
        PingSent,
        StepFinished,
        StepStarted,
    )
    from dlmsdoctor.output.probe_json import event_line
    from tests.helpers.dlms_frames import AARQ_LLS, PASSWORD, i_tx

    aarq = i_tx(AARQ_LLS)
    events: list[Event] = [
        StepStarted("s", "S", "tcp", 0.0),
        StepFinished("s", StepStatus.OK, "fine", 0.1, {"rtt": 0.01}),
        ConnectionOpened(1, "h", 1, 0.0, 0.01),
        ConnectionFailed(2, "h", 1, 0.0, "refused", "refused", 0.01),
        ConnectionClosed(1, 0.2, CloseHow.FIN, True),
        FrameSent(1, "assoc.login.m", 0.1, aarq),
        FrameReceived(1, "s", 0.1, b"Port already in use\r\n"),
        PingSent("icmp.ping", 0.0, 1, 0, b"x"),
        PingReplied("icmp.ping", 0.1, 1, 0, b"x", 0.1),
        FindingRaised("s", "bridge.busy", Severity.ERROR, "busy", 0.1, (0,), {"retried": True}),
        LoginAttempted("assoc.login.m", 0.1, "m", 1, "low", "rejected", "authentication-failure"),
    ]
    lines = [json.loads(json.dumps(event_line(e))) for e in events]
    assert [x["event"] for x in lines] == [
        "step_started",
        "step_finished",
        "connection_opened",
        "connection_failed",
        "connection_closed",
        "frame_sent",
        "frame_received",
        "ping_sent",
        "ping_replied",
        "finding_raised",
        "login_attempted",
    ]
    sent = lines[5]
    assert sent["masked_bytes"] == len(PASSWORD)
    assert PASSWORD.hex(" ").upper() not in sent["hex"]
    assert lines[4]["how"] == "fin" and lines[9]["severity"] == "error"


def test_spent_meter_login_budget_is_degraded_and_lifted_only_by_the_explicit_option() -> None:
    """QA defect 4: after 2 failed logins in the window (another wrong password each run: the
    same one is not sent twice), the 3rd run skips the set: not OK. --meter-login-budget (only
    when given) lets exactly one more try through."""
    with MeterThread("default") as meter:
        target = f"127.0.0.1:{meter.port}"
        for password in ("WRONG1", "WRONG2"):
            assert invoke(target, *FAST, "--cred",
                          f"mgmt=1:low:{password}").exit_code == ProbeExit.LOGIN
        fourth = invoke(target, *FAST, "--json", "--cred", "mgmt=1:low:WRONG3")
        assert meter.failed_logins() == 2
        raised = invoke(target, *FAST, "--json", "--cred", "mgmt=1:low:WRONG3",
                        "--meter-login-budget", "3")
        assert meter.failed_logins() == 3
    doc = json.loads(fourth.stdout)
    assert doc["diagnosis"]["status"] == "degraded"
    budget = next(c for c in doc["diagnosis"]["causes"] if c["code"] == "login.budget")
    assert "'mgmt'" in budget["title"]
    assert any("--meter-login-budget" in a["text"] for a in budget["actions"])
    assert json.loads(raised.stdout)["diagnosis"]["causes"][0]["code"] == "auth.wrong_password"
    assert invoke(target, "--meter-login-budget", "-1").exit_code == 64


def test_address_size_messages_say_what_fits() -> None:
    from dlmsdoctor.cli.probe_cmd import UsageProblem, build_options

    with pytest.raises(UsageProblem, match="1-byte address holds only the logical"):
        build_options("127.0.0.1", server_address="1/200", address_size="1")
    with pytest.raises(UsageProblem, match=r"2-byte address \(7\+7 bits"):
        build_options("127.0.0.1", server_address="1/200", address_size="2")
    options = build_options("127.0.0.1", server_address="1/200", address_size="4")
    assert options.first_server().physical == 200
    assert build_options("127.0.0.1", server_address="1/200").first_server().size == 4


def test_connect_timeout_is_the_users_to_set() -> None:
    """A listener whose accept queue is full drops SYNs (no RST): only the timeout ends it."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):  # fill the accept queue; later SYNs are dropped by the kernel
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.1)
        started = time.monotonic()
        result = invoke(f"127.0.0.1:{port}", *FAST, "--connect-timeout", "0.5", "--json")
        elapsed = time.monotonic() - started
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    doc = json.loads(result.stdout)
    tcp = next(s for s in doc["steps"] if s["id"] == "tcp.connect")
    assert tcp["status"] == "failed" and "tim" in tcp["summary"].lower(), tcp
    assert elapsed < 5, elapsed  # the default would be 10 s
    assert result.exit_code == ProbeExit.TCP


def test_connect_timeout_must_be_positive() -> None:
    result = invoke("127.0.0.1", "--connect-timeout", "0")
    assert result.exit_code == ExitCode.USAGE and result.stdout == ""
