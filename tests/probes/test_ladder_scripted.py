"""The ladder against scripted meters on a fake clock: no sockets, no sleeps."""

from __future__ import annotations

import time

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.codec.wrapper import build_wrapper
from dlmsdoctor.config import parse_credential
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.events import CloseHow, StepStatus
from dlmsdoctor.ledger import Attempt, MemoryLedger, meter_key
from dlmsdoctor.link.channel import ConnectError
from dlmsdoctor.link.clock import FakeClock
from dlmsdoctor.link.scripted import Close, Deliver, Expect, ScriptedFactory
from dlmsdoctor.probes.address import address_matrix
from dlmsdoctor.session import Session

from .meterscript import (
    AARE_AUTH_FAILURE,
    AARE_OK,
    RLRE,
    S11,
    HdlcMeter,
    healthy_public,
    is_snrm,
    wrapper,
)

OPTS = ProbeOptions("192.0.2.10", 4059, icmp=False)


async def _run(scripts, options=OPTS, ledger=None):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    factory = ScriptedFactory(scripts, clock)
    session = await run_probe(options, clock=clock, channel_factory=factory,
                              ledger=ledger if ledger is not None else MemoryLedger())
    for ch in factory.channels:
        assert ch.mismatches == [], ch.mismatches
    return session, factory


def _status(session: Session) -> dict[str, StepStatus]:
    return {s.id: s.status for s in session.steps}


def _codes(session: Session) -> list[str]:
    return [f.code for f in session.findings]


async def test_healthy_hdlc_meter_full_ladder_and_release() -> None:
    session, factory = await _run([healthy_public(HdlcMeter())])
    st = _status(session)
    assert st["tcp.connect"] is StepStatus.OK
    assert st["framing.detect"] is StepStatus.OK
    assert st["hdlc.snrm"] is StepStatus.OK
    assert st["assoc.public"] is StepStatus.OK
    assert st["cosem.identity"] is StepStatus.WARNING  # 4 of 5 reads denied
    assert st["release"] is StepStatus.OK
    assert session.identity["logical_device_name"] == "ABC0001"
    assert session.identity["manufacturer"] == "ABC"
    assert _codes(session).count("cosem.read_failed") == 4
    # every byte is in the session, decoded
    sent = factory.channels[0].sent
    assert [f.data for f in session.frames if f.direction == "tx"] == sent
    assert session.frames[0].kind == "hdlc" and session.frames[0].summary.startswith("SNRM")
    assert session.connections[0].close_how is CloseHow.LOCAL
    assert session.settings["facts"]["framing"] == "hdlc"
    assert session.diagnosis is None
    assert Session.loads(session.dumps()).frames[0].data == session.frames[0].data


async def test_silence_then_discovery_finds_the_address() -> None:
    target = hd.ServerAddress(1, 17, 2)
    meter = HdlcMeter(target)
    script = [Expect(match=is_snrm(S11)),  # silence
              Expect(match=lambda d: d[:2] == b"\x00\x01"),  # wrapper AARQ: silence
              Expect(match=is_snrm(hd.ServerAddress(1, None, 1))),
              Expect(match=is_snrm(hd.ServerAddress(1, 16, 2))),
              Expect(match=is_snrm(target)), Deliver(meter.ua(), 0.01), Close()]
    session, _ = await _run([script], ProbeOptions("192.0.2.10", icmp=False, timeout=2.0))
    st = _status(session)
    assert st["framing.detect"] is StepStatus.FAILED
    assert st["address.discover"] is StepStatus.OK
    found = next(f for f in session.findings if f.code == "address.found")
    assert found.data["physical"] == 17 and found.data["address_size"] == 2
    assert found.data["attempt"] == 3
    assert session.settings["facts"]["server"]["physical"] == 17
    # each silent attempt cost the reply timeout on the fake clock
    assert session.duration is not None and session.duration >= 4 * 2.0


def test_address_matrix_order_and_serial_forms() -> None:
    labels = [(a.logical, a.physical, a.size, src)
              for a, src in address_matrix("12345678", hd.ServerAddress(1, 1, 2))]
    assert labels[:2] == [(1, 5678, 4, "serial_last4"), (1, 6678, 4, "serial_mod")]
    assert labels[2:4] == [(1, None, 1, "common"), (1, 16, 2, "common")]
    small = [(a.physical, a.size) for a, _ in address_matrix("SN-0042")]
    assert small[:3] == [(1, 2), (42, 2), (42, 4)]  # last4 = 42: 2- and 4-byte forms
    assert (1, 1, 2, "default") not in labels  # already tried
    assert len(labels) == len(set(labels))


