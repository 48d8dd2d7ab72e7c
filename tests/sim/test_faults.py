"""Each fault of the simulated meter, seen from the wire: the bytes a client gets, or the close."""

from __future__ import annotations

import time

import pytest

from dlmsdoctor.codec import hdlc
from dlmsdoctor.codec.hdlc import ServerAddress
from dlmsdoctor.codec.model import FrameKind
from dlmsdoctor.codec.stream import split_stream
from dlmsdoctor.codec.wrapper import build_wrapper
from dlmsdoctor.sim.faults import DEFAULT_FRMR_LIMIT, FaultError, parse_faults
from dlmsdoctor.sim.meter import BRIDGE_BUSY_TEXT, IEC62056_21_ID, MeterThread
from tests.sim.wire import RawClient, aarq, i_frame, snrm

QUIET = 0.3  # how long "silence" is watched for


def _kind(frame: bytes) -> object:
    return hdlc.parse_hdlc(frame, 0, "rx").fields.get("frame_type")


def _aare(frame: bytes) -> tuple[int, int]:
    """(result, acse-service-user diagnostic) of an AARE carried in an I-frame."""
    apdu = frame[frame.index(b"\xe6\xe7\x00") + 3 :]
    assert apdu[0] == 0x61
    result = apdu[apdu.index(b"\xa2\x03\x02\x01") + 4]
    diagnostic = apdu[apdu.index(b"\xa3\x05\xa1\x03\x02\x01") + 6]
    return result, diagnostic


def _closed_reason(meter) -> list[object]:  # type: ignore[no-untyped-def]
    return [e["reason"] for e in meter.log.closes()]


def _wait_for_close_events(meter, count: int = 1) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 2
    while len(meter.log.closes()) < count and time.monotonic() < deadline:
        time.sleep(0.01)


# ---- framing ----------------------------------------------------------------------------------


def test_wrapper_only_closes_on_hdlc() -> None:
    with MeterThread("default", ["wrapper-only"]) as meter, RawClient(meter.port) as c:
        c.send(snrm())
        assert c.wait_closed()
        assert c.received == b""
        _wait_for_close_events(meter)
        assert _closed_reason(meter) == ["fault:wrapper-only"]


def test_wrapper_only_silent_ignores_hdlc_but_answers_the_wrapper() -> None:
    with MeterThread("default", ["wrapper-only=silent"]) as meter, RawClient(meter.port) as c:
        c.send(snrm())
        assert c.read_for(QUIET) == b"" and not c.closed
        c.send(build_wrapper(16, 1, aarq()))
        reply = c.read_for(0.5)
        assert reply[:8] == bytes.fromhex("0001 0001 0010") + len(reply[8:]).to_bytes(2, "big")
        assert reply[8] == 0x61  # AARE


def test_hdlc_only_close_on_wrapper() -> None:
    with MeterThread("wrapper", ["hdlc-only=close"]) as meter, RawClient(meter.port) as c:
        c.send(build_wrapper(16, 1, aarq()))
        assert c.wait_closed()
        assert c.received == b""


def test_hdlc_only_is_silent_to_the_wrapper_by_default_and_speaks_hdlc() -> None:
    with MeterThread("wrapper", ["hdlc-only"]) as meter, RawClient(meter.port) as c:
        c.send(build_wrapper(16, 1, aarq()))
        assert c.read_for(QUIET) == b"" and not c.closed
        assert _kind(c.exchange(snrm())) == "UA"


def test_without_framing_faults_the_other_framing_is_ignored() -> None:
    with MeterThread("wrapper") as meter, RawClient(meter.port) as c:
        c.send(snrm())
        assert c.read_for(QUIET) == b"" and not c.closed
    with MeterThread("default") as meter, RawClient(meter.port) as c:
        c.send(build_wrapper(16, 1, aarq()))
        assert c.read_for(QUIET) == b"" and not c.closed
        assert _kind(c.exchange(snrm())) == "UA"


# ---- addressing ---------------------------------------------------------------------------------


