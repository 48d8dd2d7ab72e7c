"""Rules for the association rungs: AARQ/AARE, passwords, lockout (DOMAIN.md sections 3 and 4)."""

from __future__ import annotations

from dlmsdoctor.codec.model import FrameKind
from dlmsdoctor.diagnosis.facts import (
    TAG_AARE,
    TAG_AARQ,
    ConnFacts,
    FrameFacts,
    SessionFacts,
    diagnostic_number,
)
from dlmsdoctor.diagnosis.registry import cause, ev_finding, ev_frame, later, now, rule
from dlmsdoctor.diagnosis.words import duration, timeout_needed
from dlmsdoctor.session import Cause, Evidence, LoginRecord, ProbeFinding


def _who(login: LoginRecord) -> str:
    if not login.credential:  # a capture or a tap: the poller's set names are not known
        return f"the login of client SAP {login.client_sap} ({login.mechanism})"
    return f"credential set {login.credential!r} (client SAP {login.client_sap}, {login.mechanism})"


def _finding_who(pf: ProbeFinding) -> str:
    name = pf.data.get("credential")
    if not name:
        mechanism = pf.data.get("mechanism")
        return (f"the login of client SAP {pf.data.get('client_sap', '?')}"
                + (f" ({mechanism})" if mechanism else ""))
    return f"credential set {name!r} (client SAP {pf.data.get('client_sap', '?')})"


def _aare_of(f: SessionFacts, step_id: str, at: float | None = None) -> int | None:
    """The meter's AARE in this step (the last one up to ``at``): what proves a refusal."""
    aares = [x for x in f.frames if not x.tx and x.apdu_tag == TAG_AARE
             and x.record.step_id == step_id]
    before = [x for x in aares if at is None or x.at <= at + 1e-6] or aares
    return before[-1].index if before else None


def _rejected(f: SessionFacts, *diagnostics: int) -> tuple[list[str], list[Evidence]]:
    """Who was rejected with one of these diagnostics, from logins and probe findings; each
    refusal cited once, by the meter's AARE."""
    who: list[str] = []
    evidence: list[Evidence] = []
    steps: set[str] = set()
    for login in f.rejected_logins(*diagnostics):
        who.append(_who(login))
        steps.add(login.step_id)
        reason = login.diagnostic or "no reason given"
        evidence.append(
            Evidence(note=f"the meter's AARE refused {_who(login)}: {reason}",
                     frame=_aare_of(f, login.step_id, login.at), step=login.step_id)
        )
    for pf in f.rejections(*diagnostics):
        if pf.step_id in steps:
            continue  # the same refusal, already cited by its AARE
        if not who:
            who.append(_finding_who(pf))
        evidence.append(ev_finding(pf))
    return sorted(set(who)), evidence


