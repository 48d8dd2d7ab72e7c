"""The config reader takes any TOML and either reads it or raises ConfigError naming the file
and what is wrong: never a RecursionError, a ValueError from int() or an idna codec error later
(issue 10 item 9)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.config import ConfigError, host_problem, load_config, parse_config

CRED_KEYS = ["client_sap", "auth", "password", "system_title", "block_cipher_key",
             "authentication_key"]
TARGET_KEYS = ["host", "port", "device", "baud", "serial_format", "optical", "framing",
               "server_address", "address_size", "serial_number", "credentials"]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_text(doc: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = []
    for section, tables in doc.items():
        for name, table in tables.items():
            lines.append(f"[{section}.{json.dumps(name)}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


scalars = (st.integers(-(2**70), 2**70) | st.booleans() | st.floats() | st.text(max_size=80)
           | st.sampled_from(["low", "none", "gmac", "1/17", "127.0.0.1", "a" * 70 + ".x",
                              "00112233445566778899AABBCCDDEEFF", "auto", "hdlc", "wrapper",
                              "/dev/ttyUSB0", "COM3", "serial:", "rfc2217://127.0.0.1:7000",
                              "8N1", "7E1", "9600"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
tables = {
    "credentials": st.dictionaries(st.sampled_from(CRED_KEYS) | st.text(max_size=6), values,
                                   max_size=6),
    "targets": st.dictionaries(st.sampled_from(TARGET_KEYS) | st.text(max_size=6), values,
                               max_size=7),
}
docs = st.fixed_dictionaries({
    section: st.dictionaries(st.sampled_from(["a", "b", "mgmt"]), strategy, max_size=2)
    for section, strategy in tables.items()
})


@settings(max_examples=200, deadline=None, database=None)
@given(doc=docs)
def test_any_toml_is_read_or_refused_with_a_config_error(doc: dict[str, Any]) -> None:
    path = Path("/cfg/config.toml")
    try:
        config = parse_config(toml_text(doc), path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path)), str(exc)
        return
    from dlmsdoctor.targets import options_for_config

    for target in config.targets.values():  # what was read is usable as it stands
        assert isinstance(target.port, int) and not isinstance(target.port, bool)
        assert target.address_size in (None, 1, 2, 4) and not isinstance(target.address_size,
                                                                          bool)
        if target.link == "tcp":
            assert host_problem(target.host) is None
        options = options_for_config(target)  # never an OptionsError: it was checked
        assert (options.host, options.port, options.link) == (target.host, target.port,
                                                              target.link)


@pytest.mark.parametrize(("text", "expected"), [
    ("x = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    ("[targets.m]\nhost = \"h\"\nserial_number = " + "{a=" * 3000 + "1" + "}" * 3000,
     "nested too deeply"),
    ("[targets.m]\nhost = \"127.0.0.1\"\naddress_size = true\n", "address_size must be 1, 2 or 4"),
    ("[targets.m]\nhost = \"" + "a" * 70 + ".example\"\n", "has 70 characters"),
    ("[targets.m]\nhost = \"a..b\"\n", "empty part between dots"),
    ("[targets.m]\nhost = \"" + "a." * 130 + "\"\n", "at most 253"),
    ("[targets.m]\nhost = \"127.0.0.1\"\nframing = 1\n", "framing must be"),
    ("[targets.m]\nhost = \"127.0.0.1\"\nserver_address = true\n", "server_address must be"),
    ("[targets.m]\nhost = \"127.0.0.1\"\nserver_address = \"abc\"\n", "LOGICAL/PHYSICAL"),
    ("[targets.m]\nhost = \"127.0.0.1\"\nport = 1.5\n", "port must be 1..65535"),
    ("[targets.m]\nhost = \"127.0.0.1\"\nserial_number = false\n", "serial_number must be"),
    ("[credentials.c]\nclient_sap = 1\nauth = \"SuperSecret99\"\n", "auth must be none, low or"),
])
def test_bad_values_are_config_errors_naming_file_and_line(text: str, expected: str,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert expected in message and str(path) in message
    assert "SuperSecret99" not in message and "supersecret99" not in message


@pytest.mark.parametrize(("host", "ok"), [
    ("127.0.0.1", True), ("::1", True), ("fe80::1%eth0", True), ("meter-1.example.com", True),
    ("meter.example.com.", True), ("a" * 63 + ".x", True), ("a" * 64 + ".x", False),
    ("", False), ("a b", False), ("a..b", False), ("a/b", False), ("x" * 254, False),
])
def test_host_names(host: str, ok: bool) -> None:
    assert (host_problem(host) is None) is ok