def test_wrong_address_is_silent_then_right_address_answers() -> None:
    with MeterThread("default") as meter, RawClient(meter.port) as c:
        c.send(snrm(ServerAddress(1, 17, 2)))
        c.send(snrm(ServerAddress(1, None, 1)))  # right logical, wrong size
        assert c.read_for(QUIET) == b"" and not c.closed
        assert _kind(c.exchange(snrm())) == "UA"


def test_wrong_address_close() -> None:
    with MeterThread("default", ["wrong-address=close"]) as meter, RawClient(meter.port) as c:
        c.send(snrm(ServerAddress(1, 17, 2)))
        assert c.wait_closed()
        assert c.received == b""
        _wait_for_close_events(meter)
        assert _closed_reason(meter) == ["fault:wrong-address"]


def test_serial_derived_address_needs_four_bytes() -> None:
    with MeterThread("serial-derived") as meter, RawClient(meter.port) as c:
        assert meter.profile.server_physical == 12345678 % 10000 + 1000
        c.send(snrm(ServerAddress(1, 1, 2)))
        assert c.read_for(QUIET) == b""
        assert _kind(c.exchange(snrm(ServerAddress(1, 6678, 4)))) == "UA"


# ---- logins and lockout -------------------------------------------------------------------------


def test_lockout_after_n_failures_then_even_the_right_password_fails() -> None:
    with MeterThread("default", ["lockout=2,0.6"]) as meter:
        with RawClient(meter.port) as c:
            assert _kind(c.exchange(snrm(client_sap=1))) == "UA"
            outcomes = []
            for ns, password in enumerate(("wrong-1", "wrong-2", "00000000")):
                reply = c.exchange(i_frame(aarq(1, password), ns, ns, client_sap=1))
                outcomes.append(_aare(reply))
            assert outcomes == [(1, 13), (1, 13), (1, 13)]
        lockouts = meter.log.of("lockout")
        assert [e["state"] for e in lockouts] == ["locked"]
        assert meter.failed_logins() == 3
        # While locked, a new connection is closed after its first frame, without a byte.
        with RawClient(meter.port) as c2:
            c2.send(snrm(client_sap=1))
            assert c2.wait_closed()
            assert c2.received == b""
        time.sleep(0.65)
        assert [e["state"] for e in meter.log.of("lockout")] == ["locked", "unlocked"]
        with RawClient(meter.port) as c3:
            assert _kind(c3.exchange(snrm(client_sap=1))) == "UA"
            assert _aare(c3.exchange(i_frame(aarq(1, "00000000"), 0, 0, client_sap=1))) == (0, 0)
        assert [e["state"] for e in meter.log.of("lockout")] == ["locked", "unlocked"]
        assert "fault:lockout" in _closed_reason(meter)


def test_a_public_association_does_not_clear_the_failed_password_count() -> None:
    # Real meters count wrong passwords until a right one: the public client (no password) in
    # between must not reset the count, or a poller retrying a stale password never locks.
    with MeterThread("default", ["lockout=2,30"]) as meter:
        with RawClient(meter.port) as c:
            assert _kind(c.exchange(snrm(client_sap=1))) == "UA"
            assert _aare(c.exchange(i_frame(aarq(1, "wrong-1"), 0, 0, client_sap=1))) == (1, 13)
        with RawClient(meter.port) as c:
            assert _kind(c.exchange(snrm(client_sap=16))) == "UA"
            assert _aare(c.exchange(i_frame(aarq(16), 0, 0, client_sap=16))) == (0, 0)
        with RawClient(meter.port) as c:
            assert _kind(c.exchange(snrm(client_sap=1))) == "UA"
            assert _aare(c.exchange(i_frame(aarq(1, "wrong-2"), 0, 0, client_sap=1))) == (1, 13)
        assert [e["state"] for e in meter.log.of("lockout")] == ["locked"]


# ---- sessions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["close", "dm"])
def test_single_session(mode: str) -> None:
    with MeterThread("default", [f"single-session={mode}"]) as meter, RawClient(meter.port) as a:
        assert _kind(a.exchange(snrm())) == "UA"
        with RawClient(meter.port) as b:
            if mode == "close":
                b.send(snrm())
                assert b.wait_closed()
                assert b.received == b""
            else:
                assert _kind(b.exchange(snrm())) == "DM"
        # the first session is untouched
        assert _aare(a.exchange(i_frame(aarq(), 0, 0))) == (0, 0)


