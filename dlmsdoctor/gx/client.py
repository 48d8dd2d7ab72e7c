"""Acting as a DLMS client without letting gurux own the link.

gurux builds and parses APDUs here in its PDU interface mode (``InterfaceType.PDU``,
pinned by tests/gx: no HDLC or wrapper framing is added, so the project's own codec
frames the bytes). Results come back as plain dataclasses; no ``GX*`` object leaves.

- ``GxClient``: one association's state (challenges, system titles, invocation counter,
  block transfer): AARQ, AARE, HLS pass 3/4, GET (with block transfer), RLRQ/RLRE.
- Module functions for the stateless cases: ``build_aarq``, ``parse_aare``,
  ``build_get_request``, ``parse_get_response``, ``build_rlrq``, ``parse_rlre``.

Replies are parsed with dlmsdoctor's own decoder where that is enough (AARE, RLRE), so a
rejected AARE yields a result rather than a gurux exception.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.codec.obis import CONFORMANCE_BITS, DATA_ACCESS_RESULTS

Auth = Literal["none", "low", "gmac"]

# gurux numbers Conformance flags 1 << i for bit i of the standard's BIT STRING.
DEFAULT_CONFORMANCE: tuple[str, ...] = (
    "general-protection",
    "block-transfer-with-get-or-read",
    "block-transfer-with-set-or-write",
    "block-transfer-with-action",
    "multiple-references",
    "access",
    "get",
    "set",
    "selective-access",
    "action",
)


class GxClientError(Exception):
    """A request could not be built or a reply did not make sense to gurux."""


@dataclass(frozen=True, slots=True)
class AareResult:
    """An AARE, read. ``challenge`` is the HLS StoC (a secret: not in repr)."""

    accepted: bool
    result: int | None
    result_name: str
    diagnostic_source: str | None
    diagnostic: int | None
    diagnostic_name: str | None
    initiate_error: str | None
    context: str | None
    mechanism: str | None
    negotiated_conformance: tuple[str, ...]
    max_pdu_size: int | None
    dlms_version: int | None
    server_system_title: bytes | None
    challenge: bytes | None = field(default=None, repr=False)

    @property
    def needs_hls(self) -> bool:
        """Accepted with authentication-required: HLS pass 3/4 must follow."""
        return (
            self.accepted
            and self.diagnostic_source == "acse-service-user"
            and self.diagnostic == 14
        )


@dataclass(frozen=True, slots=True)
class GetResult:
    """A GET-Response: the value (str/int/float/bool/datetime/bytes/list) or an error name."""

    ok: bool
    value: object
    access_error: str | None
    invoke_id: int | None
    more_blocks: bool = False  # a GET-Response-With-Datablock that is not the last one
    block_number: int | None = None


@dataclass(frozen=True, slots=True)
class RlreResult:
    reason: str | None
    accepted: bool


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """gurux prints diagnostics with print(); keep them off our stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def conformance_flags(names: Sequence[str]) -> int:
    """Conformance names (as the codec prints them) to gurux's flag integer."""
    flags = 0
    for name in names:
        try:
            flags |= 1 << CONFORMANCE_BITS.index(name)
        except ValueError:
            raise GxClientError(f"unknown conformance name {name!r}") from None
    return flags


def _obis_text(obis: str | bytes) -> str:
    """Accept ``0.0.42.0.0.255``, ``0-0:42.0.0*255`` or 6 raw bytes; gurux wants dotted."""
    if isinstance(obis, bytes | bytearray):
        if len(obis) != 6:
            raise GxClientError("an OBIS code has 6 bytes")
        return ".".join(str(b) for b in obis)
    parts = obis.replace("-", ".").replace(":", ".").replace("*", ".").split(".")
    if len(parts) != 6 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise GxClientError(f"not an OBIS code: {obis!r}")
    return ".".join(str(int(p)) for p in parts)


def to_python(value: Any) -> object:
    """gurux values to plain Python: GXDateTime -> datetime, GXStructure -> list, ..."""
    from gurux_dlms import GXBitString, GXDateTime

    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, GXDateTime):
        return value.value if isinstance(value.value, datetime) else str(value)
    if isinstance(value, bytearray | bytes):
        data = bytes(value)
        if data and data.isascii() and data.decode("ascii").isprintable():
            return data.decode("ascii")
        return data
    if isinstance(value, GXBitString):
        return str(value)
    if isinstance(value, list | tuple):  # GXStructure and GXArray are lists
        return [to_python(v) for v in value]
    if isinstance(value, int):
        return int(value)
    return str(value)


