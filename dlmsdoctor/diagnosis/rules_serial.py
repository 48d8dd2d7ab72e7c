"""Rules for serial lines, optical heads (IEC 62056-21 mode E) and RFC 2217 bridges.

Each rule reads the findings of the line rungs (``probes/serial.py``, ``probes/optical.py``),
which carry the frames that prove them: the SNRM at each rate and what came back, the sign-on
and the identification. ``serial_facts.py`` holds what other modules need without these rules.
"""

from __future__ import annotations

from dlmsdoctor.diagnosis.facts import SessionFacts
from dlmsdoctor.diagnosis.registry import cause, ev_finding, later, now, rule
from dlmsdoctor.session import Cause, Evidence, ProbeFinding


def _frames_ev(pf: ProbeFinding, note: str) -> list[Evidence]:
    return [Evidence(note=note, frame=i, step=pf.step_id or None, finding=pf.code)
            for i in pf.frames[:4]] or [ev_finding(pf, note)]


def _sweep_ev(f: SessionFacts, found: ProbeFinding) -> list[Evidence]:
    """Each rate's SNRM and what came of it (the sweep's table), the answer last."""
    out: list[Evidence] = []
    for pf in f.findings("serial.rates")[:1]:
        for row in pf.data.get("rates") or []:
            frames = row.get("frames") or []
            if frames:
                note = f"SNRM at {row.get('baud')} {row.get('format')}: {row.get('outcome')}"
                # the rule cites the frame itself (no finding to re-point: the evidence pass
                # would move a row's citation to the finding's first answer)
                out.append(Evidence(note=note, frame=frames[0], step=pf.step_id or None))
    if len(found.frames) > 1:
        out.append(Evidence(note=f"the answer at {found.data.get('baud')}",
                            frame=found.frames[-1], step=found.step_id or None,
                            finding=found.code))
    return out or [ev_finding(found)]


@rule("serial.no_device", "serial.permission", "serial.held", "serial.locked",
      "rfc2217.unsupported")
def line_not_opened(f: SessionFacts) -> list[Cause]:
    out: list[Cause] = []
    for pf in f.findings("serial.no_device"):
        ports = pf.data.get("ports") or []
        found = (f"Serial ports this computer has: {', '.join(ports)}." if ports else
                 "No serial port was found on this computer at all.")
        out.append(cause(
            "serial.no_device", f"The serial device {pf.data.get('device')} does not exist",
            0.95, "client",
            "The path names no device: the USB adapter or optical head is not plugged in, has "
            f"another name, or its driver did not load. {found}",
            [ev_finding(pf)],
            [now("Plug the adapter in and use the name it gets (ls /dev/ttyUSB* /dev/ttyACM*; "
                 "on Windows the COM number in Device Manager)."),
             later("Use the stable /dev/serial/by-id/... name, which survives re-plugging.")]))
    for pf in f.findings("serial.permission"):
        group = pf.data.get("group") or "dialout"
        out.append(cause(
            "serial.permission", f"No permission to open {pf.data.get('device')}", 0.95,
            "client",
            f"The device belongs to group '{group}' and this user is not in it, so the "
            "operating system refused to open it. Nothing was sent to the meter.",
            [ev_finding(pf)],
            [now(f"Join the group: sudo usermod -aG {group} $USER, then log out and in again "
                 "(or run once with sudo).")]))
    for pf in f.findings("serial.held", "serial.locked"):
        holders = pf.data.get("holders") or []
        who = "; ".join(f"PID {h.get('pid')} ({h.get('command') or '?'})" for h in holders) \
            or "a process this user cannot see"
        modem_manager = any("ModemManager" in str(h.get("command")) for h in holders)
        actions = [now(f"Stop that program first ({who}); pause the poller service if it is "
                       "one; then probe again.")]
        if modem_manager:
            actions.append(later("Tell ModemManager to leave the adapter alone (a udev rule "
                                 "with ENV{ID_MM_DEVICE_IGNORE}=\"1\"), or stop it."))
        out.append(cause(
            pf.code, f"Another program holds the serial line: {who}", 0.95, "poller",
            "Two programs on one serial line steal each other's bytes and corrupt each "
            "other's frames, so dlmsdoctor sent nothing"
            + (" (a lock file names the holder)" if pf.code == "serial.locked" else "") + ".",
            [ev_finding(pf)], actions))
    for pf in f.findings("rfc2217.unsupported"):
        out.append(cause(
            "rfc2217.unsupported", "The bridge does not speak RFC 2217 on that port", 0.85,
            "bridge",
            "pyserial found no telnet COM-PORT-OPTION (RFC 2217) negotiation: the port is a "
            "raw TCP bridge (ser2net 'tcp' accepter) or no bridge at all.",
            [ev_finding(pf)],
            [now("Probe it as TCP instead: dlmsdoctor probe HOST:PORT."),
             later("For rate control over TCP, give ser2net a 'telnet(rfc2217),tcp,...' "
                   "accepter.")]))
    return out


