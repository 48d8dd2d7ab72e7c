"""xDLMS InitiateRequest/InitiateResponse/ConfirmedServiceError (Green Book 9.5), as carried
in the AARQ/AARE user-information, and the conformance block.
"""

from __future__ import annotations

from functools import lru_cache

from dlmsdoctor.codec.apdu_common import finish
from dlmsdoctor.codec.axdr import (
    DecodeContext,
    Fields,
    read_octets,
    read_uint,
)
from dlmsdoctor.codec.model import Severity, Span, hexs
from dlmsdoctor.codec.obis import (
    CONFIRMED_SERVICE_ERRORS,
    CONFORMANCE_BITS,
    SERVICE_ERROR_KINDS,
    SERVICE_ERROR_VALUES,
)


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


def initiate_request(
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
    return finish(ctx, pos, cur, end, name, "InitiateRequest", spans, summary)


def initiate_response(
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
    return finish(ctx, pos, cur, end, name, "InitiateResponse", spans, summary)


def confirmed_service_error(
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
    return finish(ctx, pos, cur, end, name, "ConfirmedServiceError", spans, summary)
