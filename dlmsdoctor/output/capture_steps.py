"""Rebuild the rungs of a run from the frames of a foreign capture (tcpdump, Wireshark).

A capture holds bytes, not steps: no ladder, no login records, no probe findings. The diagnosis
builds its working profile from accepted logins and reads refusals from probe findings, so a
capture of a working meter would read "failed" beside "last association accepted". This module
reads the exchanges back the way the ladder made them (connect, SNRM/UA or the wrapper, the
address that answered, each AARQ/AARE, the reads, the release) and fills ``Session.steps``,
``logins``, ``findings`` and ``identity``, and each frame's ``step_id``, with the step ids,
finding codes and data shapes the probes use. The same rules then give the same verdict as the
session the capture was made from, and a poller's capture is judged by the same ladder.

What a capture cannot show is not invented: credential set names (a login is named by its
client SAP), the waits (no "late" marks), skipped rungs (only what happened is a step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.codec.ber import ACSE_USER_DIAGNOSTIC_TEXT
from dlmsdoctor.codec.hdlc import parse_hdlc
from dlmsdoctor.codec.hdlc_reassembly import Reassembler
from dlmsdoctor.codec.model import FrameKind
from dlmsdoctor.events import CloseHow, Direction, StepStatus
from dlmsdoctor.session import (
    FrameRecord,
    LoginRecord,
    ProbeFinding,
    Session,
    StepRecord,
)

PUBLIC_SAP = 16
# The ladder's order for the rungs below the associations (probes/ladder.py); associations and
# reads follow in the order they happened, the release last.
_LADDER = {name: rank for rank, name in enumerate(
    ("icmp.ping", "tcp.connect", "hdlc.disc", "framing.detect", "hdlc.snrm",
     "address.discover"))}
_LADDER["release"] = len(_LADDER) + 1
# AARQ mechanism-name ids (Green Book 9.4.2.2.2) -> the names credential sets use.
_MECHANISMS = {0: "none", 1: "low", 2: "high", 3: "md5", 4: "sha1", 5: "gmac", 6: "sha256",
               7: "ecdsa"}
# What the identity rung reads: (OBIS, attribute) -> identity key (probes/apdus.IDENTITY_READS).
_IDENTITY = {
    ("0.0.42.0.0.255", 2): "logical_device_name",
    ("0.0.96.1.0.255", 2): "serial_number",
    ("1.0.0.2.0.255", 2): "firmware",
    ("0.0.1.0.0.255", 2): "clock",
    ("0.0.22.0.0.255", 8): "hdlc_inactivity_timeout",
}
_SHOWN = ("logical_device_name", "serial_number", "firmware", "clock", "hdlc_inactivity_timeout")


@dataclass
class _Exchange:
    """One request of the client and what came back before its next request."""

    conn_id: int
    frames: list[FrameRecord]  # the request (all its segments, RRs) and the answers
    request: str  # snrm, disc, aarq, get, rlrq, apdu, other
    framing: str  # hdlc, wrapper, other
    server: dict[str, Any] | None = None  # HDLC server address the request went to
    client_sap: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # the request APDU, decoded
    answer: str | None = None  # ua, dm, frmr, apdu, other (None: nothing came back)
    answer_server: dict[str, Any] | None = None
    answer_params: dict[str, Any] | None = None
    answer_fields: dict[str, Any] = field(default_factory=dict)  # the answer APDU, decoded
    closed_after: bool = False  # the peer closed the connection before our next request

    @property
    def at(self) -> float:
        return self.frames[0].at

    @property
    def end(self) -> float:
        return self.frames[-1].at

    @property
    def indexes(self) -> tuple[int, ...]:
        return tuple(f.index for f in self.frames)

    def answer_index(self) -> int | None:
        rx = [f.index for f in self.frames if f.direction is Direction.RX]
        return rx[0] if rx else None


def _addr_text(addr: dict[str, Any] | None) -> str:
    if not addr:
        return "?"
    logical, physical = addr.get("logical"), addr.get("physical")
    return f"{logical}" if physical is None else f"{logical}/{physical}"


def _addr_key(addr: dict[str, Any] | None) -> tuple[Any, ...]:
    if not addr:
        return ()
    return (addr.get("logical"), addr.get("physical"), addr.get("size"))


class _Reader:
    """Cuts each connection's frames into exchanges, decoding HDLC and wrapper APDUs."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.exchanges: list[_Exchange] = []
        self.unasked: dict[int, list[FrameRecord]] = {}  # RX before any request, per connection

    def read(self) -> list[_Exchange]:
        by_conn: dict[int, list[FrameRecord]] = {}
        for frame in self.session.frames:
            by_conn.setdefault(frame.conn_id, []).append(frame)
        closed = {c.id: bool(c.closed_by_peer) and c.close_how in (CloseHow.FIN, CloseHow.RST)
                  for c in self.session.connections}
        for conn_id, frames in by_conn.items():
            frames.sort(key=lambda f: (f.at, f.index))
            mine = self._connection(conn_id, frames)
            if mine and closed.get(conn_id):
                mine[-1].closed_after = True
            self.exchanges += mine
        self.exchanges.sort(key=lambda x: (x.at, x.frames[0].index))
        return self.exchanges

    def _connection(self, conn_id: int, frames: list[FrameRecord]) -> list[_Exchange]:
        out: list[_Exchange] = []
        tx_join, rx_join = Reassembler(), Reassembler()
        current: _Exchange | None = None
        for frame in frames:
            if frame.direction is Direction.TX:
                started = self._request(conn_id, frame, tx_join, current)
                if started is not None:
                    current = started
                    out.append(current)
                elif current is not None:
                    current.frames.append(frame)
                continue
            if current is None:
                self.unasked.setdefault(conn_id, []).append(frame)
                continue
            current.frames.append(frame)
            self._answer(current, frame, rx_join)
        return out

    def _request(self, conn_id: int, frame: FrameRecord, join: Reassembler,
                 current: _Exchange | None) -> _Exchange | None:
        """A new exchange for this TX frame, or None when it continues the current one."""
        if frame.kind == FrameKind.WRAPPER.value and len(frame.data) >= 8:
            apdu = frame.data[8:]
            ex = _Exchange(conn_id, [frame], "apdu", "wrapper")
            ex.client_sap = int.from_bytes(frame.data[2:4], "big")
            self._classify(ex, apdu)
            return ex
        if frame.kind != FrameKind.HDLC.value:
            return _Exchange(conn_id, [frame], "other", "other")
        decoded = parse_hdlc(frame.data, direction="tx")
        fields = decoded.fields
        ftype = fields.get("frame_type")
        dest, src = fields.get("dest"), fields.get("src")
        server = dest if isinstance(dest, dict) else None
        client = src.get("sap") if isinstance(src, dict) else None
        if ftype in ("RR", "RNR"):
            return None  # asks for the next segment of an answer: part of the current exchange
        if ftype == "I":
            was_pending = join.pending
            whole = join.feed(decoded)
            if was_pending and current is not None:
                if whole is not None:
                    self._classify(current, whole)
                return None
            ex = _Exchange(conn_id, [frame], "apdu", "hdlc", server, client)
            if whole is not None:
                self._classify(ex, whole)
            return ex
        join.reset()
        request = {"SNRM": "snrm", "DISC": "disc"}.get(str(ftype), "other")
        return _Exchange(conn_id, [frame], request, "hdlc", server, client)

    @staticmethod
    def _classify(ex: _Exchange, apdu: bytes) -> None:
        fields = dict(decode_apdu(apdu).fields)
        ex.fields = fields
        kind = str(fields.get("apdu_type", ""))
        if kind == "AARQ":
            ex.request = "aarq"
        elif kind == "RLRQ":
            ex.request = "rlrq"
        elif kind.startswith("GET-Request"):
            ex.request = "get"
        else:
            ex.request = "apdu"

    def _answer(self, ex: _Exchange, frame: FrameRecord, join: Reassembler) -> None:
        if ex.answer == "apdu":
            return  # the first whole answer is the answer; later bytes are kept as frames
        if any(f.data == frame.data for f in ex.frames
               if f.direction is Direction.TX and f is not frame):
            return  # our own frame echoed (optical head, RS-485): not the meter's answer
        if frame.kind == FrameKind.WRAPPER.value and len(frame.data) >= 8:
            ex.answer, ex.answer_fields = "apdu", dict(decode_apdu(frame.data[8:]).fields)
            return
        if frame.kind != FrameKind.HDLC.value:
            return
        # What counts as an answer is what the probe's wire counts: a frame the stream
        # splitter calls HDLC (its checksums are the rules' to judge, as in a live run).
        decoded = parse_hdlc(frame.data, direction="rx")
        fields = decoded.fields
        ftype = fields.get("frame_type")
        src = fields.get("src")
        if ftype in ("UA", "DM", "FRMR"):
            ex.answer = str(ftype).lower()
            ex.answer_server = src if isinstance(src, dict) else None
            params = fields.get("params")
            ex.answer_params = params if isinstance(params, dict) else None
        elif ftype == "I":
            apdu = join.feed(decoded)
            if apdu is not None:
                ex.answer, ex.answer_fields = "apdu", dict(decode_apdu(apdu).fields)
        elif ex.answer is None:
            ex.answer = "other"


