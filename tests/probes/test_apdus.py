"""The probes' hand-built APDUs equal what gurux-dlms 1.0.203's client sends."""

from __future__ import annotations

import pytest

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.probes.apdus import IDENTITY_READS, build_aarq, build_get_request, build_rlrq

gurux = pytest.importorskip("gurux_dlms")


def _gx_client(sap: int, auth: object, password: str | None):  # type: ignore[no-untyped-def]
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import InterfaceType

    return GXDLMSClient(True, sap, 1, auth, password, InterfaceType.WRAPPER)


def _strip_wrapper(frame: bytes) -> bytes:
    return bytes(frame)[8:]


def test_public_aarq_matches_gurux() -> None:
    from gurux_dlms.enums import Authentication

    client = _gx_client(16, Authentication.NONE, None)
    assert build_aarq() == _strip_wrapper(client.aarqRequest()[0])


def test_lls_aarq_matches_gurux() -> None:
    from gurux_dlms.enums import Authentication

    client = _gx_client(1, Authentication.LOW, "00000000")
    assert build_aarq(b"00000000") == _strip_wrapper(client.aarqRequest()[0])


def test_get_requests_match_gurux() -> None:
    from gurux_dlms.enums import Authentication, ObjectType
    from gurux_dlms.objects import GXDLMSObject

    client = _gx_client(16, Authentication.NONE, None)
    for attr in IDENTITY_READS:
        obj = GXDLMSObject(ObjectType(attr.class_id), attr.obis_text)
        expected = _strip_wrapper(client.read(obj, attr.attribute)[0])
        assert build_get_request(attr, 1) == expected, attr.key


def test_our_apdus_decode_cleanly() -> None:
    for apdu in (build_aarq(), build_aarq(b"pw"), build_rlrq(),
                 *(build_get_request(a, i) for i, a in enumerate(IDENTITY_READS, 1))):
        decoded = decode_apdu(apdu)
        assert not [f for f in decoded.findings if f.severity.value == "error"], decoded.summary
    assert b"secret" in build_aarq(b"secret")
    assert decode_apdu(build_aarq(b"secret")).fields.get("apdu_type") == "AARQ"
