"""The in-process API: async context manager, event log file, how connections end, and a
meter that never falls over whatever it is sent."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec import hdlc
from dlmsdoctor.sim.association import Association, MeterCore
from dlmsdoctor.sim.events import EventLog
from dlmsdoctor.sim.faults import Faults
from dlmsdoctor.sim.links import HdlcServerLink, WrapperServerLink
from dlmsdoctor.sim.meter import MeterThread, SimulatedMeter
from dlmsdoctor.sim.profile import load_profile
from tests.sim.wire import SERVER, RawClient, aarq, i_frame, snrm


async def _frame(reader: asyncio.StreamReader) -> bytes:
    buf = b""
    while hdlc.frame_extent(buf, 0) is None:
        buf += await asyncio.wait_for(reader.read(4096), 2)
    return buf


async def test_async_meter_and_jsonl_log(tmp_path: Path) -> None:
    log_path = tmp_path / "events.jsonl"
    async with SimulatedMeter("default", events_path=log_path) as meter:
        assert meter.banner() == f"listening on 127.0.0.1:{meter.port} (hdlc, server 1/1, 2-byte)"
        reader, writer = await asyncio.open_connection("127.0.0.1", meter.port)
        writer.write(snrm())
        ua = await _frame(reader)
        assert hdlc.parse_hdlc(ua, 0, "rx").fields["frame_type"] == "UA"
        writer.write(i_frame(aarq(), 0, 0))
        await _frame(reader)
        writer.close()  # no RLRQ, no DISC: the association is dropped, not released
        await writer.wait_closed()
        for _ in range(100):
            if meter.log.closes():
                break
            await asyncio.sleep(0.01)
        assert [e["how"] for e in meter.log.closes()] == ["fin"]
        assert [e["how"] for e in meter.unreleased_associations()] == ["close"]
        assert meter.open_associations() == []
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [r["event"] for r in records][:3] == ["meter.started", "connection.opened",
                                                  "frame.received"]
    assert records[2]["decode"].startswith("SNRM client 16 -> server 1/1")
    assert records[-1]["event"] == "meter.stopped"


def test_reset_by_peer_is_logged_as_rst() -> None:
    with MeterThread("default") as meter:
        sock = socket.create_connection(("127.0.0.1", meter.port))
        sock.sendall(snrm())
        sock.recv(100)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # SO_LINGER 0: RST
        for _ in range(200):
            if meter.log.closes():
                break
            time.sleep(0.01)
        assert [e["how"] for e in meter.log.closes()] == ["rst"]


def test_disc_releases_and_dm_when_not_connected() -> None:
    with MeterThread("default") as meter, RawClient(meter.port) as c:
        dm = c.exchange(hdlc.build_disc(SERVER, 16))
        assert hdlc.parse_hdlc(dm, 0, "rx").fields["frame_type"] == "DM"
        i_dm = c.exchange(i_frame(aarq(), 0, 0))  # I-frame before SNRM: DM as well
        assert hdlc.parse_hdlc(i_dm, 0, "rx").fields["frame_type"] == "DM"
        c.exchange(snrm())
        c.exchange(i_frame(aarq(), 0, 0))
        ua = c.exchange(hdlc.build_disc(SERVER, 16))
        assert hdlc.parse_hdlc(ua, 0, "rx").fields["frame_type"] == "UA"
        assert [e["how"] for e in meter.log.of("association.released")] == ["disc"]
        assert meter.open_associations() == []


def test_get_without_association_is_refused() -> None:
    """gurux's own server answers a GET right after SNRM; a meter must not."""
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import Authentication, InterfaceType
    from gurux_dlms.objects import GXDLMSData

    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    get = bytes(client.read(GXDLMSData("0.0.42.0.0.255"), 2)[0])[8:]
    with MeterThread("default") as meter, RawClient(meter.port) as c:
        c.exchange(snrm())
        reply = c.exchange(i_frame(get, 0, 0))
        assert reply[reply.index(b"\xe6\xe7\x00") + 3 :][:3] == bytes.fromhex("D8 01 01")
        assert meter.log.of("get") == []


