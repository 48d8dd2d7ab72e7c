"""DLMS APDUs (ACSE + xDLMS) into annotated spans with absolute offsets.

Pure and fast: no gurux, no regexes. ACSE APDUs (AARQ/AARE/RLRQ/RLRE) are walked as BER,
xDLMS ones (GET/SET/ACTION, exception, notifications, InitiateRequest/Response) as A-XDR,
both per IEC 62056-53 and the DLMS UA Green Book (DLMS UA 1000-2, clause 9). Ciphered APDUs
show their security header; their payload is not decrypted.

This module is the entry point and the dispatch table; the decoders live by service family in
``apdu_get_set_action``, ``apdu_short_name``, ``apdu_misc``, ``apdu_ciphered`` and
``apdu_initiate`` (ACSE itself is in ``ber``).

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

from dataclasses import dataclass

from dlmsdoctor.codec.apdu_ciphered import ciphered
from dlmsdoctor.codec.apdu_common import Handler
from dlmsdoctor.codec.apdu_get_set_action import (
    action_request,
    action_response,
    get_request,
    get_response,
    set_request,
    set_response,
)
from dlmsdoctor.codec.apdu_initiate import (
    confirmed_service_error,
    conformance_names,
    initiate_request,
    initiate_response,
)
from dlmsdoctor.codec.apdu_misc import (
    RAW_NAMES,
    data_notification,
    event_notification,
    exception_response,
    general_block_transfer,
    named_raw,
    tagged_datetime,
)
from dlmsdoctor.codec.apdu_short_name import SN_NAMES, sn_service
from dlmsdoctor.codec.axdr import _FIXED as _AXDR_FIXED
from dlmsdoctor.codec.axdr import _STRUCTS as _AXDR_STRUCTS
from dlmsdoctor.codec.axdr import (
    DATA_TYPE_NAMES,
    MAX_SPANS,
    DecodeContext,
    Fields,
    NotPlain,
    _plain_length,
    data_value,
    encode_length,
)
from dlmsdoctor.codec.ber import ACSE_TYPES, decode_acse
from dlmsdoctor.codec.model import Finding, Severity, Span, hexs
from dlmsdoctor.codec.obis import CIPHER_TAGS, class_name, dotted_obis, format_obis, obis_name

__all__ = ["ApduDecode", "apdu_direction", "conformance_names", "decode_apdu", "known_tag"]


@dataclass(frozen=True, slots=True)
class ApduDecode:
    """What one APDU turned out to be: spans in wire order, findings, a line, stable fields."""

    spans: tuple[Span, ...]
    findings: tuple[Finding, ...]
    summary: str
    fields: dict[str, object]
    secret: bool = False  # some span is marked secret (a password, a key): outputs mask it


def decode_apdu(
    apdu: bytes, base_offset: int = 0, show_secrets: bool = False, *, lazy_spans: bool = False
) -> ApduDecode:
    """Decode one APDU. Offsets in the result are ``base_offset`` + position in ``apdu``.

    With ``lazy_spans`` the span tree of a plain GET-Request-Normal or GET-Response-Normal
    (most of a poll) is built the first time ``.spans`` is read: outputs that show only fields,
    summary and findings never pay for it. The result is the same either way."""
    buf = bytes(apdu)
    if lazy_spans and buf and buf[0] in _FAST_TAGS:
        fast = _fast_get(buf, base_offset, show_secrets)
        if fast is not None:
            return fast
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
    # Only these carry passwords and keys (AARQ/AARE, InitiateRequest, SET/ACTION of a secret
    # attribute or method): other APDUs skip the walk.
    secret = buf[0] in _MAY_HOLD_SECRETS and any(
        s.secret for top in spans for s in top.walk()
    )
    # ApduDecode(...) without the frozen dataclass's __init__ (once per APDU of a log)
    out = _new(ApduDecode)
    s_spans, s_findings, s_summary, s_fields, s_secret = _APDU_SETTERS
    s_spans(out, tuple(spans))
    s_findings(out, tuple(ctx.findings))
    s_summary(out, summary)
    s_fields(out, fields)
    s_secret(out, secret)
    return out


_new = object.__new__
_APDU_SETTERS = tuple(
    getattr(ApduDecode.__dict__[name], "__set__")  # noqa: B009  (slot descriptors)
    for name in ("spans", "findings", "summary", "fields", "secret")
)
_SPANS_SLOT = ApduDecode.__dict__["spans"]


class _LazySpansApdu(ApduDecode):
    """An ApduDecode whose ``spans`` are decoded (by the general path) on first access."""

    __slots__ = ("_base", "_pending", "_show_secrets", "_source")
    _base: int
    _pending: bool
    _show_secrets: bool
    _source: bytes

    @property
    def spans(self) -> tuple[Span, ...]:
        if self._pending:
            full = decode_apdu(self._source, self._base, self._show_secrets)
            _SPANS_SLOT.__set__(self, full.spans)
            object.__setattr__(self, "_pending", False)
        spans: tuple[Span, ...] = _SPANS_SLOT.__get__(self)
        return spans

    @spans.setter
    def spans(self, value: tuple[Span, ...]) -> None:
        # Reached through object.__setattr__ in the dataclass __init__ (and replace()).
        _SPANS_SLOT.__set__(self, value)
        object.__setattr__(self, "_pending", False)


_LAZY_SETTERS = tuple(
    getattr(_LazySpansApdu.__dict__[name], "__set__")  # noqa: B009  (slot descriptors)
    for name in ("_source", "_base", "_show_secrets", "_pending")
)
_FAST_TAGS = frozenset((0xC0, 0xC4, 0x0F))
_FIXED_TYPES = {
    tag: (size, _AXDR_STRUCTS[fmt], DATA_TYPE_NAMES[tag])
    for tag, (size, fmt) in _AXDR_FIXED.items()
}


def _fast_get(buf: bytes, base: int, show_secrets: bool) -> ApduDecode | None:
    """What the general path gives for a GET-Request-Normal of one attribute with no access
    selection, or a GET-Response-Normal carrying one fixed-size value, but for the spans (left
    to ``_LazySpansApdu``); None for anything else. Same fields, in the same order, and summary
    (tested against the general path)."""
    n = len(buf)
    if buf[0] == 0x0F:
        return _fast_notification(buf, base, show_secrets)
    if n < 5 or buf[1] != 1:
        return None
    iid = buf[2] & 0x0F
    if buf[0] == 0xC0:
        if n != 13 or buf[12] != 0:
            return None
        cid = (buf[3] << 8) | buf[4]
        obis = buf[5:11]
        item = buf[11]
        cname = class_name(cid)
        oname = obis_name(obis)
        text = f"{cname} {format_obis(obis)}{' (' + oname + ')' if oname else ''} attribute {item}"
        fields: Fields = {
            "apdu_type": "GET-Request-Normal", "invoke_id": iid, "class_id": cid,
            "class_name": cname, "obis": dotted_obis(obis),
        }  # fmt: skip
        if oname:
            fields["obis_name"] = oname
        fields["attribute"] = item
        summary = f"GET-Request-Normal #{iid} {text}"
    else:
        fixed = _FIXED_TYPES.get(buf[4])
        if buf[3] != 0 or fixed is None or n != 5 + fixed[0]:
            return None
        value: object = fixed[1].unpack_from(buf, 5)[0]
        if buf[4] == 3:
            value = value != 0
        meaning = f"{fixed[2]} {value}"
        text = meaning if len(meaning) <= 60 else meaning[:57] + "..."
        fields = {
            "apdu_type": "GET-Response-Normal", "invoke_id": iid, "value": value,
            "access_result": "success",
        }  # fmt: skip
        summary = f"GET-Response-Normal #{iid} {text}"
    return _lazy(buf, base, show_secrets, summary, fields, ())


def _fast_notification(buf: bytes, base: int, show_secrets: bool) -> ApduDecode | None:
    """What the general path gives for a Data-Notification whose date-time and body decode with
    nothing to report (a meter's push), but for the spans; None for anything else."""
    end = len(buf)
    if end < 7 or end >= MAX_SPANS:
        return None
    lid = int.from_bytes(buf[1:5], "big")
    cur = 5
    findings: tuple[Finding, ...] = ()
    if buf[cur] == 0x09 and buf[cur + 1] == 0x0C:
        ctx = DecodeContext(buf, base, show_secrets)
        tagged_datetime(ctx, cur)
        findings = tuple(ctx.findings)
        cur += 1
    try:
        n, lsize = _plain_length(buf, cur, end)
        cur += lsize + n
        if cur >= end or buf[cur] not in (1, 2):
            return None
        kind = "array" if buf[cur] == 1 else "structure"
        count = _plain_length(buf, cur + 1, end)[0]
        value, stop = data_value(buf, cur, end)
    except NotPlain:
        return None
    if stop != end:
        return None  # bytes after the body: the general path reports them
    fields: Fields = {
        "apdu_type": "DataNotification", "long_invoke_id": lid & 0xFFFFFF, "value": value,
    }  # fmt: skip
    summary = f"DataNotification id {lid & 0xFFFFFF}: {f'{kind} of {count}'[:60]}"
    return _lazy(buf, base, show_secrets, summary, fields, findings)


def _lazy(
    buf: bytes, base: int, show_secrets: bool, summary: str, fields: Fields,
    findings: tuple[Finding, ...],
) -> ApduDecode:  # fmt: skip
    out = _new(_LazySpansApdu)
    s_spans, s_findings, s_summary, s_fields, s_secret = _APDU_SETTERS
    s_spans(out, ())
    s_findings(out, findings)
    s_summary(out, summary)
    s_fields(out, fields)
    s_secret(out, False)
    l_source, l_base, l_show, l_pending = _LAZY_SETTERS
    l_source(out, buf)
    l_base(out, base)
    l_show(out, show_secrets)
    l_pending(out, True)
    return out


_MAY_HOLD_SECRETS = frozenset((0x60, 0x61, 0x01, 0xC1, 0xC3))


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
    fields["apdu_length"] = stop
    ctx.finding(
        "apdu.trailing_bytes",
        stop,
        end - stop,
        "apdu",
        f"{end - stop} byte(s) after the end of the APDU, which is complete in its first {stop} "
        f"byte(s) (it ends at offset {ctx.base + stop}): they belong to no field. The sender "
        "appended them or sized its frame wrong; a strict peer rejects the frame.",
        severity=Severity.ERROR,
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
        return ciphered(ctx, pos, end, fields, name)
    fields["apdu_type"] = "unknown"
    ctx.finding(
        "apdu.unknown_tag", pos, 1, "tag", f"unknown APDU tag 0x{tag:02X}", found=f"{tag:02X}"
    )
    span = ctx.raw(pos, end, f"{name}.unknown", f"Unknown APDU (tag 0x{tag:02X})")
    return span, end, f"unknown APDU tag 0x{tag:02X} ({end - pos} bytes)"


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
        span, stop, summary = ciphered(ctx, pos, end, fields, name)
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
    0x01: initiate_request,
    0x08: initiate_response,
    0x0E: confirmed_service_error,
}

_HANDLERS: dict[int, Handler] = {
    0x60: _acse,
    0x61: _acse,
    0x62: _acse,
    0x63: _acse,
    0x01: initiate_request,
    0x08: initiate_response,
    0x0E: confirmed_service_error,
    0x0F: data_notification,
    0xC0: get_request,
    0xC1: set_request,
    0xC2: event_notification,
    0xC3: action_request,
    0xC4: get_response,
    0xC5: set_response,
    0xC7: action_response,
    0xD8: exception_response,
    0xE0: general_block_transfer,
    **{tag: sn_service for tag in SN_NAMES},
    **{tag: named_raw for tag in RAW_NAMES},
}


_FROM_SERVER = frozenset(
    (0x61, 0x63, 0x08, 0x0E, 0x0F, 0xC2, 0xC4, 0xC5, 0xC7, 0xD8, 0xDA, 0x0C, 0x0D, 0x18)
)
_FROM_CLIENT = frozenset((0x60, 0x62, 0x01, 0xC0, 0xC1, 0xC3, 0xD9, 0x05, 0x06, 0x16))


def known_tag(tag: int) -> bool:
    """Is ``tag`` the first byte of an APDU this codec decodes (ACSE, xDLMS, ciphered)?"""
    return tag in _HANDLERS or tag in CIPHER_TAGS


def apdu_direction(tag: int) -> str | None:
    """Who sends an APDU with this tag: "tx" (client to server), "rx" (server to client) or
    None (general-block-transfer, general ciphering and signing go both ways)."""
    if tag in _FROM_CLIENT:
        return "tx"
    if tag in _FROM_SERVER:
        return "rx"
    name = CIPHER_TAGS.get(tag, "").lower()
    if not name or name.startswith("general"):
        return None
    if "response" in name or "error" in name or "notification" in name or "report" in name:
        return "rx"
    return "tx" if "request" in name else None
