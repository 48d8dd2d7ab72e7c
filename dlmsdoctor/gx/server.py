"""Server-side APDUs for the simulated meter: decode requests, encode replies and COSEM values.

Why not gurux-dlms's own ``GXDLMSServer``: in 1.0.203 its SNRM, GET, release and block-transfer
paths crash or misbehave (see docs/simulator.md). The simulator drives link and association state
itself and uses gurux-dlms only where it is sound, each use pinned by tests/sim/test_gx_server.py:

- COSEM value encoding: ``_GXCommon.setData`` for every scalar type (A-XDR, IEC 62056-6-2 9.5);
  arrays and structures are walked here so that each element keeps its declared type.
- AARE for no authentication and LLS: ``_GXAPDU.generateAARE`` (its HLS branch is broken: it calls
  ``setUInt8()`` without a value when a system title is present, so HLS AAREs are built here).

Incoming APDUs are decoded by a small BER/A-XDR walk of our own: gurux's ``parsePDU`` raises on
bad bytes and mutates a settings object, while a meter must answer whatever it is sent.
No ``GX*`` object leaves this module: callers see bytes, ints and ``CosemData``.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass, field

from dlmsdoctor.codec.ber import definite_length

# The xDLMS tags this module reads or writes (IEC 62056-5-3 / DLMS UA Green Book 9.5).
TAG_AARQ = 0x60
TAG_AARE = 0x61
TAG_RLRQ = 0x62
TAG_RLRE = 0x63
TAG_GET_REQUEST = 0xC0
TAG_SET_REQUEST = 0xC1
TAG_ACTION_REQUEST = 0xC3
TAG_GET_RESPONSE = 0xC4
TAG_ACTION_RESPONSE = 0xC7
TAG_EXCEPTION_RESPONSE = 0xD8
TAG_CONFIRMED_SERVICE_ERROR = 0x0E

# Conformance bits the simulated meter can serve (Green Book 9.4.6.1, bit 0 = MSB of 24).
CONFORMANCE_GET = 0x000010
CONFORMANCE_BLOCK_TRANSFER_WITH_GET = 0x001000
CONFORMANCE_ACTION = 0x000001
CONFORMANCE_SELECTIVE_ACCESS = 0x000004
SERVER_CONFORMANCE = CONFORMANCE_GET | CONFORMANCE_BLOCK_TRANSFER_WITH_GET | CONFORMANCE_ACTION


class DataAccessResult(enum.IntEnum):
    """Get/Set result codes (Green Book 9.5, Data-Access-Result)."""

    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_GET_ABORTED = 15
    NO_LONG_GET_IN_PROGRESS = 16
    OTHER_REASON = 250


class AcseResult(enum.IntEnum):
    ACCEPTED = 0
    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class AcseUserDiagnostic(enum.IntEnum):
    """acse-service-user result-source-diagnostic values (IEC 62056-5-3, AARE)."""

    NULL = 0
    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    CALLING_AP_TITLE_NOT_RECOGNIZED = 3
    AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED = 11
    AUTHENTICATION_MECHANISM_NAME_REQUIRED = 12
    AUTHENTICATION_FAILURE = 13
    AUTHENTICATION_REQUIRED = 14


# ---------------------------------------------------------------------------------------------
# COSEM values
# ---------------------------------------------------------------------------------------------

# type name -> A-XDR tag (Green Book 9.5, Table "Data types")
DATA_TAGS: dict[str, int] = {
    "null": 0,
    "array": 1,
    "structure": 2,
    "boolean": 3,
    "bit-string": 4,
    "double-long": 5,
    "double-long-unsigned": 6,
    "octet-string": 9,
    "visible-string": 10,
    "utf8-string": 12,
    "integer": 15,
    "long": 16,
    "unsigned": 17,
    "long-unsigned": 18,
    "long64": 20,
    "long64-unsigned": 21,
    "enum": 22,
    "float32": 23,
    "float64": 24,
}


@dataclass(frozen=True, slots=True)
class CosemData:
    """A typed COSEM value: ``kind`` is a DATA_TAGS name, ``value`` its Python value.

    Containers hold a tuple of ``CosemData``; bit-strings a string of "0"/"1"; octet-strings
    bytes; visible/utf8 strings str; numbers int or float; null None.
    """

    kind: str
    value: object = None

    def __post_init__(self) -> None:
        if self.kind not in DATA_TAGS:
            raise ValueError(f"unknown COSEM data type {self.kind!r}")


def structure(*items: CosemData) -> CosemData:
    return CosemData("structure", tuple(items))


def array(*items: CosemData) -> CosemData:
    return CosemData("array", tuple(items))


def encode_data(data: CosemData) -> bytes:
    """A-XDR encoding of a typed value; scalars go through gurux's ``_GXCommon.setData``."""
    from gurux_dlms.GXByteBuffer import GXByteBuffer
    from gurux_dlms.internal._GXCommon import _GXCommon

    buff = GXByteBuffer()
    _encode_into(data, buff, _GXCommon)
    return bytes(buff.array())


