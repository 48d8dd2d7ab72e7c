"""Rung 3 on an optical head: the IEC 62056-21 mode E handshake (Annex E), then HDLC.

At 300 baud 7E1 the client signs on with ``/?!\\r\\n`` (``/?ADDRESS!\\r\\n`` with
``--serial-number``); the meter answers its identification ``/XXXZ\\2IDENT\\r\\n`` (XXX the
FLAG manufacturer id, Z the highest rate it offers, ``\\2`` the escape announcing mode E, i.e.
HDLC); the client acknowledges with ``ACK V Z Y CR LF`` = ``06 32 Z 32 0D 0A`` (V '2': HDLC
protocol procedure, Y '2': binary mode); once the acknowledgement has left the line both switch
to rate Z, 8N1, and the next rung's SNRM starts HDLC. After the release's DISC the meter is back
at 300 baud: the channel keeps the port a moment longer (``OPTICAL_BACK_TO_IEC``).

What goes wrong, and the finding that says it: nothing back (``optical.no_identification``:
the head is not on the port, sits the wrong way round, the optical port is disabled, or the
meter wants another parity); bytes that are no identification (``optical.garbled``: the port
answers at another rate or format); an identification without ``\\2``
(``optical.no_mode_e``: the meter offers only the data readout, mode C); an identification
(``optical.identification``) and the switch (``optical.mode_e``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from dlmsdoctor.codec.model import Severity, hexs
from dlmsdoctor.codec.text import recognise_iec62056_21
from dlmsdoctor.events import Event, FrameReceived, StepStatus
from dlmsdoctor.link.serial_line import LineFormat, byte_time, parse_baud
from dlmsdoctor.probes import wire
from dlmsdoctor.probes.base import Probe, ProbeContext
from dlmsdoctor.probes.serial import line_changed

ACK = 0x06
# IEC 62056-21 baud-rate characters of protocol modes C and E; '7'..'9' as gurux-dlms reads them
BAUD_OF_CHAR = {"0": 300, "1": 600, "2": 1200, "3": 2400, "4": 4800, "5": 9600, "6": 19200,
                "7": 38400, "8": 57600, "9": 115200}
CHAR_OF_BAUD = {v: k for k, v in BAUD_OF_CHAR.items()}
# IEC 62056-21 reaction time tr: at most 1.5 s before the meter starts its answer
MAX_REACTION = 1.5
# longest identification: '/' + 3 + Z + escape sequences + 16 chars ident + CR LF
MAX_IDENT_BYTES = 32
# after the acknowledgement has left the line, the meter switches its UART (the standard's
# minimum reaction time, 200 ms, is the margin gurux-dlms and vendor tools give it)
SWITCH_WAIT = 0.2
_DEVICE_ADDRESS = re.compile(r"[0-9A-Za-z ]{1,32}")


def signon_request(address: str | None = None) -> bytes:
    """``/?!\\r\\n`` or ``/?ADDRESS!\\r\\n`` (IEC 62056-21 6.3.1, the request message)."""
    addr = (address or "").strip()
    if addr and not _DEVICE_ADDRESS.fullmatch(addr):
        raise ValueError(f"device address {addr!r}: up to 32 letters, digits or spaces")
    return b"/?" + addr.encode("ascii") + b"!\r\n"


def mode_e_ack(baud_char: str) -> bytes:
    """``ACK '2' Z '2' CR LF``: HDLC protocol procedure, rate Z, binary mode (Annex E)."""
    if baud_char not in BAUD_OF_CHAR:
        raise ValueError(f"baud-rate character {baud_char!r} is not 0..9")
    return bytes([ACK, 0x32, ord(baud_char), 0x32, 0x0D, 0x0A])


def parse_identification(data: bytes) -> dict[str, Any] | None:
    """The identification message in ``data`` (wherever it starts), as the codec reads it."""
    start = data.find(b"/")
    while start >= 0:
        frame = recognise_iec62056_21(data, start, len(data))
        if frame is not None and frame.fields.get("iec") == "identification":
            fields = dict(frame.fields)
            fields["baud"] = BAUD_OF_CHAR.get(str(fields.get("baud_char")))
            fields["line"] = frame.data.decode("ascii", "replace").strip()
            fields["offset"] = start
            return fields
        start = data.find(b"/", start + 1)
    return None


class OpticalModeEProbe(Probe):
    id = "optical.mode_e"
    title = "Optical port: IEC 62056-21 mode E handshake"
    layer = "optical"
    requires = ("serial.line",)

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        channel: Any = ctx.channel
        address = (ctx.options.serial_number or "").strip() or None
        try:
            request = signon_request(address)
        except ValueError as exc:
            yield ctx.finished(self.id, StepStatus.FAILED, str(exc))
            return
        sent = await wire.send(ctx, self.id, request)
        fmt_text = f"{channel.baud} {channel.data_format}"
        wait = max(ctx.options.timeout, MAX_REACTION + byte_time(
            len(request) + MAX_IDENT_BYTES, channel.baud, channel.data_format))
        data, received = await _read_line(ctx, self.id, request, wait)
        echo = data.startswith(request)
        answer = data[len(request):] if echo else data
        frames = (sent, *received)
        if echo:
            yield ctx.finding(self.id, "serial.echo", Severity.INFO,
                              "the optical head echoes what we send (it works as a head); the "
                              "echo is recognised and left out", frames, echo=True)
        ident = parse_identification(answer)
        if ident is None and not answer:
            yield ctx.finding(
                self.id, "optical.no_identification", Severity.ERROR,
                f"no identification to the sign-on {request!r} at {fmt_text} within "
                f"{wait:.1f} s: the head is not on the optical port or sits the wrong way round "
                "(cable down), the optical port is disabled, or the meter expects another "
                "parity" + ("; the head itself works (it echoed)" if echo else ""), frames,
                waited=round(wait, 3), echo=echo, request=request.decode("ascii").strip())
            yield ctx.finished(self.id, StepStatus.FAILED, "no identification to the sign-on",
                               echo=echo)
            return
        if ident is None:
            yield ctx.finding(
                self.id, "optical.garbled", Severity.ERROR,
                f"{len(answer)} byte(s) came back to the sign-on, but no identification: the "
                f"optical port answers at another rate or format than {fmt_text} (some are "
                "fixed at 9600), or another protocol", frames, hex=hexs(answer[:48]))
            yield ctx.finished(self.id, StepStatus.FAILED, "bytes, but no identification")
            return
        facts_ident = {k: ident[k] for k in ("manufacturer", "baud_char", "baud", "mode_e",
                                             "ident", "line")}
        ctx.facts.identity.setdefault("optical_identification", ident["line"])
        yield ctx.finding(self.id, "optical.identification", Severity.INFO,
                          f"identification {ident['line']!r}: manufacturer "
                          f"{ident['manufacturer']}, up to {ident['baud'] or '?'} baud"
                          + (", mode E (HDLC)" if ident["mode_e"] else ""), frames,
                          **facts_ident)
        if not ident["mode_e"]:
            yield ctx.finding(
                self.id, "optical.no_mode_e", Severity.ERROR,
                f"the identification {ident['line']!r} has no \\2: the meter offers only the "
                "IEC 62056-21 data readout (mode C) on this port, not DLMS/HDLC", frames,
                **facts_ident)
            yield ctx.finished(self.id, StepStatus.FAILED, "no mode E: data readout only",
                               **facts_ident)
            return
        z = str(ident["baud_char"])
        if z not in BAUD_OF_CHAR:
            yield ctx.finished(self.id, StepStatus.FAILED, f"unknown baud-rate character {z!r}",
                               **facts_ident)
            return
        asked = parse_baud(ctx.options.baud)
        if asked is not None and asked in CHAR_OF_BAUD and asked < BAUD_OF_CHAR[z]:
            z = CHAR_OF_BAUD[asked]  # the user wants a slower rate than offered: ask for it
        ack = mode_e_ack(z)
        await wire.send(ctx, self.id, ack)
        # the meter switches when the ack has arrived: wait for it to leave the line
        await channel.drain()
        await ctx.sleep(SWITCH_WAIT)
        await _collect(ctx, self.id)  # the head's echo of the ack, before the rate changes
        rate = BAUD_OF_CHAR[z]
        await channel.set_line(rate, LineFormat.parse("8N1"))
        channel.mode_e = True
        line_changed(ctx, self.id, f"mode E: switched to {rate} 8N1 after ACK 2 {z} 2")
        ctx.facts.framing = "hdlc"
        yield ctx.finding(self.id, "optical.mode_e", Severity.INFO,
                          f"mode E agreed: HDLC at {rate} 8N1", frames, baud=rate,
                          baud_char=z, ack=hexs(ack))
        yield ctx.finished(self.id, StepStatus.OK,
                           f"{ident['line']}: mode E, HDLC at {rate} 8N1", baud=rate,
                           format="8N1", mode="E", identification=ident["line"],
                           manufacturer=ident["manufacturer"])


async def _collect(ctx: ProbeContext, step_id: str) -> None:
    """Record what is already waiting on the line (an echo) as frames, before a rate change."""
    channel = ctx.channel
    assert channel is not None
    while True:
        chunk = await channel.receive(0.0)
        if chunk is None:
            return
        ctx.frame_count += 1
        ctx.emit(FrameReceived(channel.conn_id, step_id, chunk.at, chunk.data))


async def _read_line(ctx: ProbeContext, step_id: str, request: bytes,
                     wait: float) -> tuple[bytes, tuple[int, ...]]:
    """Bytes until an identification line ends (or ``wait`` runs out), recorded as frames:
    the echo of our request apart from the meter's answer."""
    channel = ctx.channel
    assert channel is not None
    buf = bytearray()
    first_at = last_at = ctx.now()
    deadline = ctx.now() + wait
    while ctx.now() < deadline:
        ctx.check_cancel()
        # wire's receive returns early when the run is cancelled (Ctrl-C mid sign-on)
        chunk = await wire._receive(ctx, channel, max(0.0, deadline - ctx.now()))
        if chunk is None:
            if channel.closed is not None or ctx.cancelled:
                break
            continue
        if not buf:
            first_at = chunk.at
        buf += chunk.data
        last_at = chunk.at
        body = buf[len(request):] if buf.startswith(request) else buf
        slash = body.find(b"/")
        if slash >= 0 and body.find(b"\r\n", slash) >= 0:
            break
    data = bytes(buf)
    indexes: list[int] = []
    parts = ([data[: len(request)], data[len(request):]] if data.startswith(request)
             else [data])
    for number, part in enumerate(parts):
        if not part:
            continue
        indexes.append(ctx.frame_count)
        ctx.frame_count += 1
        ctx.emit(FrameReceived(channel.conn_id, step_id, first_at if number == 0 and
                               len(parts) > 1 else last_at, part))
    ctx.check_cancel()  # what came is on record; a cancelled run stops here
    return data, tuple(indexes)
