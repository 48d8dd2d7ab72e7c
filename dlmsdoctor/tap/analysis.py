"""The tap's live analysis: each relayed chunk, decoded, checked against what came before.

Works from counts and samples, never from the whole history: per connection it keeps the HDLC
state (link up, association, sequence numbers), the requests waiting for an answer and a few
evidence frames; across connections, answer times per service (a bounded sample), refusals,
negotiated parameters and failed logins in a time window. A long run holds the same memory after
an hour as after a minute.

Who is who: the *poller* is the user's client (head-end, gateway, script) connected to the tap;
the *meter* side is whatever answers at the target (a meter, or a serial-to-TCP bridge before it).
Findings are ``FindingRaised`` events with stable ``tap.*`` codes (docs/tap.md lists them); each
cites the frames that prove it. A finding is raised once per distinct key and then counted
(``data["count"]``, up to ``MAX_EVIDENCE`` frames kept), so a poller repeating the same mistake
every few seconds for a day gives one finding with a large count, not thousands.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dlmsdoctor.codec.hdlc import Reassembler
from dlmsdoctor.codec.model import DecodedFrame, FrameKind, Severity
from dlmsdoctor.events import CloseHow, FindingRaised

MAX_EVIDENCE = 5  # frames kept per finding
SAMPLES_PER_SERVICE = 2000  # answer times kept per service (reservoir sample)
LOCKOUT_AFTER = 3  # failed logins that lock a typical meter (DOMAIN.md: one brand counts 3)
LOCKOUT_WINDOW = 900.0  # seconds those failures are counted over (the login budget's window)
IDLE_CUT_MIN = 1.0  # a close by the meter side after this long without traffic is "idle"
INACTIVITY_SETUP = ("0.0.22.0.0.255", 8)  # IEC HDLC setup, inactivity timeout
# Identity objects a poller often reads (DOMAIN.md 1): (OBIS, attribute) -> Session.identity key,
# the names the probe's identity rung uses.
IDENTITY_READS = {
    ("0.0.42.0.0.255", 2): "logical_device_name",
    ("0.0.96.1.0.255", 2): "serial_number",
    ("1.0.0.2.0.255", 2): "firmware",
    ("0.0.1.0.0.255", 2): "clock",
    INACTIVITY_SETUP: "hdlc_inactivity_timeout",
}
STEP = "tap"

# codec findings on a poller frame that make a meter drop it (or that break addressing)
MALFORMED_CODES = frozenset({
    "hdlc.params.group_length", "hdlc.params.length", "hdlc.params.format_id",
    "hdlc.params.group_id", "hdlc.fcs.mismatch", "hdlc.hcs.mismatch", "hdlc.length.mismatch",
    "hdlc.address.size3", "hdlc.address.unterminated", "hdlc.address.client_size",
    "hdlc.frame.short", "hdlc.control.unknown", "stream.truncated", "stream.bytes_outside_frame",
    "wrapper.version", "wrapper.length",
})
# codec findings on a meter frame that make a poller drop it (a line or bridge problem)
_DAMAGE_CODES = frozenset({
    "hdlc.fcs.mismatch", "hdlc.hcs.mismatch", "hdlc.length.mismatch", "hdlc.frame.short",
    "stream.truncated", "wrapper.version", "wrapper.length",
})
# what a request expects back; anything else in its place is a stale or wrong answer
_EXPECTED = {
    "SNRM": ("UA", "DM", "FRMR"),
    "DISC": ("UA", "DM", "FRMR"),
    "AARQ": ("AARE",),
    "RLRQ": ("RLRE",),
    "GET": ("GET",),
    "SET": ("SET",),
    "ACTION": ("ACTION",),
}


_AUTH_OF_MECHANISM = {"none": "none", "LLS": "low", "HLS-GMAC": "gmac"}


def _worked(frame: DecodedFrame, req: Request, aare: dict[str, Any],
            negotiated: dict[str, Any]) -> dict[str, Any] | None:
    """The settings the poller's accepted association used, as a working profile takes them:
    framing, the server address the AARE came from, the client, the authentication (only
    those a profile can say: none, low, gmac), the negotiated sizes."""
    auth = _AUTH_OF_MECHANISM.get(req.mechanism or "")
    if auth is None:
        return None
    out: dict[str, Any] = {"authentication": auth, "max_pdu_size": aare.get("max_pdu_size")}
    if frame.kind is FrameKind.WRAPPER and len(frame.data) >= 8:
        # the meter's source wPort is its logical device; the destination is the client
        out.update(framing="wrapper", logical=int.from_bytes(frame.data[2:4], "big"),
                   physical=None, size=0, client_sap=int.from_bytes(frame.data[4:6], "big"))
        return out
    src, dest = frame.fields.get("src"), frame.fields.get("dest")
    if not isinstance(src, dict) or not isinstance(dest, dict) or not isinstance(
            src.get("logical"), int) or not isinstance(dest.get("sap"), int):
        return None
    out.update(framing="hdlc", logical=src["logical"], physical=src.get("physical"),
               size=src.get("size") or 1, client_sap=dest["sap"])
    out.update({k: negotiated[k] for k in ("max_info_tx", "max_info_rx", "window_tx",
                                           "window_rx") if k in negotiated})
    return out


def service_of(frame: DecodedFrame, apdu: dict[str, Any] | None) -> str:
    """A short name for what a frame asks or answers: SNRM, UA, AARQ, GET, RR, ..."""
    if apdu is not None:
        kind = str(apdu.get("apdu_type", ""))
        for name in ("GET", "SET", "ACTION"):
            if kind.startswith(name):
                return name
        if kind in ("ExceptionResponse", "ConfirmedServiceError"):
            return "error"
        return kind or "APDU"
    if frame.kind is FrameKind.HDLC:
        ftype = str(frame.fields.get("frame_type", ""))
        return ftype or "HDLC"
    return frame.kind.value


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of a sample (nearest rank), in seconds."""
    if not samples:
        return {}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered) + 0.5) - 1))]

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "max": ordered[-1]}


