"""What every probe shares: the ``Probe`` base, the facts earlier rungs found, and the context.

A probe is a small class with an ``id`` (its step id), a ``layer`` and what it ``requires``
(step ids that must have ended OK or WARNING). ``run(ctx)`` is an async generator of
``dlmsdoctor.events``; the I/O helpers of ``ProbeContext`` (in ``probes/wire.py``) emit their
frame and connection events themselves through ``ctx.emit``, in order with what the probe yields.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlmsdoctor.codec.hdlc import HdlcParams, ServerAddress
from dlmsdoctor.codec.model import Severity
from dlmsdoctor.events import (
    Event,
    FindingRaised,
    StepFinished,
    StepStarted,
    StepStatus,
)
from dlmsdoctor.link.channel import Channel, ChannelFactory
from dlmsdoctor.link.clock import Clock

if TYPE_CHECKING:
    from dlmsdoctor.engine import ProbeOptions
    from dlmsdoctor.ledger import Attempt
    from dlmsdoctor.login_budget import LoginBudget


# The longest a wait grows from measured delays (late answers, RTT); the user's own
# ``timeout`` may be longer still.
MAX_SCALED_WAIT = 30.0
# After the wait for an AARE or a GET answer ends in silence, how long to listen on for a late
# one: as long again as the wait, at least this (a loaded machine, a meter deriving keys).
MIN_PATIENCE = 2.0
# A later wait for a service allows this many times its slowest answer seen so far.
SLOW_FACTOR = 2.0
SERVICES = ("link", "association", "get", "release")


class RunStopped(Exception):
    """Raised inside a probe when the run must stop now (lockout, busy target, cancel)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PendingAarq:
    """An AARQ that got no answer within the wait: it may still be accepted."""

    client_sap: int
    framing: str  # the framing it went out in: the RLRQ must use the same
    sent_at: float
    request_index: int = -1  # the AARQ's frame (its last segment) in the Session


@dataclass(frozen=True)
class UnsettledLogin:
    """A login recorded as "no-answer" while its AARE may still come (a slow meter): the late
    AARE settles it (``association.report_late``)."""

    step_id: str
    attempt: Attempt  # its ledger record


@dataclass(frozen=True)
class HeldBack:
    """Password logins held back by the lockout guard (``probes/safety.py``): the meter dropped
    a connection at once while a lockout was plausible but not proven."""

    step_id: str  # the step that met the drop
    conn_id: int  # the connection dropped; an answer on a later one ends the hold
    failed_logins_run: int
    failed_logins_recent: int


