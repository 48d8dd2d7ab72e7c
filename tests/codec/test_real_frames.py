"""Real frames published in issue threads (tests/vectors/real_frames.json): they decode with no
error, and every value dlmsdoctor reads agrees with gurux-dlms's translator, leaf by leaf."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dlmsdoctor.codec.decode import decode_bytes
from dlmsdoctor.gx.translate import apdu_to_xml

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "real_frames.json").read_text())
FRAMES = VECTORS["frames"]


def _ours(value: object) -> list[object]:
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in _ours(item)]
    return [value]


def _gurux(xml: str) -> list[tuple[str, str]]:
    root = ET.fromstring(xml)
    holders = [e for e in root.iter() if e.tag in ("DataValue", "Data")]
    out: list[tuple[str, str]] = []
    for holder in holders[:1]:
        for element in holder.iter():
            if "Value" in element.attrib and element.tag not in ("Array", "Structure"):
                out.append((element.tag, element.attrib["Value"]))
    return out


def _agrees(ours: object, tag: str, text: str) -> bool:
    if ours is None:
        return tag in ("None", "Null")
    if isinstance(ours, bool):
        return tag == "Boolean" and (text.lower() in ("true", "1")) == ours
    if isinstance(ours, int):
        raw = int(text, 16)
        if tag.startswith("Int") and raw >= 1 << (4 * len(text) - 1):
            raw -= 1 << (4 * len(text))  # two's complement, as wide as gurux writes it
        return raw == ours
    if isinstance(ours, bytes):
        return tag == "OctetString" and bytes.fromhex(text) == ours
    if isinstance(ours, str):
        if tag == "String":
            return text == ours
        if tag == "OctetString" and ours[:1].isdigit() and "-" in ours[:8]:
            return len(bytes.fromhex(text)) == 12  # a date-time we show as a date
        return tag == "OctetString" and bytes.fromhex(text).decode("latin-1") == ours
    return False


@pytest.mark.parametrize("vector", FRAMES, ids=[v["name"] for v in FRAMES])
def test_real_frame_decodes_valid_with_its_type(vector: dict[str, object]) -> None:
    (fd,) = decode_bytes(bytes.fromhex(str(vector["hex"]))).frames
    expect = vector["expect"]
    assert isinstance(expect, dict)
    assert fd.valid, [f.code for f in fd.findings]
    assert fd.frame.fields["frame_type"] == expect["frame_type"]
    assert fd.apdu_type == expect["apdu_type"]


@pytest.mark.parametrize(
    "vector", [v for v in FRAMES if v["expect"]["gurux"]],
    ids=[v["name"] for v in FRAMES if v["expect"]["gurux"]],
)  # fmt: skip
def test_values_agree_with_gurux(vector: dict[str, object]) -> None:
    (fd,) = decode_bytes(bytes.fromhex(str(vector["hex"]))).frames
    assert fd.apdu is not None and fd.frame.apdu is not None
    theirs = _gurux(apdu_to_xml(fd.frame.apdu))
    if "value" not in fd.apdu.fields:  # a request: compare the attribute descriptor
        xml = apdu_to_xml(fd.frame.apdu)
        obis = bytes(int(x) for x in str(fd.apdu.fields["obis"]).split(".")).hex().upper()
        assert f'<InstanceId Value="{obis}" />' in xml
        assert f'<ClassId Value="{int(str(fd.apdu.fields["class_id"])):04X}" />' in xml
        return
    ours = _ours(fd.apdu.fields["value"])
    assert len(ours) == len(theirs), (ours, theirs)
    for mine, (tag, text) in zip(ours, theirs, strict=True):
        assert _agrees(mine, tag, text), (mine, tag, text)
