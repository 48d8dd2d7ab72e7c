"""What a target names: a TCP meter or bridge, a serial device, or an RFC 2217 bridge.

``/dev/ttyUSB0`` (any absolute path), ``COM3``, ``serial:NAME``: a serial line;
``rfc2217://HOST:PORT``: a serial port behind an RFC 2217 bridge (ser2net's telnet(rfc2217)
accepter); anything else: ``HOST[:PORT]`` over TCP. ``--baud``, ``--serial-format`` and
``--optical`` apply to the serial forms only.

The rules live in ``target_rules.py`` (shared with the config's ``[targets.NAME]`` tables);
this module turns a target of the command line or of the config into ProbeOptions.
"""

from __future__ import annotations

from typing import Any

from dlmsdoctor.target_rules import (
    CLI,
    CONFIG,
    Line,
    LineError,
    Spelling,
    check_framing,
    check_line,
    check_not_serial,
    link_of,
)

__all__ = ["CLI", "CONFIG", "Line", "LineError", "Spelling", "check_framing", "check_line",
           "check_not_serial", "describe", "line_options", "link_of", "options_for",
           "options_for_config"]


def options_for(target: str, *, baud: str | None = None, serial_format: str | None = None,
                optical: bool = False) -> Any:
    """ProbeOptions for ``target`` with the serial options checked; raises OptionsError."""
    from dlmsdoctor.engine import OptionsError, ProbeOptions

    try:
        if link_of(target) == "tcp":
            check_not_serial(target, baud=baud, serial_format=serial_format, optical=optical)
            return ProbeOptions.parse_target(target)
        line = check_line(target, baud=baud, serial_format=serial_format, optical=optical)
    except LineError as exc:
        raise OptionsError(str(exc)) from None
    return line_options(line)


def line_options(line: Line) -> Any:
    """The ProbeOptions of a checked serial line (HDLC, nothing to ping)."""
    from dlmsdoctor.engine import ProbeOptions

    return ProbeOptions(host=line.device, port=0, link=line.link, baud=line.baud,
                        serial_format=line.serial_format, framing="hdlc", icmp=False)


def options_for_config(target: Any, *, baud: str | None = None,
                       serial_format: str | None = None, optical: bool | None = None) -> Any:
    """ProbeOptions for a config target (``config.TargetConfig``), the command line's line
    settings over the config's: ``--baud`` over ``baud``, ``--serial-format`` over
    ``serial_format``, ``--optical``/``--no-optical`` over ``optical``. Raises OptionsError
    naming the target."""
    from dlmsdoctor.engine import OptionsError, ProbeOptions

    where = f"target {target.name!r} of the config"
    if target.link == "tcp":
        if baud or serial_format or optical:
            given = [w for w, v in (("--baud", baud), ("--serial-format", serial_format),
                                    ("--optical", optical)) if v]
            raise OptionsError(f"{', '.join(given)} apply to serial targets; {where} is TCP "
                               f"(host {target.host!r})")
        return ProbeOptions(host=target.host, port=target.port)
    config_optical = target.link == "optical"
    if optical is None:
        optical = config_optical
    if config_optical and optical and serial_format:
        raise OptionsError(f"{where} is an optical head (optical = true), which signs on at "
                           "300 baud 7E1 and switches to 8N1: add --no-optical to use "
                           f"--serial-format {serial_format}")
    # --optical on a plain line: the config's format is the line's, not the head's
    keep_format = not optical or config_optical
    fmt = serial_format or (target.serial_format if keep_format else None)
    try:
        line = check_line(target.host, baud=baud or target.baud, serial_format=fmt,
                          optical=optical)
    except LineError as exc:
        raise OptionsError(str(exc)) from None
    return line_options(line)


def describe(options: Any) -> str:
    """The target as the intro line shows it."""
    from dlmsdoctor.session import format_host_port

    if options.link == "tcp":
        return format_host_port(options.host, options.port)
    if options.link == "optical":
        return f"{options.host} (optical head, IEC 62056-21 mode E)"
    return f"{options.host} ({options.link}, baud {options.baud}, {options.serial_format})"
