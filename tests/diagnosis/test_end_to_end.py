"""The real ladder against the simulated meter on loopback, for every fault it can show: the top
cause and the action the diagnosis proposes, and from the meter's own event log how many failed
logins the probe caused and that it left no association open."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dlmsdoctor.cli.demo_cmd import SCENARIOS, probe_scenario
from dlmsdoctor.cli.probe_cmd import ProbeExit, exit_code_for
from dlmsdoctor.codec.hdlc import HdlcParams, ServerAddress, build_snrm
from dlmsdoctor.config import parse_credential
from dlmsdoctor.engine import ProbeOptions
from dlmsdoctor.ledger import LoginLedger
from dlmsdoctor.run import probe_and_diagnose
from dlmsdoctor.session import Session
from dlmsdoctor.sim.meter import SimulatedMeter

pytestmark = pytest.mark.timeout(60)


def options_for(port: int, **changes: object) -> ProbeOptions:
    base = dict(
        host="127.0.0.1",
        port=port,
        icmp=False,
        timeout=0.3,
        connect_timeout=2.0,
        banner_window=0.2,
        busy_retry_wait=0.3,
        release_timeout=0.5,
    )
    base.update(changes)
    return ProbeOptions(**base)  # type: ignore[arg-type]


async def probe(meter: SimulatedMeter, ledger_dir: Path, **changes: object) -> Session:
    assert meter.port is not None
    result = await probe_and_diagnose(
        options_for(meter.port, **changes),
        ledger=LoginLedger(ledger_dir / "ledger.jsonl"),
        save=False,
    )
    return result.session


@dataclass(frozen=True)
class Case:
    profile: str
    faults: tuple[str, ...]
    top: str
    action: str  # a word the first action must contain
    failed_logins: int = 0
    exit_code: int | None = None
    changes: dict[str, object] = field(default_factory=dict)


CASES = {
    "healthy": Case("default", (), "", "", exit_code=0),
    "bridge-busy": Case(
        "default", ("bridge-busy",), "bridge.busy", "poll", exit_code=ProbeExit.TCP
    ),
    "wrapper-only-close": Case(
        "default", ("wrapper-only=close",), "framing.wrapper_only", "WRAPPER"
    ),
    "wrapper-only-silent": Case(
        "default", ("wrapper-only=silent",), "framing.wrapper_only", "WRAPPER"
    ),
    "serial-derived": Case(
        "serial-derived",
        (),
        "hdlc.wrong_address",
        "1/6678",
        exit_code=0,
        changes={"serial_number": "12345678"},
    ),
    "serial-last4": Case(
        "serial-last4",
        (),
        "hdlc.wrong_address",
        "server address",
        exit_code=0,
        changes={"serial_number": "12345678"},
    ),
    "wrong-address-close": Case(
        "serial-derived",
        ("wrong-address=close",),
        "hdlc.wrong_address",
        "1/6678",
        changes={"serial_number": "12345678"},
    ),
    "wrong-address-unknown": Case(
        "serial-derived", (), "hdlc.no_answer", "--serial-number", exit_code=ProbeExit.ADDRESS
    ),
    "wrong-password": Case(
        "default",
        (),
        "auth.wrong_password",
        "Stop",
        failed_logins=1,
        exit_code=ProbeExit.LOGIN,
        changes={"credentials": (parse_credential("mgmt=1:low:99999999"),)},
    ),
    "hdlc-only-forced-wrapper": Case(
        "default",
        ("hdlc-only",),
        "framing.hdlc_only",
        "--framing auto",
        exit_code=ProbeExit.ASSOCIATION,
        changes={"framing": "wrapper"},
    ),
    "hdlc-only-close-forced-wrapper": Case(
        "default",
        ("hdlc-only=close",),
        "framing.hdlc_only",
        "--framing auto",
        changes={"framing": "wrapper"},
    ),
    "dm-on-snrm": Case("default", ("dm-on-snrm",), "hdlc.dm", "Pause"),
    # The UA advertises 128 bytes, the meter takes 48: the public AARQ (34) passes, the LLS
    # AARQ (59) gets FRMR. No password reaches the meter (0 failed logins in its log).
    "frmr-too-long": Case(
        "default",
        ("frmr-too-long",),
        "hdlc.frmr",
        "max info length",
        changes={"credentials": (parse_credential("mgmt=1:low:00000000"),)},
    ),
    "echo": Case("default", ("echo",), "link.echo", "echo", exit_code=0),
    "iec62056-21": Case("default", ("iec62056-21",), "meter.iec62056_21", "DLMS port"),
    "stale-bytes": Case("default", ("stale-bytes",), "link.stale_bytes", "Flush", exit_code=0),
    "bad-fcs": Case("default", ("bad-fcs",), "link.corrupt_replies", "serial"),
    "garbage-reply": Case("default", ("garbage-reply",), "link.corrupt_replies", "serial"),
    "cut-reply": Case("default", ("cut-reply",), "link.reply_cut", "Retry"),
    "inactivity": Case("default", ("inactivity=0.03",), "link.inactivity_timeout", "busy"),
    "delay": Case("default", ("delay=0.8",), "meter.late_replies", "--timeout"),
    "latency": Case("default", ("latency=0.4",), "meter.late_replies", "--timeout"),
    # the UA to the only SNRM comes during the release: the link was up after all; its DISC
    # is sent and its own UA waited for before TCP closes
    "delay-forced-hdlc": Case(
        "default",
        ("delay=0.8",),
        "meter.late_replies",
        "--timeout",
        # the UA (0.8 s) must land inside the release's wait: 0.3 s timeout + 0.5 s release
        # ended exactly at 0.8 s, a race a loaded machine lost
        changes={
            "framing": "hdlc",
            "server_address": ProbeOptions.parse_server_address("1/1"),
            "release_timeout": 1.5,
        },
    ),
    # combinations met together in the field
    "echo+serial-derived": Case(
        "serial-derived",
        ("echo",),
        "hdlc.wrong_address",
        "1/6678",
        changes={"serial_number": "12345678"},
    ),
    "serial-derived+wrong-password": Case(
        "serial-derived",
        (),
        "auth.wrong_password",
        "Stop",
        failed_logins=1,
        exit_code=ProbeExit.LOGIN,
        changes={
            "serial_number": "12345678",
            "credentials": (parse_credential("mgmt=1:low:99999999"),),
        },
    ),
    "bridge-busy+echo": Case("default", ("bridge-busy", "echo"), "bridge.busy", "poll"),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_fault_gives_its_cause(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    async with SimulatedMeter(case.profile, list(case.faults)) as meter:
        session = await probe(meter, tmp_path, **case.changes)
    diagnosis = session.diagnosis
    assert diagnosis is not None
    causes = [c.code for c in diagnosis.causes]
    if not case.top:
        assert [c for c in diagnosis.causes if c.confidence >= 0.5] == []
        assert diagnosis.status == "ok"
    else:
        assert causes and causes[0] == case.top, (causes, diagnosis.headline)
        first_action = diagnosis.causes[0].actions[0].text
        assert case.action in first_action, first_action
    assert meter.failed_logins() == case.failed_logins
    assert meter.open_associations() == []
    if case.exit_code is not None:
        assert exit_code_for(session) == case.exit_code
    # from the meter's own log: every association it opened was released (RLRQ or DISC),
    # none left for the TCP close or the inactivity timeout (late replies included)
    assert meter.unreleased_associations() == []


def _advises_a_power_cycle(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in ("power", "reset", "unplug"))


async def test_one_failed_login_then_drops_is_no_proven_lockout(tmp_path: Path) -> None:
    """Run 1 spends one wrong password and locks the meter (lockout=1,60); run 2, with the
    RIGHT password, is dropped at once. On the wire that is also what a held single session
    shows: the seed report's team called it 'locked, power-cycle it' while their poller held
    the meter. The probe claims no lockout, lists the candidates, spends no password."""
    wrong = (parse_credential("mgmt=1:low:99999999"),)
    right = (parse_credential("mgmt=1:low:00000000"),)
    async with SimulatedMeter("default", ["lockout=1,60"]) as meter:
        first = await probe(meter, tmp_path, credentials=wrong)
        second = await probe(meter, tmp_path, credentials=right)
    assert first.diagnosis is not None and first.diagnosis.causes[0].code == "auth.wrong_password"
    assert second.settings["stopped_reason"] is None
    findings = [f.code for f in second.findings]
    assert "login.lockout" not in findings
    assert "target.closed_at_once" in findings and "safety.logins_held_back" in findings
    assert second.diagnosis is not None
    codes = [c.code for c in second.diagnosis.causes]
    assert "meter.session_taken" in codes, codes
    assert "auth.lockout" not in codes[:1], codes  # never the sure top cause on this evidence
    assert not _advises_a_power_cycle(second.diagnosis.causes[0].actions[0].text)
    assert meter.failed_logins() == 1  # the right password was not spent on a locked meter
    assert meter.open_associations() == []


async def test_lockout_after_two_failures_is_named_and_costs_no_more(tmp_path: Path) -> None:
    """Two wrong passwords (lockout=2,60), nothing accepted since, then drops: the engine's
    guard stops the run (proven signature) and the diagnosis names the lockout."""
    right = (parse_credential("mgmt=1:low:00000000"),)
    async with SimulatedMeter("default", ["lockout=2,60"]) as meter:
        for password in ("99999999", "88888888"):  # the same one twice is not sent again
            wrong = (parse_credential(f"mgmt=1:low:{password}"),)
            await probe(meter, tmp_path, credentials=wrong, public=False)
        session = await probe(meter, tmp_path, credentials=right)
    assert session.settings["stopped_reason"] == "lockout"
    assert session.diagnosis is not None
    codes = [c.code for c in session.diagnosis.causes]
    assert "auth.lockout" in codes, (codes, [f.code for f in session.findings])
    assert not any(_advises_a_power_cycle(a.text) for c in session.diagnosis.causes[:1]
                   for a in c.actions[:1])
    assert meter.failed_logins() == 2
    assert meter.open_associations() == []


async def test_single_session_held_after_a_failed_login_is_the_poller(tmp_path: Path) -> None:
    """The seed field report: one wrong password earlier (the public association worked), then
    the site's poller holds the meter's only session. Not a lockout: the poller comes first,
    nothing advises a power cycle, and no password is spent while the session is held."""
    wrong = (parse_credential("mgmt=1:low:WRONG"),)
    async with SimulatedMeter("default", ["single-session=close"]) as meter:
        assert meter.port is not None
        await probe(meter, tmp_path, credentials=wrong)
        _reader, writer = await asyncio.open_connection("127.0.0.1", meter.port)
        while len(meter.log.of("connection.opened")) < 2:
            await asyncio.sleep(0.01)
        mark = len(meter.events)
        try:
            session = await probe(meter, tmp_path, credentials=wrong)
        finally:
            writer.close()
            await writer.wait_closed()
        second_run = meter.events[mark:]
    assert session.settings["stopped_reason"] is None
    assert "login.lockout" not in [f.code for f in session.findings]
    assert [e for e in second_run if e["event"] == "login"] == []
    assert session.diagnosis is not None
    causes = session.diagnosis.causes
    assert causes[0].code == "meter.session_taken", [c.code for c in causes]
    assert not _advises_a_power_cycle(causes[0].actions[0].text)
    assert meter.failed_logins() == 1


@pytest.mark.parametrize("mode, top", [("close", "meter.session_taken"), ("dm", "hdlc.dm")])
async def test_single_session_held_by_a_poller(mode: str, top: str, tmp_path: Path) -> None:
    """Another client (the user's own poller) holds the meter's only session."""
    async with SimulatedMeter("default", [f"single-session={mode}"]) as meter:
        assert meter.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", meter.port)
        writer.write(build_snrm(ServerAddress(1, 1, 2), 16, HdlcParams()))
        await writer.drain()
        await reader.read(64)  # the poller's UA: it now holds the link
        try:
            session = await probe(meter, tmp_path)
        finally:
            writer.close()
    assert session.diagnosis is not None
    causes = session.diagnosis.causes
    assert causes[0].code == top, [c.code for c in causes]
    assert causes[0].whose == "poller"
    assert meter.open_associations() == []


async def test_demo_scenarios_are_the_diagnosis_they_announce(tmp_path: Path) -> None:
    """Every demo scenario's expected top cause holds on the real path."""
    from dlmsdoctor.cli.demo_serial import meter_place  # TCP, or a pty for serial scenarios

    for scenario in SCENARIOS.values():
        async with SimulatedMeter(scenario.profile, list(scenario.faults),
                                  **meter_place(scenario.line)) as meter:
            session = await probe_scenario(
                meter, scenario, LoginLedger(tmp_path / f"{scenario.name}.jsonl")
            )
            assert meter.open_associations() == []
        diagnosis = session.diagnosis
        assert diagnosis is not None
        top = diagnosis.causes[0].code if diagnosis.causes else ""
        assert top == scenario.expect, (scenario.name, [c.code for c in diagnosis.causes])


def test_nothing_listens_is_refused(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = asyncio.run(
        probe_and_diagnose(options_for(port), ledger=LoginLedger(tmp_path / "l.jsonl"), save=False)
    )
    assert result.session.diagnosis is not None
    assert result.session.diagnosis.causes[0].code == "tcp.refused"
    assert exit_code_for(result.session) == ProbeExit.TCP


async def test_wrapper_meter_wrong_password(tmp_path: Path) -> None:
    creds = (parse_credential("mgmt=1:low:99999999"),)
    async with SimulatedMeter("wrapper", []) as meter:
        session = await probe(meter, tmp_path, credentials=creds)
    assert session.diagnosis is not None
    assert session.diagnosis.causes[0].code == "auth.wrong_password"
    assert session.diagnosis.profile is not None
    assert session.diagnosis.profile.framing == "wrapper"
    assert meter.open_associations() == []
    assert meter.failed_logins() == 1


async def test_frmr_to_a_long_aarq_is_named_and_the_link_released(tmp_path: Path) -> None:
    """A meter whose UA promises more than it takes: FRMR to the LLS AARQ. The diagnosis cites
    the rejected frame; the release still owes the frame-rejected link a DISC, and sends it."""
    creds = (parse_credential("mgmt=1:low:00000000"),)
    async with SimulatedMeter("default", ["frmr-too-long"]) as meter:
        session = await probe(meter, tmp_path, credentials=creds)
    assert session.diagnosis is not None
    top = session.diagnosis.causes[0]
    assert top.code == "hdlc.frmr"
    cited = [session.frames[e.frame] for e in top.evidence if e.frame is not None]
    assert any(f.direction == "tx" and f.step_id == "assoc.login.mgmt" for f in cited), cited
    assert any(f.summary.startswith("FRMR") for f in cited), cited
    received = [str(e.get("decode", "")) for e in meter.events if e["event"] == "frame.received"]
    frmr_at = next(i for i, e in enumerate(meter.events) if e["event"] == "frame.sent"
                   and str(e.get("decode", "")).startswith("FRMR"))
    after = [str(e.get("decode", "")) for e in meter.events[frmr_at:]
             if e["event"] == "frame.received"]
    assert after and after[0].startswith("DISC client 1"), (after, received[-3:])
    assert meter.failed_logins() == 0
    assert meter.open_associations() == [] and meter.unreleased_associations() == []


async def test_a_link_set_up_late_is_disconnected_before_the_close(tmp_path: Path) -> None:
    """The meter answers the only SNRM after the engine gave up on it. The release's DISC meets
    that late UA first; it is reported, and the DISC's own answer is waited for: the meter sees
    the DISC, answers it, and only then the TCP close (its log says so, in that order)."""
    async with SimulatedMeter("default", ["delay=1.5"]) as meter:
        # the UA (1.5 s after the SNRM) must land inside the DISC's wait, after the DISC went
        # out (0.3 s wait, then the release): 1.2 s of room for a loaded machine (0.8 s left
        # too little under a full test run); the DISC's wait covers it and its own answer
        session = await probe(meter, tmp_path, framing="hdlc", release_timeout=3.0,
                              server_address=ProbeOptions.parse_server_address("1/1"))
    codes = [f.code for f in session.findings]
    assert "hdlc.no_answer" in codes and "release.late_answer" in codes
    log = [(str(e["event"]), str(e.get("decode", e.get("how", "")))) for e in meter.events
           if e["event"] in ("frame.received", "frame.sent", "connection.closed")]
    disc = log.index(("frame.received", next(d for k, d in log if d.startswith("DISC"))))
    assert log[disc + 1][0] == "frame.sent" and log[disc + 1][1].startswith("UA")
    assert log[-1] == ("connection.closed", "fin")
