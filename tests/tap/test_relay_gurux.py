"""A real gurux-dlms client polls the simulated meter through the tap: every byte arrives
unchanged both ways, the session records it, and a clean poll leaves no finding."""

from __future__ import annotations

import time

import pytest
from gurux_dlms.objects import GXDLMSData, GXDLMSRegister

from dlmsdoctor.events import Direction
from dlmsdoctor.sim.meter import MeterThread
from tests.tap.helpers import RecordingPeer, TapThread


def _peer(meter, port, **kw):  # type: ignore[no-untyped-def]
    p = meter.profile
    return RecordingPeer(port, physical=p.server_physical or 0, address_size=p.address_size,
                         wrapper=p.framing == "wrapper", logical=p.server_logical, **kw)


@pytest.mark.parametrize("profile", ["default", "serial-derived", "wrapper"])
def test_gurux_polls_through_the_tap_byte_exact(profile: str) -> None:
    with MeterThread(profile) as meter, TapThread(meter.port) as tap:
        with _peer(meter, tap.port) as peer:
            peer.connect()
            ldn = GXDLMSData("0.0.42.0.0.255")
            peer.read(ldn, 2)
            peer.read(GXDLMSRegister("1.0.1.8.0.255"), 2)
            peer.release()
        time.sleep(0.2)
        session = tap.stop()
        assert meter.open_associations() == []
        assert meter.failed_logins() == 0
    tx = b"".join(f.data for f in session.frames if f.direction is Direction.TX)
    rx = b"".join(f.data for f in session.frames if f.direction is Direction.RX)
    assert tx == bytes(peer.sent)
    assert rx == bytes(peer.received)
    assert session.kind == "tap"
    assert [c.client for c in session.connections] == [
        f"127.0.0.1:{session.connections[0].local_port}"]
    assert session.diagnosis is not None and session.diagnosis.status == "ok", session.findings
    answered = [f for f in session.frames if f.direction is Direction.RX]
    assert all(f.answers is not None and not f.late for f in answered)
    times = session.settings["tap"]["answer_times"]
    expected = {"AARQ", "GET", "RLRQ"} | (set() if profile == "wrapper" else {"SNRM", "DISC"})
    assert expected <= set(times)


@pytest.mark.parametrize("profile", ["default", "wrapper"])
def test_a_clean_poller_reading_every_object_raises_nothing(profile: str) -> None:
    """No false alarm: every attribute of every object (segmented answers included, the
    association's object list is long) read by gurux through the tap, then released."""
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import ObjectType

    with MeterThread(profile) as meter, TapThread(meter.port) as tap:
        with _peer(meter, tap.port) as peer:
            peer.connect()
            for obj in meter.core.objects:
                gx_obj = GXDLMSClient.createObject(ObjectType(obj.class_id))
                gx_obj.logicalName = obj.obis_text
                gx_obj.version = obj.version
                for attribute in sorted(obj.attributes):
                    if obj.class_id == 15 and attribute == 7:
                        continue
                    peer.read(gx_obj, attribute)
            peer.release()
        time.sleep(0.2)
        session = tap.stop()
    assert [f.message for f in session.findings if f.severity != "info"] == []
    assert session.diagnosis is not None and session.diagnosis.status == "ok"
    assert session.settings["tap"]["answer_times"]["GET"]["count"] >= 40