def _encode_into(data: CosemData, buff: object, common: object) -> None:
    tag = DATA_TAGS[data.kind]
    if data.kind in ("array", "structure"):
        items = data.value if isinstance(data.value, tuple) else ()
        buff.setUInt8(tag)  # type: ignore[attr-defined]
        common.setObjectCount(len(items), buff)  # type: ignore[attr-defined]
        for item in items:
            _encode_into(item, buff, common)
        return
    value = data.value
    if data.kind == "octet-string" and isinstance(value, bytes | bytearray):
        value = bytes(value)
    common.setData(None, buff, tag, value)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Decoding requests (own walk: never raises)
# ---------------------------------------------------------------------------------------------


def _tlvs(buf: bytes, start: int, end: int) -> list[tuple[int, bytes]] | None:
    out: list[tuple[int, bytes]] = []
    pos = start
    while pos < end:
        tag = buf[pos]
        got = definite_length(buf, pos + 1)
        if got is None:
            return None
        length, pos = got
        if pos + length > end:
            return None
        out.append((tag, buf[pos : pos + length]))
        pos += length
    return out


@dataclass(frozen=True, slots=True)
class AarqInfo:
    """What the meter needs from an AARQ. ``secret`` is the LLS password or the HLS CtoS
    challenge: it is for the authentication check only and never logged."""

    well_formed: bool
    problem: str = ""
    application_context: int | None = None  # last arc: 1 LN, 2 SN, 3 LN ciphered, 4 SN ciphered
    mechanism: int = 0  # 0 none, 1 LLS, 2 HLS, 5 HLS-GMAC ...
    secret: bytes | None = field(default=None, repr=False)
    calling_ap_title: bytes | None = None
    dlms_version: int | None = None
    proposed_conformance: int = 0
    client_max_pdu: int | None = None
    ciphered_initiate: bool = False


_CONTEXT_PREFIX = bytes.fromhex("06 07 60 85 74 05 08 01")
_MECHANISM_PREFIX = bytes.fromhex("60 85 74 05 08 02")


def decode_aarq(apdu: bytes) -> AarqInfo:
    """Walk an AARQ (IEC 62056-5-3 / ISO 8650 as profiled by DLMS). Never raises."""
    if len(apdu) < 2 or apdu[0] != TAG_AARQ:
        return AarqInfo(False, "not an AARQ")
    got = definite_length(apdu, 1)
    if got is None or got[0] + got[1] > len(apdu):
        return AarqInfo(False, "AARQ length runs past the data")
    length, pos = got
    tlvs = _tlvs(apdu, pos, pos + length)
    if tlvs is None:
        return AarqInfo(False, "malformed AARQ component")
    context: int | None = None
    mechanism = 0
    secret: bytes | None = None
    title: bytes | None = None
    version: int | None = None
    conformance = 0
    max_pdu: int | None = None
    ciphered = False
    for tag, body in tlvs:
        if tag == 0xA1 and body.startswith(_CONTEXT_PREFIX) and len(body) == 9:
            context = body[8]
        elif tag == 0x8B and body.startswith(_MECHANISM_PREFIX) and len(body) == 7:
            mechanism = body[6]
        elif tag == 0xAC and len(body) >= 2 and body[0] == 0x80:
            secret = body[2 : 2 + body[1]]
        elif tag == 0xA6 and len(body) >= 2 and body[0] == 0x04:
            title = body[2 : 2 + body[1]]
        elif tag == 0xBE and len(body) >= 2 and body[0] == 0x04:
            initiate = body[2 : 2 + body[1]]
            if initiate[:1] == b"\x01":
                parsed = _initiate_request(initiate)
                if parsed is not None:
                    version, conformance, max_pdu = parsed
            elif initiate[:1] in (b"\x21", b"\xdd"):  # glo-/general-ciphering InitiateRequest
                ciphered = True
    return AarqInfo(
        True,
        "",
        context,
        mechanism,
        secret,
        title,
        version,
        conformance,
        max_pdu,
        ciphered,
    )