class GxClient:
    """One client association built on gurux in PDU mode."""

    def __init__(
        self,
        auth: Auth = "none",
        password: bytes | None = None,
        *,
        client_system_title: bytes | None = None,
        block_cipher_key: bytes | None = None,
        authentication_key: bytes | None = None,
        invocation_counter: int = 0,
        max_pdu_size: int = 0xFFFF,
        conformance: Sequence[str] = DEFAULT_CONFORMANCE,
        client_sap: int = 16,
        server_address: int = 1,
        challenge: bytes | None = None,
    ) -> None:
        from gurux_dlms.enums import Authentication, InterfaceType
        from gurux_dlms.secure import GXDLMSSecureClient

        mechanism = {
            "none": Authentication.NONE,
            "low": Authentication.LOW,
            "gmac": Authentication.HIGH_GMAC,
        }.get(auth)
        if mechanism is None:
            raise GxClientError(f"unsupported authentication {auth!r}")
        if auth == "low" and not password:
            raise GxClientError("low-level authentication needs a password")
        if auth == "gmac" and not (client_system_title and authentication_key and block_cipher_key):
            raise GxClientError("HLS-GMAC needs a client system title and both keys")
        self.auth = auth
        gx = GXDLMSSecureClient(
            True,
            client_sap,
            server_address,
            mechanism,
            bytes(password) if password else None,
            InterfaceType.PDU,
        )
        if client_system_title is not None:
            if len(client_system_title) != 8:
                raise GxClientError("a system title has 8 bytes")
            gx.ciphering.systemTitle = bytes(client_system_title)
        if block_cipher_key is not None:
            gx.ciphering.blockCipherKey = bytes(block_cipher_key)
        if authentication_key is not None:
            gx.ciphering.authenticationKey = bytes(authentication_key)
        gx.ciphering.invocationCounter = invocation_counter
        gx.maxReceivePDUSize = max_pdu_size
        gx.proposedConformance = conformance_flags(conformance)
        if challenge is not None:  # a fixed CtoS, for reproducible tests
            gx.settings.useCustomChallenge = True
            gx.settings.ctoSChallenge = bytes(challenge)
        self._gx = gx
        self._reply: Any = None
        self._aare_error: str | None = None

    # -- association

    def build_aarq(self) -> bytes:
        with _quiet():
            frames = self._gx.aarqRequest()
        return _single(frames)

    def parse_aare(self, apdu: bytes) -> AareResult:
        """Read the AARE and, when accepted, give gurux the negotiated state it needs."""
        result = parse_aare(apdu)
        self._aare_error = None
        if result.accepted:
            from gurux_dlms import GXByteBuffer

            try:
                with _quiet():
                    # Updates StoC, server system title, negotiated PDU size in gurux.
                    self._gx.parseAareResponse(GXByteBuffer(bytes(apdu)))
            except Exception as exc:  # our reading stands; HLS pass 3 cannot go on
                self._aare_error = f"gurux could not take the AARE: {exc}"
        return result

    @property
    def hls_pending(self) -> bool:
        """True when the server asked for HLS pass 3 (reply_to_HLS_authentication)."""
        return bool(self._gx.isAuthenticationRequired)

    def build_hls_reply(self) -> bytes:
        """Pass 3: ACTION reply_to_HLS_authentication on 0.0.40.0.0.255 with f(StoC)."""
        if self._aare_error:
            raise GxClientError(self._aare_error)
        try:
            with _quiet():
                frames = self._gx.getApplicationAssociationRequest()
        except Exception as exc:
            raise GxClientError(f"cannot build the HLS reply: {exc}") from exc
        return _single(frames)

    def check_hls_response(self, apdu: bytes) -> bool:
        """Pass 4: True when the meter's f(CtoS) is right (the meter knows our key)."""
        from gurux_dlms import GXReplyData

        reply = GXReplyData()
        try:
            with _quiet():
                self._gx.getData(bytes(apdu), reply)
                self._gx.parseApplicationAssociationResponse(reply.data)
        except Exception:
            return False
        return True

    # -- GET

    def build_get_request(
        self, class_id: int, obis: str | bytes, attribute: int, invoke_id: int | None = None
    ) -> bytes:
        if invoke_id is not None:
            if not 0 <= invoke_id <= 15:
                raise GxClientError("invoke id is 0..15")
            self._gx.settings.setInvokeID(invoke_id)
        self._reply = None
        with _quiet():
            frames = self._gx._read(_obis_text(obis), class_id, attribute)
        return _single(frames)

    def parse_get_response(self, apdu: bytes) -> GetResult:
        from gurux_dlms import GXReplyData
        from gurux_dlms.enums import RequestTypes

        if not apdu or apdu[0] != 0xC4:
            # An exception-response, a ciphered reply or garbage: say what it was.
            self._reply = None
            fields = decode_apdu(apdu).fields
            if fields.get("apdu_type") == "ExceptionResponse":
                what = f"exception: {fields.get('state_error')}, {fields.get('service_error')}"
            else:
                what = f"not a GET response: {fields.get('apdu_type')}"
            return GetResult(False, None, what, None)
        if self._reply is None:
            self._reply = GXReplyData()
        reply = self._reply
        try:
            with _quiet():
                self._gx.getData(bytes(apdu), reply)
        except Exception as exc:
            self._reply = None
            code = getattr(exc, "errorCode", None)
            if isinstance(code, int):
                name = DATA_ACCESS_RESULTS.get(code, f"error {code}")
                return GetResult(False, None, name, _invoke(apdu))
            raise GxClientError(f"gurux could not parse the GET response: {exc}") from exc
        more = bool(reply.moreData & RequestTypes.DATABLOCK)
        if more:
            block = decode_apdu(apdu).fields.get("block_number")
            return GetResult(True, None, None, _invoke(apdu), True, _opt_int(block))
        self._reply = None
        if reply.error:
            name = DATA_ACCESS_RESULTS.get(reply.error, f"error {reply.error}")
            return GetResult(False, None, name, _invoke(apdu))
        return GetResult(True, to_python(reply.value), None, _invoke(apdu))

    def build_get_next(self) -> bytes:
        """GET-Request-Next for the block transfer in progress."""
        if self._reply is None:
            raise GxClientError("no block transfer in progress")
        with _quiet():
            frames = self._gx.receiverReady(self._reply)
        return _single([frames] if isinstance(frames, bytes | bytearray) else frames)

    # -- release

    def build_rlrq(self) -> bytes:
        from gurux_dlms import ConnectionState

        # gurux sends nothing unless it thinks it is associated; we own that decision.
        self._gx.settings.connected |= ConnectionState.DLMS
        with _quiet():
            frames = self._gx.releaseRequest()
        return _single(frames)


