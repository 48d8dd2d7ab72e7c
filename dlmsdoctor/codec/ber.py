"""BER (X.690) and the ACSE APDUs: AARQ, AARE, RLRQ, RLRE, walked with offsets.

ACSE APDUs (AARQ, AARE, RLRQ, RLRE; IEC 62056-53 / Green Book 9.4.2) are BER: one-byte
tags here, definite lengths. Every length is checked against the bytes present and a
wrong one becomes an ``apdu.ber.length`` finding with the length that would fit.

Finding codes: ``apdu.ber.length``, ``apdu.ber.unexpected`` (element not defined for this
APDU), ``apdu.ber.order`` (elements out of SEQUENCE order or repeated), ``apdu.aare.rejected``.
Secrets: the calling/responding authentication value is a secret span; in an AARQ damaged
before its authentication value, the elements that follow are masked too (a wrong length can
make the password look like another element), unless the caller asked for secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

from dlmsdoctor.codec.axdr import DecodeContext, Fields, clamp, encode_length, is_text
from dlmsdoctor.codec.model import Severity, Span, hexs

# Decodes the xDLMS APDU inside user-information: (span, next position, summary).
XdlmsDecoder = Callable[[DecodeContext, int, int, Fields, str], tuple[Span, int, str]]

# 2.16.756.5.8 = {joint-iso-ccitt(2) country(16) country-name(756) identified-organization(5)
# DLMS-UA(8)}; then 1 = application context, 2 = authentication mechanism.
DLMS_UA_OID_PREFIX = bytes((0x60, 0x85, 0x74, 0x05, 0x08))

CONTEXT_NAMES: dict[int, str] = {
    1: "LN",
    2: "SN",
    3: "LN ciphered",
    4: "SN ciphered",
}

MECHANISM_NAMES: dict[int, str] = {
    0: "none",
    1: "LLS",
    2: "HLS",
    3: "HLS-MD5",
    4: "HLS-SHA1",
    5: "HLS-GMAC",
    6: "HLS-SHA256",
    7: "HLS-ECDSA",
}


class Tlv(NamedTuple):
    tag: int
    start: int  # position of the tag byte
    len_pos: int
    len_size: int
    value_start: int
    value_end: int  # clamped to the bytes present
    overrun: bool = False  # the declared length ran past the bytes present


def read_tlv(ctx: DecodeContext, pos: int, end: int, field: str) -> Tlv | None:
    """The BER element at ``pos`` (one-byte tag). None when not even its length can be read."""
    buf = ctx.buf
    if not ctx.need(pos, end, 2, field):
        return None
    tag = buf[pos]
    first = buf[pos + 1]
    if first < 0x80:
        declared, lsize = first, 1
    elif first == 0x80:
        # Indefinite length is not allowed in DLMS (Green Book: definite form only).
        ctx.finding(
            "apdu.ber.length",
            pos + 1,
            1,
            field,
            f"{field}: indefinite length (0x80) is not allowed",
            expected=str(end - pos - 2),
            found="indefinite",
            corrected=hexs(encode_length(end - pos - 2)),
        )
        return Tlv(tag, pos, pos + 1, 1, pos + 2, end)
    else:
        count = first & 0x7F
        if count > 4 or not ctx.need(pos + 2, end, count, field + " length"):
            if count > 4:
                ctx.finding(
                    "apdu.ber.length",
                    pos + 1,
                    1,
                    field,
                    f"{field}: {count} length bytes is not plausible",
                    found=f"{first:02X}",
                    expected=str(end - pos - 2),
                    corrected=hexs(encode_length(end - pos - 2)),
                )
            return None
        declared = int.from_bytes(buf[pos + 2 : pos + 2 + count], "big")
        lsize = 1 + count
    vstart = pos + 1 + lsize
    vend = clamp(ctx, pos + 1, lsize, vstart, declared, end, field, code="apdu.ber.length")
    return Tlv(tag, pos, pos + 1, lsize, vstart, vend, vstart + declared > end)


def definite_length(buf: bytes, pos: int) -> tuple[int, int] | None:
    """BER definite length at ``pos``: (length, position after it); None when it is indefinite,
    takes more than 3 bytes (no DLMS APDU needs them) or runs past ``buf``.

    For callers that walk trusted layouts without a ``DecodeContext`` (the simulated meter's
    request reader): no findings, just the value or None.
    """
    if pos >= len(buf):
        return None
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 3 or pos + 1 + count > len(buf):
        return None
    return int.from_bytes(buf[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


@lru_cache(maxsize=64)  # the same few DLMS UA OIDs recur in every association
def decode_oid(data: bytes) -> str:
    """Dotted OID text (never raises; an unterminated last arc is dropped)."""
    subids: list[int] = []
    value = 0
    for b in data:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            subids.append(value)
            value = 0
    if not subids:
        return ""
    first = subids[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + subids[1:])


def dlms_oid(data: bytes) -> tuple[int, int] | None:
    """(kind, id) for a DLMS UA OID ``2.16.756.5.8.kind.id``, else None."""
    if len(data) == 7 and data[:5] == DLMS_UA_OID_PREFIX:
        return data[5], data[6]
    return None


def flag_id(system_title: bytes) -> str:
    """The 3-letter FLAG manufacturer id in a system title's first 3 bytes ('' if not letters)."""
    head = system_title[:3]
    if len(head) == 3 and head.isascii() and head.decode("ascii").isalpha():
        return head.decode("ascii")
    return ""


