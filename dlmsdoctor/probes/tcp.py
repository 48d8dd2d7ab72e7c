"""Rung 2: TCP. Connect time, or refused / timed out / unreachable / DNS; unasked bytes right
after connect (a bridge's banner or busy text, late answers buffered for an earlier client); if,
when and how the peer closes.

``open_connection`` is also what later rungs use to reconnect after the peer closed. A busy
bridge right after our own close may still be tearing the previous connection down: it waits
``busy_retry_wait`` and retries once before concluding that another client holds the port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from dlmsdoctor.codec.model import FrameKind, Severity, hexs
from dlmsdoctor.events import Event, StepStatus
from dlmsdoctor.link.channel import ConnectError
from dlmsdoctor.probes import wire
from dlmsdoctor.probes.base import Probe, ProbeContext, RunStopped

_FAIL_TEXT = {
    "refused": "connection refused (RST): wrong port, or the service/bridge is down",
    "timeout": "no answer to the connection request: routing, firewall, modem offline or APN",
    "unreachable": "host or network unreachable",
    "dns": "the host name does not resolve",
    "error": "connection failed",
}


@dataclass
class Opened:
    ok: bool
    error: ConnectError | None = None
    unsolicited: list[tuple[int, object]] | None = None
    busy: bool = False
    closed_in_window: bool = False


async def open_connection(ctx: ProbeContext, step_id: str, window: float) -> Opened:
    """Connect, listen ``window`` seconds for unasked bytes, retry once on a busy bridge.

    Emits the findings (``tcp.*``, ``bridge.busy``, ``tcp.unsolicited_bytes``) itself. A bridge
    still busy after the retry stops the run (``target_busy``).
    """
    for attempt in (1, 2):
        got = await wire.connect(ctx, step_id)
        if isinstance(got, ConnectError):
            code = f"tcp.{got.reason}" if got.reason in _FAIL_TEXT else "tcp.error"
            ctx.emit(ctx.finding(step_id, code, Severity.ERROR, connect_failure_text(got),
                                 elapsed=round(got.elapsed, 3), detail=got.message))
            return Opened(False, got)
        if ctx.facts.rtt is None:
            ctx.facts.rtt = got.connect_time  # a handshake is one round trip
        # A banner or buffered bytes come right after accept: two round trips catch them
        # without making every run pay the whole window.
        rtt = ctx.facts.rtt or 0.0
        reply = await wire.listen(ctx, step_id, min(window, max(0.05, 2 * rtt)))
        busy = [(i, f) for i, f in reply.extras if f.fields.get("code") == "stream.bridge.busy"]
        if busy:
            index, frame = busy[0]
            text = str(frame.fields.get("text", ""))
            if attempt == 1:
                await wire.close(ctx, step_id)
                await ctx.sleep(ctx.options.busy_retry_wait)
                continue
            ctx.emit(ctx.finding(
                step_id, "bridge.busy", Severity.ERROR,
                f"The serial-to-TCP bridge says {text!r}: another client (often your own "
                "poller service) holds the meter's port. Pause it, then probe again.",
                (index,), text=text, retried=True, after_retry=True))
            ctx.emit(ctx.finding(step_id, "target.busy", Severity.ERROR,
                                 "The target is held by another client; nothing more is tried.",
                                 signs=["bridge.busy"]))
            await wire.close(ctx, step_id)
            ctx.facts.stop_reason = "target_busy"
            return Opened(False, busy=True)
        if attempt == 2:
            ctx.emit(ctx.finding(
                step_id, "bridge.busy", Severity.WARNING,
                "The bridge was busy for a moment (still tearing down a previous connection); "
                "the retry got through.", text="", retried=True, after_retry=False))
        others = [(i, f) for i, f in reply.extras if f.kind is not FrameKind.ECHO]
        if others:
            data = b"".join(f.data for _, f in others)
            kinds = sorted({f.kind.value for _, f in others})
            ctx.emit(ctx.finding(
                step_id, "tcp.unsolicited_bytes", Severity.WARNING,
                f"{len(data)} byte(s) arrived before anything was sent ({', '.join(kinds)}): "
                "a banner, or stale answers a bridge buffered for an earlier client",
                tuple(i for i, _ in others), length=len(data), kind=",".join(kinds),
                hex=hexs(data[:64])))
        closed = reply.closed is not None
        if closed:
            report_close(ctx, step_id, reply, after_connect=True)
            if not others:
                # Closed while we only listened: an inactivity timeout shorter than our window
                # (or a peer that drops silent clients). Later connections speak at once.
                ctx.facts.closes_when_idle = True
        return Opened(True, unsolicited=list(others), closed_in_window=closed)
    raise AssertionError("unreachable")


def connect_failure_text(error: ConnectError) -> str:
    """A failed connect in plain words: the link's message when it says what happened (refused
    by whom, which name), else our words for its reason with the system's text after them."""
    if error.reason == "timeout":
        return f"timed out: {error.message} (routing, a firewall, a modem offline or its APN)"
    if error.reason in ("refused", "dns", "unreachable") and error.message:
        return error.message
    return f"{_FAIL_TEXT.get(error.reason, 'connection failed')}: {error.message}"