@dataclass
class _Builder:
    session: Session
    steps: list[StepRecord] = field(default_factory=list)
    findings: list[ProbeFinding] = field(default_factory=list)
    logins: list[LoginRecord] = field(default_factory=list)
    identity: dict[str, Any] = field(default_factory=dict)
    step_frames: dict[str, list[FrameRecord]] = field(default_factory=dict)

    def step(self, step_id: str, title: str, layer: str, status: StepStatus, summary: str,
             frames: list[FrameRecord], **details: Any) -> StepRecord:
        times = [f.at for f in frames]
        step = StepRecord(step_id, title, layer, status, min(times, default=None),
                          max(times, default=None), summary, _plain(details))
        self.steps.append(step)
        self.step_frames[step_id] = frames
        return step

    def finding(self, step_id: str, code: str, severity: str, message: str, at: float,
                frames: tuple[int, ...] = (), **data: Any) -> None:
        self.findings.append(ProbeFinding(step_id, code, severity, message, at, list(frames),
                                          _plain(data)))


def infer_rungs(session: Session) -> None:
    """Fill the steps, logins, findings and identity of a session read from a foreign capture,
    and each frame's step, from its frames and connections (in place; ``kind`` = capture)."""
    session.kind = "capture"
    reader = _Reader(session)
    exchanges = reader.read()
    b = _Builder(session)
    _ping_step(b)
    _connect_step(b, reader)
    last_hdlc = max((i for i, x in enumerate(exchanges) if x.framing == "hdlc"), default=-1)
    first_aarq = next((i for i, x in enumerate(exchanges)
                       if x.request == "aarq" and not _framing_probe(x, i < last_hdlc)),
                      len(exchanges))
    first_framing = exchanges[first_aarq].framing if first_aarq < len(exchanges) else None
    _link_steps(b, exchanges[:first_aarq], first_framing)
    pending = _association_steps(b, exchanges[first_aarq:])
    _release_step(b, pending)
    for step_id, frames in b.step_frames.items():
        for frame in frames:
            if not frame.step_id:
                frame.step_id = step_id
    b.steps.sort(key=lambda s: (_LADDER.get(s.id, len(_LADDER)),
                                s.started if s.started is not None else -1.0))
    session.steps, session.findings, session.logins = b.steps, b.findings, b.logins
    session.identity = b.identity


