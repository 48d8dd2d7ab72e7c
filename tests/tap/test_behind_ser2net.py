"""Two pollers through the tap to one single-connection bridge (a real ser2net before the
simulated meter's serial line), and a poller cut off by the meter's inactivity timeout."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest
from gurux_dlms.objects import GXDLMSData

from dlmsdoctor.sim.meter import MeterThread, SimulatedMeter
from tests.helpers.ser2net import INSTALL_HINT, Ser2net, connected_peer, have_ser2net
from tests.tap.helpers import TapThread


class SerialMeter:
    """A SimulatedMeter on a pty on its own loop (ser2net opens the device on demand)."""

    def __init__(self, device: Path, faults: tuple[str, ...] = ()) -> None:
        self.meter = SimulatedMeter("default", faults, port=None, serial_device=device)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> SimulatedMeter:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.meter.start(), self.loop).result(10)
        return self.meter

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.meter.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.mark.skipif(not have_ser2net(), reason=INSTALL_HINT)
def test_two_pollers_compete_for_a_single_connection_bridge(tmp_path: Path) -> None:
    bridge = Ser2net(tmp_path, tmp_path / "meter")
    with SerialMeter(bridge.device) as meter:
        bridge.start(settle=0.3)
        try:
            with TapThread(bridge.port) as tap:
                holder = connected_peer(tap.port, physical=meter.profile.server_physical or 0,
                                        address_size=meter.profile.address_size)
                holder.read(GXDLMSData("0.0.42.0.0.255"), 2)
                with socket.create_connection(("127.0.0.1", tap.port), timeout=3) as second:
                    second.settimeout(3)
                    text = second.recv(100)
                    assert text == b"Port already in use\r\n"  # relayed as ser2net wrote it
                live = tap.wait_finding("tap.bridge.busy", 1.0)
                holder.release()
                holder.close()
                time.sleep(0.2)
                session = tap.stop()
        finally:
            bridge.stop()
    assert live, "the busy bridge must be told as soon as its text arrives"
    busy = next(f for f in session.findings if f.code == "tap.bridge.busy")
    holder_client = session.connections[0].client
    assert busy.data["holders"] == [holder_client]
    assert busy.data["refused"] == session.connections[1].client
    evidence = next(f for f in session.frames if f.index == busy.frames[0])
    assert evidence.kind == "bridge-message" and evidence.conn_id == 2
    assert session.diagnosis is not None
    assert session.diagnosis.causes[0].code == "tap.bridge.busy"


@pytest.mark.parametrize("reads_it", [False, True])
def test_inactivity_timeout_cuts_a_poller_off(reads_it: bool) -> None:
    from gurux_dlms.objects import GXDLMSHdlcSetup

    with MeterThread("default", faults=["inactivity=1.2"]) as meter, \
            TapThread(meter.port) as tap:
        peer = connected_peer(tap.port, physical=meter.profile.server_physical or 0,
                              address_size=meter.profile.address_size)
        peer.read(GXDLMSData("0.0.42.0.0.255"), 2)
        if reads_it:
            peer.read(GXDLMSHdlcSetup("0.0.22.0.0.255"), 8)
        peer.sock.settimeout(3)
        assert peer.sock.recv(10) == b""  # the meter closes the idle connection
        peer.close()
        time.sleep(0.1)
        session = tap.stop()
    cut = next(f for f in session.findings if f.code == "tap.poller.inactivity_cut")
    assert 1.1 < cut.data["idle"] < 2.5
    assert cut.data["read_inactivity"] is reads_it
    assert ("never read" in cut.message) is not reads_it
    assert session.connections[0].closed_by_peer is True


@pytest.mark.skipif(not have_ser2net(), reason=INSTALL_HINT)
def test_late_answer_reaches_the_next_session_behind_a_real_bridge(tmp_path: Path) -> None:
    """The meter answers after 0.8 s; the poller gives up after 0.3 s and reconnects at once.
    ser2net delivers the late UA to the new connection, where it looks like the answer to the
    new SNRM: the tap says whose answer it really is."""
    from gurux_dlms import GXDLMSException

    from tests.tap.helpers import RecordingPeer

    bridge = Ser2net(tmp_path, tmp_path / "meter")
    with SerialMeter(bridge.device, ("delay=0.8",)) as meter:
        bridge.start(settle=0.3)
        try:
            with TapThread(bridge.port) as tap:
                p = meter.profile
                for _ in range(3):
                    with RecordingPeer(tap.port, timeout=0.3, physical=p.server_physical or 0,
                                       address_size=p.address_size) as peer, \
                            pytest.raises((TimeoutError, ConnectionError, GXDLMSException)):
                        peer.connect()
                    time.sleep(0.1)
                time.sleep(1.0)
                session = tap.stop()
        finally:
            bridge.stop()
    stale = next(f for f in session.findings if f.code == "tap.meter.stale_bytes")
    source, stale_frame = (next(x for x in session.frames if x.index == i)
                           for i in stale.frames[:2])
    assert source.conn_id == 1 and "SNRM" in source.summary
    assert stale_frame.conn_id > 1 and stale_frame.summary.startswith("UA")
    late = next(f for f in session.findings if f.code == "tap.poller.timeout_too_short")
    assert 0.75 < late.data["answer_time"] < 1.5
    silence = next(f for f in session.findings if f.code == "tap.poller.no_answer"
                   and f.data["service"] == "SNRM")
    assert silence.severity == "warning" and "reached a later connection" in silence.message
