"""Rules for the link rungs: framing, HDLC SNRM/UA, address discovery, and the byte stream.

Signatures from DOMAIN.md section 3; the key point (from the field) is that an HDLC meter
ignores, silently, any frame it cannot accept: silence is a clue, never proof of a dead meter.
"""

from __future__ import annotations

from dlmsdoctor.codec.model import FrameKind
from dlmsdoctor.diagnosis.facts import ConnFacts, FrameFacts, SessionFacts
from dlmsdoctor.diagnosis.registry import cause, ev_finding, ev_frame, ev_step, later, now, rule
from dlmsdoctor.diagnosis.serial_facts import line_changed_between
from dlmsdoctor.diagnosis.words import duration, timeout_needed
from dlmsdoctor.session import Action, Cause, Evidence


# The seed report's client sent an SNRM whose parameter group length was wrong, and the meter
# dropped it exactly like a dead or locked meter would: when our own probe gets through but the
# user's client does not, their frames are the next suspect.
def check_own_frames() -> Action:
    return later(
        "If dlmsdoctor gets through but your client does not, paste your client's SNRM/AARQ "
        "from its log into `dlmsdoctor decode`: a malformed frame is dropped the same way."
    )


def _closed_right_after(f: SessionFacts) -> list[tuple[ConnFacts, FrameFacts]]:
    """Connections the peer closed right after our frame, with no byte back (no bridge text)."""
    out = []
    for conn in f.connections:
        last = conn.closed_right_after_tx
        if last is None or (conn.rx and conn.rx[-1].index > last.index):
            continue
        # a bridge message or an answer earlier on the same connection explains it otherwise
        if any(x.kind == FrameKind.BRIDGE_MESSAGE for x in conn.rx):
            continue
        out.append((conn, last))
    return out


@rule(
    "framing.wrapper_only",
    "framing.hdlc_only",
    "meter.session_taken",
    "network.proxy",
    "link.closed_after_frame",
    "auth.lockout_elsewhere",
    "hdlc.address_refused",
    "hdlc.wrong_address",  # the close at one address, a UA at another
)
def closed_after_first_frame(f: SessionFacts) -> list[Cause]:
    """Socket closed right after our frame, no bytes: disambiguated by what else was seen."""
    closed = [(c, last) for c, last in _closed_right_after(f) if not f.closed_by_idle_timer(c)]
    if not closed:
        return []
    if f.has("bridge.busy") or f.frames_with_code("stream.bridge", tx=False):
        return []  # the bridge rules say it better
    evidence: list[Evidence] = [
        ev_frame(
            last,
            f"connection {conn.id} closed by the peer "
            f"{duration((conn.record.closed_at or last.at) - last.at)} after this frame, "
            "no byte back",
        )
        for conn, last in closed[:3]
    ]
    evidence += [ev_finding(pf) for pf in f.findings("tcp.closed_after_first_frame")[:2]]
    framings = {last.kind for _, last in closed}
    out: list[Cause] = []
    if FrameKind.HDLC in framings and f.framing_answered(FrameKind.WRAPPER):
        return [_wrong_framing("wrapper", evidence, f)]
    if FrameKind.WRAPPER in framings and f.framing_answered(FrameKind.HDLC):
        return [_wrong_framing("hdlc", evidence, f)]
    if f.rejected_logins(13) or f.rejections(13) or f.has("login.lockout", "login.lockout_suspect"):
        return []  # the lockout rule owns this combination
    ua = next((x for x in f.rx_of_type("UA") if not x.errors and x.server), None)
    refused = [last for _, last in closed if last.hdlc_type == "SNRM"]
    if (
        ua is not None
        and refused
        and all(s.server != ua.server and s.index < ua.index for s in refused)
    ):
        return [_wrong_address(f, refused, ua, "closed")]
    if f.dlms_answers:
        # it answered on another connection: the close is about that frame or that moment
        out.append(
            cause(
                "link.closed_after_frame",
                "The meter closed the connection after one of our frames",
                0.5,
                "unknown",
                "The peer answered DLMS on another connection, but dropped this one right "
                "after a frame, without answering.",
                evidence,
                [now("Look at the frame just before the close in the ladder.")],
            )
        )
        return out
    if FrameKind.HDLC in framings and _wrapper_met_silence(f, closed):
        return _address_refused(f, evidence, closed)
    both_tried = f.framing_sent(FrameKind.HDLC) and f.framing_sent(FrameKind.WRAPPER)
    proxy_hint = _proxy_hint(f)
    taken = 0.45 if both_tried else 0.4
    out.append(
        cause(
            "meter.session_taken",
            "Another client holds the meter's only DLMS session",
            taken + (0.1 if f.rx_of_type("DM") else 0.0),
            "poller",
            "Many meters and modems serve one client at a time and drop any other connection "
            "after its first frame. The usual holder is the site's own polling service, or a "
            "session a client left open until the meter's inactivity timeout.",
            evidence,
            [
                now("Pause the polling service (and any other client) and probe again."),
                later("Make every client release (RLRQ, DISC) before closing."),
                check_own_frames(),
            ],
        )
    )
    if not both_tried:
        # only one framing was tried (the user forced it): the other one is a prime suspect
        other = "wrapper" if FrameKind.HDLC in framings else "hdlc"
        forced = f.session.target.framing not in ("", "auto")
        out.append(_wrong_framing(other, evidence, f, confidence=0.45 if forced else 0.4))
    out.append(
        cause(
            "auth.lockout_elsewhere",
            "Meter locked out after failed logins elsewhere (not shown by this run)",
            0.25,
            "unknown",
            "A meter in password lockout drops every connection after its first frame. This "
            "run made no failed login, so only an earlier client (the poller, a previous run) "
            "could have caused one: check its logs before concluding the meter is locked.",
            evidence,
            [later("Wait out the lockout time (often 60-255 s, or until the next day), once.")],
        )
    )
    if proxy_hint is not None:
        out.append(proxy_hint)
    return out


