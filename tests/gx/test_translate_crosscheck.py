"""Our decoder against gurux's GXDLMSTranslator on every valid APDU vector.

Where gurux and the standard disagree, the test says so and checks the standard.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.gx.translate import TranslateError, apdu_to_xml, frame_to_xml

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"
VALID = [
    v
    for path in sorted(VECTOR_DIR.glob("apdu_*.json"))
    for v in json.loads(path.read_text())["vectors"]
    if v["valid"]
]
# gurux 1.0.203 cannot translate these (it raises): pinned so a gurux upgrade is noticed.
GURUX_CANNOT = {
    "exception_invocation_counter",
    "data_notification_real_kaifa_list1",
    "data_notification_real_kaifa_list2",
}

CONTEXTS = {
    "LN": "LN",
    "SN": "SN",
    "LN_WITH_CIPHERING": "LN ciphered",
    "SN_WITH_CIPHERING": "SN ciphered",
}
MECHANISMS = {
    "None": "none",
    "Low": "LLS",
    "High": "HLS",
    "HighMd5": "HLS-MD5",
    "HighSha1": "HLS-SHA1",
    "HighGmac": "HLS-GMAC",
    "HighSha256": "HLS-SHA256",
    "HighEcdsa": "HLS-ECDSA",
}


def kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


ROOTS = {
    "AssociationRequest": "AARQ",
    "AssociationResponse": "AARE",
    "ReleaseRequest": "RLRQ",
    "ReleaseResponse": "RLRE",
    "ExceptionResponse": "ExceptionResponse",
    "DataNotification": "DataNotification",
    "ReadRequest": "ReadRequest",
    "ReadResponse": "ReadResponse",
    "WriteRequest": "WriteRequest",
    "WriteResponse": "WriteResponse",
    "GeneralBlockTransfer": "GeneralBlockTransfer",
}


def gurux_view(root: ET.Element) -> dict[str, Any]:
    """The facts we compare, read from gurux's simple XML."""
    out: dict[str, Any] = {}
    if root.tag in ROOTS:
        out["apdu_type"] = ROOTS[root.tag]
    elif root.tag.startswith("glo_") or root.tag == "GeneralGloCiphering":
        out["apdu_type"] = "ciphered"
        out["cipher"] = (
            "general-glo-ciphering"
            if root.tag == "GeneralGloCiphering"
            else "glo-" + kebab(root.tag[4:])
        )
    for el in root.iter():
        value = el.get("Value")
        if el.tag == "ApplicationContextName":
            out["context"] = CONTEXTS[value or ""]
        elif el.tag == "MechanismName":
            out["mechanism"] = MECHANISMS[value or ""]
        elif el.tag == "AssociationResult":
            out["result"] = int(value or "", 16)
        elif el.tag in ("ACSEServiceUser", "ACSEServiceProvider"):
            out["diagnostic"] = int(value or "", 16)
        elif el.tag == "CallingAPTitle":
            out["client_system_title"] = value
        elif el.tag == "RespondingAPTitle":
            out["server_system_title"] = value
        elif el.tag in ("ProposedMaxPduSize", "NegotiatedMaxPduSize"):
            out["max_pdu_size"] = int(value or "", 16)
        elif el.tag in ("ProposedConformance", "NegotiatedConformance"):
            out["conformance"] = sorted(kebab(c.get("Name") or "") for c in el)
        elif el.tag == "ClassId":
            out["class_id"] = int(value or "", 16)
        elif el.tag == "InstanceId":
            out["obis"] = ".".join(str(b) for b in bytes.fromhex(value or ""))
        elif el.tag == "AttributeId":
            out["attribute"] = int(value or "", 16)
        elif el.tag == "MethodId":
            out["method"] = int(value or "", 16)
        elif el.tag == "Initiate":
            out["initiate_error"] = kebab(value or "")
        elif el.tag == "Reason":
            out["reason"] = kebab(value or "")
        elif el.tag == "StateError":
            out["state_error"] = kebab(value or "")
        elif el.tag == "ServiceError" and value:
            out["service_error"] = kebab(value)
        elif el.tag == "LongInvokeIdAndPriority":
            out["long_invoke_id"] = int(value or "", 16) & 0xFFFFFF
        elif el.tag == "BlockNumber":
            out["block_number"] = int(value or "", 16)
        elif el.tag == "VariableName":
            out.setdefault("short_name", int(value or "", 16))
        elif el.tag == "SystemTitle":
            out["system_title"] = value
        elif el.tag == "InvokeIdAndPriority":
            out["invoke_id"] = int(value or "", 16) & 0x0F
    return out


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_fields_agree_with_gurux_translator(vector: dict[str, Any]) -> None:
    apdu = bytes.fromhex(vector["hex"])
    if vector["name"] in GURUX_CANNOT:
        with pytest.raises(TranslateError):
            apdu_to_xml(apdu)
        return
    theirs = gurux_view(ET.fromstring(apdu_to_xml(apdu)))
    ours = decode_apdu(apdu).fields
    assert theirs, "gurux said nothing we can compare"
    for key, value in theirs.items():
        mine = ours.get(key)
        if key == "conformance":
            assert isinstance(mine, list)
            mine = sorted(mine)
        assert mine == value, (key, mine, value)


def test_gurux_reads_the_provider_diagnostic_as_a_user_one() -> None:
    # A3 05 A2 03 02 01 02: [2] acse-service-provider, no-common-acse-version (X.227,
    # IEC 62056-53). gurux 1.0.203 prints it as ACSEServiceUser; we follow the standard.
    apdu = bytes.fromhex("6117A109060760857405080101A203020102A305A203020102")
    assert '<ACSEServiceUser Value="02" />' in apdu_to_xml(apdu)
    fields = decode_apdu(apdu).fields
    assert fields["diagnostic_source"] == "acse-service-provider"
    assert fields["diagnostic_name"] == "no-common-acse-version"


def test_frame_to_xml_reads_hdlc_and_wrapper() -> None:
    snrm = frame_to_xml(bytes.fromhex("7EA0070321930F017E"))
    assert "<Snrm>" in snrm
    wrapped = frame_to_xml(bytes.fromhex("000100100001000dc001c1000100002a0000ff0200"))
    assert "<WRAPPER" in wrapped and '<InstanceId Value="00002A0000FF" />' in wrapped


def test_apdu_to_xml_keeps_gurux_noise_off_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    apdu_to_xml(
        bytes.fromhex(
            "6129a109060760857405080101a203020101a305a10302010d"
            "be10040e0800065f1f040000000001f400070000"
        )
    )
    assert capsys.readouterr().out == ""
