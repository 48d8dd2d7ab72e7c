"""The probes' I/O: connect, send, wait for the next DLMS frame, exchange APDUs, close.

Every byte is emitted as an event as it happens (``FrameSent``; ``FrameReceived`` per chunk the
codec's ``StreamSplitter`` cuts: frames, bridge text, telnet, echo, garbage), so the Session is a
complete record even when a probe fails half-way. Non-DLMS chunks become probe findings here,
once, whichever probe was waiting when they came.
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
from dlmsdoctor.probes.base import ProbeContext

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


async def send(ctx: ProbeContext, step_id: str, data: bytes) -> int:
    """Send one frame; returns its frame index in the Session."""
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
    return index


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
        ctx.emit(FrameReceived(channel.conn_id, step_id, at, frame.data))
        state.pending.append((index, frame))


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
            if frame.kind in DLMS_KINDS:
                reply.frame, reply.index = frame, index
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
        ctx.emit(ctx.finding(
            step_id, code, severity, f"{frame.summary}", (index,),
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
    ctx.channel = None
    ctx.facts.forget_connection()
    return info


def peer_closed(ctx: ProbeContext) -> bool:
    return ctx.channel is None or ctx.channel.closed is not None


def wire_state(ctx: ProbeContext) -> WireState | None:
    return None if ctx.channel is None else _state(ctx, ctx.channel)


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


# The answer tags a request may get (anything else is a late answer to an earlier request,
# e.g. after a cancelled wait, and is skipped): AARQ -> AARE, RLRQ -> RLRE, GET -> GET-Response,
# ACTION -> ACTION-Response;
# exception-response and confirmed-service-error fit any request.
ANSWER_TAGS = {0x60: b"\x61", 0x62: b"\x63", 0xC0: b"\xc4", 0xC3: b"\xc7"}
_ANY_ANSWER = b"\xd8\x0e"


def _expected(apdu: bytes, answer: bytes) -> bool:
    want = ANSWER_TAGS.get(apdu[0]) if apdu else None
    return want is None or not answer or answer[:1] in want or answer[:1] in _ANY_ANSWER


async def exchange_apdu(
    ctx: ProbeContext, step_id: str, apdu: bytes, client_sap: int, timeout: float | None = None,
    framing: str | None = None,
) -> ApduReply:
    """Send one APDU with ``framing`` (default: the current one); the reassembled answer."""
    facts = ctx.facts
    timeout = ctx.reply_timeout() if timeout is None else timeout
    deadline = ctx.now() + timeout
    if (framing or facts.framing) == "wrapper":
        logical = facts.server.logical if facts.server else 1
        index = await send(ctx, step_id, build_wrapper(client_sap, logical, apdu))
        out = ApduReply(None, Reply(), index, [index])
        while True:
            reply = await next_frame(ctx, step_id, max(0.0, deadline - ctx.now()))
            out.reply = reply
            if reply.frame is None or reply.index is None:
                return out
            out.frames.append(reply.index)
            if reply.frame.kind is not FrameKind.WRAPPER:
                return out  # an HDLC frame: the caller decides (a late UA, a wrong framing)
            answer = reply.frame.data[8:]
            if _expected(apdu, answer):
                out.apdu = answer
                return out
            out.late.append((reply.index, answer))
    server = facts.server or hd.ServerAddress(1, 1, 2)
    out = ApduReply(None, Reply(), -1, [])
    # The meter's max_info_rx (from its UA) bounds our information fields: longer APDUs go in
    # segments (the S bit), each acknowledged by an RR before the next (window 1).
    limit = facts.hdlc_params.max_info_rx if facts.hdlc_params else 128
    payload = hd.LLC_TO_SERVER + apdu
    segments = [payload[i : i + limit] for i in range(0, len(payload), max(1, limit))]
    for number, segment in enumerate(segments):
        last = number == len(segments) - 1
        frame = hd.build_i(server, client_sap, to_server=True, ns=facts.send_seq,
                           nr=facts.recv_seq, info=segment, segmented=not last, llc=False)
        facts.send_seq = (facts.send_seq + 1) % 8
        index = await send(ctx, step_id, frame)
        out.request_index = index if out.request_index < 0 else out.request_index
        out.frames.append(index)
        if last:
            break
        ack = await next_frame(ctx, step_id, max(0.0, deadline - ctx.now()))
        out.reply = ack
        if ack.index is not None:
            out.frames.append(ack.index)
        if ack.frame_type != "RR":
            return out  # FRMR, DM, silence or a close: the caller reads out.reply
    # The codec's reassembler joins the segments (LLC stripped), as `decode` does.
    reassembler = hd.Reassembler()
    while True:
        reply = await next_frame(ctx, step_id, max(0.0, deadline - ctx.now()))
        out.reply = reply
        if reply.frame is None or reply.index is None:
            return out
        out.frames.append(reply.index)
        ftype = reply.frame_type
        if ftype in ("RR", "RNR"):
            continue  # an acknowledgement, the I-frame may follow
        if ftype != "I":
            return out
        ns = reply.frame.fields.get("ns")
        if isinstance(ns, int):
            facts.recv_seq = (ns + 1) % 8
        collected = reassembler.feed(reply.frame)
        if collected is not None:
            if _expected(apdu, collected):
                out.apdu = collected
                return out
            out.late.append((reply.index, collected))
            continue  # a late answer to an earlier request: keep waiting
        # segmented answer: ask for the next segment
        await send(ctx, step_id, hd.build_rr(server, client_sap, to_server=True,
                                             nr=facts.recv_seq))