@rule("auth.lockout", "meter.session_taken", "network.proxy")
def lockout(f: SessionFacts) -> list[Cause]:
    """Correct password refused after wrong ones, or drops right after a failed login.

    Only a credential accepted and then refused proves a lockout. A close-at-once after failed
    logins is also what a meter whose single session is held by another client does (the seed
    report's poller): then the candidates are listed together, the poller first."""
    proof: list[Evidence] = []
    drops: list[Evidence] = []
    failed = f.rejected_logins(13) or []
    failed_at = min((x.at for x in failed), default=None)
    failed_pf = f.rejections(13)
    if failed_at is None and failed_pf:
        failed_at = min(pf.at for pf in failed_pf)
    # (a) a credential accepted before was refused afterwards: the right password, refused
    # (a capture's logins have no set name: the same client SAP may have sent another secret)
    accepted = {x.credential: x for x in f.logins if x.outcome == "accepted" and x.credential}
    for x in failed:
        if x.credential in accepted and accepted[x.credential].at < x.at:
            proof.append(
                Evidence(note=f"{_who(x)} accepted earlier, refused now",
                         frame=_aare_of(f, x.step_id, x.at), step=x.step_id)
            )
    # (b) after a failed login of this run, connections dropped right after their first frame
    if failed_at is not None:
        for conn in f.connections:
            last = conn.closed_right_after_tx
            if last is not None and last.at > failed_at and not conn.rx:
                drops.append(
                    ev_frame(
                        last, f"connection {conn.id} dropped after this frame, after a failed login"
                    )
                )
    # (c) the engine's guard stopped the run (a close-at-once with failed logins in the ledger)
    # (c) the engine's guard: login.lockout when it stopped the run (a failed login of this
    # run, or several in the ledger with none accepted since); target.closed_at_once when it
    # only held passwords back (one earlier failure: a taken session looks the same)
    stopped = f.findings("login.lockout")
    guard = [_guard_evidence(pf) for pf in stopped]
    suspect = [_guard_evidence(pf)
               for pf in f.findings("target.closed_at_once", "login.lockout_suspect")]
    if proof:
        return [_lockout_cause(0.9, proof + drops + guard)]
    if drops:
        # our own failed login moments before makes the lockout the better reading, but a
        # poller grabbing the freed session in between looks the same on the wire
        return [
            _lockout_cause(0.88, drops + guard),
            _taken_candidate(0.35, drops + guard),
        ]
    if not guard and not suspect:
        return []
    # only earlier runs failed (the ledger): a close-at-once says little more than "not now".
    # Several failures with none accepted since (the guard stopped) tip it towards a lockout,
    # the taken session stays listed right below with its action
    evidence = guard + suspect + _first_closes(f)
    counted = any(_int(pf.data.get("failed_since_success")) >= 2 for pf in stopped)
    return [
        _taken_candidate(0.45, evidence),
        _lockout_cause(0.5 if counted else 0.4, evidence, proven=False,
                       own=_own_failure_times(stopped)),
        cause(
            "network.proxy",
            "Maybe a firewall or proxy accepts the connection and drops it",
            0.2,
            "network",
            "A firewall, proxy or modem that accepts TCP itself and closes it when the first "
            "bytes arrive gives the same close-at-once.",
            evidence,
            [later("If the other candidates are ruled out, check firewalls/proxies on the path.")],
        ),
    ]


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _guard_evidence(pf: ProbeFinding) -> Evidence:
    # our own words: the guard's message carries advice (a reset) the diagnosis does not give
    recent = pf.data.get("failed_logins_recent")
    note = ("the run stopped: the connection was closed at once" if pf.code == "login.lockout"
            else "the connection was closed at once; password logins were held back")
    if isinstance(recent, int) and recent > 0:
        note += f", with {recent} failed login(s) recent in the login ledger"
    own = pf.data.get("own_failures")
    if isinstance(own, list) and own:
        # the ledger holds only this tool's attempts: name them, with their times
        which = {True: "this run", False: "an earlier run"}
        times = ", ".join(f"{x.get('at_text')} ({which[bool(x.get('this_run'))]})"
                          for x in own[-4:] if isinstance(x, dict))
        note += f"; dlmsdoctor's own failed logins on this meter: {times}"
    return Evidence(note=note, step=pf.step_id or None, finding=pf.code,
                    frame=pf.frames[0] if pf.frames else None)


def _first_closes(f: SessionFacts) -> list[Evidence]:
    out: list[Evidence] = []
    for conn in f.connections:
        last = conn.closed_right_after_tx
        if last is not None and not conn.rx:
            out.append(ev_frame(last, f"connection {conn.id} closed right after this frame, "
                                      "no byte back"))
    return out[:2]


def _taken_candidate(confidence: float, evidence: list[Evidence]) -> Cause:
    return cause(
        "meter.session_taken",
        "Another client may hold the meter's only DLMS session (or the meter locks us out)",
        confidence,
        "poller",
        "The meter closed the connection at once, without a byte back. A meter that serves one "
        "client at a time does exactly this while another client (the site's own polling "
        "service) is connected; a login lockout looks the same on the wire. The seed field "
        "report concluded 'locked' here while its own poller held the connection.",
        evidence,
        [
            now("Pause the polling service (and any other client), then probe again once."),
            later("If it still closes at once with every client stopped, wait out a possible "
                  "lockout (often 60-255 s) before one more try."),
        ],
    )


def _own_failure_times(found: list[ProbeFinding]) -> str:
    """The times of this tool's own failed logins the guard counted ("23:35, 23:36")."""
    times: list[str] = []
    for pf in found:
        own = pf.data.get("own_failures")
        for x in own if isinstance(own, list) else []:
            if isinstance(x, dict) and isinstance(x.get("at_text"), str):
                times.append(x["at_text"])
    return ", ".join(times[-4:])


