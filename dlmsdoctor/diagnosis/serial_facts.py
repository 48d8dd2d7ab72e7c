"""Serial-line facts the other diagnosis modules use (no rules here, so importing it does not
change the rule order): ``line_changed_between`` lets the TCP-era rules tell "silent at the
wrong rate, answered at the right one" from "a late answer" or "a wrong address"; ``with_line``
adds the line to the working profile.
"""

from __future__ import annotations

from typing import Any

from dlmsdoctor.diagnosis.facts import SessionFacts
from dlmsdoctor.session import ConnectionProfile


def line_changed_between(f: SessionFacts, start: float, end: float) -> bool:
    """A serial line's settings changed between two moments (a rate sweep, the optical switch):
    a silence before and an answer after are not the same exchange."""
    return any(start < pf.at <= end for pf in f.findings("serial.line"))



def with_line(f: SessionFacts, profile: ConnectionProfile | None) -> ConnectionProfile | None:
    """The working profile of a serial run gains the line: device, rate, format, and for an
    optical head the mode and the identification line."""
    target = f.session.target
    if profile is None or target.link in ("tcp", None):
        return profile
    profile.link = target.link
    profile.device = target.device or target.host
    rate: dict[str, Any] = {}
    for step in f.session.steps:
        if step.id in ("serial.line", "optical.mode_e") and step.details.get("baud"):
            rate = step.details
    profile.baud = int(rate["baud"]) if rate.get("baud") else None
    profile.format = str(rate.get("format")) if rate.get("format") else None
    if target.link == "optical":
        profile.mode = "E"
        profile.identification = rate.get("identification")
    return profile


_GURUX_PARITY = {"N": "None", "E": "Even", "O": "Odd", "M": "Mark", "S": "Space"}


def line_text(profile: ConnectionProfile) -> str:
    """``serial line /dev/ttyUSB0 at 19200 8N1`` (``optical head ..., mode E``)."""
    where = profile.device or profile.host
    what = "optical head" if profile.link == "optical" else f"{profile.link} line"
    rate = f" at {profile.baud} {profile.format or ''}".rstrip() if profile.baud else ""
    mode = f", mode {profile.mode} ({profile.identification})" if profile.mode else ""
    return f"{what} {where}{rate}{mode}"


def gurux_serial(profile: ConnectionProfile) -> list[str]:
    """Gurux's example clients: ``-S PORT:BAUD:8None1`` (and ``-i HdlcWithModeE`` for an
    optical head: the client does the IEC 62056-21 handshake first)."""
    fmt = profile.format or "8N1"
    rate = profile.baud or 9600
    spec = f"{profile.device or profile.host}:{rate}:{fmt[0]}{_GURUX_PARITY.get(fmt[1:2], 'None')}"
    out = [f"-S {spec}{fmt[2:] or '1'}"]
    if profile.link == "optical":
        out.append("-i HdlcWithModeE")
    return out


def line_args(profile: ConnectionProfile) -> list[str]:
    """``dlmsdoctor probe`` options that reproduce the line."""
    if profile.link == "optical":
        return ["--optical"] + ([f"--baud {profile.baud}"] if profile.baud else [])
    out = [f"--baud {profile.baud}"] if profile.baud else []
    if profile.format and profile.format != "8N1":
        out.append(f"--serial-format {profile.format}")
    return out
