"""Answers matched to their requests, on a scripted meter and a fake clock: late answers on a
later connection, damaged frames that are no answers, a fragment that is no link."""

from __future__ import annotations

import asyncio

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.config import parse_credential
from dlmsdoctor.diagnosis.verdict import diagnose
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.events import CloseHow, StepStatus
from dlmsdoctor.ledger import MemoryLedger
from dlmsdoctor.link.clock import FakeClock
from dlmsdoctor.link.scripted import Close, Deliver, Expect, ScriptedFactory, Step
from dlmsdoctor.session import Session

from .meterscript import AARE_OK, S11, HdlcMeter, is_snrm


async def _run(scripts: list[list[Step]], options: ProbeOptions) -> Session:
    clock = FakeClock()
    factory = ScriptedFactory(scripts, clock)
    session = await run_probe(options, clock=clock, channel_factory=factory,
                              ledger=MemoryLedger())
    assert all(ch.mismatches == [] for ch in factory.channels)
    return session


def _damaged(frame: bytes) -> bytes:
    """Both checksums wrong (HCS and FCS): noise that looks like HDLC."""
    out = bytearray(frame)
    out[7] ^= 0xFF
    out[-3] ^= 0xFF
    return bytes(out)


async def test_an_aare_delivered_on_the_next_connection_is_late_not_absent() -> None:
    """The meter took the AARQ, the connection dropped before its AARE; a bridge delivers the
    AARE at the start of the next connection. It answers the first connection's AARQ, late."""
    meter = HdlcMeter()
    aare = meter.i(AARE_OK)
    first: list[Step] = [Expect(match=is_snrm(S11)), Deliver(meter.ua(), 0.01),
                         Expect(), Close(CloseHow.FIN, 4.0)]  # the AARQ: silence, then a close
    second: list[Step] = [Deliver(aare, 0.01), Expect(match=is_snrm(S11, 1)),
                          Close(CloseHow.FIN, 0.01)]
    options = ProbeOptions("192.0.2.10", icmp=False, timeout=1.0, banner_window=0.5,
                           credentials=(parse_credential("m=1:low:00000000"),))
    session = await _run([first, second], options)
    aarq = next(f for f in session.frames if f.direction == "tx" and f.step_id == "assoc.public"
                and f.conn_id == 1 and "SNRM" not in f.summary)
    answer = next(f for f in session.frames if f.direction == "rx" and f.conn_id == 2)
    assert answer.answers == aarq.index and answer.late
    slow = next(f for f in session.findings if f.code == "timing.slow_service")
    assert slow.data["service"] == "association" and slow.data["other_connection"] is True
    assert slow.frames == [aarq.index, answer.index]
    assert "assoc.no_answer" not in [f.code for f in session.findings]


async def test_a_frame_with_both_checksums_wrong_is_no_answer() -> None:
    """QA: such a frame was counted as 'HDLC (late I)'. It proves HDLC bytes came back (the
    framing), never an answer, never a link."""
    meter = HdlcMeter()
    noise = _damaged(meter.i(AARE_OK))
    script: list[Step] = [Expect(match=is_snrm(S11)), Deliver(noise, 0.01)]
    session = await _run([script], ProbeOptions("192.0.2.10", icmp=False, timeout=0.5,
                                                discovery_budget=2))
    st = {s.id: s.status for s in session.steps}
    assert st["framing.detect"] is StepStatus.WARNING
    framing = session.step("framing.detect")
    assert framing is not None and framing.details["evidence"] == "damaged"
    assert "late" not in framing.summary
    assert st["assoc.public"] is StepStatus.SKIPPED
    assert all(f.answers is None for f in session.frames if f.direction == "rx")
    damaged = next(f for f in session.findings if f.code == "hdlc.damaged_answer")
    assert "not taken as an answer" in damaged.message