def _failed(ago: float, outcome: str = "rejected", mechanism: str = "low") -> Attempt:
    diagnostic = "authentication-failure" if outcome == "rejected" else ""
    return Attempt(meter_key("192.0.2.10", 4059, 1, 1), time.time() - ago, "mgmt", 1,
                   mechanism, outcome, diagnostic)


def _wrapper_aarq(data: bytes) -> bool:
    return data[:2] == b"\x00\x01"


async def test_failed_logins_in_the_ledger_none_accepted_since_stop_the_run() -> None:
    """Two failures in the window and nothing accepted since: a close at once is a lockout
    sign by itself (a meter counting failures), and nothing more is sent."""
    ledger = MemoryLedger()
    ledger.record(_failed(120))
    ledger.record(_failed(60))
    script = [Expect(match=is_snrm(S11)), Close(CloseHow.FIN, 0.02)]
    opts = ProbeOptions("192.0.2.10", icmp=False, credentials=(parse_credential("1:low:x"),))
    session, factory = await _run([script], opts, ledger)
    assert "login.lockout" in _codes(session)
    lockout = next(f for f in session.findings if f.code == "login.lockout")
    assert lockout.data["failed_since_success"] == 2 and lockout.data["failed_logins_run"] == 0
    assert "reset" not in lockout.message and "power" not in lockout.message
    assert session.settings["stopped_reason"] == "lockout"
    assert factory.attempts == 1  # no reconnect, no wrapper probe, no password
    assert _status(session)["assoc.login.1-low"] is StepStatus.SKIPPED
    assert session.logins == []


async def test_one_failed_login_in_the_ledger_and_a_close_hold_passwords_back() -> None:
    """The field report's mistake: one earlier failure plus a close at once is what a meter
    whose single session another client holds shows too. No lockout claim: the safe probes go
    on, the candidates are listed, and the password is held back (and said so)."""
    ledger = MemoryLedger()
    ledger.record(_failed(30))
    scripts = [[Expect(match=is_snrm(S11)), Close(CloseHow.FIN, 0.02)],
               [Expect(match=_wrapper_aarq), Close(CloseHow.FIN, 0.02)]]
    opts = ProbeOptions("192.0.2.10", icmp=False, credentials=(parse_credential("1:low:x"),))
    session, factory = await _run(scripts, opts, ledger)
    codes = _codes(session)
    assert "login.lockout" not in codes
    assert session.settings["stopped_reason"] is None
    assert factory.attempts == 2  # the wrapper probe (public client, no password) still ran
    closed = next(f for f in session.findings if f.code == "target.closed_at_once")
    assert closed.step_id == "framing.detect"
    assert closed.data["candidates"] == ["session_taken", "lockout", "wrong_framing", "proxy"]
    assert closed.data["failed_logins_recent"] == 1 and closed.data["failed_logins_run"] == 0
    assert closed.data["login_tried"] is False and closed.data["logins_held_back"] is True
    assert codes.count("target.closed_at_once") == 1  # the wrapper's close: said once
    held = next(f for f in session.findings if f.code == "safety.logins_held_back")
    assert held.step_id == "assoc.login.1-low" and held.data["credential"] == "1-low"
    step = session.step("assoc.login.1-low")
    assert step is not None and step.status is StepStatus.SKIPPED
    assert step.details["reason"] == "held-back"
    assert session.logins == [] and len(ledger.items) == 1


async def test_a_password_accepted_since_the_failures_is_no_lockout_sign() -> None:
    ledger = MemoryLedger()
    ledger.record(_failed(300))
    ledger.record(_failed(200))
    ledger.record(Attempt(meter_key("192.0.2.10", 4059, 1, 1), time.time() - 100, "mgmt",
                          1, "low", "accepted"))
    ledger.record(_failed(50))
    scripts = [[Expect(match=is_snrm(S11)), Close(CloseHow.FIN, 0.02)],
               [Expect(match=_wrapper_aarq), Close(CloseHow.FIN, 0.02)]]
    opts = ProbeOptions("192.0.2.10", icmp=False, credentials=(parse_credential("1:low:x"),))
    session, _ = await _run(scripts, opts, ledger)
    assert "login.lockout" not in _codes(session)
    closed = next(f for f in session.findings if f.code == "target.closed_at_once")
    assert closed.data["failed_logins_recent"] == 3 and closed.data["failed_since_success"] == 1
    assert "safety.logins_held_back" in _codes(session)


