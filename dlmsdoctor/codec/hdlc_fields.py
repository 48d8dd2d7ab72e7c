"""HDLC field values (IEC 62056-46, ISO/IEC 13239) shared by the builders and the parser:
flags, format, control, LLC, FRMR reason bits, parameter ids, and the frame CRC.
"""

from __future__ import annotations

import binascii

from dlmsdoctor.codec.model import Severity

FLAG = 0x7E
FORMAT_TYPE_A = 0xA000
SEGMENT_BIT = 0x0800
MAX_LENGTH = 0x07FF

# Control fields with the P/F bit clear (IEC 62056-46 6.4.3).
CTRL_SNRM = 0x83
CTRL_DISC = 0x43
CTRL_UA = 0x63
CTRL_DM = 0x0F
CTRL_FRMR = 0x87
CTRL_UI = 0x03
PF_BIT = 0x10

_U_FRAMES = {
    CTRL_SNRM: "SNRM",
    CTRL_DISC: "DISC",
    CTRL_UA: "UA",
    CTRL_DM: "DM",
    CTRL_FRMR: "FRMR",
    CTRL_UI: "UI",
}
U_MEANING = {
    "SNRM": "set normal response mode (connect the link)",
    "DISC": "disconnect the link",
    "UA": "unnumbered acknowledge",
    "DM": "disconnected mode: link not connected or refused",
    "FRMR": "frame reject: the peer rejected a frame",
    "UI": "unnumbered information",
}
_S_FRAMES = ("RR", "RNR", "REJ", "SREJ")

LLC_TO_SERVER = b"\xe6\xe6\x00"
LLC_TO_CLIENT = b"\xe6\xe7\x00"
LLC_TEXT = {LLC_TO_SERVER: "E6 E6 00", LLC_TO_CLIENT: "E6 E7 00"}

# FRMR reason bits in the third info octet (ISO/IEC 13239, modulo 8).
FRMR_INVALID_CONTROL = 0x01  # W
FRMR_INFO_NOT_PERMITTED = 0x02  # X
FRMR_INFO_TOO_LONG = 0x04  # Y
FRMR_INVALID_NR = 0x08  # Z
FRMR_REASONS = (
    (FRMR_INVALID_CONTROL, "W: control field undefined or not implemented"),
    (FRMR_INFO_NOT_PERMITTED, "X: information field not permitted with this frame"),
    (FRMR_INFO_TOO_LONG, "Y: information field longer than the negotiated maximum"),
    (FRMR_INVALID_NR, "Z: invalid N(R)"),
)

# SNRM/UA parameter negotiation (IEC 62056-46 6.4.4.4.3.2).
PARAM_FORMAT_ID = 0x81
PARAM_GROUP_ID = 0x80
PARAM_MAX_INFO_TX = 0x05
PARAM_MAX_INFO_RX = 0x06
PARAM_WINDOW_TX = 0x07
PARAM_WINDOW_RX = 0x08


# CRC-16/X.25 at C speed: it is CRC-16/CCITT (binascii.crc_hqx) with every byte and the result
# bit-reversed. Same values as ``crc.crc16_x25`` (tested); about 4x faster on a 40-byte frame.
_REV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc16_x25(data: bytes | bytearray) -> int:
    crc = binascii.crc_hqx(data.translate(_REV8), 0xFFFF)
    return ((_REV8[crc & 0xFF] << 8) | _REV8[crc >> 8]) ^ 0xFFFF


def control_info(ctrl: int) -> tuple[str, int | None, int | None, bool]:
    """(frame type, N(S), N(R), P/F) from a control byte."""
    pf = bool(ctrl & PF_BIT)
    if not ctrl & 1:
        return "I", (ctrl >> 1) & 7, (ctrl >> 5) & 7, pf
    if ctrl & 3 == 1:
        return _S_FRAMES[(ctrl >> 2) & 3], None, (ctrl >> 5) & 7, pf
    return _U_FRAMES.get(ctrl & ~PF_BIT & 0xFF, "unknown"), None, None, pf


# Short names for finding severities: the parser emits dozens of findings.
_E = Severity.ERROR
_W = Severity.WARNING
_I = Severity.INFO