# AARE result (IEC 62056-53 / Green Book 9.4.2: Association-result).
AARE_RESULTS: dict[int, str] = {
    0: "accepted",
    1: "rejected-permanent",
    2: "rejected-transient",
}

# Associate-source-diagnostic, acse-service-user [1].
ACSE_USER_DIAGNOSTICS: dict[int, str] = {
    0: "null",
    1: "no-reason-given",
    2: "application-context-name-not-supported",
    3: "calling-AP-title-not-recognized",
    4: "calling-AP-invocation-identifier-not-recognized",
    5: "calling-AE-qualifier-not-recognized",
    6: "calling-AE-invocation-identifier-not-recognized",
    7: "called-AP-title-not-recognized",
    8: "called-AP-invocation-identifier-not-recognized",
    9: "called-AE-qualifier-not-recognized",
    10: "called-AE-invocation-identifier-not-recognized",
    11: "authentication-mechanism-name-not-recognised",
    12: "authentication-mechanism-name-required",
    13: "authentication-failure",
    14: "authentication-required",
}

# The acse-service-user diagnostics a technician meets, in plain words (DLMS UA Green Book
# 9.4.2.2.3): what a probe says to a live run and a capture's rungs say alike.
ACSE_USER_DIAGNOSTIC_TEXT: dict[int, str] = {
    1: "no reason given",
    2: "application context not supported: LN/SN referencing, or a ciphered context required",
    3: "calling AP-title not recognised (system title)",
    11: "authentication mechanism not recognised for this client",
    12: "authentication mechanism required: this client SAP needs a password or keys",
    13: "authentication failure: wrong password, or the wrong client SAP for this password",
    14: "authentication required",
}

# Associate-source-diagnostic, acse-service-provider [2].
ACSE_PROVIDER_DIAGNOSTICS: dict[int, str] = {
    0: "null",
    1: "no-reason-given",
    2: "no-common-acse-version",
}

RLRQ_REASONS: dict[int, str] = {0: "normal", 1: "urgent", 30: "user-defined"}
RLRE_REASONS: dict[int, str] = {0: "normal", 1: "not-finished", 30: "user-defined"}


# ---------------------------------------------------------------- ACSE APDUs

ACSE_TYPES = {0x60: "AARQ", 0x61: "AARE", 0x62: "RLRQ", 0x63: "RLRE"}