def test_dm_on_snrm() -> None:
    with MeterThread("default", ["dm-on-snrm"]) as meter, RawClient(meter.port) as c:
        assert _kind(c.exchange(snrm())) == "DM"


def test_frmr_for_frames_longer_than_max_info() -> None:
    too_long = aarq() + bytes(200)  # > 128 bytes of information field
    with MeterThread("default", ["frmr-too-long"]) as meter, RawClient(meter.port) as c:
        c.exchange(snrm())
        frmr = c.exchange(i_frame(too_long, 0, 0))
        decoded = hdlc.parse_hdlc(frmr, 0, "rx")
        assert decoded.fields["frame_type"] == "FRMR"
        info = frmr[decoded.fields["info_offset"] : -3]  # type: ignore[misc]
        assert info[2] & hdlc.FRMR_INFO_TOO_LONG
    with MeterThread("default") as meter, RawClient(meter.port) as c:
        c.exchange(snrm())
        c.send(i_frame(too_long, 0, 0))
        assert c.read_for(QUIET) == b""  # without the fault: ignored, as many meters do


def test_frmr_too_long_takes_exactly_n_bytes_whatever_the_ua_says() -> None:
    """frmr-too-long=N: the UA still advertises the negotiated size (128), but the meter takes
    only N bytes of information field: a frame of N bytes passes, N + 1 gets FRMR."""
    fits = i_frame(aarq(), 0, 0)  # the public AARQ with its LLC header
    n = hdlc.parse_hdlc(fits, 0, "tx").fields["info_length"]
    assert isinstance(n, int)
    one_more = i_frame(aarq() + b"\x00", 0, 0)
    assert hdlc.parse_hdlc(one_more, 0, "tx").fields["info_length"] == n + 1
    with MeterThread("default", [f"frmr-too-long={n}"]) as meter:
        with RawClient(meter.port) as c:
            ua = c.exchange(snrm())
            params = hdlc.parse_params(ua[hdlc.parse_hdlc(ua, 0, "rx").fields["info_offset"]:-3])
            assert params is not None and params.max_info_rx == 128 > n
            assert _aare(c.exchange(fits)) == (0, 0)
        with RawClient(meter.port) as c:
            c.exchange(snrm())
            frmr = c.exchange(one_more)
            decoded = hdlc.parse_hdlc(frmr, 0, "rx")
            assert decoded.fields["frame_type"] == "FRMR"
            info = frmr[decoded.fields["info_offset"] : -3]  # type: ignore[misc]
            assert info[2] & hdlc.FRMR_INFO_TOO_LONG
    notes = [e["note"] for e in meter.log.of("frame.note")]
    assert f"fault: FRMR, information field {n + 1} > {n}" in notes


def test_frmr_too_long_default_limit_is_48_bytes() -> None:
    assert parse_faults(["frmr-too-long"]).frmr_limit == DEFAULT_FRMR_LIMIT == 48
    assert parse_faults(["frmr-too-long=60"]).frmr_limit == 60
    for bad in ("frmr-too-long=0", "frmr-too-long=x"):
        with pytest.raises(FaultError):
            parse_faults([bad])


# ---- timing -------------------------------------------------------------------------------------


def test_delay() -> None:
    with MeterThread("default", ["delay=0.2"]) as meter, RawClient(meter.port) as c:
        start = time.monotonic()
        assert _kind(c.exchange(snrm())) == "UA"
        assert 0.2 <= time.monotonic() - start < 1.0


def test_latency_is_paid_in_each_direction() -> None:
    with MeterThread("default", ["latency=0.1"]) as meter, RawClient(meter.port) as c:
        start = time.monotonic()
        assert _kind(c.exchange(snrm())) == "UA"
        assert 0.2 <= time.monotonic() - start < 1.0