def _wrapper_met_silence(f: SessionFacts, closed: list[tuple[ConnFacts, FrameFacts]]) -> bool:
    """The wrapper probe was ignored (connection left open) while HDLC frames got the door."""
    closing = {last.index for _, last in closed}
    wrapper_tx = [x for x in f.frames if x.tx and x.kind == FrameKind.WRAPPER]
    return bool(wrapper_tx) and all(
        x.index not in closing and not f.answers_to(x) for x in wrapper_tx
    )


def serial_candidates(serial: str | None) -> list[str]:
    """Physical addresses derived from a serial number (DOMAIN.md section 2), as CLI options."""
    digits = "".join(ch for ch in serial or "" if ch.isdigit())
    if not digits:
        return []
    out: list[str] = []
    for physical, how in (
        (int(digits) % 10000 + 1000, "SN % 10000 + 1000"),
        (int(digits[-4:]), "last four digits"),
    ):
        size = 2 if physical < 128 else 4
        option = f"--server-address 1/{physical} --address-size {size}"
        if all(option not in o for o in out):
            out.append(f"{option} ({how})")
    return out


def _address_refused(
    f: SessionFacts, evidence: list[Evidence], closed: list[tuple[ConnFacts, FrameFacts]]
) -> list[Cause]:
    """HDLC closed, wrapper ignored: the meter refuses the frame (address) or is taken.

    The wire cannot tell these apart; a known serial number whose derived address was not the
    one we sent tips it towards the address, otherwise the far more common taken session wins.
    """
    candidates = serial_candidates(f.session.target.serial_number)
    sent = {last.server_text() for _, last in closed if last.server}
    derived_sent = any(c.split(" ")[1] in {x.split(" ")[0] for x in sent} for c in candidates)
    address_likely = bool(candidates) and not derived_sent
    address_conf, taken_conf = (0.55, 0.3) if address_likely else (0.35, 0.45)
    if candidates:
        first = now(
            "Probe again with the address derived from the serial number: "
            + "; or ".join(candidates)
            + "."
        )
    else:
        first = now(
            "Give the meter's serial number (--serial-number) or its address from the "
            "label/menu (--server-address, --address-size)."
        )
    return [
        cause(
            "hdlc.address_refused",
            "The meter drops our SNRM: maybe a server address it does not accept",
            address_conf,
            "client",
            "The peer closes the connection as soon as it reads our HDLC frame, but leaves a "
            "wrapper PDU unanswered on an open connection: it parses HDLC and refuses this "
            "frame. Some meters close (instead of staying silent) on a wrong server address.",
            evidence,
            [first, later("Check that no other client holds the meter at the same time.")],
        ),
        cause(
            "meter.session_taken",
            "Another client may hold the meter's only DLMS session",
            taken_conf,
            "poller",
            "A meter that serves one client at a time drops other connections after their "
            "first frame.",
            evidence[:2],
            [now("Pause the polling service (and any other client) and probe again.")],
        ),
    ]