# (apdu, tag) -> (span name, label). Tags are context-specific, so they mean different
# things in AARQ and AARE (IEC 62056-53 / Green Book 9.4.2, ACSE-APDU ASN.1).
_ACSE_ELEMENTS: dict[tuple[int, int], tuple[str, str]] = {
    (0x60, 0x80): ("protocol_version", "Protocol version"),
    (0x60, 0xA1): ("application_context_name", "Application context name"),
    (0x60, 0xA2): ("called_ap_title", "Called AP title"),
    (0x60, 0xA3): ("called_ae_qualifier", "Called AE qualifier"),
    (0x60, 0xA4): ("called_ap_invocation_id", "Called AP invocation id"),
    (0x60, 0xA5): ("called_ae_invocation_id", "Called AE invocation id"),
    (0x60, 0xA6): ("calling_ap_title", "Calling AP title"),
    (0x60, 0xA7): ("calling_ae_qualifier", "Calling AE qualifier"),
    (0x60, 0xA8): ("calling_ap_invocation_id", "Calling AP invocation id"),
    (0x60, 0xA9): ("calling_ae_invocation_id", "Calling AE invocation id"),
    (0x60, 0x8A): ("sender_acse_requirements", "Sender ACSE requirements"),
    (0x60, 0x8B): ("mechanism_name", "Mechanism name"),
    (0x60, 0xAC): ("calling_authentication_value", "Calling authentication value"),
    (0x60, 0xBD): ("implementation_information", "Implementation information"),
    (0x60, 0xBE): ("user_information", "User information"),
    (0x61, 0x80): ("protocol_version", "Protocol version"),
    (0x61, 0xA1): ("application_context_name", "Application context name"),
    (0x61, 0xA2): ("result", "Result"),
    (0x61, 0xA3): ("result_source_diagnostic", "Result source diagnostic"),
    (0x61, 0xA4): ("responding_ap_title", "Responding AP title"),
    (0x61, 0xA5): ("responding_ae_qualifier", "Responding AE qualifier"),
    (0x61, 0xA6): ("responding_ap_invocation_id", "Responding AP invocation id"),
    (0x61, 0xA7): ("responding_ae_invocation_id", "Responding AE invocation id"),
    (0x61, 0x88): ("responder_acse_requirements", "Responder ACSE requirements"),
    (0x61, 0x89): ("mechanism_name", "Mechanism name"),
    (0x61, 0xAA): ("responding_authentication_value", "Responding authentication value"),
    (0x61, 0xBD): ("implementation_information", "Implementation information"),
    (0x61, 0xBE): ("user_information", "User information"),
    (0x62, 0x80): ("reason", "Release request reason"),
    (0x62, 0xBE): ("user_information", "User information"),
    (0x63, 0x80): ("reason", "Release response reason"),
    (0x63, 0xBE): ("user_information", "User information"),
}


