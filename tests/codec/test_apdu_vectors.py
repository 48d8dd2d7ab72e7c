"""APDU vectors (tests/vectors/apdu_*.json): fields, span offsets, findings, whole and cut."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.codec.model import Severity, Span

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"


def load_vectors() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(VECTOR_DIR.glob("apdu_*.json")):
        doc = json.loads(path.read_text())
        assert doc["schema"] == "dlmsdoctor.apdu-vectors/1"
        out.extend(doc["vectors"])
    return out


VECTORS = load_vectors()
VALID = [v for v in VECTORS if v["valid"]]


def by_name(spans: tuple[Span, ...]) -> dict[str, Span]:
    return {s.name: s for top in spans for s in top.walk()}


def test_every_vector_says_where_it_comes_from() -> None:
    assert len(VECTORS) >= 30
    names = [v["name"] for v in VECTORS]
    assert len(names) == len(set(names))
    for v in VECTORS:
        assert len(v["provenance"]) > 20, v["name"]
    real = [v for v in VECTORS if v["provenance"].startswith("real:")]
    assert len(real) >= 5


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_vector_decodes_as_recorded(vector: dict[str, Any]) -> None:
    apdu = bytes.fromhex(vector["hex"])
    decoded = decode_apdu(apdu)
    for key, want in vector["fields"].items():
        assert decoded.fields.get(key) == want, key
    spans = by_name(decoded.spans)
    for name, offset, length in vector.get("spans", []):
        assert (spans[name].offset, spans[name].length) == (offset, length), name
    for want in vector.get("findings", []):
        assert any(all(getattr(f, k) == x for k, x in want.items()) for f in decoded.findings), (
            want,
            [f.to_json() for f in decoded.findings],
        )
    errors = [f for f in decoded.findings if f.severity is Severity.ERROR]
    assert bool(errors) != vector["valid"], [f.to_json() for f in decoded.findings]
    assert all(f.code != "apdu.internal_error" for f in decoded.findings)
    assert decoded.summary


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_offsets_follow_base_offset(vector: dict[str, Any]) -> None:
    apdu = bytes.fromhex(vector["hex"])
    plain = decode_apdu(apdu)
    shifted = decode_apdu(apdu, base_offset=1000)
    assert [(s.offset + 1000, s.length, s.name) for top in plain.spans for s in top.walk()] == [
        (s.offset, s.length, s.name) for top in shifted.spans for s in top.walk()
    ]
    assert [f.offset + 1000 for f in plain.findings] == [f.offset for f in shifted.findings]
    assert plain.fields == shifted.fields


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_trailing_garbage_is_reported_and_decode_unchanged(vector: dict[str, Any]) -> None:
    apdu = bytes.fromhex(vector["hex"])
    decoded = decode_apdu(apdu + b"\xde\xad")
    for key, want in vector["fields"].items():
        assert decoded.fields.get(key) == want, key
    codes = {f.code for f in decoded.findings}
    # BER APDUs carry their length: the extra bytes are outside it. A-XDR ones do not, and
    # where the last field is open-ended (a ciphered payload) the bytes join it.
    if apdu[0] in (0x60, 0x61, 0x62, 0x63) or apdu[0] in (0xC0, 0xC4, 0xD8):
        assert "apdu.trailing_bytes" in codes
        trailing = decoded.spans[-1]
        assert (trailing.offset, trailing.length) == (len(apdu), 2)


# A-XDR APDUs that end in an open-ended field (a ciphered payload) or are raw: a shorter
# one is still well-formed, so a cut is not an error there.
OPEN_ENDED_TAGS = {0xC8, 0xDB, 0x99}


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_every_prefix_decodes_without_raising(vector: dict[str, Any]) -> None:
    apdu = bytes.fromhex(vector["hex"])
    for cut in range(len(apdu)):
        decoded = decode_apdu(apdu[:cut])
        assert all(f.code != "apdu.internal_error" for f in decoded.findings), cut
        if cut and vector["valid"] and apdu[0] not in OPEN_ENDED_TAGS:
            assert any(f.severity is Severity.ERROR for f in decoded.findings), cut
        for top in decoded.spans:
            for span in top.walk():
                assert span.offset >= 0 and span.end <= cut


def test_aarq_spans_cover_the_apdu_in_wire_order() -> None:
    apdu = bytes.fromhex(VECTORS[1]["hex"])
    top = decode_apdu(apdu).spans[0]
    assert (top.offset, top.length) == (0, len(apdu))
    ends = [c.offset for c in top.children]
    assert ends == sorted(ends)
    assert top.children[-1].end == len(apdu)


def test_conformance_names_are_the_green_book_bits() -> None:
    decoded = decode_apdu(
        bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400001E1DFFFF")
    )
    # 00 1E 1D: bits 11-14 and 19, 20, 21, 23.
    assert decoded.fields["conformance_bits"] == 0x001E1D
    assert "get" in decoded.fields["conformance"]  # type: ignore[operator]
    assert "general-protection" not in decoded.fields["conformance"]  # type: ignore[operator]


def test_class_and_obis_names_in_the_descriptor() -> None:
    decoded = decode_apdu(bytes.fromhex("c001c100170000160000ff0800"))
    spans = by_name(decoded.spans)
    assert spans["apdu.descriptor.class_id"].meaning == "IEC HDLC setup"
    assert spans["apdu.descriptor.instance_id"].value == "0-0:22.0.0*255"
    assert "IEC HDLC setup" in spans["apdu.descriptor.instance_id"].meaning
    assert decoded.fields["attribute"] == 8


def test_empty_apdu() -> None:
    decoded = decode_apdu(b"")
    assert decoded.spans == ()
    assert [f.code for f in decoded.findings] == ["apdu.empty"]


def test_deep_nesting_hits_the_guard_not_the_stack() -> None:
    apdu = bytes.fromhex("c401c100") + bytes.fromhex("0101") * 5000 + b"\x00"
    decoded = decode_apdu(apdu)
    assert "apdu.axdr.depth" in {f.code for f in decoded.findings}
    assert all(f.code != "apdu.internal_error" for f in decoded.findings)


def test_huge_array_count_does_not_allocate_per_announced_element() -> None:
    decoded = decode_apdu(bytes.fromhex("c401c10001 84 7fffffff 1100"))
    codes = [f.code for f in decoded.findings]
    assert "apdu.axdr.length" in codes


def test_ber_apdu_with_extra_bytes_says_which_length_would_fit() -> None:
    apdu = bytes.fromhex("6117A109060760857405080101A203020101A305A10302010D") + b"\x00\x00\x00"
    decoded = decode_apdu(apdu, base_offset=10)
    (trailing,) = [f for f in decoded.findings if f.code == "apdu.trailing_bytes"]
    assert (trailing.offset, trailing.length) == (10 + 25, 3)
    assert (trailing.expected, trailing.found, trailing.corrected) == ("26", "23", "1A")
    assert trailing.severity is Severity.ERROR  # issue 14: bytes of no field are an error
    assert "ends at offset 35" in trailing.message and decoded.fields["apdu_length"] == 25


def test_release_reasons_depend_on_direction() -> None:
    assert decode_apdu(bytes.fromhex("6203800101")).fields["reason"] == "urgent"
    assert decode_apdu(bytes.fromhex("6303800101")).fields["reason"] == "not-finished"
    assert decode_apdu(bytes.fromhex("6200")).fields == {"apdu_type": "RLRQ"}


def test_long_ber_length_form() -> None:
    # 61 81 17 ...: the long form of the same length is legal BER.
    apdu = bytes.fromhex("618117A109060760857405080101A203020101A305A10302010D")
    decoded = decode_apdu(apdu)
    assert decoded.fields["diagnostic"] == 13
    assert not decoded.findings or all(f.severity is not Severity.ERROR for f in decoded.findings)


def test_a_large_profile_hits_the_span_guard_without_false_errors() -> None:
    row = bytes.fromhex("0203090c07e805010312000000ffc40006000000641100")
    count = 5000
    apdu = bytes.fromhex("c401c1000182") + count.to_bytes(2, "big") + row * count
    decoded = decode_apdu(apdu)
    codes = [f.code for f in decoded.findings]
    assert codes == ["apdu.axdr.depth"]
    assert decoded.findings[0].severity is Severity.WARNING
    assert decoded.spans[0].end == len(apdu)


SECRET_VECTORS = [v for v in VECTORS if "secret" in v or "secret_hex" in v]


@pytest.mark.parametrize("vector", SECRET_VECTORS, ids=lambda v: v["name"])
def test_vector_secrets_are_masked_unless_asked(vector: dict[str, Any]) -> None:
    secret = (
        vector["secret"].encode() if "secret" in vector else bytes.fromhex(vector["secret_hex"])
    )
    apdu = bytes.fromhex(vector["hex"])

    def shown(show: bool) -> str:
        decoded = decode_apdu(apdu, show_secrets=show)
        parts = [decoded.summary, json.dumps(decoded.fields, default=repr)]
        for top in decoded.spans:
            for span in top.walk():
                value = span.value.hex() if isinstance(span.value, bytes) else str(span.value)
                parts += [value, span.meaning]
        return "\n".join(parts).lower()

    forms = [secret.hex(), secret.hex(" ")]
    if secret.isascii():
        forms.append(secret.decode().lower())
    assert not any(form in shown(False) for form in forms)
    assert any(form in shown(True) for form in forms)


def test_access_request_and_general_signing_are_named_not_unknown() -> None:
    for tag, name in ((0xD9, "AccessRequest"), (0xDA, "AccessResponse"), (0xDF, "GeneralSigning")):
        decoded = decode_apdu(bytes([tag]) + bytes.fromhex("4000000000040100"))
        assert decoded.fields["apdu_type"] == name
        assert all(f.code != "apdu.unknown_tag" for f in decoded.findings)
        assert by_name(decoded.spans)["apdu.body"].length == 8