@rule("serial.rate_differs", "rfc2217.bridge_settings")
def rate_differs(f: SessionFacts) -> list[Cause]:
    out: list[Cause] = []
    bridge = f.findings("rfc2217.rate_mismatch")
    for pf in bridge:
        out.append(cause(
            "rfc2217.bridge_settings",
            f"The bridge's serial port is set to {pf.data.get('bridge_baud')} "
            f"{pf.data.get('bridge_format')}, the meter talks {pf.data.get('meter_baud')} "
            f"{pf.data.get('meter_format')}", 0.92, "bridge",
            "Over RFC 2217 dlmsdoctor set the rate itself and the meter answered; a client "
            "that cannot set it (your poller on the bridge's plain TCP port) gets the bridge's "
            "own setting, at which the meter hears only noise. The bridge's settings were put "
            "back as they were.",
            _frames_ev(pf, "the meter's answer at the rate that works"),
            [now(f"In ser2net's configuration set the connector to "
                 f"'{pf.data.get('ser2net')}' (connector: serialdev,DEVICE,"
                 f"{pf.data.get('ser2net')},local) and restart ser2net.")]))
    found = f.findings("serial.rate_found")
    for pf in found:
        tried = pf.data.get("tried") or []
        baud = pf.data.get("baud")
        if bridge or len(tried) < 2:
            continue
        fmt = pf.data.get("format")
        out.append(cause(
            "serial.rate_differs", f"The meter's serial port runs at {baud} {fmt}, not "
            f"{tried[0]}", 0.9, "client",
            f"Safe SNRMs at {', '.join(map(str, tried[:-1]))} got no answer; at {baud} the "
            "meter answered. A meter at another rate than the client hears noise and stays "
            "silent, which looks like a dead meter.",
            _sweep_ev(f, pf),
            [now(f"Set your client (poller, bridge, head software) to {baud} {fmt}."),
             later("Note the rate per meter: vendors and configurations differ.")]))
    return out


@rule("serial.format_mismatch", "serial.no_answer")
def no_frame_back(f: SessionFacts) -> list[Cause]:
    out: list[Cause] = []
    if f.has("serial.rate_found", "optical.mode_e") and not f.has("serial.garbage"):
        return out
    for pf in f.findings("serial.garbage"):
        baud = pf.data.get("baud")
        fmt = str(pf.data.get("format") or "8N1")
        others = [x for x in ("8E1", "7E1", "8N1", "8N2") if x != fmt]
        out.append(cause(
            "serial.format_mismatch",
            f"Garbage at {baud} and silence at the other rates: the line's format (parity or "
            "data bits) does not match the meter's", 0.85, "client",
            f"At {baud} bytes came back that are no HDLC frame; at the other rates nothing "
            "came back. The meter hears us at this rate (a meter at another rate stays "
            f"silent), but its answers do not arrive intact: it uses another format than {fmt} "
            "(an 8E1 answer read as 8N1 loses every byte with an even number of 1 bits), or a "
            "rate close to this one.",
            _frames_ev(pf, f"bytes that are no frame at {baud}"),
            [now(f"Probe again with --baud {baud} --serial-format {others[0]} (then "
                 f"{', '.join(others[1:])})."),
             later("Read the meter's serial settings from its nameplate or vendor tool.")]))
    for pf in f.findings("serial.silent"):
        if f.has("address.found", "hdlc.ua"):
            continue
        tried = pf.data.get("tried") or []
        echo = bool(pf.data.get("echo_only"))
        sweep = len(tried) > 1
        out.append(cause(
            "serial.no_answer",
            "The meter does not answer on the serial line at any rate tried"
            if sweep else f"The meter does not answer on the serial line at {tried[0]}"
            if tried else "The meter does not answer on the serial line",
            0.75, "unknown",
            ("Only our own echo came back (the adapter works, its TX reaches the bus). "
             if echo else "Not a byte came back. ")
            + "A meter ignores frames it cannot read or that are not for its address: a wrong "
            "address, another rate or format, RS-485 A/B swapped or no common ground, or a "
            "serial port disabled in the meter all look the same from here.",
            [ev_finding(pf)] + [ev_finding(x) for x in f.findings("address.not_found")[:1]],
            ([] if sweep else [now("Try every rate: --baud auto.")])
            + [now("Check the wiring (A/B, ground, termination on long RS-485 runs) and that "
                   "the adapter's TX/RX LEDs blink."),
               now("Give the server address if you know it (--server-address, "
                   "--serial-number)."),
               later("Check in the vendor tool that the meter's serial port is enabled.")]))
    return out