def _framing_probe(x: _Exchange, hdlc_later: bool) -> bool:
    """A wrapper AARQ that got nothing while HDLC goes on afterwards: the framing detection's
    question to the wrapper, not the association the run went on with."""
    return x.framing == "wrapper" and x.answer is None and hdlc_later


def _ping_step(b: _Builder) -> None:
    pings = b.session.pings
    if not pings:
        return
    answered = [p for p in pings if p.reply_at is not None]
    rtts = [p.rtt for p in answered if p.rtt is not None]
    details: dict[str, Any] = {"sent": len(pings), "received": len(answered)}
    if rtts:
        details["rtt_avg"] = round(sum(rtts) / len(rtts), 6)
    summary = f"{len(answered)}/{len(pings)} answered"
    at = pings[0].at
    if not answered:
        b.finding("icmp.ping", "icmp.no_reply", "warning", "no echo reply", at)
        status = StepStatus.WARNING
    elif len(answered) < len(pings):
        b.finding("icmp.ping", "icmp.loss", "warning",
                  f"{len(pings) - len(answered)} of {len(pings)} echo requests unanswered", at)
        status = StepStatus.WARNING
    else:
        status = StepStatus.OK
    step = b.step("icmp.ping", "ICMP echo (ping)", "icmp", status, summary, [], **details)
    step.started, step.finished = at, max(p.reply_at or p.at for p in pings)