def decode_acse(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str, xdlms: XdlmsDecoder
) -> tuple[Span, int, str]:
    """AARQ/AARE/RLRQ/RLRE at ``pos``; ``xdlms`` decodes what user-information carries."""
    apdu_tag = ctx.buf[pos]
    kind = ACSE_TYPES[apdu_tag]
    if apdu_tag in (0x60, 0x61):
        ctx.mask_raw = True
    fields["apdu_type"] = kind
    name = f"{name}.{kind.lower()}"
    tlv = read_tlv(ctx, pos, end, kind)
    if tlv is None:
        return ctx.raw(pos, end, name, kind, "truncated"), end, f"{kind} (truncated)"
    children: list[Span] = []
    cur = tlv.value_start
    errors_before = ctx.errors
    last_number = -1
    damaged = password_seen = False
    guard_password = apdu_tag == 0x60 and not ctx.show_secrets
    while cur < tlv.value_end:
        el = read_tlv(ctx, cur, tlv.value_end, f"{kind} element")
        if el is None:
            children.append(ctx.raw(cur, tlv.value_end, name + ".rest", "Undecoded bytes"))
            break
        number = el.tag & 0x1F
        if number <= last_number:
            # ACSE APDUs are SEQUENCEs: elements come in tag order, once each.
            ctx.finding(
                "apdu.ber.order",
                cur,
                1,
                kind,
                f"{kind}: element [{number}] after [{last_number}]",
                severity=Severity.WARNING,
                found=f"{el.tag:02X}",
            )
            damaged = True
        last_number = max(last_number, number)
        known = _ACSE_ELEMENTS.get((apdu_tag, el.tag))
        errors_now = ctx.errors
        damaged = damaged or known is None or errors_now > errors_before
        if damaged and guard_password and not password_seen:
            # Once an AARQ is damaged before its authentication value, what follows may be
            # the password seen through a wrong length: masked unless secrets were asked for.
            if known is None:
                _unexpected(ctx, el, kind)
            children.append(
                ctx.span(
                    el.start,
                    el.value_end - el.start,
                    f"{name}.masked",
                    "Masked element",
                    None,
                    "",
                    secret=True,
                )
            )
        elif known is None:
            _unexpected(ctx, el, kind)
            children.append(
                ctx.raw(
                    cur, el.value_end, f"{name}.element_{el.tag:02x}", f"Element [0x{el.tag:02X}]"
                )
            )
        else:
            ename, label = known
            children.append(_acse_element(ctx, el, fields, f"{name}.{ename}", ename, label, xdlms))
            # A cleanly read authentication value has taken the password's bytes: damage
            # after it cannot show them.
            password_seen = password_seen or (el.tag == 0xAC and ctx.errors == errors_now)
        cur = el.value_end
    summary = _acse_summary(kind, fields)
    if kind == "AARE" and fields.get("result") not in (None, 0):
        ctx.finding(
            "apdu.aare.rejected",
            pos,
            tlv.value_end - pos,
            "result",
            summary,
            severity=Severity.WARNING,
            found=f"{fields.get('result_name')}/{fields.get('diagnostic_name')}",
        )
    span = ctx.span(pos, tlv.value_end - pos, name, kind, None, summary, tuple(children))
    return span, tlv.value_end, summary


def _unexpected(ctx: DecodeContext, el: Tlv, kind: str) -> None:
    ctx.finding(
        "apdu.ber.unexpected",
        el.start,
        1,
        kind,
        f"{kind}: element tag 0x{el.tag:02X} not expected here",
        severity=Severity.WARNING,
        found=f"{el.tag:02X}",
    )


def _inner(ctx: DecodeContext, el: Tlv, label: str) -> Tlv | None:
    """The single BER element inside an explicitly tagged one."""
    if el.value_start >= el.value_end:
        ctx.need(el.value_start, el.value_end, 2, label)
        return None
    return read_tlv(ctx, el.value_start, el.value_end, label)


