"""`dlmsdoctor probe NAME` for a config target that is a serial line or an optical head: the run
uses the config's device, rate and format (against the simulated meter on a pseudo-terminal),
and the command line's --baud, --serial-format and --optical/--no-optical win over them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dlmsdoctor.cli.probe_cmd import UsageProblem, build_options, probe
from dlmsdoctor.sim.meter import MeterThread
from dlmsdoctor.sim.optical import LineSettings

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NO_COLOR", "1")


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(probe, list(args), catch_exceptions=False)


def _rates(doc: dict) -> list[tuple[int, str, str]]:
    found = next(f for f in doc["findings"] if f["code"] == "serial.rates")
    return [(r["baud"], r["format"], r["outcome"]) for r in found["data"]["rates"]]


def test_probe_name_runs_the_configs_serial_line(tmp_path: Path) -> None:
    with MeterThread("default", ["line-rate=19200"], port=None, serial_device="pty",
                     line=LineSettings()) as meter:
        device = str(meter.serial_path)
        config = _config(tmp_path, f'[targets.meter-a]\ndevice = "{device}"\nbaud = 19200\n'
                                   'serial_format = "8E1"\n')
        result = invoke("meter-a", "--config", str(config), "--json", "--no-save")
        assert result.exit_code == 0, result.stderr
        doc = json.loads(result.stdout)
        target = doc["target"]
        assert (target["link"], target["device"], target["baud"], target["serial_format"]) == (
            "serial", device, "19200", "8E1")
        # the configured rate was the only one tried (auto would start at 9600), in the
        # configured format (a pty carries 8N1 only: the probe says what it applied)
        assert _rates(doc) == [(19200, "8E1", "answer")]
        pty = next(f for f in doc["findings"] if f["code"] == "serial.pty_format")
        assert pty["data"] == {"baud": 19200, "format": "8E1"}
        assert (doc["profile"]["baud"], doc["profile"]["format"]) == (19200, "8E1")
        assert meter.unreleased_associations() == []

        # the command line wins over the config
        result = invoke("meter-a", "--config", str(config), "--serial-format", "8N1",
                        "--json", "--no-save")
        assert result.exit_code == 0, result.stderr
        doc = json.loads(result.stdout)
        assert doc["target"]["serial_format"] == "8N1"
        assert _rates(doc) == [(19200, "8N1", "answer")]


def test_probe_name_signs_on_with_the_configs_optical_head(tmp_path: Path) -> None:
    with MeterThread("default", port=None, serial_device="pty",
                     line=LineSettings(optical=True)) as meter:
        device = str(meter.serial_path)
        config = _config(tmp_path, f'[targets.door]\ndevice = "{device}"\noptical = true\n')
        result = invoke("door", "--config", str(config), "--no-save")
        assert result.exit_code == 0, result.stdout + result.stderr
        assert f"probing {device} (optical head, IEC 62056-21 mode E)" in result.stdout
        assert "optical.mode_e" in result.stdout and "Verdict: OK" in result.stdout
        assert meter.unreleased_associations() == []


SERIAL_CONFIG = """
[targets.rs485]
device = "/dev/ttyUSB0"
baud = 19200
serial_format = "8E1"
server_address = "1/17"

[targets.head]
device = "/dev/ttyUSB1"
optical = true
baud = 4800

[targets.bridge]
host = "rfc2217://127.0.0.1:7001"
baud = "auto"

[targets.tcp]
host = "127.0.0.1"
port = 4061
"""


@pytest.mark.parametrize(("target", "given", "expected"), [
    ("rs485", {}, ("/dev/ttyUSB0", 0, "serial", "19200", "8E1")),
    ("rs485", {"baud": "auto"}, ("/dev/ttyUSB0", 0, "serial", "auto", "8E1")),
    ("rs485", {"serial_format": "8n1"}, ("/dev/ttyUSB0", 0, "serial", "19200", "8N1")),
    # --optical on a plain line: the head signs on itself; the line's format is not the head's
    ("rs485", {"optical": True}, ("/dev/ttyUSB0", 0, "optical", "19200", "8N1")),
    ("head", {}, ("/dev/ttyUSB1", 0, "optical", "4800", "8N1")),
    ("head", {"optical": True}, ("/dev/ttyUSB1", 0, "optical", "4800", "8N1")),
    ("head", {"optical": False}, ("/dev/ttyUSB1", 0, "serial", "4800", "8N1")),
    ("head", {"optical": False, "serial_format": "7E1"},
     ("/dev/ttyUSB1", 0, "serial", "4800", "7E1")),
    ("bridge", {"baud": "9600"}, ("rfc2217://127.0.0.1:7001", 0, "rfc2217", "9600", "8N1")),
    ("tcp", {}, ("127.0.0.1", 4061, "tcp", "auto", "8N1")),
    ("tcp", {"optical": False}, ("127.0.0.1", 4061, "tcp", "auto", "8N1")),
])
def test_the_command_line_wins_over_the_configs_line(
        tmp_path: Path, target: str, given: dict[str, object],
        expected: tuple[object, ...]) -> None:
    config = _config(tmp_path, SERIAL_CONFIG)
    options = build_options(target, config_path=config, **given)  # type: ignore[arg-type]
    assert (options.host, options.port, options.link, options.baud,
            options.serial_format) == expected
    if options.link != "tcp":
        assert options.framing == "hdlc" and not options.icmp
    if target == "rs485":
        assert str(options.server_address) == "1/17"


@pytest.mark.parametrize(("args", "words"), [
    (["tcp", "--baud", "9600"], "--baud apply to serial targets; target 'tcp' of the config is "
                                "TCP (host '127.0.0.1')"),
    (["tcp", "--optical"], "--optical apply to serial targets"),
    (["head", "--serial-format", "8E1"], "target 'head' of the config is an optical head "
                                         "(optical = true)"),
    (["head", "--serial-format", "8E1"], "add --no-optical to use --serial-format 8E1"),
    (["rs485", "--baud", "fast"], "--baud 'fast': give auto or a rate"),
    (["rs485", "--framing", "wrapper"], "--framing wrapper: a serial line carries HDLC only"),
])
def test_a_wrong_override_is_a_usage_error_with_an_empty_stdout(
        tmp_path: Path, args: list[str], words: str) -> None:
    config = _config(tmp_path, SERIAL_CONFIG)
    result = invoke(*args, "--config", str(config))
    assert result.exit_code == 64 and result.stdout == ""
    assert words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_broken_serial_table_stops_the_probe_with_file_line_and_key(tmp_path: Path) -> None:
    config = _config(tmp_path, '[targets.meter-a]\nhost = "192.0.2.5"\n'
                               'device = "/dev/ttyUSB0"\n')
    result = invoke("meter-a", "--config", str(config))
    assert result.exit_code == 64 and result.stdout == ""
    assert f"{config}, line 3: target 'meter-a': host and device are both given" in (
        result.stderr)
    with pytest.raises(UsageProblem, match="line 3"):
        build_options("meter-a", config_path=config)
