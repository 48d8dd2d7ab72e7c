"""SNRM/UA parameter negotiation (IEC 62056-46 6.4.4.4.3.2): the four link parameters."""

from __future__ import annotations

from dataclasses import dataclass

from dlmsdoctor.codec.hdlc_fields import (
    PARAM_FORMAT_ID,
    PARAM_GROUP_ID,
    PARAM_MAX_INFO_RX,
    PARAM_MAX_INFO_TX,
    PARAM_WINDOW_RX,
    PARAM_WINDOW_TX,
)

PARAM_NAMES = {
    PARAM_MAX_INFO_TX: ("max_info_tx", "Maximum information field length, transmit"),
    PARAM_MAX_INFO_RX: ("max_info_rx", "Maximum information field length, receive"),
    PARAM_WINDOW_TX: ("window_tx", "Window size, transmit"),
    PARAM_WINDOW_RX: ("window_rx", "Window size, receive"),
}


@dataclass(frozen=True, slots=True)
class HdlcParams:
    """SNRM/UA negotiated parameters, seen from the sender of the frame that carries them."""

    max_info_tx: int = 128
    max_info_rx: int = 128
    window_tx: int = 1
    window_rx: int = 1

    def encode(self, *, omit_defaults: bool = False, window_bytes: int = 4) -> bytes:
        """The ``81 80 LL ...`` group.

        Max info lengths use the smallest length that holds the value (1 byte up to 255, else
        2), as gurux-dlms and meters do. Window sizes are sent in 4 bytes by default: that is
        what the DLMS UA Green Book example, gurux-dlms (client and server) and most meters send.
        ``omit_defaults`` drops parameters equal to the defaults (gurux's snrmRequest does this)
        and returns b"" when nothing is left.
        """
        body = bytearray()
        default = _DEFAULT_PARAMS
        for pid, value, dflt in (
            (PARAM_MAX_INFO_TX, self.max_info_tx, default.max_info_tx),
            (PARAM_MAX_INFO_RX, self.max_info_rx, default.max_info_rx),
        ):
            if omit_defaults and value == dflt:
                continue
            if value < 0x100:
                body += bytes((pid, 1, value))
            else:
                body += bytes((pid, 2)) + value.to_bytes(2, "big")
        for pid, value, dflt in (
            (PARAM_WINDOW_TX, self.window_tx, default.window_tx),
            (PARAM_WINDOW_RX, self.window_rx, default.window_rx),
        ):
            if omit_defaults and value == dflt:
                continue
            body += bytes((pid, window_bytes)) + value.to_bytes(window_bytes, "big")
        if omit_defaults and not body:
            return b""
        return bytes((PARAM_FORMAT_ID, PARAM_GROUP_ID, len(body))) + bytes(body)

    def as_dict(self, defaults_used: list[str] | None = None) -> dict[str, object]:
        return {
            "max_info_tx": self.max_info_tx,
            "max_info_rx": self.max_info_rx,
            "window_tx": self.window_tx,
            "window_rx": self.window_rx,
            "defaults_used": list(defaults_used or []),
        }


_DEFAULT_PARAMS = HdlcParams()
PARAM_KEYS = ("max_info_tx", "max_info_rx", "window_tx", "window_rx")
DEFAULT_PARAM_DICT: dict[str, object] = {k: getattr(_DEFAULT_PARAMS, k) for k in PARAM_KEYS}


def parse_params(info: bytes) -> HdlcParams | None:
    """The parameters of an SNRM/UA information field, or None if it is not a parameter group.

    Lenient (uses every parameter present whatever the group length says); lint with
    ``parse_hdlc`` to see what is wrong.
    """
    if len(info) < 3 or info[0] != PARAM_FORMAT_ID or info[1] != PARAM_GROUP_ID:
        return None
    values: dict[str, int] = {}
    pos = 3
    while pos + 2 <= len(info):
        pid, plen = info[pos], info[pos + 1]
        value_bytes = info[pos + 2 : pos + 2 + plen]
        if pid in PARAM_NAMES and len(value_bytes) == plen:
            values[PARAM_NAMES[pid][0]] = int.from_bytes(value_bytes, "big")
        pos += 2 + plen
    return HdlcParams(**values)
