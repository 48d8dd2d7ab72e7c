"""Rules for the byte stream around DLMS: bytes before we asked, damaged or cut replies, idle
closes and slow answers (DOMAIN.md section 3, the rows after the HDLC link ones)."""

from __future__ import annotations

from dlmsdoctor.codec.model import FrameKind
from dlmsdoctor.diagnosis.facts import IDLE_CLOSE_S, FrameFacts, SessionFacts
from dlmsdoctor.diagnosis.registry import cause, ev_finding, ev_frame, later, now, rule
from dlmsdoctor.diagnosis.words import codecs_text, duration, timeout_needed
from dlmsdoctor.session import Cause, Evidence


@rule("link.stale_bytes", "link.unasked_bytes")
def unasked_bytes(f: SessionFacts) -> list[Cause]:
    out: list[Cause] = []
    for conn in f.connections:
        unasked = [
            x
            for x in conn.unasked
            if x.kind not in (FrameKind.BRIDGE_MESSAGE, FrameKind.TELNET, FrameKind.IEC62056_21)
        ]
        if not unasked:
            continue
        ev = [
            ev_frame(x, f"{len(x.record.data)} bytes before we sent anything") for x in unasked[:3]
        ]
        ev += [ev_finding(pf) for pf in f.findings("tcp.unsolicited_bytes")[:1]]
        if any(x.is_dlms or x.kind == FrameKind.PARTIAL for x in unasked):
            out.append(
                cause(
                    "link.stale_bytes",
                    "Stale DLMS frames waited in the bridge (answers meant for another client)",
                    0.75,
                    "bridge",
                    "DLMS frames arrived right after connect, before we asked anything: the "
                    "bridge or modem buffered what the meter sent to an earlier client. A client "
                    "that reads them as answers sees out-of-sequence or checksum errors.",
                    ev,
                    [
                        now("Flush the input after connecting and send DISC before SNRM."),
                        later("Stop clients that disconnect without releasing (DISC)."),
                    ],
                )
            )
        else:
            out.append(
                cause(
                    "link.unasked_bytes",
                    "Bytes arrive right after connect, before we send anything",
                    0.55,
                    "bridge",
                    "The peer sends something as soon as the connection opens. Clients that do "
                    "not expect it mistake it for the answer to their first frame.",
                    ev,
                    [now("Have the client read and discard bytes right after connect.")],
                )
            )
        break
    if not out:
        out += _out_of_sequence_at_start(f)
    return out


# What a meter may answer to SNRM; anything else first is a leftover of an earlier exchange.
_SNRM_ANSWERS = frozenset({"UA", "DM", "FRMR"})


def _out_of_sequence_at_start(f: SessionFacts) -> list[Cause]:
    """The first answer to our first SNRM is an I-frame, RR, RLRE... : out of sequence."""
    for conn in f.connections:
        first_tx = conn.tx[0] if conn.tx else None
        if first_tx is None or first_tx.hdlc_type != "SNRM":
            continue
        answers = [x for x in conn.answered_after(first_tx) if x.kind == FrameKind.HDLC]
        stray = [x for x in answers if x.hdlc_type and x.hdlc_type not in _SNRM_ANSWERS]
        if not stray:
            continue
        return [
            cause(
                "link.stale_bytes",
                "Out-of-sequence frames at session start: leftovers of an earlier session",
                0.65,
                "bridge",
                f"Our first SNRM was answered by {', '.join(x.hdlc_type or '?' for x in stray)} "
                "frames, which belong to an association that was not ours: an earlier client's "
                "answers buffered in the bridge or modem, or a session the meter still holds.",
                [ev_frame(x, f"{x.hdlc_type} where UA/DM was expected") for x in stray[:3]],
                [
                    now("Flush the input after connecting and send DISC before SNRM."),
                    later("Stop clients that disconnect without releasing (DISC)."),
                ],
            )
        ]
    return []


def _only_at_session_start(f: SessionFacts, bad: list[FrameFacts]) -> bool:
    """Every bad frame is among the first received on its connection, and clean DLMS answers
    followed on that connection."""
    bad_ids = {x.index for x in bad}
    for conn in f.connections:
        mine = [x for x in conn.rx if x.index in bad_ids]
        if not mine:
            continue
        first_rx = conn.rx[: len(mine)]
        if [x.index for x in first_rx] != [x.index for x in mine]:
            return False
        if not any(x.is_dlms and not x.errors for x in conn.rx[len(mine) :]):
            return False
    return True


def _damage(frame: FrameFacts) -> str:
    if frame.kind == FrameKind.GARBAGE or not frame.errors:
        return "bytes that are not a DLMS frame"
    return codecs_text(frame.errors, frame.tx)