async def test_a_public_association_does_not_clear_the_failed_password_count() -> None:
    # Meters count wrong passwords until a right one; a public (no authentication) association in
    # between says nothing about them, so two failures around it still make a drop a lockout sign.
    ledger = MemoryLedger()
    ledger.record(_failed(200))
    ledger.record(Attempt(meter_key("192.0.2.10", 4059, 1, 1), time.time() - 100, "public",
                          16, "none", "accepted"))
    ledger.record(_failed(50))
    scripts = [[Expect(match=is_snrm(S11)), Close(CloseHow.FIN, 0.02)]]
    opts = ProbeOptions("192.0.2.10", icmp=False, credentials=(parse_credential("1:low:x"),))
    session, _ = await _run(scripts, opts, ledger)
    lockout = next(f for f in session.findings if f.code == "login.lockout")
    assert lockout.data["failed_since_success"] == 2


async def test_a_failed_login_in_this_run_then_a_close_at_once_stops_the_run() -> None:
    """The meter answered, refused our password, then drops us at the next connection's first
    frame: the lockout signature, seen within one run."""
    meter = HdlcMeter()
    script = healthy_public(meter)[:-2]
    script += [Expect(hd.build_disc(S11, 16)), Deliver(meter.ua(), 0.01)]
    m1 = HdlcMeter(S11, 1)
    script += [Expect(match=is_snrm(S11, 1)), Deliver(m1.ua(), 0.01)]
    script += m1.exchange(AARE_AUTH_FAILURE)
    script += [Expect(hd.build_disc(S11, 1)), Close(CloseHow.FIN, 0.01)]
    creds = (parse_credential("a=1:low:11111111"), parse_credential("b=32:low:22222222"))
    session, factory = await _run(
        [script, [Expect(match=is_snrm(S11, 32)), Close(CloseHow.FIN, 0.01)]],
        # 2 failed logins allowed in this run (the default 1 would skip b before its SNRM)
        ProbeOptions("192.0.2.10", icmp=False, credentials=creds, run_max_failures=2))
    lockout = next(f for f in session.findings if f.code == "login.lockout")
    assert lockout.step_id == "assoc.login.b" and lockout.data["failed_logins_run"] == 1
    assert session.settings["stopped_reason"] == "lockout"
    assert [(x.credential, x.outcome) for x in session.logins] == [
        ("public", "accepted"), ("a", "rejected")]
    assert not any(b"22222222" in d for ch in factory.channels for d in ch.sent)
    assert "target.closed_at_once" not in _codes(session)


async def test_a_wrapper_meter_closing_on_hdlc_lifts_the_hold_once_it_answers() -> None:
    """A wrapper-only meter closes at our SNRM: with a failed login in the ledger that close is
    a plausible lockout, until the wrapper AARE on the next connection explains it. Then the
    login budget guards the password as usual, and the login is tried."""
    ledger = MemoryLedger()
    ledger.record(_failed(30))
    scripts = [[Expect(match=is_snrm(S11)), Close(CloseHow.FIN, 0.02)],
               [Expect(match=_wrapper_aarq), Deliver(wrapper(AARE_OK), 0.01),
                Expect(match=_wrapper_aarq), Deliver(build_wrapper(1, 16, RLRE), 0.01),
                Expect(match=_wrapper_aarq), Deliver(build_wrapper(1, 1, AARE_AUTH_FAILURE), 0.01)]]
    opts = ProbeOptions("192.0.2.10", icmp=False, public=False,
                        credentials=(parse_credential("a=1:low:11111111"),))
    session, factory = await _run(scripts, opts, ledger)
    codes = _codes(session)
    assert "target.closed_at_once" in codes and "login.lockout" not in codes
    assert "safety.logins_held_back" not in codes
    assert session.settings["facts"]["framing"] == "wrapper"
    assert [(x.credential, x.outcome) for x in session.logins][-1] == ("a", "rejected")
    assert any(b"11111111" in d for d in factory.channels[1].sent)