def _acse_element(
    ctx: DecodeContext,
    el: Tlv,
    fields: Fields,
    name: str,
    key: str,
    label: str,
    xdlms: XdlmsDecoder,
) -> Span:
    buf = ctx.buf
    content = buf[el.value_start : el.value_end]
    length = el.value_end - el.start
    value: object = None
    meaning = ""
    generic = False
    children: tuple[Span, ...] = ()
    if key == "protocol_version":
        value = content[1:].hex().upper() if content else ""
        meaning = "version1" if content[1:2] and content[1] & 0x80 else f"bits {hexs(content)}"
    elif key in ("sender_acse_requirements", "responder_acse_requirements"):
        on = bool(content[1:2] and content[1] & 0x80)
        value, meaning = on, "authentication" if on else "none"
    elif key == "mechanism_name":
        value, meaning = _mechanism(content, fields)
    elif key == "application_context_name":
        inner = _inner(ctx, el, label)
        if inner is not None:
            oid = buf[inner.value_start : inner.value_end]
            value, meaning = _context(oid, fields)
    elif key in ("calling_ap_title", "called_ap_title", "responding_ap_title"):
        inner = _inner(ctx, el, label)
        if inner is not None:
            title = buf[inner.value_start : inner.value_end]
            flag = flag_id(title)
            value = title.hex().upper()
            meaning = f"system title {hexs(title)}" + (f", manufacturer {flag}" if flag else "")
            if key == "calling_ap_title":
                fields["client_system_title"] = value
            elif key == "responding_ap_title":
                fields["server_system_title"] = value
            if flag:
                fields["server_flag_id" if key == "responding_ap_title" else "client_flag_id"] = (
                    flag
                )
    elif key in ("calling_authentication_value", "responding_authentication_value"):
        return _auth_value(ctx, el, fields, name, key, label)
    elif key == "result":
        inner = _inner(ctx, el, label)
        if inner is not None:
            result = int.from_bytes(buf[inner.value_start : inner.value_end], "big")
            fields["result"] = result
            fields["result_name"] = AARE_RESULTS.get(result, f"unknown ({result})")
            value, meaning = result, str(fields["result_name"])
    elif key == "result_source_diagnostic":
        inner = _inner(ctx, el, label)
        if inner is not None:
            value, meaning = _diagnostic(ctx, inner, fields)
    elif key == "reason":
        reason = int.from_bytes(content, "big") if content else None
        names = RLRQ_REASONS if "request" in label else RLRE_REASONS
        fields["reason"] = None if reason is None else names.get(reason, f"unknown ({reason})")
        value, meaning = reason, str(fields["reason"])
    elif key == "user_information":
        return _user_information(ctx, el, fields, name, label, xdlms)
    elif key.endswith("invocation_id"):
        inner = _inner(ctx, el, label)
        if inner is not None:
            value = int.from_bytes(buf[inner.value_start : inner.value_end], "big")
            meaning = str(value)
    else:
        value, meaning = bytes(content), hexs(content) if len(content) <= 16 else ""
        generic = True
    # An element whose length overran may have swallowed the authentication value after it;
    # in an AARQ the rarely used elements shown as bytes (AE qualifiers, implementation
    # information) may be a damaged authentication value, so their bytes are masked too.
    secret = ctx.mask_raw and (el.overrun or (generic and ctx.buf[0] == 0x60))
    return ctx.span(el.start, length, name, label, value, meaning, children, secret)


def _dlms_arc_name(
    oid: bytes, fields: Fields, arc: int, names: dict[int, str], key: str
) -> tuple[int, str] | None:
    """(id, name) of a DLMS UA OID under ``arc`` (1 application context, 2 mechanism), kept in
    ``fields[key]`` and ``fields[key + "_id"]``; otherwise None, with the dotted OID kept."""
    got = dlms_oid(oid)
    if got is None or got[0] != arc:
        fields[key] = decode_oid(oid)
        return None
    name = names.get(got[1], f"{key} {got[1]}")
    fields[key] = name
    fields[key + "_id"] = got[1]
    return got[1], name


def _mechanism(oid: bytes, fields: Fields) -> tuple[object, str]:
    named = _dlms_arc_name(oid, fields, 2, MECHANISM_NAMES, "mechanism")
    if named is None:
        return decode_oid(oid), "not a DLMS UA mechanism"
    return named[0], f"{named[1]} ({decode_oid(oid)})"


def _context(oid: bytes, fields: Fields) -> tuple[object, str]:
    named = _dlms_arc_name(oid, fields, 1, CONTEXT_NAMES, "context")
    if named is None:
        return decode_oid(oid), "not a DLMS UA application context"
    return named[0], f"{named[1]} referencing ({decode_oid(oid)})"


def _diagnostic(ctx: DecodeContext, inner: Tlv, fields: Fields) -> tuple[object, str]:
    """Associate-source-diagnostic CHOICE: [1] acse-service-user, [2] acse-service-provider."""
    src = (
        "acse-service-user"
        if inner.tag == 0xA1
        else "acse-service-provider"
        if inner.tag == 0xA2
        else f"tag 0x{inner.tag:02X}"
    )
    fields["diagnostic_source"] = src
    value_tlv = read_tlv(ctx, inner.value_start, inner.value_end, "diagnostic")
    if value_tlv is None:
        return None, src
    code = int.from_bytes(ctx.buf[value_tlv.value_start : value_tlv.value_end], "big")
    table = ACSE_USER_DIAGNOSTICS if inner.tag == 0xA1 else ACSE_PROVIDER_DIAGNOSTICS
    dname = table.get(code, f"unknown ({code})")
    fields["diagnostic"] = code
    fields["diagnostic_name"] = dname
    return code, f"{src}: {dname}"


