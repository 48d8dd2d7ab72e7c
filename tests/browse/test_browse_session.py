"""The object browser's session against the simulated meter on loopback (real sockets)."""

from __future__ import annotations

import asyncio

import pytest

from dlmsdoctor.browse import OBJECT_LIST_OBIS, BrowseError, BrowseSession, get_attribute
from dlmsdoctor.config import parse_credential
from dlmsdoctor.engine import ProbeOptions
from dlmsdoctor.events import StepStatus
from dlmsdoctor.ledger import MemoryLedger
from dlmsdoctor.sim.profile import load_profile
from tests.tui.fixtures import tcp_meter

pytestmark = pytest.mark.timeout(60)

FAST = {"icmp": False, "timeout": 0.5, "banner_window": 0.1, "busy_retry_wait": 0.1,
        "release_timeout": 0.5, "framing": "hdlc"}
ENERGY = bytes((1, 0, 1, 8, 0, 255))
VOLTAGE = bytes((1, 0, 32, 7, 0, 255))
CLOCK = bytes((0, 0, 1, 0, 0, 255))


def _opts(port: int, **kw: object) -> ProbeOptions:
    return ProbeOptions("127.0.0.1", port, **{**FAST, **kw})  # type: ignore[arg-type]


async def _settle() -> None:
    await asyncio.sleep(0.05)  # let the meter's task log the release


async def test_lists_reads_scaled_register_and_clock_then_releases() -> None:
    async with tcp_meter() as meter:
        browser = BrowseSession(_opts(meter.port), ledger=MemoryLedger())
        opened = await browser.open()
        assert opened.ok, opened.reason
        listed = {(o.class_id, o.obis) for o in opened.objects}
        assert (3, ENERGY) in listed and (8, CLOCK) in listed and (15, OBJECT_LIST_OBIS) in listed
        energy = next(o for o in opened.objects if o.obis == ENERGY)
        assert energy.name and energy.class_name == "Register"

        voltage = await browser.read(3, VOLTAGE, 2)
        assert voltage.ok and voltage.decoded is not None and voltage.decoded.value == 2305
        assert voltage.text.startswith("230.5 V"), voltage.text  # scaler -1 applied
        clock = await browser.read(8, CLOCK, 2)
        assert clock.ok and clock.text[:2] == "20" and clock.text[4] == "-", clock.text
        denied = await browser.read(15, OBJECT_LIST_OBIS, 7)
        assert not denied.ok and "secret" in denied.error
        missing = await browser.read(1, bytes((9, 9, 9, 9, 9, 9)), 2)
        assert not missing.ok and missing.error == "object-undefined"

        session = await browser.close()
        await _settle()
        released = meter.log.of("association.released")
        assert released and released[-1]["how"] == "rlrq"
        assert meter.open_associations() == [] and meter.unreleased_associations() == []
        gets = [e for e in meter.log.of("get")]
        assert {(e["obis"], e["attribute"]) for e in gets} >= {
            ("1.0.32.7.0.255", 2), ("1.0.32.7.0.255", 3), ("0.0.1.0.0.255", 2)}
        # every read is a step and frames of the session; the release rung ran last
        steps = {s.id: s for s in session.steps}
        assert steps["browse"].status is StepStatus.WARNING  # two reads refused
        assert steps["release"].status is StepStatus.OK
        assert any(s.id.startswith("browse.get.") and "230.5 V" in s.summary
                   for s in session.steps)
        assert any(f.step_id.startswith("browse.get.") for f in session.frames)
        with pytest.raises(BrowseError):
            await browser.read(3, VOLTAGE, 2)


async def test_block_transfer_followed_within_the_negotiated_pdu() -> None:
    profile = load_profile("default").with_changes(max_pdu_size=64)
    async with tcp_meter(profile) as meter:
        browser = BrowseSession(_opts(meter.port), ledger=MemoryLedger())
        opened = await browser.open()
        try:
            assert opened.ok, opened.reason
            assert opened.max_pdu_size == 64
            listing = opened.object_list
            assert listing is not None and listing.blocks > 1, listing
            assert len(opened.objects) >= 9
        finally:
            session = await browser.close()
        await _settle()
        assert meter.open_associations() == []
        # each block after the first was asked for with a GET-Request-Next (C0 02)
        nexts = [f for f in session.frames if f.direction.value == "tx"
                 and bytes.fromhex("E6E600C002") in f.data]
        assert len(nexts) == listing.blocks - 1


