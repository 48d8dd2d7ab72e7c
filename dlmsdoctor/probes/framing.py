"""Rung 3: which framing the meter speaks, found with safe probes only (no password spent).

First an SNRM from the public client to the first server address: any HDLC answer (UA, DM,
FRMR) settles it. Otherwise the wrapper (IEC 62056-47) with an AARQ of the public client and no
authentication: an AARE settles it (and is kept as the public association). A wrapper-only meter
reads ``7E A0`` as a bad version: it stays silent or closes the socket, the field signature
"socket closed right after the first frame".
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.codec.model import FrameKind, Severity
from dlmsdoctor.events import Event, StepStatus
from dlmsdoctor.probes import hdlc, wire
from dlmsdoctor.probes.association import PUBLIC, associate, report_result
from dlmsdoctor.probes.base import PendingAarq, Probe, ProbeContext
from dlmsdoctor.probes.safety import check_lockout
from dlmsdoctor.probes.tcp import ensure_connection


class FramingProbe(Probe):
    id = "framing.detect"
    title = "Framing (HDLC or wrapper)"
    layer = "framing"
    requires = ("tcp.connect",)

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if ctx.options.framing != "auto":
            return f"set by the user: {ctx.options.framing}"
        return None

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        facts = ctx.facts
        server = ctx.options.first_server()
        answer = await hdlc.snrm(ctx, self.id, server, hdlc.PUBLIC_CLIENT, ctx.probe_timeout())
        if answer.answered:
            hdlc.report_answer(ctx, self.id, server, answer)
            facts.framing, facts.framing_evidence = "hdlc", answer.outcome
            facts.server, facts.server_confirmed = server, True
            facts.hdlc_dm = answer.outcome == "dm"
            yield self._detected(ctx, "hdlc", answer.outcome, answer.frames)
            yield ctx.finished(
                self.id,
                StepStatus.OK,
                f"HDLC ({answer.outcome.upper()} from {hdlc.server_text(server)})",
                framing="hdlc",
                evidence=answer.outcome,
            )
            return
        if answer.outcome == "partial":
            hdlc.report_answer(ctx, self.id, server, answer)
            facts.framing, facts.framing_evidence = "hdlc", "partial"
            yield self._detected(ctx, "hdlc", "partial", answer.frames)
            yield ctx.finished(
                self.id,
                StepStatus.WARNING,
                "HDLC (the answer to SNRM was cut short)",
                framing="hdlc",
                evidence="partial",
            )
            return
        if answer.outcome != "no-connection":
            hdlc.report_answer(ctx, self.id, server, answer)
        hdlc_closed = answer.closed_at_once
        if hdlc_closed:
            facts.peer_closed_on_first_frame = True
            check_lockout(ctx, self.id, answer.reply)
        # The wrapper, public client, no authentication.
        if not await ensure_connection(ctx, self.id):
            yield ctx.finished(self.id, StepStatus.FAILED, "no connection for the wrapper probe")
            return
        facts.framing = "wrapper"
        facts.server = server
        # owed an RLRQ from the moment it is sent (a cancel may come while it is pending)
        facts.assoc_pending = PendingAarq(PUBLIC.client_sap, "wrapper", ctx.now())
        result = await associate(ctx, self.id, PUBLIC, ctx.probe_timeout())
        late = result.reply.frame if result.reply is not None else None
        if late is not None and late.kind is FrameKind.HDLC:
            # The HDLC meter's answer to our SNRM came after we gave up on it: HDLC after all.
            ftype = result.reply.frame_type if result.reply else None
            facts.framing, facts.framing_evidence = "hdlc", f"late-{str(ftype).lower()}"
            facts.server, facts.server_confirmed = server, True
            facts.saw_answer_after(ctx.now() - facts.snrm_sent_at.get(server, ctx.now()))
            # answered after all; and an HDLC port ignores the wrapper AARQ we sent meanwhile
            facts.link_pending = facts.assoc_pending = None
            if ftype == "UA":
                facts.link_client_sap = hdlc.PUBLIC_CLIENT
                facts.hdlc_params = hd.parse_params(wire.frame_info(late)) or hd.HdlcParams()
                facts.send_seq = facts.recv_seq = 0
            facts.hdlc_dm = ftype == "DM"
            ctx.emit(ctx.finding(self.id, "hdlc.late_answer", Severity.WARNING,
                                 f"the meter's {ftype} to our SNRM came after "
                                 f"{ctx.probe_timeout():.1f} s: a slow link or a slow meter; "
                                 "HDLC it is", tuple(result.frames), frame_type=ftype))
            yield self._detected(ctx, "hdlc", facts.framing_evidence, tuple(result.frames))
            yield ctx.finished(self.id, StepStatus.WARNING, f"HDLC (late {ftype})",
                               framing="hdlc", evidence=facts.framing_evidence)
            return
        if result.outcome in ("accepted", "rejected"):
            facts.framing_evidence = "aare"
            report_result(ctx, self.id, PUBLIC, result)
            ctx.emit(
                ctx.finding(
                    self.id,
                    "wrapper.answer",
                    Severity.INFO,
                    "the meter answered the wrapper with an AARE",
                    tuple(result.frames),
                    src_wport=1,
                    dst_wport=16,
                )
            )
            yield self._detected(ctx, "wrapper", "aare", tuple(result.frames))
            note = " (after closing on HDLC)" if hdlc_closed else ""
            yield ctx.finished(
                self.id, StepStatus.OK, f"wrapper (AARE){note}", framing="wrapper", evidence="aare"
            )
            return
        facts.framing = None
        facts.server = None
        wrapper_closed = (
            result.outcome == "closed"
            and result.reply is not None
            and (result.reply.closed is not None)
        )
        if wrapper_closed and result.reply is not None:
            check_lockout(ctx, self.id, result.reply)
        else:
            ctx.emit(
                ctx.finding(
                    self.id,
                    "wrapper.no_answer",
                    Severity.WARNING,
                    "no answer to the wrapper AARQ",
                    tuple(result.frames),
                    waited=round(result.reply.waited if result.reply else 0, 3),
                )
            )
        if answer.outcome == "silence" or (answer.outcome == "closed" and not wrapper_closed):
            # No HDLC answer at this address, and the wrapper did not make the meter close:
            # most likely an HDLC meter at another address; discovery tries the others.
            facts.framing, facts.hdlc_silent = "hdlc", True
        ctx.emit(
            ctx.finding(
                self.id,
                "framing.undetermined",
                Severity.WARNING,
                "neither the HDLC nor the wrapper probe got an answer",
                hdlc=answer.outcome,
                wrapper=result.outcome,
            )
        )
        yield ctx.finished(
            self.id,
            StepStatus.FAILED,
            f"no answer: HDLC {answer.outcome}, wrapper {result.outcome}",
            hdlc=answer.outcome,
            wrapper=result.outcome,
        )

    def _detected(
        self, ctx: ProbeContext, framing: str, evidence: str, frames: tuple[int, ...]
    ) -> Event:
        return ctx.finding(
            self.id,
            "framing.detected",
            Severity.INFO,
            f"the meter speaks {framing}",
            frames,
            framing=framing,
            evidence=evidence,
        )