@dataclass(slots=True)
class Request:
    index: int
    at: float
    service: str
    conn: int
    invoke_id: int | None = None
    server: str = ""
    client_sap: int | None = None
    data: bytes = b""
    answered: bool = False
    malformed: tuple[str, ...] = ()  # codec codes that make a meter drop it
    superseded: float | None = None  # the poller sent its next request at this time
    confused: bool = False  # a stale answer arrived in its place
    reads: tuple[str, int] | None = None  # a GET's (OBIS, attribute)
    mechanism: str | None = None  # an AARQ's authentication mechanism ("none": no auth)


@dataclass(slots=True)
class ServiceTimes:
    count: int = 0
    late: int = 0
    samples: list[float] = field(default_factory=list)

    def add(self, seconds: float, rng: random.Random) -> None:
        self.count += 1
        if len(self.samples) < SAMPLES_PER_SERVICE:
            self.samples.append(seconds)
        else:  # reservoir sampling: every answer has the same chance to be in the sample
            slot = rng.randrange(self.count)
            if slot < SAMPLES_PER_SERVICE:
                self.samples[slot] = seconds


@dataclass(slots=True)
class Conn:
    id: int
    client: str
    opened_at: float
    reasm: dict[str, Reassembler] = field(default_factory=lambda: {
        "poller": Reassembler(), "meter": Reassembler()})
    pending: deque[Request] = field(default_factory=deque)
    poller_frames: int = 0
    meter_frames: int = 0
    link_up: int | None = None  # index of the UA that opened the HDLC link
    associated: int | None = None  # index of the accepted AARE
    released: bool = False
    disc_sent: bool = False
    vs: int = 0  # next N(S) the poller should send
    vr: int = 0  # next N(S) expected from the meter (what the poller's N(R) should say)
    last_at: float = 0.0  # last byte either way
    last_poller_at: float | None = None
    poller_closed: float | None = None
    meter_closed: float | None = None
    how: CloseHow | None = None
    closed_by: str = ""
    wrapper: bool = False
    resumed: bool = False  # after a gap (a capture's cut middle), until the poller speaks


