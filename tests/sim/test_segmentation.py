"""Long replies: HDLC segmentation (max info length) and GET block transfer (max PDU size),
read by gurux-dlms's client, plus a segmented request reassembled by the meter."""

from __future__ import annotations

from gurux_dlms.objects import GXDLMSAssociationLogicalName, GXDLMSData

from dlmsdoctor.codec import hdlc
from dlmsdoctor.sim.meter import MeterThread
from dlmsdoctor.sim.profile import load_profile
from tests.sim.gurux_peer import GuruxPeer
from tests.sim.wire import SERVER, RawClient, aarq


def _sent_frames(meter) -> list[hdlc.DecodedFrame]:  # type: ignore[no-untyped-def]
    return [hdlc.parse_hdlc(bytes.fromhex(str(e["hex"])), 0, "rx")
            for e in meter.log.of("frame.sent")]


def test_replies_longer_than_max_info_are_segmented() -> None:
    profile = load_profile("default").with_changes(max_info_tx=32, max_info_rx=32)
    with MeterThread(profile) as meter:
        with GuruxPeer(meter.port) as peer:
            peer.connect()  # the AARE (46 bytes with LLC) already needs two segments
            assoc = GXDLMSAssociationLogicalName("0.0.40.0.0.255")
            peer.read(assoc, 2)
            assert len(assoc.objectList) == len(meter.core.objects)
            peer.release()
        frames = _sent_frames(meter)
        infos = [f.fields.get("info_length") for f in frames if f.fields["frame_type"] == "I"]
        assert max(i for i in infos if isinstance(i, int)) == 32
        assert sum(1 for f in frames if f.fields.get("segmented")) > 10
        rrs = [e for e in meter.log.of("frame.received") if "RR" in str(e["decode"])]
        assert len(rrs) > 10  # one RR from the client per segment
        assert meter.open_associations() == []


def test_get_longer_than_max_pdu_uses_block_transfer() -> None:
    profile = load_profile("default").with_changes(max_pdu_size=96)
    with MeterThread(profile) as meter:
        with GuruxPeer(meter.port) as peer:
            peer.connect()
            assoc = GXDLMSAssociationLogicalName("0.0.40.0.0.255")
            peer.read(assoc, 2)
            assert len(assoc.objectList) == len(meter.core.objects)
            ldn = GXDLMSData("0.0.42.0.0.255")
            peer.read(ldn, 2)  # a short one after the blocks: state is clean
            peer.release()
        blocks = [e for e in meter.log.of("frame.received") if "C0 02" in str(e["hex"])]
        assert len(blocks) >= 5  # GET-Request-Next for every block after the first
        for e in meter.log.of("frame.sent"):
            raw = bytes.fromhex(str(e["hex"]))
            apdu_len = hdlc.parse_hdlc(raw, 0, "rx").fields.get("info_length")
            assert not isinstance(apdu_len, int) or apdu_len - 3 <= 96


def test_segmented_request_is_reassembled() -> None:
    request = aarq()
    first, second = b"\xe6\xe6\x00" + request[:10], request[10:]
    with MeterThread("default") as meter, RawClient(meter.port) as c:
        c.exchange(hdlc.build_snrm(SERVER, 16))
        rr = c.exchange(hdlc.build_i(SERVER, 16, to_server=True, ns=0, nr=0, info=first,
                                     segmented=True, llc=False))
        assert hdlc.parse_hdlc(rr, 0, "rx").fields["frame_type"] == "RR"
        aare = c.exchange(hdlc.build_i(SERVER, 16, to_server=True, ns=1, nr=0, info=second,
                                       llc=False))
        assert aare[aare.index(b"\xe6\xe7\x00") + 3] == 0x61
        assert meter.log.of("login")[0]["outcome"] == "accepted"


def test_a_window_of_segments_per_rr_when_negotiated() -> None:
    profile = load_profile("default").with_changes(max_info_tx=32, window_tx=3, window_rx=3)
    params = hdlc.HdlcParams(max_info_tx=128, max_info_rx=32, window_tx=3, window_rx=3)
    with MeterThread(profile) as meter, RawClient(meter.port) as c:
        ua = c.exchange(hdlc.build_snrm(SERVER, 16, params))
        assert hdlc.parse_hdlc(ua, 0, "rx").fields["params"]["window_tx"] == 3  # type: ignore[index]
        c.send(hdlc.build_i(SERVER, 16, to_server=True, ns=0, nr=0, info=aarq()))
        got = c.read_for(0.3)  # the 46-byte AARE (with LLC) in two segments, sent at once
        frames = [hdlc.parse_hdlc(got, start, "rx") for start in _frame_starts(got)]
        assert [(f.fields["ns"], f.fields["segmented"], f.fields["poll_final"])
                for f in frames] == [(0, True, False), (1, False, True)]
        get_list = bytes.fromhex("C0 01 C1 00 0F 00 00 28 00 00 FF 02 00")  # object list
        c.send(hdlc.build_i(SERVER, 16, to_server=True, ns=1, nr=2, info=get_list))
        got = c.read_for(0.3)
        first = [hdlc.parse_hdlc(got, start, "rx").fields for start in _frame_starts(got)]
        assert [(f["ns"], f["poll_final"]) for f in first] == [(2, False), (3, False), (4, True)]
        c.send(hdlc.build_rr(SERVER, 16, to_server=True, nr=5))
        got = c.read_for(0.3)
        second = [hdlc.parse_hdlc(got, start, "rx").fields for start in _frame_starts(got)]
        assert [f["ns"] for f in second] == [5, 6, 7]


def _frame_starts(buf: bytes) -> list[int]:
    starts, pos = [], 0
    while pos < len(buf):
        end = hdlc.frame_extent(buf, pos)
        assert end is not None
        starts.append(pos)
        pos = end
    return starts
