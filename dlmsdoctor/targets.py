"""What a target names: a TCP meter or bridge, a serial device, or an RFC 2217 bridge.

``/dev/ttyUSB0`` (any absolute path), ``COM3``, ``serial:NAME``: a serial line;
``rfc2217://HOST:PORT``: a serial port behind an RFC 2217 bridge (ser2net's telnet(rfc2217)
accepter); anything else: ``HOST[:PORT]`` over TCP. ``--baud``, ``--serial-format`` and
``--optical`` apply to the serial forms only.
"""

from __future__ import annotations

import re
from typing import Any

_COM = re.compile(r"(?:\\\\\.\\)?COM\d+", re.IGNORECASE)
_RFC2217 = re.compile(r"rfc2217://(\[[^\]]+\]|[^:/?]+):(\d{1,5})(\?.*)?")


def link_of(target: str) -> str:
    """tcp, serial or rfc2217 (optical is a serial line plus ``--optical``)."""
    text = target.strip()
    if text.lower().startswith("rfc2217://"):
        return "rfc2217"
    if text.startswith(("/", "serial:")) or _COM.fullmatch(text):
        return "serial"
    return "tcp"


def options_for(target: str, *, baud: str | None = None, serial_format: str | None = None,
                optical: bool = False) -> Any:
    """ProbeOptions for ``target`` with the serial options checked; raises OptionsError."""
    from dlmsdoctor.engine import OptionsError, ProbeOptions
    from dlmsdoctor.link.serial_line import LineFormat, LineFormatError, parse_baud

    link = link_of(target)
    if link == "tcp":
        given = [name for name, value in (("--baud", baud), ("--serial-format", serial_format),
                                          ("--optical", optical or None)) if value]
        if given:
            raise OptionsError(f"{', '.join(given)} apply to serial targets (/dev/ttyUSB0, "
                               f"COM3, serial:NAME, rfc2217://HOST:PORT), not to {target!r}")
        return ProbeOptions.parse_target(target)
    text = target.strip()
    if link == "rfc2217":
        m = _RFC2217.fullmatch(text)
        if not m or not 0 < int(m.group(2)) < 65536:
            raise OptionsError(f"target {target!r}: write an RFC 2217 bridge as "
                               "rfc2217://HOST:PORT")
    elif text == "serial:":
        raise OptionsError("target 'serial:' names no device; e.g. serial:/dev/ttyUSB0")
    try:
        parse_baud(baud or "auto")
    except ValueError as exc:
        raise OptionsError(str(exc)) from None
    try:
        fmt = LineFormat.parse(serial_format or "8N1")
    except LineFormatError as exc:
        raise OptionsError(str(exc)) from None
    if optical and serial_format and str(fmt) != "7E1":
        raise OptionsError("--optical signs on at 300 baud 7E1 and switches to 8N1 by the "
                           "standard: leave --serial-format out")
    return ProbeOptions(host=text, port=0, link="optical" if optical else link,
                        baud=(baud or "auto").strip().lower(), serial_format=str(fmt),
                        framing="hdlc", icmp=False)


def describe(options: Any) -> str:
    """The target as the intro line shows it."""
    from dlmsdoctor.session import format_host_port

    if options.link == "tcp":
        return format_host_port(options.host, options.port)
    if options.link == "optical":
        return f"{options.host} (optical head, IEC 62056-21 mode E)"
    return f"{options.host} ({options.link}, baud {options.baud}, {options.serial_format})"
