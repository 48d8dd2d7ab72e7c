"""HDLC addresses: the server (logical/physical) and client (SAP) ends, encoded and decoded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dlmsdoctor.codec.hdlc_fields import _E, _W
from dlmsdoctor.codec.model import Finding, Span, hexs

_CLIENT_SAPS = {
    0x10: "public client",
    0x01: "management client",
    0x20: "commonly the reading/management client",
    0x00: "no-station",
    0x7F: "all-station broadcast",
}


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """An HDLC server address: upper (logical device) and lower (physical) parts.

    ``size`` is the number of address bytes on the wire: 1 (logical only, ``physical`` None),
    2 (7+7 bits) or 4 (14+14 bits).
    """

    logical: int
    physical: int | None = None
    size: int = 1

    def describe(self) -> str:
        if self.physical is None:
            return f"server {self.logical} ({self.size}-byte)"
        return f"server {self.logical}/{self.physical} ({self.size}-byte)"


def encode_server_address(addr: ServerAddress) -> bytes:
    """Wire bytes of a server address; raises ValueError for values that do not fit."""
    logical, physical, size = addr.logical, addr.physical, addr.size
    if size == 1:
        if physical is not None or not 0 <= logical <= 0x7F:
            raise ValueError("1-byte server address: logical 0..127, no physical part")
        return bytes(((logical << 1) | 1,))
    phys = 0 if physical is None else physical
    if size == 2:
        if not (0 <= logical <= 0x7F and 0 <= phys <= 0x7F):
            raise ValueError("2-byte server address: logical and physical 0..127")
        return bytes(((logical << 1) & 0xFE, (phys << 1) | 1))
    if size == 4:
        if not (0 <= logical <= 0x3FFF and 0 <= phys <= 0x3FFF):
            raise ValueError("4-byte server address: logical and physical 0..16383")
        return bytes(
            (
                (logical >> 7) << 1,
                (logical & 0x7F) << 1,
                (phys >> 7) << 1,
                ((phys & 0x7F) << 1) | 1,
            )
        )
    raise ValueError("server address size must be 1, 2 or 4")


def encode_client_address(sap: int) -> bytes:
    """The 1-byte client address ``SAP << 1 | 1``."""
    if not 0 <= sap <= 0x7F:
        raise ValueError("client SAP must be 0..127")
    return bytes(((sap << 1) | 1,))


def _server_meaning(logical: int, physical: int | None, size: int) -> str:
    parts = []
    broadcast = 0x7F if size <= 2 else 0x3FFF
    if logical == broadcast:
        parts.append("logical all-station broadcast")
    elif logical == 1:
        parts.append("logical 1 (management logical device)")
    else:
        parts.append(f"logical {logical}")
    if physical is not None:
        parts.append("physical all-station broadcast" if physical == broadcast else
                     f"physical {physical}")
    return f"server {', '.join(parts)}, {size}-byte address"


def _client_meaning(sap: int) -> str:
    name = _CLIENT_SAPS.get(sap)
    return f"client SAP {sap} ({name})" if name else f"client SAP {sap}"


def address_dict(raw: bytes, role: str) -> dict[str, object]:
    """The ``fields`` dict for an address; for role "server" splits upper/lower halves."""
    size = len(raw)
    if role == "client":
        return {"role": "client", "size": size, "logical": None, "physical": None,
                "sap": raw[0] >> 1 if size == 1 else _fold7(raw), "raw": raw.hex(" ").upper()}
    logical: int
    physical: int | None
    if size == 1:
        logical, physical = raw[0] >> 1, None
    elif size == 2:
        logical, physical = raw[0] >> 1, raw[1] >> 1
    elif size == 4:
        logical = ((raw[0] >> 1) << 7) | (raw[1] >> 1)
        physical = ((raw[2] >> 1) << 7) | (raw[3] >> 1)
    else:  # 3 bytes: invalid; report the whole value as the logical part
        logical, physical = _fold7(raw), None
    return {"role": "server", "size": size, "logical": logical, "physical": physical,
            "sap": None, "raw": raw.hex(" ").upper()}


def _fold7(raw: bytes | bytearray) -> int:
    value = 0
    for byte in raw:
        value = (value << 7) | (byte >> 1)
    return value


def describe_address(info: dict[str, object]) -> str:
    if info["role"] == "client":
        return f"client {info['sap']}"
    if info["physical"] is None:
        return f"server {info['logical']} ({info['size']}-byte)"
    return f"server {info['logical']}/{info['physical']} ({info['size']}-byte)"


def scan_address(buf: bytes, pos: int, limit: int) -> int:
    """Number of address bytes at ``pos`` (up to the byte with LSB 1), or -1 if none within 4."""
    end = min(pos + 4, limit)
    p = pos
    while p < end:
        if buf[p] & 1:
            return p - pos + 1
        p += 1
    return -1


def decode_address(
    buf: bytes, offset: int, role: str, limit: int | None = None
) -> tuple[dict[str, object] | None, int, list[Finding]]:
    """One HDLC address at ``offset`` read as ``role`` ("server" or "client").

    Returns the ``fields``-style dict (None when unterminated), the number of address bytes
    (0 when unterminated) and the findings about it. Never raises.
    """
    end = len(buf) if limit is None else min(limit, len(buf))
    if not 0 <= offset < end:
        return None, 0, [Finding("hdlc.address.unterminated", _E, min(max(offset, 0), len(buf)),
                                  0, "hdlc.address", "no address bytes")]
    length = scan_address(buf, offset, end)
    if length < 0:
        return None, 0, [Finding(
            "hdlc.address.unterminated", _E, offset, min(4, end - offset), "hdlc.address",
            "no address byte with the low bit set (address end) within 4 bytes", None,
            hexs(buf[offset : min(offset + 4, end)]))]
    raw = bytes(buf[offset : offset + length])
    info = address_dict(raw, role)
    findings: list[Finding] = []
    check_address_sizes(findings, (raw, info, offset))
    return info, length, findings


def check_address_sizes(
    findings: list[Finding], *ends: tuple[bytes, dict[str, object], int]
) -> None:
    for raw, info_d, apos in ends:
        if info_d["role"] == "server" and len(raw) == 3:
            findings.append(Finding(
                "hdlc.address.size3", _E, apos, 3, "hdlc.address",
                "3-byte server address: IEC 62056-46 allows 1, 2 or 4 bytes", "1, 2 or 4 bytes",
                "3 bytes"))
        elif info_d["role"] == "client" and len(raw) != 1:
            findings.append(Finding(
                "hdlc.address.client_size", _W, apos, len(raw), "hdlc.address",
                "client address should be 1 byte (SAP << 1 | 1)", "1 byte", f"{len(raw)} bytes"))


def address_span(mk: Callable[..., Span], pos: int, raw: bytes, info: dict[str, object],
                  name: str, label: str, note: str) -> Span:
    if info["role"] == "client":
        sap = info["sap"]
        meaning = _client_meaning(sap if isinstance(sap, int) else 0)
        value: object = sap
    else:
        logical = info["logical"]
        physical = info["physical"]
        meaning = _server_meaning(logical if isinstance(logical, int) else 0,
                                  physical if isinstance(physical, int) else None, len(raw))
        value = logical if physical is None else f"{logical}/{physical}"
    if note:
        meaning = f"{meaning} ({note})"
    return mk(pos, len(raw), name, label, value, meaning)