def _wrong_framing(
    framing: str, evidence: list[Evidence], f: SessionFacts, confidence: float = 0.88
) -> Cause:
    proven = f.framing_answered(framing)
    if framing == "wrapper":
        title = (
            "The meter speaks the TCP wrapper (IEC 62056-47), not HDLC"
            if proven
            else "Maybe wrong framing: the meter may expect the TCP wrapper, not HDLC"
        )
        explanation = (
            "HDLC frames were dropped (closed or ignored) while the wrapper got answers. A "
            "wrapper meter reads HDLC's 7E A0 as a bad version and closes or stays silent."
            if proven
            else "Only HDLC was tried and the peer dropped it: a wrapper-only meter does that."
        )
        action = now(
            "Set your client to the TCP wrapper (gurux: -i WRAPPER / InterfaceType.WRAPPER)."
        )
    else:
        title = (
            "The meter speaks HDLC, not the TCP wrapper"
            if proven
            else "Maybe wrong framing: the meter may expect HDLC, not the TCP wrapper"
        )
        explanation = (
            "Wrapper PDUs were dropped while HDLC frames got answers."
            if proven
            else "Only the wrapper was tried and the peer dropped it: an HDLC meter does that."
        )
        action = now("Set your client to HDLC framing (gurux: -i HDLC, the default).")
    # no advice to do what the run already did: --framing auto only when the user forced one
    forced = f.session.target.framing not in ("", "auto")
    return cause(
        f"framing.{framing}_only",
        title,
        confidence if proven else min(confidence, 0.5),  # unproven: a suspect at most
        "client",
        explanation,
        evidence,
        [action] if proven or not forced else [now("Probe again with --framing auto."), action],
    )


def _proxy_hint(f: SessionFacts) -> Cause | None:
    """A TCP handshake much faster than the ICMP round trip: something nearer than the meter
    accepted the connection (a firewall proxy, a modem stack) and then drops it."""
    rtt = f.ping_rtt
    times = [c.record.connect_time for c in f.opened if c.record.connect_time is not None]
    if rtt is None or not times or rtt < 0.02:
        return None
    connect = min(times)
    if connect * 4 > rtt:
        return None
    return cause(
        "network.proxy",
        "Something nearer than the meter accepts the connection and drops it (proxy, firewall)",
        0.3,
        "network",
        f"TCP connected in {duration(connect)} while ping takes {duration(rtt)}: the "
        "connection ends before the meter's network. A firewall or proxy may accept it and "
        "close it when the first bytes are not what it allows.",
        [
            ev_step("tcp.connect", f"connect {duration(connect)}"),
            ev_step("icmp.ping", f"rtt {duration(rtt)}"),
        ],
        [later("Check firewalls/proxies on the path for rules on this port.")],
    )


def _silent_snrms(f: SessionFacts) -> list[FrameFacts]:
    out = []
    for snrm in f.tx_of_type("SNRM"):
        conn = f.conn_of(snrm)
        answers = f.answers_to(snrm)
        if answers:
            continue
        if conn is not None and conn.closed_right_after_tx is snrm:
            continue  # a close, not silence: the closed-after-frame rule
        out.append(snrm)
    return out