class TapAnalyzer:
    """Feed it what the relay sees; it calls ``emit`` with each finding as soon as it is known."""

    def __init__(self, emit: Callable[[FindingRaised], None], *,
                 meter_address: tuple[int, int | None] | None = None,
                 lockout_after: int = LOCKOUT_AFTER, lockout_window: float = LOCKOUT_WINDOW,
                 seed: int = 0, vantage: str = "tap") -> None:
        self.emit = emit
        # "tap": dlmsdoctor relays the poller; "capture": a recorded client's traffic (a foreign
        # capture), where the tap was never there: the few words about the tap itself differ.
        self.vantage = vantage
        self.meter_address = meter_address
        self.lockout_after = lockout_after
        self.lockout_window = lockout_window
        self.rng = random.Random(seed)
        self.conns: dict[int, Conn] = {}
        self.raised: dict[tuple[str, str], FindingRaised] = {}
        self.counts: dict[tuple[str, str], int] = {}
        self.evidence: dict[tuple[str, str], list[int]] = {}
        self.times: dict[str, ServiceTimes] = {}
        self.refusals: dict[str, int] = {}
        self.negotiated: dict[str, Any] = {}
        self.failed_logins: deque[tuple[float, int]] = deque()
        self.failed_total = 0
        self.logins_ok = 0
        self.connections = 0
        self.failed_connects: dict[str, int] = {}
        self.frames = {"poller": 0, "meter": 0}
        self.bytes = {"poller": 0, "meter": 0}
        self.answered_addresses: set[str] = set()
        self.orphans: deque[Request] = deque(maxlen=8)  # unanswered at close, newest last
        self.inactivity_read = False
        self.idle_cuts: list[float] = []
        self.answered_late: set[str] = set()  # no_answer keys whose answer came on a later conn
        self.identity: dict[str, Any] = {}  # the meter's identity, as the poller read it
        # the settings of the first association the meter accepted (a working profile)
        self.worked: dict[str, Any] | None = None

    # -- findings ----------------------------------------------------------------------------
    def raise_(self, code: str, key: str, severity: Severity, message: str, at: float,
               frames: tuple[int, ...] | list[int], **data: Any) -> bool:
        """Count one occurrence; emit the finding the first time its (code, key) is seen.
        Returns True when emitted."""
        k = (code, key)
        self.counts[k] = self.counts.get(k, 0) + 1
        kept = self.evidence.setdefault(k, [])
        for index in frames:
            if len(kept) < MAX_EVIDENCE and index not in kept:
                kept.append(index)
        if k in self.raised:
            return False
        event = FindingRaised(STEP, code, severity, message, at, tuple(frames), dict(data))
        self.raised[k] = event
        self.emit(event)
        return True

    # -- connections -------------------------------------------------------------------------
    def opened(self, conn: int, client: str, at: float) -> None:
        self.connections += 1
        self.conns[conn] = Conn(conn, client, at, last_at=at)

    def failed(self, conn: int, client: str, at: float, reason: str, message: str) -> None:
        self.failed_connects[reason] = self.failed_connects.get(reason, 0) + 1
        if self.vantage == "capture":
            message = (f"The poller at {client} could not connect to the meter side "
                       f"({message}).")
        else:
            mirrored = "reset" if reason != "timeout" else "closed after the connect timeout"
            message = (f"The tap could not reach the meter side ({message}); the poller's "
                       f"connection from {client} was closed the way a dead target closes it "
                       f"({mirrored}).")
        self.raise_("tap.target.unreachable", reason, Severity.ERROR, message, at, (),
                    reason=reason, client=client)

    def closed(self, conn: int, side: str, at: float, how: CloseHow) -> None:
        """A side closed (FIN) or reset (findings go through ``emit``)."""
        c = self.conns.get(conn)
        if c is None:
            return
        if side == "poller":
            if c.poller_closed is None:
                c.poller_closed = at
        elif c.meter_closed is None:
            c.meter_closed = at
        if c.how is None:
            c.how, c.closed_by = how, side
            if side == "poller":
                self._poller_closed_first(c, at)
            else:
                self._meter_closed_first(c, at, how)

    def gap(self, conn: int) -> None:
        """Frames of this connection were not recorded (a capture that kept only the ends of
        a long connection): what was waiting was answered unseen, and the sequence numbers
        resume where nothing was counted. Judged again from the next SNRM and UA."""
        c = self.conns.get(conn)
        if c is None:
            return
        c.pending.clear()
        c.link_up = None  # no sequence check until the next UA
        c.resumed = True  # answers to requests in the gap may come first: not stale bytes

    def ended(self, conn: int, at: float) -> None:
        c = self.conns.pop(conn, None)
        if c is None:
            return
        if c.closed_by != "meter":
            # the poller gave up on these: behind a bridge their late answers may reach a
            # later connection; a request the meter side closed the connection on is its own
            # finding (closed_on_request), not a late answer in the making
            for req in c.pending:
                if not req.answered:
                    self.orphans.append(req)
        self._silence(c, at)

    # -- frames ------------------------------------------------------------------------------
    def frame(self, conn: int, side: str, at: float, index: int, frame: DecodedFrame,
              apdu: dict[str, Any] | None) -> tuple[int | None, bool]:
        """One chunk from ``side``; returns (index of the request it answers, late)."""
        c = self.conns.get(conn)
        if c is None:
            return None, False
        self.frames[side] += 1
        self.bytes[side] += len(frame.data)
        c.last_at = at
        if frame.kind is FrameKind.WRAPPER:
            c.wrapper = True
        if side == "poller":
            c.last_poller_at = at
            c.poller_frames += 1
            c.resumed = False
            self._poller_frame(c, at, index, frame, apdu)
            return None, False
        c.meter_frames += 1
        return self._meter_frame(c, at, index, frame, apdu)

    def _poller_frame(self, c: Conn, at: float, index: int, frame: DecodedFrame,
                      apdu: dict[str, Any] | None) -> None:
        bad = [f for f in frame.findings
               if f.code in MALFORMED_CODES and f.severity is not Severity.INFO]
        for f in bad:
            self.raise_(f"tap.poller.{_malformed_name(f.code)}", f.code, Severity.ERROR,
                        f"Your poller sent a malformed frame: {f.message}"
                        + (f" (expected {f.expected}, found {f.found})"
                           if f.expected and f.found else ""),
                        at, (index,), codec=f.code, expected=f.expected, found=f.found,
                        corrected=f.corrected)
        if frame.kind is FrameKind.GARBAGE and not bad:
            self.raise_("tap.poller.malformed", "garbage", Severity.ERROR,
                        f"Your poller sent {len(frame.data)} byte(s) that are no DLMS frame.",
                        at, (index,))
        fields = frame.fields
        ftype = str(fields.get("frame_type", "")) if frame.kind is FrameKind.HDLC else ""
        server = _server_text(fields.get("dest"))
        client_sap = _sap(fields.get("src"))
        if frame.kind is FrameKind.WRAPPER:
            server = f"wPort {fields.get('dst_wport')}"
            sap = fields.get("src_wport")
            client_sap = sap if isinstance(sap, int) else None
        self._check_address(c, at, index, fields)
        if ftype == "SNRM":
            c.link_up, c.associated, c.released, c.disc_sent = None, None, False, False
            c.vs = c.vr = 0
        elif ftype == "DISC":
            c.disc_sent = True
        elif ftype == "I":
            self._check_poller_sequence(c, at, index, fields)
        service = service_of(frame, apdu) if frame.kind in (FrameKind.HDLC,
                                                             FrameKind.WRAPPER) else ""
        if apdu is not None:
            kind = str(apdu.get("apdu_type", ""))
            if kind == "RLRQ":
                c.released = True
            if kind.startswith("GET-Request") and (apdu.get("obis"), apdu.get("attribute")) \
                    == INACTIVITY_SETUP:
                self.inactivity_read = True
            if kind == "AARQ":
                for key in ("mechanism", "application_context", "max_pdu_size"):
                    if key in apdu:
                        self.negotiated[f"aarq_{key}"] = apdu[key]
                if client_sap is not None:
                    self.negotiated["client_sap"] = client_sap
        if service in _EXPECTED or (service == "I" and apdu is None) or service == "RR":
            # a request waits for an answer; a segment or an RR (block continuation) too
            invoke = apdu.get("invoke_id") if apdu is not None else None
            # A new whole request while an earlier one waits: the poller gave up on it (decided
            # when, if ever, its answer comes). Segments and RRs may flow ahead within the
            # HDLC window: they give up on nothing.
            if service in _EXPECTED:
                for earlier in c.pending:
                    if not earlier.answered and earlier.superseded is None and \
                            earlier.service in _EXPECTED:
                        earlier.superseded = at
            reads = None
            if apdu is not None and service == "GET" and isinstance(apdu.get("attribute"), int):
                reads = (str(apdu.get("obis")), int(apdu["attribute"]))
            mechanism = None
            if apdu is not None and apdu.get("apdu_type") == "AARQ":
                mechanism = str(apdu.get("mechanism") or "none")
            c.pending.append(Request(index, at, service, c.id,
                                     invoke if isinstance(invoke, int) else None, server,
                                     client_sap, bytes(frame.data),
                                     malformed=tuple(f.code for f in bad), reads=reads,
                                     mechanism=mechanism))
            while len(c.pending) > 16:
                c.pending.popleft()

    def _check_address(self, c: Conn, at: float, index: int, fields: dict[str, Any]) -> None:
        dest = fields.get("dest")
        if not isinstance(dest, dict) or dest.get("role") != "server":
            return
        size = dest.get("size")
        if self.meter_address is None:
            return
        logical, physical = self.meter_address
        got_l, got_p = dest.get("logical"), dest.get("physical")
        if physical is None:
            return
        reason = ""
        if size == 1:
            reason = (f"a 1-byte server address carries no physical address at all; the meter's "
                      f"physical address is {physical}")
        elif size == 2 and physical > 127:
            reason = (f"a 2-byte server address holds physical addresses up to 127; the "
                      f"meter's physical address {physical} needs 4 bytes")
        elif got_p != physical or got_l != logical:
            reason = (f"it addresses {got_l}/{got_p}, the meter is {logical}/{physical}")
        if reason:
            self.raise_("tap.poller.address_unreachable", str(dest.get("raw")), Severity.ERROR,
                        f"Your poller's server address ({dest.get('raw')}, {size}-byte) cannot "
                        f"reach the meter: {reason}. An HDLC meter silently ignores a frame "
                        "for another address.",
                        at, (index,), sent=dest.get("raw"), size=size,
                        meter=f"{logical}/{physical}")

    def _check_poller_sequence(self, c: Conn, at: float, index: int,
                               fields: dict[str, Any]) -> None:
        if c.link_up is None:
            return
        ns, nr = fields.get("ns"), fields.get("nr")
        if isinstance(ns, int) and ns != c.vs:
            self.raise_("tap.poller.sequence", "ns", Severity.WARNING,
                        f"Your poller's I-frame has N(S)={ns}, but {c.vs} was next: a meter "
                        "drops or rejects out-of-sequence frames.", at, (index,),
                        expected=c.vs, found=ns)
        if isinstance(nr, int) and nr != c.vr:
            self.raise_("tap.poller.sequence", "nr", Severity.WARNING,
                        f"Your poller's I-frame has N(R)={nr}, but the meter had sent {c.vr} "
                        "frame(s) modulo 8: it acknowledges the wrong frame.", at, (index,),
                        expected=c.vr, found=nr)
        if isinstance(ns, int):
            c.vs = (ns + 1) & 7

    def _meter_frame(self, c: Conn, at: float, index: int, frame: DecodedFrame,
                     apdu: dict[str, Any] | None) -> tuple[int | None, bool]:
        fields = frame.fields
        if frame.kind is FrameKind.BRIDGE_MESSAGE:
            self._bridge_text(c, at, index, frame)
            return None, False
        self._meter_damage(at, index, frame)
        service = service_of(frame, apdu)
        ftype = str(fields.get("frame_type", "")) if frame.kind is FrameKind.HDLC else ""
        if ftype == "I":
            ns, nr = fields.get("ns"), fields.get("nr")
            if isinstance(ns, int):
                c.vr = (ns + 1) & 7
            if isinstance(nr, int) and nr != c.vs and c.link_up is not None:
                self.raise_("tap.meter.sequence", "nr", Severity.WARNING,
                            f"The meter's I-frame has N(R)={nr}, but the poller had sent "
                            f"{c.vs} frame(s) modulo 8: one side lost count (a dropped or "
                            "repeated frame).", at, (index,), expected=c.vs, found=nr)
        if c.poller_frames == 0:
            # bytes before the poller said anything: stale answers a bridge buffered, a banner
            self._stale(c, at, index, frame, service, before_request=True)
            return None, False
        req = _answered_request(c, frame)
        if req is None:
            if c.resumed:
                return None, False  # the answer to a request in the capture's cut middle
            if frame.kind is FrameKind.HDLC and ftype in ("UA", "I", "DM", "FRMR", "RR"):
                self._stale(c, at, index, frame, service, before_request=False)
            return None, False
        expected = _EXPECTED.get(req.service)
        if expected is not None and frame.kind in (FrameKind.HDLC, FrameKind.WRAPPER) and \
                service not in expected and service not in ("error", "RR", "I", "RNR") and \
                not (req.service in ("GET", "SET", "ACTION") and service == "APDU"):
            # not what the request asks for: an earlier session's late answer, not this one's
            self._stale(c, at, index, frame, service, before_request=False, waiting=req)
            return None, False
        earlier = self._same_request_given_up(c, req, at)
        if earlier is not None:
            self._likely_stale(c, at, index, service, req, earlier)
            return None, False
        req.answered = True
        c.pending = deque(r for r in c.pending if not r.answered)
        late = c.poller_closed is not None or req.superseded is not None
        elapsed = at - req.at
        times = self.times.setdefault(req.service, ServiceTimes())
        times.add(elapsed, self.rng)
        if late:
            times.late += 1
            gave_up = req.superseded if req.superseded is not None else c.poller_closed
            assert gave_up is not None
            how = ("had closed the connection" if req.superseded is None
                   else "had sent its next frame")
            self.raise_("tap.poller.timeout_too_short", "closed" if req.superseded is None
                        else "resent", Severity.ERROR,
                        f"The meter answered {req.service} (frame #{req.index}) after "
                        f"{elapsed:.3f} s, but your poller {how} {gave_up - req.at:.3f} s "
                        "after sending it: the poller's timeout is shorter than the meter's "
                        "answers; the late answer is lost, taken for the answer to the next "
                        "request, or, behind a bridge, reaches the next session as stale bytes.",
                        at, (req.index, index), waited=round(gave_up - req.at, 6),
                        answer_time=round(elapsed, 6), service=req.service)
        self._answer(c, at, index, frame, apdu, req, ftype)
        return req.index, late

    def _meter_damage(self, at: float, index: int, frame: DecodedFrame) -> None:
        """Bytes from the meter side the poller cannot take: a damaged frame (checksum,
        length, cut short, noise) or another protocol (IEC 62056-21 text, telnet)."""
        kind = frame.kind
        size = len(frame.data)
        if kind is FrameKind.IEC62056_21:
            self.raise_("tap.meter.foreign_protocol", kind.value, Severity.ERROR,
                        f"The meter side answered with IEC 62056-21 text ({frame.summary}): "
                        "that port speaks the IEC readout and wants the mode E handshake "
                        "before HDLC; the poller's frames are not understood there.",
                        at, (index,), protocol=kind.value)
        elif kind is FrameKind.TELNET:
            self.raise_("tap.meter.foreign_protocol", kind.value, Severity.ERROR,
                        f"The meter side sent telnet negotiation ({size} byte(s), FF FB ...): "
                        "the bridge's port is in telnet or RFC 2217 mode, not raw; those bytes "
                        "reach the poller mixed with the meter's.", at, (index,),
                        protocol=kind.value)
        elif kind is FrameKind.PARTIAL:
            self.raise_("tap.meter.damaged", kind.value, Severity.WARNING,
                        f"A frame from the meter side was cut short ({size} byte(s), its end "
                        "never came).", at, (index,), codec=kind.value)
        elif kind in (FrameKind.GARBAGE, FrameKind.TEXT):
            self.raise_("tap.meter.damaged", kind.value, Severity.WARNING,
                        f"The meter side sent {size} byte(s) that are no DLMS frame.",
                        at, (index,), codec=kind.value)
        for f in frame.findings:
            if f.code in _DAMAGE_CODES and f.severity is not Severity.INFO:
                self.raise_("tap.meter.damaged", f.code, Severity.ERROR,
                            f"A frame from the meter side arrived damaged: {f.message}"
                            + (f" (expected {f.expected}, found {f.found})"
                               if f.expected and f.found else "")
                            + ". The poller must drop it and ask again.",
                            at, (index,), codec=f.code, expected=f.expected, found=f.found)

    def _answer(self, c: Conn, at: float, index: int, frame: DecodedFrame,
                apdu: dict[str, Any] | None, req: Request, ftype: str) -> None:
        fields = frame.fields
        if ftype == "UA" and req.service == "SNRM":
            c.link_up = index
            c.vs = c.vr = 0
            self.answered_addresses.add(req.server)
            params = fields.get("params")
            if isinstance(params, dict):
                for key in ("max_info_tx", "max_info_rx", "window_tx", "window_rx"):
                    if key in params:
                        self.negotiated[key] = params[key]
        elif ftype == "UA" and req.service == "DISC":
            c.link_up = None
        elif ftype in ("DM", "FRMR"):
            what = f"{ftype} to {req.service}"
            self.refusals[what] = self.refusals.get(what, 0) + 1
            self.raise_("tap.meter.refused", what, Severity.WARNING,
                        f"The meter answered your poller's {req.service} with {ftype} "
                        f"({frame.summary}).", at, (req.index, index), what=what)
        if apdu is None:
            return
        kind = str(apdu.get("apdu_type", ""))
        if kind == "AARE":
            result = apdu.get("result")
            for key in ("max_pdu_size", "dlms_version", "conformance"):
                if key in apdu and result == 0:
                    self.negotiated[f"aare_{key}"] = apdu[key]
            if result == 0:
                c.associated = index
                self.logins_ok += 1
                # the first accepted one; an authenticated one beats a public one (the poller
                # reads its data with it: that is what a configuration needs)
                worked = _worked(frame, req, apdu, self.negotiated)
                if worked is not None and (self.worked is None or (
                        self.worked["authentication"] == "none"
                        and worked["authentication"] != "none")):
                    self.worked = worked
            else:
                self._login_failed(c, at, index, req, apdu)
        elif kind == "RLRE":
            c.associated = None
        elif kind in ("ExceptionResponse", "ConfirmedServiceError"):
            why = str(apdu.get("state_error") or apdu.get("service_error")
                      or apdu.get("initiate_error") or kind)
            what = f"{req.service}: {why}"
            self.refusals[what] = self.refusals.get(what, 0) + 1
            self.raise_("tap.meter.refused", what, Severity.WARNING,
                        f"The meter refused your poller's {req.service}: {why}.", at,
                        (req.index, index), what=what)
        elif kind.startswith(("GET-Response", "SET-Response", "ACTION-Response")):
            invoke = apdu.get("invoke_id")
            if isinstance(invoke, int) and req.invoke_id is not None and invoke != req.invoke_id:
                self.raise_("tap.invoke_id.mismatch", "answer", Severity.WARNING,
                            f"The answer carries invoke-id {invoke}, the request had "
                            f"{req.invoke_id}: a client that matches answers by invoke-id "
                            "drops it (or takes it for another request).", at,
                            (req.index, index), request=req.invoke_id, answer=invoke)
            result = apdu.get("access_result")
            read = IDENTITY_READS.get(req.reads) if req.reads is not None else None
            if read is not None and result == "success" and apdu.get("value") is not None:
                self._identity(read, apdu["value"])
            if isinstance(result, str) and result != "success":
                what = f"{req.service}: {result}"
                self.refusals[what] = self.refusals.get(what, 0) + 1
                self.raise_("tap.meter.refused", what, Severity.INFO,
                            f"The meter refused a {req.service}: {result}.", at,
                            (req.index, index), what=what)

    def _identity(self, key: str, value: Any) -> None:
        """What the poller read of the meter's identity (the first value of each kept)."""
        if key in self.identity:
            return
        value = plain_value(value)
        self.identity[key] = value
        if key == "logical_device_name" and isinstance(value, str) and len(value) >= 3:
            self.identity.setdefault("manufacturer", value[:3])  # the FLAG id (DOMAIN.md)

    def _login_failed(self, c: Conn, at: float, index: int, req: Request,
                      apdu: dict[str, Any]) -> None:
        diag = str(apdu.get("diagnostic_name") or apdu.get("diagnostic") or "rejected")
        self.refusals[f"AARQ: {diag}"] = self.refusals.get(f"AARQ: {diag}", 0) + 1
        self.failed_total += 1
        self.failed_logins.append((at, index))
        while self.failed_logins and at - self.failed_logins[0][0] > self.lockout_window:
            self.failed_logins.popleft()
        recent = len(self.failed_logins)
        window_start = self.failed_logins[0][0]
        pace = (at - window_start) / (recent - 1) if recent > 1 else None
        left = self.lockout_after - recent
        frames = [i for _, i in self.failed_logins][-MAX_EVIDENCE:]
        if left > 0 and pace is not None:
            lock = (f"a meter that locks after {self.lockout_after} failures locks in about "
                    f"{_secs(pace * left)} at this pace")
        elif left > 0:
            lock = (f"{left} more failure(s) lock a meter that locks after "
                    f"{self.lockout_after}")
        else:
            lock = (f"a meter that locks after {self.lockout_after} failures is locked now: "
                    "even the right password fails until the lockout ends")
        message = (f"The meter refused your poller's login ({diag}, client SAP "
                   f"{req.client_sap}): {recent} failed login(s) in the last "
                   f"{self.lockout_window / 60:.0f} min"
                   + (f", one every {_secs(pace)}" if pace is not None else "")
                   + f"; {lock}. Stop the poller's retries until the password is fixed.")
        data = dict(diagnostic=diag, failures=recent, total=self.failed_total,
                    pace=None if pace is None else round(pace, 3), left=max(left, 0),
                    client_sap=req.client_sap)
        self.raise_("tap.poller.login_failed", diag, Severity.ERROR, message, at,
                    (req.index, index), **data)
        if recent >= 2:
            stage = "locked" if left <= 0 else "retrying"
            self.raise_("tap.poller.login_retries", stage,
                        Severity.ERROR, message, at, frames, **data)

    def _bridge_text(self, c: Conn, at: float, index: int, frame: DecodedFrame) -> None:
        text = frame.data.decode("latin-1", errors="replace").strip()
        others = [o for o in self.conns.values()
                  if o.id != c.id and o.poller_closed is None and o.meter_closed is None]
        if "in use" in text.lower():
            holders = ", ".join(f"connection {o.id} from {o.client}" for o in others)
            where, outside = (("in this capture", "not in the capture")
                              if self.vantage == "capture" else
                              ("through this tap", "outside the tap"))
            message = (f"The bridge refused connection {c.id} from {c.client}: '{text}'. "
                       + (f"Its only connection was held by {holders} {where}: "
                          "several clients compete for a single-connection bridge."
                          if others else
                          f"Nothing else was connected {where}: another client "
                          f"({outside}) holds the bridge, or it was still closing the "
                          "previous connection."))
            self.raise_("tap.bridge.busy", "through-tap" if others else "outside",
                        Severity.ERROR, message, at, (index,), text=text,
                        holders=[o.client for o in others], refused=c.client)
        else:
            self.raise_("tap.bridge.message", text[:40], Severity.WARNING,
                        f"The bridge wrote '{text}' to connection {c.id}.", at, (index,),
                        text=text)

    def _stale(self, c: Conn, at: float, index: int, frame: DecodedFrame, service: str, *,
               before_request: bool, waiting: Request | None = None) -> None:
        """Bytes that answer nothing on this connection: what did they answer?"""
        source = next((r for r in reversed(self.orphans)
                       if service in _EXPECTED.get(r.service, ())), None)
        frames: list[int] = [index]
        where = ""
        if source is not None:
            frames.insert(0, source.index)
            where = (f": the late answer to {source.service} (frame #{source.index}) of "
                     f"connection {source.conn}, which the poller had given up on")
        if waiting is not None:
            frames.append(waiting.index)
        when = "before your poller sent anything" if before_request else (
            f"while your poller waited for the answer to {waiting.service}"
            if waiting is not None else "with no request waiting")
        self.raise_("tap.meter.stale_bytes", "late" if source else "unknown", Severity.WARNING,
                    f"Connection {c.id} received {service} {when}{where}. A bridge or modem "
                    "delivers what the meter wrote while no client was connected; a poller "
                    "that takes it for the answer to its own request reads the wrong data.",
                    at, frames, service=service, source=source.index if source else None)
        if source is not None:
            self.orphans.remove(source)
            self.answered_late.add(_silence_key(source))
            self.raise_("tap.poller.timeout_too_short", "stale", Severity.ERROR,
                        f"Your poller gave up on {source.service} (frame #{source.index}, "
                        f"connection {source.conn}) and reconnected; the meter's answer came "
                        f"{at - source.at:.3f} s after the request and reached connection "
                        f"{c.id} as stale bytes: the poller's timeout is shorter than the "
                        "meter's answers.", at, (source.index, index),
                        answer_time=round(at - source.at, 6), service=source.service)

    def _same_request_given_up(self, c: Conn, req: Request, at: float) -> Request | None:
        """The same request (service, server address, client SAP), given up on an earlier
        connection within the last minute and never answered: behind a bridge, its late answer
        arrives on the next connection and fits the new request just as well."""
        for old in self.orphans:  # the oldest first: a meter answers in the order it was asked
            if old.conn != c.id and old.service == req.service and old.server == req.server \
                    and old.client_sap == req.client_sap and not old.malformed \
                    and old.at < req.at and at - old.at <= 60.0:
                return old
        return None

    def _likely_stale(self, c: Conn, at: float, index: int, service: str, req: Request,
                      old: Request) -> None:
        self.orphans.remove(old)
        self.answered_late.add(_silence_key(old))
        req.confused = True
        self.raise_("tap.meter.stale_bytes", "likely", Severity.WARNING,
                    f"Connection {c.id} received {service} {at - req.at:.3f} s after your "
                    f"poller's {req.service} (frame #{req.index}), but the same {old.service} on "
                    f"connection {old.conn} (frame #{old.index}, {at - old.at:.3f} s earlier) "
                    "was never answered: this is most likely that late answer, delivered by a "
                    "bridge or modem to the next session. The poller takes it for its own "
                    "answer and its next request goes unanswered.",
                    at, (old.index, index, req.index), service=service, source=old.index)
        self.raise_("tap.poller.timeout_too_short", "stale", Severity.ERROR,
                    f"Your poller gave up on {old.service} (frame #{old.index}, connection "
                    f"{old.conn}) and reconnected; the meter's answer came {at - old.at:.3f} s "
                    f"after that request and reached connection {c.id} as stale bytes: the "
                    "poller's timeout is shorter than the meter's answers.",
                    at, (old.index, index), answer_time=round(at - old.at, 6),
                    service=old.service)

    def _poller_closed_first(self, c: Conn, at: float) -> None:
        open_assoc = c.associated is not None and not c.released
        open_link = c.link_up is not None and not c.disc_sent
        # A request still waiting is judged later: its answer may yet come (then the poller's
        # timeout was too short) or never (then it is silence, see _silence).
        if open_assoc or open_link:
            what = "association (no RLRQ)" if open_assoc else "HDLC link (no DISC)"
            cite = c.associated if open_assoc else c.link_up
            self.raise_("tap.poller.session_left_open", "assoc" if open_assoc else "link",
                        Severity.ERROR,
                        f"Your poller closed TCP with the {what} still open (opened by frame "
                        f"#{cite}). Behind a bridge, or on a meter that keeps its session, the "
                        "next client is refused until the meter's inactivity timeout.",
                        at, (cite,) if cite is not None else (), what=what)

    def _meter_closed_first(self, c: Conn, at: float, how: CloseHow) -> None:
        pending = next((r for r in c.pending if not r.answered), None)
        idle = at - c.last_at
        if pending is not None:
            self.raise_("tap.meter.closed_on_request", pending.service, Severity.ERROR,
                        f"The meter side closed connection {c.id} ({how.value.upper()}) "
                        f"{at - pending.at:.3f} s after your poller's {pending.service} "
                        f"(frame #{pending.index}), without answering it: a wrong framing "
                        "(wrapper meter given HDLC), a locked-out meter or a taken single "
                        "session.", at, (pending.index,), service=pending.service)
        elif c.poller_frames and idle >= IDLE_CUT_MIN:
            if len(self.idle_cuts) < 20:  # a sample: a day of cuts must not grow memory
                self.idle_cuts.append(idle)
            extra = ("" if self.inactivity_read else
                     " Your poller never read the inactivity timeout (object 0.0.22.0.0.255, "
                     "attribute 8), so it cannot keep the connection alive in time.")
            self.raise_("tap.poller.inactivity_cut", "idle", Severity.WARNING,
                        f"The meter side closed connection {c.id} ({how.value.upper()}) after "
                        f"{idle:.1f} s without traffic: an inactivity timeout cut your poller "
                        f"off.{extra}", at, (), idle=round(idle, 3),
                        read_inactivity=self.inactivity_read)

    def _silence(self, c: Conn, at: float) -> None:
        """At the end of a connection: requests that got no byte back at all."""
        unanswered = [r for r in c.pending if not r.answered]
        if not unanswered or c.closed_by == "meter":
            return  # a close by the meter on a request is its own finding
        for req in unanswered:
            if req.service not in ("SNRM", "AARQ", "DISC") or req.confused:
                continue
            key = _silence_key(req)
            why = (f" The frame itself is malformed ({', '.join(req.malformed)}): a strict "
                   "meter drops it." if req.malformed else
                   " An HDLC meter ignores a frame for another server address or client SAP"
                   " without a word." if req.service == "SNRM" else "")
            answered = sorted(self.answered_addresses - {req.server})
            if answered:
                why += f" The meter did answer at {', '.join(answered)}."
            self.raise_("tap.poller.no_answer", key, Severity.ERROR,
                        f"Your poller's {req.service} to {req.server or 'the meter'} from "
                        f"client SAP {req.client_sap} got no answer at all.{why}",
                        at, (req.index,), service=req.service, server=req.server,
                        client_sap=req.client_sap)

    # -- the end -----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Counts and samples for the session (``settings["tap"]``) and the diagnosis."""
        return {
            "connections": self.connections,
            "failed_connections": dict(self.failed_connects),
            "frames": dict(self.frames),
            "bytes": dict(self.bytes),
            "answer_times": {
                name: {"count": t.count, "late": t.late,
                       **{k: round(v, 6) for k, v in percentiles(t.samples).items()}}
                for name, t in sorted(self.times.items())
            },
            "refusals": dict(self.refusals),
            "negotiated": {k: v for k, v in self.negotiated.items()},
            "logins": {"accepted": self.logins_ok, "failed": self.failed_total},
            "worked": self.worked,
            "finding_counts": {f"{code}|{key}": n for (code, key), n in self.counts.items()},
            "idle_cuts": [round(x, 3) for x in self.idle_cuts[:20]],
        }

    def finding_data(self) -> list[tuple[FindingRaised, int, list[int]]]:
        """Each raised finding with its count and evidence frames, in the order raised.

        A request that got "no answer" on its connection, whose late answer was later seen on
        another connection, was not met by silence: said so, as a warning."""
        out = []
        for k, event in self.raised.items():
            if k[0] == "tap.poller.no_answer" and k[1] in self.answered_late:
                event = replace(
                    event, severity=Severity.WARNING,
                    message=event.message.split(" An HDLC meter")[0].replace(
                        " at all.", " on its connection: its late answer reached a later "
                        "connection (see tap.meter.stale_bytes)."))
            elif k[0] == "tap.poller.no_answer" and "did answer" not in event.message:
                # addresses answered after this finding was raised (a poller trying several)
                answered = sorted(self.answered_addresses - {str(event.data.get("server"))})
                if answered:
                    event = replace(event, message=event.message
                                    + f" The meter did answer at {', '.join(answered)}.")
            out.append((event, self.counts[k], list(self.evidence.get(k, []))))
        return out


