"""Rung 4: the HDLC link. SNRM/UA with the negotiated parameters; DM, FRMR, silence, a close and
non-DLMS bytes each classified. Also the DISC used first (optional) and by the release rung.

An HDLC meter ignores a frame not addressed to it: silence after SNRM means a wrong address or
size, a wrong framing, or a dead serial side behind a bridge, never proof the meter is dead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.codec.model import FrameKind, Severity
from dlmsdoctor.events import Event, StepStatus
from dlmsdoctor.probes import wire
from dlmsdoctor.probes.base import Probe, ProbeContext
from dlmsdoctor.probes.late import report_late
from dlmsdoctor.probes.tcp import ensure_connection, report_close

PUBLIC_CLIENT = 16
# What we offer: the defaults, sent explicitly so the UA shows what the meter accepted.
OFFERED_PARAMS = hd.HdlcParams(max_info_tx=128, max_info_rx=128, window_tx=1, window_rx=1)


@dataclass
class LinkAnswer:
    """How the meter answered one SNRM or DISC."""

    # ua, dm, frmr, partial, damaged (an HDLC frame with a wrong checksum: not an answer, but
    # HDLC bytes came back), silence, closed, other, wrapper, no-connection
    outcome: str
    reply: wire.Reply = field(default_factory=wire.Reply)
    request_index: int | None = None
    params: hd.HdlcParams | None = None
    closed_at_once: bool = False
    # the address the answer came from, when it is not the one we asked (a late answer to an
    # earlier SNRM/DISC): the meter lives there
    server: hd.ServerAddress | None = None
    # I/RR/RNR frames met while waiting: late answers to earlier requests (frame index, APDU)
    late: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return self.outcome in ("ua", "dm", "frmr")

    @property
    def frames(self) -> tuple[int, ...]:
        out = [] if self.request_index is None else [self.request_index]
        if self.reply.index is not None:
            out.append(self.reply.index)
        return tuple(out)


def server_text(server: hd.ServerAddress) -> str:
    return str(server.logical) if server.physical is None else f"{server.logical}/{server.physical}"


async def link_request(
    ctx: ProbeContext, step_id: str, frame: bytes, timeout: float | None = None,
    pending: tuple[hd.ServerAddress, int] | None = None,
) -> LinkAnswer:
    """Send an SNRM or DISC and classify the answer. ``pending``: the link an SNRM may set up,
    owed a DISC from the moment it is sent (a cancel may come at any await after)."""
    if not await ensure_connection(ctx, step_id):
        return LinkAnswer("no-connection")
    if pending is not None:
        ctx.facts.link_pending = pending
    timeout = ctx.service_wait("link") if timeout is None else timeout
    deadline = ctx.now() + timeout
    # a meter that still owes an earlier answer answers this one after it: listen on
    final = deadline + (ctx.patience(timeout) if wire.backlog(ctx) else 0.0)
    index = await wire.send(ctx, step_id, frame, deadline=deadline)
    late: list[tuple[int, bytes]] = []
    # A UA/DM matched to an earlier request (the UA to our DISC, come late: a slow meter answers
    # in order) is not this SNRM's answer; kept in case nothing else comes (a meter that never
    # answered that DISC and answers this SNRM with a UA without parameters).
    earlier: wire.Reply | None = None
    # Only for an SNRM (the one request given ``pending``): for a DISC the release itself
    # reports a late UA to its SNRM, then waits on.
    skip_earlier = pending is not None
    while True:
        # after the deadline this still drains what has arrived already (a burst of late
        # answers may hold this request's own)
        reply = await wire.next_frame(ctx, step_id, max(0.0, final - ctx.now()))
        if reply.frame is None:
            if earlier is not None:
                if reply.closed is not None:
                    earlier.closed = reply.closed
                reply = earlier
            break
        ftype = reply.frame_type
        if ftype in ("I", "RR", "RNR"):
            # late answers to earlier requests (a cancelled wait): skip them
            if ftype == "I" and reply.index is not None:
                info = wire.frame_info(reply.frame)
                late.append((reply.index, info[3:] if info[:3] in (hd.LLC_TO_CLIENT,
                                                                  hd.LLC_TO_SERVER) else info))
            continue
        if (skip_earlier and earlier is None and ftype in ("UA", "DM")
                and reply.answers is not None and reply.answers != index):
            earlier = reply
            continue
        break
    # late answers met meanwhile (a late AARE settles the login it answers)
    report_late(ctx, step_id, late)
    answer = LinkAnswer("silence", reply, index, late=late)
    if any(f.kind is FrameKind.IEC62056_21 for _, f in reply.extras):
        ctx.facts.foreign_protocol = "iec62056-21"
    if reply.frame is not None:
        ftype = reply.frame_type
        if reply.frame.kind is FrameKind.WRAPPER:
            answer.outcome = "wrapper"
        elif ftype == "UA":
            answer.outcome = "ua"
            answer.params = hd.parse_params(wire.frame_info(reply.frame)) or hd.HdlcParams()
        elif ftype == "DM":
            answer.outcome = "dm"
        elif ftype == "FRMR":
            answer.outcome = "frmr"
        else:
            answer.outcome = "other"
        answer.server = _other_source(reply.frame.fields.get("src"), frame)
        bad = [f.code for f in reply.frame.findings if f.severity is Severity.ERROR]
        if bad:
            ctx.emit(ctx.finding(step_id, "hdlc.bad_frame", Severity.WARNING,
                                 f"the answer is damaged: {', '.join(bad)}", answer.frames,
                                 codes=bad))
    elif any(f.kind is FrameKind.PARTIAL and f.data[:2] in (b"\x7e\xa0", b"\x7e\xa8")
             for _, f in reply.extras):
        answer.outcome = "partial"  # an HDLC frame cut short: the meter did answer
        if reply.closed is not None:
            report_close(ctx, step_id, reply)
    elif any(wire.damaged(f) for _, f in reply.extras):
        # HDLC came back, damaged: no answer (a client drops it as the meter would), but no
        # silence either: noise or wrong serial settings
        answer.outcome = "damaged"
        answer.reply.index = next(i for i, f in reply.extras if wire.damaged(f))
        if reply.closed is not None:
            report_close(ctx, step_id, reply)
    elif reply.closed is not None:
        answer.outcome = "closed"
        answer.closed_at_once = wire.closed_after_first_frame(ctx, reply)
        report_close(ctx, step_id, reply)
    return answer


def _other_source(src: object, request: bytes) -> hd.ServerAddress | None:
    """The server address an answer came from, if it differs from our request's destination."""
    if not isinstance(src, dict) or src.get("role") not in (None, "server"):
        return None
    logical, physical, size = src.get("logical"), src.get("physical"), src.get("size")
    if not isinstance(logical, int) or size not in (1, 2, 4):
        return None
    seen = hd.ServerAddress(logical, physical if isinstance(physical, int) else None,
                            int(size))
    try:
        asked = hd.encode_server_address(seen)
    except ValueError:
        return None
    # our frame: 7E, format(2), then the destination address
    return None if request[3 : 3 + len(asked)] == asked else seen