async def test_closed_after_first_frame_without_history_is_not_called_lockout() -> None:
    # The field report: the socket closes right after the SNRM. With no failed login known, the
    # probe tries the wrapper (public, no password) on a new connection, and says what it saw.
    scripts = [[Expect(match=is_snrm(S11)), Close(CloseHow.FIN, 0.02)],
               [Expect(match=lambda d: d[:2] == b"\x00\x01"), Close(CloseHow.RST, 0.02)]]
    session, factory = await _run(scripts)
    codes = _codes(session)
    assert "tcp.closed_after_first_frame" in codes and "framing.undetermined" in codes
    assert "login.lockout" not in codes
    assert factory.attempts == 2
    assert [c.close_how for c in session.connections] == [CloseHow.FIN, CloseHow.RST]


async def test_busy_bridge_retried_once_then_ok() -> None:
    busy = [Deliver(b"Port already in use\r\n", 0.01), Close()]
    scripts = [busy, healthy_public(HdlcMeter())]
    session, factory = await _run(scripts)
    busy_finding = next(f for f in session.findings if f.code == "bridge.busy")
    assert busy_finding.data["retried"] is True and busy_finding.data["after_retry"] is False
    assert _status(session)["assoc.public"] is StepStatus.OK
    assert factory.attempts == 2


async def test_busy_bridge_twice_stops_with_target_busy() -> None:
    busy = [Deliver(b"Port already in use\r\n", 0.01), Close()]
    session, factory = await _run([busy, list(busy)])
    assert "target.busy" in _codes(session)
    assert session.settings["stopped_reason"] == "target_busy"
    assert _status(session)["framing.detect"] is StepStatus.SKIPPED
    assert factory.attempts == 2


async def test_unsolicited_bytes_after_connect_are_reported() -> None:
    stale = HdlcMeter().i(bytes.fromhex("C401C1000A03414243"))
    script = [Deliver(stale, 0.05), *healthy_public(HdlcMeter())]
    session, _ = await _run([script])
    finding = next(f for f in session.findings if f.code == "tcp.unsolicited_bytes")
    assert finding.data["length"] == len(stale)
    assert _status(session)["tcp.connect"] is StepStatus.WARNING


async def test_connect_refused_skips_the_rest_and_blames_the_port() -> None:
    session, _ = await _run([ConnectError("refused", "connection refused", 0.02)])
    assert "tcp.refused" in _codes(session)
    st = _status(session)
    assert st["tcp.connect"] is StepStatus.FAILED
    assert st["assoc.public"] is StepStatus.SKIPPED
    assert session.connections[0].failed == "refused"


async def test_wrong_password_one_failed_login_and_sap_blocked() -> None:
    meter = HdlcMeter()
    script = healthy_public(meter)[:-2]  # up to the public RLRE: drop DISC/UA of the release
    script += [Expect(hd.build_disc(S11, 16)), Deliver(meter.ua(), 0.01)]
    m1 = HdlcMeter(S11, 1)
    script += [Expect(match=is_snrm(S11, 1)), Deliver(m1.ua(), 0.01)]
    script += m1.exchange(AARE_AUTH_FAILURE)
    script += [Expect(hd.build_disc(S11, 1)), Deliver(m1.ua(), 0.01)]
    creds = (parse_credential("a=1:low:11111111"), parse_credential("b=1:low:22222222"))
    ledger = MemoryLedger()
    session, factory = await _run([script], ProbeOptions("192.0.2.10", icmp=False,
                                                          credentials=creds), ledger)
    st = _status(session)
    assert st["assoc.login.a"] is StepStatus.FAILED
    assert st["assoc.login.b"] is StepStatus.SKIPPED
    assert "assoc.auth_failure" in _codes(session) and "login.sap_blocked" in _codes(session)
    assert [(x.credential, x.outcome) for x in session.logins] == [
        ("public", "accepted"), ("a", "rejected")]
    failed = [a for a in ledger.items if a.failed]
    assert len(failed) == 1 and failed[0].diagnostic == "authentication-failure"
    assert not any(b"22222222" in data for data in factory.channels[0].sent)
    # secrets never enter the session: not in settings, findings, logins, nor in the AARQ
    # frame, whose password bytes are recorded as '*' (FCS recomputed)
    text = session.dumps()
    assert "11111111" not in text and "3131313131313131" not in text
    aarq = next(f for f in session.frames if any(
        x["code"] == "session.secret_masked" for x in f.findings))
    assert b"********" in aarq.data and aarq.kind == "hdlc"
    assert not [x for x in aarq.findings if x["severity"] == "error"]
    assert b"11111111" in b"".join(factory.channels[0].sent)  # the meter did get it


