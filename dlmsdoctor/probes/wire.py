"""The probes' I/O: connect, send, wait for the next DLMS frame, exchange APDUs, close.

Every byte is emitted as an event as it happens (``FrameSent``; ``FrameReceived`` per chunk the
codec's ``StreamSplitter`` cuts: frames, bridge text, telnet, echo, garbage), so the Session is a
complete record even when a probe fails half-way. Non-DLMS chunks become probe findings here,
once, whichever probe was waiting when they came.

Time is evidence: every request sent is registered with the end of its wait; every DLMS frame
received is matched, as it arrives, to the request it answers (by frame type, addresses, APDU
tag and invoke id), whichever wait is running then: ``FrameReceived.answers`` names that
request, ``.late`` says the answer came after its wait had ended. The delay is kept per service
(``Facts.delays``) so that later waits for that service allow for it, and a late answer raises
``timing.slow_service``: the meter works, but slowly. Answers to requests of a connection that
closed are still recognised when a bridge delivers them at the start of the next one. A frame
with a wrong HCS or FCS is never taken as an answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.codec.model import DecodedFrame, FrameKind, Severity, hexs
from dlmsdoctor.codec.stream import StreamSplitter
from dlmsdoctor.codec.wrapper import build_wrapper
from dlmsdoctor.events import (
    CloseHow,
    ConnectionClosed,
    ConnectionFailed,
    ConnectionOpened,
    FrameReceived,
    FrameSent,
)
from dlmsdoctor.link.channel import Channel, Chunk, CloseInfo, ConnectError
from dlmsdoctor.probes.base import MAX_SCALED_WAIT, ProbeContext

DLMS_KINDS = (FrameKind.HDLC, FrameKind.WRAPPER)
# bridge/text chunk kinds -> (probe finding code, severity)
_EXTRA_CODES: dict[FrameKind, tuple[str, Severity]] = {
    FrameKind.BRIDGE_MESSAGE: ("bridge.message", Severity.WARNING),
    FrameKind.TELNET: ("bridge.telnet", Severity.WARNING),
    FrameKind.IEC62056_21: ("meter.iec62056_21", Severity.WARNING),
    FrameKind.ECHO: ("link.echo", Severity.WARNING),
    FrameKind.TEXT: ("link.garbage", Severity.WARNING),
    FrameKind.GARBAGE: ("link.garbage", Severity.WARNING),
}


# codec findings that make a received frame damaged: never an answer
DAMAGE_CODES = frozenset({"hdlc.hcs.mismatch", "hdlc.fcs.mismatch"})
# the answer tags a request may get: AARQ -> AARE, RLRQ -> RLRE, GET -> GET-Response,
# SET -> SET-Response, ACTION -> ACTION-Response; exception-response (D8) and
# confirmed-service-error (0E) fit any request
ANSWER_TAGS = {0x60: b"\x61", 0x62: b"\x63", 0xC0: b"\xc4", 0xC1: b"\xc5", 0xC3: b"\xc7"}
_ANY_ANSWER = b"\xd8\x0e"
# the service a request asks for, by APDU tag (timing is kept per service)
SERVICE_OF_TAG = {0x60: "association", 0x62: "release", 0xC0: "get", 0xC1: "set",
                  0xC3: "action"}
SERVICE_TEXT = {"link": "SNRM (link set-up)", "disc": "DISC", "association": "AARQ (association)",
                "release": "RLRQ (release)", "get": "GET (read)", "set": "SET",
                "action": "ACTION", "segment": "segment"}
_MAX_ORPHANS = 8


def damaged(frame: DecodedFrame) -> bool:
    """A frame whose checksum is wrong: a meter drops it, and so do we (never an answer)."""
    return frame.kind is FrameKind.HDLC and any(f.code in DAMAGE_CODES for f in frame.findings)


@dataclass
class Request:
    """One frame we sent that expects an answer, with the end of its wait."""

    index: int  # frame index in the Session
    conn_id: int
    service: str  # link, disc, association, release, get, set, action, segment
    kind: str  # SNRM, DISC, I (an APDU), I-seg (a segment, RR expected), RR, WRAPPER
    sent_at: float
    deadline: float | None
    dest_raw: str = ""  # HDLC: our destination (the server) and source (our client) address
    src_raw: str = ""
    tag: int | None = None  # APDU tag of an I/WRAPPER request
    invoke: int | None = None  # GET/SET/ACTION invoke-id-and-priority byte
    answered: bool = False

    @property
    def waited(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.sent_at

# What a run keeps of what it receives (a hostile or broken peer may flood): noise (text,
# garbage, echo) per connection, and everything per run. Past a cap, chunks are still split
# and counted, not recorded: the Session says how many bytes were dropped, a finding too.
KEEP_NOISE_PER_CONNECTION = 256 * 1024
KEEP_NOISE_CHUNKS_PER_CONNECTION = 1000  # random bytes come cut in tiny chunks, each recorded
KEEP_PER_RUN = 16 * 1024 * 1024


@dataclass
class WireState:
    """Per-connection receive state."""

    splitter: StreamSplitter = field(default_factory=lambda: StreamSplitter(direction="rx"))
    pending: list[tuple[int, DecodedFrame]] = field(default_factory=list)
    bytes_received: int = 0
    frames_sent: int = 0
    last_tx_at: float | None = None
    close_reported: bool = False
    busy_seen: bool = False
    requests: list[Request] = field(default_factory=list)
    # frame index -> (index of the request it answers, late) for matched received frames
    matched: dict[int, tuple[int, bool]] = field(default_factory=dict)
    arrivals: dict[int, float] = field(default_factory=dict)  # DLMS frame index -> arrival
    last_answer_at: float | None = None  # when the last matched answer arrived

    noise_kept: int = 0  # bytes of non-DLMS chunks recorded
    noise_chunks: int = 0
    bytes_dropped: int = 0  # received bytes past the caps: counted, not recorded


@dataclass
class Reply:
    """What came back while waiting for one DLMS frame."""

    frame: DecodedFrame | None = None
    index: int | None = None
    extras: list[tuple[int, DecodedFrame]] = field(default_factory=list)
    closed: CloseInfo | None = None
    waited: float = 0.0
    answers: int | None = None  # the request ``frame`` answers (its Session index), if known
    late: bool = False  # ``frame`` came after the wait for that request had ended
    arrived_at: float | None = None  # when ``frame`` arrived (run clock)

    @property
    def frame_type(self) -> str | None:
        if self.frame is None or self.frame.kind is not FrameKind.HDLC:
            return None
        value = self.frame.fields.get("frame_type")
        return str(value) if value is not None else None

    @property
    def busy(self) -> bool:
        return any(f.fields.get("code") == "stream.bridge.busy" for _, f in self.extras)


def _state(ctx: ProbeContext, channel: Channel) -> WireState:
    state = ctx.wire_state.get(channel.conn_id)
    if state is None:
        state = ctx.wire_state[channel.conn_id] = WireState()
    assert isinstance(state, WireState)
    return state


async def connect(ctx: ProbeContext, step_id: str) -> Channel | ConnectError:
    """Open a new connection (closing none: the caller closes the old one first)."""
    ctx.check_cancel()
    ctx.facts.conn_count += 1
    conn_id = ctx.facts.conn_count
    opts = ctx.options
    start = ctx.now()
    try:
        channel = await ctx.channel_factory(opts.host, opts.port, opts.connect_timeout, conn_id)
    except ConnectError as exc:
        ctx.emit(ConnectionFailed(conn_id, opts.host, opts.port, ctx.now(), exc.reason,
                                  exc.message, exc.elapsed or ctx.now() - start))
        return exc
    ctx.channel = channel
    ctx.wire_state[conn_id] = WireState()
    ctx.emit(ConnectionOpened(conn_id, opts.host, opts.port, channel.opened_at,
                              channel.connect_time, channel.local_port, channel.local_host,
                              link=getattr(channel, "link", "tcp")))
    return channel


async def send(ctx: ProbeContext, step_id: str, data: bytes, *, wait: float | None = None,
               deadline: float | None = None, service: str | None = None) -> int:
    """Send one frame; returns its frame index in the Session.

    ``wait`` (seconds from the send) or ``deadline`` (run clock): when the wait for its answer
    ends; an answer after it is late (``FrameReceived.late``)."""
    channel = ctx.channel
    if channel is None:
        raise RuntimeError("send without a connection")
    state = _state(ctx, channel)
    state.splitter.expect_echo(data)
    at = await channel.send(data)
    index = ctx.frame_count
    ctx.frame_count += 1
    ctx.emit(FrameSent(channel.conn_id, step_id, at, data))
    state.frames_sent += 1
    state.last_tx_at = at
    if deadline is None and wait is not None:
        deadline = at + wait
    request = _request_of(data, index, channel.conn_id, at, deadline)
    if request is not None:
        if service is not None:
            request.service = service  # e.g. the last segment of an AARQ: its answer is the AARE
        state.requests.append(request)
        del state.requests[:-16]  # only recent requests can still be answered
    return index


def _request_of(data: bytes, index: int, conn_id: int, at: float,
                deadline: float | None) -> Request | None:
    """What answer a frame we sent expects (None: none, e.g. an RR that ends a window)."""
    if data[:2] == b"\x00\x01" and len(data) > 8:
        tag = data[8]
        return Request(index, conn_id, SERVICE_OF_TAG.get(tag, "other"), "WRAPPER", at,
                       deadline, dest_raw=data[4:6].hex(), src_raw=data[2:4].hex(), tag=tag,
                       invoke=data[10] if tag in (0xC0, 0xC1, 0xC3) and len(data) > 10 else None)
    if data[:1] != b"\x7e":
        return None
    frame = hd.parse_hdlc(data, 0, "tx")
    ftype = frame.fields.get("frame_type")
    dest, src = frame.fields.get("dest"), frame.fields.get("src")
    dest_raw = str(dest.get("raw", "")) if isinstance(dest, dict) else ""
    src_raw = str(src.get("raw", "")) if isinstance(src, dict) else ""

    def request(service: str, kind: str, tag: int | None = None,
                invoke: int | None = None) -> Request:
        return Request(index, conn_id, service, kind, at, deadline, dest_raw, src_raw, tag,
                       invoke)

    if ftype == "SNRM":
        return request("link", "SNRM")
    if ftype == "DISC":
        return request("disc", "DISC")
    if ftype == "RR":
        return request("segment", "RR")
    if ftype != "I":
        return None
    info = frame_info(frame)
    if frame.fields.get("segmented"):
        first = info[3] if info[:3] == hd.LLC_TO_SERVER and len(info) > 3 else None
        return request("segment", "I-seg", first)
    if info[:3] == hd.LLC_TO_SERVER and len(info) > 3:
        apdu = info[3:]
        return request(SERVICE_OF_TAG.get(apdu[0], "other"), "I", apdu[0],
                       apdu[2] if apdu[0] in (0xC0, 0xC1, 0xC3) and len(apdu) > 2 else None)
    # the last segment of a segmented APDU: the answer is to the APDU, whose first segment
    # carried the tag (the caller knows it; matched as an I-frame answer of any tag)
    return request("other", "I")


def _answer_fits(request: Request, frame: DecodedFrame) -> bool:
    """Whether ``frame`` (valid, DLMS) can be the answer to ``request``."""
    if frame.kind is FrameKind.WRAPPER:
        if request.kind != "WRAPPER" or len(frame.data) <= 8:
            return False
        # the meter's source wPort is our destination wPort
        if frame.data[2:4].hex() != request.dest_raw:
            return False
        return _tag_fits(request, frame.data[8:])
    if request.kind == "WRAPPER":
        return False
    src, dest = frame.fields.get("src"), frame.fields.get("dest")
    if not isinstance(src, dict) or not isinstance(dest, dict):
        return False
    if src.get("raw") != request.dest_raw or dest.get("raw") != request.src_raw:
        return False
    ftype = frame.fields.get("frame_type")
    if ftype in ("DM", "FRMR"):
        return True  # a refusal answers whatever is pending
    if request.kind == "SNRM":
        return ftype == "UA"
    if request.kind == "DISC":
        return ftype == "UA" and not frame_info(frame)  # a UA with parameters answers an SNRM
    if request.kind == "I-seg":
        return ftype in ("RR", "RNR")
    if request.kind == "RR":
        return ftype == "I"
    if ftype in ("RR", "RNR"):
        return False  # an acknowledgement, not the answer (the I-frame may follow)
    if ftype != "I":
        return False
    info = frame_info(frame)
    if info[:3] != hd.LLC_TO_CLIENT:
        return request.tag is None  # a continuation segment: no tag to check
    return _tag_fits(request, info[3:])


def _tag_fits(request: Request, answer: bytes) -> bool:
    if request.tag is None or not answer:
        return True
    if answer[:1] in _ANY_ANSWER:
        return True
    want = ANSWER_TAGS.get(request.tag)
    if want is None or answer[:1] not in want:
        return False
    # GET/SET/ACTION answers repeat the request's invoke-id-and-priority
    return request.invoke is None or len(answer) < 3 or answer[2] == request.invoke


def _match(requests: list[Request], frame: DecodedFrame) -> Request | None:
    """The request ``frame`` answers: the oldest open one it fits (meters answer in order);
    a refusal (DM, FRMR) or an acknowledgement answers the newest."""
    fits = [r for r in requests if not r.answered and _answer_fits(r, frame)]
    if not fits:
        return None
    ftype = frame.fields.get("frame_type") if frame.kind is FrameKind.HDLC else None
    if ftype in ("DM", "FRMR", "RR", "RNR"):
        return fits[-1]
    return fits[0]


def closed_after_first_frame(ctx: ProbeContext, reply: Reply) -> bool:
    """The peer closed right after our first frame on this connection, sending nothing."""
    state = wire_state(ctx) if ctx.channel is not None else None
    return (reply.closed is not None and reply.closed.by_peer and state is not None
            and state.frames_sent == 1 and state.bytes_received == 0)


def _take(ctx: ProbeContext, channel: Channel, step_id: str, frames: list[DecodedFrame],
          at: float) -> None:
    state = _state(ctx, channel)
    for frame in frames:
        size = len(frame.data)
        # a "frame" whose checksums fail is what random bytes look like now and then
        noise = frame.kind not in DLMS_KINDS or not frame.valid
        if ctx.bytes_kept + size > KEEP_PER_RUN or (noise and (
                state.noise_kept + size > KEEP_NOISE_PER_CONNECTION
                or state.noise_chunks >= KEEP_NOISE_CHUNKS_PER_CONNECTION)):
            state.bytes_dropped += size  # a flood: summarised at the close, not stored
            continue
        ctx.bytes_kept += size
        if noise:
            state.noise_kept += size
            state.noise_chunks += 1
        index = ctx.frame_count
        ctx.frame_count += 1
        request = None
        if frame.kind in DLMS_KINDS:
            state.arrivals[index] = at
        if frame.kind in DLMS_KINDS and not damaged(frame):
            # bytes before we spoke on this connection may answer the previous one's requests
            # (a bridge delivering what the meter wrote meanwhile)
            request = _match(state.requests if state.frames_sent else ctx.orphan_requests, frame)
        if request is None:
            ctx.emit(FrameReceived(channel.conn_id, step_id, at, frame.data))
            state.pending.append((index, frame))
            continue
        request.answered = True
        ctx.answered(request.index)
        late = request.deadline is not None and at > request.deadline
        ctx.emit(FrameReceived(channel.conn_id, step_id, at, frame.data, request.index, late))
        state.matched[index] = (request.index, late)
        state.pending.append((index, frame))
        ctx.answered_requests[index] = (request.index, at - request.sent_at)
        # A meter answers in order: while it was still answering an earlier request, ours
        # waited in its queue. Its own time runs from when the meter was free for it.
        free_at = request.sent_at
        if state.last_answer_at is not None and state.last_answer_at > free_at:
            free_at = state.last_answer_at
        state.last_answer_at = at
        if request.service not in ("segment", "other"):
            delay = at - free_at
            ctx.facts.saw_delay(request.service, delay)
            if late and delay > (request.waited or 0.0):
                _report_slow(ctx, step_id, request, index, delay, at - request.sent_at)


def _report_slow(ctx: ProbeContext, step_id: str, request: Request, index: int,
                 delay: float, total: float | None = None) -> None:
    """``timing.slow_service``: the meter answered after the wait (once per service, again
    only when slower still). ``delay``: the meter's own time for it; ``total``: since we sent
    it, when the meter was busy with an earlier request first (queued)."""
    reported = ctx.slow_reported.get(request.service)
    if reported is not None and delay <= reported * 1.25:
        return
    ctx.slow_reported[request.service] = delay
    waited = request.waited or 0.0
    where = ("on the next connection (a bridge kept it)" if request.conn_id !=
             (ctx.channel.conn_id if ctx.channel else request.conn_id) else "")
    what = SERVICE_TEXT.get(request.service, request.service)
    queued = total - delay if total is not None and total - delay > 0.001 else 0.0
    after = (f"{delay:.2f} s after it was free for it (it answered an earlier request first; "
             f"{total:.2f} s after we sent it)" if queued and total is not None
             else f"{delay:.2f} s after it")
    ctx.emit(ctx.finding(
        step_id, "timing.slow_service", Severity.WARNING,
        f"the meter answered our {what} {after}, later than the {waited:.2f} s "
        f"wait{' ' + where if where else ''}: it works, but slowly; a client needs a reply "
        f"timeout above {delay:.1f} s for it",
        (request.index, index), service=request.service, delay=round(delay, 3),
        waited=round(waited, 3), request_frame=request.index, answer_frame=index,
        other_connection=bool(where), queued=round(queued, 3)))


def orphan_requests(ctx: ProbeContext, state: WireState) -> None:
    """The connection is gone: its unanswered requests may still be answered at the start of
    the next one (a bridge buffers what the meter writes meanwhile)."""
    ctx.orphan_requests = ([r for r in ctx.orphan_requests if not r.answered]
                           + [r for r in state.requests if not r.answered])[-_MAX_ORPHANS:]
    state.requests = []


async def _receive(ctx: ProbeContext, channel: Channel, timeout: float) -> Chunk | None:
    """``channel.receive`` that returns early (None) when the run is cancelled."""
    if ctx.cancelled:
        return None
    if ctx.releasing:
        return await channel.receive(timeout)
    reader = asyncio.ensure_future(channel.receive(timeout))
    waiter = asyncio.ensure_future(ctx.cancel.wait())
    try:
        await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not reader.done():  # our task cancelled: a read left behind would steal the
            reader.cancel()  # release's answers ("read() called while ... waiting")
    if reader.done():
        return reader.result()
    reader.cancel()
    return None


async def next_frame(ctx: ProbeContext, step_id: str, timeout: float | None = None) -> Reply:
    """Wait up to ``timeout`` for the next HDLC frame or wrapper PDU; collect what else came."""
    channel = ctx.channel
    reply = Reply()
    if channel is None:
        return reply
    state = _state(ctx, channel)
    timeout = ctx.reply_timeout() if timeout is None else timeout
    start = ctx.now()
    while True:
        while state.pending:
            index, frame = state.pending.pop(0)
            if frame.kind in DLMS_KINDS and not damaged(frame):
                reply.frame, reply.index = frame, index
                reply.answers, reply.late = state.matched.get(index, (None, False))
                reply.arrived_at = state.arrivals.pop(index, None)
                if state.frames_sent:  # an answer to us, not bytes buffered before we spoke
                    ctx.facts.answered_conn = max(ctx.facts.answered_conn, channel.conn_id)
                reply.waited = ctx.now() - start
                _report_extras(ctx, step_id, reply.extras)
                return reply
            reply.extras.append((index, frame))
        if channel.closed is not None:
            break
        remaining = timeout - (ctx.now() - start)
        if remaining <= 0:
            break
        chunk = await _receive(ctx, channel, remaining)
        if chunk is not None:
            state.bytes_received += len(chunk.data)
            _take(ctx, channel, step_id, state.splitter.feed(chunk.data), chunk.at)
            continue
        if ctx.cancelled or channel.closed is None:
            _flush_on_silence(ctx, channel, state, step_id)
            while state.pending:
                reply.extras.append(state.pending.pop(0))
            break
    if channel.closed is not None:
        _take(ctx, channel, step_id, state.splitter.close(), ctx.now())
        while state.pending:
            reply.extras.append(state.pending.pop(0))
        reply.closed = channel.closed
        _report_peer_close(ctx, channel, state)
    reply.waited = ctx.now() - start
    _report_extras(ctx, step_id, reply.extras)
    ctx.check_cancel()
    return reply


async def listen(ctx: ProbeContext, step_id: str, window: float) -> Reply:
    """Collect whatever arrives within ``window`` (unasked bytes after connect)."""
    reply = await next_frame(ctx, step_id, window)
    if reply.frame is not None:
        reply.extras.insert(0, (reply.index or 0, reply.frame))
        reply.frame = None
        # the rest of the window: more may follow
        more = await next_frame(ctx, step_id, max(0.0, window - reply.waited))
        if more.frame is not None:
            reply.extras.append((more.index or 0, more.frame))
        reply.extras.extend(more.extras)
        reply.closed = more.closed
    return reply


def _flush_on_silence(ctx: ProbeContext, channel: Channel, state: WireState, step_id: str) -> None:
    """The splitter holds back text and noise that may still grow; a silence ends it: cut it
    now (and start a fresh splitter) so that the bytes are judged while we still wait."""
    if state.splitter.pending:
        _take(ctx, channel, step_id, state.splitter.close(), ctx.now())
        state.splitter = StreamSplitter(direction="rx")


def _report_peer_close(ctx: ProbeContext, channel: Channel, state: WireState) -> None:
    info = channel.closed
    if info is None or state.close_reported:
        return
    state.close_reported = True
    _report_dropped(ctx, channel, state)
    ctx.emit(ConnectionClosed(channel.conn_id, info.at, info.how, info.by_peer, info.note,
                              state.bytes_dropped))


def _report_dropped(ctx: ProbeContext, channel: Channel, state: WireState) -> None:
    if not state.bytes_dropped:
        return
    ctx.emit(ctx.finding(
        "release" if ctx.releasing else "link", "link.flood", Severity.WARNING,
        f"the peer sent more than a meter would: {state.bytes_dropped} received bytes on "
        f"connection {channel.conn_id} were counted but not kept (caps: "
        f"{KEEP_NOISE_PER_CONNECTION // 1024} KiB or {KEEP_NOISE_CHUNKS_PER_CONNECTION} "
        "chunks of noise per connection, "
        f"{KEEP_PER_RUN // (1024 * 1024)} MiB per run)",
        conn_id=channel.conn_id, bytes_dropped=state.bytes_dropped,
        noise_kept=state.noise_kept))


def _extra_code(frame: DecodedFrame) -> tuple[str, Severity]:
    if frame.kind is FrameKind.PARTIAL and frame.data[:1] == b"\x7e":
        return "hdlc.partial", Severity.WARNING
    if damaged(frame):
        return "hdlc.damaged_answer", Severity.WARNING
    return _EXTRA_CODES.get(frame.kind, ("link.garbage", Severity.WARNING))


def _report_extras(ctx: ProbeContext, step_id: str, extras: list[tuple[int, DecodedFrame]]) -> None:
    for index, frame in extras:
        if frame.kind is FrameKind.BRIDGE_MESSAGE and frame.fields.get("code") == (
            "stream.bridge.busy"
        ):
            continue  # the busy message is the caller's to judge (retry first)
        code, severity = _extra_code(frame)
        # once per run and code: an echoing head or a mode-C meter would repeat it per frame
        if code in ctx.reported_codes:
            continue
        ctx.reported_codes.add(code)
        text = frame.fields.get("text")
        summary = frame.summary
        if code == "hdlc.damaged_answer":
            bad = sorted({f.code for f in frame.findings if f.code in DAMAGE_CODES})
            summary = (f"a damaged HDLC frame arrived ({', '.join(bad)}): not taken as an "
                       f"answer ({frame.summary})")
        ctx.emit(ctx.finding(
            step_id, code, severity, summary, (index,),
            length=len(frame.data), hex=hexs(frame.data[:64]),
            **({"text": str(text)} if text is not None else {}),
        ))


async def close(ctx: ProbeContext, step_id: str) -> CloseInfo | None:
    """Close the current connection cleanly (FIN) and record it; no-op when none is open."""
    channel = ctx.channel
    if channel is None:
        return None
    state = _state(ctx, channel)
    already = channel.closed
    info = await channel.close()
    if already is None:
        leftovers = state.splitter.close()
        _take(ctx, channel, step_id, leftovers, ctx.now())
        _report_extras(ctx, step_id, state.pending)
        state.pending.clear()
        state.close_reported = True
        _report_dropped(ctx, channel, state)
        ctx.emit(ConnectionClosed(channel.conn_id, info.at, CloseHow.LOCAL, False,
                                  bytes_dropped=state.bytes_dropped))
    else:
        _report_peer_close(ctx, channel, state)
    orphan_requests(ctx, state)
    ctx.channel = None
    ctx.facts.forget_connection()
    return info


def peer_closed(ctx: ProbeContext) -> bool:
    return ctx.channel is None or ctx.channel.closed is not None


def wire_state(ctx: ProbeContext) -> WireState | None:
    return None if ctx.channel is None else _state(ctx, ctx.channel)


def backlog(ctx: ProbeContext) -> bool:
    """Whether the meter, which has answered on this connection, still owes an answer to a
    request sent on it within the longest wait: a meter answers in order, so silence to the
    next request proves nothing yet; it may still be busy with the earlier one (a login slower
    than every wait, with our RLRQ, DISC and SNRM queued behind it). The next request then
    listens on for as long again (``ProbeContext.patience``): this costs time only where the
    answer does not come anyway. Never in the release, whose waits are bounded."""
    state = wire_state(ctx)
    if state is None or not state.matched or ctx.releasing:
        return False
    now = ctx.now()
    framing = ctx.facts.framing
    return any(
        not r.answered and now - r.sent_at < MAX_SCALED_WAIT
        and r.service not in ("segment", "other")
        # a request in the other framing is never answered (the port speaks one)
        and (framing is None or (r.kind == "WRAPPER") == (framing == "wrapper"))
        for r in state.requests
    )


# -- HDLC and wrapper exchanges ------------------------------------------------------------

def frame_info(frame: DecodedFrame) -> bytes:
    """The information field of an HDLC frame (offsets in fields are absolute in the stream)."""
    start = frame.fields.get("info_offset")
    length = frame.fields.get("info_length")
    if not isinstance(start, int) or not isinstance(length, int):
        return b""
    rel = start - frame.offset
    return frame.data[rel : rel + length]


@dataclass
class ApduReply:
    apdu: bytes | None
    reply: Reply
    request_index: int
    frames: list[int] = field(default_factory=list)
    # answers to earlier requests met while waiting (frame index, APDU): recorded, skipped
    late: list[tuple[int, bytes]] = field(default_factory=list)
    sent_at: float = 0.0
    waited: float = 0.0  # the wait (the answer is late after it)
    answer_late: bool = False  # ``apdu`` came after the wait, while we listened on for it
    answer_at: float | None = None
    answer_to: int = -1  # the frame the answer answers: the APDU's (last) frame sent

    @property
    def delay(self) -> float | None:
        return None if self.answer_at is None else self.answer_at - self.sent_at


def _expected(apdu: bytes, answer: bytes) -> bool:
    want = ANSWER_TAGS.get(apdu[0]) if apdu else None
    return want is None or not answer or answer[:1] in want or answer[:1] in _ANY_ANSWER


def _ours(reply: Reply, request_indexes: list[int], apdu: bytes, answer: bytes) -> bool:
    """Whether the reply answers this exchange (not an earlier request, answered late)."""
    if reply.answers is not None:
        return reply.answers in request_indexes
    return _expected(apdu, answer)


async def exchange_apdu(
    ctx: ProbeContext, step_id: str, apdu: bytes, client_sap: int, timeout: float | None = None,
    framing: str | None = None, patience: float = 0.0,
) -> ApduReply:
    """Send one APDU with ``framing`` (default: the current one); the reassembled answer.

    ``timeout`` is the wait (default: the service's own, ``ctx.service_wait``); ``patience``
    seconds more are spent listening for an answer that comes late (a slow meter): it is then
    taken, and marked late (``answer_late``, ``FrameReceived.late``), never mistaken for none."""
    facts = ctx.facts
    service = SERVICE_OF_TAG.get(apdu[0], "other") if apdu else "other"
    timeout = ctx.service_wait(service) if timeout is None else timeout
    if patience <= 0 and backlog(ctx):
        patience = ctx.patience(timeout)  # the meter may answer an earlier request first
    start = ctx.now()
    deadline = start + timeout
    final = deadline + max(0.0, patience)
    if (framing or facts.framing) == "wrapper":
        logical = facts.server.logical if facts.server else 1
        index = await send(ctx, step_id, build_wrapper(client_sap, logical, apdu),
                           deadline=deadline)
        out = ApduReply(None, Reply(), index, [index], sent_at=start, waited=timeout,
                        answer_to=index)
        while True:
            reply = await next_frame(ctx, step_id, max(0.0, final - ctx.now()))
            out.reply = reply
            if reply.frame is None or reply.index is None:
                return out
            out.frames.append(reply.index)
            if reply.frame.kind is not FrameKind.WRAPPER:
                return out  # an HDLC frame: the caller decides (a late UA, a wrong framing)
            answer = reply.frame.data[8:]
            if _ours(reply, [index], apdu, answer):
                out.apdu = answer
                _answered(ctx, out, reply)
                return out
            out.late.append((reply.index, answer))
    server = facts.server or hd.ServerAddress(1, 1, 2)
    out = ApduReply(None, Reply(), -1, [], sent_at=start, waited=timeout)
    # The meter's max_info_rx (from its UA) bounds our information fields: longer APDUs go in
    # segments (the S bit), each acknowledged by an RR before the next (window 1).
    limit = facts.hdlc_params.max_info_rx if facts.hdlc_params else 128
    payload = hd.LLC_TO_SERVER + apdu
    segments = [payload[i : i + limit] for i in range(0, len(payload), max(1, limit))]
    ours: list[int] = []
    for number, segment in enumerate(segments):
        last = number == len(segments) - 1
        frame = hd.build_i(server, client_sap, to_server=True, ns=facts.send_seq,
                           nr=facts.recv_seq, info=segment, segmented=not last, llc=False)
        facts.send_seq = (facts.send_seq + 1) % 8
        index = await send(ctx, step_id, frame, deadline=deadline,
                           service=service if last else None)
        ours.append(index)
        out.answer_to = index
        out.request_index = index if out.request_index < 0 else out.request_index
        out.frames.append(index)
        if last:
            break
        ack = await next_frame(ctx, step_id, max(0.0, final - ctx.now()))
        out.reply = ack
        if ack.index is not None:
            out.frames.append(ack.index)
        if ack.frame_type != "RR":
            return out  # FRMR, DM, silence or a close: the caller reads out.reply
    # The codec's reassembler joins the segments (LLC stripped), as `decode` does.
    reassembler = hd.Reassembler()
    first: Reply | None = None
    while True:
        reply = await next_frame(ctx, step_id, max(0.0, final - ctx.now()))
        out.reply = reply
        if reply.frame is None or reply.index is None:
            return out
        ftype = reply.frame_type
        if ftype not in ("I", "RR", "RNR") and reply.answers is not None and (
                reply.answers not in ours):
            # the UA to an earlier DISC or SNRM, come late (a slow meter answers in order):
            # recorded and marked, not this APDU's answer
            continue
        out.frames.append(reply.index)
        if ftype in ("RR", "RNR"):
            continue  # an acknowledgement, the I-frame may follow
        if ftype != "I":
            return out
        first = first or reply
        ns = reply.frame.fields.get("ns")
        if isinstance(ns, int):
            facts.recv_seq = (ns + 1) % 8
        collected = reassembler.feed(reply.frame)
        if collected is not None:
            if _ours(first, ours, apdu, collected):
                out.apdu = collected
                _answered(ctx, out, first)
                return out
            out.late.append((reply.index, collected))
            first = None
            continue  # a late answer to an earlier request: keep waiting
        # segmented answer: ask for the next segment (its own wait: the meter is answering)
        ours.append(await send(ctx, step_id, hd.build_rr(server, client_sap, to_server=True,
                                                          nr=facts.recv_seq),
                               wait=ctx.service_wait(service)))


def _answered(ctx: ProbeContext, out: ApduReply, reply: Reply) -> None:
    """Note when the answer's first frame came, and whether after the wait."""
    out.answer_late = reply.late
    out.answer_at = reply.arrived_at if reply.arrived_at is not None else ctx.now()
