"""The LLS password and HLS challenges never leak unless the caller asks for secrets."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.codec.model import Span

PASSWORD = b"Zx9!sEcr"
# AARQ LN, LLS, password above (same layout gurux produces, see apdu_acse.json aarq_lls_ln).
AARQ = (
    bytes.fromhex("6036a1090607608574050801018a0207808b0760857405080201ac0a8008")
    + PASSWORD
    + bytes.fromhex("be10040e01000000065f1f0400401e5dffff")
)
CHALLENGE = bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90")
AARE = (
    bytes.fromhex(
        "614aa109060760857405080101a203020100a305a10302010e88020780890760857405080205aa128010"
    )
    + CHALLENGE
    + bytes.fromhex("be10040e0800065f1f040000501f01f40007")
)


def everything_shown(decoded: object) -> str:
    """All text a face could render or export: spans, summary, fields, findings."""
    parts: list[str] = [repr(decoded)]
    spans: tuple[Span, ...] = decoded.spans  # type: ignore[attr-defined]
    for top in spans:
        for span in top.walk():
            parts += [repr(span.value), str(span.value), span.meaning, span.label]
            if isinstance(span.value, bytes):
                parts += [span.value.hex(), span.value.hex(" ").upper()]
    parts.append(decoded.summary)  # type: ignore[attr-defined]
    parts.append(json.dumps(decoded.fields, default=repr))  # type: ignore[attr-defined]
    parts += [json.dumps(f.to_json()) for f in decoded.findings]  # type: ignore[attr-defined]
    return "\n".join(parts)


def forms(secret: bytes) -> list[str]:
    return [
        secret.hex(),
        secret.hex().upper(),
        secret.hex(" ").upper(),
        secret.decode("latin-1"),
    ]


def test_aarq_lls_password_is_masked_by_default() -> None:
    assert AARQ[1] == len(AARQ) - 2
    decoded = decode_apdu(AARQ)
    text = everything_shown(decoded)
    for form in forms(PASSWORD):
        assert form.lower() not in text.lower(), form
    secret_spans = [s for top in decoded.spans for s in top.walk() if s.secret]
    assert len(secret_spans) == 1
    assert secret_spans[0].value == "********"
    assert (secret_spans[0].offset, secret_spans[0].length) == (30, 8)
    assert decoded.fields["mechanism"] == "LLS"


def test_aarq_lls_password_is_shown_when_asked() -> None:
    decoded = decode_apdu(AARQ, show_secrets=True)
    text = everything_shown(decoded)
    assert PASSWORD.decode() in text
    secret_spans = [s for top in decoded.spans for s in top.walk() if s.secret]
    assert secret_spans[0].value == PASSWORD.decode()


def test_aare_hls_challenge_is_masked() -> None:
    assert AARE[1] == len(AARE) - 2
    hidden = everything_shown(decode_apdu(AARE))
    for form in forms(CHALLENGE)[:3]:
        assert form.lower() not in hidden.lower()
    shown = everything_shown(decode_apdu(AARE, show_secrets=True))
    assert CHALLENGE.hex(" ").upper() in shown


def test_hls_reply_in_action_request_is_masked() -> None:
    # reply_to_HLS_authentication (Association LN method 1) carries f(StoC).
    tag = bytes.fromhex("4a48f6133c323f3547f3ab1d")
    apdu = bytes.fromhex("c301c1000f0000280000ff010109111000000000") + tag
    hidden = everything_shown(decode_apdu(apdu))
    assert tag.hex() not in hidden.lower()
    assert tag.hex() in everything_shown(decode_apdu(apdu, show_secrets=True)).lower()


def test_dedicated_key_in_initiate_request_is_masked() -> None:
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    initiate = bytes.fromhex("010110") + key + bytes.fromhex("0000065f1f0400401e5dffff")
    apdu = (
        bytes.fromhex("602ea109060760857405080101be")
        + bytes([len(initiate) + 2, 0x04, len(initiate)])
        + initiate
    )
    assert apdu[1] == len(apdu) - 2
    decoded = decode_apdu(apdu)
    assert decoded.fields["dedicated_key"] is True
    assert decoded.fields["max_pdu_size"] == 0xFFFF
    hidden = everything_shown(decoded)
    assert key.hex() not in hidden.lower() and key.hex(" ").upper() not in hidden
    assert key.hex(" ").upper() in everything_shown(decode_apdu(apdu, show_secrets=True))


def test_password_swallowed_by_a_damaged_element_stays_masked() -> None:
    # The mechanism-name length says 0x20: it runs over the calling-authentication-value.
    damaged = bytearray(AARQ)
    at = damaged.find(bytes.fromhex("8b07"))
    damaged[at + 1] = 0x20
    decoded = decode_apdu(bytes(damaged))
    assert any(f.code == "apdu.ber.length" for f in decoded.findings)
    hidden = everything_shown(decoded)
    for form in forms(PASSWORD):
        assert form.lower() not in hidden.lower(), form


def test_password_in_an_unexpected_element_stays_masked() -> None:
    # Calling-authentication-value re-tagged [13] (0xAD): unknown to AARQ, shown raw.
    odd = AARQ.replace(bytes.fromhex("ac0a8008"), bytes.fromhex("ad0a8008"))
    decoded = decode_apdu(odd)
    assert "apdu.ber.unexpected" in {f.code for f in decoded.findings}
    hidden = everything_shown(decoded)
    for form in forms(PASSWORD):
        assert form.lower() not in hidden.lower(), form
    assert PASSWORD.hex() in everything_shown(decode_apdu(odd, show_secrets=True))


@settings(max_examples=300, deadline=None)
@given(
    st.binary(min_size=8, max_size=8).filter(lambda b: len(set(b)) > 4),
    st.lists(st.tuples(st.integers(1, 29), st.integers(0, 255)), max_size=3),
)
def test_password_never_leaks_from_damaged_aarqs(
    password: bytes, damage: list[tuple[int, int]]
) -> None:
    # Damage between the AARQ tag and the password (offsets 1..29: lengths and the elements
    # before it). The tag stays: bytes that do not say AARQ cannot be known to hold one.
    apdu = bytearray(AARQ[:30] + password + AARQ[38:])
    for pos, value in damage:
        apdu[pos] = value
    decoded = decode_apdu(bytes(apdu))
    hidden = everything_shown(decoded).lower()
    assert password.hex() not in hidden
    assert password.hex(" ") not in hidden


def test_empty_authentication_value_does_not_expose_what_follows() -> None:
    # AC 00: the password bytes that follow parse as a protocol-version element.
    damaged = bytearray(AARQ)
    damaged[27] = 0
    decoded = decode_apdu(bytes(damaged))
    hidden = everything_shown(decoded)
    assert PASSWORD.hex(" ").upper() not in hidden and PASSWORD.hex() not in hidden
    assert {"apdu.ber.order", "apdu.truncated"} <= {f.code for f in decoded.findings}