def _initiate_request(buf: bytes) -> tuple[int, int, int] | None:
    """InitiateRequest (A-XDR): tag 01, optional dedicated-key, response-allowed, QoS, version,
    conformance [APPLICATION 31] 5F 1F 04 00 xx xx xx, client-max-receive-pdu-size."""
    pos = 1
    try:
        if buf[pos]:  # dedicated-key present
            pos += 2 + buf[pos + 1]
        else:
            pos += 1
        pos += 2 if buf[pos] else 1  # response-allowed (default true)
        pos += 2 if buf[pos] else 1  # proposed-quality-of-service
        version = buf[pos]
        pos += 1
        if buf[pos : pos + 4] != b"\x5f\x1f\x04\x00":
            return None
        conformance = int.from_bytes(buf[pos + 4 : pos + 7], "big")
        max_pdu = int.from_bytes(buf[pos + 7 : pos + 9], "big")
        if pos + 9 > len(buf):
            return None
    except IndexError:
        return None
    return version, conformance, max_pdu


@dataclass(frozen=True, slots=True)
class AttributeRef:
    class_id: int
    obis: bytes
    attribute: int

    @property
    def obis_text(self) -> str:
        o = self.obis
        return f"{o[0]}.{o[1]}.{o[2]}.{o[3]}.{o[4]}.{o[5]}" if len(o) == 6 else o.hex()


@dataclass(frozen=True, slots=True)
class GetRequest:
    """A GET request: ``kind`` 1 normal, 2 next data block, 3 with list (not served)."""

    kind: int
    invoke_id: int
    attribute: AttributeRef | None = None
    has_selective_access: bool = False
    block_number: int | None = None


def decode_get_request(apdu: bytes) -> GetRequest | None:
    """Get-Request (Green Book 9.5): C0 01 invoke cid(2) obis(6) attr(1) access(1) ...
    Never raises."""
    if len(apdu) < 3 or apdu[0] != TAG_GET_REQUEST:
        return None
    kind, invoke = apdu[1], apdu[2]
    if kind == 1 and len(apdu) >= 13:
        ref = AttributeRef(int.from_bytes(apdu[3:5], "big"), apdu[5:11], apdu[11])
        return GetRequest(1, invoke, ref, bool(apdu[12]))
    if kind == 2 and len(apdu) >= 7:
        return GetRequest(2, invoke, block_number=int.from_bytes(apdu[3:7], "big"))
    return GetRequest(kind, invoke)


@dataclass(frozen=True, slots=True)
class ActionRequest:
    invoke_id: int
    class_id: int
    obis: bytes
    method: int
    parameter: bytes | None  # the encoded Data, when present


def decode_action_request(apdu: bytes) -> ActionRequest | None:
    """Action-Request-Normal: C3 01 invoke cid(2) obis(6) method(1) has-param(1) [data]."""
    if len(apdu) < 13 or apdu[0] != TAG_ACTION_REQUEST or apdu[1] != 1:
        return None
    param = apdu[13:] if apdu[12] else None
    return ActionRequest(apdu[2], int.from_bytes(apdu[3:5], "big"), apdu[5:11], apdu[11], param)


def octet_string_value(encoded: bytes) -> bytes | None:
    """The content of an A-XDR octet-string (09 len ..), e.g. an HLS reply parameter."""
    if len(encoded) < 2 or encoded[0] != 0x09:
        return None
    got = definite_length(encoded, 1)
    if got is None or got[1] + got[0] > len(encoded):
        return None
    return encoded[got[1] : got[1] + got[0]]


# ---------------------------------------------------------------------------------------------
# Encoding replies
# ---------------------------------------------------------------------------------------------


