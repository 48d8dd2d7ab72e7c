"""A hand-built Session that tells the seed story (../shared/seed/ESTADO_MEDIDOR_2.md), fixed.

1. Ping: 4/4 replies, ~100 ms.
2. TCP connect to the bridge: it answers ``Port already in use`` and closes (the user's poller
   holds the single ser2net connection).
3. Second connection: the poller's own SNRM (parameter group length 18 for 20 bytes, to 1/1),
   silence; a corrected SNRM to 1/1, silence; closed by us.
4. Third connection: SNRM to the address derived from the serial number (12345678 % 10000 + 1000 =
   6678, 4-byte addressing): UA, AARQ with LLS (password 11111111, a secret), AARE accepted, GET
   serial number, RLRQ/RLRE, DISC/UA, closed by us.

Frames are built with the codec's builders (right HCS/FCS); the APDUs are the standard's bytes,
shared with the diagnosis stories (tests/helpers/dlms_frames.py).
Times are fixed so golden reports are stable.
"""

from __future__ import annotations

from dlmsdoctor.codec.hdlc import HdlcParams, ServerAddress, build_snrm, build_ua
from dlmsdoctor.events import CloseHow, Direction, StepStatus
from dlmsdoctor.session import (
    ConnectionRecord,
    FrameRecord,
    LoginRecord,
    PingRecord,
    ProbeFinding,
    Session,
    StepRecord,
    Target,
)
from tests.helpers.dlms_frames import (
    AARE_OK,
    AARQ_LLS,
    CLIENT,
    GET_SERIAL,
    GET_SERIAL_RESPONSE,
    RLRE,
    RLRQ,
    SERIAL_ADDR,
    disc,
    i_rx,
    i_tx,
    ua,
)

# The poller's SNRM from the seed report: group length 0x12 but 20 parameter bytes follow.
POLLER_SNRM = bytes.fromhex(
    "7EA0210203219373568180120502008006020080070400000001080400000001A6D97E"
)
DEFAULT_ADDR = ServerAddress(1, 1, 2)


def _frames() -> list[FrameRecord]:
    tx, rx = Direction.TX, Direction.RX
    corrected = build_snrm(DEFAULT_ADDR, CLIENT, HdlcParams(), omit_defaults=False)
    rows: list[tuple[int, Direction, float, bytes, str, str]] = [
        (1, rx, 0.512, b"Port already in use\r\n", "tcp.connect", "bridge-message"),
        (2, tx, 2.731, POLLER_SNRM, "hdlc.snrm", "hdlc"),
        (2, tx, 5.733, corrected, "hdlc.snrm", "hdlc"),
        (3, tx, 9.102, build_snrm(SERIAL_ADDR, CLIENT), "address.serial", "hdlc"),
        (3, rx, 9.254, ua(SERIAL_ADDR), "address.serial", "hdlc"),  # 128-byte info, window 1
        (3, tx, 9.260, i_tx(AARQ_LLS, SERIAL_ADDR, ns=0, nr=0), "assoc.login", "hdlc"),
        (3, rx, 9.431, i_rx(AARE_OK, SERIAL_ADDR, ns=0, nr=1), "assoc.login", "hdlc"),
        (3, tx, 9.440, i_tx(GET_SERIAL, SERIAL_ADDR, ns=1, nr=1), "cosem.identity", "hdlc"),
        (3, rx, 9.583, i_rx(GET_SERIAL_RESPONSE, SERIAL_ADDR, ns=1, nr=2), "cosem.identity",
         "hdlc"),
        (3, tx, 9.590, i_tx(RLRQ, SERIAL_ADDR, ns=2, nr=2), "release", "hdlc"),
        (3, rx, 9.722, i_rx(RLRE, SERIAL_ADDR, ns=2, nr=3), "release", "hdlc"),
        (3, tx, 9.730, disc(SERIAL_ADDR), "release", "hdlc"),
        (3, rx, 9.861, build_ua(SERIAL_ADDR, CLIENT), "release", "hdlc"),  # default parameters
    ]
    return [
        FrameRecord(index=i, conn_id=c, direction=d, at=at, data=data, step_id=step, kind=kind)
        for i, (c, d, at, data, step, kind) in enumerate(rows)
    ]