def _lockout_cause(confidence: float, evidence: list[Evidence], proven: bool = True,
                   own: str = "") -> Cause:
    if proven:
        title = "The meter locked logins out after failed password attempts"
    elif own:
        # the ledger holds only this tool's attempts: the lockout it may have caused, when
        title = (f"Maybe a login lockout caused by dlmsdoctor's own failed logins at {own} "
                 "(not proven)")
    else:
        title = "Maybe a login lockout after earlier failed logins (not proven)"
    return cause(
        "auth.lockout",
        title,
        confidence,
        "client",
        "After a wrong password the meter refuses every login (even the right one) or drops "
        "connections at once for a while: its password lockout. The wrong attempts may "
        "come from this run or from another client (a poller with an old password).",
        evidence,
        [
            now(
                "Stop all login attempts (including the poller's) and wait out the lockout "
                "(often 60-255 s; some meters count failures per day)."
            ),
            now("Then try once, with the password verified for that client SAP."),
        ],
    )


@rule("auth.wrong_password")
def wrong_password(f: SessionFacts) -> list[Cause]:
    who, evidence = _rejected(f, 13)
    if not who:
        return []
    return [
        cause(
            "auth.wrong_password",
            f"Password refused for {', '.join(who)}",
            0.85,
            "client",
            "The meter rejected the association with 'authentication failure' (AARE diagnostic "
            "13): the password is wrong, or it belongs to another client SAP (1, 16, 32 and "
            "vendor SAPs have separate passwords). Further tries can lock the meter.",
            evidence,
            [
                now("Stop: do not retry this password; each failure counts toward a lockout."),
                now(
                    "Check which client SAP this password belongs to, and the password itself "
                    "(meter documentation, configuration tool)."
                ),
            ],
        )
    ]


@rule("auth.mechanism_mismatch")
def mechanism_mismatch(f: SessionFacts) -> list[Cause]:
    who, evidence = _rejected(f, 11, 12, 14)
    if not who:
        return []
    return [
        cause(
            "auth.mechanism_mismatch",
            f"Wrong authentication level for {', '.join(who)}",
            0.8,
            "client",
            "The AARE says the authentication mechanism is not recognised, required or missing "
            "(diagnostic 11, 12 or 14): this client SAP needs another level (none, low/LLS, "
            "high/HLS-GMAC).",
            evidence,
            [
                now(
                    "Use the authentication level the meter defines for this client SAP "
                    "(e.g. SAP 16: none, SAP 1: high)."
                )
            ],
        )
    ]


@rule("assoc.context_rejected")
def context_rejected(f: SessionFacts) -> list[Cause]:
    who, evidence = _rejected(f, 2)
    if not who:
        return []
    return [
        cause(
            "assoc.context_rejected",
            "The meter rejects the application context (LN/SN or ciphering)",
            0.8,
            "client",
            "AARE diagnostic 2, application-context-name-not-supported: the meter wants short "
            "name (SN) instead of logical name (LN) referencing, or a ciphered context.",
            evidence,
            [
                now(
                    "Switch the client's referencing (LN/SN), or configure ciphering if the meter "
                    "requires it."
                )
            ],
        )
    ]


@rule("assoc.rejected")
def other_rejection(f: SessionFacts) -> list[Cause]:
    known = {2, 11, 12, 13, 14}
    logins = [x for x in f.rejected_logins() if diagnostic_number(x.diagnostic) not in known]
    findings = [
        pf
        for pf in f.findings("assoc.rejected", "assoc.service_error")
        if diagnostic_number(pf.data.get("diagnostic")) not in known
    ]
    if not logins and not findings:
        return []
    evidence = [
        Evidence(note=f"the meter's AARE refused {_who(x)}: {x.diagnostic or 'no reason given'}",
                 frame=_aare_of(f, x.step_id, x.at), step=x.step_id)
        for x in logins
    ]
    evidence += [ev_finding(pf) for pf in findings]
    return [
        cause(
            "assoc.rejected",
            "The meter rejected the association",
            0.6,
            "unknown",
            "The AARE rejected the association without a diagnostic pointing at the password "
            "or the context: PDU size, conformance or DLMS version mismatch, or a vendor rule.",
            evidence,
            [now("Read the AARE decode in the ladder; compare conformance and PDU size.")],
        )
    ]


