"""`dlmsdoctor demo`: the README's main-job command. It must work on a fresh machine (nothing
written to the user's dirs), finish in a few seconds, and show the scenario's diagnosis."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dlmsdoctor.cli.demo_cmd import DEFAULT_SCENARIO, SCENARIOS, demo


@pytest.fixture(autouse=True)
def fresh_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(demo, list(args), catch_exceptions=False)


def test_default_demo_tells_the_serial_address_story_quickly(fresh_machine: Path) -> None:
    started = time.monotonic()
    result = invoke()
    took = time.monotonic() - started
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert DEFAULT_SCENARIO == "wrong-address"
    assert "[ ok ] address.discover" in out
    assert "Wrong server address: the meter answers at 1/6678 (4-byte)" in out
    assert "SN % 10000 + 1000 = 6678" in out
    assert "gurux client: -h 127.0.0.1" in out and "-s 6678 -l 1" in out
    assert "0 failed login(s) caused by this run, 0 association(s) left open" in out
    # the demo's choices are the demo's: no option the user never typed
    assert "--no-icmp" not in out and "--disc-first" not in out
    assert "turned off by the demo" in out and "the demo does not send DISC first" in out
    # the rungs the address discovery recovered are said to be recovered, right above the verdict
    settled = out[out.index("Recovered by a later rung"):out.index("Verdict:")]
    assert "[rcvd] framing.detect" in settled and "[rcvd] hdlc.snrm" in settled
    assert "\x1b[" not in out
    assert took < 10, took
    assert not (fresh_machine / "data").exists()
    assert not (fresh_machine / "config").exists()


def test_iec_text_on_the_line_is_what_the_framing_rung_got() -> None:
    """Issue 9 item 4: with IEC 62056-21 text on the line the framing rung says what it got,
    not "no answer", right above the verdict that quotes the meter's text."""
    result = invoke("--headless", "--scenario", "iec62056-21")
    assert result.exit_code == 0, result.stderr
    settled = result.stdout[result.stdout.index("Rungs as the whole run shows them"):
                            result.stdout.index("Verdict:")]
    assert "framing.detect     IEC 62056-21 text instead of DLMS: '/DLD5" in settled


def test_lockout_demo_counts_only_the_failures_this_run_caused() -> None:
    """The two failed logins of the earlier runs (the ledger's "an earlier run", as the verdict
    says) are theirs, not this run's."""
    result = invoke("--headless", "--scenario", "lockout")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "0 failed login(s) caused by this run" in out
    assert "the earlier runs (not shown; in the login ledger) caused 2 failed login(s)" in out
    assert "an earlier run" in out  # the verdict's words for the same failures
    # the lockout this tool may have caused, with the times, in the cause's own title
    assert re.search(r"Maybe a login lockout caused by dlmsdoctor's own failed logins at "
                     r"\d\d:\d\d, \d\d:\d\d \(not proven\)", out), out
    assert "poller) caused" not in out
    assert "2 failed login(s) caused," not in out


def test_headless_flag_exists_and_list_names_every_scenario() -> None:
    assert invoke("--headless", "--scenario", "healthy").exit_code == 0
    listing = invoke("--list").stdout
    assert all(name in listing for name in SCENARIOS)


@pytest.mark.parametrize("scenario", ["busy-bridge", "wrapper-only", "wrong-password"])
def test_scenario_json(scenario: str) -> None:
    result = invoke("--scenario", scenario, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "dlmsdoctor.probe"
    assert doc["diagnosis"]["causes"][0]["code"] == SCENARIOS[scenario].expect
    assert doc["saved"] is None


def test_unknown_scenario_is_a_usage_error() -> None:
    result = invoke("--scenario", "nope")
    assert result.exit_code == 2
    assert result.stdout == ""


def test_without_a_terminal_the_demo_stays_headless(monkeypatch: pytest.MonkeyPatch) -> None:
    # CliRunner's stdin and stdout are not TTYs: the TUI must not be built at all.
    import dlmsdoctor.cli.demo_cmd as demo_cmd

    def no_tui(scenario: object) -> int:
        raise AssertionError("the TUI opened without a terminal")

    monkeypatch.setattr(demo_cmd, "_run_tui", no_tui)
    result = invoke("--scenario", "healthy")
    assert result.exit_code == 0, result.stderr
    assert "[ ok ]" in result.stdout


@pytest.mark.parametrize(
    ("args", "opens_tui"),
    [((), True), (("--headless",), False), (("--json",), False), (("--list",), False)],
)
def test_on_a_terminal_the_demo_opens_the_tui_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], opens_tui: bool
) -> None:
    import dlmsdoctor.cli.demo_cmd as demo_cmd

    opened: list[str] = []

    def fake_tui(scenario: demo_cmd.Scenario) -> int:
        opened.append(scenario.name)
        return 0

    monkeypatch.setattr(demo_cmd, "_on_terminal", lambda: True)
    monkeypatch.setattr(demo_cmd, "_run_tui", fake_tui)
    result = invoke("--scenario", "healthy", *args)
    assert result.exit_code == 0, result.stderr
    assert opened == (["healthy"] if opens_tui else [])
    if opens_tui:
        assert result.stdout == ""  # the TUI owns the terminal: nothing printed around it