def _single(frames: Any) -> bytes:
    """gurux returns a list of messages; in PDU mode an APDU is one message."""
    if not frames:
        raise GxClientError("gurux produced no APDU")
    if len(frames) != 1:
        raise GxClientError(f"gurux split the APDU into {len(frames)} messages")
    return bytes(frames[0])


def _invoke(apdu: bytes) -> int | None:
    return apdu[2] & 0x0F if len(apdu) > 2 and apdu[0] == 0xC4 else None


def build_aarq(
    auth: Auth = "none",
    password: bytes | None = None,
    client_system_title: bytes | None = None,
    block_cipher_key: bytes | None = None,
    authentication_key: bytes | None = None,
    max_pdu_size: int = 0xFFFF,
    conformance: Sequence[str] = DEFAULT_CONFORMANCE,
) -> bytes:
    """An AARQ APDU (LN referencing) for the given authentication."""
    return GxClient(
        auth,
        password,
        client_system_title=client_system_title,
        block_cipher_key=block_cipher_key,
        authentication_key=authentication_key,
        max_pdu_size=max_pdu_size,
        conformance=conformance,
    ).build_aarq()


def parse_aare(apdu: bytes) -> AareResult:
    """Read an AARE (accepted or not) with dlmsdoctor's decoder; never raises."""
    decoded = decode_apdu(apdu, show_secrets=True)
    f = decoded.fields
    challenge = None
    for span in decoded.spans[0].walk() if decoded.spans else ():
        if span.name.endswith("responding_authentication_value.value"):
            challenge = bytes(apdu[span.offset : span.end])
    title = f.get("server_system_title")
    result = f.get("result")
    conformance = f.get("conformance")
    return AareResult(
        accepted=f.get("apdu_type") == "AARE" and result == 0 and "initiate_error" not in f,
        result=result if isinstance(result, int) else None,
        result_name=str(f.get("result_name", "not an AARE")),
        diagnostic_source=_opt_str(f.get("diagnostic_source")),
        diagnostic=_opt_int(f.get("diagnostic")),
        diagnostic_name=_opt_str(f.get("diagnostic_name")),
        initiate_error=_opt_str(f.get("initiate_error")),
        context=_opt_str(f.get("context")),
        mechanism=_opt_str(f.get("mechanism")),
        negotiated_conformance=tuple(conformance) if isinstance(conformance, list) else (),
        max_pdu_size=_opt_int(f.get("max_pdu_size")),
        dlms_version=_opt_int(f.get("dlms_version")),
        server_system_title=bytes.fromhex(title) if isinstance(title, str) else None,
        challenge=challenge,
    )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def build_get_request(
    class_id: int, obis: str | bytes, attribute: int, invoke_id: int = 1
) -> bytes:
    """GET-Request-Normal (confirmed, high priority, as gurux sends it)."""
    return GxClient().build_get_request(class_id, obis, attribute, invoke_id)


def parse_get_response(apdu: bytes) -> GetResult:
    """A complete GET-Response-Normal (use ``GxClient`` for block transfers)."""
    return GxClient().parse_get_response(apdu)


def build_rlrq() -> bytes:
    return GxClient().build_rlrq()


def parse_rlre(apdu: bytes) -> RlreResult:
    decoded = decode_apdu(apdu)
    reason = decoded.fields.get("reason")
    ok = decoded.fields.get("apdu_type") == "RLRE" and reason in (None, "normal")
    return RlreResult(_opt_str(reason), ok)
