"""The few client APDUs the probes send: AARQ (none / LLS), GET-Request-Normal, RLRQ.

Hand-built because they are short, fixed-shape and must be exactly right on the wire; each is
pinned against gurux-dlms 1.0.203's client in tests/probes/test_apdus.py. Encodings per
IEC 62056-53 / DLMS UA Green Book 9.4 (ACSE in BER, xDLMS InitiateRequest in A-XDR).
Replies are decoded with ``dlmsdoctor.codec.apdu.decode_apdu``.
"""

from __future__ import annotations

from dataclasses import dataclass

# application-context-name: LN referencing, no ciphering (Green Book 9.4.2.2.2)
CONTEXT_LN = bytes.fromhex("60857405080101")
MECHANISM_LLS = bytes.fromhex("60857405080201")
# Conformance proposed: what a reading client needs (GET, block transfer with GET, selective
# access, SET, ACTION, attribute0...), the block gurux-dlms 1.0.203 proposes by default.
CONFORMANCE = bytes.fromhex("401E5D")
DLMS_VERSION = 6
MAX_PDU_SIZE = 0xFFFF


def initiate_request(max_pdu_size: int = MAX_PDU_SIZE) -> bytes:
    """xDLMS InitiateRequest: no dedicated key, response allowed (default), version 6."""
    return (
        bytes((0x01, 0x00, 0x00, 0x00, DLMS_VERSION))
        + bytes((0x5F, 0x1F, 0x04, 0x00))
        + CONFORMANCE
        + max_pdu_size.to_bytes(2, "big")
    )


def _ber(tag: int, content: bytes) -> bytes:
    if len(content) < 0x80:
        return bytes((tag, len(content))) + content
    return bytes((tag, 0x81, len(content))) + content


def build_aarq(password: bytes | None = None, max_pdu_size: int = MAX_PDU_SIZE) -> bytes:
    """AARQ with LN context; with ``password`` it asks for Low Level Security (mechanism 1)."""
    body = _ber(0xA1, _ber(0x06, CONTEXT_LN))
    if password is not None:
        body += bytes((0x8A, 0x02, 0x07, 0x80))  # acse-requirements: authentication
        body += _ber(0x8B, MECHANISM_LLS)
        body += _ber(0xAC, _ber(0x80, password))
    body += _ber(0xBE, _ber(0x04, initiate_request(max_pdu_size)))
    return _ber(0x60, body)


def build_rlrq() -> bytes:
    """RLRQ with reason normal (0), as gurux-dlms sends it."""
    return bytes.fromhex("6203800100")


@dataclass(frozen=True, slots=True)
class CosemAttribute:
    key: str  # the Session.identity key it fills
    class_id: int
    obis: bytes
    attribute: int

    @property
    def obis_text(self) -> str:
        return ".".join(str(b) for b in self.obis)


def build_get_request(attr: CosemAttribute, invoke_id: int = 1) -> bytes:
    """GET-Request-Normal, confirmed, high priority; no selective access."""
    return (
        bytes((0xC0, 0x01, 0xC0 | (invoke_id & 0x0F)))
        + attr.class_id.to_bytes(2, "big")
        + attr.obis
        + bytes((attr.attribute, 0x00))
    )


IDENTITY_READS: tuple[CosemAttribute, ...] = (
    CosemAttribute("logical_device_name", 1, bytes((0, 0, 42, 0, 0, 255)), 2),
    CosemAttribute("serial_number", 1, bytes((0, 0, 96, 1, 0, 255)), 2),
    CosemAttribute("firmware", 1, bytes((1, 0, 0, 2, 0, 255)), 2),
    CosemAttribute("clock", 8, bytes((0, 0, 1, 0, 0, 255)), 2),
    CosemAttribute("hdlc_inactivity_timeout", 23, bytes((0, 0, 22, 0, 0, 255)), 8),
)
