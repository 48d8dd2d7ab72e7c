"""Whatever bytes the poller and the meter exchange, in whatever pieces and whatever order of
closes, the tap's decode, analysis and diagnosis never raise (it must keep recording)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec.hdlc import ServerAddress, build_disc, build_i, build_snrm, build_ua
from dlmsdoctor.events import CloseHow
from dlmsdoctor.tap.core import Tap, TapOptions

A = ServerAddress(1, 17, 2)
PIECES = [
    build_snrm(A, 16), build_ua(A, 16), build_disc(A, 16),
    build_i(A, 16, to_server=True, ns=0, nr=0,
            info=bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFF")),
    build_i(A, 16, to_server=False, ns=0, nr=1,
            info=bytes.fromhex("6129A109060760857405080101A203020101A305A10302010DBE10040E08"
                               "00065F1F040000101D04000007")),
    build_i(A, 16, to_server=True, ns=1, nr=1, info=bytes.fromhex("C001C1000100002A0000FF0200")),
    build_i(A, 16, to_server=False, ns=1, nr=2, info=bytes.fromhex("C401C200090241")),
    b"Port already in use\r\n", b"\x00\x01\x00\x10\x00\x01\x00\x05\x62\x03\x80\x01\x00",
    bytes.fromhex("7EA0210203219373568180120502008006020080070400000001080400000001A6D97E"),
]
piece = st.one_of(st.sampled_from(PIECES), st.binary(max_size=40))
event = st.one_of(
    st.tuples(st.sampled_from(["poller", "meter"]), piece,
              st.integers(min_value=0, max_value=40)),
    st.tuples(st.just("close"), st.sampled_from(["poller", "meter"]),
              st.sampled_from([CloseHow.FIN, CloseHow.RST])),
    st.tuples(st.just("new"), st.just(b""), st.just(0)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(event, max_size=30))
def test_the_analysis_never_raises(events: list[tuple[object, object, object]]) -> None:
    tap = Tap(TapOptions("127.0.0.1", 0, "127.0.0.1", 1, keep_frames=20))
    conn, at = 1, 0.0
    tap._opened(conn, "127.0.0.1:5000", at, 0.001, ("127.0.0.1", 6000))
    for kind, a, b in events:
        at += 0.1
        if kind == "new":
            tap._ended(conn, at)
            conn += 1
            tap._opened(conn, f"127.0.0.1:{5000 + conn}", at, 0.001, ("127.0.0.1", 6000))
        elif kind == "close":
            tap._closed(conn, str(a), at, b)  # type: ignore[arg-type]
        else:
            data = bytes(a)  # type: ignore[arg-type]
            cut = min(int(b), len(data))  # type: ignore[call-overload]
            for part in (data[:cut], data[cut:]):
                if part:
                    tap._data(conn, str(kind), at, part)
    session = tap.finish("test")
    assert session.diagnosis is not None
    assert tap.internal_errors == 0