@rule("assoc.no_answer", "assoc.aarq_too_long", "meter.late_replies")
def no_answer_after_aarq(f: SessionFacts) -> list[Cause]:
    """UA, then silence after the AARQ: too long for the link, or the meter needs ciphering."""
    hits = []
    wrapped_hits = []
    late: list[tuple[FrameFacts, FrameFacts]] = []
    # an AARQ whose AARE came late (after a later request: the engine marks what each frame
    # answers) was answered: a slow meter (timing.slow_service), never one that ignores it
    answered_late = {x.record.answers for x in f.frames if x.record.answers is not None}
    for conn in f.connections:
        # only a whole, undamaged UA proves a link: a cut fragment (7E A7 FF 21 02 21 73 93)
        # or a frame with a wrong checksum is no UA
        ua = next((x for x in conn.rx if x.hdlc_type == "UA" and x.kind == FrameKind.HDLC
                   and not x.errors), None)
        for x in conn.tx:
            if x.apdu_tag != TAG_AARQ or conn.answered_after(x) or x.index in answered_late:
                continue
            answer = _late_aare(conn, x)
            if answer is not None:
                late.append((x, answer))  # slow, not ignoring: the AARE came after the wait
                continue
            if ua is not None and x.index > ua.index:
                hits.append((x, ua))
            elif x.kind == FrameKind.WRAPPER and any(
                y.is_dlms and not y.errors and y.index < x.index for y in conn.rx
            ):
                wrapped_hits.append(x)  # the wrapper answered before on this connection
    if late and not hits and not wrapped_hits:
        return [_late_association(*late[0])]
    if not hits and not wrapped_hits:
        return []  # no link proven: the framing rules explain a first AARQ left unanswered
    findings = f.findings("assoc.no_answer")
    evidence = [ev_frame(x, "AARQ: no answer") for x in [h for h, _ in hits] + wrapped_hits][:2]
    evidence += [ev_finding(pf) for pf in findings[:1]]
    too_long = [
        (x, ua)
        for x, ua in hits
        if ua.params
        and isinstance(ua.params.get("max_info_rx"), int)
        and x.info_length > int(ua.params["max_info_rx"])
    ]
    if too_long:
        x, ua = too_long[0]
        assert ua.params is not None
        return [
            cause(
                "assoc.aarq_too_long",
                "Our AARQ is longer than the link allows, so the meter ignores it",
                0.85,
                "client",
                f"The UA set the meter's receive limit to {ua.params['max_info_rx']} bytes; the "
                f"AARQ frame carried {x.info_length}. Frames over the limit are dropped.",
                [ev_frame(ua, "UA: negotiated limits"), *evidence],
                [now("Segment frames to the negotiated max info length, or shorten the AARQ.")],
            )
        ]
    return [
        cause(
            "assoc.no_answer",
            "The link works but the meter ignores our AARQ (ciphering or other context needed)",
            0.6,
            "client",
            "The meter accepted the HDLC link (UA) and then stays silent to the association "
            "request: typically it requires a ciphered context (security suite, system title, "
            "keys) or a different client SAP for that link.",
            evidence,
            [
                now(
                    "Ask for the meter's security setup (security suite, keys, client SAP) and "
                    "try an HLS/ciphered credential set."
                ),
            ],
        )
    ]


def _late_aare(conn: ConnFacts, aarq: FrameFacts) -> FrameFacts | None:
    """The AARE to this AARQ when it came after our next frame (after the wait): recorded as
    answering it (``answers``), or the first AARE on the connection before our next AARQ."""
    after = [x for x in conn.frames if x.index > aarq.index]
    for x in after:
        if x.tx and x.apdu_tag == TAG_AARQ:
            return None
        if not x.tx and x.apdu_tag == TAG_AARE and x.record.answers in (None, aarq.index):
            return x
    return None


def _late_association(aarq: FrameFacts, aare: FrameFacts) -> Cause:
    delay = aare.at - aarq.at
    said = duration(delay)
    return cause(
        "meter.late_replies",
        f"The meter answers the association, but later than the wait ({said} after the AARQ)",
        0.8,
        "meter",
        f"The meter's AARE came {said} after our AARQ, after the wait for it had ended. The "
        "meter works but is slow to associate (key derivation, a slow or busy meter, GPRS): a "
        "client with a shorter timeout sees silence and gives up.",
        [
            ev_frame(aarq, "AARQ: no answer within the wait"),
            ev_frame(aare, f"the AARE arrived {said} after the AARQ"),
        ],
        [now(f"Give your client a reply timeout of at least {duration(max(3.0, delay * 2))} "
             "for the association (--timeout for dlmsdoctor).")],
    )


