"""The rules of a target's form and a serial line's settings, as the user writes them on the
command line (``probe /dev/ttyUSB0 --baud 9600``) or in a ``[targets.NAME]`` table of the config
(``device = "/dev/ttyUSB0"``, ``baud = 9600``): one parser for both places. Each caller passes
its own ``Spelling`` so that a message names the option or the key the user wrote.

Pure (no engine, no I/O): ``config.py`` reads targets with it, and the probes import the config.
``targets.py`` turns a checked target into ProbeOptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Spelling:
    """How the user wrote each line setting, for messages: ``--baud`` or ``baud``."""

    target: str
    baud: str
    serial_format: str
    optical: str
    framing: str
    serial_forms: str  # what a serial target looks like, in this place
    not_serial: str  # line settings on a TCP target: {given} {verb} {target}


CLI = Spelling("target", "--baud", "--serial-format", "--optical", "--framing",
               "serial targets (/dev/ttyUSB0, COM3, serial:NAME, rfc2217://HOST:PORT)",
               "{given} apply to serial targets (/dev/ttyUSB0, COM3, serial:NAME, "
               "rfc2217://HOST:PORT), not to {target}")
CONFIG = Spelling("host", "baud", "serial_format", "optical", "framing",
                  'a serial target (device = "/dev/ttyUSB0", "COM3" or "serial:NAME", or '
                  'host = "rfc2217://HOST:PORT")',
                  "{given} {verb} for a serial line (device = \"/dev/ttyUSB0\" instead of "
                  "host, or host = \"rfc2217://HOST:PORT\" for a bridge), not for the TCP host "
                  "{target}")


class LineError(ValueError):
    """A serial target or line setting that cannot be used; ``setting`` says which one
    (target, baud, serial_format, optical, framing) so a config error points at its key."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True, slots=True)
class Line:
    """A checked serial target: ``link`` serial, optical or rfc2217; ``device`` as written
    (a path, COMn, serial:NAME or rfc2217://HOST:PORT); ``baud`` "auto" or a rate;
    ``serial_format`` normalised (``8N1``)."""

    link: str
    device: str
    baud: str
    serial_format: str


def check_line(target: str, *, baud: str | None = None, serial_format: str | None = None,
               optical: bool = False, spelling: Spelling = CLI) -> Line:
    """The rules of a serial target and its line settings; raises LineError.

    ``target`` must be a serial form (``link_of(target) != "tcp"``): callers decide what a
    TCP target means to them (the CLI: HOST[:PORT]; the config: host and port keys)."""
    from dlmsdoctor.link.serial_line import COMMON_RATES, LineFormat, LineFormatError, parse_baud

    link = link_of(target)
    text = target.strip()
    if link == "tcp":
        raise LineError(f"{target!r} is not a serial line: {spelling.serial_forms}", "target")
    if link == "rfc2217":
        m = _RFC2217.fullmatch(text)
        if not m or not 0 < int(m.group(2)) < 65536:
            raise LineError(f"{spelling.target} {target!r}: write an RFC 2217 bridge as "
                            "rfc2217://HOST:PORT", "target")
    elif text == "serial:":
        raise LineError("target 'serial:' names no device; e.g. serial:/dev/ttyUSB0", "target")
    rate = "auto" if baud is None else baud.strip().lower()  # "" is a mistake, not auto
    try:
        parse_baud(rate)
    except ValueError:
        raise LineError(f"{spelling.baud} {baud!r}: give auto or a rate "
                        f"({', '.join(map(str, COMMON_RATES))})", "baud") from None
    try:
        fmt = LineFormat.parse("8N1" if serial_format is None else serial_format)
    except LineFormatError:
        raise LineError(f"{spelling.serial_format} {serial_format!r} is not DATA-BITS PARITY "
                        "STOP-BITS, e.g. 8N1, 7E1, 8E1", "serial_format") from None
    if optical and serial_format is not None and str(fmt) != "7E1":
        raise LineError(f"{spelling.optical} signs on at 300 baud 7E1 and switches to 8N1 by "
                        f"the standard: leave {spelling.serial_format} out", "serial_format")
    return Line("optical" if optical else link, text, rate, str(fmt))


def check_not_serial(target: str, *, baud: object = None, serial_format: object = None,
                     optical: bool = False, spelling: Spelling = CLI) -> None:
    """Line settings on a TCP target are a mistake, said so (LineError)."""
    given = [(word, setting) for word, setting, value in (
        (spelling.baud, "baud", baud), (spelling.serial_format, "serial_format", serial_format),
        (spelling.optical, "optical", optical or None)) if value is not None]
    if given:
        words = ", ".join(word for word, _ in given)
        verb = "is" if len(given) == 1 else "are"
        raise LineError(spelling.not_serial.format(given=words, verb=verb, target=repr(target)),
                        given[0][1])


def check_framing(link: str, framing: str | None, spelling: Spelling = CLI) -> None:
    """A serial line carries HDLC only (IEC 62056-46): the wrapper is refused (LineError)."""
    if link != "tcp" and framing == "wrapper":
        raise LineError(f"{spelling.framing} wrapper: a serial line carries HDLC only",
                        "framing")