def test_inactivity_closes_an_idle_connection_and_drops_the_association() -> None:
    with MeterThread("default", ["inactivity=0.3"]) as meter, RawClient(meter.port) as c:
        c.exchange(snrm())
        assert _aare(c.exchange(i_frame(aarq(), 0, 0))) == (0, 0)
        start = time.monotonic()
        assert c.wait_closed(2.0)
        assert 0.25 <= time.monotonic() - start < 1.5
        _wait_for_close_events(meter)
        assert _closed_reason(meter) == ["inactivity"]
        assert [e["how"] for e in meter.unreleased_associations()] == ["inactivity"]
        assert meter.open_associations() == []


# ---- corrupted replies --------------------------------------------------------------------------


def test_garbage_reply() -> None:
    with MeterThread("default", ["garbage-reply"]) as meter, RawClient(meter.port) as c:
        c.send(snrm())
        got = c.read_for(QUIET)
        assert got and b"\x7e" not in got
        assert all(ch.kind is not FrameKind.HDLC for ch in split_stream(got, direction="rx"))


def test_bad_fcs() -> None:
    with MeterThread("default", ["bad-fcs"]) as meter, RawClient(meter.port) as c:
        ua = c.exchange(snrm())
        codes = [f.code for f in hdlc.parse_hdlc(ua, 0, "rx").findings]
        assert "hdlc.fcs.mismatch" in codes
        assert hdlc.parse_hdlc(ua, 0, "rx").fields["frame_type"] == "UA"


def test_cut_reply_then_close() -> None:
    with MeterThread("default", ["cut-reply"]) as meter, RawClient(meter.port) as c:
        c.send(snrm())
        assert c.wait_closed()
        got = bytes(c.received)
        assert got[:1] == b"\x7e" and hdlc.frame_extent(got, 0) is None  # a frame's first half
        full = hdlc.build_ua(ServerAddress(1, 1, 2), 16, hdlc.HdlcParams())
        assert full.startswith(got) and len(got) < len(full)


def test_stale_bytes_arrive_before_anything_is_sent() -> None:
    with MeterThread("default", ["stale-bytes"]) as meter, RawClient(meter.port) as c:
        stale = c.read_for(QUIET)
        assert stale
        kinds = [ch.kind for ch in split_stream(stale, direction="rx")]
        assert FrameKind.HDLC in kinds and kinds[0] is not FrameKind.HDLC
        assert _kind(c.exchange(snrm())) == "UA"  # the meter itself works


# ---- other protocols on the line ---------------------------------------------------------------


def test_iec62056_21_identification_instead_of_hdlc() -> None:
    with MeterThread("default", ["iec62056-21"]) as meter, RawClient(meter.port) as c:
        c.send(snrm())
        got = c.read_for(QUIET)
        assert got == IEC62056_21_ID
        assert split_stream(got, direction="rx")[0].kind is FrameKind.IEC62056_21


def test_echo_returns_every_byte_before_the_answer() -> None:
    with MeterThread("default", ["echo"]) as meter, RawClient(meter.port) as c:
        request = snrm()
        c.send(request)
        got = c.read_for(QUIET)
        assert got.startswith(request)
        assert _kind(got[len(request) :]) == "UA"


def test_bridge_busy_text_then_close() -> None:
    with MeterThread("default", ["bridge-busy"]) as meter, RawClient(meter.port) as c:
        assert c.wait_closed()
        assert bytes(c.received) == BRIDGE_BUSY_TEXT
        assert split_stream(bytes(c.received), direction="rx")[0].kind is FrameKind.BRIDGE_MESSAGE


def test_faults_combine() -> None:
    faults = ["echo", "delay=0.1", "bad-fcs"]
    with MeterThread("default", faults) as meter, RawClient(meter.port) as c:
        request = snrm()
        start = time.monotonic()
        c.send(request)
        echoed = c.read_for(0.05)
        assert echoed == request  # the echo comes at once, the reply only after the delay
        ua = c.frame()
        assert time.monotonic() - start >= 0.1
        assert any(f.code == "hdlc.fcs.mismatch" for f in hdlc.parse_hdlc(ua, 0, "rx").findings)
