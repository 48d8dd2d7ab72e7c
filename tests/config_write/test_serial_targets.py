"""Serial lines, optical heads and RFC 2217 bridges written into the config: each loads back as
the same target, the rest of the user's file (comments, other tables) stays as it was, and the
working profile the probe prints for a serial run is a table the config reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlmsdoctor.config import ConfigError, TargetConfig, load_config, parse_config
from dlmsdoctor.config_write import save_target, save_target_config, target_table
from dlmsdoctor.session import ConnectionProfile

USER_FILE = """# my meters: do not lose this comment
[credentials.reader]  # the read-only client
client_sap = 32
auth = "low"
password = "22222222"

[targets.sub1]
host = "192.0.2.10"   # the substation bridge
credentials = ["reader"]

# the end of the file
"""

FORMS = [
    TargetConfig("usb", "/dev/ttyUSB0", 0, link="serial"),
    TargetConfig("rs485", "/dev/ttyUSB1", 0, link="serial", baud="19200", serial_format="8E1",
                 framing="hdlc", server_address="1/17", address_size=2,
                 serial_number="12345678", credentials=("reader",)),
    TargetConfig("windows", "COM3", 0, link="serial", baud="auto", serial_format="7E1"),
    TargetConfig("by-name", "serial:ttyS1", 0, link="serial", baud="300"),
    TargetConfig("head", "/dev/ttyUSB0", 0, link="optical"),
    TargetConfig("head.slow", "/dev/ttyUSB0", 0, link="optical", baud="4800",
                 serial_number="12345678", credentials=("reader",)),
    TargetConfig("bridge", "rfc2217://192.0.2.7:7001", 0, link="rfc2217"),
    TargetConfig("bridge-19200", "rfc2217://[2001:db8::7]:7001", 0, link="rfc2217",
                 baud="19200", serial_format="8N1", server_address="1"),
    TargetConfig("bridge-head", "rfc2217://192.0.2.7:7002", 0, link="optical"),
    TargetConfig("tcp", "192.0.2.11", 4061, framing="wrapper", credentials=("reader",)),
]


@pytest.mark.parametrize("target", FORMS, ids=[t.name for t in FORMS])
def test_every_form_loads_back_identically(tmp_path: Path, target: TargetConfig) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE, encoding="utf-8")
    save_target_config(target, path)
    config = load_config(path)
    assert config.targets[target.name] == target
    text = path.read_text(encoding="utf-8")
    # the user's lines are all still there, in order, and the file is private
    assert text.startswith(USER_FILE.rstrip("\n"))
    assert config.targets["sub1"].credentials == ("reader",)
    assert path.stat().st_mode & 0o777 == 0o600
    # saved again (edited in place): still one table of that name, still the same target
    save_target_config(target, path)
    again = path.read_text(encoding="utf-8")
    assert again == text
    assert load_config(path).targets[target.name] == target


def test_the_written_table_reads_as_a_technician_would_write_it() -> None:
    assert target_table(FORMS[1]) == (
        "[targets.rs485]\n"
        'device = "/dev/ttyUSB1"\n'
        "baud = 19200\n"
        'serial_format = "8E1"\n'
        'framing = "hdlc"\n'
        'server_address = "1/17"\n'
        "address_size = 2\n"
        'serial_number = "12345678"\n'
        'credentials = ["reader"]\n'
    )
    assert target_table(FORMS[4]) == '[targets.head]\ndevice = "/dev/ttyUSB0"\noptical = true\n'
    assert target_table(FORMS[6]) == (
        '[targets.bridge]\nhost = "rfc2217://192.0.2.7:7001"\n')
    # a dot in a name is quoted, else TOML would read a nested table
    assert target_table(FORMS[5]).startswith('[targets."head.slow"]\n')


def test_a_serial_target_replaces_a_tcp_one_of_the_same_name(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE, encoding="utf-8")
    save_target_config(TargetConfig("sub1", "/dev/ttyUSB0", 0, link="optical"), path)
    text = path.read_text(encoding="utf-8")
    assert "192.0.2.10" not in text and "# the end of the file" in text
    assert load_config(path).targets["sub1"].optical


def test_a_target_is_rewritten_where_it_was_with_the_comments_around_it(
        tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "# meters of the weekly round\n\n"
        "# the meter by the door: optical head\n"
        "[targets.meter-a]\n"
        'host = "192.0.2.20"  # its old modem\n'
        "# (the modem was removed in May)\n\n"
        "# the one upstairs\n"
        "[targets.meter-b]\n"
        'device = "/dev/ttyUSB1"\n', encoding="utf-8")
    save_target_config(TargetConfig("meter-a", "/dev/ttyUSB0", 0, link="optical"), path)
    assert path.read_text(encoding="utf-8") == (
        "# meters of the weekly round\n\n"
        "# the meter by the door: optical head\n"
        "[targets.meter-a]\n"
        'device = "/dev/ttyUSB0"\n'
        "optical = true\n"
        "# (the modem was removed in May)\n\n"
        "# the one upstairs\n"
        "[targets.meter-b]\n"
        'device = "/dev/ttyUSB1"\n')
    assert set(load_config(path).targets) == {"meter-a", "meter-b"}


def test_a_target_that_would_not_load_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE, encoding="utf-8")
    bad = [
        TargetConfig("x", "/dev/ttyUSB0", 0, link="serial", baud="fast"),
        TargetConfig("x", "/dev/ttyUSB0", 0, link="optical", serial_format="8N1"),
        TargetConfig("x", "/dev/ttyUSB0", 0, link="serial", credentials=("nobody",)),
        # not as it would load back: an unnormalised format, a port on a serial line
        TargetConfig("x", "/dev/ttyUSB0", 0, link="serial", serial_format="8e1"),
        TargetConfig("x", "rfc2217://192.0.2.7:7001", 7001, link="rfc2217"),
    ]
    for target in bad:
        with pytest.raises(ConfigError):
            save_target_config(target, path)
        assert path.read_text(encoding="utf-8") == USER_FILE, target


def _profile(**changes: object) -> ConnectionProfile:
    base: dict[str, object] = dict(
        host="/dev/ttyUSB0", port=0, framing="hdlc", server_logical=1, server_physical=17,
        address_size=2, client_sap=16, authentication="none", credential="public",
        link="serial", device="/dev/ttyUSB0", baud=19200, format="8E1")
    base.update(changes)
    return ConnectionProfile(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("profile", "expected"), [
    (_profile(), TargetConfig("meter", "/dev/ttyUSB0", 0, server_address="1/17",
                              address_size=2, link="serial", baud="19200",
                              serial_format="8E1")),
    (_profile(link="optical", baud=9600, format="8N1", mode="E", identification="/DLD5"),
     TargetConfig("meter", "/dev/ttyUSB0", 0, server_address="1/17", address_size=2,
                  link="optical", baud="9600")),
    (_profile(link="rfc2217", host="rfc2217://192.0.2.7:7001",
              device="rfc2217://192.0.2.7:7001", client_sap=1, authentication="low",
              credential="reader"),
     TargetConfig("meter", "rfc2217://192.0.2.7:7001", 0, server_address="1/17",
                  address_size=2, credentials=("reader",), link="rfc2217", baud="19200",
                  serial_format="8E1")),
])
def test_the_printed_serial_profile_is_a_table_that_loads_back(
        tmp_path: Path, profile: ConnectionProfile, expected: TargetConfig) -> None:
    """``probe /dev/ttyUSB0`` prints its working profile as a [targets] table; the TUI saves
    the same table: pasted or saved, it is the line that answered."""
    from dlmsdoctor.diagnosis.profile import toml_snippet

    snippet = toml_snippet(profile)
    assert snippet.startswith("[targets.meter]\n") and "#" not in snippet.split("\n")[1]
    if expected.credentials:
        assert 'credentials = ["reader"]  # [credentials.reader]: client_sap = 1' in snippet
    assert parse_config(USER_FILE + "\n" + snippet).targets["meter"] == expected
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE, encoding="utf-8")
    save_target("meter", snippet, path)
    assert load_config(path).targets["meter"] == expected