async def snrm(ctx: ProbeContext, step_id: str, server: hd.ServerAddress, client_sap: int,
               timeout: float | None = None) -> LinkAnswer:
    ctx.facts.snrm_sent_at[server] = ctx.now()
    answer = await link_request(ctx, step_id, hd.build_snrm(server, client_sap, OFFERED_PARAMS,
                                                            omit_defaults=False), timeout,
                                pending=(server, client_sap))
    facts = ctx.facts
    if answer.outcome in ("silence", "partial", "other", "wrapper"):
        # the meter may still set the link up: the release sends DISC for it
        facts.link_pending = (server, client_sap)
    elif answer.outcome != "no-connection":
        facts.link_pending = None  # answered (or the connection is gone)
    if answer.outcome == "ua":
        facts.framing = "hdlc"
        facts.server = answer.server or server
        facts.server_confirmed = True
        facts.link_client_sap = client_sap
        facts.hdlc_params = answer.params
        facts.send_seq = facts.recv_seq = 0
        facts.associated_sap = None
    return answer


async def disc(ctx: ProbeContext, step_id: str, server: hd.ServerAddress, client_sap: int,
               timeout: float | None = None) -> LinkAnswer:
    answer = await link_request(ctx, step_id, hd.build_disc(server, client_sap), timeout)
    if answer.outcome in ("ua", "dm"):
        # the link is down, and with it any association on it, confirmed or not
        facts = ctx.facts
        facts.link_client_sap = facts.associated_sap = None
        facts.link_pending = None
        if facts.assoc_pending is not None and facts.assoc_pending.framing == "hdlc":
            facts.assoc_pending = None
    return answer


