"""Rung 5: server address discovery when the meter stays silent after SNRM.

A small, ordered matrix (DOMAIN.md section 2): the given/default 1/1 first (already tried by
the earlier rung), then those derived from the serial number when given (its last 4 digits, the
vendor guide's rule; ``SN % 10000 + 1000``, gurux-dlms's default formula), then the 1-byte form,
then physical addresses 1, 16, 17 in 2- and 4-byte forms. Paced, budgeted, stops at the
first answer. Only the public client's SNRM is sent: no password is spent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from dlmsdoctor.codec.hdlc import ServerAddress
from dlmsdoctor.codec.model import Severity
from dlmsdoctor.events import Event, StepStatus
from dlmsdoctor.probes import hdlc
from dlmsdoctor.probes.base import Probe, ProbeContext
from dlmsdoctor.probes.safety import check_lockout

COMMON_PHYSICAL = (1, 16, 17)
# A meter that closes on a wrong address closes on some, not on every one: after this many
# immediate closes in a row (the framing probe's included) it is dropping every client.
MAX_CLOSES_IN_A_ROW = 4


def _forms(logical: int, physical: int) -> list[ServerAddress]:
    out = []
    if logical < 128 and physical < 128:
        out.append(ServerAddress(logical, physical, 2))
    if logical < 0x4000 and physical < 0x4000:
        out.append(ServerAddress(logical, physical, 4))
    return out


def address_matrix(serial_number: str | None,
                   first: ServerAddress | None = None) -> list[tuple[ServerAddress, str]]:
    """The ordered candidates with where each came from; ``first`` (already tried) excluded."""
    candidates: list[tuple[ServerAddress, str]] = [(ServerAddress(1, 1, 2), "default")]
    # A serial number the user gave is the strongest hint: its addresses come first.
    digits = "".join(ch for ch in serial_number or "" if ch.isdigit())
    if digits:
        number = int(digits)
        for phys, source in ((int(digits[-4:]), "serial_last4"),
                             (number % 10000 + 1000, "serial_mod")):
            for addr in _forms(1, phys):
                candidates.append((addr, source))
    candidates.append((ServerAddress(1, None, 1), "common"))
    for size in (2, 4):
        for phys in COMMON_PHYSICAL:
            candidates.append((ServerAddress(1, phys, size), "common"))
    seen: set[ServerAddress] = set() if first is None else {first}
    out = []
    for addr, source in candidates:
        if addr not in seen:
            seen.add(addr)
            out.append((addr, source))
    return out


def _label(addr: ServerAddress) -> str:
    return f"{hdlc.server_text(addr)}@{addr.size}"


class AddressProbe(Probe):
    id = "address.discover"
    title = "Server address discovery"
    layer = "address"
    requires = ("tcp.connect",)

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        facts = ctx.facts
        if facts.framing == "wrapper":
            return "wrapper framing: no HDLC address"
        if facts.server_confirmed:
            return "the meter answered at the first address"
        if not facts.hdlc_silent:
            return "the meter did not stay silent"
        if facts.foreign_protocol is not None:
            return f"the port answers in {facts.foreign_protocol}, not DLMS: no address helps"
        if ctx.options.server_address is not None:
            return "address given by the user (not changed)"
        return None

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        opts = ctx.options
        matrix = address_matrix(opts.serial_number, opts.first_server())
        budget = opts.discovery_budget
        wait = opts.discovery_timeout
        if wait is None:
            wait = ctx.probe_timeout()
        tried: list[str] = [_label(opts.first_server())]
        closes = 1 if ctx.facts.peer_closed_on_first_frame else 0
        for attempt, (addr, source) in enumerate(matrix[:budget], start=1):
            if attempt > 1:
                await ctx.sleep(opts.discovery_pace)
            ctx.check_cancel()
            answer = await hdlc.snrm(ctx, self.id, addr, hdlc.PUBLIC_CLIENT, wait)
            tried.append(_label(addr))
            if answer.outcome == "closed":
                if answer.closed_at_once:
                    check_lockout(ctx, self.id, answer.reply)
                closes += 1
                if closes >= MAX_CLOSES_IN_A_ROW:
                    yield ctx.finding(
                        self.id, "address.closed_every_time", Severity.ERROR,
                        f"the meter closed the connection at our first frame for {closes} "
                        "addresses in a row: it drops every client, not only wrong addresses "
                        "(locked out, its session held by another client, or access "
                        "restricted); discovery stops here", tried=tried, closes=closes)
                    yield ctx.finished(self.id, StepStatus.FAILED,
                                       f"closed at once for {closes} addresses; stopped",
                                       tried=tried, found=None)
                    return
            else:
                closes = 0
            if not answer.answered:
                continue
            facts = ctx.facts
            if answer.server is not None:
                # The answer came from another address than the one just asked: a late answer
                # to an earlier SNRM. The meter lives where the answer says.
                yield ctx.finding(self.id, "hdlc.late_answer", Severity.WARNING,
                                  f"the {answer.outcome.upper()} came from "
                                  f"{hdlc.server_text(answer.server)} ({answer.server.size}-byte)"
                                  f", not from {hdlc.server_text(addr)} ({addr.size}-byte): "
                                  "a late answer to an "
                                  "earlier SNRM (a slow meter or link)", answer.frames,
                                  frame_type=answer.outcome.upper())
                source = "late_answer"
                addr = answer.server
                if addr in facts.snrm_sent_at:
                    facts.saw_answer_after(ctx.now() - facts.snrm_sent_at[addr])
            facts.server, facts.server_confirmed, facts.framing = addr, True, "hdlc"
            facts.hdlc_silent = False
            facts.hdlc_dm = answer.outcome == "dm"
            yield ctx.finding(self.id, "address.found", Severity.INFO,
                              f"the meter answers at {hdlc.server_text(addr)} "
                              f"({addr.size}-byte address)", answer.frames,
                              logical=addr.logical, physical=addr.physical,
                              address_size=addr.size, attempt=attempt, derived_from=source)
            hdlc.report_answer(ctx, self.id, addr, answer)
            yield ctx.finished(self.id, StepStatus.OK,
                               f"found {hdlc.server_text(addr)} ({addr.size}-byte) after "
                               f"{attempt} attempt(s)", tried=tried, found=_label(addr))
            return
        if len(matrix) > budget:
            yield ctx.finding(self.id, "address.budget_exhausted", Severity.WARNING,
                              f"stopped after {budget} addresses (discovery budget)",
                              tried=tried)
        yield ctx.finding(self.id, "address.not_found", Severity.ERROR,
                          f"no answer at any of {len(tried)} server addresses", tried=tried)
        yield ctx.finished(self.id, StepStatus.FAILED,
                           f"no answer at {len(tried)} addresses", tried=tried, found=None)