async def test_dm_twice_raises_target_busy_and_skips_association() -> None:
    dm = hd.build_dm(S11, 16)
    script = [Expect(match=is_snrm(S11)), Deliver(dm, 0.01),
              Expect(hd.build_disc(S11, 16)), Deliver(dm, 0.01),
              Expect(match=is_snrm(S11)), Deliver(dm, 0.01)]
    session, factory = await _run([script])
    st = _status(session)
    assert st["framing.detect"] is StepStatus.OK and st["hdlc.snrm"] is StepStatus.FAILED
    assert st["assoc.public"] is StepStatus.SKIPPED
    busy = next(f for f in session.findings if f.code == "target.busy")
    assert busy.data["signs"] == ["hdlc.dm"]
    assert len(factory.channels[0].sent) == 3  # no further SNRM hammering


async def test_cut_answer_is_hdlc_evidence_and_garbage_is_flushed_on_silence() -> None:
    ua = HdlcMeter().ua()
    scripts = [[Expect(match=is_snrm(S11)), Deliver(ua[:9], 0.01), Close()],
               [Expect(match=is_snrm(S11)), Deliver(b"\x13\x37\xaa\x55", 0.01)]]
    session, _ = await _run(scripts, ProbeOptions("192.0.2.10", icmp=False, timeout=1.0))
    codes = _codes(session)
    assert "hdlc.partial" in codes
    assert next(f for f in session.findings if f.code == "framing.detected").data[
        "evidence"] == "partial"
    garbage = next(f for f in session.findings if f.code == "link.garbage")
    assert garbage.step_id == "hdlc.snrm" and garbage.data["length"] == 4
    assert codes.count("link.garbage") == 1


async def test_echo_reported_once_per_run() -> None:
    from dlmsdoctor.probes.apdus import build_aarq

    meter = HdlcMeter()
    snrm = hd.build_snrm(S11, 16, hd.HdlcParams(), omit_defaults=False)
    aarq = hd.build_i(S11, 16, to_server=True, ns=0, nr=0, info=build_aarq())
    script = [Expect(snrm), Deliver(snrm, 0.001), Deliver(meter.ua(), 0.01),
              Expect(aarq), Deliver(aarq, 0.001), Deliver(meter.i(AARE_AUTH_FAILURE), 0.01),
              Close()]
    session, _ = await _run([script])
    assert _codes(session).count("link.echo") == 1
    assert [f.kind for f in session.frames if f.direction == "rx"].count("echo") == 2
    assert _status(session)["framing.detect"] is StepStatus.OK


async def test_frmr_is_classified() -> None:
    frmr = hd.build_frmr(S11, 16, 0x93, hd.FRMR_INFO_TOO_LONG)
    script = [Expect(match=is_snrm(S11)), Deliver(frmr, 0.01), Close()]
    session, _ = await _run([script], ProbeOptions("192.0.2.10", icmp=False, framing="hdlc"))
    finding = next(f for f in session.findings if f.code == "hdlc.frmr")
    assert finding.data["hex"].startswith("93")
    assert _status(session)["hdlc.snrm"] is StepStatus.FAILED
    assert _status(session)["framing.detect"] is StepStatus.SKIPPED  # framing given


async def test_segmented_answer_is_reassembled_with_rr() -> None:
    """An answer longer than the max info length comes in segments; we ask for each with RR."""
    meter = HdlcMeter()
    name = "X" * 150
    apdu = bytes((0xC4, 0x01, 0xC1, 0x00, 0x0A, 0x81, len(name))) + name.encode()
    script = [Expect(match=is_snrm(S11)), Deliver(meter.ua(), 0.01)]
    script += meter.exchange(AARE_OK)
    first = hd.build_i(S11, 16, to_server=False, ns=meter.ns, nr=2, info=apdu[:100],
                       segmented=True)
    second = hd.build_i(S11, 16, to_server=False, ns=meter.ns + 1, nr=2, info=apdu[100:],
                        llc=False)
    script += [Expect(), Deliver(first, 0.01),
               Expect(hd.build_rr(S11, 16, to_server=True, nr=meter.ns + 1)),
               Deliver(second, 0.01), Close()]
    session, _ = await _run([script])
    assert session.identity["logical_device_name"] == name