def report_close(ctx: ProbeContext, step_id: str, reply: wire.Reply,
                 after_connect: bool = False) -> None:
    info = reply.closed
    if info is None or not info.by_peer:
        return
    state = wire.wire_state(ctx)
    last_tx = state.last_tx_at if state else None
    ctx.emit(ctx.finding(
        step_id, "tcp.closed_by_peer", Severity.WARNING,
        f"The peer closed the connection ({info.how.value.upper()})"
        + (" right after connect" if after_connect else ""),
        how=info.how.value, after_tx=None if last_tx is None else round(info.at - last_tx, 3),
        after_connect=after_connect, answered=state.bytes_received if state else 0,
        step=step_id))


async def ensure_connection(ctx: ProbeContext, step_id: str) -> bool:
    """An open connection for the next exchange: reuse it, or reconnect when the peer closed."""
    if ctx.channel is not None and ctx.channel.closed is None:
        return True
    if ctx.channel is not None:
        await wire.close(ctx, step_id)
    ctx.check_cancel()
    window = 0.0 if ctx.facts.closes_when_idle else ctx.options.banner_window
    opened = await open_connection(ctx, step_id, window)
    if ctx.facts.stop_reason == "target_busy":
        raise RunStopped("target_busy")
    return opened.ok and ctx.channel is not None and ctx.channel.closed is None


class TcpProbe(Probe):
    id = "tcp.connect"
    title = "TCP connection"
    layer = "tcp"

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        opened = await open_connection(ctx, self.id, ctx.options.banner_window)
        if opened.busy:
            yield ctx.finished(self.id, StepStatus.FAILED, "bridge busy: another client holds it",
                               reason="busy")
            return
        if not opened.ok:
            assert opened.error is not None
            yield ctx.finished(self.id, StepStatus.FAILED, connect_failure_text(opened.error),
                               reason=opened.error.reason, elapsed=opened.error.elapsed)
            return
        conn = ctx.channel
        connect_time = conn.connect_time if conn else None
        details: dict[str, object] = {
            "connect_time": connect_time,
            "conn_id": ctx.facts.conn_count,
            "banner_bytes": sum(len(getattr(f, "data", b"")) for _, f in opened.unsolicited or []),
        }
        ms = f"{connect_time * 1000:.0f} ms" if connect_time is not None else "?"
        if opened.closed_in_window:
            yield ctx.finished(self.id, StepStatus.WARNING,
                               f"connected in {ms}, then the peer closed at once", **details)
        elif opened.unsolicited:
            yield ctx.finished(self.id, StepStatus.WARNING,
                               f"connected in {ms}; unasked bytes arrived", **details)
        else:
            yield ctx.finished(self.id, StepStatus.OK, f"connected in {ms}", **details)