@dataclass
class Facts:
    """What the rungs have learned so far; later rungs read it, the Session keeps a copy."""

    rtt: float | None = None  # seconds, ICMP average or TCP connect time
    framing: str | None = None  # hdlc, wrapper
    framing_evidence: str | None = None
    server: ServerAddress | None = None  # the address that answered (or the one to use)
    server_confirmed: bool = False
    hdlc_params: HdlcParams | None = None
    link_client_sap: int | None = None  # HDLC link up (UA) for this client SAP
    send_seq: int = 0  # N(S) of our next I-frame
    recv_seq: int = 0  # N(R): the meter's next N(S) we expect
    associated_sap: int | None = None  # an association is open for this client SAP
    # Requests whose outcome is unknown on the current connection (no answer within the wait):
    # the meter may still accept them late, so the release must end them too. Only the LAST
    # one of each kind can still be in flight: answers to earlier ones would have arrived
    # during the waits that followed.
    link_pending: tuple[ServerAddress, int] | None = None  # SNRM: (server, client SAP)
    assoc_pending: PendingAarq | None = None
    # the slowest answer seen so far per service (request to answer, seconds): link (SNRM to
    # UA), association (AARQ to AARE), get, release, disc...; each service's wait allows for it
    delays: dict[str, float] = field(default_factory=dict)
    snrm_sent_at: dict[ServerAddress, float] = field(default_factory=dict)  # last SNRM to each
    associated_name: str | None = None
    max_pdu_size: int | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    hdlc_silent: bool = False  # SNRM met silence (discovery wanted)
    hdlc_dm: bool = False
    peer_closed_on_first_frame: bool = False
    closes_when_idle: bool = False  # the peer closed while we only listened after connect
    foreign_protocol: str | None = None  # e.g. "iec62056-21": the port speaks something else
    failed_logins: int = 0
    logins_tried: int = 0  # password logins attempted (AARQ sent with a secret)
    # the lockout guard's hold on password logins, and the newest connection on which the meter
    # answered one of our frames (a DLMS frame back): an answer after the drop ends the hold
    held_back: HeldBack | None = None
    answered_conn: int = 0
    stop_reason: str | None = None
    conn_count: int = 0

    def as_json(self) -> dict[str, Any]:
        server = None
        if self.server is not None:
            server = {"logical": self.server.logical, "physical": self.server.physical,
                      "size": self.server.size, "confirmed": self.server_confirmed}
        return {
            "rtt": self.rtt,
            "framing": self.framing,
            "framing_evidence": self.framing_evidence,
            "server": server,
            "hdlc_params": self.hdlc_params.as_dict() if self.hdlc_params else None,
            "max_pdu_size": self.max_pdu_size,
            "connections": self.conn_count,
            "failed_logins": self.failed_logins,
            "answer_delay": round(self.answer_delay, 3) if self.answer_delay else None,
            "delays": {k: round(v, 3) for k, v in sorted(self.delays.items())} or None,
        }

    @property
    def answer_delay(self) -> float:
        """The slowest answer of any service."""
        return max(self.delays.values(), default=0.0)

    def saw_delay(self, service: str, delay: float) -> None:
        """An answer to a ``service`` request came ``delay`` seconds after it: later waits for
        that service allow for it."""
        if delay >= 0:
            self.delays[service] = max(self.delays.get(service, 0.0), delay)

    def saw_answer_after(self, delay: float, service: str = "link") -> None:
        self.saw_delay(service, delay)

    def forget_connection(self) -> None:
        """The connection is gone: nothing of it is open any more, nothing pending on it."""
        self.link_client_sap = None
        self.associated_sap = None
        self.link_pending = None
        self.assoc_pending = None


