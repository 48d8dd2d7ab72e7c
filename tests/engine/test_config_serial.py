"""``[targets.NAME]`` tables for a serial line, an optical head and an RFC 2217 bridge: read with
the command line's own rules (target_rules.py), and every mistake a ConfigError that names the
file, the line and the key, in the config's words (``baud``, not ``--baud``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlmsdoctor.config import ConfigError, TargetConfig, parse_config
from dlmsdoctor.engine import OptionsError
from dlmsdoctor.targets import options_for

PATH = Path("/home/tech/.config/dlmsdoctor/config.toml")

CONFIG = """# the meters of the round
[credentials.reader]
client_sap = 32
auth = "low"
password = "22222222"

[targets.meter-a]  # weekly, through the USB optical head
device = "/dev/ttyUSB0"
optical = true
serial_number = "12345678"

[targets.rs485]
device = "COM3"
baud = 19200
serial_format = "8e1"
server_address = "1/17"
address_size = 2
credentials = ["reader"]

[targets.by-name]
device = "serial:ttyUSB1"
baud = "auto"

[targets.bridge]
host = "rfc2217://192.0.2.7:7001"
baud = "9600"

[targets.tcp]
host = "192.0.2.10"
port = 4061
optical = false
"""


def test_every_serial_form_is_read() -> None:
    targets = parse_config(CONFIG, PATH).targets
    assert targets["meter-a"] == TargetConfig(
        "meter-a", "/dev/ttyUSB0", 0, serial_number="12345678", link="optical")
    assert targets["meter-a"].device == "/dev/ttyUSB0" and targets["meter-a"].optical
    rs485 = targets["rs485"]
    assert (rs485.host, rs485.port, rs485.link, rs485.baud, rs485.serial_format) == (
        "COM3", 0, "serial", "19200", "8E1")  # the format as the CLI writes it
    assert (rs485.server_address, rs485.address_size, rs485.credentials) == (
        "1/17", 2, ("reader",))
    assert (targets["by-name"].host, targets["by-name"].baud) == ("serial:ttyUSB1", "auto")
    bridge = targets["bridge"]
    assert (bridge.host, bridge.port, bridge.link, bridge.baud) == (
        "rfc2217://192.0.2.7:7001", 0, "rfc2217", "9600")
    assert bridge.device is None  # a bridge is a host, not a device
    tcp = targets["tcp"]
    assert (tcp.host, tcp.port, tcp.link, tcp.baud, tcp.serial_format) == (
        "192.0.2.10", 4061, "tcp", None, None)


def test_a_config_line_is_the_command_lines_line() -> None:
    """The same values through the config and through ``probe DEVICE --baud ...`` give the
    same ProbeOptions (one parser)."""
    from dlmsdoctor.targets import options_for_config

    targets = parse_config(CONFIG, PATH).targets
    pairs = [
        ("rs485", options_for("COM3", baud="19200", serial_format="8e1")),
        ("meter-a", options_for("/dev/ttyUSB0", optical=True)),
        ("bridge", options_for("rfc2217://192.0.2.7:7001", baud="9600")),
        ("by-name", options_for("serial:ttyUSB1")),
    ]
    for name, expected in pairs:
        assert options_for_config(targets[name]) == expected, name


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, PATH)
    return info.value


@pytest.mark.parametrize(("table", "line", "key", "words"), [
    # host and device together: the message says which to keep, for which case
    ('host = "192.0.2.10"\ndevice = "/dev/ttyUSB0"', 3, "device",
     ['keep device = "/dev/ttyUSB0" for a serial line', 'keep host = "192.0.2.10" for a TCP',
      "delete host", "delete device"]),
    ('device = "/dev/ttyUSB0"\nbaud = "fast"', 3, "baud",
     ["baud 'fast': give auto or a rate", "9600"]),
    ('device = "/dev/ttyUSB0"\nbaud = 0', 3, "baud", ["baud '0': give auto or a rate"]),
    ('device = "/dev/ttyUSB0"\nbaud = ""', 3, "baud", ["baud '': give auto or a rate"]),
    ('device = "/dev/ttyUSB0"\nbaud = true', 3, "baud", ['baud must be "auto" or a rate']),
    ('device = "/dev/ttyUSB0"\nbaud = 96.0', 3, "baud", ['baud must be "auto" or a rate']),
    ('device = "/dev/ttyUSB0"\nserial_format = "9Q9"', 3, "serial_format",
     ["serial_format '9Q9' is not DATA-BITS PARITY STOP-BITS, e.g. 8N1"]),
    ('device = "/dev/ttyUSB0"\nserial_format = 801', 3, "serial_format",
     ['serial_format must be a quoted string such as "8N1"']),
    ('device = "/dev/ttyUSB0"\noptical = true\nserial_format = "8N1"', 4, "serial_format",
     ["optical signs on at 300 baud 7E1", "leave serial_format out"]),
    ('device = "/dev/ttyUSB0"\noptical = "yes"', 3, "optical", ["optical must be true or false"]),
    ('device = "/dev/ttyUSB0"\nframing = "wrapper"', 3, "framing",
     ["framing wrapper: a serial line carries HDLC only"]),
    ('device = "/dev/ttyUSB0"\nport = 4059', 3, "port",
     ["port is for a TCP host; a serial line has none"]),
    ('device = "ttyUSB0"', 2, "device",
     ["device 'ttyUSB0' is not a serial device", '"/dev/ttyUSB0"', '"serial:ttyUSB0"']),
    ('device = "serial:"', 2, "device", ["names no device"]),
    ('device = ""', 2, "device", ["device must be a quoted serial device"]),
    ('device = "rfc2217://192.0.2.7:7001"', 2, "device",
     ['an RFC 2217 bridge is a host: write host = "rfc2217://192.0.2.7:7001"']),
    ('host = "/dev/ttyUSB0"', 2, "host",
     ["host '/dev/ttyUSB0' is a serial line: write device = \"/dev/ttyUSB0\""]),
    ('host = "rfc2217://192.0.2.7"', 2, "host",
     ["host 'rfc2217://192.0.2.7': write an RFC 2217 bridge as rfc2217://HOST:PORT"]),
    ('host = "rfc2217://192.0.2.7:7001"\nport = 7001', 3, "port",
     ["the bridge's port is in the URL"]),
    ('host = "192.0.2.10"\nbaud = 9600', 3, "baud",
     ["baud is for a serial line", 'device = "/dev/ttyUSB0" instead of host',
      "not for the TCP host '192.0.2.10'"]),
    ('host = "192.0.2.10"\noptical = true\nserial_format = "7E1"', 4, "serial_format",
     ["serial_format, optical are for a serial line"]),
    ('port = 4059', 1, None, ["host is required", 'or device for a serial line']),
    ('device = "/dev/ttyUSB0"\nparity = "E"', 3, "parity",
     ["unknown key(s) parity", 'serial_format = "8N1"']),
])
def test_a_wrong_value_names_the_file_the_line_and_the_key(
        table: str, line: int, key: str | None, words: list[str]) -> None:
    text = f"[targets.meter-a]\n{table}\n"
    error = _error(text)
    message = str(error)
    assert message.startswith(f"{PATH}, line {line}: target 'meter-a': "), message
    if key is not None:
        assert text.splitlines()[line - 1].startswith(key)
    for word in words:
        assert word in message, message
    assert "--" not in message  # the config's words, never the command line's


def test_the_line_points_into_the_right_table() -> None:
    text = CONFIG + '\n[targets.late]\ndevice = "/dev/ttyUSB2"\n\nbaud = 12\n'
    error = _error(text)
    assert error.line == text.splitlines().index("baud = 12") + 1


def test_a_serial_target_read_from_a_file_says_its_path(tmp_path: Path) -> None:
    from dlmsdoctor.config import load_config

    path = tmp_path / "config.toml"
    path.write_text('[targets.a]\ndevice = "/dev/ttyUSB0"\nserial_format = "8X1"\n')
    with pytest.raises(ConfigError, match=rf"^{path}, line 3: target 'a': serial_format"):
        load_config(path)


def test_the_command_line_keeps_its_own_words() -> None:
    with pytest.raises(OptionsError, match=r"^--baud 'fast': give auto or a rate"):
        options_for("/dev/ttyUSB0", baud="fast")
    with pytest.raises(OptionsError, match=r"^--serial-format '9Q9' is not DATA-BITS"):
        options_for("/dev/ttyUSB0", serial_format="9Q9")
    with pytest.raises(OptionsError, match=r"^--baud apply to serial targets"):
        options_for("192.0.2.10", baud="9600")
    with pytest.raises(OptionsError, match=r"^target 'rfc2217://h': write an RFC 2217"):
        options_for("rfc2217://h")


def test_the_config_shown_in_docs_serial_md_is_read_as_it_says() -> None:
    import re

    doc = (Path(__file__).parents[2] / "docs" / "serial.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", doc, re.DOTALL)
    assert block is not None
    reader = '\n[credentials.reader]\nclient_sap = 32\nauth = "low"\npassword = "x"\n'
    targets = parse_config(block.group(1) + reader).targets
    assert (targets["meter-a"].link, targets["meter-a"].serial_number) == ("optical", "12345678")
    assert (targets["pump-house"].baud, targets["pump-house"].serial_format) == ("19200", "8E1")
    assert targets["substation"].link == "rfc2217"
    # the error the page shows is the one the reader gives
    bad = block.group(1).replace("baud = 19200 ", 'baud = "fast"')
    message = str(_error(bad + reader))
    shown = message.replace(str(PATH), "/home/you/.config/dlmsdoctor/config.toml")
    assert f"dlmsdoctor probe: {shown}" in doc


def test_the_config_shown_in_the_readme_is_read() -> None:
    import re

    doc = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"### Named targets.*?```toml\n(.*?)```", doc, re.DOTALL)
    assert block is not None
    targets = parse_config(block.group(1)).targets
    assert [targets[n].link for n in ("meter2", "pump-house", "meter-a")] == [
        "tcp", "serial", "optical"]
    message = str(_error(block.group(1).replace("baud = 19200 ", 'baud = "fast"')))
    shown = message.replace(f"{PATH}, ", "config.toml, ")[:60]  # as the page quotes it
    assert shown in " ".join(doc.split())
