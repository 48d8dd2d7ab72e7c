"""The whole ladder over a pseudo-terminal against the simulated meter's serial side: a healthy
line, an echoing adapter, a meter at another rate, another format, a line held by another
program, a missing device, and the capture of a serial session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dlmsdoctor.codec.hdlc import parse_hdlc
from tests.engine.pty_meter import probe, pty_meter


async def test_whole_serial_ladder_at_9600(tmp_path: Path) -> None:
    async with pty_meter() as meter:
        run = await probe(meter, tmp_path, baud="auto")
    s = run.session
    assert [x.status.value for x in s.steps if x.id in ("serial.line", "assoc.public",
                                                          "cosem.identity", "release")] == [
        "ok"] * 4
    assert run.step("serial.line").details["baud"] == 9600
    assert run.finding("serial.rates").data["rates"] == [
        {"baud": 9600, "format": "8N1", "outcome": "answer", "detail": "UA",
         "frames": [0, 1]}]
    assert s.identity["serial_number"] == "12345678"
    assert meter.unreleased_associations() == []
    # released: RLRQ then DISC answered, on the line
    assert parse_hdlc(run.tx()[-1], 0, "tx").fields["frame_type"] == "DISC"
    assert s.target.link == "serial" and s.connections[0].link == "serial"
    profile = s.diagnosis.profile if s.diagnosis else None
    assert profile is not None and profile.link == "serial" and profile.baud == 9600
    assert profile.format == "8N1" and profile.device == meter.serial_path
    assert "serial.rate_differs" not in run.causes


async def test_a_meter_at_19200_is_found_by_the_sweep_and_named(tmp_path: Path) -> None:
    async with pty_meter(["line-rate=19200"]) as meter:
        run = await probe(meter, tmp_path, baud="auto")
    rates = run.finding("serial.rates").data["rates"]
    assert [(r["baud"], r["outcome"]) for r in rates] == [(9600, "silence"), (19200, "answer")]
    cause = run.cause("serial.rate_differs")
    assert run.causes[0] == "serial.rate_differs"
    assert "19200 8N1" in cause.title and cause.whose == "client"
    notes = [e.note for e in cause.evidence]
    assert notes[0] == "SNRM at 9600 8N1: silence" and "the answer at 19200" in notes[-1]
    # the silence at 9600 is not taken for a late answer or a wrong address
    assert "meter.late_replies" not in run.causes and "hdlc.wrong_address" not in run.causes
    assert run.session.diagnosis is not None and run.session.diagnosis.profile is not None
    assert run.session.diagnosis.profile.baud == 19200
    # the meter's log shows why: our 9600 bytes were noise to it
    assert meter.log.of("bytes.garbled")[0]["client_rate"] == 9600


async def test_a_fixed_wrong_rate_is_silence_and_the_advice_is_auto(tmp_path: Path) -> None:
    async with pty_meter(["line-rate=19200"]) as meter:
        run = await probe(meter, tmp_path, baud="9600", timeout=0.4, discovery_budget=2,
                          discovery_pace=0.0)
    assert [r["outcome"] for r in run.finding("serial.rates").data["rates"]] == ["silence"]
    cause = run.cause("serial.no_answer")
    assert "--baud auto" in " ".join(a.text for a in cause.actions)


async def test_garbage_at_one_rate_and_silence_elsewhere_is_a_format_mismatch(
        tmp_path: Path) -> None:
    async with pty_meter(["line-format=8E1"]) as meter:
        run = await probe(meter, tmp_path, baud="auto", timeout=0.3)
    rates = run.finding("serial.rates").data["rates"]
    assert rates[0]["baud"] == 9600 and rates[0]["outcome"] == "garbage"
    assert {r["outcome"] for r in rates[1:]} == {"silence"}
    assert run.causes[0] == "serial.format_mismatch"
    cause = run.cause("serial.format_mismatch")
    assert "--baud 9600 --serial-format 8E1" in cause.actions[0].text
    assert cause.evidence[0].frame is not None  # the SNRM that drew the garbage
    # garbage: the meter hears us, so no address discovery is spent on it
    assert run.step("address.discover").status.value == "skipped"


async def test_an_echoing_adapter_is_detected_and_stripped(tmp_path: Path) -> None:
    async with pty_meter(["echo"]) as meter:
        run = await probe(meter, tmp_path)
    assert run.step("assoc.public").status.value == "ok"
    assert "serial.echo" in run.codes
    rows = run.finding("serial.rates").data["rates"]
    assert rows[0]["outcome"] == "answer" and rows[0]["detail"] == "UA + echo"
    echoes = [f for f in run.session.frames if f.kind == "echo"]
    assert echoes and echoes[0].data == run.tx()[0]


async def test_a_line_held_by_another_process_gets_nothing_and_names_it(tmp_path: Path) -> None:
    async with pty_meter() as meter:
        holder = subprocess.Popen(
            [sys.executable, "-c", "import os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR "
             "| os.O_NOCTTY); print('ready', flush=True); time.sleep(30)",
             str(meter.serial_path)], stdout=subprocess.PIPE)
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"ready\n"
            run = await probe(meter, tmp_path)
        finally:
            holder.kill()
            holder.wait()
        assert meter.log.of("frame.received") == [] and meter.log.of("bytes.garbled") == []
    assert run.session.frames == []  # nothing was sent
    finding = run.finding("serial.held")
    assert finding.data["holders"][0]["pid"] == holder.pid
    assert "time.sleep(30)" in finding.data["holders"][0]["command"]
    cause = run.cause("serial.held")
    assert run.causes[0] == "serial.held" and cause.whose == "poller"
    assert f"PID {holder.pid}" in cause.title
    assert run.session.settings["stopped_reason"] == "line_busy"


async def test_a_missing_device_is_said_with_the_ports_found(tmp_path: Path) -> None:
    async with pty_meter() as meter:
        run = await probe(meter, tmp_path, target=str(tmp_path / "ttyUSB9"))
    assert run.causes[0] == "serial.no_device"
    assert run.session.frames == []
    assert "does not exist" in run.finding("serial.no_device").message


def _tshark_helpers() -> tuple[object, object]:
    from tests.output import test_capture

    if test_capture.TSHARK is None:
        pytest.skip("tshark is not installed")
    return test_capture.tshark_problems, test_capture.tshark


async def test_a_serial_capture_is_one_tcp_stream_on_4059_with_a_section_comment(
        tmp_path: Path) -> None:
    from dlmsdoctor.output.capture import write_capture
    from dlmsdoctor.output.capture_read import read_capture

    async with pty_meter(["line-rate=19200"]) as meter:
        run = await probe(meter, tmp_path)
    path = tmp_path / "serial.pcapng"
    write_capture(run.session, path)
    back = read_capture(path)
    assert [f.data for f in back.frames] == [f.data for f in run.session.frames]
    problems, tshark = _tshark_helpers()
    assert problems(path) == ""  # type: ignore[operator]
    ports = tshark("-r", str(path), "-T", "fields", "-e", "tcp.dstport",  # type: ignore[operator]
                   "-Y", "tcp.len > 0 && ip.src == 192.0.2.100")
    assert set(ports.split()) == {"4059"}
    comment = tshark("-r", str(path), "-q", "-z", "io,stat,0")  # type: ignore[operator]
    assert comment is not None
    header = path.read_bytes()[:20000].decode("latin-1")
    assert "SERIAL LINE: this session ran on a serial line" in header
    assert "19200 8N1 (next rate of the sweep)" in header


@pytest.mark.slow
async def test_a_meter_at_300_baud_is_found_because_waits_scale_with_byte_time(
        tmp_path: Path) -> None:
    # an SNRM and its UA take 2.2 s at 300 baud: a fixed 0.3 s wait would call it silent
    async with pty_meter(["line-rate=300"]) as meter:
        # no association: every APDU costs seconds at 300 baud; the rate is the point here
        run = await probe(meter, tmp_path, baud="auto", timeout=0.3, public=False)
    rates = run.finding("serial.rates").data["rates"]
    assert (rates[-1]["baud"], rates[-1]["outcome"]) == (300, "answer")
    assert {r["outcome"] for r in rates[:-1]} == {"silence"}
    assert run.step("release").summary.startswith("DISC/UA")  # released at 300 too


def test_the_probe_command_on_a_serial_line(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """As a user types it: `dlmsdoctor probe /dev/pts/N --json`, then the usage errors."""
    import json

    from click.testing import CliRunner

    from dlmsdoctor.cli.probe_cmd import probe as probe_cmd
    from dlmsdoctor.sim.meter import MeterThread
    from dlmsdoctor.sim.optical import LineSettings

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    runner = CliRunner()
    with MeterThread("default", ["line-rate=19200"], port=None, serial_device="pty",
                     line=LineSettings()) as meter:
        result = runner.invoke(probe_cmd, [str(meter.serial_path), "--json", "--no-save"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["target"]["link"] == "serial" and doc["target"]["device"] == meter.serial_path
    profile = doc["profile"]
    assert (profile["link"], profile["baud"], profile["format"]) == ("serial", 19200, "8N1")
    assert profile["forms"]["gurux_args"].startswith(f"-S {meter.serial_path}:19200:8None1")
    assert profile["forms"]["dlmsdoctor_args"].startswith(
        f"dlmsdoctor probe {meter.serial_path} --baud 19200")
    missing = runner.invoke(probe_cmd, [str(tmp_path / "ttyUSB7"), "--no-save"])
    assert missing.exit_code == 12  # like a TCP connection that could not be made
    assert "serial.no_device" in missing.stdout
    wrong = runner.invoke(probe_cmd, ["192.0.2.1", "--baud", "9600"])
    assert wrong.exit_code == 64 and wrong.stdout == ""
    assert "apply to serial targets" in wrong.stderr


async def test_reports_of_a_serial_session_name_the_line_in_both_languages(
        tmp_path: Path) -> None:
    from dlmsdoctor.output.report import write_report

    async with pty_meter(["line-rate=19200"]) as meter:
        run = await probe(meter, tmp_path)
    for lang, kind, summary in (("en", "serial line", "frames on the serial line"),
                                ("es", "línea serial", "tramas por la línea serial")):
        for fmt in ("md", "html"):
            path = tmp_path / f"report.{lang}.{fmt}"
            write_report(run.session, str(path), fmt, lang)
            text = path.read_text(encoding="utf-8")
            assert f"{meter.serial_path} ({kind})" in text
            assert summary in text
            assert "TCP connect" not in text and "conexión TCP" not in text
            assert "serial.rate_differs" in text
            assert f"{meter.serial_path} ({kind}), 19200 8N1" in text  # the working profile
            assert f"{meter.serial_path}:0" not in text


async def test_a_lock_file_of_a_live_process_is_respected_and_diagnosed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dlmsdoctor.link import serial_line

    monkeypatch.setattr(serial_line, "LOCK_DIRS", (tmp_path,))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        async with pty_meter() as meter:
            device = str(meter.serial_path)
            (tmp_path / f"LCK..{Path(device).name}").write_text(f"{sleeper.pid:10d}\n")
            run = await probe(meter, tmp_path)
            assert meter.log.of("frame.received") == []
    finally:
        sleeper.kill()
        sleeper.wait()
    assert run.session.frames == []
    assert run.causes[0] == "serial.locked" and run.cause("serial.locked").whose == "poller"
    assert f"PID {sleeper.pid}" in run.cause("serial.locked").title


async def test_no_permission_is_diagnosed_with_the_group_to_join(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import serial

    from dlmsdoctor.link import serial as link_serial

    def refuse(device: str, *_: object) -> None:
        raise serial.SerialException(errno.EACCES, f"could not open port {device}: "
                                     "[Errno 13] Permission denied")

    monkeypatch.setattr(link_serial, "_open_local", refuse)
    async with pty_meter() as meter:
        run = await probe(meter, tmp_path)
    cause = run.cause("serial.permission")
    assert run.causes[0] == "serial.permission" and cause.whose == "client"
    group = run.finding("serial.permission").data["group"]
    assert f"sudo usermod -aG {group} $USER" in cause.actions[0].text


async def test_a_partial_holder_check_is_said(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from dlmsdoctor.link import serial as link_serial

    monkeypatch.setattr(link_serial, "scan_holders", lambda device: ([], 3))
    async with pty_meter() as meter:
        run = await probe(meter, tmp_path)
    finding = run.finding("serial.holders_unchecked")
    assert finding.data["unchecked"] == 3 and "sudo fuser -v" in finding.message
    assert run.step("assoc.public").status.value == "ok"  # a warning, not a stop


async def test_a_rate_the_adapter_refuses_is_recorded_and_the_sweep_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dlmsdoctor.link import serial as link_serial

    real_apply = link_serial._apply

    def no_19200(port: object, baud: int, *rest: object) -> str:
        if baud == 19200:
            raise link_serial.LineOpenError("format", "the adapter refuses 19200 8N1")
        return real_apply(port, baud, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(link_serial, "_apply", no_19200)
    async with pty_meter(["line-rate=2400"]) as meter:
        run = await probe(meter, tmp_path, timeout=0.3)
    rates = run.finding("serial.rates").data["rates"]
    assert [(r["baud"], r["outcome"]) for r in rates] == [
        (9600, "silence"), (19200, "unsupported"), (2400, "answer")]
    assert "engine.exception" not in run.codes
    assert run.causes[0] == "serial.rate_differs"
