"""The simulated meter's per-service delays, seen from the wire: only that answer is late."""

from __future__ import annotations

import time

import pytest

from dlmsdoctor.codec import hdlc
from dlmsdoctor.sim.faults import FaultError, parse_faults
from dlmsdoctor.sim.meter import MeterThread
from tests.sim.wire import RawClient, aarq, i_frame, snrm


def _timed(client: RawClient, frame: bytes) -> tuple[bytes, float]:
    start = time.monotonic()
    answer = client.exchange(frame)
    return answer, time.monotonic() - start


def test_aare_delay_delays_only_the_aare() -> None:
    with MeterThread("default", ["aare-delay=0.4"]) as meter, RawClient(meter.port) as c:
        ua, link = _timed(c, snrm())
        assert hdlc.parse_hdlc(ua, 0, "rx").fields["frame_type"] == "UA" and link < 0.2
        aare, login = _timed(c, i_frame(aarq(), 0, 0))
        assert b"\xe6\xe7\x00\x61" in aare and 0.4 <= login < 1.2
        assert [e["service"] for e in meter.log.of("reply.delayed")] == ["association"]


def test_ua_delay_delays_only_the_ua_to_snrm() -> None:
    with MeterThread("default", ["ua-delay=0.4"]) as meter, RawClient(meter.port) as c:
        _, link = _timed(c, snrm())
        assert 0.4 <= link < 1.2
        _, login = _timed(c, i_frame(aarq(), 0, 0))
        assert login < 0.2
        assert [e["service"] for e in meter.log.of("reply.delayed")] == ["link"]


def test_get_delay_parses_and_combines() -> None:
    faults = parse_faults(["get-delay=1.5", "aare-delay=0.2"])
    assert faults.delay_for("get") == 1.5 and faults.delay_for("association") == 0.2
    assert faults.delay_for("link") == 0.0
    with pytest.raises(FaultError):
        parse_faults(["get-delay"])