def _connect_step(b: _Builder, reader: _Reader) -> None:
    conns = b.session.connections
    if not conns:
        return
    frames = [f for fs in reader.unasked.values() for f in fs]
    busy = [f for f in frames if f.kind == FrameKind.BRIDGE_MESSAGE.value
            and b"in use" in f.data.lower()]
    opened = [c for c in conns if not c.failed]
    busy_conns = {f.conn_id for f in busy}
    asked = {x.conn_id for x in reader.exchanges}
    through = [c for c in opened if c.id not in busy_conns and c.id in asked]
    first = conns[0]
    at = first.opened_at or 0.0
    step_id = "tcp.connect"
    for f in busy[:1]:
        text = f.data.decode("latin-1", "replace").strip()
        after_retry = not through
        b.finding(step_id, "bridge.busy", "error" if after_retry else "warning",
                  f"The serial-to-TCP bridge says {text!r}: another client holds the meter's "
                  "port.", f.at, (f.index,), text=text, retried=len(busy_conns) > 1,
                  after_retry=after_retry)
    busy_ids = {f.index for f in busy}
    others = [f for f in frames if f.index not in busy_ids]
    if others:
        data = b"".join(f.data for f in others)
        b.finding(step_id, "tcp.unsolicited_bytes", "warning",
                  f"{len(data)} byte(s) arrived before anything was sent",
                  others[0].at, tuple(f.index for f in others), length=len(data))
    if not opened:
        reason = first.failed or "error"
        code = f"tcp.{reason}" if reason in ("refused", "timeout", "unreachable") else "tcp.error"
        b.finding(step_id, code, "error", f"connection failed: {reason}", at, detail=reason)
        b.step(step_id, "TCP connection", "tcp", StepStatus.FAILED, f"failed: {reason}", frames)
    elif busy and not through:
        b.step(step_id, "TCP connection", "tcp", StepStatus.FAILED,
               "bridge busy: another client holds it", frames)
    else:
        conn = through[0] if through else opened[0]
        ms = f"{conn.connect_time * 1000:.0f} ms" if conn.connect_time is not None else None
        summary = f"connected in {ms}" if ms else (conn.note or "connected")
        details: dict[str, Any] = {"conn_id": conn.id}
        if conn.connect_time is not None:
            details["connect_time"] = conn.connect_time
        b.step(step_id, "TCP connection", "tcp", StepStatus.OK, summary, frames, **details)
    if b.steps and b.steps[-1].started is None:
        b.steps[-1].started = b.steps[-1].finished = at