async def test_login_with_credential_goes_through_the_budget() -> None:
    async with tcp_meter() as meter:
        ledger = MemoryLedger()
        wrong = parse_credential("mgmt=1:low:wrongpass")
        browser = BrowseSession(_opts(meter.port, credentials=(wrong,), public=False),
                                ledger=ledger)
        opened = await browser.open()
        assert not opened.ok and "authentication" in opened.reason
        assert len(ledger.attempts()) == 1 and ledger.attempts()[0].failed
        await _settle()
        assert meter.open_associations() == []
        # the budget holds the same set back on the next try: no second password sent
        again = BrowseSession(_opts(meter.port, credentials=(wrong,), public=False,
                                    ledger_max_failures=1), ledger=ledger)
        second = await again.open()
        assert not second.ok
        assert meter.failed_logins() == 1


async def test_quit_mid_session_releases() -> None:
    async with tcp_meter() as meter:
        browser = BrowseSession(_opts(meter.port), ledger=MemoryLedger())
        assert (await browser.open()).ok
        session = await browser.cancel()
        await _settle()
        assert session is not None
        assert meter.open_associations() == [] and meter.unreleased_associations() == []


def test_get_attribute_is_the_only_service() -> None:
    # GET only: the module builds no SET (C1) or ACTION (C3) request.
    import inspect

    import dlmsdoctor.browse as browse

    source = inspect.getsource(browse)
    assert "0xC1" not in source and "0xC3" not in source
    assert get_attribute.__name__ == "get_attribute"


async def test_reads_appear_in_the_report_and_capture(tmp_path: object) -> None:
    from pathlib import Path

    from dlmsdoctor.diagnosis import diagnose
    from dlmsdoctor.output.capture import write_capture
    from dlmsdoctor.output.report import write_report

    folder = Path(str(tmp_path))
    async with tcp_meter() as meter:
        browser = BrowseSession(_opts(meter.port), ledger=MemoryLedger())
        assert (await browser.open()).ok
        await browser.read(3, VOLTAGE, 2)
        session = await browser.close()
    session.diagnosis = diagnose(session)
    write_report(session, folder / "r.md", fmt="md")
    text = (folder / "r.md").read_text(encoding="utf-8")
    assert "GET 1.0.32.7.0.255 class 3 attribute 2" in text and "230.5 V" in text
    stats = write_capture(session, folder / "c.pcapng")
    assert stats.packets >= len(session.frames)


async def test_wrapper_meter_browsed_too() -> None:
    async with tcp_meter("wrapper") as meter:
        browser = BrowseSession(_opts(meter.port, framing="wrapper"), ledger=MemoryLedger())
        opened = await browser.open()
        try:
            assert opened.ok, opened.reason
            assert any(o.obis == VOLTAGE for o in opened.objects)
            voltage = await browser.read(3, VOLTAGE, 2)
            assert voltage.text.startswith("230.5 V"), voltage.text
        finally:
            await browser.close()
        await _settle()
        assert meter.open_associations() == []


async def test_a_request_longer_than_the_negotiated_pdu_is_not_sent() -> None:
    from dlmsdoctor.link.clock import MonotonicClock
    from dlmsdoctor.login_budget import LoginBudget
    from dlmsdoctor.probes.base import ProbeContext

    sent: list[object] = []
    ctx = ProbeContext(
        ProbeOptions("127.0.0.1"), clock=MonotonicClock(), channel_factory=None,  # type: ignore[arg-type]
        emit=sent.append, cancel=asyncio.Event(), budget=LoginBudget(MemoryLedger(), "m"),
    )
    ctx.facts.associated_sap = 16
    ctx.facts.max_pdu_size = 12  # a GET-Request-Normal is 13 bytes
    result = await get_attribute(ctx, "browse.get.1", 3, VOLTAGE, 2)
    assert not result.ok and "exceeds the meter's max PDU size 12" in result.error
    assert sent == []  # nothing went out
