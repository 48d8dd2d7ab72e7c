"""Pins what the simulator takes from gurux-dlms 1.0.203 on the server side, and what it
does not take (and why), at the dlmsdoctor.gx.server boundary."""

from __future__ import annotations

import pytest
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXDLMSException, GXDLMSSettings
from gurux_dlms.enums import Authentication, Conformance, InterfaceType
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.objects import GXDLMSRegister
from gurux_dlms.secure import GXDLMSSecureClient
from gurux_dlms.ValueEventArgs import ValueEventArgs
from hypothesis import given
from hypothesis import strategies as st

from dlmsdoctor.gx import server as gx
from dlmsdoctor.gx.server import CosemData, array, structure


def _gurux_decode(encoded: bytes) -> object:
    """gurux's own (client-side) A-XDR decoder, independent of the encoder under test."""
    from gurux_dlms.GXDLMSSettings import GXDLMSSettings as Settings
    from gurux_dlms.internal._GXDataInfo import _GXDataInfo

    return _GXCommon.getData(Settings(False, None), GXByteBuffer(encoded), _GXDataInfo())


# Vectors: A-XDR encodings per DLMS UA Green Book 9.5 (Data CHOICE tags), by hand.
ENCODINGS = [
    (CosemData("null"), "00"),
    (CosemData("boolean", True), "03 01"),
    (CosemData("integer", -1), "0F FF"),
    (CosemData("long", -5), "10 FF FB"),
    (CosemData("unsigned", 200), "11 C8"),
    (CosemData("long-unsigned", 2305), "12 09 01"),
    (CosemData("double-long-unsigned", 1234567), "06 00 12 D6 87"),
    (CosemData("double-long", -2), "05 FF FF FF FE"),
    (CosemData("enum", 35), "16 23"),
    (CosemData("enum", 255), "16 FF"),
    (CosemData("octet-string", bytes([0, 0, 42, 0, 0, 255])), "09 06 00 00 2A 00 00 FF"),
    (CosemData("visible-string", "DLD"), "0A 03 44 4C 44"),
    (CosemData("bit-string", "000000000001000000010001"), "04 18 00 10 11"),
    (structure(CosemData("integer", 3), CosemData("enum", 30)), "02 02 0F 03 16 1E"),
    (array(CosemData("unsigned", 1), CosemData("unsigned", 2)), "01 02 11 01 11 02"),
]


@pytest.mark.parametrize("value,expected", ENCODINGS)
def test_value_encoding(value: CosemData, expected: str) -> None:
    assert gx.encode_data(value) == bytes.fromhex(expected)


def test_encodings_decode_back_with_gurux() -> None:
    assert _gurux_decode(gx.encode_data(CosemData("long-unsigned", 2305))) == 2305
    assert _gurux_decode(gx.encode_data(CosemData("integer", -1))) == -1
    decoded = _gurux_decode(gx.encode_data(structure(CosemData("integer", 3),
                                                     CosemData("enum", 30))))
    assert list(decoded) == [3, 30]  # type: ignore[call-overload]


def test_gurux_register_scaler_bug_is_why_values_are_encoded_from_plain_data() -> None:
    """GXDLMSRegister.getValue(3) computes floor(log10(scaler)): 1000 -> 2.999.. -> 2."""
    settings = GXDLMSSettings(True, None)
    register = GXDLMSRegister("1.0.1.8.0.255")
    register.scaler, register.unit = 1000, 30
    wrong = bytes(register.getValue(settings, ValueEventArgs(settings, register, 3)))
    assert wrong == bytes.fromhex("02 02 0F 02 16 1E")  # exponent 2: the bug, still there
    ours = gx.encode_data(structure(CosemData("integer", 3), CosemData("enum", 30)))
    assert ours == bytes.fromhex("02 02 0F 03 16 1E")


# ---- AARQ / AARE ------------------------------------------------------------------------------


def _aarq_from(client: GXDLMSClient) -> bytes:
    return bytes(client.aarqRequest()[0])[8:]


def test_decode_aarq_of_gurux_clients() -> None:
    none = gx.decode_aarq(_aarq_from(GXDLMSClient(True, 16, 1, Authentication.NONE, None,
                                                  InterfaceType.WRAPPER)))
    assert (none.well_formed, none.application_context, none.mechanism, none.secret) == (
        True, 1, 0, None)
    assert none.dlms_version == 6 and none.client_max_pdu == 0xFFFF
    assert none.proposed_conformance & gx.CONFORMANCE_GET
    lls = gx.decode_aarq(_aarq_from(GXDLMSClient(True, 32, 1, Authentication.LOW, "secret",
                                                 InterfaceType.WRAPPER)))
    assert (lls.mechanism, lls.secret) == (1, b"secret")
    assert "secret" not in repr(lls)  # the secret is kept out of reprs
    sn = gx.decode_aarq(_aarq_from(GXDLMSClient(False, 16, 1, Authentication.NONE, None,
                                                InterfaceType.WRAPPER)))
    assert sn.application_context == 2
    hls_client = GXDLMSSecureClient(True, 1, 1, Authentication.HIGH_GMAC, None,
                                    InterfaceType.WRAPPER)
    hls_client.ciphering.systemTitle = b"GXX12345"
    hls = gx.decode_aarq(_aarq_from(hls_client))
    assert hls.mechanism == 5 and hls.calling_ap_title == b"GXX12345"
    assert hls.secret is not None and len(hls.secret) >= 8  # the CtoS challenge


@given(st.binary(max_size=80))
def test_decode_aarq_never_raises(data: bytes) -> None:
    gx.decode_aarq(b"\x60" + data)
    gx.decode_get_request(b"\xc0" + data)
    gx.decode_action_request(b"\xc3" + data)


