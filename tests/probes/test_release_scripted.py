"""The release rung ends what MAY be open, on a fake clock: an AARQ or SNRM that got no answer
within its wait can still be accepted by a slow meter, and behind a serial-to-TCP bridge only
RLRQ and DISC end the meter's session (closing TCP does not)."""

from __future__ import annotations

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.events import StepStatus
from dlmsdoctor.ledger import MemoryLedger
from dlmsdoctor.link.clock import FakeClock
from dlmsdoctor.link.scripted import Deliver, Expect, ScriptedFactory, Step
from dlmsdoctor.probes import apdus
from dlmsdoctor.session import Session

from .meterscript import AARE_OK, RLRE, S11, HdlcMeter, is_snrm

OPTS = ProbeOptions("192.0.2.10", 4059, icmp=False, timeout=1.0, release_timeout=2.0)
RLRQ = apdus.build_rlrq()


def _carries(apdu: bytes):  # type: ignore[no-untyped-def]
    """Matches an HDLC I-frame whose information field is LLC + ``apdu``."""
    return lambda data: data[:2] == b"\x7e\xa0" and hd.LLC_TO_SERVER + apdu in data


async def _run(script: list[Step], options: ProbeOptions = OPTS):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    factory = ScriptedFactory([script], clock)
    session = await run_probe(options, clock=clock, channel_factory=factory,
                              ledger=MemoryLedger())
    assert factory.channels[0].mismatches == []
    return session, factory.channels[0]


def _release(session: Session) -> tuple[StepStatus, list[str]]:
    step = next(s for s in session.steps if s.id == "release")
    return step.status, list(step.details.get("steps", []))


async def test_aare_after_the_timeout_is_released_with_rlrq_and_disc() -> None:
    """The meter accepts the public AARQ after the engine gave up on it: the AARE arrives
    during the release. The release still sends RLRQ (no rejection came back) and DISC, waits
    for their answers, and reports the late AARE."""
    meter = HdlcMeter()
    late_aare = meter.i(AARE_OK)
    script: list[Step] = [
        Expect(match=is_snrm(S11)), Deliver(meter.ua(), 0.01),
        Expect(match=_carries(apdus.build_aarq())),  # ... then silence past the 1 s timeout
        Expect(match=_carries(RLRQ)),
        Deliver(late_aare, 0.3),  # the AARE, 3.3 s after its AARQ (1 s wait + 2 s listening on)
        Deliver(meter.i(RLRE), 0.2),
        Expect(hd.build_disc(S11, 16)), Deliver(meter.ua(), 0.2),
    ]
    session, channel = await _run(script)
    # the rung says what the late AARE said: accepted, slowly (not "no AARE")
    public = session.step("assoc.public")
    assert public is not None and public.status is StepStatus.WARNING
    assert public.summary.startswith("accepted, slowly: its AARE came 3.30 s after the AARQ")
    assert [(x.credential, x.outcome) for x in session.logins] == [("public", "accepted")]
    status, steps = _release(session)
    assert status is StepStatus.OK, steps
    assert steps == ["RLRQ/RLRE", "DISC/UA", "TCP FIN"]
    late = next(f for f in session.findings if f.code == "assoc.late_answer")
    assert late.data["result"] == "accepted" and late.data["client_sap"] == 16
    assert late.data["delay"] is not None and late.data["delay"] > 1.0
    # the late AARE is recorded as a frame of the release step, and cited by the finding with
    # the AARQ it answers (marked on the frame too: answers, late)
    aarq, frame = (session.frames[i] for i in late.frames)
    assert frame.direction == "rx" and frame.step_id == "release"
    assert aarq.direction == "tx" and aarq.step_id == "assoc.public"
    assert frame.answers == aarq.index and frame.late
    slow = next(f for f in session.findings if f.code == "timing.slow_service")
    assert slow.data["service"] == "association" and slow.frames == late.frames
    # the AARQ was answered after all (late): never reported as unanswered
    assert "assoc.no_answer" not in codes_of(session)
    codes = codes_of(session)
    assert "release.not_clean" not in codes and "release.rlrq_no_answer" not in codes
    # RLRQ, then DISC, then the close: all sent before TCP went down
    assert channel.sent[-2:] == [channel.sent[-2], hd.build_disc(S11, 16)]
    assert _carries(RLRQ)(channel.sent[-2])
    assert channel.script == []  # every answer was waited for