AARQ = aarq()


def _core() -> MeterCore:
    return MeterCore(load_profile("default"), Faults(), EventLog())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_links_never_raise_on_bytes(data: bytes) -> None:
    core = _core()
    link = HdlcServerLink(core, 1)
    link.on_frame(data)
    link.on_frame(b"\x7e\xa0" + data)
    link.on_frame(snrm())
    link.on_frame(i_frame(data, 0, 0))  # any APDU in a well-formed frame
    link.on_frame(hdlc.build_frame(  # an SNRM with any parameter bytes
        dest=hdlc.encode_server_address(SERVER), src=hdlc.encode_client_address(16),
        control=0x93, info=data,
    ))
    link.on_frame(i_frame(data[:20], 0, 0))
    WrapperServerLink(core, 2).on_pdu(b"\x00\x01\x00\x10\x00\x01" + data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0x60, 0x62, 0xC0, 0xC1, 0xC3, 0xD8, 0x01]), st.binary(max_size=120))
def test_association_never_raises_on_apdus(tag: int, body: bytes) -> None:
    core = _core()
    assoc = Association(core, 1)
    assoc.handle(bytes([tag]) + body, 16)
    assoc.handle(AARQ, 16)  # associated: every service path is reachable now
    assoc.handle(bytes([tag]) + body, 16)
    assoc.handle(bytes([0xC0, 0x02, 0xC1]) + body, 16)


async def test_stopping_the_meter_closes_sessions_and_says_why() -> None:
    async with SimulatedMeter("default") as meter:
        reader, writer = await asyncio.open_connection("127.0.0.1", meter.port)
        writer.write(snrm())
        await _frame(reader)
        writer.write(i_frame(aarq(), 0, 0))
        await _frame(reader)
    assert await asyncio.wait_for(reader.read(), 2) == b""  # the meter's FIN
    writer.close()
    closes = meter.log.closes()
    assert [(e["how"], e["reason"]) for e in closes] == [("meter", "stop")]
    assert [e["how"] for e in meter.unreleased_associations()] == ["close"]


def test_stale_bytes_for_the_wrapper_are_wrapper_bytes() -> None:
    from dlmsdoctor.codec.model import FrameKind
    from dlmsdoctor.codec.stream import split_stream
    from dlmsdoctor.sim.meter import stale_bytes_for

    kinds = [c.kind for c in split_stream(stale_bytes_for(load_profile("wrapper")))]
    assert FrameKind.WRAPPER in kinds and FrameKind.HDLC not in kinds


def test_requests_arriving_byte_by_byte_are_served() -> None:
    from dlmsdoctor.codec.wrapper import build_wrapper

    for name, request in (("default", snrm()), ("wrapper", build_wrapper(16, 1, aarq()))):
        with MeterThread(name) as meter, RawClient(meter.port) as c:
            for byte in request:
                c.send(bytes([byte]))
                time.sleep(0.002)
            reply = c.read_for(0.3)
            first = 0x7E if name == "default" else 0x00
            assert reply[:1] == bytes([first]), name


def test_absurd_snrm_parameters_do_not_break_the_link() -> None:
    core = _core()
    link = HdlcServerLink(core, 1)
    params = hdlc.HdlcParams(max_info_tx=0, max_info_rx=0, window_tx=0, window_rx=0)
    out = link.on_frame(hdlc.build_snrm(SERVER, 16, params, omit_defaults=False))
    assert hdlc.parse_hdlc(out.frames[0], 0, "rx").fields["frame_type"] == "UA"
    assert (link.max_info_tx, link.max_info_rx) == (32, 32)
    reply = link.on_frame(i_frame(bytes.fromhex("62 03 80 01 00"), 0, 0))  # RLRQ
    assert b"\x63\x03\x80\x01\x00" in reply.frames[0]  # RLRE