def _addresses(frames: list[FrameFacts]) -> str:
    return ", ".join(sorted({s.server_text() for s in frames}))


def _serial_rule(serial: str | None, physical: int | None) -> str:
    if not serial or physical is None:
        return ""
    digits = "".join(ch for ch in serial if ch.isdigit())
    if not digits:
        return ""
    sn = int(digits)
    if physical == sn % 10000 + 1000:
        return f" It is derived from the serial number {serial}: SN % 10000 + 1000 = {physical}."
    if physical == int(digits[-4:]):
        return f" It is the last four digits of the serial number {serial}."
    return ""


def _wrong_address(f: SessionFacts, refused: list[FrameFacts], good: FrameFacts, how: str) -> Cause:
    """SNRMs to some addresses were ``how`` ("ignored" or "closed"); a UA came from ``good``."""
    target = f.session.target
    found = f.findings("address.found")
    derived = str(found[0].data.get("derived_from", "")) if found else ""
    if how == "closed":
        behaviour = (
            "closed the connection on SNRMs to {a} and answered at {g}. This meter drops the "
            "connection when a frame is not addressed to it"
        )
    else:
        behaviour = (
            "ignored SNRMs to {a} and answered at {g}. An HDLC meter silently ignores frames "
            "not addressed to it"
        )
    explanation = (
        "The meter "
        + behaviour.format(a=_addresses(refused), g=good.server_text())
        + ", which looks like a dead (or locked) meter to a client with the wrong address."
    )
    explanation += _serial_rule(target.serial_number, (good.server or {}).get("physical"))
    if derived.startswith("serial") and "serial" not in explanation:
        explanation += " The address was derived from the serial number."
    note = "no answer" if how == "ignored" else "connection closed"
    evidence = [ev_frame(s, f"SNRM to {s.server_text()}: {note}") for s in refused[:4]]
    evidence.append(ev_frame(good, f"UA from {good.server_text()}"))
    evidence += [ev_finding(pf) for pf in found[:1]]
    return cause(
        "hdlc.wrong_address",
        f"Wrong server address: the meter answers at {good.server_text()}",
        0.9 if target.server_address is not None else 0.7,
        "client",
        explanation,
        evidence,
        [
            now(
                f"Set your client's server address to {good.server_text()} "
                "(logical/physical and address size)."
            ),
            later("Record the address per meter; derived addresses differ meter to meter."),
        ],
    )


def _late_answer(snrm: FrameFacts, answer: FrameFacts, confidence: float = 0.8) -> Cause:
    delay = answer.at - snrm.at
    said = duration(delay)
    return cause(
        "meter.late_replies",
        f"The meter answers, but later than the timeout ({said} after the request)",
        confidence,
        "network",
        f"The SNRM to {snrm.server_text()} got its UA {said} later, after the client had "
        "given up and moved on. A slow link (GPRS) or a slow meter looks like silence to a "
        "client with a short timeout, and late answers then confuse its next requests.",
        [
            ev_frame(snrm, "SNRM: no answer within the timeout"),
            ev_frame(answer, f"the UA arrived {said} after the SNRM"),
        ],
        [now(f"Set your poller's reply timeout to at least {timeout_needed(delay):g} s "
             f"(dlmsdoctor: --timeout {timeout_needed(delay):g}); the slowest answer took "
             f"{said}.")],
    )


