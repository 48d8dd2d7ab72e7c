"""``dlmsdoctor simulate``: banner first, serves until SIGINT, exits 0; clear errors otherwise."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from gurux_dlms.objects import GXDLMSData

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.cli.simulate_cmd import simulate
from tests.sim.gurux_peer import GuruxPeer

RUN = [sys.executable, "-c", "from dlmsdoctor.cli.simulate_cmd import simulate; simulate()"]


def test_serves_until_ctrl_c_and_writes_the_event_log(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [*RUN, "--port", "0", "--profile", "wrapper", "--fault", "delay=0.01",
         "--events", str(events)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+) \(wrapper, logical device 1\)\n",
                             first)
        assert match, first
        with GuruxPeer(int(match.group(1)), wrapper=True) as peer:
            peer.connect()
            peer.read(GXDLMSData("0.0.42.0.0.255"), 2)
            peer.release()
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    records = [json.loads(line) for line in events.read_text().splitlines()]
    names = [r["event"] for r in records]
    assert names[0] == "meter.started" and names[-1] == "meter.stopped"
    assert "association.released" in names


def test_bad_fault_spec_is_a_usage_error() -> None:
    result = CliRunner().invoke(simulate, ["--fault", "lockout=x"])
    assert result.exit_code == ExitCode.USAGE
    assert "lockout" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unknown_profile_lists_the_built_in_ones() -> None:
    result = CliRunner().invoke(simulate, ["--profile", "nope"])
    assert result.exit_code == ExitCode.USAGE
    assert "default" in result.output and "serial-derived" in result.output


def test_bad_profile_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\naddress_size = 3\n")
    result = CliRunner().invoke(simulate, ["--profile", str(bad)])
    assert result.exit_code == ExitCode.USAGE
    assert "address_size must be 1, 2 or 4" in result.output


def test_port_in_use_is_reported_without_traceback() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(simulate, ["--port", str(port)])
    assert result.exit_code == ExitCode.USAGE
    assert "cannot listen" in result.output


def test_serial_device_only(tmp_path: Path) -> None:
    device = tmp_path / "meter"
    proc = subprocess.Popen([*RUN, "--serial-device", str(device)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first == f"listening on {device} (hdlc, server 1/1, 2-byte)\n"
        assert device.is_symlink()
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert not device.exists()