def build_aare(
    *,
    result: AcseResult,
    diagnostic: AcseUserDiagnostic,
    logical_name_referencing: bool,
    mechanism: int,
    negotiated_conformance: int,
    server_max_pdu: int,
    server_system_title: bytes | None = None,
    stoc_challenge: bytes | None = None,
) -> bytes:
    """AARE for the association outcome.

    No authentication and LLS: gurux's ``generateAARE``. HLS (mechanism >= 2): built here in the
    same layout, because gurux's HLS branch is broken (see module docstring).
    """
    if mechanism < 2:
        return _gurux_aare(
            result, diagnostic, logical_name_referencing, mechanism, negotiated_conformance,
            server_max_pdu,
        )
    body = bytearray()
    context = 1 if logical_name_referencing else 2
    body += bytes([0xA1, 0x09]) + _CONTEXT_PREFIX + bytes([context])
    body += bytes([0xA2, 0x03, 0x02, 0x01, int(result)])
    body += bytes([0xA3, 0x05, 0xA1, 0x03, 0x02, 0x01, int(diagnostic)])
    if server_system_title is not None:
        title = server_system_title
        body += bytes([0xA4, len(title) + 2, 0x04, len(title)]) + title
    body += bytes([0x88, 0x02, 0x07, 0x80])  # responder-acse-requirements: authentication
    body += bytes([0x89, 0x07]) + _MECHANISM_PREFIX + bytes([mechanism])
    if stoc_challenge is not None:
        body += bytes([0xAA, len(stoc_challenge) + 2, 0x80, len(stoc_challenge)])
        body += stoc_challenge
    initiate = initiate_response(negotiated_conformance, server_max_pdu, logical_name_referencing)
    body += bytes([0xBE, len(initiate) + 2, 0x04, len(initiate)]) + initiate
    return bytes([TAG_AARE, len(body)]) + bytes(body)


def _gurux_aare(
    result: AcseResult,
    diagnostic: AcseUserDiagnostic,
    logical_name_referencing: bool,
    mechanism: int,
    negotiated_conformance: int,
    server_max_pdu: int,
) -> bytes:
    from gurux_dlms._GXAPDU import _GXAPDU
    from gurux_dlms.GXByteBuffer import GXByteBuffer
    from gurux_dlms.GXDLMSSettings import GXDLMSSettings

    settings = GXDLMSSettings(True, None)
    settings.setUseLogicalNameReferencing(logical_name_referencing)
    settings.authentication = mechanism
    # gurux numbers conformance bits LSB-first (its bit n is wire bit 23 - n).
    settings.negotiatedConformance = _reverse_bits24(negotiated_conformance)
    settings.maxPduSize = server_max_pdu
    out = GXByteBuffer()
    _GXAPDU.generateAARE(settings, out, int(result), int(diagnostic), None, None, None)
    return bytes(out.array())


def warm_up() -> None:
    """Import the gurux modules an AARE and a GET answer need, ahead of the first request: a
    simulated meter must not answer its first login late because an import took a second on
    a loaded machine (time is evidence: the probe would rightly call that meter slow)."""
    from gurux_dlms._GXAPDU import _GXAPDU  # noqa: F401
    from gurux_dlms.GXByteBuffer import GXByteBuffer  # noqa: F401
    from gurux_dlms.GXDLMSSettings import GXDLMSSettings  # noqa: F401
    from gurux_dlms.internal._GXCommon import _GXCommon  # noqa: F401


def _reverse_bits24(value: int) -> int:
    return int(f"{value & 0xFFFFFF:024b}"[::-1], 2)


def initiate_response(
    conformance: int, server_max_pdu: int, logical_name_referencing: bool
) -> bytes:
    """InitiateResponse: 08, no QoS, DLMS version 6, conformance, max PDU, VAA name."""
    vaa = 0x0007 if logical_name_referencing else 0xFA00
    return (
        bytes([0x08, 0x00, 0x06, 0x5F, 0x1F, 0x04, 0x00])
        + conformance.to_bytes(3, "big")
        + server_max_pdu.to_bytes(2, "big")
        + vaa.to_bytes(2, "big")
    )


def build_rlre(reason: int = 0) -> bytes:
    """RLRE with release-response-reason (0 normal)."""
    return bytes([TAG_RLRE, 0x03, 0x80, 0x01, reason])


