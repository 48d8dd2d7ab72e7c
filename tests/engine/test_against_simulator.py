"""The whole ladder against the simulated meter on 127.0.0.1 (real sockets, port 0).

Each test checks the meter's own event log too: failed logins it saw, associations left open.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dlmsdoctor.config import parse_credential
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.events import Event, StepStarted, StepStatus
from dlmsdoctor.ledger import LoginLedger, MemoryLedger
from dlmsdoctor.session import Session

sim = pytest.importorskip("dlmsdoctor.sim.meter")
SimulatedMeter = sim.SimulatedMeter

FAST = {"icmp": False, "timeout": 0.4, "banner_window": 0.1, "busy_retry_wait": 0.1,
        "release_timeout": 0.5}


def _opts(port: int, **kw: object) -> ProbeOptions:
    return ProbeOptions("127.0.0.1", port, **{**FAST, **kw})  # type: ignore[arg-type]


def _st(session: Session) -> dict[str, StepStatus]:
    return {s.id: s.status for s in session.steps}


def _codes(session: Session) -> list[str]:
    return [f.code for f in session.findings]


async def _settle(meter: object) -> None:
    await asyncio.sleep(0.05)  # let the meter's task log the close


async def test_healthy_meter_full_ladder_released() -> None:
    async with SimulatedMeter("default") as meter:
        creds = (parse_credential("mgmt=1:low:00000000"),)
        session = await run_probe(_opts(meter.port, credentials=creds), ledger=MemoryLedger())
        await _settle(meter)
        st = _st(session)
        for step in ("tcp.connect", "framing.detect", "hdlc.snrm", "assoc.public",
                     "cosem.identity", "assoc.login.mgmt", "release"):
            assert st[step] is StepStatus.OK, (step, session.step(step))
        assert session.identity["serial_number"] == "12345678"
        assert session.identity["manufacturer"] == "DLD"
        assert session.identity["hdlc_inactivity_timeout"] == 120
        assert meter.failed_logins() == 0
        assert meter.open_associations() == [] and meter.unreleased_associations() == []
        assert session.settings["facts"]["server"] == {"logical": 1, "physical": 1, "size": 2,
                                                       "confirmed": True}
        assert Session.loads(session.dumps()).to_json() == session.to_json()


async def test_wrong_address_found_by_discovery() -> None:
    async with SimulatedMeter("serial-last4") as meter:
        session = await run_probe(_opts(meter.port, serial_number="12345678"),
                                  ledger=MemoryLedger())
        await _settle(meter)
        found = next(f for f in session.findings if f.code == "address.found")
        assert (found.data["physical"], found.data["address_size"]) == (5678, 4)
        assert found.data["derived_from"] == "serial_last4"
        assert found.data["attempt"] == 1
        assert _st(session)["cosem.identity"] is StepStatus.OK
        assert meter.open_associations() == []


async def test_wrong_password_exactly_one_failed_login(tmp_path: Path) -> None:
    ledger = LoginLedger(tmp_path / "ledger.jsonl")
    async with SimulatedMeter("default") as meter:
        creds = (parse_credential("a=1:low:11111111"), parse_credential("b=1:low:22222222"))
        session = await run_probe(_opts(meter.port, credentials=creds), ledger=ledger)
        await _settle(meter)
        assert meter.failed_logins() == 1
        assert "assoc.auth_failure" in _codes(session)
        assert _st(session)["assoc.login.b"] is StepStatus.SKIPPED
        assert meter.open_associations() == []
    assert len([a for a in ledger.attempts() if a.failed]) == 1


async def test_ledger_budget_adds_up_across_runs(tmp_path: Path) -> None:
    """Three runs, each with another wrong password: the meter's budget (2 per 15 min) lets
    two of them through, the third spends nothing. (Each uses another password: the same one
    twice is not even sent again, see tests/engine/test_login_safety.py.)"""
    ledger = LoginLedger(tmp_path / "ledger.jsonl")
    async with SimulatedMeter("default") as meter:
        for password in ("11111111", "22222222"):
            creds = (parse_credential(f"a=1:low:{password}"),)
            await run_probe(_opts(meter.port, credentials=creds, public=False), ledger=ledger)
        creds = (parse_credential("a=1:low:33333333"),)
        session = await run_probe(_opts(meter.port, credentials=creds, public=False),
                                  ledger=ledger)
        await _settle(meter)
        assert meter.failed_logins() == 2  # the 3rd run spent nothing
        assert "login.budget" in _codes(session)
        assert _st(session)["assoc.login.a"] is StepStatus.SKIPPED
        # raising the limit is explicit
        session = await run_probe(_opts(meter.port, credentials=creds, public=False,
                                        ledger_max_failures=3), ledger=ledger)
        await _settle(meter)
        assert meter.failed_logins() == 3


async def test_lockout_after_failed_logins_stops_the_run() -> None:
    """Two failed logins (a meter that counts them locks: lockout=2,60), nothing accepted
    since, and now the meter drops us at the first frame: the run stops, no password spent."""
    ledger = MemoryLedger()
    async with SimulatedMeter("default", ["lockout=2,60"]) as meter:
        for password in ("11111111", "22222222"):  # the same one twice is not sent again
            wrong = (parse_credential(f"a=1:low:{password}"),)
            await run_probe(_opts(meter.port, credentials=wrong, public=False), ledger=ledger)
        assert meter.failed_logins() == 2
        assert [e["state"] for e in meter.log.of("lockout")] == ["locked"]
        good = (parse_credential("mgmt=1:low:00000000"),)
        session = await run_probe(_opts(meter.port, credentials=good), ledger=ledger)
        await _settle(meter)
        assert "login.lockout" in _codes(session)
        assert session.settings["stopped_reason"] == "lockout"
        assert _st(session)["assoc.login.mgmt"] is StepStatus.SKIPPED
        assert meter.failed_logins() == 2  # the right password was not wasted on a locked meter
        assert len(session.connections) == 1


async def test_one_failed_login_then_drops_holds_the_password_back() -> None:
    """lockout=1,60: one wrong password locks the meter. On the wire the next run sees what a
    held single session shows too (see the next test), so no lockout is claimed; but the right
    password is not spent on a meter that may be locked."""
    ledger = MemoryLedger()
    async with SimulatedMeter("default", ["lockout=1,60"]) as meter:
        await run_probe(_opts(meter.port, credentials=(parse_credential("a=1:low:11111111"),)),
                        ledger=ledger)
        assert meter.failed_logins() == 1
        good = (parse_credential("mgmt=1:low:00000000"),)
        session = await run_probe(_opts(meter.port, credentials=good), ledger=ledger)
        await _settle(meter)
        codes = _codes(session)
        assert session.settings["stopped_reason"] is None
        assert "target.closed_at_once" in codes and "safety.logins_held_back" in codes
        assert _st(session)["assoc.login.mgmt"] is StepStatus.SKIPPED
        assert session.logins == []
        assert meter.failed_logins() == 1
        assert meter.open_associations() == []


async def test_session_held_by_another_client_after_a_failed_login_is_no_lockout() -> None:
    """The field report (ESTADO_MEDIDOR_2) in small: one wrong password earlier (the public
    association worked), then another client holds the meter's only session. The probe must
    not call it a lockout nor stop there; it goes on with safe probes, and spends no password
    while the session is held."""
    ledger = MemoryLedger()
    wrong = (parse_credential("mgmt=1:low:WRONG"),)
    async with SimulatedMeter("default", ["single-session=close"]) as meter:
        assert meter.port is not None
        first = await run_probe(_opts(meter.port, credentials=wrong), ledger=ledger)
        await _settle(meter)
        assert [(x.credential, x.outcome) for x in first.logins] == [
            ("public", "accepted"), ("mgmt", "rejected")]
        assert meter.failed_logins() == 1
        # another client (a plain TCP connection) takes the single session
        _reader, writer = await asyncio.open_connection("127.0.0.1", meter.port)
        while len(meter.log.of("connection.opened")) < 2:
            await asyncio.sleep(0.01)
        mark = len(meter.events)
        try:
            session = await run_probe(_opts(meter.port, credentials=wrong), ledger=ledger)
            await _settle(meter)
        finally:
            writer.close()
            await writer.wait_closed()
        second_run = meter.events[mark:]
    codes = _codes(session)
    assert "login.lockout" not in codes
    assert session.settings["stopped_reason"] != "lockout"
    assert _st(session)["framing.detect"] is StepStatus.FAILED  # not "stopped: lockout"
    assert len(session.connections) > 1  # safe probes went on after the first close
    closed = next(f for f in session.findings if f.code == "target.closed_at_once")
    assert "session_taken" in closed.data["candidates"]  # type: ignore[operator]
    assert closed.data["failed_logins_recent"] == 1
    held = next(f for f in session.findings if f.code == "safety.logins_held_back")
    assert held.data["credential"] == "mgmt"
    assert _st(session)["assoc.login.mgmt"] is StepStatus.SKIPPED
    # no password spent: none on the wire, none in the ledger, none in the meter's own log
    assert session.logins == []
    assert not [f for f in session.frames  # a frame carrying a secret is marked masked
                if any(x["code"] == "session.secret_masked" for x in f.findings)]
    assert [e for e in second_run if e["event"] == "login"] == []
    assert meter.failed_logins() == 1
    assert len([a for a in ledger.items if a.failed]) == 1
    assert any(e.get("reason") == "fault:single-session" for e in second_run)


async def test_busy_bridge_reported_and_nothing_sent() -> None:
    async with SimulatedMeter("default", ["bridge-busy"]) as meter:
        session = await run_probe(_opts(meter.port), ledger=MemoryLedger())
        busy = next(f for f in session.findings if f.code == "bridge.busy")
        assert busy.data["after_retry"] is True
        assert "target.busy" in _codes(session)
        assert [f for f in session.frames if f.direction == "tx"] == []
        assert len(session.connections) == 2  # one retry, no more


async def test_wrapper_only_meter_detected_after_hdlc_close() -> None:
    async with SimulatedMeter("default", ["wrapper-only"]) as meter:
        session = await run_probe(_opts(meter.port), ledger=MemoryLedger())
        await _settle(meter)
        detected = next(f for f in session.findings if f.code == "framing.detected")
        assert detected.data["framing"] == "wrapper"
        assert "tcp.closed_after_first_frame" in _codes(session)
        assert _st(session)["cosem.identity"] is StepStatus.OK
        assert meter.open_associations() == []


async def test_cancel_mid_run_releases_the_association() -> None:
    async with SimulatedMeter("default", ["delay=0.1"]) as meter:
        cancel = asyncio.Event()

        def on_event(event: Event) -> None:
            if isinstance(event, StepStarted) and event.step_id == "cosem.identity":
                asyncio.get_running_loop().call_later(0.15, cancel.set)

        session = await run_probe(_opts(meter.port, timeout=1.0), ledger=MemoryLedger(),
                                  on_event=on_event, cancel=cancel)
        await asyncio.sleep(0.3)
        assert session.cancelled
        assert _st(session)["cosem.identity"] is StepStatus.CANCELLED
        assert _st(session)["release"] is StepStatus.OK
        names = [e["event"] for e in meter.events]
        assert "association.released" in names
        assert meter.open_associations() == [] and meter.unreleased_associations() == []


HLS_KEYS = "000102030405060708090A0B0C0D0E0F,D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF,4758583132333435"


@pytest.mark.parametrize(("auth_key", "accepted"), [
    ("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF", True),
    ("00000000000000000000000000000000", False),
])
async def test_hls_gmac_login(auth_key: str, accepted: bool) -> None:
    keys = HLS_KEYS.replace("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF", auth_key)
    async with SimulatedMeter("hls") as meter:
        creds = (parse_credential(f"hls=1:gmac:{keys}"),)
        session = await run_probe(_opts(meter.port, credentials=creds), ledger=MemoryLedger())
        await _settle(meter)
        login = _st(session)["assoc.login.hls"]
        assert login is (StepStatus.OK if accepted else StepStatus.FAILED)
        assert meter.failed_logins() == (0 if accepted else 1)
        if not accepted:
            failure = next(f for f in session.findings if f.code == "assoc.auth_failure")
            assert "HLS-GMAC" in failure.message
        assert meter.open_associations() == [] and meter.unreleased_associations() == []
        assert auth_key not in session.dumps().upper()


async def test_task_cancellation_still_releases() -> None:
    """Cancelling the task (Ctrl-C in a face) instead of the event: the release still runs."""
    async with SimulatedMeter("default", ["delay=0.1"]) as meter:
        task: asyncio.Task[Session] | None = None

        def on_event(event: Event) -> None:
            if isinstance(event, StepStarted) and event.step_id == "cosem.identity":
                assert task is not None
                asyncio.get_running_loop().call_later(0.15, task.cancel)

        task = asyncio.ensure_future(run_probe(_opts(meter.port, timeout=1.0),
                                               ledger=MemoryLedger(), on_event=on_event))
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)
        assert "association.released" in [e["event"] for e in meter.events]
        assert meter.open_associations() == [] and meter.unreleased_associations() == []


async def test_meter_closing_on_wrong_address_is_still_discovered() -> None:
    async with SimulatedMeter("serial-last4", ["wrong-address=close"]) as meter:
        session = await run_probe(_opts(meter.port, serial_number="12345678",
                                        discovery_pace=0.0), ledger=MemoryLedger())
        await _settle(meter)
        found = next(f for f in session.findings if f.code == "address.found")
        assert (found.data["physical"], found.data["address_size"]) == (5678, 4)
        assert "login.lockout" not in _codes(session)  # closes without failed logins: no lockout
        assert found.data["attempt"] == 1  # the serial number's address is tried first
        assert len(session.connections) == 2  # the meter closed on 1/1: one reconnect
        assert meter.open_associations() == []


async def test_field_report_meter_locked_by_another_client() -> None:
    """ESTADO_MEDIDOR_2: TCP connects, the SNRM is sent, the meter closes at once, for every
    client. Here the user's poller spent the failed logins (its ledger is not ours): the probe
    must show the signature, try only the safe wrapper probe, and spend no password."""
    async with SimulatedMeter("default", ["lockout=1,60"]) as meter:
        poller = (parse_credential("user2=16:low:11111111"),
                  parse_credential("user1=1:low:00000000"))
        await run_probe(_opts(meter.port, credentials=poller[1:], public=False),
                        ledger=MemoryLedger())
        await run_probe(_opts(meter.port, credentials=(parse_credential(
            "bad=1:low:99999999"),), public=False), ledger=MemoryLedger())
        locked_before = meter.failed_logins()
        session = await run_probe(_opts(meter.port, credentials=poller), ledger=MemoryLedger())
        await _settle(meter)
        codes = _codes(session)
        assert "tcp.closed_after_first_frame" in codes
        assert "framing.undetermined" in codes
        assert meter.failed_logins() == locked_before  # not one more failed login
        assert session.logins == []
        assert "address.closed_every_time" in codes  # discovery stopped early
        assert len(session.connections) <= 5
        assert {s.id: s.status for s in session.steps}["assoc.login.user2"] is StepStatus.SKIPPED


async def test_discovery_without_serial_walks_the_common_forms() -> None:
    from dlmsdoctor.sim.profile import load_profile

    profile = load_profile("default").with_changes(server_physical_configured=17,
                                                         address_size=4)
    async with SimulatedMeter(profile) as meter:
        session = await run_probe(_opts(meter.port, discovery_pace=0.0, discovery_timeout=0.2),
                                  ledger=MemoryLedger())
        found = next(f for f in session.findings if f.code == "address.found")
        assert (found.data["physical"], found.data["address_size"]) == (17, 4)
        assert found.data["derived_from"] == "common" and found.data["attempt"] == 6
        assert _st(session)["cosem.identity"] is StepStatus.OK


async def test_wrapper_meter_with_two_logins_on_one_connection() -> None:
    async with SimulatedMeter("wrapper") as meter:
        creds = (parse_credential("mgmt=1:low:00000000"), parse_credential("rd=32:low:wrong"))
        session = await run_probe(_opts(meter.port, credentials=creds), ledger=MemoryLedger())
        await _settle(meter)
        st = _st(session)
        assert st["assoc.public"] is StepStatus.OK
        assert st["assoc.login.mgmt"] is StepStatus.OK
        assert st["assoc.login.rd"] is StepStatus.FAILED
        assert meter.failed_logins() == 1
        assert len(session.connections) == 1  # RLRQ between associations, no reconnect
        assert meter.open_associations() == [] and meter.unreleased_associations() == []


async def test_disc_first_clears_then_the_ladder_runs() -> None:
    async with SimulatedMeter("default") as meter:
        session = await run_probe(_opts(meter.port, disc_first=True), ledger=MemoryLedger())
        st = _st(session)
        assert st["hdlc.disc"] is StepStatus.OK
        assert session.frames[0].summary.startswith("DISC")
        assert st["cosem.identity"] is StepStatus.OK


async def test_small_max_info_segments_both_ways() -> None:
    """A meter with 32-byte information fields that rejects longer frames (FRMR): our AARQs
    (the HLS one is 60+ bytes) go in segments, its answers come in segments."""
    from dlmsdoctor.sim.profile import load_profile

    profile = load_profile("hls").with_changes(max_info_rx=32, max_info_tx=32)
    async with SimulatedMeter(profile, ["frmr-too-long"]) as meter:
        creds = (parse_credential(f"hls=1:gmac:{HLS_KEYS}"),)
        session = await run_probe(_opts(meter.port, credentials=creds), ledger=MemoryLedger())
        await _settle(meter)
        st = _st(session)
        assert st["assoc.public"] is StepStatus.OK and st["assoc.login.hls"] is StepStatus.OK
        assert "hdlc.frmr" not in _codes(session)
        assert any("segmented" in f.summary for f in session.frames if f.direction == "tx")
        assert meter.open_associations() == [] and meter.failed_logins() == 0
