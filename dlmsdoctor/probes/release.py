"""Rung 8: release, on every path. RLRQ for an open association, DISC for an HDLC link, then a
clean TCP shutdown. Behind a serial-to-TCP bridge closing TCP does not end the meter's session:
only RLRQ and DISC do, so a poller that follows is not refused until the inactivity timeout.

"Open" includes "maybe open": an SNRM or AARQ that got no answer within its wait may still be
accepted by a slow meter, so it is released as if it had been (RLRQ unless a rejection came
back, DISC for HDLC). Each release answer gets ``ctx.release_wait()``: ``release_timeout``,
longer when the meter was seen answering late. Late answers met meanwhile are reported.
Runs with ``ctx.releasing`` set: its waits ignore the cancel flag, and stay bounded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.codec.hdlc import ServerAddress
from dlmsdoctor.codec.model import Severity
from dlmsdoctor.events import Event, StepStatus
from dlmsdoctor.probes import hdlc, wire
from dlmsdoctor.probes.association import pending_aarq, release_association
from dlmsdoctor.probes.base import Probe, ProbeContext


class ReleaseProbe(Probe):
    id = "release"
    title = "Release (RLRQ, DISC, TCP close)"
    layer = "release"

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        ctx.releasing = True
        try:
            yield ctx.started(self.id, self.title, self.layer)
            facts = ctx.facts
            done: list[str] = []
            clean = True
            if ctx.channel is None:
                yield ctx.finished(self.id, StepStatus.OK, "nothing open")
                return
            wait = ctx.release_wait()
            # what only MAY be open (an unanswered AARQ or SNRM) and stays unanswered was most
            # likely never taken: reported as such, not as an unclean release
            unconfirmed: list[str] = []
            maybe = facts.associated_sap is None and pending_aarq(ctx) is not None
            if ((facts.associated_sap is not None or maybe)
                    and not wire.peer_closed(ctx)):
                ok = await release_association(ctx, self.id, wait)
                done.append("RLRQ" + ("/RLRE" if ok else " (no RLRE)"))
                if maybe and not ok:
                    unconfirmed.append("RLRQ")
                else:
                    clean &= ok
            link = self._link(ctx)
            if link is not None and not wire.peer_closed(ctx):
                maybe = facts.link_client_sap is None
                server, sap = link
                answer = await hdlc.disc(ctx, self.id, server, sap, wait)  # reports late ones
                if maybe and answer.outcome == "ua" and answer.reply.frame is not None and (
                        hd.parse_params(wire.frame_info(answer.reply.frame))):
                    # a UA with link parameters answers the SNRM, not our DISC: the meter DID
                    # set the link up, late. The DISC's own answer is the one that counts.
                    self._late_ua(ctx, server, answer)
                    maybe = False  # the link was up: a silence now is a real no-answer
                    answer = await self._disc_answer(ctx, ctx.release_wait())
                if answer.outcome in ("ua", "dm"):
                    done.append(f"DISC/{answer.outcome.upper()}")
                elif maybe:
                    done.append("DISC (no answer)")
                    unconfirmed.append("DISC")
                else:
                    done.append("DISC (no answer)")
                    clean = False
                    ctx.emit(ctx.finding(self.id, "release.disc_no_answer", Severity.WARNING,
                                         "no UA/DM to our DISC", answer.frames))
            if unconfirmed:
                yield ctx.finding(
                    self.id, "release.unconfirmed", Severity.INFO,
                    f"{' and '.join(unconfirmed)} sent for a request that never got an answer "
                    "(an SNRM or AARQ a slow meter might still have taken); no answer to "
                    "them either: most likely the meter never took it", sent=unconfirmed)
            peer_gone = wire.peer_closed(ctx)
            await wire.close(ctx, self.id)
            if ctx.options.link != "tcp":  # a serial line (issue 11): no TCP to close
                done.append("line lost" if peer_gone else "line closed")
            else:
                done.append("TCP closed by peer" if peer_gone else "TCP FIN")
            if not clean:
                yield ctx.finding(self.id, "release.not_clean", Severity.WARNING,
                                  "the meter may still hold our session until its inactivity "
                                  "timeout; the next client may be refused meanwhile")
            yield ctx.finished(self.id, StepStatus.OK if clean else StepStatus.WARNING,
                               ", ".join(done), steps=done)
        finally:
            if ctx.channel is not None:  # an exception half-way: at least close the socket
                await wire.close(ctx, self.id)

    def _late_ua(self, ctx: ProbeContext, server: ServerAddress, answer: hdlc.LinkAnswer) -> None:
        sent = ctx.facts.snrm_sent_at.get(server)
        delay = None if sent is None else round(ctx.now() - sent, 3)
        if delay is not None:
            ctx.facts.saw_answer_after(delay)
        index = answer.reply.index
        ctx.emit(ctx.finding(
            self.id, "release.late_answer", Severity.WARNING,
            "the UA to an SNRM we had given up on arrived during the release: the meter had "
            "set the link up; our DISC ends it", () if index is None else (index,),
            frame_type="UA", delay=delay))

    async def _disc_answer(self, ctx: ProbeContext, wait: float) -> hdlc.LinkAnswer:
        """Wait for the UA/DM that answers our DISC, after a late UA to the SNRM."""
        deadline = ctx.now() + wait
        while True:
            reply = await wire.next_frame(ctx, self.id, max(0.0, deadline - ctx.now()))
            ftype = reply.frame_type
            if ftype in ("UA", "DM") or reply.frame is None or ctx.now() >= deadline:
                break
        answer = hdlc.LinkAnswer({"UA": "ua", "DM": "dm"}.get(str(ftype), "silence"), reply)
        if answer.outcome in ("ua", "dm"):
            ctx.facts.link_client_sap = ctx.facts.associated_sap = None
        return answer

    @staticmethod
    def _link(ctx: ProbeContext) -> tuple[ServerAddress, int] | None:
        """The HDLC link to DISC: the one up, else the one an unanswered SNRM may have set up."""
        facts = ctx.facts
        if facts.framing not in ("hdlc", None):
            return None
        if facts.link_client_sap is not None:
            return facts.server or ctx.options.first_server(), facts.link_client_sap
        return facts.link_pending
