"""Recognisers for the bytes of a stream that are not an HDLC frame or a wrapper PDU.

A gap between frames is cut into chunks that tile it exactly, each a ``DecodedFrame`` of kind
BRIDGE_MESSAGE, IEC62056_21, TELNET, ECHO, TEXT or GARBAGE. The scan is left to right with a
bounded look-ahead at each byte, so a megabyte of noise costs linear time.

Finding codes emitted here:

- ``stream.bridge.busy`` (error): ser2net "Port already in use": its single connection is taken.
- ``stream.bridge.device_busy`` (error): ser2net "Port's device already in use".
- ``stream.bridge.device_error`` (error): ser2net "Device open failure: ..." / "failed open".
- ``stream.bridge.kicked`` (error): ser2net "kicked off, new user is coming".
- ``stream.bridge.denied`` (error): ser2net refused our address.
- ``stream.bridge.port_state`` (error): ser2net port disabled, closing, deleted, shutting down.
- ``stream.bridge.no_free_port`` (error): ser2net rotator had no free port.
- ``stream.iec62056_21`` (warning): IEC 62056-21 (mode A-E) traffic instead of DLMS.
- ``stream.iec62056_21.bcc`` (error): the BCC of an IEC 62056-21 data block is wrong.
- ``stream.telnet`` (warning): telnet / RFC 2217 negotiation from a bridge not in raw mode.
- ``stream.echo`` (info): the bytes we just sent came back (optical head, RS-485 echo).
- ``stream.text`` (warning): printable text where DLMS was expected.
- ``stream.garbage`` (warning): bytes that are none of the above.
- ``stream.flag_fill`` (info): extra HDLC flags (7E) between frames, harmless.

The ser2net wording is from cminyard/ser2net ``dataxfer.c`` (4.x: ``port_new_con``,
``kick_old_user``, ``port_dev_open_done``, ``rot_new_con``); 3.x ends its lines ``\\n\\r``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dlmsdoctor.codec.model import DecodedFrame, Finding, FrameKind, Severity, Span, hexs

# ---------------------------------------------------------------------------------------------
# ser2net messages


@dataclass(frozen=True, slots=True)
class BridgeMessage:
    """One message ser2net writes to a TCP client before closing it."""

    text: bytes  # the fixed start of the message
    code: str
    what: str  # what it means
    action: str  # what to do
    has_detail: bool = False  # "Device open failure: <gensio error>" carries a reason


BRIDGE_MESSAGES: tuple[BridgeMessage, ...] = (
    BridgeMessage(
        b"Port already in use",
        "stream.bridge.busy",
        "The serial-to-TCP bridge (ser2net) refused this connection because its only "
        "connection is taken: another client, often your own poller service, is connected, or "
        "the bridge is still tearing down the previous connection (a reconnect a fraction of a "
        "second after a close).",
        "Wait a moment and retry once; if it persists, stop the other client (poller, SCADA, "
        "another dlmsdoctor) or raise max-connections on the bridge.",
    ),
    BridgeMessage(
        b"Port's device already in use",
        "stream.bridge.device_busy",
        "ser2net refused the connection because another ser2net port using the same serial "
        "device has a client connected.",
        "Stop the client on the other ser2net port that shares this serial device, or use that "
        "port; do not give two long-lived clients two ports on one device.",
    ),
    BridgeMessage(
        b"Port's device failed open",
        "stream.bridge.device_error",
        "ser2net could not open the serial device behind this port.",
        "Check the bridge's serial device (cable, USB adapter, permissions, device name) and "
        "the ser2net log.",
    ),
    BridgeMessage(
        b"Device open failure:",
        "stream.bridge.device_error",
        "ser2net could not open the serial device behind this port (the reason follows).",
        "Check the bridge's serial device (cable, USB adapter, permissions, device name, lock "
        "files) and the ser2net log.",
        has_detail=True,
    ),
    BridgeMessage(
        b"kicked off, new user is coming",
        "stream.bridge.kicked",
        "ser2net (kickolduser mode) dropped this connection because another client connected "
        "to the same port.",
        "Another client is taking the port over: stop it (often a poller service) before "
        "diagnosing.",
    ),
    BridgeMessage(
        b"Accessed denied due to your net address",  # sic, ser2net's spelling
        "stream.bridge.denied",
        "ser2net refused the connection: this client's address is not in the port's allowed "
        "remote addresses.",
        "Connect from an allowed address or add this one to the port's remaddr list.",
    ),
    BridgeMessage(
        b"Access denied",
        "stream.bridge.denied",
        "ser2net refused the connection (tcpd / remote-address rules).",
        "Connect from an allowed address or fix the bridge's access rules.",
    ),
    BridgeMessage(
        b"Port disabled",
        "stream.bridge.port_state",
        "ser2net has this port disabled.",
        "Enable the port in the bridge configuration.",
    ),
    BridgeMessage(
        b"Port closing",
        "stream.bridge.port_state",
        "ser2net is closing this port (reconfiguration or shutdown).",
        "Wait for the bridge to finish and retry.",
    ),
    BridgeMessage(
        b"port is shutting down",
        "stream.bridge.port_state",
        "ser2net is shutting this port down while the connection waited for it.",
        "Wait for the bridge to restart the port and retry.",
    ),
    BridgeMessage(
        b"Port was deleted",
        "stream.bridge.port_state",
        "ser2net deleted this port (configuration reload).",
        "Check the bridge configuration; the port may have moved.",
    ),
    BridgeMessage(
        b"No free port found",
        "stream.bridge.no_free_port",
        "the ser2net rotator found no free port: every serial port behind it is in use.",
        "Stop other clients of the rotator or wait and retry.",
    ),
)
_BRIDGE_FIRST_BYTES = frozenset(m.text[0] for m in BRIDGE_MESSAGES)
_MAX_DETAIL = 200  # ser2net formats the message into a 200-byte buffer

# ---------------------------------------------------------------------------------------------
# telnet (RFC 854) and RFC 2217

IAC, SE, SB = 0xFF, 0xF0, 0xFA
_VERBS = {0xFB: "WILL", 0xFC: "WONT", 0xFD: "DO", 0xFE: "DONT"}
_SIMPLE = {
    0xF1: "NOP", 0xF2: "DATA-MARK", 0xF3: "BREAK", 0xF4: "INTERRUPT-PROCESS",
    0xF5: "ABORT-OUTPUT", 0xF6: "ARE-YOU-THERE", 0xF7: "ERASE-CHARACTER",
    0xF8: "ERASE-LINE", 0xF9: "GO-AHEAD",
}  # fmt: skip
TELNET_OPTIONS = {
    0: "BINARY", 1: "ECHO", 3: "SUPPRESS-GO-AHEAD", 5: "STATUS", 6: "TIMING-MARK",
    24: "TERMINAL-TYPE", 31: "NAWS", 32: "TERMINAL-SPEED", 33: "LINEMODE",
    34: "LINEMODE", 36: "ENVIRON", 39: "NEW-ENVIRON", 44: "COM-PORT-OPTION",
}  # fmt: skip
# RFC 2217 sub-commands, client to server (server replies add 100)
_COM_PORT_CMDS = {
    0: "SIGNATURE", 1: "SET-BAUDRATE", 2: "SET-DATASIZE", 3: "SET-PARITY",
    4: "SET-STOPSIZE", 5: "SET-CONTROL", 6: "NOTIFY-LINESTATE", 7: "NOTIFY-MODEMSTATE",
    8: "FLOWCONTROL-SUSPEND", 9: "FLOWCONTROL-RESUME", 10: "SET-LINESTATE-MASK",
    11: "SET-MODEMSTATE-MASK", 12: "PURGE-DATA",
}  # fmt: skip


def _option_name(option: int) -> str:
    return TELNET_OPTIONS.get(option, f"option {option}")


def _telnet_command_at(buf: bytes, p: int, end: int) -> Span | None:
    """The telnet command starting at ``p`` (IAC ...), or None if there is none."""
    if p + 1 >= end or buf[p] != IAC:
        return None
    cmd = buf[p + 1]
    if cmd in _VERBS:
        if p + 2 >= end:
            return Span(p, end - p, "telnet.command", f"IAC {_VERBS[cmd]} (cut)")
        option = buf[p + 2]
        label = f"IAC {_VERBS[cmd]} {_option_name(option)}"
        return Span(p, 3, "telnet.command", label, value=option, meaning=_verb_meaning(cmd))
    if cmd in _SIMPLE:
        return Span(p, 2, "telnet.command", f"IAC {_SIMPLE[cmd]}")
    if cmd == SB:
        return _subnegotiation(buf, p, end)
    return None


def _verb_meaning(cmd: int) -> str:
    return {
        0xFB: "sender offers to use the option",
        0xFC: "sender refuses the option",
        0xFD: "sender asks the peer to use the option",
        0xFE: "sender asks the peer not to use the option",
    }[cmd]


def _subnegotiation(buf: bytes, p: int, end: int) -> Span:
    close = buf.find(bytes((IAC, SE)), p + 2, end)
    stop = end if close < 0 else close + 2
    option = buf[p + 2] if p + 2 < end else None
    name = _option_name(option) if option is not None else "?"
    label = f"IAC SB {name}"
    meaning = "sub-negotiation" if close >= 0 else "sub-negotiation cut before IAC SE"
    if option == 44 and p + 3 < stop:
        sub = buf[p + 3]
        sub_name = _COM_PORT_CMDS.get(sub % 100, f"command {sub}")
        side = "server" if sub >= 100 else "client"
        label += f" {sub_name}"
        meaning = f"RFC 2217 {side} {sub_name.lower()}"
        if sub % 100 == 1 and p + 8 <= stop:
            meaning += f" {int.from_bytes(buf[p + 4 : p + 8], 'big')} baud"
        if close < 0:
            meaning += ", cut before IAC SE"
    return Span(p, stop - p, "telnet.subnegotiation", label, value=option, meaning=meaning)


MAX_SUBNEGOTIATION = 64  # RFC 2217 sub-negotiations are a few bytes (a signature: a few dozen)


def _negotiation_evidence(buf: bytes, span: Span) -> int:
    """1 when ``span`` is an option negotiation that parses (IAC WILL/WONT/DO/DONT option, or
    IAC SB of a known option closed by IAC SE soon, or an RFC 2217 command cut at the end),
    else 0: a lone IAC NOP or an IAC SB that never closes is two bytes any noise holds."""
    if span.name == "telnet.command":
        return 1 if span.length == 3 and span.value is not None else 0
    option = span.value
    if not isinstance(option, int) or option not in TELNET_OPTIONS:
        return 0
    closed = buf[span.end - 2 : span.end] == bytes((IAC, SE))
    if closed:
        return 1 if span.length <= MAX_SUBNEGOTIATION else 0
    sub = buf[span.offset + 3] if span.length > 3 else None
    return 1 if option == 44 and sub is not None and sub % 100 in _COM_PORT_CMDS else 0


def recognise_telnet(
    buf: bytes, offset: int, end: int, alone: bool = True
) -> DecodedFrame | None:
    """A run of telnet commands starting at ``offset`` (each IAC command a child span).

    Telnet needs evidence, not two bytes: 1 KB of noise holds an ``FF Fx`` pair one time in
    four. A run counts when two option negotiations in it parse, or one does and the run is all
    there is (``alone``: nothing before it in the gap, and it reaches ``end``), as when a bridge
    sends its negotiation right before a frame."""
    spans: list[Span] = []
    p = offset
    while p < end:
        span = _telnet_command_at(buf, p, end)
        if span is None:
            break
        spans.append(span)
        p = span.end
    if not spans:
        return None
    evidence = sum(_negotiation_evidence(buf, s) for s in spans)
    if evidence < 2 and not (evidence == 1 and alone and p == end):
        return None
    labels = ", ".join(s.label for s in spans[:4]) + (", ..." if len(spans) > 4 else "")
    has_2217 = any(s.value == 44 for s in spans)
    what = "RFC 2217 (telnet COM port control)" if has_2217 else "telnet"
    finding = Finding(
        "stream.telnet",
        Severity.WARNING,
        offset,
        p - offset,
        "telnet",
        f"The bridge negotiates {what} ({labels}); it is not in raw mode, so it may also "
        "escape 0xFF bytes inside DLMS frames. Set the bridge port to raw mode (ser2net: "
        "accepter 'tcp,PORT', not 'telnet'), or have the client speak telnet.",
    )
    root = Span(offset, p - offset, "telnet", "Telnet negotiation", children=tuple(spans))
    return DecodedFrame(
        FrameKind.TELNET, offset, buf[offset:p], f"telnet: {labels}", (root,), (finding,)
    )


# ---------------------------------------------------------------------------------------------
# ser2net


def _line_end(buf: bytes, p: int, end: int, limit: int) -> int:
    """End of the line starting at ``p``: after CR LF, LF CR, LF or CR; else ``end``/limit."""
    stop = min(end, p + limit)
    q = p
    while q < stop and buf[q] not in (0x0D, 0x0A):
        q += 1
    if q >= stop:
        return stop
    if q + 1 < end and buf[q + 1] in (0x0D, 0x0A) and buf[q + 1] != buf[q]:
        return q + 2
    return q + 1


def recognise_bridge_message(buf: bytes, offset: int, end: int) -> DecodedFrame | None:
    """A ser2net refusal or error message starting at ``offset``."""
    if offset >= end or buf[offset] not in _BRIDGE_FIRST_BYTES:
        return None
    for msg in BRIDGE_MESSAGES:
        if not buf.startswith(msg.text, offset) or offset + len(msg.text) > end:
            continue
        stop = _line_end(buf, offset, end, len(msg.text) + _MAX_DETAIL)
        line = buf[offset:stop]
        text = line.decode("utf-8", "replace").strip()
        detail = ""
        if msg.has_detail:
            detail = text[len(msg.text) :].strip()
        message = f"Bridge says {text!r}: {msg.what} {msg.action}"
        finding = Finding(msg.code, Severity.ERROR, offset, stop - offset, "bridge", message)
        body_end = stop
        while body_end > offset and buf[body_end - 1] in (0x0D, 0x0A):
            body_end -= 1
        children = [Span(offset, len(msg.text), "bridge.text", "Message", value=text)]
        d_off = offset + len(msg.text)
        if body_end > d_off:
            children.append(
                Span(d_off, body_end - d_off, "bridge.detail", "Reason", value=detail or None)
            )
        if stop > body_end:
            children.append(Span(body_end, stop - body_end, "bridge.eol", "Line end"))
        root = Span(
            offset, stop - offset, "bridge", "ser2net message", value=text,
            meaning=msg.what, children=tuple(children),
        )  # fmt: skip
        return DecodedFrame(
            FrameKind.BRIDGE_MESSAGE, offset, line, f"bridge: {text}", (root,), (finding,),
            fields={"bridge": "ser2net", "code": msg.code, "text": text, "detail": detail},
        )  # fmt: skip
    return None


# ---------------------------------------------------------------------------------------------
# IEC 62056-21

STX, ETX, EOT, ACK, NAK, SOH = 0x02, 0x03, 0x04, 0x06, 0x15, 0x01
# Baud-rate character of the identification message (IEC 62056-21 clause 6.3.14):
# '0'-'6' for protocol modes C/E, 'A'-'I' for mode B; anything else means mode A.
BAUD_CHARS = {
    "0": 300, "1": 600, "2": 1200, "3": 2400, "4": 4800, "5": 9600, "6": 19200,
    "A": 600, "B": 1200, "C": 2400, "D": 4800, "E": 9600, "F": 19200,
}  # fmt: skip
_MODE_CONTROL = {
    "0": "data readout",
    "1": "programming mode",
    "2": "binary mode (HDLC, mode E)",
}
_IDENT = re.compile(rb"/([A-Za-z]{3})([\x21-\x7E])((?:\\[0-9A-Za-z@])*)([\x20-\x7E]{0,24}?)\r\n")
_REQUEST = re.compile(rb"/\?([0-9A-Za-z ]{0,32})!\r\n")
_OPTION = re.compile(rb"\x06([0-9])([\x21-\x7E])([0-9])\r\n")
_IEC_WINDOW = 160
# Programming-mode command message: SOH C D [STX data ETX] BCC (IEC 62056-21 clause 6.3.x):
# C is P(assword), W(rite), R(ead), E(xecute) or B(reak/exit); "B0" has no data set.
_COMMAND = re.compile(rb"\x01([PWREB])([0-9])(?:\x02([\x20-\x7E]{0,128})\x03|\x03)")
# A data set of a readout or command: address(value), IEC 62056-21 clause 6.5.
_DATA_SET = re.compile(rb"[\x21-\x27\x2A-\x7E]{0,16}\([\x20-\x27\x2A-\x7E]{0,128}\)")
_COMMANDS = {"P": "password", "W": "write", "R": "read", "E": "execute", "B": "exit (break)"}


def _iec_finding(offset: int, length: int, what: str) -> Finding:
    return Finding(
        "stream.iec62056_21",
        Severity.WARNING,
        offset,
        length,
        "iec62056_21",
        f"IEC 62056-21 {what}: this port talks the IEC 62056-21 (FLAG/optical) protocol, not "
        "DLMS yet. The meter wants the mode E handshake (sign-on '/?!', then ACK 2 Z 2) "
        "before HDLC, or DLMS is on another port.",
    )


def _baud_meaning(char: str) -> str:
    if char in BAUD_CHARS:
        mode = "mode B" if char.isalpha() else "mode C/E"
        return f"{BAUD_CHARS[char]} baud ({mode})"
    return "mode A (no baud-rate switch)"


def recognise_iec62056_21(
    buf: bytes, offset: int, end: int, etx_cache: list[int] | None = None
) -> DecodedFrame | None:
    """An IEC 62056-21 identification, sign-on request, option select or data block.

    ``etx_cache`` (a one-element list) remembers the next ETX position, so that many STX bytes
    in noise do not rescan the buffer each time.
    """
    if offset >= end:
        return None
    first = buf[offset]
    if first not in (0x2F, ACK, STX, SOH):
        return None
    window = buf[offset : min(end, offset + _IEC_WINDOW)]
    if first == 0x2F:  # '/'
        m = _REQUEST.match(window)
        if m:
            n = m.end()
            addr = m.group(1).decode("ascii")
            spans = (
                Span(offset, n, "iec.request", "Sign-on request", value=addr,
                     meaning=f"request message, device address {addr!r}" if addr
                     else "request message, any device"),
            )  # fmt: skip
            return DecodedFrame(
                FrameKind.IEC62056_21, offset, buf[offset : offset + n],
                f"IEC 62056-21 request /?{addr}!", spans,
                (_iec_finding(offset, n, "sign-on request"),), {"iec": "request", "address": addr},
            )  # fmt: skip
        m = _IDENT.match(window)
        if m:
            return _identification(buf, offset, m)
        return None
    if first == ACK:
        m = _OPTION.match(window)
        if not m:
            return None
        v, z, y = (g.decode("ascii") for g in m.groups())
        n = m.end()
        meaning = (
            f"protocol control {v!r}, {_baud_meaning(z)}, "
            f"{_MODE_CONTROL.get(y, 'mode control ' + repr(y))}"
        )
        spans = (Span(offset, n, "iec.option", "Option select (ACK V Z Y)", meaning=meaning),)
        return DecodedFrame(
            FrameKind.IEC62056_21, offset, buf[offset : offset + n],
            f"IEC 62056-21 option select: {meaning}", spans,
            (_iec_finding(offset, n, "acknowledgement/option select"),),
            {"iec": "option", "protocol_control": v, "baud_char": z, "mode_control": y},
        )  # fmt: skip
    if first == STX:
        return _data_block(buf, offset, end, etx_cache)
    if first == SOH:
        m = _COMMAND.match(window)
        if m and m.end() < len(window):
            return _command(buf, offset, m)
    return None


def _identification(buf: bytes, offset: int, m: re.Match[bytes]) -> DecodedFrame:
    flag, baud, seq, ident = (g.decode("ascii") for g in m.groups())
    n = m.end()
    p = offset
    children = [
        Span(p, 1, "iec.start", "Start character '/'"),
        Span(p + 1, 3, "iec.manufacturer", "Manufacturer (FLAG id)", value=flag,
             meaning="lower-case third letter: 20 ms reaction time" if flag[2].islower()
             else "FLAG manufacturer id"),
        Span(p + 4, 1, "iec.baud", "Baud-rate character", value=baud, meaning=_baud_meaning(baud)),
    ]  # fmt: skip
    q = p + 5
    if seq:
        mode = "mode E (HDLC/DLMS available)" if "\\2" in seq else "enhanced capability"
        children.append(Span(q, len(seq), "iec.capability", "Escape sequence", value=seq,
                             meaning=mode))  # fmt: skip
        q += len(seq)
    children.append(Span(q, len(ident), "iec.ident", "Identification", value=ident))
    children.append(Span(offset + n - 2, 2, "iec.crlf", "CR LF"))
    summary = f"IEC 62056-21 identification /{flag}{baud}{seq}{ident}"
    root = Span(offset, n, "iec.identification", "Identification message", value=ident,
                children=tuple(children))  # fmt: skip
    fields: dict[str, object] = {
        "iec": "identification", "manufacturer": flag, "baud_char": baud,
        "baud": BAUD_CHARS.get(baud), "mode_e": "\\2" in seq, "ident": ident,
    }  # fmt: skip
    return DecodedFrame(
        FrameKind.IEC62056_21, offset, buf[offset : offset + n], summary, (root,),
        (_iec_finding(offset, n, f"identification from manufacturer {flag}"),), fields,
    )  # fmt: skip


def _data_block(
    buf: bytes, offset: int, end: int, etx_cache: list[int] | None
) -> DecodedFrame | None:
    # The block is STX data (ETX|EOT) BCC; the data of a readout is printable text lines.
    if etx_cache is not None and etx_cache[0] > offset:
        close = etx_cache[0]
    else:
        close = _find_any(buf, (ETX, EOT), offset + 1, end)
        if etx_cache is not None:
            etx_cache[0] = close if close >= 0 else end + 1
    if close < 0 or close >= end or close + 1 >= end:
        return None
    body = buf[offset + 1 : close]
    if not body or not all(0x20 <= b < 0x7F or b in (0x0D, 0x0A) for b in body):
        return None
    bcc_found = buf[close + 1]
    bcc = 0
    for b in buf[offset + 1 : close + 1]:
        bcc ^= b
    # Evidence, not chance: a readout holds data sets "address(value)"; STX, a printable byte
    # and ETX turn up in noise. One data set with a right BCC, or two with a wrong one.
    sets = len(_DATA_SET.findall(body))
    if sets < (1 if bcc == bcc_found else 2):
        return None
    n = close + 2 - offset
    text = body.decode("ascii")
    children = (
        Span(offset, 1, "iec.stx", "STX"),
        Span(offset + 1, len(body), "iec.data", "Data", value=text),
        Span(close, 1, "iec.etx", "ETX" if buf[close] == ETX else "EOT (more blocks follow)"),
        Span(close + 1, 1, "iec.bcc", "BCC", value=bcc_found,
             meaning="correct" if bcc == bcc_found else f"wrong, expected {bcc:02X}"),
    )  # fmt: skip
    findings = [_iec_finding(offset, n, "data block (readout)")]
    if bcc != bcc_found:
        findings.append(_bcc_finding(close + 1, bcc, bcc_found))
    lines = [ln for ln in text.split("\r\n") if ln]
    root = Span(offset, n, "iec.block", "Data block", children=children)
    return DecodedFrame(
        FrameKind.IEC62056_21, offset, buf[offset : offset + n],
        f"IEC 62056-21 data block, {len(lines)} line(s)", (root,), tuple(findings),
        {"iec": "data", "lines": lines, "bcc_ok": bcc == bcc_found},
    )  # fmt: skip


def _command(buf: bytes, offset: int, m: re.Match[bytes]) -> DecodedFrame | None:
    cmd, kind = m.group(1).decode(), m.group(2).decode()
    data = m.group(3)
    close = offset + m.end() - 1  # the ETX
    bcc_found = buf[close + 1]
    bcc = 0
    for b in buf[offset + 1 : close + 1]:
        bcc ^= b
    if bcc != bcc_found and not (data and _DATA_SET.search(data)):
        return None  # "SOH B0 ETX x" is five bytes noise may hold: the BCC must agree
    n = close + 2 - offset
    name = _COMMANDS[cmd]
    secret = cmd == "P"  # P1/P2 carry the meter password or the answer to its challenge
    children = [
        Span(offset, 1, "iec.soh", "SOH"),
        Span(offset + 1, 2, "iec.command", "Command", value=cmd + kind, meaning=name),
    ]
    if data is not None:
        shown = "********" if secret else data.decode("ascii")
        children += [
            Span(offset + 3, 1, "iec.stx", "STX"),
            Span(offset + 4, len(data), "iec.data", "Data set", value=shown, secret=secret),
        ]
    children += [
        Span(close, 1, "iec.etx", "ETX"),
        Span(close + 1, 1, "iec.bcc", "BCC", value=bcc_found,
             meaning="correct" if bcc == bcc_found else f"wrong, expected {bcc:02X}"),
    ]  # fmt: skip
    findings = [_iec_finding(offset, n, f"{name} command ({cmd}{kind})")]
    if bcc != bcc_found:
        findings.append(_bcc_finding(close + 1, bcc, bcc_found))
    root = Span(offset, n, "iec.command_message", "Command message", children=tuple(children))
    return DecodedFrame(
        FrameKind.IEC62056_21, offset, buf[offset : offset + n],
        f"IEC 62056-21 {name} command {cmd}{kind}", (root,), tuple(findings),
        {"iec": "command", "command": cmd + kind, "bcc_ok": bcc == bcc_found},
    )  # fmt: skip


def _bcc_finding(offset: int, bcc: int, found: int) -> Finding:
    return Finding(
        "stream.iec62056_21.bcc", Severity.ERROR, offset, 1, "iec.bcc",
        "IEC 62056-21 block check character is wrong: the block was corrupted on the line.",
        expected=f"{bcc:02X}", found=f"{found:02X}", corrected=f"{bcc:02X}",
    )  # fmt: skip


def _find_any(buf: bytes, values: tuple[int, ...], start: int, end: int) -> int:
    hits = [i for i in (buf.find(bytes((v,)), start, end) for v in values) if i >= 0]
    return min(hits) if hits else -1


# ---------------------------------------------------------------------------------------------
# echo


def echo_length(buf: bytes, offset: int, end: int, sent: bytes) -> int:
    """How many bytes at ``offset`` repeat ``sent`` from its start (0 if not an echo).

    A whole echo counts at any length; a partial one (the rest did not come back, or something
    else follows) needs at least 4 bytes, because a meter's reply shares its first bytes
    (7E A0 ..) with the request.
    """
    if not sent:
        return 0
    limit = min(len(sent), end - offset)
    k = 0
    while k < limit and buf[offset + k] == sent[k]:
        k += 1
    if k == len(sent) or k >= MIN_PARTIAL_ECHO:
        return k
    return 0


MIN_PARTIAL_ECHO = 4


def recognise_echo(buf: bytes, offset: int, end: int, sent: bytes) -> DecodedFrame | None:
    """The bytes we just sent, coming back at ``offset``."""
    k = echo_length(buf, offset, end, sent)
    if not k:
        return None
    whole = k == len(sent)
    what = "all" if whole else f"the first {k} of {len(sent)}"
    finding = Finding(
        "stream.echo", Severity.INFO, offset, k, "echo",
        f"Echo: {what} bytes we sent came back. A local echo (optical head, half-duplex "
        "RS-485 converter, bridge with echo on) repeats every request; skip these bytes before "
        "reading the answer.",
        expected=None, found=str(k),
    )  # fmt: skip
    span = Span(offset, k, "echo", "Echo of the request", meaning=f"{what} bytes we sent")
    return DecodedFrame(
        FrameKind.ECHO, offset, buf[offset : offset + k],
        f"echo of {k} sent byte(s)" + ("" if whole else " (partial)"), (span,), (finding,),
        {"echo_length": k, "sent_length": len(sent), "whole": whole},
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# text and garbage

MIN_TEXT = 4  # shorter printable runs in noise are too likely to be chance
_PRINTABLE = (
    rb"(?:[\x09\x0a\x0d\x20-\x7e]|[\xc2-\xdf][\x80-\xbf]"
    rb"|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3})"
)
# Where a recogniser could start: IAC + command, STX, ACK, or MIN_TEXT printable characters.
_INTERESTING = re.compile(rb"\xff[\xf0-\xfe]|[\x01\x02\x06]|" + _PRINTABLE + rb"{4}")


def _utf8_len(buf: bytes, p: int, end: int) -> int:
    """Length of the printable character at ``p`` (ASCII or UTF-8), 0 if not printable."""
    b = buf[p]
    if 0x20 <= b < 0x7F or b in (0x09, 0x0A, 0x0D):
        return 1
    if 0xC2 <= b <= 0xF4:
        n = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
        if p + n <= end:
            try:
                ch = buf[p : p + n].decode("utf-8")
            except UnicodeDecodeError:
                return 0
            return n if ch.isprintable() else 0
    return 0


def text_run_end(buf: bytes, p: int, end: int) -> tuple[int, int]:
    """End of the run of printable text at ``p`` and how many characters it holds.

    The run stops before a line that starts a ser2net message or an IEC 62056-21 message, so
    those get their own chunk.
    """
    q = p
    chars = 0
    while q < end:
        n = _utf8_len(buf, q, end)
        if not n:
            break
        q += n
        chars += 1
        if buf[q - 1] == 0x0A and q < end and _special_line_start(buf, q, end):
            break
    return q, chars


def _special_line_start(buf: bytes, p: int, end: int) -> bool:
    return recognise_bridge_message(buf, p, end) is not None or (
        buf[p] == 0x2F and recognise_iec62056_21(buf, p, end) is not None
    )


def make_text(buf: bytes, offset: int, end: int) -> DecodedFrame:
    text = buf[offset:end].decode("utf-8", "replace")
    shown = text if len(text) <= 60 else text[:57] + "..."
    finding = Finding(
        "stream.text", Severity.WARNING, offset, end - offset, "text",
        f"{end - offset} byte(s) of text where DLMS was expected ({shown!r}): a banner, a "
        "modem or bridge message, or a device that is not speaking DLMS on this port.",
    )  # fmt: skip
    span = Span(offset, end - offset, "text", "Text", value=text)
    return DecodedFrame(
        FrameKind.TEXT, offset, buf[offset:end], f"text: {shown!r}", (span,), (finding,),
        {"text": text},
    )  # fmt: skip


def make_garbage(buf: bytes, offset: int, end: int) -> DecodedFrame:
    data = buf[offset:end]
    if data and data.count(0x7E) == len(data):
        finding = Finding(
            "stream.flag_fill",
            Severity.INFO,
            offset,
            len(data),
            "flag",
            f"{len(data)} extra HDLC flag(s) 7E outside frames: inter-frame fill, harmless.",
        )
        span = Span(offset, len(data), "hdlc.flag_fill", "Flag fill")
        return DecodedFrame(
            FrameKind.GARBAGE, offset, data, f"{len(data)} flag byte(s)", (span,), (finding,),
            {"flag_fill": True},
        )  # fmt: skip
    shown = hexs(data[:16]) + (" ..." if len(data) > 16 else "")
    finding = Finding(
        "stream.garbage", Severity.WARNING, offset, len(data), "garbage",
        f"{len(data)} byte(s) that are neither a DLMS frame nor known text ({shown}): line "
        "noise, a wrong baud rate or parity behind the bridge, or the tail of an earlier "
        "answer.",
    )  # fmt: skip
    span = Span(offset, len(data), "garbage", "Unrecognised bytes")
    return DecodedFrame(
        FrameKind.GARBAGE, offset, data, f"{len(data)} unrecognised byte(s)", (span,), (finding,)
    )


# ---------------------------------------------------------------------------------------------
# a whole gap


def classify_gap(
    buf: bytes, offset: int, end: int, sent: bytes | None = None
) -> list[DecodedFrame]:
    """Cut ``buf[offset:end]`` into recognised chunks that tile it exactly, in order.

    ``sent`` (what was just transmitted) is tried as an echo at ``offset`` only: an echo comes
    back before anything else. Never raises.
    """
    out: list[DecodedFrame] = []
    p = offset
    junk_start = -1
    etx_cache = [-1]

    def flush_junk(upto: int) -> None:
        nonlocal junk_start
        if junk_start >= 0:
            out.append(make_garbage(buf, junk_start, upto))
            junk_start = -1

    if sent:
        echo = recognise_echo(buf, p, end, sent)
        if echo is not None:
            out.append(echo)
            p = echo.end
    while p < end:
        m = _INTERESTING.search(buf, p, end)
        if m is None:
            if junk_start < 0:
                junk_start = p
            break
        if m.start() > p:
            if junk_start < 0:
                junk_start = p
            p = m.start()
        chunk = (
            recognise_telnet(buf, p, end, alone=junk_start < 0)
            or recognise_bridge_message(buf, p, end)
            or recognise_iec62056_21(buf, p, end, etx_cache)
        )
        if chunk is None:
            q, chars = text_run_end(buf, p, end)
            if chars >= MIN_TEXT:
                chunk = make_text(buf, p, q)
            else:
                # A short printable run is noise; skip all of it at once (linear scan).
                if junk_start < 0:
                    junk_start = p
                p = max(q, p + 1)
                continue
        flush_junk(p)
        out.append(chunk)
        p = chunk.end
    flush_junk(end)
    return out
