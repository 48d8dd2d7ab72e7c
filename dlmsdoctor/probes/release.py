"""Rung 8: release, on every path. RLRQ for an open association, DISC for an HDLC link, then a
clean TCP shutdown. Behind a serial-to-TCP bridge closing TCP does not end the meter's session:
only RLRQ and DISC do, so a poller that follows is not refused until the inactivity timeout.
Runs with ``ctx.releasing`` set: its waits ignore the cancel flag, bounded by release_timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from dlmsdoctor.codec.model import Severity
from dlmsdoctor.events import Event, StepStatus
from dlmsdoctor.probes import hdlc, wire
from dlmsdoctor.probes.association import release_association
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
            timeout = ctx.options.release_timeout
            if facts.associated_sap is not None and not wire.peer_closed(ctx):
                ok = await release_association(ctx, self.id)
                done.append("RLRQ" + ("/RLRE" if ok else " (no RLRE)"))
                clean &= ok
            if (facts.framing in ("hdlc", None) and facts.link_client_sap is not None
                    and not wire.peer_closed(ctx)):
                server = facts.server or ctx.options.first_server()
                answer = await hdlc.disc(ctx, self.id, server, facts.link_client_sap, timeout)
                if answer.outcome in ("ua", "dm"):
                    done.append(f"DISC/{answer.outcome.upper()}")
                else:
                    done.append("DISC (no answer)")
                    clean = False
                    ctx.emit(ctx.finding(self.id, "release.disc_no_answer", Severity.WARNING,
                                         "no UA/DM to our DISC", answer.frames))
            peer_gone = wire.peer_closed(ctx)
            await wire.close(ctx, self.id)
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
