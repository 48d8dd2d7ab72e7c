"""The one fixture module of the TUI tests: hand-made sessions, and the simulated meters the live
tests drive the app against, with what every such test needs around them.

Sessions: real frame bytes (built with the codec), fixed times. The story: a meter behind a
bridge; SNRM to the wrong address goes unanswered, SNRM to 1/17 gets a UA, the LLS login is
rejected (authentication-failure), and one RX frame has a broken FCS.

Meters: ``tcp_meter`` (the simulated meter on 127.0.0.1, a free port), ``serial_meter`` (the
same on a pseudo-terminal, optionally behind an optical head); ``story_at(port)`` is the story
whose working profile is that meter (what the object browser connects with); ``write_config``,
``record_ladder`` and ``Keys`` are the config file, the ladder's states and the counted keys of
the tests that probe them. ``tests/tui/conftest.py`` holds the pytest fixtures built on these.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from textual.pilot import Pilot

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
from dlmsdoctor.sim.meter import SimulatedMeter
from dlmsdoctor.sim.profile import Profile
from dlmsdoctor.widgets.frame_decode import classify
from dlmsdoctor.widgets.ladder import Ladder
from tests.engine.pty_meter import pty_meter as serial_meter

__all__ = ["serial_meter"]  # the pty meter of tests/engine, for the TUI's serial tests

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


# -- meters ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def tcp_meter(
    profile: str | Profile = "default", faults: Sequence[str] = ()
) -> AsyncIterator[SimulatedMeter]:
    """The simulated meter listening on 127.0.0.1 (a free port: ``meter.port``), stopped after."""
    async with SimulatedMeter(profile, list(faults)) as meter:
        assert meter.port is not None
        yield meter


def story_at(port: int, **profile: object) -> Session:
    """The story session whose working profile is the meter on ``port`` (public client 16 by
    default; ``client_sap=1, authentication="low", credential="mgmt"`` for a set)."""
    session = story_session()
    assert session.diagnosis is not None
    fields: dict[str, object] = {"client_sap": 16, "authentication": "none", **profile}
    session.diagnosis.profile = ConnectionProfile(
        "127.0.0.1", port, "hdlc", 1, 1, 2, **fields  # type: ignore[arg-type]
    )
    return session


def mgmt_set(password: str) -> str:
    """The config's credential set ``mgmt``: client 1, LLS with ``password``."""
    return f'[credentials.mgmt]\nclient_sap = 1\nauth = "low"\npassword = "{password}"\n'


def write_config(root: Path, text: str) -> Path:
    """``text`` as the config file under ``root`` (the hermetic dirs' config folder)."""
    folder = root / "config"
    folder.mkdir(exist_ok=True)
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def record_ladder(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, StepStatus]]:
    """Every (rung, state) the ladder is asked to show, in order."""
    seen: list[tuple[str, StepStatus]] = []
    original = Ladder.update_step

    def spy(self: Ladder, step: StepRecord) -> None:
        seen.append((step.id, step.status))
        original(self, step)

    monkeypatch.setattr(Ladder, "update_step", spy)
    return seen


class Keys:
    """Presses keys and counts them (typed text counts one key a character)."""

    def __init__(self, pilot: Pilot) -> None:
        self.pilot = pilot
        self.count = 0

    async def __call__(self, *keys: str) -> None:
        for key in keys:
            await self.pilot.press(key)
            self.count += 1
        await self.pilot.pause()

    async def type(self, text: str) -> None:
        await self(*text)

    async def settle(self) -> None:
        await self.pilot.app.workers.wait_for_complete()
        await self.pilot.pause()

    async def probe(self, port: int) -> None:
        """From the app's first screen: ``127.0.0.1:PORT`` in Host, ctrl+r, the run's end."""
        await self.settle()
        await self.type(f"127.0.0.1:{port}")
        await self("ctrl+r")
        await self.settle()


def browse_session() -> Session:
    """A browsing session of the story's meter as the object browser records it (kind
    "browse"): the rungs to the association, three reads (one refused), the release."""
    session = story_session()
    ok, warn = StepStatus.OK, StepStatus.WARNING
    session.id = "20260101-000500-browse"
    session.kind = "browse"
    session.steps = [
        StepRecord("tcp.connect", "TCP connection", "tcp", ok, 0.0, 0.05, "connected in 1 ms"),
        StepRecord("hdlc.snrm", "HDLC link (SNRM/UA)", "hdlc", ok, 0.05, 0.1,
                   "UA from 1/17 (2-byte): max info 128/128, window 1/1"),
        StepRecord("assoc.public", "Public association (client 16, no authentication)",
                   "association", ok, 0.1, 0.15, "accepted: client 16, none, max PDU 1024"),
        StepRecord("browse", "Object browser (GET only)", "cosem", warn, 0.15, 9.5,
                   "3 read(s), 1 refused or unanswered; closed by the user"),
        StepRecord("browse.get.1", "GET 0.0.40.0.0.255 class 15 attribute 2", "cosem", ok,
                   0.15, 0.2, "0.0.40.0.0.255 object_list = 9 objects"),
        StepRecord("browse.get.2", "GET 1.0.32.7.0.255 class 3 attribute 2", "cosem", ok,
                   4.0, 4.1, "1.0.32.7.0.255 value = 230.5 V  (raw 2305, scaler -1)"),
        StepRecord("browse.get.3", "GET 0.0.96.1.0.255 class 1 attribute 2", "cosem", warn,
                   7.0, 7.1, "0.0.96.1.0.255 value: read-write-denied",
                   {"error": "read-write-denied"}),
        StepRecord("release", "Release (RLRQ, DISC, TCP close)", "release", ok, 9.5, 9.6,
                   "RLRQ/RLRE, DISC/UA, TCP FIN"),
    ]
    session.findings, session.logins = [], []
    assert session.diagnosis is not None
    session.diagnosis = Diagnosis(
        "ok", "The meter works: HDLC server 1/17 (2-byte), client 16, authentication none.",
        profile=ConnectionProfile("192.0.2.10", 4059, "hdlc", 1, 17, 2, 16, "none"))
    return session