def _answered_request(c: Conn, frame: DecodedFrame) -> Request | None:
    """The request an answer belongs to: the oldest waiting one sent to the address the answer
    comes from (a poller that tries several HDLC addresses, or the wrapper then HDLC, leaves
    the silent ones waiting: the UA of the right address answers its own SNRM, not the first
    one sent); the oldest waiting one when the address says nothing."""
    waiting = [r for r in c.pending if not r.answered]
    fields = frame.fields
    if frame.kind is FrameKind.HDLC:
        source = _server_text(fields.get("src"))
    elif frame.kind is FrameKind.WRAPPER:
        source = f"wPort {fields.get('src_wport')}"
    else:
        source = ""
    if source:
        same = next((r for r in waiting if r.server == source), None)
        if same is not None:
            return same
    return waiting[0] if waiting else None


def plain_value(value: Any) -> Any:
    """A decoded COSEM value ready for JSON: text for printable bytes, else spaced hex."""
    if isinstance(value, bytes | bytearray):
        if value and all(32 <= b < 127 for b in value):
            return bytes(value).decode("ascii")
        return bytes(value).hex(" ").upper()
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _silence_key(req: Request) -> str:
    return f"{req.service} {req.server} {req.client_sap}"


def _secs(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.2f} s"


def _malformed_name(code: str) -> str:
    if code.startswith("hdlc.address"):
        return "address_size3" if code == "hdlc.address.size3" else "address"
    return "malformed"


def _server_text(info: object) -> str:
    if not isinstance(info, dict) or info.get("role") != "server":
        return ""
    if info.get("physical") is None:
        return f"server {info.get('logical')} ({info.get('size')}-byte)"
    return f"server {info.get('logical')}/{info.get('physical')} ({info.get('size')}-byte)"


def _sap(info: object) -> int | None:
    if isinstance(info, dict) and info.get("role") == "client":
        sap = info.get("sap")
        return sap if isinstance(sap, int) else None
    return None
