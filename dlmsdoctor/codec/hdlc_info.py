"""Spans and lint of the HDLC information field: SNRM/UA parameters, FRMR reasons, LLC header."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlmsdoctor.codec.hdlc_fields import (
    _E,
    _W,
    FRMR_REASONS,
    LLC_TEXT,
    PARAM_FORMAT_ID,
    PARAM_GROUP_ID,
    PARAM_WINDOW_RX,
    PARAM_WINDOW_TX,
    control_info,
)
from dlmsdoctor.codec.hdlc_params import DEFAULT_PARAM_DICT, PARAM_KEYS, PARAM_NAMES
from dlmsdoctor.codec.model import Finding, Span, hexs

if TYPE_CHECKING:  # the parser imports this module: annotations only
    from dlmsdoctor.codec.hdlc_parse import ParseContext


def info_spans(
    buf: bytes,
    info_pos: int,
    info_end: int,
    ftype: str,
    to_server: bool,
    segmented: bool,
    ctx: ParseContext,
    fields: dict[str, object],
) -> str:
    """Append the info span (with children) and return a summary tail."""
    mk = ctx.mk
    length = info_end - info_pos
    if length <= 0:
        ctx.spans.append(mk(info_pos, 0, "hdlc.info", "Information", None, "empty"))
        return ""
    children: list[Span] = []
    tail = ""
    if ftype in ("SNRM", "UA"):
        tail = _params_spans(buf, info_pos, info_end, ctx, fields, children)
    elif ftype == "FRMR":
        tail = _frmr_spans(buf, info_pos, info_end, ctx, children)
    elif ftype in ("I", "UI"):
        tail = _llc_spans(buf, info_pos, info_end, to_server, segmented, ctx, fields, children)
    else:
        ctx.findings.append(Finding(
            "hdlc.info.unexpected", _W, info_pos, length, "hdlc.info",
            f"{ftype} frames carry no information field", "no info", f"{length} bytes"))
    ctx.spans.append(mk(info_pos, length, "hdlc.info", "Information", None, f"{length} bytes",
                          tuple(children)))
    return tail


def _params_spans(
    buf: bytes,
    pos: int,
    end: int,
    ctx: ParseContext,
    fields: dict[str, object],
    children: list[Span],
) -> str:
    mk = ctx.mk
    findings = ctx.findings
    length = end - pos
    if length < 3:
        findings.append(Finding(
            "hdlc.params.length", _E, pos, length, "hdlc.params",
            "parameter negotiation field too short for format id, group id and group length",
            ">= 3 bytes", f"{length} bytes"))
        return ""
    fid, gid, glen = buf[pos], buf[pos + 1], buf[pos + 2]
    actual = length - 3
    want = ctx.want
    if want:
        children.append(mk(pos, 1, "hdlc.params.format_id", "Format identifier", fid,
                           "ISO/IEC 13239 general format" if fid == 0x81 else "unexpected"))
        children.append(mk(pos + 1, 1, "hdlc.params.group_id", "Group identifier", gid,
                           "HDLC parameter negotiation" if gid == 0x80 else "unexpected"))
        children.append(mk(pos + 2, 1, "hdlc.params.group_length", "Group length", glen,
                           f"{actual} bytes follow" if glen == actual
                           else f"says {glen}, but {actual} bytes follow"))
    if fid != PARAM_FORMAT_ID:
        findings.append(Finding("hdlc.params.format_id", _E, pos, 1, "hdlc.params.format_id",
                                 "format identifier of the parameter field is not 0x81",
                                 "81", f"{fid:02X}", "81"))
    if gid != PARAM_GROUP_ID:
        findings.append(Finding("hdlc.params.group_id", _E, pos + 1, 1, "hdlc.params.group_id",
                                 "group identifier of the parameter field is not 0x80",
                                 "80", f"{gid:02X}", "80"))
    if glen != actual:
        findings.append(Finding(
            "hdlc.params.group_length", _E, pos + 2, 1, "hdlc.params.group_length",
            f"group length says {glen} (0x{glen:02X}) but {actual} (0x{actual:02X}) bytes follow: "
            "strict meters drop this frame",
            f"{actual:02X}", f"{glen:02X}", f"{actual:02X}"))
    values: dict[str, int] = {}
    p = pos + 3
    while p < end:
        pid = buf[p]
        if p + 2 > end:
            findings.append(Finding("hdlc.params.length", _E, p, end - p, "hdlc.params",
                                     "parameter cut off before its length byte"))
            children.append(mk(p, end - p, "hdlc.params.unparsed", "Truncated parameter"))
            break
        plen = buf[p + 1]
        vend = p + 2 + plen
        name, label = PARAM_NAMES.get(pid) or ("unknown", f"Parameter 0x{pid:02X}")
        if vend > end:
            findings.append(Finding(
                "hdlc.params.length", _E, p + 1, 1, "hdlc.params",
                f"parameter 0x{pid:02X} says {plen} value bytes but only {end - p - 2} remain",
                str(end - p - 2), str(plen)))
            children.append(mk(p, end - p, f"hdlc.params.{name}", label, None, "truncated"))
            break
        value = int.from_bytes(buf[p + 2 : vend], "big")
        meaning = ""
        if pid not in PARAM_NAMES:
            findings.append(Finding("hdlc.params.unknown", _W, p, vend - p, "hdlc.params",
                                     f"unknown HDLC parameter id 0x{pid:02X}", "05..08",
                                     f"{pid:02X}"))
        elif plen == 0 or plen > 4:
            findings.append(Finding(
                "hdlc.params.length", _E, p + 1, 1, f"hdlc.params.{name}",
                f"{label} value is {plen} bytes; 1 to 4 expected", "1..4", str(plen)))
        else:
            values[name] = value
            meaning = _param_meaning(pid, value, plen, ctx, p)
        if want:
            children.append(mk(p, vend - p, f"hdlc.params.{name}", label, value, meaning, (
                mk(p, 1, "hdlc.params.id", "Parameter id", pid),
                mk(p + 1, 1, "hdlc.params.length", "Parameter length", plen),
                mk(p + 2, plen, "hdlc.params.value", "Value", value),
            )))
        p = vend
    got = {**DEFAULT_PARAM_DICT, **values}
    got["defaults_used"] = [k for k in PARAM_KEYS if k not in values]
    fields["params"] = got
    return (f"max info {got['max_info_tx']}/{got['max_info_rx']} "
            f"window {got['window_tx']}/{got['window_rx']}")


def _param_meaning(pid: int, value: int, plen: int, ctx: ParseContext, p: int) -> str:
    if pid in (PARAM_WINDOW_TX, PARAM_WINDOW_RX):
        if not 1 <= value <= 7:
            ctx.findings.append(Finding(
                "hdlc.params.value", _W, p + 2, plen, "hdlc.params.window",
                f"window size {value} outside 1..7 (modulo-8 sequence numbers)", "1..7",
                str(value)))
        return (f"{value} frame{'s' if value != 1 else ''}") if ctx.want else ""
    if not 32 <= value <= 2030:
        ctx.findings.append(Finding(
            "hdlc.params.value", _W, p + 2, plen, "hdlc.params.max_info",
            f"maximum information length {value} outside 32..2030", "32..2030", str(value)))
    return f"{value} bytes" if ctx.want else ""


def _frmr_spans(buf: bytes, pos: int, end: int, ctx: ParseContext, children: list[Span]) -> str:
    mk = ctx.mk
    length = end - pos
    if length != 3:
        ctx.findings.append(Finding(
            "hdlc.frmr.length", _W, pos, length, "hdlc.info.frmr",
            "FRMR information field should be 3 bytes (ISO/IEC 13239, modulo 8)", "3",
            str(length)))
    if length < 3:
        return ""
    rejected, second, reasons = buf[pos], buf[pos + 1], buf[pos + 2]
    rtype, _, _, _ = control_info(rejected)
    why = [text for bit, text in FRMR_REASONS if reasons & bit]
    children.append(mk(pos, 1, "hdlc.frmr.rejected_control", "Rejected control field",
                         rejected, f"a {rtype} frame"))
    children.append(mk(pos + 1, 1, "hdlc.frmr.state", "V(S), C/R, V(R)", second,
                         f"V(S)={(second >> 1) & 7} V(R)={(second >> 5) & 7}"
                         f"{' rejected frame was a response' if second & 0x10 else ''}"))
    children.append(mk(pos + 2, 1, "hdlc.frmr.reason", "Reason bits", reasons,
                         "; ".join(why) if why else "no reason bit set"))
    return f"rejected {rtype} ({'; '.join(why) if why else 'no reason'})"


def _llc_spans(
    buf: bytes,
    pos: int,
    end: int,
    to_server: bool,
    segmented: bool,
    ctx: ParseContext,
    fields: dict[str, object],
    children: list[Span],
) -> str:
    mk = ctx.mk
    if end - pos >= 3 and buf[pos] == 0xE6 and buf[pos + 1] in (0xE6, 0xE7):
        llc = buf[pos : pos + 3]
        fields["llc"] = LLC_TEXT.get(llc) or hexs(llc)
        quality = llc[2]
        cmd = llc[1] == 0xE6
        if ctx.want:
            children.append(mk(pos, 3, "hdlc.info.llc", "LLC header", hexs(llc),
                               "client to server" if cmd else "server to client", (
                mk(pos, 1, "hdlc.llc.dsap", "Destination LSAP", llc[0]),
                mk(pos + 1, 1, "hdlc.llc.ssap", "Source LSAP", llc[1],
                   "command (E6)" if cmd else "response (E7)"),
                mk(pos + 2, 1, "hdlc.llc.quality", "LLC quality", quality),
            )))
        if quality != 0:
            ctx.findings.append(Finding("hdlc.llc.quality", _W, pos + 2, 1, "hdlc.llc.quality",
                                         "LLC quality byte should be 00", "00", f"{quality:02X}",
                                         "00"))
        apdu_pos = pos + 3
    else:
        apdu_pos = pos
        ctx.findings.append(Finding(
            "hdlc.llc.missing", _W, pos, min(3, end - pos), "hdlc.info.llc",
            "information field does not start with the LLC header (normal only for a "
            "continuation segment)", "E6 E6 00" if to_server else "E6 E7 00",
            hexs(buf[pos : min(pos + 3, end)])))
    alen = end - apdu_pos
    if alen > 0:
        children.append(mk(apdu_pos, alen, "hdlc.info.apdu",
                             "APDU segment" if segmented or apdu_pos == pos else "APDU",
                             None, f"{alen} bytes"))
        if not segmented and apdu_pos != pos:
            fields["_apdu"] = buf[apdu_pos:end]
    kind = "APDU segment" if segmented or apdu_pos == pos else "APDU"
    return f"{alen} bytes {kind}"
