"""The tap's diagnosis: its findings -> ranked causes, each with the frames that prove it.

A tap session has no ladder of steps; its evidence is the poller's own traffic. So has a foreign
capture (tcpdump, Wireshark: ``Session.kind`` "capture"), replayed through the same analysis by
``tap.replay``: another client's traffic is judged as a poller's, never by the probe's ladder.
The rules here
read the tap findings (``tap.*`` codes, raised live by ``analysis``) and the counts in
``settings["tap"]``; whose fault it is leads each cause (``poller``, ``meter``, ``bridge``,
``network``).
"""

from __future__ import annotations

from dataclasses import dataclass

from dlmsdoctor.session import (
    Action,
    Cause,
    ConnectionProfile,
    Diagnosis,
    Evidence,
    ProbeFinding,
    Session,
)


@dataclass(frozen=True, slots=True)
class Rule:
    title: str
    whose: str
    confidence: float
    actions: tuple[tuple[str, str], ...] = ()


# Ordered by how much each blocks the reading: the first that applies leads the headline.
RULES: dict[str, Rule] = {
    "tap.target.unreachable": Rule(
        "The meter side cannot be reached", "network", 0.9,
        (("now", "Check the target address and port, and that the meter or bridge is up."),)),
    "tap.poller.login_retries": Rule(
        "Your poller keeps retrying a refused login: the meter will lock", "poller", 0.95,
        (("now", "Stop the poller's automatic retries for this meter now."),
         ("now", "Fix the password or client SAP in the poller's configuration, then try "
                 "once by hand (dlmsdoctor probe --cred ...)."),)),
    "tap.poller.malformed": Rule(
        "Your poller sends malformed frames the meter drops", "poller", 0.9,
        (("now", "Fix the frame in the poller (the finding says the field and its right "
                 "value); dlmsdoctor decode shows the corrected frame."),)),
    "tap.poller.address_size3": Rule(
        "Your poller sends a 3-byte HDLC server address (only 1, 2 or 4 exist)", "poller", 0.95,
        (("now", "Configure a 2- or 4-byte server address in the poller."),)),
    "tap.poller.address": Rule(
        "Your poller's HDLC address is malformed", "poller", 0.85,
        (("now", "Configure the poller's client and server address sizes correctly."),)),
    "tap.poller.address_unreachable": Rule(
        "Your poller's server address cannot reach the meter's physical address", "poller", 0.9,
        (("now", "Set the poller's server address to the meter's LOGICAL/PHYSICAL with a size "
                 "that holds it (4 bytes for a physical address above 127)."),)),
    "tap.bridge.busy": Rule(
        "Several clients compete for a single-connection bridge", "poller", 0.9,
        (("now", "Let one client at a time use the bridge: stop the other poller or service, "
                 "or serialise the polls."),
         ("later", "Close each connection cleanly (RLRQ, DISC) so the bridge frees at once."),)),
    "tap.poller.timeout_too_short": Rule(
        "Your poller gives up before the meter answers", "poller", 0.9,
        (("now", "Raise the poller's answer timeout above the meter's slowest answers (the "
                 "answer times below)."),
         ("later", "After a timeout, wait and flush before the next session: late answers "
                   "arrive as stale bytes."),)),
    "tap.poller.login_failed": Rule(
        "The meter refuses your poller's login", "poller", 0.85,
        (("now", "Check the poller's password and client SAP for this meter."),)),
    "tap.poller.no_answer": Rule(
        "Your poller's requests get no answer (wrong address, client SAP or frame)", "poller",
        0.75, (("now", "Compare the poller's server address and client SAP with the meter's; "
                       "dlmsdoctor probe finds the address the meter answers."),)),
    "tap.meter.foreign_protocol": Rule(
        "The meter side speaks another protocol (IEC 62056-21 text or telnet)", "meter", 0.85,
        (("now", "For IEC 62056-21 text: use the meter's HDLC port or the mode E handshake "
                 "(optical: dlmsdoctor probe --optical); for telnet bytes: set the bridge's "
                 "port to raw mode."),)),
    "tap.meter.damaged": Rule(
        "Frames from the meter side arrive damaged (checksums, lengths, cut short)", "network",
        0.75,
        (("now", "Check the line behind the bridge or modem: baud rate and parity, cabling, "
                 "noise; a poller must drop such frames and ask again."),)),
    "tap.meter.closed_on_request": Rule(
        "The meter side closes the connection on your poller's request", "meter", 0.7,
        (("now", "Check the framing (HDLC or wrapper) and whether another session or a lockout "
                 "holds the meter (dlmsdoctor probe tells them apart)."),)),
    "tap.poller.session_left_open": Rule(
        "Your poller closes TCP without releasing the session", "poller", 0.85,
        (("now", "Make the poller send RLRQ and DISC before it closes the connection."),)),
    "tap.poller.inactivity_cut": Rule(
        "The meter's inactivity timeout cuts your poller off", "poller", 0.7,
        (("now", "Read the inactivity timeout (0.0.22.0.0.255 attribute 8) and poll or "
                 "reconnect within it."),)),
    "tap.meter.stale_bytes": Rule(
        "Stale bytes from an earlier session reach your poller", "bridge", 0.7,
        (("now", "Flush after connecting and start with DISC; raise the poller's timeout so "
                 "no late answer is left behind."),)),
    "tap.poller.sequence": Rule(
        "Your poller's HDLC sequence numbers are wrong", "poller", 0.7,
        (("now", "Fix the poller's N(S)/N(R) handling (reset to 0 after UA, +1 per I-frame)."),)),
    "tap.meter.sequence": Rule(
        "Sequence numbers disagree between poller and meter", "unknown", 0.5),
    "tap.invoke_id.mismatch": Rule(
        "Answers carry another invoke-id than the request", "meter", 0.6),
    "tap.meter.refused": Rule("The meter refuses some of your poller's requests", "meter", 0.6),
    "tap.bridge.message": Rule("The bridge writes its own text to the poller", "bridge", 0.6),
}
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