def _link_steps(b: _Builder, exchanges: list[_Exchange], assoc_framing: str | None) -> None:
    """DISC first, framing, SNRM/UA at the first address, the address that answered.

    ``assoc_framing``: the framing of the first association (wrapper after HDLC frames that
    got nothing: the framing was found by trying both)."""
    if not exchanges:
        return
    first_snrm = next((x for x in exchanges if x.request == "snrm"), None)
    wrapper = [x for x in exchanges if x.framing == "wrapper"]
    # one DISC before the first SNRM is the ladder's "DISC first"; any more are the link's
    disc_first = next((x for x in exchanges if x.request == "disc"
                       and (first_snrm is None or x.at < first_snrm.at)), None)
    if disc_first is not None:
        b.step("hdlc.disc", "DISC first (clear a stale link)", "hdlc",
               StepStatus.OK if disc_first.answer in ("ua", "dm") else StepStatus.WARNING,
               f"DISC: {disc_first.answer or 'no answer'}", disc_first.frames)
    hdlc = [x for x in exchanges if x.framing == "hdlc" and x is not disc_first]
    answered = [x for x in hdlc if x.request == "snrm" and x.answer in ("ua", "dm", "frmr")]
    if (wrapper or assoc_framing == "wrapper") and not answered:
        _wrapper_detect(b, hdlc, wrapper, assoc_framing == "wrapper")
        return
    if wrapper:
        b.step("framing.detect", "Framing (HDLC or wrapper)", "framing", StepStatus.OK,
               "HDLC (the wrapper got no answer)", _frames_of(wrapper), framing="hdlc")
    if first_snrm is None:
        if hdlc:
            b.step("hdlc.snrm", "HDLC link (SNRM/UA)", "hdlc", StepStatus.OK,
                   "the capture starts after the link was set up", _frames_of(hdlc))
        return
    first = _addr_key(first_snrm.server)
    at_first = [x for x in hdlc if x.request != "snrm" or _addr_key(x.server) == first]
    elsewhere = [x for x in hdlc if x.request == "snrm" and _addr_key(x.server) != first]
    where = _addr_text(first_snrm.server)
    size = (first_snrm.server or {}).get("size")
    hit = next((x for x in at_first if x.request == "snrm" and x.answer), None)
    if hit is not None and hit.answer in ("ua", "dm", "frmr"):
        _link_answer(b, "hdlc.snrm", hit)
        ok = hit.answer == "ua"
        b.step("hdlc.snrm", "HDLC link (SNRM/UA)", "hdlc",
               StepStatus.OK if ok else StepStatus.FAILED,
               f"link up with {where}" if ok else f"{hit.answer.upper()} from {where}: link "
               "refused", _frames_of(at_first), server=where, address_size=size,
               params=hit.answer_params or {})
        if elsewhere:
            b.step_frames.setdefault("hdlc.snrm", []).extend(_frames_of(elsewhere))
        return
    silent = [x for x in at_first if x.request == "snrm"]
    for x in silent[:1]:
        b.finding("hdlc.snrm", "hdlc.no_answer", "warning", f"no answer from {where}",
                  x.at, x.indexes[:1], server=where, address_size=size,
                  waited=round(_wait_after(x, exchanges), 3))
    b.step("hdlc.snrm", "HDLC link (SNRM/UA)", "hdlc", StepStatus.FAILED,
           f"no HDLC answer at {where}", _frames_of(at_first), server=where, address_size=size)
    if not elsewhere:
        return
    tried = [where, *_distinct(_addr_text(x.server) for x in elsewhere if x.request == "snrm")]
    found = next((x for x in elsewhere if x.request == "snrm" and x.answer in ("ua", "dm")),
                 None)
    if found is None:
        b.finding("address.discover", "address.not_found", "error",
                  f"no answer at any of {len(tried)} server addresses", elsewhere[0].at,
                  tried=tried)
        b.step("address.discover", "Server address discovery", "address", StepStatus.FAILED,
               f"no answer at {len(tried)} addresses", _frames_of(elsewhere), tried=tried,
               found=None)
        return
    addr = found.answer_server or found.server or {}
    text = _addr_text(addr)
    asked = _addr_text(found.server)  # attempts of the discovery: the first address is not one
    attempt = tried.index(asked) if asked in tried[1:] else len(tried) - 1
    b.finding("address.discover", "address.found", "info",
              f"the meter answers at {text} ({addr.get('size')}-byte address)", found.end,
              found.indexes, logical=addr.get("logical"), physical=addr.get("physical"),
              address_size=addr.get("size"), attempt=attempt, derived_from="capture")
    _link_answer(b, "address.discover", found)
    b.step("address.discover", "Server address discovery", "address", StepStatus.OK,
           f"found {text} ({addr.get('size')}-byte) after {attempt} attempt(s)",
           _frames_of(elsewhere), tried=tried, found=f"{text}@{addr.get('size')}")