async def test_waits_scale_with_the_measured_rtt() -> None:
    """On a slow link (a 2 s TCP handshake) a silence is judged after 4 x RTT, not 5 s."""
    clock = FakeClock()
    factory = ScriptedFactory([[Expect(match=is_snrm(S11)), Expect(), Close()]], clock,
                              connect_time=2.0)
    session = await run_probe(ProbeOptions("192.0.2.10", icmp=False, timeout=5.0,
                                           discovery_budget=0),
                              clock=clock, channel_factory=factory, ledger=MemoryLedger())
    silence = next(f for f in session.findings if f.code == "hdlc.no_answer")
    assert silence.data["waited"] == 8.0
    assert session.settings["facts"]["rtt"] == 2.0


async def test_late_ua_during_the_wrapper_probe_means_hdlc() -> None:
    healthy = healthy_public(HdlcMeter())
    first_ua = healthy[1]
    assert isinstance(first_ua, Deliver)
    script = [healthy[0], Expect(match=lambda d: d[:2] == b"\x00\x01"),
              Deliver(first_ua.data, 1.0), *healthy[2:]]
    session, factory = await _run([script])
    late = next(f for f in session.findings if f.code == "hdlc.late_answer")
    assert late.data["frame_type"] == "UA"
    st = _status(session)
    assert st["framing.detect"] is StepStatus.WARNING
    assert st["hdlc.snrm"] is StepStatus.OK and st["assoc.public"] is StepStatus.OK
    assert factory.attempts == 1


async def test_discovery_takes_a_late_answer_by_its_source_address() -> None:
    meter = HdlcMeter()
    script = [Expect(match=is_snrm(S11)),
              Expect(match=lambda d: d[:2] == b"\x00\x01"),
              Expect(match=is_snrm(hd.ServerAddress(1, None, 1))),
              Deliver(meter.ua(), 0.01), Close()]  # the UA comes from 1/1 (2-byte)
    session, _ = await _run([script])
    found = next(f for f in session.findings if f.code == "address.found")
    assert (found.data["physical"], found.data["address_size"]) == (1, 2)
    assert found.data["derived_from"] == "late_answer"
    assert "hdlc.late_answer" in _codes(session)


async def test_a_peer_that_drops_silent_clients_gets_no_listen_window_on_reconnect() -> None:
    healthy = healthy_public(HdlcMeter())
    scripts = [[Close(CloseHow.FIN, 0.02)], healthy]
    session, factory = await _run(scripts)
    assert factory.attempts == 2
    assert _status(session)["assoc.public"] is StepStatus.OK
    second = session.connections[1]
    first_tx = next(f for f in session.frames if f.direction == "tx")
    assert first_tx.conn_id == 2 and first_tx.at - (second.opened_at or 0) < 0.001


async def test_iec62056_21_answer_skips_discovery() -> None:
    ident = b"/ABC5\\2XYZ123\r\n"
    script = [Expect(match=is_snrm(S11)), Deliver(ident, 0.05),
              Expect(match=lambda d: d[:2] == b"\x00\x01"), Close()]
    session, _ = await _run([script])
    assert "meter.iec62056_21" in _codes(session)
    step = session.step("address.discover")
    assert step is not None and step.status is StepStatus.SKIPPED
    assert "IEC 62056-21" in step.summary or "iec62056-21" in step.summary


async def test_a_first_login_answered_by_a_close_is_not_yet_a_lockout() -> None:
    meter = HdlcMeter()
    script = healthy_public(meter)[:-2]
    script += [Expect(hd.build_disc(S11, 16)), Deliver(meter.ua(), 0.01)]
    m1 = HdlcMeter(S11, 1)
    script += [Expect(match=is_snrm(S11, 1)), Deliver(m1.ua(), 0.01), Expect(), Close()]
    opts = ProbeOptions("192.0.2.10", icmp=False, credentials=(parse_credential("a=1:low:x"),))
    session, _ = await _run([script], opts)
    assert "login.lockout" not in _codes(session)
    assert [(x.credential, x.outcome) for x in session.logins][-1] == ("a", "closed")
    assert _status(session)["assoc.login.a"] is StepStatus.FAILED
