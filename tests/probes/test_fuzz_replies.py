"""Whatever a meter (or a bridge) sends back, the ladder ends with findings, never a crash:
no step may end in ERROR (which would blame dlmsdoctor) and the release rung always runs."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.config import parse_credential
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.events import CloseHow, StepStatus
from dlmsdoctor.ledger import MemoryLedger
from dlmsdoctor.link.clock import FakeClock
from dlmsdoctor.link.scripted import Close, Deliver, Expect, ScriptedFactory, Step
from dlmsdoctor.session import Session

from .meterscript import AARE_OK, HdlcMeter

_meter = HdlcMeter()
# Building blocks a reply may be made of: real frames, damaged frames, text, noise.
_PIECES = [
    _meter.ua(), hd.build_dm(_meter.server, 16), hd.build_frmr(_meter.server, 16, 0x93),
    _meter.i(AARE_OK), _meter.i(bytes.fromhex("C401C1000A03414243")), _meter.i(b"\xd8\x01\x01"),
    b"Port already in use\r\n", b"/ABC5XYZ\r\n", b"\xff\xfb\x01",
    b"\x00\x01\x00\x01\x00\x10\x00\x02\x63\x00",
]
reply = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(_PIECES),
    st.sampled_from(_PIECES).map(lambda b: b[: len(b) // 2]),
    st.sampled_from(_PIECES).map(lambda b: b[:-3] + b"\x00\x00\x7e"),
)
action = st.one_of(
    st.tuples(st.just("deliver"), reply, st.floats(0, 0.5)),
    st.tuples(st.just("close"), st.sampled_from([CloseHow.FIN, CloseHow.RST]), st.just(0.0)),
    st.tuples(st.just("silent"), st.none(), st.just(0.0)),
)


def _script(actions: list[tuple[str, object, float]]) -> list[Step]:
    steps: list[Step] = []
    for kind, value, delay in actions:
        steps.append(Expect())
        if kind == "deliver":
            assert isinstance(value, bytes)
            steps.append(Deliver(value, delay))
        elif kind == "close":
            assert isinstance(value, CloseHow)
            steps.append(Close(value, delay))
            break
    return steps


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(action, max_size=12), min_size=1, max_size=3))
async def test_any_replies_end_in_findings_not_errors(
    connections: list[list[tuple[str, object, float]]],
) -> None:
    clock = FakeClock()
    factory = ScriptedFactory([_script(c) for c in connections], clock)
    options = ProbeOptions("192.0.2.10", icmp=False, timeout=1.0, discovery_budget=3,
                           credentials=(parse_credential("m=1:low:00000000"),))
    session = await run_probe(options, clock=clock, channel_factory=factory,
                              ledger=MemoryLedger())
    errors = [s for s in session.steps if s.status is StepStatus.ERROR]
    assert errors == [], [(s.id, s.summary) for s in errors]
    assert session.step("release") is not None
    again = Session.loads(session.dumps())  # every record is plain JSON
    assert again.to_json() == session.to_json()
    assert all(c.failed or c.close_how is not None for c in session.connections)
    assert len([x for x in session.logins if x.mechanism == "low" and x.outcome != "accepted"]) <= 1
