"""Hand-made sessions for the TUI tests: real frame bytes (built with the codec), fixed times.

The story: a meter behind a bridge; SNRM to the wrong address goes unanswered, SNRM to 1/17 gets
a UA, the LLS login is rejected (authentication-failure), and one RX frame has a broken FCS.
"""

from __future__ import annotations

from dlmsdoctor.codec.hdlc import ServerAddress, build_disc, build_i, build_snrm, build_ua
from dlmsdoctor.events import Direction, StepStatus
from dlmsdoctor.session import (
    Action,
    Cause,
    ConnectionProfile,
    ConnectionRecord,
    Diagnosis,
    Evidence,
    FrameRecord,
    LoginRecord,
    ProbeFinding,
    Session,
    StepRecord,
    Target,
)
from dlmsdoctor.widgets.frame_decode import classify

SERVER = ServerAddress(1, 17, 2)
WRONG = ServerAddress(1, 1, 2)
# AARQ, LN referencing, LLS with password "12345678" (a secret the views must mask).
AARQ = bytes.fromhex(
    "6036A109060760857405080101"
    "8A0207808B0760857405080201"
    "AC0A80083132333435363738"
    "BE10040E01000000065F1F0400001E1DFFFF"
)
# AARE rejected-permanent, acse-service-user diagnostic 13 (authentication-failure).
AARE_AUTH_FAIL = bytes.fromhex(
    "6129A109060760857405080101A203020101A305A10302010DBE10040E0800065F1F040000101D00800007"
)


def _frame(index: int, direction: Direction, at: float, data: bytes, step: str) -> FrameRecord:
    kind, summary, findings = classify(data, direction.value)
    return FrameRecord(
        index, 1, direction, at, data, step, kind, summary=summary, findings=findings
    )


def story_frames() -> list[FrameRecord]:
    snrm_wrong = build_snrm(WRONG, 16)
    snrm = build_snrm(SERVER, 1)
    ua = build_ua(SERVER, 1)
    aarq = build_i(SERVER, 1, to_server=True, ns=0, nr=0, info=AARQ)
    aare = build_i(SERVER, 1, to_server=False, ns=0, nr=1, info=AARE_AUTH_FAIL)
    broken = bytearray(aare)
    broken[-2] ^= 0xFF  # wrong FCS: the decoder must flag it
    disc = build_disc(SERVER, 1)
    rows = [
        (Direction.TX, 0.120, snrm_wrong, "hdlc.snrm"),
        (Direction.TX, 1.130, snrm, "hdlc.snrm#2"),
        (Direction.RX, 1.190, ua, "hdlc.snrm#2"),
        (Direction.TX, 1.200, aarq, "assoc.login"),
        (Direction.RX, 1.310, aare, "assoc.login"),
        (Direction.RX, 1.320, bytes(broken), "assoc.login"),
        (Direction.RX, 1.400, b"Port already in use\r\n", "assoc.login"),
        (Direction.TX, 1.500, disc, "release.disc"),
    ]
    return [_frame(i, d, at, data, step) for i, (d, at, data, step) in enumerate(rows)]


def story_session() -> Session:
    frames = story_frames()
    steps = [
        StepRecord("tcp.connect", "TCP connect", "tcp", StepStatus.OK, 0.0, 0.05, "connected"),
        StepRecord("hdlc.snrm", "SNRM 1/1", "hdlc", StepStatus.FAILED, 0.1, 1.1, "no answer"),
        StepRecord("hdlc.snrm#2", "SNRM 1/17", "hdlc", StepStatus.OK, 1.1, 1.2, "UA"),
        StepRecord(
            "assoc.login",
            "Login (mgmt)",
            "association",
            StepStatus.FAILED,
            1.2,
            1.45,
            "rejected: authentication-failure",
        ),
        StepRecord(
            "cosem.identity", "Identity", "cosem", StepStatus.SKIPPED, summary="needs login"
        ),
        StepRecord("release.disc", "Release", "release", StepStatus.OK, 1.5, 1.6, "DISC sent"),
    ]
    finding = ProbeFinding(
        "assoc.login",
        "assoc.auth_failure",
        "error",
        "The meter rejected the password (authentication-failure).",
        1.31,
        frames=[4],
    )
    diagnosis = Diagnosis(
        status="failed",
        headline="The meter rejected the password of credential set 'mgmt'.",
        causes=[
            Cause(
                "hdlc.wrong_address",
                "The configured server address 1/1 is wrong",
                0.55,
                "client",
                "The meter answered SNRM only at 1/17.",
                evidence=[
                    Evidence("no answer to SNRM at 1/1", frame=0),
                    Evidence("UA at 1/17", frame=2),
                ],
                actions=[Action("Set the server address to 1/17 (2-byte)")],
            ),
            Cause(
                "auth.wrong_password",
                "Wrong password for client 1",
                0.9,
                "client",
                "The AARE says authentication-failure (diagnostic 13).",
                evidence=[
                    Evidence("AARE rejected, diagnostic 13", finding="assoc.auth_failure"),
                    Evidence("the AARQ that carried the password", frame=3),
                ],
                actions=[
                    Action("Check the LLS password of the management client"),
                    Action("Wait 15 minutes before another try", when="later"),
                ],
            ),
        ],
        profile=ConnectionProfile("192.0.2.10", 4059, "hdlc", 1, 17, 2, 16, "none"),
    )
    return Session(
        id="20260101-000000-story",
        tool_version="0.1.0",
        started_at="2026-01-01T00:00:00+00:00",
        target=Target("192.0.2.10", 4059, "hdlc", "1/17", 2, None),
        finished_at="2026-01-01T00:00:02+00:00",
        duration=1.6,
        steps=steps,
        frames=frames,
        connections=[ConnectionRecord(1, "192.0.2.10", 4059, 0.0, 0.05)],
        findings=[finding],
        logins=[
            LoginRecord("assoc.login", 1.31, "mgmt", 1, "low", "rejected", "authentication-failure")
        ],
        diagnosis=diagnosis,
    )


def big_session(count: int) -> Session:
    """A session with ``count`` frames (the same few real frames over and over)."""
    base = story_frames()
    session = story_session()
    session.frames = [
        FrameRecord(
            i,
            1,
            base[i % len(base)].direction,
            i * 0.01,
            base[i % len(base)].data,
            base[i % len(base)].step_id,
            base[i % len(base)].kind,
            base[i % len(base)].summary,
            base[i % len(base)].findings,
        )
        for i in range(count)
    ]
    return session
