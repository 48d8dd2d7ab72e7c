"""Usage mistakes end in exit 64 with one clear line, never exit 70 "internal error" (a bug of
ours), never a traceback, and never echo a secret typed in the wrong place (issue 10 item 9).

Every run goes through the real entry point (``main.run``) in process; none reaches a network:
the mistakes are caught before anything connects (the one run that connects uses 127.0.0.1:1).
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from dlmsdoctor.cli.exit_codes import ExitCode
from tests.helpers.damage import run_cli

NO_RUN = ["--no-icmp", "--no-save", "--connect-timeout", "0.3", "--timeout", "0.2"]


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))


def _usage(args: list[str], *words: str) -> str:
    got = run_cli(args)
    assert got.code == ExitCode.USAGE, (got.code, got.stderr)
    assert got.stdout == ""
    assert "Traceback" not in got.stderr and "internal error" not in got.stderr
    assert len(got.stderr.strip().splitlines()) == 1, got.stderr
    for word in words:
        assert word in got.stderr, got.stderr
    return got.stderr


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("text", "words"), [
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", ("nested too deeply",)),
    ('[targets.m]\nhost = "127.0.0.1"\naddress_size = true\n', ("line 3", "address_size")),
    ('[targets.m]\nhost = "' + "a" * 70 + '.example"\n', ("line 2", "70 characters")),
    ('[targets.m]\nhost = "127.0.0.1"\nframing = ["hdlc"]\n', ("framing must be",)),
])
def test_config_mistakes_are_usage_errors(text: str, words: tuple[str, ...],
                                          tmp_path: Path) -> None:
    path = _config(tmp_path, text)
    _usage(["probe", "m", "--config", path, *NO_RUN], path, *words)


@pytest.mark.parametrize("cred", ["1:SuperSecret99", "mgmt=1:SuperSecret99",
                                  "1:SuperSecret99:more", "16:Low-Secret"])
def test_a_secret_in_the_auth_place_is_not_echoed(cred: str) -> None:
    err = _usage(["probe", "127.0.0.1:1", "--cred", cred, *NO_RUN],
                 "AUTH must be none, low or gmac")
    secret = cred.split(":")[1]
    assert secret.lower() not in err.lower()


def test_a_secret_in_the_config_auth_is_not_echoed(tmp_path: Path) -> None:
    path = _config(tmp_path, '[credentials.c]\nclient_sap = 1\nauth = "SuperSecret99"\n'
                             '[targets.m]\nhost = "127.0.0.1"\ncredentials = ["c"]\n')
    err = _usage(["probe", "m", "--config", path, *NO_RUN], "auth must be none, low or gmac")
    assert "supersecret99" not in err.lower()


@pytest.mark.parametrize(("target", "words"), [
    ("a" * 70 + ".example:4059", ("70 characters",)),
    ("a..b:4059", ("empty part",)),
    ("x" * 300, ("at most 253",)),
    ("exa mple:1", ("not an IP address or a DNS name",)),
])
def test_bad_host_names_are_usage_errors_before_connecting(target: str,
                                                           words: tuple[str, ...]) -> None:
    _usage(["probe", target, *NO_RUN], *words)


@pytest.mark.parametrize("option", ["--timeout", "--connect-timeout"])
@pytest.mark.parametrize("value", ["nan", "inf", "1e308"])
def test_timeouts_that_are_not_sensible_numbers(option: str, value: str) -> None:
    args = ["probe", "127.0.0.1:1", "--no-icmp", "--no-save", option, value]
    _usage(args, "timeouts must be more than 0")


def test_simulator_profile_siblings(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    err = _usage(["simulate", "--port", "0", "--profile", str(deep)], "nested too deeply")
    assert str(deep) in err
    boolean = tmp_path / "bool.toml"
    boolean.write_text("[server]\nphysical = true\n", encoding="utf-8")
    _usage(["simulate", "--port", "0", "--profile", str(boolean)], "physical must be an integer")
    _usage(["simulate", "--host", "a" * 70 + ".example", "--port", "0"], "--host", "70 characters")


@click.command("leaky")
@click.argument("what")
def leaky(what: str) -> None:
    """A command that lets a reader's or a parser's error through (it should catch it)."""
    from dlmsdoctor.config import ConfigError
    from dlmsdoctor.session import SessionFormatError

    if what == "session":
        raise SessionFormatError("s.json: frames[0].at: expected a number")
    if what == "config":
        raise ConfigError("c.toml, line 2: address_size must be 1, 2 or 4")
    raise RuntimeError("a real bug")


@pytest.mark.parametrize(("what", "code"), [("session", ExitCode.UNUSABLE_INPUT),
                                            ("config", ExitCode.USAGE),
                                            ("bug", ExitCode.INTERNAL)])
def test_errors_that_slip_through_are_not_called_bugs(what: str, code: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from dlmsdoctor.cli import main as main_module

    monkeypatch.setitem(main_module._COMMANDS, "leaky",
                        ("tests.cli.test_usage_errors:leaky", "test"))
    got = run_cli(["leaky", what])
    assert got.code == code and "Traceback" not in got.stderr
    assert ("internal error" in got.stderr) is (code == ExitCode.INTERNAL)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("command", ["open", "report"])
def test_a_full_disk_on_stdout_is_said_not_a_bug(command: str) -> None:
    import subprocess
    import sys

    sample = Path(__file__).resolve().parents[2] / "captures" / "healthy.session.json"
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "dlmsdoctor", command, str(sample)],
                              stdout=full, stderr=subprocess.PIPE, text=True, check=False,
                              timeout=60)
    assert proc.returncode == ExitCode.IO_ERROR, proc.stderr
    assert "No space left on device" in proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