@rule(
    "hdlc.wrong_address",
    "hdlc.no_answer",
    "bridge.serial_dead",
    "meter.late_replies",
    "framing.wrapper_only",
)
def silence_after_snrm(f: SessionFacts) -> list[Cause]:
    silent = _silent_snrms(f)
    if not silent:
        return []
    ua = [x for x in f.rx_of_type("UA") if not x.errors]
    if ua:
        good = ua[0]
        # a serial rate sweep: silent at the wrong rate is neither late nor a wrong address
        silent = [s for s in silent if not line_changed_between(f, s.at, good.at)]
        late = [s for s in silent if s.index < good.index and s.server == good.server]
        # addresses tried before the right one (not those discovery tried while the right
        # one's answer was on its way)
        first_right = min((s.index for s in late), default=good.index)
        others = [s for s in silent if s.index < first_right and s.server != good.server]
        if late and others:
            # silence at other addresses, a late UA at the right one: the wrong address is the
            # fault; the slowness (a loaded link or machine) comes second
            return [_wrong_address(f, others, good, "ignored"), _late_answer(late[0], good, 0.6)]
        if late:
            return [_late_answer(late[0], good)]
        silent_before = [s for s in silent if s.index < good.index]
        if not silent_before:
            return []
        return [_wrong_address(f, silent_before, good, "ignored")]
    evidence = [ev_frame(s, f"SNRM to {s.server_text()}: no answer") for s in silent[:4]]
    evidence += [ev_finding(pf) for pf in f.findings("address.not_found", "hdlc.no_answer")[:2]]
    if f.framing_answered(FrameKind.WRAPPER):
        # the wrapper answered: the silence was the framing, whatever the address
        return [_wrong_framing("wrapper", evidence, f, confidence=0.75)]
    silent_conns = {s.record.conn_id for s in silent}
    noisy = [x for c in f.connections if c.id in silent_conns for x in c.rx if not x.is_dlms]
    if noisy:
        # the peer did send something (text, garbage): other rules explain it; silence is
        # only a side effect of it
        return [
            cause(
                "hdlc.no_answer",
                "No HDLC answer to our SNRM (the peer sent other bytes instead)",
                0.3,
                "unknown",
                "Some SNRMs got no HDLC reply; the bytes that did come are explained above.",
                evidence[:3],
                [now("Deal with the non-DLMS bytes first (see the causes above).")],
            )
        ]
    tried = sorted({s.server_text() for s in silent})
    # advice the run has not already followed: a serial number it was not given, the wrapper
    # it did not try
    if f.session.target.serial_number:
        where = now("Give the server address from the meter's label or menu (--server-address, "
                    "--address-size): the serial-derived ones were tried.")
    else:
        where = now("Give the serial number (--serial-number) so that derived addresses are "
                    "tried, or the address from the meter's label/menu (--server-address).")
    advice = [where]
    if not f.framing_sent(FrameKind.WRAPPER):
        advice.append(now("Try --framing wrapper in case the meter expects the TCP wrapper."))
    out = [
        cause(
            "hdlc.no_answer",
            "The meter ignores our SNRM: most likely a server address it does not answer to",
            0.55 if len(tried) < 3 else 0.45,
            "client",
            f"No answer to SNRM at {', '.join(tried[:6])}{'...' if len(tried) > 6 else ''}. "
            "An HDLC meter stays silent to frames not addressed to it (logical/physical "
            "address or address size), to frames with a bad FCS, and to the wrong framing.",
            evidence,
            [*advice, check_own_frames()],
        )
    ]
    if not f.framing_sent(FrameKind.WRAPPER):
        out.append(_wrong_framing("wrapper", evidence, f, confidence=0.3))
    out.append(
        cause(
            "bridge.serial_dead",
            "Nothing answers behind the bridge: the serial side may be dead",
            0.3,
            "bridge",
            "When a serial-to-TCP bridge is in front of the meter, TCP works even if the serial "
            "cable, the baud rate or the meter itself is dead.",
            evidence[:2],
            [later("Check the bridge's serial settings (baud rate, 8N1) and the meter cable.")],
        )
    )
    return out