def _auth_value(
    ctx: DecodeContext, el: Tlv, fields: Fields, name: str, key: str, label: str
) -> Span:
    """Authentication-value CHOICE ([0] charstring, [1] bitstring ...): the LLS password or
    an HLS challenge. Marked secret: masked unless the caller asked for secrets."""
    inner = _inner(ctx, el, label)
    children: tuple[Span, ...] = ()
    if inner is not None:
        data = ctx.buf[inner.value_start : inner.value_end]
        fields[key.replace("_value", "_length")] = len(data)
        shown: object = data.decode("latin-1") if is_text(data) else bytes(data)
        meaning = f"{shown!r}" if isinstance(shown, str) else hexs(data)
        children = (
            ctx.span(
                inner.value_start,
                inner.value_end - inner.value_start,
                name + ".value",
                "Value",
                shown,
                meaning,
                secret=True,
            ),
        )
        kind = (
            "charstring"
            if inner.tag == 0x80
            else "bitstring"
            if inner.tag == 0x81
            else f"tag 0x{inner.tag:02X}"
        )
        outer_meaning = f"{kind}, {len(data)} bytes (secret)"
    else:
        outer_meaning = "empty"
    return ctx.span(el.start, el.value_end - el.start, name, label, None, outer_meaning, children)


def _user_information(
    ctx: DecodeContext, el: Tlv, fields: Fields, name: str, label: str, xdlms: XdlmsDecoder
) -> Span:
    """user-information: [30] EXPLICIT Association-information = OCTET STRING (xDLMS APDU)."""
    inner = _inner(ctx, el, label)
    if inner is None:
        return ctx.raw(el.start, el.value_end, name, label, "empty")
    children: list[Span] = []
    if inner.tag != 0x04:
        ctx.finding(
            "apdu.ber.unexpected",
            inner.start,
            1,
            label,
            "user-information should hold an OCTET STRING (04)",
            expected="04",
            found=f"{inner.tag:02X}",
            severity=Severity.WARNING,
        )
    if inner.value_start < inner.value_end:
        span, stop, meaning = xdlms(
            ctx, inner.value_start, inner.value_end, fields, name + ".xdlms"
        )
        children.append(span)
        if stop < inner.value_end:
            children.append(ctx.raw(stop, inner.value_end, name + ".extra", "Extra bytes"))
    else:
        meaning = "empty"
    return ctx.span(el.start, el.value_end - el.start, name, label, None, meaning, tuple(children))


def _acse_summary(kind: str, f: Fields) -> str:
    parts = [kind]
    if kind in ("AARQ", "AARE") and "context" in f:
        parts.append(str(f["context"]))
    if kind == "AARQ":
        parts.append(str(f.get("mechanism", "no authentication")))
        if "client_system_title" in f:
            parts.append(f"client ST {f['client_system_title']}")
    if kind == "AARE":
        result = str(f.get("result_name", "no result"))
        if f.get("diagnostic"):
            result += f" ({f.get('diagnostic_source')}: {f.get('diagnostic_name')})"
        parts.append(result)
        if "mechanism" in f:
            parts.append(str(f["mechanism"]))
        if "server_system_title" in f:
            parts.append(f"server ST {f['server_system_title']}")
    if "initiate_error" in f:
        parts.append(f"initiate error {f['initiate_error']}")
    if f.get("cipher"):
        parts.append(f"user-information {f['cipher']}")
    if f.get("max_pdu_size") is not None:
        parts.append(f"max PDU {f['max_pdu_size']}")
    if kind in ("RLRQ", "RLRE") and "reason" in f:
        parts.append(str(f["reason"]))
    return ", ".join([parts[0] + " " + parts[1], *parts[2:]]) if len(parts) > 1 else kind