def _wrapper_detect(b: _Builder, hdlc: list[_Exchange], wrapper: list[_Exchange],
                    wrapper_works: bool) -> None:
    answered = wrapper_works or any(x.answer == "apdu" for x in wrapper)
    hdlc_how = "a close" if any(x.closed_after for x in hdlc) else "silence"
    for x in hdlc:
        if x.closed_after and x.request == "snrm":
            b.finding("framing.detect", "tcp.closed_after_first_frame", "warning",
                      "the peer closed the connection right after the client's HDLC frame", x.at,
                      x.indexes[:1], how="fin", framing_sent="hdlc")
    summary = ("wrapper" + (f" (after {hdlc_how} on HDLC)" if hdlc else "")) if answered else (
        f"no answer: HDLC {'closed' if hdlc_how == 'a close' else 'silence'}, wrapper "
        "no-answer")
    b.step("framing.detect", "Framing (HDLC or wrapper)", "framing",
           StepStatus.OK if answered else StepStatus.FAILED, summary, _frames_of(hdlc + wrapper),
           framing="wrapper" if answered else None)


def _link_answer(b: _Builder, step_id: str, x: _Exchange) -> None:
    where = _addr_text(x.answer_server or x.server)
    size = (x.answer_server or x.server or {}).get("size")
    if x.answer == "ua":
        b.finding(step_id, "hdlc.ua", "info", f"UA from {where}: link up", x.end, x.indexes,
                  params=x.answer_params or {}, server=where, address_size=size)
    elif x.answer == "dm":
        b.finding(step_id, "hdlc.dm", "error", f"DM from {where}: the meter refuses the link",
                  x.end, x.indexes, server=where, address_size=size)
    elif x.answer == "frmr":
        b.finding(step_id, "hdlc.frmr", "error", f"FRMR from {where}", x.end, x.indexes,
                  server=where, address_size=size)


def _association_steps(b: _Builder, exchanges: list[_Exchange]) -> list[_Exchange]:
    """One step per AARQ (with the RLRQ/DISC/SNRM that prepared its link), one read step per
    association that read; returns the exchanges left for the release."""
    pending: list[_Exchange] = []
    current_assoc: tuple[str, str, int, bool] | None = None  # step id, credential, sap, accepted
    reads: list[_Exchange] = []
    used: dict[str, int] = {}  # step id -> how many steps took it

    def close_reads() -> None:
        if current_assoc is not None and reads:
            _read_step(b, current_assoc, reads, used)
        reads.clear()

    for x in exchanges:
        if x.request == "aarq":
            close_reads()
            current_assoc = _assoc_step(b, x, pending, used)
            pending = []
        elif x.request == "get" and current_assoc is not None and not pending:
            reads.append(x)
        else:
            pending.append(x)
    close_reads()
    return pending