async def test_unanswered_aarq_and_no_answer_to_the_release_is_unconfirmed_not_unclean() -> None:
    """Nothing ever came back to the AARQ, nor to the RLRQ/DISC that end it: the meter most
    likely never took it. The frames are sent, each wait bounded by the release wait."""
    meter = HdlcMeter()
    script: list[Step] = [
        Expect(match=is_snrm(S11)), Deliver(meter.ua(), 0.01),
        Expect(match=_carries(apdus.build_aarq())),
        Expect(match=_carries(RLRQ)),
        Expect(hd.build_disc(S11, 16)),
    ]
    session, channel = await _run(script)
    status, steps = _release(session)
    assert steps == ["RLRQ (no RLRE)", "DISC (no answer)", "TCP FIN"]
    assert channel.script == []  # both were sent
    # an unanswered RLRQ ends the association only; the link was confirmed (UA): DISC unanswered
    # is a real warning
    assert status is StepStatus.WARNING
    codes = [f.code for f in session.findings]
    assert "release.unconfirmed" in codes and "release.disc_no_answer" in codes
    release = next(s for s in session.steps if s.id == "release")
    assert release.duration is not None and release.duration <= 2 * 2.0 + 0.01


async def test_unanswered_snrm_gets_a_disc_before_the_close() -> None:
    """A given address, an SNRM that stays unanswered: the meter may still set the link up
    (a slow one does). DISC to that address before closing; silence to it is not unclean."""
    server = hd.ServerAddress(1, 17, 2)
    options = ProbeOptions("192.0.2.10", 4059, icmp=False, timeout=1.0, framing="hdlc",
                           server_address=ProbeOptions.parse_server_address("1/17"))
    script: list[Step] = [Expect(match=is_snrm(server)), Expect(hd.build_disc(server, 16))]
    session, channel = await _run(script, options)
    status, steps = _release(session)
    assert steps == ["DISC (no answer)", "TCP FIN"]
    assert status is StepStatus.OK
    assert channel.sent[-1] == hd.build_disc(server, 16)
    assert "release.unconfirmed" in [f.code for f in session.findings]


async def test_a_late_ua_to_the_snrm_is_not_taken_for_the_disc_answer() -> None:
    """The UA to an SNRM we gave up on arrives while the release waits for its DISC's answer:
    reported (the link WAS set up), and the DISC's own UA is still waited for."""
    server = hd.ServerAddress(1, 17, 2)
    meter = HdlcMeter(server)
    options = ProbeOptions("192.0.2.10", 4059, icmp=False, timeout=1.0, framing="hdlc",
                           server_address=ProbeOptions.parse_server_address("1/17"))
    disc_ua = hd.build_frame(dest=hd.encode_client_address(16),
                             src=hd.encode_server_address(server),
                             control=hd.CTRL_UA | hd.PF_BIT)
    script: list[Step] = [Expect(match=is_snrm(server)), Expect(hd.build_disc(server, 16)),
                          Deliver(meter.ua(), 0.2), Deliver(disc_ua, 0.3)]
    session, channel = await _run(script, options)
    status, steps = _release(session)
    assert steps == ["DISC/UA", "TCP FIN"] and status is StepStatus.OK
    late = next(f for f in session.findings if f.code == "release.late_answer")
    assert late.data["frame_type"] == "UA" and late.data["delay"] == 1.2
    assert channel.script == []  # the DISC's own UA was read before the close
    assert "release.unconfirmed" not in [f.code for f in session.findings]


def codes_of(session: Session) -> list[str]:
    return [f.code for f in session.findings]