def seed_session() -> Session:
    """The fixed seed-story session (a new object on every call: tests may mutate it)."""
    host, port = "192.168.1.135", 3333
    session = Session(
        id="seed-0001",
        tool_version="0.1.0",
        started_at="2025-11-10T10:21:04.250000+00:00",
        finished_at="2025-11-10T10:21:14.161000+00:00",
        duration=9.911,
        target=Target(host=host, port=port, framing="auto", server_address="1/1",
                      serial_number="12345678"),
        settings={
            "timeouts": {"connect": 5.0, "frame": 3.0},
            "login_budget": 2,
            "credential_sets": ["usuario2"],
            "address_rules": ["as-given", "serial-mod-10000-plus-1000"],
        },
    )
    session.pings = [
        PingRecord(at=0.001 + i * 0.1, ident=0x4D44, seq=i + 1, payload=b"dlmsdoctor" * 3,
                   reply_at=0.001 + i * 0.1 + rtt, rtt=rtt)
        for i, rtt in enumerate((0.0982, 0.1034, 0.0997, 0.1011))
    ]
    session.connections = [
        ConnectionRecord(id=1, host=host, port=port, opened_at=0.497, connect_time=0.0151,
                         closed_at=0.515, close_how=CloseHow.FIN, closed_by_peer=True,
                         local_port=50412, note="bridge busy"),
        ConnectionRecord(id=2, host=host, port=port, opened_at=2.716, connect_time=0.0148,
                         closed_at=8.741, close_how=CloseHow.LOCAL, closed_by_peer=False,
                         local_port=50414),
        ConnectionRecord(id=3, host=host, port=port, opened_at=9.087, connect_time=0.0152,
                         closed_at=9.866, close_how=CloseHow.LOCAL, closed_by_peer=False,
                         local_port=50418),
    ]
    session.frames = _frames()
    session.steps = [
        StepRecord("icmp.ping", "Ping the meter", "icmp", StepStatus.OK, 0.0, 0.402,
                   "4/4 replies, RTT 98.2/100.6/103.4 ms",
                   {"sent": 4, "received": 4, "loss": 0.0, "rtt_min": 0.0982,
                    "rtt_avg": 0.1006, "rtt_max": 0.1034}),
        StepRecord("tcp.connect", "Open TCP to the bridge", "tcp", StepStatus.WARNING, 0.48,
                   2.731, "connected in 15 ms; the bridge said 'Port already in use' and closed",
                   {"connect_time": 0.0151, "attempts": 2}),
        StepRecord("hdlc.snrm", "HDLC link (SNRM) at the configured address", "hdlc",
                   StepStatus.FAILED, 2.731, 8.741,
                   "no answer to SNRM at server 1/1 (2 tries, 3 s each)",
                   {"server_address": "1/1", "address_size": 2, "tries": 2}),
        StepRecord("address.serial", "HDLC link at the serial-derived address", "address",
                   StepStatus.OK, 9.087, 9.254, "UA from server 1/6678 (4-byte) in 152 ms",
                   {"server_address": "1/6678", "address_size": 4, "rule":
                    "serial-mod-10000-plus-1000", "max_info_tx": 128, "max_info_rx": 128,
                    "window_tx": 1, "window_rx": 1, "rtt": 0.152}),
        StepRecord("assoc.login", "Association (AARQ/AARE)", "association", StepStatus.OK,
                   9.26, 9.431, "accepted: client 16, LLS, credential set 'usuario2'",
                   {"client_sap": 16, "mechanism": "low", "max_pdu_size": 512}),
        StepRecord("cosem.identity", "Read identity objects", "cosem", StepStatus.OK, 9.44,
                   9.583, "serial number 12345678", {"serial_number": "12345678"}),
        StepRecord("release", "Release and disconnect", "release", StepStatus.OK, 9.59, 9.866,
                   "RLRE and UA received; TCP closed by us", {}),
    ]
    session.findings = [
        ProbeFinding("tcp.connect", "bridge.busy", "warning",
                     "the bridge answered 'Port already in use' and closed: another client "
                     "holds its single connection", 0.512, [0]),
        ProbeFinding("hdlc.snrm", "hdlc.params.group_length", "error",
                     "the poller's SNRM says group length 18 but 20 bytes follow", 2.731, [1]),
        ProbeFinding("hdlc.snrm", "hdlc.no_answer", "error",
                     "no answer to SNRM at server 1/1 within 3 s (2 tries)", 8.741, [1, 2]),
    ]
    session.logins = [
        LoginRecord("assoc.login", 9.26, "usuario2", 16, "low", "accepted"),
    ]
    session.identity = {"serial_number": "12345678"}
    # The diagnosis is today's rules over these frames, not hand-written causes: a report in
    # any language then says what `dlmsdoctor probe` would say (QA: the English report showed
    # invented causes the Spanish one, translated by code, did not).
    from dlmsdoctor.diagnosis import diagnose

    session.diagnosis = diagnose(session)
    return session