_SLOW_WHAT = {"link": ("UA", "SNRM"), "association": ("AARE", "AARQ (association)"),
              "get": ("GET answer", "GET (read)"), "release": ("RLRE", "RLRQ (release)"),
              "disc": ("UA", "DISC"), "action": ("ACTION answer", "ACTION")}


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


@rule("meter.late_replies")
def slow_service(f: SessionFacts) -> list[Cause]:
    """The meter answered after the wait (timing.slow_service): it works, but slowly. Time is
    evidence: the measured delay gives the timeout a poller needs; nothing here is a context or
    a cipher problem."""
    found = f.findings("timing.slow_service")
    if not found:
        return []
    slowest = max(found, key=lambda pf: _number(pf.data.get("delay")))
    delay, waited = _number(slowest.data.get("delay")), _number(slowest.data.get("waited"))
    answer, request = _SLOW_WHAT.get(str(slowest.data.get("service")), ("answer", "request"))
    needed = timeout_needed(delay)
    evidence: list[Evidence] = []
    for pf in sorted(found, key=lambda pf: pf.frames[:1]):
        what = _SLOW_WHAT.get(str(pf.data.get("service")), ("answer", "request"))
        d, w = _number(pf.data.get("delay")), _number(pf.data.get("waited"))
        if len(pf.frames) == 2:
            evidence.append(Evidence(note=f"{what[1]}: no answer within the {duration(w)} wait",
                                     frame=pf.frames[0], step=pf.step_id or None))
            evidence.append(Evidence(note=f"the {what[0]} came {duration(d)} after it",
                                     frame=pf.frames[1], step=pf.step_id or None,
                                     finding=pf.code))
    return [
        cause(
            "meter.late_replies",
            f"The meter works, but slowly: its {answer} came {duration(delay)} after our "
            f"{request}, later than the {duration(waited)} wait",
            # it works (the late answer was taken): a configuration fault found in the same
            # run (a wrong address, a wrong password) ranks first
            0.65,
            "meter",
            f"The meter answered, {duration(delay)} after the request. A client that waits less "
            "takes that for silence, gives up, and then meets the late answer during its next "
            "request. Meter processing time is not network time: a meter may set the link up "
            "in milliseconds and take seconds for a login (key derivation, a slow or busy CPU); "
            "GPRS adds seconds to everything.",
            evidence,
            [
                now(f"Set your poller's reply timeout to at least {needed:g} s (dlmsdoctor: "
                    f"--timeout {needed:g}); the slowest answer took {duration(delay)}."),
            ],
        )
    ]


@rule("cosem.read_denied", "cosem.read_failed")
def reads_failed(f: SessionFacts) -> list[Cause]:
    """Associated, but some identity reads were refused: access rights or missing objects."""
    failed = f.findings("cosem.read_failed")
    if not failed:
        return []
    denied = [pf for pf in failed if "denied" in str(pf.data.get("result", "")).lower()]
    what = ", ".join(sorted({str(pf.data.get("obis", "?")) for pf in (denied or failed)}))
    evidence = [ev_finding(pf) for pf in (denied or failed)[:3]]
    if denied:
        return [
            cause(
                "cosem.read_denied",
                f"The meter refuses reads of {what} to this client (access rights)",
                0.5,
                "client",
                "The association works, but the meter answers read-write-denied: this client "
                "SAP has no read right on those objects (the public client often sees only a "
                "few).",
                evidence,
                [now("Read them with a client SAP that has the right (e.g. management, 1).")],
            )
        ]
    return [
        cause(
            "cosem.read_failed",
            f"Some reads failed ({what})",
            0.4,
            "meter",
            "The association works, but the meter could not serve some objects (not present, "
            "temporary failure): harmless for polling if your objects are not among them.",
            evidence,
            [later("Check the meter's object list for the objects your poller reads.")],
        )
    ]


@rule(benign=("assoc.unsupported",))
def unsupported_mechanism(f: SessionFacts) -> list[Cause]:
    found = f.findings("assoc.unsupported")
    if not found:
        return []
    mechanisms = ", ".join(sorted({str(pf.data.get("mechanism", "?")) for pf in found}))
    return [
        cause(
            "assoc.unsupported",
            f"Some credential sets could not be tried here ({mechanisms})",
            0.9,
            "client",
            "dlmsdoctor cannot run this authentication mechanism in this build; those sets "
            "were skipped without touching the meter.",
            [ev_finding(pf) for pf in found[:3]],
            [later("Test those credential sets with the vendor's tool.")],
        )
    ]