def _cause(code: str, findings: list[ProbeFinding]) -> Cause:
    rule = RULES.get(code) or Rule(findings[0].message, "unknown", 0.5)
    evidence: list[Evidence] = []
    for f in findings:
        frames = f.frames or [None]  # type: ignore[list-item]
        for frame in frames[:3]:
            evidence.append(Evidence(note=f.message, frame=frame, finding=f.code))
    count = sum(int(f.data.get("count", 1)) for f in findings)
    if code == "tap.poller.login_retries":  # stages of one story: the latest says it all
        explanation = findings[-1].message
    else:
        explanation = findings[0].message if len(findings) == 1 else " ".join(
            f.message for f in findings[:3])
    if count > 1 and len(findings) == 1 and "(seen" not in explanation:
        explanation += f" (seen {count} times)"
    return Cause(code, rule.title, rule.confidence, rule.whose, explanation, evidence,
                 [Action(text, when) for when, text in rule.actions])


def diagnose(session: Session) -> Diagnosis:
    """Ranked causes from the tap findings; status ok/degraded/failed and a one-line headline."""
    by_code: dict[str, list[ProbeFinding]] = {}
    for f in session.findings:
        if f.code.startswith("tap."):
            by_code.setdefault(f.code, []).append(f)
    if "tap.poller.login_retries" in by_code:
        by_code.pop("tap.poller.login_failed", None)  # the retries cause says it, with pace
    order = list(RULES)
    codes = sorted(by_code, key=lambda c: (
        min(_SEVERITY_RANK.get(f.severity, 3) for f in by_code[c]),
        order.index(c) if c in order else len(order)))
    causes = [_cause(code, by_code[code]) for code in codes
              if any(f.severity != "info" for f in by_code[code])]
    tap = session.settings.get("tap", {})
    frames = tap.get("frames", {}) if isinstance(tap, dict) else {}
    relayed = sum(frames.values()) if isinstance(frames, dict) else 0
    errors = any(f.severity == "error" for c in codes for f in by_code[c])
    capture = session.kind == "capture"  # a recorded poller (a foreign capture): no tap
    if not relayed and not causes:
        return Diagnosis("degraded", "The capture holds no traffic of the poller to the "
                         "meter." if capture else "No poller traffic went through the tap: "
                         "point the poller at the tap's listening address.", causes)
    profile = observed_profile(session)
    if not causes:
        logins = tap.get("logins", {}) if isinstance(tap, dict) else {}
        seen = "in this capture" if capture else "the tap can see"
        return Diagnosis("ok", f"The poller and the meter talk without a fault {seen} "
                         f"({relayed} frames, {logins.get('accepted', 0)} associations).",
                         causes, profile)
    return Diagnosis("failed" if errors else "degraded", causes[0].title, causes, profile)


def observed_profile(session: Session) -> ConnectionProfile | None:
    """The settings that worked, as the poller used them (its first association the meter
    accepted): the same "works with" a probe run gives, for a tap run or a capture of one.
    None when no association was accepted (or its authentication is one a profile cannot
    say)."""
    tap = session.settings.get("tap")
    worked = tap.get("worked") if isinstance(tap, dict) else None
    if not isinstance(worked, dict):
        return None

    def number(key: str) -> int | None:
        value = worked.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    logical, client = number("logical"), number("client_sap")
    if logical is None or client is None or worked.get("framing") not in ("hdlc", "wrapper"):
        return None
    return ConnectionProfile(
        host=session.target.host, port=session.target.port, framing=str(worked["framing"]),
        server_logical=logical, server_physical=number("physical"),
        address_size=number("size") or 0, client_sap=client,
        authentication=str(worked.get("authentication") or "none"),
        max_info_tx=number("max_info_tx"), max_info_rx=number("max_info_rx"),
        window_tx=number("window_tx"), window_rx=number("window_rx"),
        max_pdu_size=number("max_pdu_size"))
