"""Events that probes yield and the engine forwards to every face (CLI, TUI, session recorder).

Frozen dataclasses, past-tense nouns. Times are seconds on the run's clock (monotonic, starting at
0.0 when the run starts); the Session keeps the wall-clock start so absolute times can be rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dlmsdoctor.codec.model import Severity


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"  # the rung ran and the meter/network did not do what it should
    WARNING = "warning"  # it worked, with something worth knowing
    SKIPPED = "skipped"  # not run: a prerequisite failed, the user turned it off, or no budget
    # could not be run here (e.g. no ICMP permission): not the meter's fault
    UNAVAILABLE = "unavailable"
    ERROR = "error"  # a bug or unexpected exception in dlmsdoctor: never blamed on the meter
    CANCELLED = "cancelled"
    # failed with the defaults, and a later rung found what works (e.g. silence at 1/1, then the
    # address discovery found 1/6678): neither a plain failure beside "works" nor a plain OK
    RECOVERED = "recovered"


class Direction(StrEnum):
    TX = "tx"  # client (us) -> meter
    RX = "rx"  # meter (or bridge) -> client


class CloseHow(StrEnum):
    FIN = "fin"  # orderly close (EOF)
    RST = "rst"  # connection reset
    TIMEOUT = "timeout"
    LOCAL = "local"  # we closed it


@dataclass(frozen=True, slots=True)
class StepStarted:
    step_id: str  # e.g. "hdlc.snrm", unique within a run ("assoc.login#2" when repeated)
    title: str
    layer: str  # icmp, tcp, framing, hdlc, address, association, cosem, release
    at: float


@dataclass(frozen=True, slots=True)
class StepFinished:
    step_id: str
    status: StepStatus
    summary: str  # one line a technician reads
    at: float
    details: dict[str, object] = field(default_factory=dict)  # figures: rtt, loss, params...


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    conn_id: int
    host: str
    port: int
    at: float
    connect_time: float  # seconds from SYN to established
    local_port: int = 0
    local_host: str = ""
    link: str = "tcp"  # tcp, serial, optical, rfc2217 (Channel.link)
    # tap: the poller's address ("host:port") whose connection this one relays; "" for probes
    client: str = ""


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    conn_id: int
    host: str
    port: int
    at: float
    reason: str  # "refused", "timeout", "unreachable", "dns", ...
    message: str
    elapsed: float


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    conn_id: int
    at: float
    how: CloseHow
    by_peer: bool  # True when the meter/bridge closed it
    note: str = ""
    bytes_dropped: int = 0  # received bytes counted but not kept (a flood past the caps)


@dataclass(frozen=True, slots=True)
class FrameSent:
    conn_id: int
    step_id: str
    at: float
    data: bytes


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """A chunk of received bytes as split by the codec's stream splitter (frame, text, garbage).

    ``answers``: the session index of the request frame this one answers, when known (evidence
    cites both); ``late``: it came after the wait for that request had ended (a slow meter)."""

    conn_id: int
    step_id: str
    at: float
    data: bytes
    answers: int | None = None
    late: bool = False


@dataclass(frozen=True, slots=True)
class LineChanged:
    """A serial line's settings were applied (open, a rate change, the optical switch to mode E).

    ``data_format`` as people write it: ``8N1``, ``7E1``."""

    conn_id: int
    at: float
    baud: int
    data_format: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class PingSent:
    step_id: str
    at: float
    ident: int
    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class PingReplied:
    step_id: str
    at: float
    ident: int
    seq: int
    payload: bytes
    rtt: float


@dataclass(frozen=True, slots=True)
class FindingRaised:
    """A probe-level observation (not a byte-level codec finding).

    ``code`` is stable and dotted (``tcp.closed_after_first_frame``, ``bridge.busy``,
    ``assoc.auth_failure``); ``frames`` refer to frame indexes in the session.
    """

    step_id: str
    code: str
    severity: Severity
    message: str
    at: float
    frames: tuple[int, ...] = ()
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoginAttempted:
    step_id: str
    at: float
    credential: str  # the credential set's NAME, never its secret
    client_sap: int
    mechanism: str  # none, low, gmac
    outcome: str  # accepted, rejected, no-answer, closed
    diagnostic: str = ""  # e.g. authentication-failure
    # True: not a new login but what the meter answered, late, to this step's login that was
    # reported as "no-answer" (its AARE came after every wait): the outcome replaces that one
    settles: bool = False


Event = (
    StepStarted
    | StepFinished
    | ConnectionOpened
    | ConnectionFailed
    | ConnectionClosed
    | FrameSent
    | FrameReceived
    | PingSent
    | PingReplied
    | FindingRaised
    | LoginAttempted
    | LineChanged
)