def _assoc_step(b: _Builder, x: _Exchange, before: list[_Exchange],
                used: dict[str, int]) -> tuple[str, str, int, bool]:
    sap = x.client_sap if x.client_sap is not None else 0
    mech_id = x.fields.get("mechanism_id")
    mechanism = _MECHANISMS.get(mech_id, str(mech_id)) if isinstance(mech_id, int) else "none"
    public = sap == PUBLIC_SAP and mechanism == "none"
    # A capture does not know the poller's credential set names: a login is its client SAP
    # (no credential set name: "" in the login record; the words say "the login of client SAP
    # 1 (low)", diagnosis/rules_association.py).
    credential = "public" if public else ""
    step_id = _unique(used, "assoc.public" if public else f"assoc.client.{sap}")
    title = ("Public association (client 16, no authentication)" if public
             else f"Login of client SAP {sap} ({mechanism})")
    who = {"client_sap": sap, "mechanism": mechanism, "credential": credential}
    f = x.answer_fields
    frames = _frames_of(before) + x.frames
    answer_at = next((fr.at for fr in x.frames if fr.direction is Direction.RX), x.end)
    accepted = False
    if f.get("apdu_type") == "AARE" and f.get("result") == 0:
        accepted = True
        outcome, diag_name = "accepted", ""
        b.finding(step_id, "assoc.accepted", "info",
                  f"association accepted for client {sap} ({mechanism})", answer_at,
                  x.indexes, max_pdu_size=f.get("max_pdu_size"),
                  conformance=f.get("conformance"), **who)
        status = StepStatus.OK
        summary = f"accepted: client {sap}, {mechanism}, max PDU {f.get('max_pdu_size')}"
    elif f.get("apdu_type") == "AARE":
        outcome = "rejected"
        diag = f.get("diagnostic")
        diag_name = str(f.get("diagnostic_name", ""))
        text = (ACSE_USER_DIAGNOSTIC_TEXT.get(diag, diag_name) if isinstance(diag, int)
                else diag_name)
        code = {13: "assoc.auth_failure", 11: "assoc.mechanism_mismatch",
                12: "assoc.mechanism_mismatch", 14: "assoc.mechanism_mismatch",
                2: "assoc.context_mismatch"}.get(diag if isinstance(diag, int) else -1,
                                                 "assoc.rejected")
        b.finding(step_id, code, "error",
                  f"association refused ({f.get('result_name')}): {text}", answer_at,
                  x.indexes, result=f.get("result"), source=f.get("diagnostic_source"),
                  diagnostic=diag, diagnostic_text=text, **who)
        status, summary = StepStatus.FAILED, f"rejected: {text}"
    elif x.answer in ("dm", "frmr"):
        outcome, diag_name = "no-answer", ""
        ftype = x.answer.upper()
        b.finding(step_id, "assoc.link_refused", "error",
                  f"the meter answered the AARQ with {ftype}", answer_at, x.indexes,
                  frame_type=ftype, **who)
        status, summary = StepStatus.FAILED, f"{ftype} instead of an AARE"
    elif x.closed_after and x.answer is None:
        outcome, diag_name = "closed", ""
        status, summary = StepStatus.FAILED, "the peer closed the connection after the AARQ"
    else:
        outcome, diag_name = "no-answer", ""
        b.finding(step_id, "assoc.no_answer", "error", "no AARE to the AARQ", x.at, x.indexes,
                  **who)
        status, summary = StepStatus.FAILED, "no answer to AARQ"
    b.logins.append(LoginRecord(step_id, answer_at, credential, sap, mechanism, outcome,
                                diag_name))
    b.step(step_id, title, "association", status, summary, frames, client_sap=sap,
           mechanism=mechanism, result=f.get("result"), diagnostic=f.get("diagnostic"))
    return step_id, credential, sap, accepted