def build_get_response_normal(invoke_id: int, value: bytes | DataAccessResult) -> bytes:
    """Get-Response-Normal: C4 01 invoke, then 00 + data or 01 + Data-Access-Result."""
    head = bytes([TAG_GET_RESPONSE, 0x01, invoke_id])
    if isinstance(value, DataAccessResult):
        return head + bytes([0x01, int(value)])
    return head + b"\x00" + value


def build_get_response_block(
    invoke_id: int, block_number: int, last: bool, raw: bytes | DataAccessResult
) -> bytes:
    """Get-Response-With-Datablock: C4 02 invoke last-block block-number(4) result."""
    head = bytes([TAG_GET_RESPONSE, 0x02, invoke_id, 1 if last else 0])
    head += block_number.to_bytes(4, "big")
    if isinstance(raw, DataAccessResult):
        return head + bytes([0x01, int(raw)])
    length = _ber_len_bytes(len(raw))
    return head + b"\x00" + length + raw


def _ber_len_bytes(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82]) + n.to_bytes(2, "big")


def build_action_response(invoke_id: int, result: int, data: bytes | None = None) -> bytes:
    """Action-Response-Normal: C7 01 invoke result [01 00 data] (return parameters)."""
    out = bytes([TAG_ACTION_RESPONSE, 0x01, invoke_id, result])
    if data is None:
        return out + b"\x00"
    return out + b"\x01\x00" + data


def build_exception_response(state_error: int = 1, service_error: int = 2) -> bytes:
    """ExceptionResponse D8: state-error (1 service-not-allowed, 2 service-unknown) and
    service-error (1 operation-not-possible, 2 service-not-supported, 3 other-reason)."""
    return bytes([TAG_EXCEPTION_RESPONSE, state_error, service_error])


def build_confirmed_service_error_initiate(error: int) -> bytes:
    """ConfirmedServiceError for an InitiateRequest: 0E 01 06(initiate) error
    (1 dlms-version-too-low, 2 incompatible-conformance, 3 pdu-size-too-short)."""
    return bytes([TAG_CONFIRMED_SERVICE_ERROR, 0x01, 0x06, error])


# ---------------------------------------------------------------------------------------------
# HLS-GMAC (Green Book 9.2.7.4, security suite 0: AES-GCM-128)
# ---------------------------------------------------------------------------------------------


def gmac_tag(
    system_title: bytes,
    invocation_counter: int,
    authentication_key: bytes,
    block_cipher_key: bytes,
    challenge: bytes,
) -> bytes:
    """The 12-byte GMAC of ``SC || AK || challenge`` with IV = system title || IC (SC = 0x10),
    computed by gurux's AES-GCM the way its own ``GXSecure.secure`` does for HIGH_GMAC."""
    from gurux_dlms.AesGcmParameter import AesGcmParameter
    from gurux_dlms.CountType import CountType
    from gurux_dlms.enums import Security
    from gurux_dlms.GXDLMSChippering import GXDLMSChippering

    param = AesGcmParameter(0, bytes(system_title), bytes(block_cipher_key),
                            bytes(authentication_key))
    param.security = Security.AUTHENTICATION
    param.securitySuite = 0
    param.invocationCounter = invocation_counter
    param.type_ = CountType.TAG
    return bytes(GXDLMSChippering.encryptAesGcm(param, bytes(challenge)))


def hls_gmac_reply(
    system_title: bytes,
    invocation_counter: int,
    authentication_key: bytes,
    block_cipher_key: bytes,
    challenge: bytes,
) -> bytes:
    """f(challenge) as sent in reply_to_HLS_authentication: SC || IC || GMAC."""
    tag = gmac_tag(
        system_title, invocation_counter, authentication_key, block_cipher_key, challenge
    )
    return b"\x10" + invocation_counter.to_bytes(4, "big") + tag


def verify_hls_gmac(
    reply: bytes,
    client_system_title: bytes,
    authentication_key: bytes,
    block_cipher_key: bytes,
    stoc_challenge: bytes,
) -> bool:
    """Check the client's f(StoC) = SC || IC || GMAC(SC || AK || StoC)."""
    if len(reply) != 17 or reply[0] != 0x10:
        return False
    counter = int.from_bytes(reply[1:5], "big")
    expected = hls_gmac_reply(
        client_system_title, counter, authentication_key, block_cipher_key, stoc_challenge
    )
    return hmac.compare_digest(expected, reply)