@rule("link.corrupt_replies", "link.stale_bytes")
def corrupt_replies(f: SessionFacts) -> list[Cause]:
    bad = [
        x
        for x in f.frames
        if not x.tx
        and x.kind in (FrameKind.HDLC, FrameKind.GARBAGE)
        and (
            x.kind == FrameKind.GARBAGE
            or {"hdlc.fcs.mismatch", "hdlc.hcs.mismatch", "hdlc.length.mismatch"} & x.errors
        )
    ]
    conns_unasked = {x.index for c in f.connections for x in c.unasked}
    bad = [x for x in bad if x.index not in conns_unasked]
    if not bad:
        return []
    if _only_at_session_start(f, bad):
        return [
            cause(
                "link.stale_bytes",
                "Checksum errors at session start only: stale bytes from an earlier session",
                0.65,
                "bridge",
                "The first bytes after connecting failed their checksum, and every later answer "
                "was clean: leftovers of an earlier exchange (buffered in a bridge or modem) "
                "were read in front of the first answer.",
                [ev_frame(x, _damage(x)) for x in bad[:3]],
                [
                    now("Flush the input after connecting and send DISC before SNRM."),
                    later("Stop clients that disconnect without releasing (DISC)."),
                ],
            )
        ]
    evidence = [ev_frame(x, _damage(x)) for x in bad[:3]]
    evidence += [ev_finding(pf) for pf in f.findings("hdlc.bad_frame", "link.garbage")[:1]]
    return [
        cause(
            "link.corrupt_replies",
            "Replies arrive corrupted (bad checksum or garbage): noise or wrong serial settings",
            0.7 if len(bad) > 1 else 0.6,
            "meter",
            "The meter's answers fail their checksum or are not frames at all. Behind a bridge "
            "this points at the serial line: baud rate, parity, noise, a long RS-485 run "
            "without termination.",
            evidence,
            [now("Check the serial settings (baud rate, 8N1) and the bridge-meter wiring.")],
        )
    ]


@rule("link.reply_cut")
def reply_cut(f: SessionFacts) -> list[Cause]:
    cut = []
    for conn in f.connections:
        partial = [
            x for x in conn.rx if x.kind == FrameKind.PARTIAL or "hdlc.length.truncated" in x.codes
        ]
        if partial and conn.closed_by_peer:
            cut.append(partial[-1])
    if not cut:
        return []
    return [
        cause(
            "link.reply_cut",
            "A reply was cut off mid-frame and the connection closed",
            0.75,
            "meter",
            "The meter (or the bridge) started a frame and closed the connection before its "
            "end: a reset, a watchdog, or a bridge timeout.",
            [ev_frame(x, "frame ends early, then close") for x in cut[:3]],
            [now("Retry once; if it repeats, check the meter's and bridge's power and logs.")],
        )
    ]


@rule("link.inactivity_timeout")
def inactivity_timeout(f: SessionFacts) -> list[Cause]:
    hits = []
    for conn in f.connections:
        idle = conn.idle_before_close
        if conn in f.quiet_closes:
            hits.append((conn, idle or 0.0))
            continue
        if idle is None or idle < IDLE_CLOSE_S or (conn.tx and not conn.rx):
            continue
        last_tx = conn.tx[-1] if conn.tx else None
        if last_tx is not None and not conn.answered_after(last_tx):
            continue  # our last frame was not answered: not an idle close
        hits.append((conn, idle))
    if not hits:
        return []
    conn, idle = hits[0]
    configured = f.session.identity.get("hdlc_inactivity_timeout")
    said = duration(idle)
    explanation = (
        f"The peer closed connection {conn.id} after {said} without traffic: the "
        "meter's (or modem's) inactivity timeout. Clients that open the connection and then "
        "wait (or compute between requests) longer than that find it closed."
    )
    actions = [now("Keep the connection busy (a read) below the timeout, or reconnect per poll.")]
    if configured:
        explanation += f" The meter reports an HDLC inactivity timeout of {configured} s."
    else:  # the run did not read it: say where the exact figure is
        actions.append(later("Read 0.0.22.0.0.255 attribute 8 for the exact timeout."))
    return [
        cause(
            "link.inactivity_timeout",
            f"The meter closes idle connections (inactivity timeout, here {said})",
            0.75,
            "meter",
            explanation,
            [
                Evidence(note=f"connection {c.id} closed after {duration(i)} idle",
                         step=c.frames[-1].record.step_id if c.frames else "tcp.connect",
                         frame=c.frames[-1].index if c.frames else None)
                for c, i in hits[:3]
            ],
            actions,
        )
    ]


@rule("meter.slow_replies")
def slow_replies(f: SessionFacts) -> list[Cause]:
    if f.findings("timing.slow_service"):
        return []  # answers later than the wait: meter.late_replies says it, with the timeout
    delays = []
    for conn in f.connections:
        for tx in conn.tx:
            answers = conn.answered_after(tx)
            if answers and answers[0].is_dlms:
                delays.append((answers[0].at - tx.at, tx, answers[0]))
    if not delays:
        return []
    delays.sort(key=lambda d: d[0])
    median = delays[len(delays) // 2][0]
    if median < 1.0:
        return []
    slowest = delays[-1]
    return [
        cause(
            "meter.slow_replies",
            f"The meter answers slowly (typically {duration(median)})",
            0.5,
            "network",
            "Replies take over a second; clients with short timeouts give up and retry, which "
            "makes things worse on a single-session meter.",
            [ev_frame(slowest[1], "request"),
             ev_frame(slowest[2], f"answered after {duration(slowest[0])}")],
            [now(f"Set the client's reply timeout to at least {timeout_needed(slowest[0]):g} s "
                 f"(dlmsdoctor: --timeout {timeout_needed(slowest[0]):g}); the slowest answer "
                 f"took {duration(slowest[0])}.")],
        )
    ]
