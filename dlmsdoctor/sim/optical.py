"""The simulated meter's serial side: line settings read from the pty, byte timing, echo and an
IEC 62056-21 mode E optical front end, all in a ``ByteStream`` between the pty and the meter.

A pseudo-terminal's master and slave share one termios: the meter (holding the master) reads
the rate the client set. A client at another rate than the meter's reaches the meter's UART as
noise: its frames are lost (the meter stays silent, as a real one does). The pty forces 8 data
bits and clears PARENB, so parity cannot be observed: the ``line-format`` fault models a meter
whose UART is set to, e.g., 8E1 while the client uses 8N1 (the only format a pty carries): the
meter's UART ignores parity errors and understands the client, but its answers carry a parity
bit where the client expects the stop bit, so every byte with an even number of 1 bits (parity
bit 0) arrives as a framing error, read as 0x00 by Linux (IGNPAR and PARMRK off). The client
then sees garbage at the right rate and silence at the others: the field signature.

Byte timing: a pty moves bytes at once, so the front end waits each chunk's time on the wire
(10 bits a character at the line's rate) before the meter hears it, and before its answer goes
out: a 300-baud sign-on costs what it costs on hardware.

Optical mode E (IEC 62056-21 Annex E): in IEC mode, at 300 baud, the meter answers a sign-on
``/?!\\r\\n`` (or ``/?ADDRESS!\\r\\n`` with its address) with ``/FFFZ\\2IDENT\\r\\n``; an
acknowledgement ``06 32 Z 32 0D 0A`` (HDLC protocol procedure, rate Z, binary mode) switches it
to rate Z, 8N1, HDLC. A DISC (or the link's inactivity) brings it back to 300 baud IEC mode.
Faults: ``no-mode-e`` (identification without ``\\2``: data readout only), ``optical-silent``
(the port never answers), ``mode-e-rate=BAUD`` (it acknowledges Z but listens at BAUD).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import termios
from dataclasses import dataclass

from dlmsdoctor.codec.model import hexs
from dlmsdoctor.sim.events import EventLog
from dlmsdoctor.sim.faults import Faults
from dlmsdoctor.sim.transport import PtyStream

BITS_PER_CHAR = 10  # 8N1 and 7E1 alike
SIGNON_BAUD = 300
# IEC 62056-21 baud-rate characters of protocol modes C and E ('7'..'9' as gurux-dlms reads them)
BAUD_OF_CHAR = {"0": 300, "1": 600, "2": 1200, "3": 2400, "4": 4800, "5": 9600, "6": 19200,
                "7": 38400, "8": 57600, "9": 115200}
CHAR_OF_BAUD = {v: k for k, v in BAUD_OF_CHAR.items()}
# reaction time tr of IEC 62056-21: 200 ms minimum between a request and the answer
REACTION_TIME = 0.2
# after the DISC of a mode E session the port switches back to 300 baud IEC mode; meanwhile it
# hears nothing (a client that signs on at once is lost: dlmsdoctor's release waits 300 ms)
BACK_TO_IEC_TIME = 0.25
_SIGNON = re.compile(rb"/\?([0-9A-Za-z ]{0,32})!\r\n")
_ACK = re.compile(rb"\x06([0-9])([0-9])([0-9])\r\n")
_SPEEDS = {getattr(termios, f"B{rate}"): rate for rate in
           (50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
            57600, 115200, 230400) if hasattr(termios, f"B{rate}")}


@dataclass(frozen=True)
class LineSettings:
    """The meter's serial port: its HDLC rate (None: any rate works, no emulation), whether an
    optical mode E front end sits before HDLC, the flag id and the highest rate it offers, and
    whether bytes take their time on the wire."""

    rate: int | None = 9600
    optical: bool = False
    flag_id: str = "DLD"
    ident: str = "SIM-METER"
    address: str = ""  # the device address a sign-on may name (empty: any)
    timing: bool = True


def parity_garbled(data: bytes) -> bytes:
    """What an 8N1 reader gets from an 8E1 sender: bytes with even parity bit 0 (an even count
    of 1 bits) end with a 0 where the stop bit belongs: a framing error, read as 0x00."""
    return bytes(0 if bin(b).count("1") % 2 == 0 else b for b in data)


def rate_garbled(data: bytes) -> bytes:
    """Bytes sent at one rate and read at another: noise, never a flag."""
    return bytes(((b * 37 + 0x81) & 0xFF) or 0x01 for b in data).replace(b"\x7e", b"\x5e")


class LineFrontEnd:
    """The serial line between the pty and the meter's HDLC session (a ``ByteStream``)."""

    echoes = True  # the meter must not echo again: echo happens here, at the client's rate

    def __init__(self, pty: PtyStream, line: LineSettings, faults: Faults, log: EventLog,
                 conn: int = 0) -> None:
        self.pty = pty
        self.path = pty.path
        self.line = line
        self.faults = faults
        self.log = log
        self.conn = conn
        self.iec_mode = line.optical
        self.mode_e_rate: int | None = None
        self._iec_buf = bytearray()
        self._disc_seen = False
        self._deaf_until = 0.0
        self.signons = 0

    # -- the line's state -------------------------------------------------------------------
    def client_rate(self) -> int | None:
        try:
            speed = termios.tcgetattr(self.pty.fd)[5]
        except (termios.error, OSError):
            return None
        return _SPEEDS.get(speed)

    def meter_rate(self) -> int | None:
        if self.line.optical:
            return SIGNON_BAUD if self.iec_mode else self.mode_e_rate
        return self.faults.line_rate or self.line.rate

    async def _wire_time(self, nbytes: int, rate: int | None) -> None:
        if self.line.timing and rate:
            await asyncio.sleep(nbytes * BITS_PER_CHAR / rate)

    def reset_line(self, reason: str) -> None:
        """Back to 300 baud IEC mode (after DISC, or when the link times out)."""
        if self.line.optical and not self.iec_mode:
            self.iec_mode = True
            self.mode_e_rate = None
            self._iec_buf.clear()
            self._deaf_until = asyncio.get_running_loop().time() + BACK_TO_IEC_TIME
            self.log.emit("optical.iec_mode", self.conn, reason=reason, baud=SIGNON_BAUD)

    # -- ByteStream -------------------------------------------------------------------------
    async def read(self, size: int) -> bytes:
        while True:
            data = await self.pty.read(size)
            client = self.client_rate()
            await self._wire_time(len(data), client)
            if self.faults.echo:
                await self.pty.write(data)  # the adapter's echo, at the client's own rate
                self.log.emit("bytes.sent", self.conn, hex=hexs(data), what="fault:echo")
            if self.iec_mode:
                await self._iec(data, client)
                continue
            expected = self.meter_rate()
            if expected is not None and client is not None and client != expected:
                self.log.emit("bytes.garbled", self.conn, hex=hexs(data[:64]),
                              client_rate=client, meter_rate=expected,
                              note="the client's rate differs: its bytes are noise here")
                continue
            if self.line.optical and b"\x53" in data:
                self._disc_seen = _has_disc(data)
            return data

    async def write(self, data: bytes) -> None:
        rate = self.meter_rate()
        await self._wire_time(len(data), rate)
        client = self.client_rate()
        if rate is not None and client is not None and client != rate:
            data = rate_garbled(data)
        elif self.faults.line_format and not self.iec_mode:
            data = parity_garbled(data)
        await self.pty.write(data)
        if self._disc_seen:
            self._disc_seen = False
            self.reset_line("disc")

    async def close(self) -> None:
        return None

    # -- IEC 62056-21 mode -------------------------------------------------------------------
    async def _iec(self, data: bytes, client: int | None) -> None:
        if asyncio.get_running_loop().time() < self._deaf_until:
            self.log.emit("bytes.ignored", self.conn, hex=hexs(data[:64]),
                          decode="the port is still switching back to 300 baud IEC mode")
            return
        if client is not None and client != SIGNON_BAUD:
            self.log.emit("bytes.garbled", self.conn, hex=hexs(data[:64]), client_rate=client,
                          meter_rate=SIGNON_BAUD, note="the optical port listens at 300 baud")
            self._iec_buf.clear()
            return
        self._iec_buf += data
        buf = bytes(self._iec_buf)
        signon = _SIGNON.search(buf)
        if signon:
            self._iec_buf.clear()
            self.log.emit("optical.signon", self.conn, hex=hexs(signon.group(0)),
                          address=signon.group(1).decode("ascii"))
            address = signon.group(1).decode("ascii")
            if self.faults.optical_silent:
                self.log.emit("frame.ignored", self.conn, note="fault:optical-silent")
                return
            if address and self.line.address and address != self.line.address:
                self.log.emit("frame.ignored", self.conn, note=f"sign-on for {address!r}")
                return
            self.signons += 1
            await asyncio.sleep(REACTION_TIME if self.line.timing else 0.0)
            await self.write(self.identification())
            return
        ack = _ACK.search(buf)
        if ack:
            self._iec_buf.clear()
            v, z, y = (g.decode("ascii") for g in ack.groups())
            self.log.emit("optical.ack", self.conn, hex=hexs(ack.group(0)), v=v, z=z, y=y)
            if self.faults.no_mode_e or v != "2" or y != "2" or z not in BAUD_OF_CHAR:
                self.log.emit("frame.ignored", self.conn, note="not a mode E acknowledgement")
                return
            self.iec_mode = False
            self.mode_e_rate = self.faults.mode_e_rate or BAUD_OF_CHAR[z]
            self.log.emit("optical.mode_e", self.conn, baud=self.mode_e_rate)
            return
        if len(self._iec_buf) > 256:
            del self._iec_buf[:-64]

    def identification(self) -> bytes:
        top = self.line.rate or 9600
        z = CHAR_OF_BAUD.get(top, "5")
        escape = b"" if self.faults.no_mode_e else b"\\2"
        return (b"/" + self.line.flag_id.encode("ascii")[:3] + z.encode() + escape
                + self.line.ident.encode("ascii") + b"\r\n")


def _has_disc(data: bytes) -> bool:
    """A DISC frame among ``data`` (control 0x53 right after a 1/2/4-byte server address)."""
    from dlmsdoctor.codec.stream import split_stream

    with contextlib.suppress(Exception):
        for frame in split_stream(data, direction="tx"):
            if frame.fields.get("frame_type") == "DISC":
                return True
    return False