def report_answer(ctx: ProbeContext, step_id: str, server: hd.ServerAddress,
                  answer: LinkAnswer) -> tuple[StepStatus, str]:
    """Findings for one SNRM answer; the step status and summary it implies."""
    where = server_text(server)
    data = {"server": where, "address_size": server.size}
    frames = answer.frames
    if answer.outcome == "ua":
        params = (answer.params or hd.HdlcParams()).as_dict()
        ctx.emit(ctx.finding(step_id, "hdlc.ua", Severity.INFO, f"UA from {where}: link up",
                             frames, params=params, **data))
        p = answer.params or hd.HdlcParams()
        if p.max_info_rx < OFFERED_PARAMS.max_info_tx or p.max_info_tx < OFFERED_PARAMS.max_info_rx:
            ctx.emit(ctx.finding(step_id, "hdlc.params_reduced", Severity.INFO,
                                 "the meter negotiated smaller information fields than offered",
                                 frames, params=params))
        return StepStatus.OK, (f"UA from {where} ({server.size}-byte): max info "
                               f"{p.max_info_tx}/{p.max_info_rx}, window {p.window_tx}/"
                               f"{p.window_rx}")
    if answer.outcome == "dm":
        ctx.emit(ctx.finding(step_id, "hdlc.dm", Severity.ERROR,
                             f"DM from {where}: the meter refuses the link (not ready, or "
                             "another session is active)", frames, **data))
        return StepStatus.FAILED, f"DM from {where}: link refused"
    if answer.outcome == "frmr":
        info = wire.frame_info(answer.reply.frame) if answer.reply.frame else b""
        ctx.emit(ctx.finding(step_id, "hdlc.frmr", Severity.ERROR,
                             f"FRMR from {where}: the meter rejected our frame", frames,
                             hex=info.hex(" ").upper(), **data))
        return StepStatus.FAILED, f"FRMR from {where}: frame rejected"
    if answer.outcome == "silence":
        ctx.emit(ctx.finding(step_id, "hdlc.no_answer", Severity.WARNING,
                             f"no answer to SNRM for {where} ({server.size}-byte) within "
                             f"{answer.reply.waited:.1f} s", frames,
                             waited=round(answer.reply.waited, 3), **data))
        return StepStatus.FAILED, f"silence after SNRM to {where}"
    if answer.outcome == "closed":
        if answer.closed_at_once:
            how = answer.reply.closed.how.value if answer.reply.closed else "?"
            ctx.emit(ctx.finding(
                step_id, "tcp.closed_after_first_frame", Severity.ERROR,
                "The peer closed the connection right after our first frame without a byte back: "
                "wrong framing (a wrapper-only meter), a lockout, or its single session is taken",
                frames, how=how, after_tx=round(answer.reply.waited, 3), framing_sent="hdlc"))
        return StepStatus.FAILED, "the peer closed the connection after SNRM"
    if answer.outcome == "wrapper":
        return StepStatus.FAILED, "a wrapper PDU answered the SNRM"
    if answer.outcome == "partial":
        return StepStatus.FAILED, "the answer to SNRM was cut short"
    if answer.outcome == "damaged":
        return StepStatus.FAILED, ("the answer to SNRM was damaged (wrong checksum): not taken "
                                   "as a link")
    if answer.outcome == "other":
        ctx.emit(ctx.finding(step_id, "hdlc.unexpected", Severity.WARNING,
                             f"unexpected {answer.reply.frame_type} frame after SNRM", frames,
                             frame_type=answer.reply.frame_type))
        return StepStatus.FAILED, f"unexpected {answer.reply.frame_type} after SNRM"
    return StepStatus.FAILED, "no connection"


