"""Rung 2 on a serial line: open it (who else holds it, permission, lock files), then find the
rate with safe SNRMs (``--baud auto``), or use the one given.

Each rate's result is recorded: ``answer`` (an HDLC frame: UA, DM or FRMR), ``damaged`` (an
HDLC frame that starts but does not check), ``garbage`` (bytes that are no frame), ``echo``
(only our own bytes back: a half-duplex adapter or an optical head), ``silence``. The sweep
stops at the first answer. A meter at another rate hears noise and stays silent; a meter whose
UART uses another parity may understand us and answer in a format we read as garbage: garbage
at one rate and silence at the others is the signature of a format (parity, data bits)
mismatch at that rate. Only the public client's SNRM is sent: no password is ever spent here.

Through an RFC 2217 bridge the bridge's own settings are read first (the poller's settings) and
tried first; other rates only with ``--baud auto``; the channel puts the bridge's settings back
when it closes.

Finding codes: ``serial.no_device``, ``serial.permission``, ``serial.held``, ``serial.locked``,
``serial.holders_unchecked``,
``serial.open_failed``, ``serial.line`` (settings applied), ``serial.pty_format``,
``serial.echo``, ``serial.rates`` (the sweep's table), ``serial.rate_found``,
``serial.garbage``, ``serial.silent``, ``rfc2217.settings``, ``rfc2217.rate_mismatch``,
``rfc2217.unsupported``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from dlmsdoctor.codec.model import FrameKind, Severity, hexs
from dlmsdoctor.events import Event, LineChanged, StepStatus
from dlmsdoctor.link.channel import ConnectError
from dlmsdoctor.link.serial_line import SWEEP_RATES, LineFormat, byte_time, parse_baud
from dlmsdoctor.probes import hdlc, wire
from dlmsdoctor.probes.base import Probe, ProbeContext

_OPEN_CODES = {
    "no-device": "serial.no_device",
    "permission": "serial.permission",
    "held": "serial.held",
    "locked": "serial.locked",
    "rfc2217-unsupported": "rfc2217.unsupported",
}


@dataclass
class RateResult:
    baud: int
    data_format: str
    outcome: str  # answer, damaged, garbage, echo, silence, unsupported (the port refused it)
    frames: tuple[int, ...] = ()
    detail: str = ""
    garbage_hex: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"baud": self.baud, "format": self.data_format,
                               "outcome": self.outcome}
        if self.detail:
            out["detail"] = self.detail
        if self.garbage_hex:
            out["hex"] = self.garbage_hex
        if self.frames:
            out["frames"] = list(self.frames)
        return out


@dataclass
class LineState:
    """What the sweep learned."""

    results: list[RateResult] = field(default_factory=list)
    echo: bool = False


# bytes of a typical request and its answer (an SNRM and its UA: 33 each with parameters)
ROUND_TRIP_BYTES = 66


def line_changed(ctx: ProbeContext, step_id: str, note: str) -> LineChanged:
    channel = ctx.channel
    baud = int(getattr(channel, "baud", 0))
    fmt = str(getattr(channel, "data_format", ""))
    if baud:
        # a round trip on a serial line is the bytes' time on the wire: every wait scales with
        # it (4 x rtt), so a meter at 300 baud is not taken for a silent one
        ctx.facts.rtt = byte_time(ROUND_TRIP_BYTES, baud, LineFormat.parse(fmt or "8N1"))
    event = LineChanged(channel.conn_id if channel else 0, ctx.now(), baud, fmt, note)
    ctx.emit(event)
    # Requests sent at the old settings cannot be answered at the new ones (the meter's answer,
    # if any, went out at the old rate): an answer now is to a request sent now, never a late
    # answer to the silent SNRM of the sweep's previous rate.
    state = wire.wire_state(ctx)
    if state is not None:
        state.requests = []
    ctx.orphan_requests = []
    # the Session keeps findings, not line events: the settings go on record as one
    ctx.emit(ctx.finding(step_id, "serial.line", Severity.INFO,
                         f"line set to {baud} {fmt}: {note}", baud=baud, format=fmt,
                         note=note))
    pty_note = getattr(channel, "format_note", "")
    if pty_note:
        ctx.emit(ctx.finding(step_id, "serial.pty_format", Severity.INFO, pty_note,
                             baud=baud, format=fmt))
    return event


def report_open_error(ctx: ProbeContext, step_id: str, exc: ConnectError) -> str:
    """Findings for a line that did not open; returns the step summary."""
    code = _OPEN_CODES.get(exc.reason, "serial.open_failed")
    data: dict[str, Any] = {"device": ctx.options.host, "reason": exc.reason,
                            "detail": exc.message}
    holders = getattr(exc, "holders", ())
    if holders:
        data["holders"] = [{"pid": h.pid, "command": h.command, "how": h.how} for h in holders]
    group = getattr(exc, "group", None)
    if group:
        data["group"] = group
    ports = getattr(exc, "ports", ())
    if ports:
        data["ports"] = list(ports)
    if exc.reason in ("held", "locked"):
        message = (f"{exc.message}: two programs on one line corrupt each other's frames, so "
                   "nothing was sent. Stop that program (or pause the service), then probe "
                   "again.")
        ctx.facts.stop_reason = "line_busy"
    elif exc.reason == "permission":
        message = (f"{exc.message}: add your user to the group "
                   f"(sudo usermod -aG {group or 'dialout'} $USER, then log in again)")
    else:
        message = exc.message
    ctx.emit(ctx.finding(step_id, code, Severity.ERROR, message, **data))
    return exc.message


def classify(answer: hdlc.LinkAnswer) -> RateResult:
    """How one SNRM at one rate went (the rate filled in by the caller)."""
    extras = [f for _, f in answer.reply.extras]
    echo = any(f.kind is FrameKind.ECHO for f in extras)
    noise = [f for f in extras if f.kind is not FrameKind.ECHO]
    result = RateResult(0, "", "silence", answer.frames)
    if answer.answered:
        result.outcome = "answer"
        result.detail = answer.outcome.upper()
    elif answer.outcome in ("partial", "other", "wrapper") or any(
            f.kind in (FrameKind.HDLC, FrameKind.PARTIAL) and f.data[:1] == b"\x7e"
            for f in noise):
        result.outcome = "damaged"
    elif noise:
        result.outcome = "garbage"
        result.garbage_hex = hexs(b"".join(f.data for f in noise)[:32])
    elif echo:
        result.outcome = "echo"
    if echo and result.outcome != "echo":
        result.detail = (result.detail + " + echo").strip(" +")
    return result


def sweep_plan(ctx: ProbeContext, first: int) -> list[int]:
    """The rates to try: the one given; with auto, the line's first (9600, or the bridge's own
    rate), then the others in field order."""
    given = parse_baud(ctx.options.baud)
    if given is not None:
        return [given]
    return [first] + [r for r in SWEEP_RATES if r != first]


class SerialLineProbe(Probe):
    id = "serial.line"
    title = "Serial line (open, rate, format)"
    layer = "serial"

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        got = await wire.connect(ctx, self.id)
        if isinstance(got, ConnectError):
            summary = report_open_error(ctx, self.id, got)
            yield ctx.finished(self.id, StepStatus.FAILED, summary, reason=got.reason)
            return
        channel: Any = got
        ctx.facts.framing = "hdlc"  # a serial line carries HDLC (the wrapper is for TCP/UDP)
        state = LineState()
        fmt = LineFormat.parse(str(channel.data_format))
        bridge = getattr(channel, "bridge", None)
        if bridge is not None:
            ctx.emit(ctx.finding(
                self.id, "rfc2217.settings", Severity.INFO,
                f"the bridge's serial port was set to {bridge.baud} {bridge.data_format} "
                "(what a client without RFC 2217, e.g. your poller, gets)",
                baud=bridge.baud, format=bridge.data_format))
        unchecked = int(getattr(channel, "holders_unchecked", 0) or 0)
        if unchecked:
            ctx.emit(ctx.finding(
                self.id, "serial.holders_unchecked", Severity.WARNING,
                f"{unchecked} process(es) of other users could not be checked for holding "
                f"{channel.host} (that needs root): if a poller service runs, stop it first "
                f"(sudo fuser -v {channel.host} names it)", unchecked=unchecked))
        opened_note = ("opened for the optical sign-on" if ctx.options.link == "optical"
                       else "opened")
        line_changed(ctx, self.id, opened_note)
        if ctx.options.link == "optical":
            yield ctx.finished(self.id, StepStatus.OK,
                               f"{channel.host} open at {channel.baud} {channel.data_format}",
                               baud=channel.baud, format=str(channel.data_format))
            return
        server = ctx.options.first_server()
        sweep = parse_baud(ctx.options.baud) is None
        answered: RateResult | None = None
        for rate in sweep_plan(ctx, channel.baud):
            ctx.check_cancel()
            if rate != channel.baud:
                try:
                    await channel.set_line(rate, fmt)
                except ConnectError as exc:  # an adapter without this rate: not our bug
                    state.results.append(RateResult(rate, str(fmt), "unsupported",
                                                    detail=exc.message))
                    continue
                line_changed(ctx, self.id, "next rate of the sweep")
            # the sweep's wait: a few round trips at THIS rate (byte time), or the reply timeout
            wait = ctx.probe_timeout() if sweep else None
            answer = await hdlc.snrm(ctx, self.id, server, hdlc.PUBLIC_CLIENT, wait)
            result = classify(answer)
            result.baud, result.data_format = rate, str(fmt)
            state.results.append(result)
            if result.outcome == "echo" or "echo" in result.detail:
                state.echo = True
            if result.outcome == "answer":
                answered = result
                hdlc.report_answer(ctx, self.id, server, answer)
                ctx.facts.server, ctx.facts.server_confirmed = answer.server or server, True
                ctx.facts.hdlc_dm = answer.outcome == "dm"
                break
        yield from_results(ctx, self.id, state, bridge)
        # readable in reports; the structured table is in the serial.rates finding
        table = [f"{r.baud} {r.data_format}: {r.outcome}" + (f" ({r.detail})" if r.detail
                                                             else "") for r in state.results]
        if answered is not None:
            yield ctx.finished(self.id, StepStatus.OK,
                               f"{answered.detail or 'answer'} at {answered.baud} "
                               f"{answered.data_format}" + (
                                   f" after {len(table)} rates" if len(table) > 1 else ""),
                               baud=answered.baud, format=answered.data_format, rates=table)
            return
        # no answer. Garbage: the meter hears us at that rate, so no address helps: stay there.
        # Silence: discovery (other addresses) runs at the first rate.
        garbled = [r for r in state.results if r.outcome in ("garbage", "damaged")]
        back = (garbled or state.results)[0].baud
        if channel.baud != back:
            await channel.set_line(back, fmt)
            line_changed(ctx, self.id, "back to the rate where the meter made a sound"
                         if garbled else "back to the first rate for address discovery")
        ctx.facts.hdlc_silent = not garbled
        if garbled:  # the meter hears us; no other address would read better
            ctx.facts.foreign_protocol = f"bytes that are no frame at {back} baud"
        outcomes = sorted({r.outcome for r in state.results})
        yield ctx.finished(self.id, StepStatus.WARNING,
                           f"open; no HDLC answer at {len(table)} rate(s): {', '.join(outcomes)}",
                           baud=channel.baud, format=str(fmt), rates=table)


def from_results(ctx: ProbeContext, step_id: str, state: LineState, bridge: Any) -> Event:
    """The findings a sweep's table implies; returns the table finding itself (yielded)."""
    results = state.results
    if state.echo:
        ctx.emit(ctx.finding(
            step_id, "serial.echo", Severity.INFO,
            "our own bytes came back: the adapter echoes (half-duplex RS-485 or an optical "
            "head); the echo is recognised and left out", echo=True))
    answered = [r for r in results if r.outcome == "answer"]
    garbage = [r for r in results if r.outcome in ("garbage", "damaged")]
    if answered:
        rate = answered[0]
        if len(results) > 1 or (bridge is not None and bridge.baud != rate.baud):
            ctx.emit(ctx.finding(
                step_id, "serial.rate_found", Severity.WARNING if rate.baud != 9600 else
                Severity.INFO, f"the meter answers at {rate.baud} {rate.data_format}" + (
                    f" (no answer at {', '.join(str(r.baud) for r in results[:-1])})"
                    if len(results) > 1 else ""), rate.frames, baud=rate.baud,
                format=rate.data_format, tried=[r.baud for r in results]))
        if bridge is not None and (bridge.baud != rate.baud or
                                   bridge.data_format != rate.data_format):
            fmt = LineFormat.parse(rate.data_format)
            ctx.emit(ctx.finding(
                step_id, "rfc2217.rate_mismatch", Severity.ERROR,
                f"the bridge is set to {bridge.baud} {bridge.data_format} but the meter answers "
                f"at {rate.baud} {rate.data_format}: set the bridge's serial port to "
                f"{rate.baud} {rate.data_format} (ser2net: '{fmt.ser2net(rate.baud)}' in the "
                "connector line, e.g. connector: serialdev,/dev/ttyUSB0,"
                f"{fmt.ser2net(rate.baud)},local)", rate.frames, bridge_baud=bridge.baud,
                bridge_format=bridge.data_format, meter_baud=rate.baud,
                meter_format=rate.data_format, ser2net=fmt.ser2net(rate.baud)))
    elif garbage:
        where = garbage[0]
        others = [r.baud for r in results if r.outcome in ("silence", "echo")]
        ctx.emit(ctx.finding(
            step_id, "serial.garbage", Severity.ERROR,
            f"bytes that are no frame came back at {where.baud} {where.data_format}"
            + (f" and silence at {', '.join(map(str, others))}" if others else "")
            + ": the meter hears us at this rate but its answers do not arrive intact: a "
            "format (parity/data bits) mismatch, or a rate close to the meter's",
            where.frames, baud=where.baud, format=where.data_format, hex=where.garbage_hex,
            silent=others, tried=[r.baud for r in results]))
    else:
        only_echo = all(r.outcome == "echo" for r in results)
        ctx.emit(ctx.finding(
            step_id, "serial.silent", Severity.ERROR,
            ("only our own echo came back" if only_echo else "no byte came back")
            + f" at {', '.join(str(r.baud) for r in results)}: wrong address, or the meter "
            "does not hear us (wiring, A/B swapped on RS-485, the port disabled, another rate)",
            tried=[r.baud for r in results], echo_only=only_echo))
    return ctx.finding(step_id, "serial.rates", Severity.INFO,
                       "; ".join(f"{r.baud} {r.data_format}: {r.outcome}" for r in results),
                       tuple(i for r in results for i in r.frames),
                       rates=[r.as_json() for r in results])