@rule("optical.no_identification", "optical.garbled", "optical.no_mode_e", "optical.no_hdlc")
def optical(f: SessionFacts) -> list[Cause]:
    out: list[Cause] = []
    for pf in f.findings("optical.no_identification"):
        echo = bool(pf.data.get("echo"))
        out.append(cause(
            "optical.no_identification", "The meter did not answer the optical sign-on", 0.9,
            "unknown",
            "No identification came back to '/?!' at 300 baud 7E1. "
            + ("The head echoed the request, so the head and its cable work. " if echo else "")
            + "The head is not over the meter's optical port or sits the wrong way round, the "
            "optical port is disabled, or the meter expects another parity.",
            _frames_ev(pf, "sign-on without an answer"),
            [now("Seat the head on the optical port with its cable pointing down and probe "
                 "again."),
             now("Shade the head from daylight; try another head if you have one."),
             later("Check in the vendor tool that the optical port is enabled.")]))
    for pf in f.findings("optical.garbled"):
        out.append(cause(
            "optical.garbled", "The optical port answers, but not at 300 baud 7E1", 0.75,
            "meter",
            "Bytes came back to the sign-on that are no IEC 62056-21 identification: the "
            "port answers at another rate or format (some optical ports are set to a fixed "
            "rate such as 9600 8N1 with no IEC mode).",
            _frames_ev(pf, "the garbled answer"),
            [now("Probe the head as a plain serial line: dlmsdoctor probe DEVICE --baud auto "
                 "(without --optical).")]))
    for pf in f.findings("optical.no_mode_e"):
        out.append(cause(
            "optical.no_mode_e",
            f"The meter offers only the IEC 62056-21 data readout on its optical port "
            f"({pf.data.get('line')})", 0.9, "meter",
            "Its identification has no '\\2' escape, so it does not offer mode E (HDLC/DLMS) "
            "on this port: only the mode C data readout.",
            _frames_ev(pf, "the identification without \\2"),
            [now("Use the meter's electrical port (RS-485/RS-232) or its modem for DLMS."),
             later("Ask the vendor whether mode E can be enabled on the optical port.")]))
    if f.has("optical.mode_e") and not f.has("hdlc.ua", "address.found"):
        pf = f.findings("optical.mode_e")[0]
        silent = f.findings("hdlc.no_answer", "address.not_found")
        if silent:
            out.append(cause(
                "optical.no_hdlc",
                f"The meter agreed mode E at {pf.data.get('baud')} baud, then did not answer "
                "HDLC", 0.75, "meter",
                "The identification and acknowledgement went through, so the head and the "
                "optical port work; the SNRMs after the switch got no answer. The meter may "
                "switch to another rate than the one it offered, need more time to switch, or "
                "live at another HDLC address.",
                _frames_ev(pf, "the acknowledgement and the switch")
                + [ev_finding(x) for x in silent[:1]],
                [now("Probe again with a lower rate (--baud 9600 or --baud 4800): the ACK "
                     "then asks for it."),
                 now("Give the server address if you know it (--server-address).")]))
    return out
