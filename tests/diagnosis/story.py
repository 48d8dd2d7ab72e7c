"""Build Sessions by hand, event by event, through the engine's own Recorder.

A ``Story`` plays the events a probe run would emit (with real frames from the codec's builders),
so that diagnosis rules are tested on the same Session shape the engine produces, without a
network. Times advance explicitly (``dt``) so rules that look at "right after" and "idle" can be
pinned.
"""

from __future__ import annotations

from dlmsdoctor.codec.hdlc import ServerAddress
from dlmsdoctor.codec.model import Severity
from dlmsdoctor.engine import ProbeOptions
from dlmsdoctor.events import (
    CloseHow,
    ConnectionClosed,
    ConnectionFailed,
    ConnectionOpened,
    FindingRaised,
    FrameReceived,
    FrameSent,
    LoginAttempted,
    PingReplied,
    PingSent,
    StepFinished,
    StepStarted,
    StepStatus,
)
from dlmsdoctor.recorder import Recorder
from dlmsdoctor.session import Session
from tests.helpers.dlms_frames import (
    A11,
    AARE_OK,
    AARQ_PUBLIC,
    RLRE,
    RLRQ,
    disc,
    i_rx,
    i_tx,
    snrm,
    ua,
)


class Story:
    def __init__(self, host: str = "10.0.0.5", port: int = 3333, **options: object) -> None:
        self.recorder = Recorder(ProbeOptions(host=host, port=port, **options))  # type: ignore[arg-type]
        self.t = 0.0
        self.conn_id = 0
        self.host, self.port = host, port

    @property
    def session(self) -> Session:
        return self.recorder.session

    def _tick(self, dt: float) -> float:
        self.t += dt
        return self.t

    # -- rungs -------------------------------------------------------------------------------
    def step(
        self,
        step_id: str,
        layer: str,
        status: StepStatus = StepStatus.OK,
        summary: str = "",
        dt: float = 0.0,
        **details: object,
    ) -> Story:
        self.recorder.add(StepStarted(step_id, step_id, layer, self.t))
        self.recorder.add(StepFinished(step_id, status, summary, self._tick(dt), dict(details)))
        return self

    def ping(self, sent: int = 3, received: int = 0, rtt: float = 0.1) -> Story:
        self.recorder.add(StepStarted("icmp.ping", "ping", "icmp", self.t))
        for seq in range(sent):
            self.recorder.add(PingSent("icmp.ping", self._tick(0.01), 1, seq, b"x"))
            if seq < received:
                self.recorder.add(PingReplied("icmp.ping", self._tick(rtt), 1, seq, b"x", rtt))
        status = StepStatus.OK if received else StepStatus.FAILED
        self.recorder.add(
            StepFinished(
                "icmp.ping",
                status,
                "",
                self.t,
                {"sent": sent, "received": received, "rtt_avg": rtt if received else None},
            )
        )
        return self

    def connect(self, connect_time: float = 0.015) -> int:
        self.conn_id += 1
        self.recorder.add(
            ConnectionOpened(
                self.conn_id, self.host, self.port, self._tick(connect_time), connect_time
            )
        )
        return self.conn_id

    def connect_fails(self, reason: str, dt: float = 10.0) -> Story:
        self.conn_id += 1
        self.recorder.add(
            ConnectionFailed(self.conn_id, self.host, self.port, self._tick(dt), reason, reason, dt)
        )
        self.recorder.add(
            FindingRaised("tcp.connect", f"tcp.{reason}", Severity.ERROR, reason, self.t)
        )
        return self.step("tcp.connect", "tcp", StepStatus.FAILED, reason)

    def tx(self, data: bytes, step: str = "hdlc.snrm", dt: float = 0.001) -> int:
        self.recorder.add(FrameSent(self.conn_id, step, self._tick(dt), data))
        return len(self.session.frames) - 1

    def rx(self, data: bytes, step: str = "hdlc.snrm", dt: float = 0.05) -> int:
        self.recorder.add(FrameReceived(self.conn_id, step, self._tick(dt), data))
        return len(self.session.frames) - 1

    def wait(self, dt: float) -> Story:
        self._tick(dt)
        return self

    def close(self, by_peer: bool = True, how: CloseHow = CloseHow.FIN, dt: float = 0.01) -> Story:
        if not by_peer:
            how = CloseHow.LOCAL
        self.recorder.add(ConnectionClosed(self.conn_id, self._tick(dt), how, by_peer))
        return self

    def finding(
        self,
        code: str,
        step: str = "",
        severity: Severity = Severity.WARNING,
        frames: tuple[int, ...] = (),
        **data: object,
    ) -> Story:
        self.recorder.add(FindingRaised(step, code, severity, code, self.t, frames, dict(data)))
        return self

    def login(
        self,
        credential: str,
        sap: int,
        mechanism: str,
        outcome: str,
        diagnostic: str = "",
        step: str = "",
    ) -> Story:
        self.recorder.add(
            LoginAttempted(
                step or f"assoc.login.{credential}",
                self.t,
                credential,
                sap,
                mechanism,
                outcome,
                diagnostic,
            )
        )
        return self

    # -- common sequences ----------------------------------------------------------------------
    def public_association(self, addr: ServerAddress = A11, step: str = "assoc.public") -> Story:
        """UA already up: AARQ public, AARE accepted, login recorded."""
        self.tx(i_tx(AARQ_PUBLIC, addr), step)
        self.rx(i_rx(AARE_OK, addr), step)
        return self.login("public", 16, "none", "accepted", step=step)

    def release(self, addr: ServerAddress = A11) -> Story:
        self.tx(i_tx(RLRQ, addr, ns=1, nr=1), "release")
        self.rx(i_rx(RLRE, addr, ns=1, nr=2), "release")
        self.tx(disc(addr), "release")
        self.rx(ua(addr), "release")
        self.close(by_peer=False)
        return self.step("release", "release")

    def healthy(self, addr: ServerAddress = A11) -> Story:
        """Ping ok, TCP ok, SNRM/UA, public association accepted, released."""
        self.ping(received=3)
        self.connect()
        self.step("tcp.connect", "tcp")
        self.tx(snrm(addr))
        self.rx(ua(addr))
        self.step("hdlc.snrm", "hdlc")
        self.public_association(addr)
        self.step("assoc.public", "association")
        return self.release(addr)


def recovered_link_late_release() -> Story:
    """A run whose framing detection met silence at the defaults and whose address discovery
    then found the meter (a recovered rung), and whose RLRE came after the release's wait
    ("release confirmed late": a note, never a cause)."""
    from tests.helpers.dlms_frames import RLRE, RLRQ, i_rx, i_tx, snrm, ua

    story = Story()
    story.connect()
    story.step("tcp.connect", "tcp")
    story.tx(snrm(), "framing.detect", dt=0.3)
    story.step("framing.detect", "framing", StepStatus.FAILED, "no answer")
    story.tx(snrm(), "address.discover")
    story.rx(ua(), "address.discover")
    story.step("address.discover", "address")
    story.public_association()
    story.step("assoc.public", "association")
    story.tx(i_tx(RLRQ, ns=1, nr=1), "release")
    story.rx(i_rx(RLRE, ns=1, nr=2), "release", dt=2.0)  # after the wait
    story.step("release", "release", StepStatus.FAILED, "no RLRE in time")
    return story