class DiscFirstProbe(Probe):
    id = "hdlc.disc"
    title = "DISC first (clear a stale link)"
    layer = "hdlc"
    requires = ("tcp.connect",)

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if not ctx.options.disc_first:
            return "not asked (--disc-first)"
        if ctx.options.framing == "wrapper":
            return "wrapper framing has no HDLC link"
        return None

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        server = ctx.options.first_server()
        answer = await disc(ctx, self.id, server, PUBLIC_CLIENT)
        if answer.outcome in ("ua", "dm"):
            yield ctx.finished(self.id, StepStatus.OK,
                               f"{answer.outcome.upper()} to DISC: no stale link left")
        else:
            yield ctx.finished(self.id, StepStatus.WARNING, f"DISC: {answer.outcome}")


class SnrmProbe(Probe):
    id = "hdlc.snrm"
    title = "HDLC link (SNRM/UA)"
    layer = "hdlc"
    requires = ("tcp.connect",)

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if ctx.facts.framing == "wrapper":
            return "the meter speaks the wrapper, not HDLC"
        if ctx.facts.framing is None:
            # auto detection got no answer to either framing: more SNRMs would only hammer
            return "framing unknown (no answer to HDLC nor wrapper)"
        return None

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        facts = ctx.facts
        server = facts.server or ctx.options.first_server()
        if facts.link_client_sap is not None:
            p = facts.hdlc_params or hd.HdlcParams()
            yield ctx.finished(self.id, StepStatus.OK,
                               f"link up with {server_text(server)} (UA during framing detection)",
                               params=p.as_dict(), server=server_text(server),
                               address_size=server.size)
            return
        if facts.hdlc_silent:
            yield ctx.finished(self.id, StepStatus.FAILED,
                               f"no HDLC answer at {server_text(server)} (framing detection)",
                               server=server_text(server), address_size=server.size)
            return
        # DM at framing detection already is the first answer: do not send the same SNRM again
        answer = LinkAnswer("dm") if facts.hdlc_dm else await snrm(ctx, self.id, server,
                                                                   PUBLIC_CLIENT)
        if answer.outcome in ("dm", "partial", "damaged"):
            # DM: not ready or another session active; a cut or damaged answer: a glitch.
            # Clear the link once, then try again.
            if answer.outcome == "dm":
                await disc(ctx, self.id, server, PUBLIC_CLIENT)
            await ctx.sleep(max(0.5, 2 * (facts.rtt or 0.0)))
            answer = await snrm(ctx, self.id, server, PUBLIC_CLIENT)
            if answer.outcome == "dm":
                ctx.emit(ctx.finding(
                    self.id, "target.busy", Severity.WARNING,
                    "The meter keeps refusing the link with DM, even after a DISC: another "
                    "client may hold its single session (pause your poller), or the link layer "
                    "is not ready", answer.frames, signs=["hdlc.dm"]))
        status, summary = report_answer(ctx, self.id, server, answer)
        facts.hdlc_silent = answer.outcome == "silence"
        facts.hdlc_dm = answer.outcome == "dm"
        if answer.closed_at_once:
            facts.peer_closed_on_first_frame = True
            from dlmsdoctor.probes.safety import check_lockout

            check_lockout(ctx, self.id, answer.reply)
        details: dict[str, object] = {"server": server_text(server), "address_size": server.size}
        if answer.params is not None:
            details["params"] = answer.params.as_dict()
        yield ctx.finished(self.id, status, summary, **details)