class ProbeContext:
    """Everything a probe may touch: options, clock, cancel flag, ledger, facts, the channel.

    I/O goes through the helpers in ``dlmsdoctor.probes.wire`` that take this context.
    """

    def __init__(
        self,
        options: ProbeOptions,
        *,
        clock: Clock,
        channel_factory: ChannelFactory,
        emit: Callable[[Event], None],
        cancel: asyncio.Event,
        budget: LoginBudget,
    ) -> None:
        self.options = options
        self.clock = clock
        self.channel_factory = channel_factory
        self._emit = emit
        self.cancel = cancel
        self.budget = budget
        self.facts = Facts()
        self.channel: Channel | None = None
        self.frame_count = 0  # index the next FrameSent/FrameReceived will get in the Session
        self.step_status: dict[str, StepStatus] = {}
        # per-connection stream state lives in wire.py; kept here so it dies with the run
        self.wire_state: dict[int, Any] = {}
        # set by the release rung: it must finish its exchanges even when the run is cancelled
        self.releasing = False
        self.reported_codes: set[str] = set()  # stream findings already raised this run
        # requests of closed connections still unanswered (wire.Request): a bridge may deliver
        # their answers at the start of the next connection
        self.orphan_requests: list[Any] = []
        self.slow_reported: dict[str, float] = {}  # service -> delay of timing.slow_service
        # findings held until the end of the run: a no-answer is said only if the answer
        # never came (frame index of the request -> the finding)
        self.deferred: dict[int, FindingRaised] = {}
        self.bytes_kept = 0  # received bytes recorded this run (wire.py caps them)
        # logins recorded as "no-answer" whose AARE may still come: AARQ frame index -> login
        self.unsettled_logins: dict[int, UnsettledLogin] = {}
        # received frame index -> (the request it answers, seconds since it was sent), as
        # wire.py matches them on arrival
        self.answered_requests: dict[int, tuple[int, float]] = {}

    # -- events -----------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        self._emit(event)

    def now(self) -> float:
        return self.clock.now()

    def started(self, step_id: str, title: str, layer: str) -> StepStarted:
        return StepStarted(step_id, title, layer, self.now())

    def finished(
        self, step_id: str, status: StepStatus, summary: str, **details: object
    ) -> StepFinished:
        return StepFinished(step_id, status, summary, self.now(), dict(details))

    def finding(
        self,
        step_id: str,
        code: str,
        severity: Severity,
        message: str,
        frames: tuple[int, ...] = (),
        /,
        **data: object,
    ) -> FindingRaised:
        return FindingRaised(step_id, code, severity, message, self.now(), frames, dict(data))

    # -- time -------------------------------------------------------------------------------
    def reply_timeout(self) -> float:
        """How long to wait for an answer: the option, scaled up on slow links (4 x RTT)."""
        rtt = self.facts.rtt or 0.0
        return max(self.options.timeout, 4.0 * rtt, self._late_margin())

    def service_wait(self, service: str) -> float:
        """The wait for one service's answer: ``max(timeout, 4 x RTT, 2 x the slowest answer
        of that service seen so far)``, the growth capped (the meter's processing time is not
        the network's: an SNRM answered in 20 ms says nothing of the AARQ's 3 s)."""
        rtt = self.facts.rtt or 0.0
        own = min(SLOW_FACTOR * self.facts.delays.get(service, 0.0), MAX_SCALED_WAIT)
        return max(self.options.timeout, min(4.0 * rtt, MAX_SCALED_WAIT), own)

    @staticmethod
    def patience(wait: float) -> float:
        """How long to listen on for a late answer once ``wait`` ended in silence."""
        return min(max(wait, MIN_PATIENCE), MAX_SCALED_WAIT)

    def defer(self, request_index: int, finding: FindingRaised) -> None:
        """Say ``finding`` (a no-answer) at the end of the run unless the request is answered
        late meanwhile (``answered``)."""
        self.deferred[request_index] = finding

    def answered(self, request_index: int) -> None:
        self.deferred.pop(request_index, None)

    def _late_margin(self) -> float:
        """Twice the slowest answer seen (a meter that answered late once will again),
        capped: a wait must stay bounded whatever a confused peer did."""
        return min(SLOW_FACTOR * self.facts.answer_delay, MAX_SCALED_WAIT)

    def release_wait(self) -> float:
        """The wait for each release answer (RLRE, UA/DM to DISC): ``release_timeout``, longer
        when answers were seen to come late (so the release is confirmed, not assumed)."""
        rtt = self.facts.rtt or 0.0
        return max(self.options.release_timeout, min(4.0 * rtt, MAX_SCALED_WAIT),
                   self._late_margin())

    def probe_timeout(self) -> float:
        """The wait of a safe probe whose silence is itself an answer (framing detection,
        address discovery): a meter that answers does so within a few round trips, so
        ``max(4 x RTT, min(timeout, 2 s))`` instead of the full reply timeout. A late answer
        is still recognised (framing detection looks for it during the next probe)."""
        rtt = self.facts.rtt or 0.0
        return max(4.0 * rtt, min(self.options.timeout, 2.0), self._late_margin())

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set() and not self.releasing

    def check_cancel(self) -> None:
        if self.cancelled:
            raise RunStopped("cancelled")

    async def sleep(self, seconds: float) -> None:
        """Sleep on the run clock, waking early when the run is cancelled."""
        if seconds <= 0:
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waiter = asyncio.ensure_future(self.cancel.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waiter):
                task.cancel()
        self.check_cancel()


class Probe(abc.ABC):
    """One rung of the ladder."""

    id: str = ""
    title: str = ""
    layer: str = ""
    requires: tuple[str, ...] = ()

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        """Why this rung does not apply now (None: run it). Checked after ``requires``."""
        return None

    @abc.abstractmethod
    def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        """Yield the step's events: StepStarted first, StepFinished last."""


OnEvent = Callable[[Event], Awaitable[None] | None]