async def test_a_damaged_ua_sets_no_link() -> None:
    meter = HdlcMeter()
    script: list[Step] = [Expect(match=is_snrm(S11)), Deliver(_damaged(meter.ua()), 0.01)]
    session = await _run([script], ProbeOptions("192.0.2.10", icmp=False, timeout=0.5,
                                                discovery_budget=2))
    assert not [f for f in session.findings if f.code == "hdlc.ua"]
    assert {s.id: s.status for s in session.steps}["hdlc.snrm"] is StepStatus.FAILED


async def test_a_fragment_then_nothing_is_no_link() -> None:
    """QA: a peer that sends 7E A7 FF 21 02 21 73 93 then nothing got 'the link works but the
    meter ignores our AARQ'. No UA, no link: no association is tried, no such verdict."""
    fragment = bytes.fromhex("7EA7FF2102217393")

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent = False
        while data := await reader.read(1024):
            if not sent and data:
                writer.write(fragment)
                await writer.drain()
                sent = True
        writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        session = await run_probe(ProbeOptions("127.0.0.1", port, icmp=False, timeout=0.3,
                                               banner_window=0.1, release_timeout=0.3,
                                               discovery_budget=2), ledger=MemoryLedger())
    finally:
        server.close()
    st = {s.id: s.status for s in session.steps}
    assert st["assoc.public"] is StepStatus.SKIPPED
    diagnosis = diagnose(session)
    text = " ".join(c.title + c.explanation for c in diagnosis.causes).lower()
    assert "ignores our aarq" not in text and "link works" not in text
    assert diagnosis.profile is None


async def test_a_refused_connection_is_said_in_plain_words() -> None:
    """QA: the run ended in asyncio's raw 'Connect call failed ('127.0.0.1', 1)'."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    session = await run_probe(ProbeOptions("127.0.0.1", port, icmp=False),
                              ledger=MemoryLedger())
    step = session.step("tcp.connect")
    assert step is not None and step.status is StepStatus.FAILED
    assert step.summary == (f"connection refused by 127.0.0.1:{port}: nothing listens on that "
                            "port, or a firewall rejects it")
    assert "Connect call failed" not in session.dumps()


async def test_every_answer_of_a_healthy_run_names_its_request() -> None:
    """Against the simulated meter: each UA, AARE, GET answer, RLRE names the frame it answers
    (same connection, sent before it, the right kind), and none is late."""
    from dlmsdoctor.sim.meter import SimulatedMeter

    async with SimulatedMeter("default") as meter:
        session = await run_probe(
            ProbeOptions("127.0.0.1", meter.port, icmp=False, timeout=2.0, banner_window=0.1,
                         credentials=(parse_credential("m=1:low:00000000"),)),
            ledger=MemoryLedger())
    received = [f for f in session.frames if f.direction == "rx"]
    assert received and all(f.answers is not None and not f.late for f in received), [
        (f.index, f.summary, f.answers) for f in received if f.answers is None or f.late]
    # what each answer is -> what its request must be (HDLC type, or the APDU tag of an I-frame)
    pairs = {"UA": {"SNRM", "DISC"}, "61": {"60"}, "C4": {"C0"}, "63": {"62"}}
    checked: set[str] = set()
    for answer in received:
        request = session.frames[answer.answers]  # type: ignore[index]
        assert request.direction == "tx" and request.conn_id == answer.conn_id
        assert request.index < answer.index
        what = _what(answer.data)
        checked.add(what)
        assert _what(request.data) in pairs[what], (request.summary, answer.summary)
    assert checked == set(pairs), checked
    delays = session.settings["facts"]["delays"]
    assert set(delays) >= {"link", "association", "get", "release"}


def _what(data: bytes) -> str:
    """An HDLC frame's type, or for an I-frame its APDU tag in hex."""
    from dlmsdoctor.probes.wire import frame_info

    frame = hd.parse_hdlc(data, 0, None)
    if frame.fields.get("frame_type") != "I":
        return str(frame.fields.get("frame_type"))
    return frame_info(frame)[3:4].hex().upper()
