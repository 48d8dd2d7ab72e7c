"""BER (X.690) pieces the ACSE APDUs need: one TLV with a checked length, and OIDs.

ACSE APDUs (AARQ, AARE, RLRQ, RLRE; IEC 62056-53 / Green Book 9.4.2) are BER: one-byte
tags here, definite lengths. Every length is checked against the bytes present and a
wrong one becomes an ``apdu.ber.length`` finding with the length that would fit.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from dlmsdoctor.codec.axdr import DecodeContext, clamp, encode_length
from dlmsdoctor.codec.model import hexs

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
            "apdu.ber.length", pos + 1, 1, field,
            f"{field}: indefinite length (0x80) is not allowed",
            expected=str(end - pos - 2), found="indefinite",
            corrected=hexs(encode_length(end - pos - 2)),
        )
        return Tlv(tag, pos, pos + 1, 1, pos + 2, end)
    else:
        count = first & 0x7F
        if count > 4 or not ctx.need(pos + 2, end, count, field + " length"):
            if count > 4:
                ctx.finding(
                    "apdu.ber.length", pos + 1, 1, field,
                    f"{field}: {count} length bytes is not plausible",
                    found=f"{first:02X}", expected=str(end - pos - 2),
                    corrected=hexs(encode_length(end - pos - 2)),
                )
            return None
        declared = int.from_bytes(buf[pos + 2 : pos + 2 + count], "big")
        lsize = 1 + count
    vstart = pos + 1 + lsize
    vend = clamp(ctx, pos + 1, lsize, vstart, declared, end, field, code="apdu.ber.length")
    return Tlv(tag, pos, pos + 1, lsize, vstart, vend)


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

# Associate-source-diagnostic, acse-service-provider [2].
ACSE_PROVIDER_DIAGNOSTICS: dict[int, str] = {
    0: "null",
    1: "no-reason-given",
    2: "no-common-acse-version",
}

RLRQ_REASONS: dict[int, str] = {0: "normal", 1: "urgent", 30: "user-defined"}
RLRE_REASONS: dict[int, str] = {0: "normal", 1: "not-finished", 30: "user-defined"}
