"""A browsing session is kind "browse" wherever it goes: the saved JSON, the report (its words,
English and Spanish, and its JSON), the capture and the capture read back; a probe run of the
same meter stays kind "probe"."""

from __future__ import annotations

import re
from pathlib import Path

from dlmsdoctor.browse import SESSION_KIND, BrowseSession, reads_of
from dlmsdoctor.config import parse_credential
from dlmsdoctor.diagnosis import diagnose
from dlmsdoctor.engine import ProbeOptions
from dlmsdoctor.ledger import MemoryLedger
from dlmsdoctor.output.capture import write_capture
from dlmsdoctor.output.capture_read import load_session_file
from dlmsdoctor.output.report import build_report, render_report
from dlmsdoctor.run import probe_and_diagnose
from dlmsdoctor.session import Session
from tests.tui.fixtures import tcp_meter

FAST = {"icmp": False, "timeout": 0.5, "banner_window": 0.1, "busy_retry_wait": 0.1,
        "release_timeout": 0.5, "framing": "hdlc"}
VOLTAGE = bytes((1, 0, 32, 7, 0, 255))
MISSING = bytes((9, 9, 9, 9, 9, 9))


def _opts(port: int, **kw: object) -> ProbeOptions:
    return ProbeOptions("127.0.0.1", port, **{**FAST, **kw})  # type: ignore[arg-type]


async def _browsed() -> Session:
    async with tcp_meter() as meter:
        browser = BrowseSession(_opts(meter.port), ledger=MemoryLedger())
        assert (await browser.open()).ok
        await browser.read(3, VOLTAGE, 2)
        await browser.read(1, MISSING, 2)
        session = await browser.close()
    session.diagnosis = diagnose(session)
    return session


async def test_the_session_and_its_json_say_browse() -> None:
    session = await _browsed()
    assert session.kind == SESSION_KIND == "browse"
    again = Session.loads(session.dumps())
    assert again.kind == "browse" and '"kind": "browse"' in session.dumps()
    # the reads in order: the object list, the register's scaler, its value, a refusal
    reads = reads_of(again)
    assert [r.id for r in reads] == [f"browse.get.{n}" for n in range(1, 5)]
    assert [r.summary.split(" = ")[0] for r in reads[:3]] == [
        "0.0.40.0.0.255 object_list", "1.0.32.7.0.255 scaler_unit", "1.0.32.7.0.255 value"]
    assert re.fullmatch(r"0\.0\.40\.0\.0\.255 object_list = \d+ objects", reads[0].summary)
    assert reads[2].summary.startswith("1.0.32.7.0.255 value = 230.5 V")
    assert reads[3].summary == "9.9.9.9.9.9 value: object-undefined"  # which object, and why


async def test_a_browse_that_never_associated_is_still_a_browsing_session() -> None:
    async with tcp_meter() as meter:
        wrong = parse_credential("mgmt=1:low:wrongpass")
        browser = BrowseSession(_opts(meter.port, credentials=(wrong,), public=False),
                                ledger=MemoryLedger())
        assert not (await browser.open()).ok
    assert browser.session is not None and browser.session.kind == "browse"
    assert reads_of(browser.session) == []


async def test_the_report_says_it_was_a_browsing_session(tmp_path: Path) -> None:
    session = await _browsed()
    doc = build_report(session, "en")
    assert doc["session"]["kind"] == "browse"
    assert doc["roles"]["tx"] == "dlmsdoctor"  # the browser sent the requests
    md = render_report(session, "md", "en")
    assert "dlmsdoctor's object browser read 127.0.0.1:" in md and "dlmsdoctor tested" not in md
    assert "How the meter was reached, and every object read" in md
    assert "230.5 V" in md and "since the start of the browsing session" in md
    es = render_report(session, "html", "es")
    assert "El navegador de objetos de dlmsdoctor leyó" in es and "dlmsdoctor probó" not in es
    assert "Cómo se llegó al medidor, y cada objeto leído" in es
    import json

    assert json.loads(render_report(session, "json", "en"))["session"]["kind"] == "browse"


async def test_the_capture_says_browse_and_reads_back_as_one(tmp_path: Path) -> None:
    session = await _browsed()
    path = tmp_path / "browse.pcapng"
    write_capture(session, path)
    assert b"browse session " + session.id.encode() in path.read_bytes()
    back = load_session_file(path)
    assert back.kind == "browse" and len(reads_of(back)) == len(reads_of(session))


async def test_a_probe_run_stays_a_probe() -> None:
    async with tcp_meter() as meter:
        result = await probe_and_diagnose(_opts(meter.port), ledger=MemoryLedger(), save=False)
    assert result.session.kind == "probe" and reads_of(result.session) == []
    md = render_report(result.session, "md", "en")
    assert "dlmsdoctor tested" in md and "object browser read" not in md


async def test_a_serial_profile_is_browsed_on_its_line(tmp_path: Path) -> None:
    """The working profile of a serial run opens the same line again at the rate that answered
    (not a TCP connection to the device's path), and an optical one signs on again."""
    from dlmsdoctor.browse import options_for
    from tests.tui.fixtures import serial_meter

    for optical in (False, True):
        async with serial_meter(optical=optical) as meter:
            probed = await probe_and_diagnose(
                targets_options(str(meter.serial_path), optical), ledger=MemoryLedger(),
                save=False)
            assert probed.session.diagnosis is not None
            profile = probed.session.diagnosis.profile
            assert profile is not None and profile.link == ("optical" if optical else "serial")
            options = options_for(profile)
            assert (options.link, options.host, options.port) == (
                profile.link, str(meter.serial_path), 0)
            browser = BrowseSession(options, ledger=MemoryLedger())
            opened = await browser.open()
            assert opened.ok, opened.reason
            voltage = await browser.read(3, VOLTAGE, 2)
            session = await browser.close()
            assert voltage.text.startswith("230.5 V"), voltage.text
            assert session.kind == "browse" and session.target.link == profile.link
            assert meter.unreleased_associations() == []


def targets_options(device: str, optical: bool) -> ProbeOptions:
    import dataclasses

    from dlmsdoctor.targets import options_for

    return dataclasses.replace(options_for(device, optical=optical), timeout=1.0)