@rule("framing.hdlc_only", "wrapper.no_answer")
def silence_after_wrapper(f: SessionFacts) -> list[Cause]:
    """A wrapper PDU left unanswered on an open connection, before the wrapper ever answered."""
    if f.framing_answered(FrameKind.WRAPPER):
        return []  # the wrapper works; later silences are association matters
    silent = []
    for conn in f.connections:
        for x in conn.tx:
            if x.kind != FrameKind.WRAPPER or conn.answered_after(x):
                continue
            if conn.closed_right_after_tx is x:
                continue  # a close, not silence: the closed-after-frame rule
            silent.append(x)
    if not silent:
        return []
    evidence = [ev_frame(x, "wrapper PDU: no answer") for x in silent[:3]]
    evidence += [ev_finding(pf) for pf in f.findings("wrapper.no_answer", "assoc.no_answer")[:1]]
    if f.framing_sent(FrameKind.HDLC):
        # HDLC answered: auto-detection did its job (an HDLC meter ignores the wrapper, the
        # default everyone assumes); or both met silence: the SNRM rule speaks for both
        return []
    return [
        _wrong_framing("hdlc", evidence, f, confidence=0.5),
        cause(
            "wrapper.no_answer",
            "The meter ignores our wrapper PDU (wrong wPort or client, or it speaks HDLC)",
            0.35,
            "client",
            "A wrapper meter stays silent to a destination wPort (logical device) or a client "
            "wPort it does not serve; an HDLC meter ignores wrapper bytes altogether.",
            evidence,
            [now("Probe again with --framing auto, and check the meter's logical device.")],
        ),
    ]


@rule("hdlc.dm", benign=("hdlc.dm_cleared",))
def dm_after_snrm(f: SessionFacts) -> list[Cause]:
    dms = f.rx_of_type("DM")
    if not dms:
        return []
    # DM to our own DISC (disc_first) is a normal "already disconnected"
    to_snrm = []
    for dm in dms:
        conn = f.conn_of(dm)
        prev = [x for x in (conn.frames if conn else []) if x.tx and x.index < dm.index]
        if prev and prev[-1].hdlc_type == "SNRM":
            to_snrm.append(dm)
    if not to_snrm:
        return []
    evidence = [ev_frame(x, "DM: link refused") for x in to_snrm[:3]]
    # the run sent DISC before a refused SNRM already: no advice to send one
    disc_sent = any(d.index < to_snrm[-1].index for d in f.tx_of_type("DISC"))
    evidence += [ev_finding(pf) for pf in f.findings("hdlc.dm", "target.busy")[:2]]
    ua_after = [x for x in f.rx_of_type("UA") if x.index > to_snrm[-1].index]
    if ua_after:
        return [
            cause(
                "hdlc.dm_cleared",
                "The meter refused the link once (DM), then accepted it",
                0.6,
                "meter",
                "A DM answers SNRM while the meter still holds an earlier link (a client that "
                "did not disconnect) or is not ready; it cleared.",
                [*evidence, ev_frame(ua_after[0], "UA later")],
                [later("Make clients send DISC when they finish.")],
            )
        ]
    return [
        cause(
            "hdlc.dm",
            "The meter refuses the HDLC link (DM): another session is active, or it is not ready",
            0.75,
            "poller",
            "The meter answers SNRM with DM (disconnected mode): it will not open a link now. "
            "Most often another client (the poller, a previous session never released) holds "
            "the meter's single session.",
            evidence,
            [
                now(
                    "Pause other clients, wait for the meter's inactivity timeout, then retry."
                    if disc_sent else
                    "Pause other clients, wait for the meter's inactivity timeout, then retry "
                    "(--disc-first sends DISC to clear a stale link)."
                ),
            ],
        )
    ]


@rule("hdlc.frmr")
def frmr(f: SessionFacts) -> list[Cause]:
    frames = f.rx_of_type("FRMR")
    if not frames:
        return []
    evidence = []
    for x in frames[:2]:
        conn = f.conn_of(x)
        prev = [y for y in (conn.frames if conn else []) if y.tx and y.index < x.index]
        if prev:
            evidence.append(
                ev_frame(prev[-1], f"rejected frame ({prev[-1].info_length} info bytes)")
            )
        evidence.append(ev_frame(x, "FRMR: frame rejected"))
    return [
        cause(
            "hdlc.frmr",
            "The meter rejected one of our frames (FRMR): too long or not allowed now",
            0.8,
            "client",
            "FRMR means the meter received a frame it will not process: an information field "
            "longer than its negotiated maximum, a control field it does not support, or a bad "
            "sequence number.",
            evidence,
            [now("Lower the client's max info length / PDU size to what the UA negotiated.")],
        )
    ]