def _read_step(b: _Builder, assoc: tuple[str, str, int, bool], reads: list[_Exchange],
               used: dict[str, int]) -> None:
    _, credential, sap, _ = assoc
    step_id = _unique(used, "cosem.identity" if "cosem.identity" not in used
                      else f"cosem.read.{credential}" if credential else f"cosem.client.{sap}")
    read = denied = 0
    problems: list[str] = []
    for x in reads:
        obis, attribute = x.fields.get("obis"), x.fields.get("attribute")
        f = x.answer_fields
        label = f"{obis} attribute {attribute}"
        if not f:
            problems.append(f"{label}: no answer")
            continue
        result = f.get("access_result")
        if result == "success" and f.get("value") is not None:
            read += 1
            key = _IDENTITY.get((str(obis), attribute)) if isinstance(attribute, int) else None
            if key is None:
                continue
            value = _plain(f["value"])
            b.identity.setdefault(key, value)
            if key == "logical_device_name" and isinstance(value, str) and len(value) >= 3:
                b.identity.setdefault("manufacturer", value[:3])
            if key == "hdlc_inactivity_timeout" and isinstance(value, int):
                b.finding(step_id, "cosem.inactivity_timeout", "info",
                          f"the meter drops an idle HDLC link after {value} s", x.end,
                          x.indexes, seconds=value)
        else:
            denied += 1
            text = str(result if result not in (None, "success") else
                       "value not decodable" if result else
                       f.get("apdu_type", "unexpected answer"))
            b.finding(step_id, "cosem.read_failed", "warning", f"{label}: {text}", x.end,
                      x.indexes, obis=obis, attribute=attribute, result=text)
    if read and credential:
        b.identity.setdefault("read_with", credential)
    elif read:
        b.identity.setdefault("read_with", f"client SAP {sap}")
    shown = {k: b.identity[k] for k in _SHOWN if k in b.identity}
    summary = ", ".join(f"{k}={v}" for k, v in shown.items()) or f"{read} value(s) read"
    if problems:
        status = StepStatus.WARNING if read else StepStatus.FAILED
        summary += "; " + "; ".join(problems)
    elif denied:
        status = StepStatus.WARNING if read else StepStatus.FAILED
        summary += f"; {denied} read(s) denied"
    else:
        status = StepStatus.OK
    b.step(step_id, "Identity reads", "cosem", status, summary, _frames_of(reads), **shown)


def _release_step(b: _Builder, pending: list[_Exchange]) -> None:
    if not pending:
        return
    parts: list[str] = []
    clean = True
    for x in pending:
        if x.request == "rlrq":
            if x.answer_fields.get("apdu_type") == "RLRE":
                parts.append("RLRQ/RLRE")
            else:
                clean = False
                b.finding("release", "release.rlrq_no_answer", "warning",
                          "no RLRE to our release request", x.at, x.indexes)
        elif x.request == "disc":
            if x.answer in ("ua", "dm"):
                parts.append(f"DISC/{x.answer.upper()}")
            else:
                clean = False
                b.finding("release", "release.disc_no_answer", "warning",
                          "no UA to our DISC", x.at, x.indexes)
    last = pending[-1]
    conn = b.session.connection(last.conn_id)
    if conn is not None and conn.close_how is not None:
        parts.append("TCP " + ("FIN" if conn.close_how is CloseHow.LOCAL else
                               f"{conn.close_how.value.upper()} by the meter"))
    b.step("release", "Release (RLRQ, DISC, TCP close)", "release",
           StepStatus.OK if clean else StepStatus.WARNING, ", ".join(parts) or "nothing to end",
           _frames_of(pending), steps=parts)


def _plain(value: Any) -> Any:
    """JSON-ready, as the probes store values: text for printable bytes, else spaced hex."""
    if isinstance(value, bytes | bytearray):
        if value and all(32 <= b < 127 for b in value):
            return bytes(value).decode("ascii")
        return bytes(value).hex(" ").upper()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _frames_of(exchanges: list[_Exchange]) -> list[FrameRecord]:
    return [f for x in exchanges for f in x.frames]


def _unique(used: dict[str, int], base: str) -> str:
    """``base`` the first time, then ``base#2``, ``base#3``... (the ladder's repeated rungs)."""
    count = used.get(base, 0) + 1
    used[base] = count
    return base if count == 1 else f"{base}#{count}"


def _distinct(items: Any) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _wait_after(x: _Exchange, exchanges: list[_Exchange]) -> float:
    """How long the client waited for an answer: until its next request on that connection."""
    later = (y.at for y in exchanges if y.at > x.at and y.conn_id == x.conn_id)
    return next(later, x.at) - x.at  # exchanges are in time order