def _client_parses(aare: bytes, auth: int = Authentication.NONE) -> GXDLMSClient:
    client = GXDLMSClient(True, 16, 1, auth, "x" if auth else None, InterfaceType.WRAPPER)
    client.parseAareResponse(GXByteBuffer(aare))
    return client


def test_request_walk_reads_only_short_definite_lengths() -> None:
    # The request walk uses codec.ber.definite_length: indefinite and 4-byte lengths are refused.
    from dlmsdoctor.codec.ber import definite_length

    assert definite_length(bytes.fromhex("7F"), 0) == (0x7F, 1)
    assert definite_length(bytes.fromhex("00 82 01 00"), 1) == (0x100, 4)
    assert definite_length(bytes.fromhex("83 01 00 00"), 0) == (0x10000, 4)
    for refused in ("80", "84 00 00 01 00", "82 01", ""):
        assert definite_length(bytes.fromhex(refused), 0) is None
    assert gx.decode_aarq(bytes.fromhex("60 84 00 00 00 02 A1 00")).well_formed is False

def test_gurux_generated_aare_is_accepted_by_gurux_client() -> None:
    aare = gx.build_aare(result=gx.AcseResult.ACCEPTED, diagnostic=gx.AcseUserDiagnostic.NULL,
                         logical_name_referencing=True, mechanism=0,
                         negotiated_conformance=gx.SERVER_CONFORMANCE, server_max_pdu=512)
    client = _client_parses(aare)
    # gurux numbers conformance bits the other way round: our wire-order bits must land on GET
    assert client.negotiatedConformance & Conformance.GET
    assert client.negotiatedConformance & Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
    assert client.maxReceivePDUSize == 512


def test_rejected_aare_carries_the_diagnostic() -> None:
    aare = gx.build_aare(result=gx.AcseResult.REJECTED_PERMANENT,
                         diagnostic=gx.AcseUserDiagnostic.AUTHENTICATION_FAILURE,
                         logical_name_referencing=True, mechanism=1,
                         negotiated_conformance=0, server_max_pdu=512)
    assert aare[aare.index(b"\xa3\x05\xa1\x03\x02\x01") + 6] == 13
    with pytest.raises(GXDLMSException) as info:
        _client_parses(aare, Authentication.LOW)
    assert info.value.diagnostic == 13


def test_gurux_generate_aare_hls_branch_is_broken_so_hls_aare_is_ours() -> None:
    from gurux_dlms._GXAPDU import _GXAPDU

    settings = GXDLMSSettings(True, None)
    settings.authentication = Authentication.HIGH_GMAC
    settings.stoCChallenge = bytes(16)
    client = GXDLMSSecureClient(True, 1, 1, Authentication.HIGH_GMAC, None, InterfaceType.WRAPPER)
    with pytest.raises(TypeError):  # setUInt8() called without a value for the system title
        _GXAPDU.generateAARE(settings, GXByteBuffer(), 0, 14, client.ciphering, None, None)
    ours = gx.build_aare(result=gx.AcseResult.ACCEPTED,
                         diagnostic=gx.AcseUserDiagnostic.AUTHENTICATION_REQUIRED,
                         logical_name_referencing=True, mechanism=5,
                         negotiated_conformance=gx.SERVER_CONFORMANCE, server_max_pdu=1024,
                         server_system_title=b"DLD00001", stoc_challenge=b"S" * 16)
    client.ciphering.systemTitle = b"GXX12345"
    client.aarqRequest()
    client.parseAareResponse(GXByteBuffer(ours))
    assert bytes(client.sourceSystemTitle) == b"DLD00001"
    assert client.getIsAuthenticationRequired()


def test_gmac_matches_gurux_secure() -> None:
    from gurux_dlms.GXSecure import GXSecure

    keys = (bytes(range(16)), bytes(range(0xD0, 0xE0)))
    client = GXDLMSSecureClient(True, 1, 1, Authentication.HIGH_GMAC, None, InterfaceType.HDLC)
    client.ciphering.blockCipherKey, client.ciphering.authenticationKey = keys
    title, challenge = b"GXX12345", b"0123456789ABCDEF"
    expected = bytes(GXSecure.secure(client.settings, client.settings.cipher, 7, challenge,
                                     title))
    assert gx.hls_gmac_reply(title, 7, keys[1], keys[0], challenge) == expected
    assert gx.verify_hls_gmac(expected, title, keys[1], keys[0], challenge)
    assert not gx.verify_hls_gmac(expected, title, keys[1], keys[0], challenge[::-1])


# ---- GET / release / errors ---------------------------------------------------------------


def test_get_request_and_responses() -> None:
    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    from gurux_dlms.objects import GXDLMSData

    request = bytes(client.read(GXDLMSData("0.0.42.0.0.255"), 2)[0])[8:]
    decoded = gx.decode_get_request(request)
    assert decoded is not None and decoded.attribute is not None
    assert (decoded.kind, decoded.attribute.class_id, decoded.attribute.obis_text,
            decoded.attribute.attribute) == (1, 1, "0.0.42.0.0.255", 2)
    undefined = gx.build_get_response_normal(0xC1, gx.DataAccessResult.OBJECT_UNDEFINED)
    assert undefined == bytes.fromhex("C4 01 C1 01 04")
    assert gx.build_get_response_block(0xC1, 1, False, b"\x01\x02") == bytes.fromhex(
        "C4 02 C1 00 00 00 00 01 00 02 01 02")
    assert gx.build_rlre() == bytes.fromhex("63 03 80 01 00")
    assert gx.build_exception_response(1, 1) == bytes.fromhex("D8 01 01")
