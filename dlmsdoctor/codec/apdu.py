"""DLMS APDUs (ACSE + xDLMS) into annotated spans with absolute offsets.

Pure and fast: no gurux, no regexes. ACSE APDUs (AARQ/AARE/RLRQ/RLRE) are walked as BER,
xDLMS ones (GET/SET/ACTION, exception, notifications, InitiateRequest/Response) as A-XDR,
both per IEC 62056-53 and the DLMS UA Green Book (DLMS UA 1000-2, clause 9). Ciphered APDUs
show their security header; their payload is not decrypted.

``decode_apdu`` never raises. Finding codes (besides those of ``axdr`` and ``ber``):
``apdu.empty``; ``apdu.unknown_tag`` (tag not known: a raw span follows);
``apdu.ber.length`` (BER length against the bytes present); ``apdu.trailing_bytes``
(bytes after a complete APDU); ``apdu.ber.unexpected`` (an ACSE element where another
was expected); ``apdu.aare.rejected`` (association refused, with the diagnostic);
``apdu.initiate_error`` (ConfirmedServiceError in an AARE); ``apdu.exception``
(exception-response); ``apdu.access_error`` (a data-access-result other than success);
``apdu.axdr.choice`` (a CHOICE tag that does not exist); ``apdu.conformance.tag``
(conformance block not introduced by 5F 1F 04); ``apdu.dlms_version`` (not 6);
``apdu.notification.tagged_datetime`` (a Data-Notification date-time sent as 09 0C ...);
``apdu.internal_error`` (a decoder bug: the APDU is shown raw; should never appear).

``fields`` keys are stable (scripts read them): ``apdu_type``, ``context``, ``mechanism``,
``result``, ``result_name``, ``diagnostic_source``, ``diagnostic``, ``diagnostic_name``,
``initiate_error``, ``max_pdu_size``, ``conformance``, ``client_system_title``,
``server_system_title``, ``invoke_id``, ``class_id``, ``obis``, ``attribute``, ``method``,
``value``, ``access_result``, ``cipher``, ``security_control``, ``invocation_counter``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from dlmsdoctor.codec.axdr import (
    DecodeContext,
    Fields,
    access_finding,
    clamp,
    decode_data,
    encode_length,
    octet_value,
    read_access_selection,
    read_block_sa,
    read_data_result,
    read_descriptor,
    read_invoke_id,
    read_length,
    read_list,
    read_octets,
    read_uint,
)
from dlmsdoctor.codec.ber import ACSE_TYPES, decode_acse, flag_id
from dlmsdoctor.codec.model import Finding, Severity, Span, hexs
from dlmsdoctor.codec.obis import (
    ACTION_RESULTS,
    CIPHER_TAGS,
    CONFIRMED_SERVICE_ERRORS,
    CONFORMANCE_BITS,
    DATA_ACCESS_RESULTS,
    EXCEPTION_SERVICE_ERRORS,
    EXCEPTION_STATE_ERRORS,
    SERVICE_ERROR_KINDS,
    SERVICE_ERROR_VALUES,
)

__all__ = ["ApduDecode", "conformance_names", "decode_apdu"]


@dataclass(frozen=True, slots=True)
class ApduDecode:
    """What one APDU turned out to be: spans in wire order, findings, a line, stable fields."""

    spans: tuple[Span, ...]
    findings: tuple[Finding, ...]
    summary: str
    fields: dict[str, object]


def decode_apdu(apdu: bytes, base_offset: int = 0, show_secrets: bool = False) -> ApduDecode:
    """Decode one APDU. Offsets in the result are ``base_offset`` + position in ``apdu``."""
    buf = bytes(apdu)
    ctx = DecodeContext(buf, base_offset, show_secrets)
    fields: Fields = {}
    if not buf:
        ctx.finding("apdu.empty", 0, 0, "apdu", "empty APDU")
        return ApduDecode((), tuple(ctx.findings), "empty APDU", {"apdu_type": "empty"})
    try:
        spans, summary = _decode_top(ctx, fields)
    except Exception as exc:  # a decoder bug must not take a capture view down with it
        ctx.finding(
            "apdu.internal_error",
            0,
            len(buf),
            "apdu",
            f"decoder error ({type(exc).__name__}); APDU shown raw",
        )
        fields.clear()
        fields["apdu_type"] = "unknown"
        ctx.mask_raw = buf[0] in (0x60, 0x61)  # an AARQ/AARE shown raw may hold a secret
        spans, summary = (ctx.raw(0, len(buf), "apdu.raw", "APDU"),), "APDU (not decoded)"
    return ApduDecode(tuple(spans), tuple(ctx.findings), summary, fields)


def _decode_top(ctx: DecodeContext, fields: Fields) -> tuple[tuple[Span, ...], str]:
    end = len(ctx.buf)
    span, stop, summary = decode_pdu(ctx, 0, end, fields, "apdu")
    if stop >= end:
        return (span,), summary
    expected = found = corrected = None
    if ctx.buf[0] in ACSE_TYPES and len(ctx.buf) > 1:
        # A BER APDU says its own length: either it is too short or bytes were appended.
        header = 2 if ctx.buf[1] < 0x80 else 2 + (ctx.buf[1] & 0x7F)
        expected, found = str(end - header), str(stop - header)
        corrected = hexs(encode_length(end - header))
    ctx.finding(
        "apdu.trailing_bytes",
        stop,
        end - stop,
        "apdu",
        f"{end - stop} bytes after the end of the APDU",
        severity=Severity.WARNING,
        expected=expected,
        found=found,
        corrected=corrected,
    )
    return (span, ctx.raw(stop, end, "apdu.trailing", "Trailing bytes")), summary


def decode_pdu(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    """One APDU (ACSE or xDLMS) at ``pos``: (span, next position, summary)."""
    tag = ctx.buf[pos]
    handler = _HANDLERS.get(tag)
    if handler is not None:
        return handler(ctx, pos, end, fields, name)
    if tag in CIPHER_TAGS:
        return _ciphered(ctx, pos, end, fields, name)
    fields["apdu_type"] = "unknown"
    ctx.finding(
        "apdu.unknown_tag", pos, 1, "tag", f"unknown APDU tag 0x{tag:02X}", found=f"{tag:02X}"
    )
    span = ctx.raw(pos, end, f"{name}.unknown", f"Unknown APDU (tag 0x{tag:02X})")
    return span, end, f"unknown APDU tag 0x{tag:02X} ({end - pos} bytes)"


def _header(
    ctx: DecodeContext,
    pos: int,
    end: int,
    name: str,
    label: str,
    apdu_type: str,
    fields: Fields,
) -> tuple[Span, Span | None, int]:
    """Tag and choice bytes of a GET/SET/ACTION APDU."""
    fields["apdu_type"] = apdu_type
    tag = ctx.span(pos, 1, name + ".tag", "APDU tag", ctx.buf[pos], label)
    if pos + 1 >= end:
        ctx.need(pos + 1, end, 1, "request/response type")
        return tag, None, end
    choice = ctx.span(pos + 1, 1, name + ".type", "Type", ctx.buf[pos + 1], apdu_type)
    return tag, choice, pos + 2


# ---------------------------------------------------------------- GET / SET / ACTION

_GET_REQ = {1: "GET-Request-Normal", 2: "GET-Request-Next", 3: "GET-Request-With-List"}
_GET_RES = {1: "GET-Response-Normal", 2: "GET-Response-With-Datablock", 3: "GET-Response-With-List"}
_SET_REQ = {
    1: "SET-Request-Normal",
    2: "SET-Request-With-First-Datablock",
    3: "SET-Request-With-Datablock",
    4: "SET-Request-With-List",
    5: "SET-Request-With-List-And-First-Datablock",
}
_SET_RES = {
    1: "SET-Response-Normal",
    2: "SET-Response-Datablock",
    3: "SET-Response-Last-Datablock",
    4: "SET-Response-Last-Datablock-With-List",
    5: "SET-Response-With-List",
}
_ACT_REQ = {
    1: "ACTION-Request-Normal",
    2: "ACTION-Request-Next-Pblock",
    3: "ACTION-Request-With-List",
    4: "ACTION-Request-With-First-Pblock",
    5: "ACTION-Request-With-List-And-First-Pblock",
    6: "ACTION-Request-With-Pblock",
}
_ACT_RES = {
    1: "ACTION-Response-Normal",
    2: "ACTION-Response-With-Pblock",
    3: "ACTION-Response-With-List",
    4: "ACTION-Response-Next-Pblock",
}


def _service(
    ctx: DecodeContext,
    pos: int,
    end: int,
    fields: Fields,
    name: str,
    family: str,
    kinds: dict[int, str],
) -> tuple[list[Span], int, str | None, int]:
    """Shared start of GET/SET/ACTION: (spans so far, position, type name or None, choice)."""
    choice = ctx.buf[pos + 1] if pos + 1 < end else -1
    apdu_type = kinds.get(choice)
    if apdu_type is None:
        apdu_type = f"{family}-unknown"
        if choice >= 0:
            ctx.finding(
                "apdu.unknown_tag",
                pos + 1,
                1,
                "type",
                f"{family} type {choice} unknown",
                found=str(choice),
            )
    tag, ch, cur = _header(ctx, pos, end, name, family, apdu_type, fields)
    spans = [tag] if ch is None else [tag, ch]
    if ch is not None and choice in kinds:
        inv, cur = read_invoke_id(ctx, cur, end, fields, name)
        spans.append(inv)
        return spans, cur, apdu_type, choice
    return spans, cur, None, choice


def _finish(
    ctx: DecodeContext,
    pos: int,
    cur: int,
    end: int,
    name: str,
    label: str,
    spans: list[Span],
    summary: str,
) -> tuple[Span, int, str]:
    return ctx.span(pos, cur - pos, name, label, None, summary, tuple(spans)), cur, summary


def _get_request(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    spans, cur, kind, choice = _service(ctx, pos, end, fields, name, "GET-Request", _GET_REQ)
    if kind is None:
        return _unparsed(ctx, pos, cur, end, name, "GET-Request", spans)
    iid = fields.get("invoke_id")
    if choice == 1:
        desc, cur, text = read_descriptor(ctx, cur, end, fields, name + ".descriptor")
        sel, cur = read_access_selection(ctx, cur, end, name + ".access_selection")
        spans += (desc, sel)
        summary = f"{kind} #{iid} {text}"
    elif choice == 2:
        num, cur, bn = read_uint(ctx, cur, end, 4, name + ".block_number", "Block number")
        fields["block_number"] = bn
        spans.append(num)
        summary = f"{kind} #{iid} block {bn}"
    else:

        def item(p: int, i: int) -> tuple[Span, int]:
            d, p, _ = read_descriptor(ctx, p, end, None, f"{name}.item{i}")
            s, p = read_access_selection(ctx, p, end, f"{name}.item{i}.access_selection")
            return ctx.span(
                d.offset - ctx.base,
                p - (d.offset - ctx.base),
                f"{name}.item{i}",
                f"Item {i}",
                None,
                d.meaning,
                (d, s),
            ), p

        lst, cur, n = read_list(ctx, cur, end, name + ".items", "Attributes", item)
        spans.append(lst)
        fields["count"] = n
        summary = f"{kind} #{iid} {n} attributes"
    return _finish(ctx, pos, cur, end, name, "GET-Request", spans, summary)


def _get_response(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    spans, cur, kind, choice = _service(ctx, pos, end, fields, name, "GET-Response", _GET_RES)
    if kind is None:
        return _unparsed(ctx, pos, cur, end, name, "GET-Response", spans)
    iid = fields.get("invoke_id")
    if choice == 1:
        res, cur, text = read_data_result(ctx, cur, end, fields, name + ".result")
        spans.append(res)
        summary = f"{kind} #{iid} {text}"
    elif choice == 2:
        start = cur
        last, cur, lb = read_uint(ctx, cur, end, 1, name + ".last_block", "Last block")
        num, cur, bn = read_uint(ctx, cur, end, 4, name + ".block_number", "Block number")
        parts = [last, num]
        fields["last_block"] = bool(lb)
        fields["block_number"] = bn
        if ctx.need(cur, end, 1, "block result"):
            if ctx.buf[cur] == 0:
                raw, cur2, data = read_octets(ctx, cur + 1, end, name + ".raw_data", "Raw data")
                parts.append(
                    ctx.span(
                        cur,
                        cur2 - cur,
                        name + ".result",
                        "Result",
                        None,
                        f"raw data, {len(data)} bytes",
                        (raw,),
                    )
                )
                detail = f"{len(data)} bytes"
                cur = cur2
            else:
                res, cur2, code = read_uint(
                    ctx,
                    cur + 1,
                    end,
                    1,
                    name + ".access_result",
                    "Data access result",
                    DATA_ACCESS_RESULTS,
                )
                access_finding(ctx, cur + 1, code, res.meaning)
                fields["access_result"] = res.meaning
                parts.append(
                    ctx.span(cur, cur2 - cur, name + ".result", "Result", None, res.meaning, (res,))
                )
                detail = res.meaning
                cur = cur2
        else:
            detail = "truncated"
        spans.append(
            ctx.span(
                start,
                cur - start,
                name + ".block",
                "Data block",
                None,
                f"block {bn}{' (last)' if lb else ''}",
                tuple(parts),
            )
        )
        summary = f"{kind} #{iid} block {bn}{' last' if lb else ''}: {detail}"
    else:

        def item(p: int, i: int) -> tuple[Span, int]:
            s, p, _ = read_data_result(ctx, p, end, None, f"{name}.result{i}")
            return s, p

        lst, cur, n = read_list(ctx, cur, end, name + ".results", "Results", item)
        spans.append(lst)
        fields["count"] = n
        summary = f"{kind} #{iid} {n} results"
    return _finish(ctx, pos, cur, end, name, "GET-Response", spans, summary)


def _set_request(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    spans, cur, kind, choice = _service(ctx, pos, end, fields, name, "SET-Request", _SET_REQ)
    if kind is None:
        return _unparsed(ctx, pos, cur, end, name, "SET-Request", spans)
    iid = fields.get("invoke_id")
    summary = f"{kind} #{iid}"
    if choice in (1, 2):
        desc, cur, text = read_descriptor(ctx, cur, end, fields, name + ".descriptor")
        sel, cur = read_access_selection(ctx, cur, end, name + ".access_selection")
        spans += (desc, sel)
        summary += " " + text
        if choice == 1:
            val, cur, value = decode_data(ctx, cur, end, name + ".value", "Value")
            fields["value"] = value
            spans.append(val)
            summary += " = " + val.meaning[:60]
        else:
            blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
            spans.append(blk)
    elif choice == 3:
        blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
        spans.append(blk)
        summary += " " + blk.meaning
    else:

        def item(p: int, i: int) -> tuple[Span, int]:
            d, p, _ = read_descriptor(ctx, p, end, None, f"{name}.item{i}")
            s, p = read_access_selection(ctx, p, end, f"{name}.item{i}.access_selection")
            return ctx.span(
                d.offset - ctx.base,
                p - (d.offset - ctx.base),
                f"{name}.item{i}",
                f"Item {i}",
                None,
                d.meaning,
                (d, s),
            ), p

        lst, cur, n = read_list(ctx, cur, end, name + ".items", "Attributes", item)
        spans.append(lst)
        fields["count"] = n
        if choice == 4:

            def value(p: int, i: int) -> tuple[Span, int]:
                s, p, _ = decode_data(ctx, p, end, f"{name}.value{i}", f"Value {i}")
                return s, p

            vals, cur, _ = read_list(ctx, cur, end, name + ".values", "Values", value)
            spans.append(vals)
        else:
            blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
            spans.append(blk)
        summary += f" {n} attributes"
    return _finish(ctx, pos, cur, end, name, "SET-Request", spans, summary)


def _set_response(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    spans, cur, kind, choice = _service(ctx, pos, end, fields, name, "SET-Response", _SET_RES)
    if kind is None:
        return _unparsed(ctx, pos, cur, end, name, "SET-Response", spans)
    iid = fields.get("invoke_id")
    summary = f"{kind} #{iid}"
    if choice in (1, 3):
        res, cur, code = read_uint(
            ctx, cur, end, 1, name + ".result", "Data access result", DATA_ACCESS_RESULTS
        )
        access_finding(ctx, res.offset - ctx.base, code, res.meaning)
        fields["access_result"] = res.meaning
        spans.append(res)
        summary += " " + res.meaning
    if choice in (4, 5):

        def item(p: int, i: int) -> tuple[Span, int]:
            s, p, code = read_uint(
                ctx, p, end, 1, f"{name}.result{i}", f"Result {i}", DATA_ACCESS_RESULTS
            )
            access_finding(ctx, s.offset - ctx.base, code, s.meaning)
            return s, p

        lst, cur, n = read_list(ctx, cur, end, name + ".results", "Results", item)
        spans.append(lst)
        summary += f" {n} results"
    if choice in (2, 3, 4):
        num, cur, bn = read_uint(ctx, cur, end, 4, name + ".block_number", "Block number")
        fields["block_number"] = bn
        spans.append(num)
        summary += f" block {bn}"
    return _finish(ctx, pos, cur, end, name, "SET-Response", spans, summary)


def _action_request(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    spans, cur, kind, choice = _service(ctx, pos, end, fields, name, "ACTION-Request", _ACT_REQ)
    if kind is None:
        return _unparsed(ctx, pos, cur, end, name, "ACTION-Request", spans)
    iid = fields.get("invoke_id")
    summary = f"{kind} #{iid}"
    if choice in (1, 4):
        desc, cur, text = read_descriptor(ctx, cur, end, fields, name + ".descriptor", method=True)
        spans.append(desc)
        summary += " " + text
        if choice == 1:
            par, cur = _optional_data(
                ctx,
                cur,
                end,
                fields,
                name + ".parameters",
                "Method invocation parameters",
                secret=_is_hls_reply(fields),
            )
            spans.append(par)
        else:
            blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
            spans.append(blk)
    elif choice in (2,):
        num, cur, bn = read_uint(ctx, cur, end, 4, name + ".block_number", "Block number")
        fields["block_number"] = bn
        spans.append(num)
        summary += f" block {bn}"
    elif choice == 6:
        blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
        spans.append(blk)
        summary += " " + blk.meaning
    else:

        def item(p: int, i: int) -> tuple[Span, int]:
            d, p, _ = read_descriptor(ctx, p, end, None, f"{name}.item{i}", method=True)
            return d, p

        lst, cur, n = read_list(ctx, cur, end, name + ".items", "Methods", item)
        spans.append(lst)
        if choice == 3:

            def value(p: int, i: int) -> tuple[Span, int]:
                s, p, _ = decode_data(ctx, p, end, f"{name}.parameters{i}", f"Parameters {i}")
                return s, p

            vals, cur, _ = read_list(ctx, cur, end, name + ".parameters", "Parameters", value)
            spans.append(vals)
        else:
            blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
            spans.append(blk)
        summary += f" {n} methods"
    return _finish(ctx, pos, cur, end, name, "ACTION-Request", spans, summary)


def _is_hls_reply(fields: Fields) -> bool:
    """Association LN method 1 (reply_to_HLS_authentication) carries f(StoC): keep it masked."""
    return fields.get("class_id") in (12, 15) and fields.get("method") == 1


def _optional_data(
    ctx: DecodeContext,
    pos: int,
    end: int,
    fields: Fields,
    name: str,
    label: str,
    secret: bool = False,
) -> tuple[Span, int]:
    if not ctx.need(pos, end, 1, label):
        return ctx.span(pos, 0, name, label), end
    if ctx.buf[pos] == 0:
        return ctx.span(pos, 1, name, label, None, "absent"), pos + 1
    data, cur, value = decode_data(ctx, pos + 1, end, name + ".data", "Data")
    if secret and not ctx.show_secrets:
        data = ctx.span(
            data.offset - ctx.base, data.length, data.name, data.label, None, "", secret=True
        )
    else:
        fields["value"] = value
    return ctx.span(pos, cur - pos, name, label, None, data.meaning, (data,)), cur


def _action_response(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    spans, cur, kind, choice = _service(ctx, pos, end, fields, name, "ACTION-Response", _ACT_RES)
    if kind is None:
        return _unparsed(ctx, pos, cur, end, name, "ACTION-Response", spans)
    iid = fields.get("invoke_id")
    summary = f"{kind} #{iid}"

    def with_data(p: int, i: int, f: Fields | None) -> tuple[Span, int]:
        start = p
        res, p, code = read_uint(
            ctx, p, end, 1, f"{name}.result{i}", "Action result", ACTION_RESULTS
        )
        access_finding(ctx, start, code, res.meaning)
        parts = [res]
        if f is not None:
            f["action_result"] = res.meaning
        if p < end and ctx.buf[p] == 1:
            data, p2, text = read_data_result(ctx, p + 1, end, f, f"{name}.return{i}")
            parts.append(
                ctx.span(
                    p,
                    p2 - p,
                    f"{name}.return_parameters{i}",
                    "Return parameters",
                    None,
                    text,
                    (data,),
                )
            )
            p = p2
        elif ctx.need(p, end, 1, "return parameters"):
            parts.append(
                ctx.span(p, 1, f"{name}.return_parameters{i}", "Return parameters", None, "absent")
            )
            p += 1
        return ctx.span(
            start,
            p - start,
            f"{name}.response{i}",
            "Action response",
            None,
            res.meaning,
            tuple(parts),
        ), p

    if choice == 1:
        resp, cur = with_data(cur, 0, fields)
        spans.append(resp)
        summary += " " + resp.meaning
    elif choice == 2:
        blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
        spans.append(blk)
        summary += " " + blk.meaning
    elif choice == 3:
        lst, cur, n = read_list(
            ctx, cur, end, name + ".results", "Results", lambda p, i: with_data(p, i, None)
        )
        spans.append(lst)
        summary += f" {n} results"
    else:
        num, cur, bn = read_uint(ctx, cur, end, 4, name + ".block_number", "Block number")
        fields["block_number"] = bn
        spans.append(num)
        summary += f" block {bn}"
    return _finish(ctx, pos, cur, end, name, "ACTION-Response", spans, summary)


def _unparsed(
    ctx: DecodeContext, pos: int, cur: int, end: int, name: str, label: str, spans: list[Span]
) -> tuple[Span, int, str]:
    if cur < end:
        spans.append(ctx.raw(cur, end, name + ".body", "Body"))
    return _finish(ctx, pos, end, end, name, label, spans, f"{label} (type not decoded)")


# ---------------------------------------------------------------- other xDLMS APDUs


def _exception(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    """Exception-Response (Green Book 9.3.5): state-error, service-error [, counter]."""
    fields["apdu_type"] = "ExceptionResponse"
    tag = ctx.span(pos, 1, name + ".tag", "APDU tag", 0xD8, "exception-response")
    st, cur, state = read_uint(
        ctx, pos + 1, end, 1, name + ".state_error", "State error", EXCEPTION_STATE_ERRORS
    )
    se, cur, service = read_uint(
        ctx, cur, end, 1, name + ".service_error", "Service error", EXCEPTION_SERVICE_ERRORS
    )
    spans = [tag, st, se]
    fields["state_error"] = st.meaning
    fields["service_error"] = se.meaning
    summary = f"ExceptionResponse {st.meaning}, {se.meaning}"
    if service == 6:
        ic, cur, counter = read_uint(
            ctx, cur, end, 4, name + ".invocation_counter", "Expected invocation counter"
        )
        fields["invocation_counter"] = counter
        spans.append(ic)
        summary += f" (meter expects {counter})"
    ctx.finding(
        "apdu.exception",
        pos,
        cur - pos,
        "exception-response",
        summary,
        severity=Severity.WARNING,
        found=f"{state}/{service}",
    )
    return _finish(ctx, pos, cur, end, name, "Exception-Response", spans, summary)


def _data_notification(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    """Data-Notification (Green Book 9.3.7): long invoke id, date-time, body."""
    fields["apdu_type"] = "DataNotification"
    tag = ctx.span(pos, 1, name + ".tag", "APDU tag", 0x0F, "data-notification")
    inv, cur, lid = read_uint(
        ctx, pos + 1, end, 4, name + ".long_invoke_id", "Long invoke id and priority"
    )
    fields["long_invoke_id"] = None if lid is None else lid & 0xFFFFFF
    if lid is not None:
        # Long-Invoke-Id-And-Priority: bits 0-23 id, 28 break-on-error, 29 self-descriptive,
        # 30 confirmed, 31 high priority (Green Book 9.3.8).
        inv = ctx.span(
            pos + 1,
            4,
            inv.name,
            inv.label,
            lid,
            f"invoke id {lid & 0xFFFFFF}, "
            f"{'confirmed' if lid & (1 << 30) else 'unconfirmed'}, "
            f"{'high' if lid & (1 << 31) else 'normal'} priority"
            f"{', self-descriptive' if lid & (1 << 29) else ''}",
        )
    spans = [tag, inv]
    buf = ctx.buf
    if cur + 1 < end and buf[cur] == 0x09 and buf[cur + 1] == 0x0C:
        # Norwegian HAN meters (Kaifa MA304 and others) send the date-time as a tagged Data
        # octet-string, 09 0C + 12 bytes; the standard has a bare OCTET STRING (0C + 12).
        # A bare length of 9 fits no date/time form, so this reading is unambiguous.
        ctx.finding(
            "apdu.notification.tagged_datetime",
            cur,
            1,
            "date-time",
            "date-time sent as a tagged octet-string (09 0C ...), a known meter "
            "variant; the standard has an untagged OCTET STRING",
            severity=Severity.INFO,
            expected="0C",
            found="09 0C",
        )
        spans.append(
            ctx.span(
                cur, 1, name + ".date_time_type", "Data type (meter variant)", 0x09, "octet-string"
            )
        )
        cur += 1
    dt, cur, raw = read_octets(ctx, cur, end, name + ".date_time", "Date-time")
    if raw:
        value, meaning = octet_value(raw)
        dt = ctx.span(dt.offset - ctx.base, dt.length, dt.name, dt.label, value, meaning)
    body, cur, value = decode_data(ctx, cur, end, name + ".body", "Notification body")
    fields["value"] = value
    summary = f"DataNotification id {fields['long_invoke_id']}: {body.meaning[:60]}"
    spans += (dt, body)
    return _finish(ctx, pos, cur, end, name, "Data-Notification", spans, summary)


def _event_notification(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    fields["apdu_type"] = "EventNotificationRequest"
    tag = ctx.span(pos, 1, name + ".tag", "APDU tag", 0xC2, "event-notification-request")
    spans = [tag]
    cur = pos + 1
    if ctx.need(cur, end, 1, "time"):
        if ctx.buf[cur]:
            t, cur2, raw = read_octets(ctx, cur + 1, end, name + ".time", "Time")
            spans.append(
                ctx.span(
                    cur, cur2 - cur, name + ".time_present", "Time", None, octet_value(raw)[1], (t,)
                )
            )
            cur = cur2
        else:
            spans.append(ctx.span(cur, 1, name + ".time_present", "Time", None, "absent"))
            cur += 1
    desc, cur, text = read_descriptor(ctx, cur, end, fields, name + ".descriptor")
    val, cur, value = decode_data(ctx, cur, end, name + ".value", "Value")
    fields["value"] = value
    spans += (desc, val)
    summary = f"EventNotification {text} = {val.meaning[:60]}"
    return _finish(ctx, pos, cur, end, name, "Event-Notification", spans, summary)


def _gbt(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    """General-Block-Transfer (Green Book 9.3.13): control, numbers, block data."""
    fields["apdu_type"] = "GeneralBlockTransfer"
    tag = ctx.span(pos, 1, name + ".tag", "APDU tag", 0xE0, "general-block-transfer")
    ctl, cur, control = read_uint(ctx, pos + 1, end, 1, name + ".control", "Block control")
    if control is not None:
        ctl = ctx.span(
            pos + 1,
            1,
            ctl.name,
            ctl.label,
            control,
            f"last={bool(control & 0x80)} streaming={bool(control & 0x40)} window={control & 0x3F}",
        )
    num, cur, bn = read_uint(ctx, cur, end, 2, name + ".block_number", "Block number")
    ack, cur, _ = read_uint(ctx, cur, end, 2, name + ".block_number_ack", "Block number ack")
    data, cur, raw = read_octets(ctx, cur, end, name + ".block_data", "Block data")
    fields["block_number"] = bn
    summary = f"GeneralBlockTransfer block {bn}, {len(raw)} bytes"
    return _finish(
        ctx, pos, cur, end, name, "General-Block-Transfer", [tag, ctl, num, ack, data], summary
    )


def _sn_service(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    """Short-name services (IEC 62056-53 / Green Book 9.6): Read, Write, their responses;
    UnconfirmedWrite and InformationReport are named and shown raw."""
    tag_byte = ctx.buf[pos]
    label = _SN_NAMES[tag_byte]
    fields["apdu_type"] = label
    spans = [ctx.span(pos, 1, name + ".tag", "APDU tag", tag_byte, label)]
    cur = pos + 1
    if tag_byte in (0x05, 0x06):  # ReadRequest, WriteRequest
        lst, cur, n = read_list(
            ctx,
            cur,
            end,
            name + ".variables",
            "Variables",
            lambda p, i: _sn_variable(ctx, p, end, fields, f"{name}.var{i}"),
        )
        spans.append(lst)
        summary = f"{label} {n} variables"
        if n == 1 and "short_name" in fields:
            summary = f"{label} 0x{fields['short_name']:04X}"
        if tag_byte == 0x06:

            def value(p: int, i: int) -> tuple[Span, int]:
                s, p, v = decode_data(ctx, p, end, f"{name}.value{i}", f"Value {i}")
                fields.setdefault("value", v)
                return s, p

            vals, cur, _ = read_list(ctx, cur, end, name + ".values", "Values", value)
            spans.append(vals)
    elif tag_byte in (0x0C, 0x0D):  # ReadResponse, WriteResponse
        item = _sn_read_result if tag_byte == 0x0C else _sn_write_result
        lst, cur, n = read_list(
            ctx,
            cur,
            end,
            name + ".results",
            "Results",
            lambda p, i: item(ctx, p, end, fields, f"{name}.result{i}"),
        )
        spans.append(lst)
        summary = f"{label} {n} results"
        if n == 1 and len(lst.children) > 1:
            summary = f"{label} {lst.children[1].meaning[:60]}"
    else:
        if cur < end:
            spans.append(ctx.raw(cur, end, name + ".body", "Body"))
        cur = end
        summary = f"{label} ({end - pos} bytes)"
    return _finish(ctx, pos, cur, end, name, label, spans, summary)


_SN_NAMES = {
    0x05: "ReadRequest",
    0x0C: "ReadResponse",
    0x06: "WriteRequest",
    0x0D: "WriteResponse",
    0x16: "UnconfirmedWriteRequest",
    0x18: "InformationReportRequest",
}
# Known APDUs this decoder names but shows raw (rare on the meters dlmsdoctor meets).
_RAW_NAMES = {
    0xD9: "AccessRequest",
    0xDA: "AccessResponse",
    0xDF: "GeneralSigning",
}


def _named_raw(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    label = _RAW_NAMES[ctx.buf[pos]]
    fields["apdu_type"] = label
    spans = [ctx.span(pos, 1, name + ".tag", "APDU tag", ctx.buf[pos], label)]
    if pos + 1 < end:
        spans.append(ctx.raw(pos + 1, end, name + ".body", "Body", "not decoded"))
    return _finish(ctx, pos, end, end, name, label, spans, f"{label} ({end - pos} bytes)")


_SN_ACCESS = {
    2: "variable-name",
    4: "parameterized-access",
    5: "block-number-access",
    6: "read-data-block-access",
    7: "write-data-block-access",
}


def _sn_variable(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int]:
    """Variable-Access-Specification CHOICE."""
    choice = ctx.buf[pos]
    kind = _SN_ACCESS.get(choice)
    if kind is None:
        ctx.finding(
            "apdu.axdr.choice",
            pos,
            1,
            "variable-access-specification",
            f"variable access choice {choice} unknown",
            found=str(choice),
        )
        return ctx.raw(pos, end, name, "Variable", "unknown choice"), end
    parts = [ctx.span(pos, 1, name + ".choice", "Access kind", choice, kind)]
    cur = pos + 1
    if choice in (2, 4, 5):
        label = "Block number" if choice == 5 else "Short name"
        sn, cur, value = read_uint(ctx, cur, end, 2, name + ".short_name", label)
        if value is not None:
            sn = ctx.span(cur - 2, 2, sn.name, sn.label, value, f"0x{value:04X}")
            if choice != 5:
                fields.setdefault("short_name", value)
        parts.append(sn)
        if choice == 4:
            sel, cur, _ = read_uint(ctx, cur, end, 1, name + ".selector", "Selector")
            par, cur, _ = decode_data(ctx, cur, end, name + ".parameters", "Parameters")
            parts += (sel, par)
    else:
        blk, cur = (
            read_block_sa(ctx, cur, end, fields, name + ".block")
            if choice == 7
            else _sn_block(ctx, cur, end, fields, name + ".block")
        )
        parts.append(blk)
    return ctx.span(
        pos, cur - pos, name, "Variable", None, parts[-1].meaning or kind, tuple(parts)
    ), cur


def _sn_block(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int]:
    """DataBlock-G for SN: last-block, block-number Unsigned16, raw-data."""
    last, cur, lb = read_uint(ctx, pos, end, 1, name + ".last_block", "Last block")
    num, cur, bn = read_uint(ctx, cur, end, 2, name + ".block_number", "Block number")
    raw, cur, data = read_octets(ctx, cur, end, name + ".raw_data", "Raw data")
    fields["last_block"] = bool(lb)
    fields["block_number"] = bn
    meaning = f"block {bn}{' (last)' if lb else ''}, {len(data)} bytes"
    return ctx.span(pos, cur - pos, name, "Data block", None, meaning, (last, num, raw)), cur


def _sn_read_result(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int]:
    """Read-Response item CHOICE: [0] data, [1] data-access-error, [2] block, [3] block no."""
    choice = ctx.buf[pos]
    if choice == 0:
        data, cur, value = decode_data(ctx, pos + 1, end, name + ".data", "Data")
        fields.setdefault("value", value)
        fields.setdefault("access_result", "success")
        return ctx.span(pos, cur - pos, name, "Result", None, data.meaning, (data,)), cur
    if choice == 1:
        res, cur, code = read_uint(
            ctx, pos + 1, end, 1, name + ".error", "Data access error", DATA_ACCESS_RESULTS
        )
        access_finding(ctx, pos + 1, code, res.meaning)
        fields.setdefault("access_result", res.meaning)
        return ctx.span(pos, cur - pos, name, "Result", code, res.meaning, (res,)), cur
    if choice == 2:
        blk, cur = _sn_block(ctx, pos + 1, end, fields, name + ".block")
        return ctx.span(pos, cur - pos, name, "Result", None, blk.meaning, (blk,)), cur
    if choice == 3:
        num, cur, bn = read_uint(ctx, pos + 1, end, 2, name + ".block_number", "Block number")
        return ctx.span(pos, cur - pos, name, "Result", bn, f"block {bn}", (num,)), cur
    ctx.finding(
        "apdu.axdr.choice",
        pos,
        1,
        "read-response",
        f"result choice {choice} unknown",
        found=str(choice),
    )
    return ctx.raw(pos, end, name, "Result", "unknown choice"), end


def _sn_write_result(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int]:
    """Write-Response item CHOICE: [0] success, [1] data-access-error, [2] block number."""
    choice = ctx.buf[pos]
    if choice == 0:
        fields.setdefault("access_result", "success")
        return ctx.span(pos, 1, name, "Result", 0, "success"), pos + 1
    if choice == 1:
        res, cur, code = read_uint(
            ctx, pos + 1, end, 1, name + ".error", "Data access error", DATA_ACCESS_RESULTS
        )
        access_finding(ctx, pos + 1, code, res.meaning)
        fields.setdefault("access_result", res.meaning)
        return ctx.span(pos, cur - pos, name, "Result", code, res.meaning, (res,)), cur
    if choice == 2:
        num, cur, bn = read_uint(ctx, pos + 1, end, 2, name + ".block_number", "Block number")
        return ctx.span(pos, cur - pos, name, "Result", bn, f"block {bn}", (num,)), cur
    ctx.finding(
        "apdu.axdr.choice",
        pos,
        1,
        "write-response",
        f"result choice {choice} unknown",
        found=str(choice),
    )
    return ctx.raw(pos, end, name, "Result", "unknown choice"), end


# ---------------------------------------------------------------- ciphered APDUs


def _security_header(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[list[Span], int]:
    """Security control byte + invocation counter (Green Book 9.2.7.2.4)."""
    out: list[Span] = []
    if not ctx.need(pos, end, 1, "security control"):
        return out, end
    sc = ctx.buf[pos]
    bits = {
        "suite": sc & 0x0F,
        "authentication": bool(sc & 0x10),
        "encryption": bool(sc & 0x20),
        "broadcast_key": bool(sc & 0x40),
        "compression": bool(sc & 0x80),
    }
    fields["security_control"] = bits
    meaning = (
        f"suite {sc & 0x0F}, {'A' if sc & 0x10 else '-'}{'E' if sc & 0x20 else '-'}, "
        f"{'broadcast' if sc & 0x40 else 'unicast'} key"
        f"{', compressed' if sc & 0x80 else ''}"
    )
    out.append(ctx.span(pos, 1, name + ".security_control", "Security control", sc, meaning))
    ic, cur, counter = read_uint(
        ctx, pos + 1, end, 4, name + ".invocation_counter", "Invocation counter"
    )
    fields["invocation_counter"] = counter
    out.append(ic)
    fields["ciphered_payload_length"] = max(0, end - cur)
    if cur < end:
        out.append(
            ctx.span(
                cur,
                end - cur,
                name + ".payload",
                "Ciphered payload",
                None,
                f"ciphered payload ({end - cur} bytes)",
            )
        )
    return out, end


def _ciphered(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    tag = ctx.buf[pos]
    cname = CIPHER_TAGS[tag]
    fields["apdu_type"] = "ciphered"
    fields["cipher"] = cname
    spans = [ctx.span(pos, 1, name + ".tag", "APDU tag", tag, cname)]
    cur = pos + 1
    if tag in (0xDB, 0xDC):
        st, cur, title = read_octets(ctx, cur, end, name + ".system_title", "System title")
        flag = flag_id(title)
        fields["system_title"] = title.hex().upper()
        if flag:
            st = ctx.span(
                st.offset - ctx.base,
                st.length,
                st.name,
                st.label,
                title,
                f"{hexs(title)} (manufacturer {flag})",
            )
        spans.append(st)
    elif tag == 0xDD:
        for key, label in (
            ("transaction_id", "Transaction id"),
            ("originator_system_title", "Originator system title"),
            ("recipient_system_title", "Recipient system title"),
            ("date_time", "Date-time"),
            ("other_information", "Other information"),
        ):
            s, cur, data = read_octets(ctx, cur, end, f"{name}.{key}", label)
            spans.append(s)
            if key.endswith("system_title"):
                fields[key] = data.hex().upper()
        if cur < end and ctx.buf[cur] != 0:
            spans.append(
                ctx.raw(
                    cur,
                    end,
                    name + ".key_info",
                    "Key info and content",
                    "key info present: not decoded",
                )
            )
            summary = f"{cname} (key info, {end - cur} bytes)"
            return _finish(ctx, pos, end, end, name, cname, spans, summary)
        if cur < end:
            spans.append(ctx.span(cur, 1, name + ".key_info", "Key info", None, "absent"))
            cur += 1
    got = read_length(ctx, cur, end, "ciphered content")
    if got is not None:
        n, lsize = got
        stop = clamp(ctx, cur, lsize, cur + lsize, n, end, "ciphered content")
        header, _ = _security_header(ctx, cur + lsize, stop, fields, name)
        spans.append(
            ctx.span(
                cur,
                stop - cur,
                name + ".content",
                "Ciphered content",
                None,
                f"{stop - cur - lsize} bytes",
                tuple(header),
            )
        )
        cur = stop
    payload = fields.get("ciphered_payload_length", 0)
    summary = f"{cname}, IC {fields.get('invocation_counter')}, ciphered payload ({payload} bytes)"
    return _finish(ctx, pos, cur, end, name, cname, spans, summary)


# ---------------------------------------------------------------- InitiateRequest/Response


def conformance_names(bits: int) -> list[str]:
    """Names of the set conformance bits (24-bit value, bit 0 = most significant)."""
    return list(_conformance_names(bits))


@lru_cache(maxsize=256)  # a capture holds a handful of distinct conformance blocks
def _conformance_names(bits: int) -> tuple[str, ...]:
    return tuple(n for i, n in enumerate(CONFORMANCE_BITS) if bits & (1 << (23 - i)))


def _conformance(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int]:
    """Conformance ::= [APPLICATION 31] IMPLICIT BIT STRING (SIZE(24)): 5F 1F 04 00 xx xx xx."""
    if not ctx.need(pos, end, 7, "conformance"):
        return ctx.raw(pos, end, name, "Conformance", "truncated"), end
    buf = ctx.buf
    if buf[pos] != 0x5F or buf[pos + 1] != 0x1F or buf[pos + 2] != 0x04:
        ctx.finding(
            "apdu.conformance.tag",
            pos,
            3,
            "conformance",
            "conformance block should start 5F 1F 04",
            expected="5F 1F 04",
            found=hexs(buf[pos : pos + 3]),
        )
    bits = int.from_bytes(buf[pos + 4 : pos + 7], "big")
    names = conformance_names(bits)
    fields["conformance"] = names
    fields["conformance_bits"] = bits
    value_span = ctx.span(
        pos + 4, 3, name + ".bits", "Conformance bits", bits, ", ".join(names) or "none"
    )
    return ctx.span(
        pos, 7, name, "Conformance", bits, f"{len(names)} services", (value_span,)
    ), pos + 7


def _optional_u8(
    ctx: DecodeContext, pos: int, end: int, name: str, label: str
) -> tuple[Span, int, int | None]:
    if not ctx.need(pos, end, 1, label):
        return ctx.span(pos, 0, name, label), end, None
    if ctx.buf[pos] == 0:
        return ctx.span(pos, 1, name, label, None, "absent"), pos + 1, None
    s, cur, v = read_uint(ctx, pos + 1, end, 1, name + ".value", label)
    return ctx.span(pos, cur - pos, name, label, v, str(v), (s,)), cur, v


def _check_version(ctx: DecodeContext, span: Span, version: int | None) -> None:
    """DLMS version 6 is the only one in use (Green Book 9.4.6.1); others mean garbled bytes
    or a peer that will refuse with dlms-version-too-low."""
    if version is not None and version != 6:
        ctx.finding(
            "apdu.dlms_version",
            span.offset - ctx.base,
            1,
            "dlms-version",
            f"DLMS version {version}, expected 6",
            severity=Severity.WARNING,
            expected="6",
            found=str(version),
        )


def _initiate_request(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    """xDLMS InitiateRequest (Green Book 9.5): key, response-allowed, QoS, version, conformance."""
    fields.setdefault("apdu_type", "InitiateRequest")
    fields["xdlms"] = "InitiateRequest"
    spans = [ctx.span(pos, 1, name + ".tag", "xDLMS tag", 0x01, "InitiateRequest")]
    cur = pos + 1
    if ctx.need(cur, end, 1, "dedicated key"):
        if ctx.buf[cur]:
            key, cur2, data = read_octets(
                ctx, cur + 1, end, name + ".dedicated_key.value", "Dedicated key", secret=True
            )
            fields["dedicated_key"] = True
            spans.append(
                ctx.span(
                    cur,
                    cur2 - cur,
                    name + ".dedicated_key",
                    "Dedicated key",
                    None,
                    f"present ({len(data)} bytes)",
                    (key,),
                )
            )
            cur = cur2
        else:
            spans.append(ctx.span(cur, 1, name + ".dedicated_key", "Dedicated key", None, "absent"))
            cur += 1
    ra, cur, allowed = _optional_u8(ctx, cur, end, name + ".response_allowed", "Response allowed")
    if allowed is None:
        ra = ctx.span(ra.offset - ctx.base, ra.length, ra.name, ra.label, True, "default (true)")
    qos, cur, _ = _optional_u8(ctx, cur, end, name + ".proposed_qos", "Proposed quality of service")
    ver, cur, version = read_uint(ctx, cur, end, 1, name + ".dlms_version", "Proposed DLMS version")
    conf, cur = _conformance(ctx, cur, end, fields, name + ".conformance")
    pdu, cur, size = read_uint(
        ctx, cur, end, 2, name + ".max_pdu_size", "Client max receive PDU size"
    )
    fields["dlms_version"] = version
    fields["max_pdu_size"] = size
    _check_version(ctx, ver, version)
    spans += (ra, qos, ver, conf, pdu)
    summary = f"InitiateRequest DLMS {version}, max PDU {size}"
    return _finish(ctx, pos, cur, end, name, "InitiateRequest", spans, summary)


def _initiate_response(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    fields.setdefault("apdu_type", "InitiateResponse")
    fields["xdlms"] = "InitiateResponse"
    spans = [ctx.span(pos, 1, name + ".tag", "xDLMS tag", 0x08, "InitiateResponse")]
    qos, cur, _ = _optional_u8(
        ctx, pos + 1, end, name + ".negotiated_qos", "Negotiated quality of service"
    )
    ver, cur, version = read_uint(
        ctx, cur, end, 1, name + ".dlms_version", "Negotiated DLMS version"
    )
    conf, cur = _conformance(ctx, cur, end, fields, name + ".conformance")
    pdu, cur, size = read_uint(
        ctx, cur, end, 2, name + ".max_pdu_size", "Server max receive PDU size"
    )
    vaa, cur, vaa_name = read_uint(ctx, cur, end, 2, name + ".vaa_name", "VAA name")
    if vaa_name is not None:
        vaa = ctx.span(
            vaa.offset - ctx.base,
            2,
            vaa.name,
            vaa.label,
            vaa_name,
            "LN (0x0007)"
            if vaa_name == 7
            else "SN (0xFA00)"
            if vaa_name == 0xFA00
            else f"0x{vaa_name:04X}",
        )
    fields["dlms_version"] = version
    fields["max_pdu_size"] = size
    fields["vaa_name"] = vaa_name
    _check_version(ctx, ver, version)
    spans += (qos, ver, conf, pdu, vaa)
    summary = f"InitiateResponse DLMS {version}, max PDU {size}"
    return _finish(ctx, pos, cur, end, name, "InitiateResponse", spans, summary)


def _confirmed_service_error(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    """ConfirmedServiceError: which service, then ServiceError CHOICE and its enum."""
    fields.setdefault("apdu_type", "ConfirmedServiceError")
    fields["xdlms"] = "ConfirmedServiceError"
    spans = [ctx.span(pos, 1, name + ".tag", "xDLMS tag", 0x0E, "ConfirmedServiceError")]
    svc, cur, _ = read_uint(
        ctx, pos + 1, end, 1, name + ".service", "Service", CONFIRMED_SERVICE_ERRORS
    )
    kind_span, cur, kind = read_uint(
        ctx, cur, end, 1, name + ".error_kind", "Service error", SERVICE_ERROR_KINDS
    )
    val, cur, code = read_uint(
        ctx,
        cur,
        end,
        1,
        name + ".error",
        "Error",
        SERVICE_ERROR_VALUES.get(kind if kind is not None else -1, {}),
    )
    spans += (svc, kind_span, val)
    fields["initiate_error"] = val.meaning
    fields["service_error"] = f"{kind_span.meaning}: {val.meaning}"
    summary = f"ConfirmedServiceError {svc.meaning}: {kind_span.meaning} {val.meaning}"
    ctx.finding(
        "apdu.initiate_error",
        pos,
        cur - pos,
        "confirmed-service-error",
        summary,
        severity=Severity.WARNING,
        found=f"{kind}/{code}",
    )
    return _finish(ctx, pos, cur, end, name, "ConfirmedServiceError", spans, summary)


Handler = Callable[[DecodeContext, int, int, Fields, str], tuple[Span, int, str]]


def _acse(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    return decode_acse(ctx, pos, end, fields, name, _user_information_apdu)


def _user_information_apdu(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    """The xDLMS APDU inside an AARQ/AARE: Initiate*, ConfirmedServiceError, or ciphered."""
    tag = ctx.buf[pos]
    handler = _XDLMS_IN_ACSE.get(tag)
    if handler is not None:
        return handler(ctx, pos, end, fields, name)
    if tag in CIPHER_TAGS:
        saved = fields.get("apdu_type")
        span, stop, summary = _ciphered(ctx, pos, end, fields, name)
        fields["apdu_type"] = saved
        return span, stop, summary
    ctx.finding(
        "apdu.unknown_tag",
        pos,
        1,
        "user-information",
        f"unknown xDLMS tag 0x{tag:02X}",
        found=f"{tag:02X}",
    )
    return ctx.raw(pos, end, name, "xDLMS APDU"), end, "unknown"


_XDLMS_IN_ACSE: dict[int, Handler] = {
    0x01: _initiate_request,
    0x08: _initiate_response,
    0x0E: _confirmed_service_error,
}

_HANDLERS: dict[int, Handler] = {
    0x60: _acse,
    0x61: _acse,
    0x62: _acse,
    0x63: _acse,
    0x01: _initiate_request,
    0x08: _initiate_response,
    0x0E: _confirmed_service_error,
    0x0F: _data_notification,
    0xC0: _get_request,
    0xC1: _set_request,
    0xC2: _event_notification,
    0xC3: _action_request,
    0xC4: _get_response,
    0xC5: _set_response,
    0xC7: _action_response,
    0xD8: _exception,
    0xE0: _gbt,
    **{tag: _sn_service for tag in _SN_NAMES},
    **{tag: _named_raw for tag in _RAW_NAMES},
}
