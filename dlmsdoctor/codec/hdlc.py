"""HDLC frames as DLMS/COSEM uses them (IEC 62056-46, ISO/IEC 13239): build, parse, lint, repair.

Pure and sans-I/O. ``parse_hdlc`` decodes one frame and never raises, whatever the bytes: it
returns a ``DecodedFrame`` whose spans cover the frame in wire order (absolute offsets) and whose
findings say what is wrong, where, and what the right value would be.

Frame layout: ``7E | format(2) | dest | src | control | [HCS(2) info] | FCS(2) | 7E``. The format
field is ``1010 S LLLLLLLLLLL``: type 0xA, segmentation bit, 11-bit length of everything between
the flags. The HCS (over format..control) is present only when an information field follows.

Direction: ``"tx"`` is client to server (dest = server address, src = client address), ``"rx"``
server to client. Builders take ``to_server: bool`` for frames either side may send (I, RR, RNR,
UI); SNRM/DISC are always to the server, UA/DM/FRMR always to the client.

Finding codes emitted here (stable; ``corrected`` filled where it can be computed):

- ``hdlc.empty`` (error): no bytes at the offset.
- ``hdlc.flag.missing_start`` / ``hdlc.flag.missing_end`` (error): opening/closing 0x7E absent.
- ``hdlc.format.type`` (error): format type nibble is not 0xA (not an HDLC type 3 frame).
- ``hdlc.length.mismatch`` (error): the length field disagrees with the bytes between the flags;
  ``corrected`` is the right length (hex of the right format field).
- ``hdlc.length.truncated`` (error): the bytes end before the length field says (kind PARTIAL).
- ``hdlc.frame.short`` (error): too few bytes for addresses, control and FCS.
- ``hdlc.address.unterminated`` (error): no address byte with LSB 1 within 4 bytes.
- ``hdlc.address.size3`` (error): 3-byte server address (only 1, 2 or 4 are valid).
- ``hdlc.address.client_size`` (warning): client address longer than 1 byte.
- ``hdlc.direction.assumed`` (info): 1-byte addresses and nothing else to tell direction.
- ``hdlc.control.unknown`` (error): control field is no frame type IEC 62056-46 uses.
- ``hdlc.hcs.mismatch`` / ``hdlc.fcs.mismatch`` (error): ``corrected`` is the
  right CRC, hex, wire order.
- ``hdlc.info.unexpected`` (warning): information field in DISC, DM, RR or RNR.
- ``hdlc.params.format_id`` / ``hdlc.params.group_id`` (error): SNRM/UA info not ``81 80``.
- ``hdlc.params.group_length`` (error): group length differs from the bytes that follow
  (``corrected`` = the right group length, hex).
- ``hdlc.params.length`` (error): a parameter's length runs past the information field, or a
  parameter value has a length its type cannot have (0 or > 4 bytes).
- ``hdlc.params.unknown`` (warning): parameter id other than 0x05..0x08.
- ``hdlc.params.value`` (warning): window size outside 1..7, max info length outside 32..2030.
- ``hdlc.llc.missing`` (warning): I/UI information field does not start with E6 E6/E6 E7
  (normal only for the continuation segments of a segmented APDU).
- ``hdlc.llc.quality`` (warning): LLC quality byte not 0x00.
- ``hdlc.frmr.length`` (warning): FRMR information field not the 3 bytes ISO/IEC 13239 defines.
- ``hdlc.segment.sequence`` (warning, from ``Reassembler``): N(S) out of order.
- ``hdlc.segment.incomplete`` (warning, from ``Reassembler``): a new APDU (LLC header) began
  before the previous segmented APDU was complete; its segments are dropped.
- ``hdlc.decoder_error`` (error): a bug in this decoder; the frame comes back as GARBAGE.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass, field

from dlmsdoctor.codec.model import DecodedFrame, Finding, FrameKind, Severity, Span, hexs

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
_U_MEANING = {
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
_LLC_TEXT = {LLC_TO_SERVER: "E6 E6 00", LLC_TO_CLIENT: "E6 E7 00"}

# FRMR reason bits in the third info octet (ISO/IEC 13239, modulo 8).
FRMR_INVALID_CONTROL = 0x01  # W
FRMR_INFO_NOT_PERMITTED = 0x02  # X
FRMR_INFO_TOO_LONG = 0x04  # Y
FRMR_INVALID_NR = 0x08  # Z
_FRMR_REASONS = (
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
_PARAM_NAMES = {
    PARAM_MAX_INFO_TX: ("max_info_tx", "Maximum information field length, transmit"),
    PARAM_MAX_INFO_RX: ("max_info_rx", "Maximum information field length, receive"),
    PARAM_WINDOW_TX: ("window_tx", "Window size, transmit"),
    PARAM_WINDOW_RX: ("window_rx", "Window size, receive"),
}

_CLIENT_SAPS = {
    0x10: "public client",
    0x01: "management client",
    0x20: "commonly the reading/management client",
    0x00: "no-station",
    0x7F: "all-station broadcast",
}


# --------------------------------------------------------------------------- addresses


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


def _address_dict(raw: bytes, role: str) -> dict[str, object]:
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


def _describe_address(info: dict[str, object]) -> str:
    if info["role"] == "client":
        return f"client {info['sap']}"
    if info["physical"] is None:
        return f"server {info['logical']} ({info['size']}-byte)"
    return f"server {info['logical']}/{info['physical']} ({info['size']}-byte)"


# --------------------------------------------------------------------------- parameters


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
_PARAM_KEYS = ("max_info_tx", "max_info_rx", "window_tx", "window_rx")
_DEFAULT_PARAM_DICT: dict[str, object] = {k: getattr(_DEFAULT_PARAMS, k) for k in _PARAM_KEYS}

# CRC-16/X.25 at C speed: it is CRC-16/CCITT (binascii.crc_hqx) with every byte and the result
# bit-reversed. Same values as ``crc.crc16_x25`` (tested); about 4x faster on a 40-byte frame.
_REV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc16_x25(data: bytes | bytearray) -> int:
    crc = binascii.crc_hqx(data.translate(_REV8), 0xFFFF)
    return ((_REV8[crc & 0xFF] << 8) | _REV8[crc >> 8]) ^ 0xFFFF


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
        if pid in _PARAM_NAMES and len(value_bytes) == plen:
            values[_PARAM_NAMES[pid][0]] = int.from_bytes(value_bytes, "big")
        pos += 2 + plen
    return HdlcParams(**values)


# --------------------------------------------------------------------------- builders


def build_frame(
    *, dest: bytes, src: bytes, control: int, info: bytes = b"", segmented: bool = False
) -> bytes:
    """A complete frame with flags, format, HCS (only when ``info`` is non-empty) and FCS."""
    length = 2 + len(dest) + len(src) + 1 + 2 + ((2 + len(info)) if info else 0)
    if length > MAX_LENGTH:
        raise ValueError(f"frame length {length} exceeds the 11-bit length field")
    fmt = FORMAT_TYPE_A | (SEGMENT_BIT if segmented else 0) | length
    body = bytearray(fmt.to_bytes(2, "big"))
    body += dest
    body += src
    body.append(control & 0xFF)
    if info:
        body += crc16_x25(body).to_bytes(2, "little")
        body += info
    body += crc16_x25(body).to_bytes(2, "little")
    return b"\x7e" + bytes(body) + b"\x7e"


def _ends(server: ServerAddress, client_sap: int, to_server: bool) -> tuple[bytes, bytes]:
    s = encode_server_address(server)
    c = encode_client_address(client_sap)
    return (s, c) if to_server else (c, s)


def build_snrm(
    server: ServerAddress,
    client_sap: int,
    params: HdlcParams | None = None,
    *,
    omit_defaults: bool = True,
) -> bytes:
    """SNRM with P set. With ``params``, the info field lists the parameters; like gurux's
    ``snrmRequest`` only non-default ones unless ``omit_defaults`` is False."""
    dest, src = _ends(server, client_sap, True)
    info = params.encode(omit_defaults=omit_defaults) if params is not None else b""
    return build_frame(dest=dest, src=src, control=CTRL_SNRM | PF_BIT, info=info)


def build_ua(server: ServerAddress, client_sap: int, params: HdlcParams | None = None) -> bytes:
    """UA with F set; with ``params`` it carries all four parameters (as gurux's server does)."""
    dest, src = _ends(server, client_sap, False)
    info = params.encode() if params is not None else b""
    return build_frame(dest=dest, src=src, control=CTRL_UA | PF_BIT, info=info)


def build_disc(server: ServerAddress, client_sap: int) -> bytes:
    dest, src = _ends(server, client_sap, True)
    return build_frame(dest=dest, src=src, control=CTRL_DISC | PF_BIT)


def build_dm(server: ServerAddress, client_sap: int) -> bytes:
    dest, src = _ends(server, client_sap, False)
    return build_frame(dest=dest, src=src, control=CTRL_DM | PF_BIT)


def build_frmr(
    server: ServerAddress,
    client_sap: int,
    rejected_control: int,
    reasons: int = FRMR_INVALID_CONTROL,
    *,
    vs: int = 0,
    vr: int = 0,
    rejected_was_response: bool = False,
) -> bytes:
    """FRMR with F set and the 3-byte ISO/IEC 13239 info: rejected control, V(S)/C-R/V(R), reasons
    (a mask of ``FRMR_INVALID_CONTROL`` ``FRMR_INFO_NOT_PERMITTED`` ``FRMR_INFO_TOO_LONG``
    ``FRMR_INVALID_NR``)."""
    dest, src = _ends(server, client_sap, False)
    second = ((vr & 7) << 5) | (0x10 if rejected_was_response else 0) | ((vs & 7) << 1)
    info = bytes((rejected_control & 0xFF, second, reasons & 0x1F))
    return build_frame(dest=dest, src=src, control=CTRL_FRMR | PF_BIT, info=info)


def build_i(
    server: ServerAddress,
    client_sap: int,
    *,
    to_server: bool,
    ns: int,
    nr: int,
    info: bytes,
    final: bool = True,
    segmented: bool = False,
    llc: bool = True,
) -> bytes:
    """I-frame. ``info`` is the APDU (segment) without LLC; ``llc`` prepends E6 E6 00 (to the
    server) or E6 E7 00 (to the client): pass False for continuation segments."""
    dest, src = _ends(server, client_sap, to_server)
    control = ((nr & 7) << 5) | (PF_BIT if final else 0) | ((ns & 7) << 1)
    if llc:
        info = (LLC_TO_SERVER if to_server else LLC_TO_CLIENT) + info
    return build_frame(dest=dest, src=src, control=control, info=info, segmented=segmented)


def build_rr(
    server: ServerAddress, client_sap: int, *, to_server: bool, nr: int, final: bool = True
) -> bytes:
    dest, src = _ends(server, client_sap, to_server)
    return build_frame(dest=dest, src=src, control=((nr & 7) << 5) | (PF_BIT if final else 0) | 1)


def build_rnr(
    server: ServerAddress, client_sap: int, *, to_server: bool, nr: int, final: bool = True
) -> bytes:
    dest, src = _ends(server, client_sap, to_server)
    return build_frame(dest=dest, src=src, control=((nr & 7) << 5) | (PF_BIT if final else 0) | 5)


def build_ui(
    server: ServerAddress,
    client_sap: int,
    *,
    to_server: bool,
    info: bytes,
    final: bool = True,
    llc: bool = True,
) -> bytes:
    dest, src = _ends(server, client_sap, to_server)
    if llc:
        info = (LLC_TO_SERVER if to_server else LLC_TO_CLIENT) + info
    return build_frame(
        dest=dest, src=src, control=CTRL_UI | (PF_BIT if final else 0), info=info
    )


# --------------------------------------------------------------------------- extent


def frame_extent(buf: bytes | bytearray | memoryview, offset: int = 0) -> int | None:
    """End offset (exclusive, closing flag included) of the frame whose opening flag is at
    ``offset``, per its length field.

    None when fewer than 3 bytes are there yet; when ``buf[offset]`` is not 0x7E, the format
    type is not 0xA or the length is too small for any frame (not HDLC: tell this from "wait for
    more" with ``len(buf) - offset >= 3``); or when the bytes up to the end have not all arrived.
    A wrong length field makes this extent wrong: ``parse_hdlc(...).end`` finds the real end
    (a flag after a right FCS) when the bytes are there.
    """
    if offset < 0 or offset + 3 > len(buf) or buf[offset] != FLAG:
        return None
    hi = buf[offset + 1]
    if hi & 0xF0 != 0xA0:
        return None
    length = ((hi & 0x07) << 8) | buf[offset + 2]
    if length < 7:  # format 2 + dest 1 + src 1 + control 1 + FCS 2
        return None
    end = offset + length + 2
    return end if end <= len(buf) else None


# --------------------------------------------------------------------------- parser


def _finding(
    code: str,
    severity: Severity,
    offset: int,
    length: int,
    fld: str,
    message: str,
    expected: str | None = None,
    found: str | None = None,
    corrected: str | None = None,
) -> Finding:
    return Finding(code, severity, offset, length, fld, message, expected, found, corrected)


_E = Severity.ERROR
_W = Severity.WARNING
_I = Severity.INFO


def _scan_address(buf: bytes, pos: int, limit: int) -> int:
    """Number of address bytes at ``pos`` (up to the byte with LSB 1), or -1 if none within 4."""
    end = min(pos + 4, limit)
    p = pos
    while p < end:
        if buf[p] & 1:
            return p - pos + 1
        p += 1
    return -1


def _find_closing(buf: bytes, fmt_pos: int, start: int) -> int:
    """First position >= ``start`` holding a 0x7E whose preceding two bytes are a right FCS.

    Used only when the length field is wrong, to find where the frame really ends.
    """
    limit = min(len(buf), fmt_pos + MAX_LENGTH + 8)
    p = buf.find(b"\x7e", start, limit)
    while p != -1:
        if p - fmt_pos >= 7:
            fcs = buf[p - 2] | (buf[p - 1] << 8)
            if crc16_x25(buf[fmt_pos : p - 2]) == fcs:
                return p
        p = buf.find(b"\x7e", p + 1, limit)
    return -1


def _control_info(ctrl: int) -> tuple[str, int | None, int | None, bool]:
    """(frame type, N(S), N(R), P/F) from a control byte."""
    pf = bool(ctrl & PF_BIT)
    if not ctrl & 1:
        return "I", (ctrl >> 1) & 7, (ctrl >> 5) & 7, pf
    if ctrl & 3 == 1:
        return _S_FRAMES[(ctrl >> 2) & 3], None, (ctrl >> 5) & 7, pf
    return _U_FRAMES.get(ctrl & ~PF_BIT & 0xFF, "unknown"), None, None, pf


def parse_hdlc(
    buf: bytes | bytearray | memoryview,
    offset: int = 0,
    direction: str | None = None,
    *,
    lazy_spans: bool = True,
) -> DecodedFrame:
    """Decode one HDLC frame starting at ``offset`` (opening flag expected). Never raises.

    Findings, fields, summary and apdu are computed at once; with ``lazy_spans`` (the default)
    the span tree is built the first time ``.spans`` is read, by decoding again: most frames of
    a long capture are never shown, and building spans is most of the cost.
    """
    try:
        data = buf if type(buf) is bytes else bytes(buf)
        return _parse(data, offset, direction, not lazy_spans)
    except Exception as exc:  # a decoder bug must not take the caller down with it
        data = bytes(buf[offset:]) if 0 <= offset <= len(buf) else b""
        return DecodedFrame(
            kind=FrameKind.GARBAGE,
            offset=offset,
            data=data,
            summary=f"HDLC decoder error: {exc!r}",
            findings=(
                _finding("hdlc.decoder_error", _E, offset, len(data), "hdlc",
                         f"internal decoder error {exc!r}; please report these bytes"),
            ),
        )


_NO_SPAN = Span(0, 0, "hdlc.none", "")
_SPAN_SETTERS = tuple(
    getattr(Span.__dict__[name], "__set__")  # noqa: B009  (slot descriptors, not attributes)
    for name in ("offset", "length", "name", "label", "value", "meaning", "children", "secret")
)


def _span(
    offset: int,
    length: int,
    name: str,
    label: str,
    value: object = None,
    meaning: str = "",
    children: tuple[Span, ...] = (),
) -> Span:
    """``Span(...)`` at half the cost: a frame has 10 to 30 spans and the frozen-dataclass
    ``__init__`` dominated the decode. Gives an instance equal to the one ``Span()`` builds."""
    span = object.__new__(Span)
    s_off, s_len, s_name, s_label, s_value, s_meaning, s_children, s_secret = _SPAN_SETTERS
    s_off(span, offset)
    s_len(span, length)
    s_name(span, name)
    s_label(span, label)
    s_value(span, value)
    s_meaning(span, meaning)
    s_children(span, children)
    s_secret(span, False)
    return span


def _no_span(*_args: object) -> Span:
    return _NO_SPAN


_SPANS_SLOT = DecodedFrame.__dict__["spans"]  # the dataclass slot behind the lazy property


class _LazySpansFrame(DecodedFrame):
    """A DecodedFrame whose ``spans`` are decoded on first access (then kept).

    Equal in every other respect to what ``parse_hdlc(..., lazy_spans=False)`` returns.
    """

    __slots__ = ("_direction", "_pending", "_source", "_start")
    _direction: str | None
    _pending: bool
    _source: bytes
    _start: int

    @classmethod
    def make(cls, kind: FrameKind, offset: int, data: bytes, summary: str,
             findings: tuple[Finding, ...], fields: dict[str, object], apdu: bytes | None,
             source: bytes, start: int, direction: str | None) -> DecodedFrame:
        # Fill the slots directly: the frozen-dataclass __init__ costs more than the decode.
        out = object.__new__(cls)
        s_kind, s_off, s_data, s_sum, s_spans, s_find, s_fields, s_apdu, s_src, s_start, s_dir, \
            s_pending = _LAZY_SETTERS
        s_kind(out, kind)
        s_off(out, offset)
        s_data(out, data)
        s_sum(out, summary)
        s_spans(out, ())
        s_find(out, findings)
        s_fields(out, fields)
        s_apdu(out, apdu)
        s_src(out, source)
        s_start(out, start)
        s_dir(out, direction)
        s_pending(out, True)
        return out

    @property
    def spans(self) -> tuple[Span, ...]:
        if self._pending:
            full = _parse(self._source, self._start, self._direction, True)
            _SPANS_SLOT.__set__(self, full.spans)
            object.__setattr__(self, "_pending", False)
            object.__setattr__(self, "_source", b"")
        spans: tuple[Span, ...] = _SPANS_SLOT.__get__(self)
        return spans

    @spans.setter
    def spans(self, value: tuple[Span, ...]) -> None:
        # Reached through object.__setattr__ in the dataclass __init__ (and replace()).
        _SPANS_SLOT.__set__(self, value)
        object.__setattr__(self, "_pending", False)


_LAZY_SETTERS = tuple(
    getattr(cls.__dict__[name], "__set__")  # noqa: B009  (slot descriptors, not attributes)
    for cls, name in (
        *((DecodedFrame, n) for n in ("kind", "offset", "data", "summary", "spans", "findings",
                                      "fields", "apdu")),
        *((_LazySpansFrame, n) for n in ("_source", "_start", "_direction", "_pending")),
    )
)


class _Ctx:
    """Accumulators for one parse (slots keep it cheap).

    ``mk`` builds spans: ``Span`` itself, or ``_no_span`` when the caller only wants the lint
    (findings, fields, summary); spans are then built on first access (see ``_LazySpansFrame``).
    """

    __slots__ = ("findings", "mk", "source", "spans", "start", "want")

    def __init__(self, want_spans: bool, source: bytes, start: int) -> None:
        self.spans: list[Span] = []
        self.findings: list[Finding] = []
        self.want = want_spans
        self.mk: Callable[..., Span] = _span if want_spans else _no_span
        self.source = source
        self.start = start

    def frame(self, kind: FrameKind, offset: int, data: bytes, summary: str,
              fields: dict[str, object], apdu: bytes | None = None,
              direction: str | None = None) -> DecodedFrame:
        if self.want:
            out = object.__new__(DecodedFrame)
            values = (kind, offset, data, summary, tuple(self.spans), tuple(self.findings),
                      fields, apdu)
            for setter, value in zip(_LAZY_SETTERS[:8], values, strict=True):
                setter(out, value)
            return out
        return _LazySpansFrame.make(kind, offset, data, summary, tuple(self.findings), fields,
                                    apdu, self.source, self.start, direction)


def _parse(buf: bytes, offset: int, direction: str | None, want_spans: bool) -> DecodedFrame:
    n = len(buf)
    if offset < 0 or offset >= n:
        start = min(max(offset, 0), n)
        return DecodedFrame(
            kind=FrameKind.PARTIAL, offset=start, data=b"", summary="HDLC: no bytes",
            findings=(_finding("hdlc.empty", _E, start, 0, "hdlc", "no bytes to decode"),),
        )
    ctx = _Ctx(want_spans, buf, offset)
    mk = ctx.mk
    spans, findings = ctx.spans, ctx.findings
    fields: dict[str, object] = {}

    if buf[offset] == FLAG:
        spans.append(mk(offset, 1, "hdlc.flag.start", "Opening flag", 0x7E))
        fmt_pos = offset + 1
    else:
        findings.append(_finding(
            "hdlc.flag.missing_start", _E, offset, 1, "hdlc.flag.start",
            "frame does not start with the 0x7E flag", "7E", f"{buf[offset]:02X}"))
        fmt_pos = offset

    if fmt_pos + 2 > n:
        findings.append(_finding(
            "hdlc.length.truncated", _E, offset, n - offset, "hdlc.format",
            "bytes end before the format field", "2 format bytes", f"{n - fmt_pos}"))
        return ctx.frame(FrameKind.PARTIAL, offset, buf[offset:], "HDLC partial: no format",
                         fields, None, direction)

    fmt = (buf[fmt_pos] << 8) | buf[fmt_pos + 1]
    declared = fmt & MAX_LENGTH
    segmented = bool(fmt & SEGMENT_BIT)
    type_ok = (fmt & 0xF000) == FORMAT_TYPE_A
    fields["segmented"] = segmented
    if not type_ok:
        findings.append(_finding(
            "hdlc.format.type", _E, fmt_pos, 1, "hdlc.format.type",
            "format type is not 0xA: these bytes are not an HDLC frame as IEC 62056-46 uses",
            "A", f"{fmt >> 12:X}"))

    # Where does the content (format .. FCS) end? Trust the length field when the closing flag
    # is where it says; otherwise look for a flag preceded by a right FCS.
    declared_end = fmt_pos + declared
    content_end = -1
    closing_present = False
    if declared >= 7 and declared_end < n and buf[declared_end] == FLAG:
        content_end, closing_present = declared_end, True
    else:
        found_end = _find_closing(buf, fmt_pos, fmt_pos + 7)
        if found_end != -1:
            content_end, closing_present = found_end, True
            right = found_end - fmt_pos
            right_fmt = (fmt & ~MAX_LENGTH) | right if right <= MAX_LENGTH else fmt
            findings.append(_finding(
                "hdlc.length.mismatch", _E, fmt_pos, 2, "hdlc.format.length",
                f"length field says {declared} bytes between the flags but the frame has {right}",
                str(right), str(declared), f"{right_fmt:04X}"))
        elif declared_end > n or (declared_end == n and declared >= 7):
            # Not all bytes here (or just the closing flag missing): a partial frame.
            have = n - fmt_pos
            if declared_end > n:
                findings.append(_finding(
                    "hdlc.length.truncated", _E, fmt_pos, have, "hdlc.format.length",
                    f"length field says {declared} bytes but only {have} arrived",
                    str(declared), str(have)))
                return _finish(FrameKind.PARTIAL, buf, offset, n, fmt_pos, fmt, n, False,
                               ctx, fields, direction, truncated=True)
            findings.append(_finding(
                "hdlc.flag.missing_end", _E, n, 0, "hdlc.flag.end",
                "bytes end where the closing 0x7E flag should be", "7E", "end of data"))
            return _finish(FrameKind.PARTIAL, buf, offset, n, fmt_pos, fmt, n, False,
                           ctx, fields, direction)
        else:
            content_end = max(declared_end, min(fmt_pos + 2, n))
            if declared < 7:
                findings.append(_finding(
                    "hdlc.frame.short", _E, fmt_pos, 2, "hdlc.format.length",
                    f"length {declared} is too small for any frame (at least 7)",
                    ">= 7", str(declared)))
            else:
                findings.append(_finding(
                    "hdlc.flag.missing_end", _E, declared_end, 1, "hdlc.flag.end",
                    "no closing 0x7E flag where the length field says the frame ends",
                    "7E", f"{buf[declared_end]:02X}"))
    end = content_end + 1 if closing_present else content_end
    return _finish(FrameKind.HDLC, buf, offset, end, fmt_pos, fmt, content_end, closing_present,
                   ctx, fields, direction)


def _finish(
    kind: FrameKind,
    buf: bytes,
    offset: int,
    end: int,
    fmt_pos: int,
    fmt: int,
    content_end: int,
    closing_present: bool,
    ctx: _Ctx,
    fields: dict[str, object],
    direction: str | None,
    truncated: bool = False,
) -> DecodedFrame:
    mk, want = ctx.mk, ctx.want
    given_direction = direction
    spans, findings = ctx.spans, ctx.findings
    declared = fmt & MAX_LENGTH
    seg = bool(fmt & SEGMENT_BIT)
    if want:
        spans.append(mk(
            fmt_pos, 2, "hdlc.format", "Frame format", fmt,
            f"type {fmt >> 12:X}, {'segmented' if seg else 'not segmented'}, length {declared}",
            (
                mk(fmt_pos, 1, "hdlc.format.type", "Format type", fmt >> 12,
                   "type 3 (0xA)" if fmt >> 12 == 0xA else "not HDLC type 3"),
                mk(fmt_pos, 1, "hdlc.format.segmentation", "Segmentation bit", seg,
                   "more segments follow" if seg else "last or only segment"),
                mk(fmt_pos, 2, "hdlc.format.length", "Frame length", declared,
                   "bytes between the flags"),
            ),
        ))
    summary_tail = ""
    pos = fmt_pos + 2
    # Addresses and control must leave 2 bytes for the FCS (unless the frame is truncated).
    limit = content_end if truncated else max(content_end - 2, pos)
    # 1-byte addresses are the common case: test them inline before the general scan.
    dest_len = 1 if pos < limit and buf[pos] & 1 else _scan_address(buf, pos, limit)
    if dest_len > 0:
        p2 = pos + dest_len
        src_len = 1 if p2 < limit and buf[p2] & 1 else _scan_address(buf, p2, limit)
    else:
        src_len = -1
    ctrl_pos = pos + dest_len + src_len if src_len > 0 else -1
    if dest_len < 0 or src_len < 0 or ctrl_pos >= limit:
        where = pos if dest_len < 0 else pos + max(dest_len, 0)
        if limit - where >= 4 or (not truncated and limit - where > 0):
            findings.append(_finding(
                "hdlc.address.unterminated", _E, where, min(4, limit - where), "hdlc.address",
                "no address byte with the low bit set (address end) within 4 bytes", None,
                hexs(buf[where : min(where + 4, limit)])))
        elif not truncated:
            findings.append(_finding(
                "hdlc.frame.short", _E, fmt_pos, content_end - fmt_pos, "hdlc",
                "too few bytes for addresses, control and FCS", ">= 7", str(content_end - fmt_pos)))
        if pos < limit:
            spans.append(mk(pos, limit - pos, "hdlc.unparsed", "Unparsed bytes"))
        if not truncated and content_end - 2 >= pos:
            _check_fcs(buf, fmt_pos, content_end, ctx)
        if closing_present:
            spans.append(mk(content_end, 1, "hdlc.flag.end", "Closing flag", 0x7E))
        return ctx.frame(kind, offset, buf[offset:end], "HDLC frame with bad addresses", fields,
                         None, direction)

    dest_raw = buf[pos : pos + dest_len]
    src_raw = buf[pos + dest_len : ctrl_pos]
    ctrl = buf[ctrl_pos]
    ftype, ns, nr, pf = _control_info(ctrl)
    fields["frame_type"] = ftype
    fields["poll_final"] = pf
    if ns is not None:
        fields["ns"] = ns
    if nr is not None:
        fields["nr"] = nr

    # Info field bounds: HCS only when there is more than the FCS after the control byte.
    info_pos = ctrl_pos + 3
    rem = content_end - (ctrl_pos + 1)
    has_info = rem > 2 if not truncated else rem > 0
    info_end = content_end - 2 if not truncated else content_end
    info = buf[info_pos:info_end] if has_info and info_end > info_pos else b""

    # Direction: given, else from the frame type, the LLC, the address sizes, else assumed.
    dir_note = ""
    if direction not in ("tx", "rx"):
        if ftype in ("SNRM", "DISC"):
            direction = "tx"
        elif ftype in ("UA", "DM", "FRMR"):
            direction = "rx"
        elif info[:2] == b"\xe6\xe6":
            direction = "tx"
        elif info[:2] == b"\xe6\xe7":
            direction = "rx"
        elif dest_len > 1 and src_len == 1:
            direction = "tx"
        elif src_len > 1 and dest_len == 1:
            direction = "rx"
        else:
            direction = "tx"
            dir_note = "assumed client->server: 1-byte addresses and nothing else tells"
            findings.append(_finding(
                "hdlc.direction.assumed", _I, pos, dest_len + src_len, "hdlc.address",
                "both addresses are 1 byte and the frame type does not say who sent it: "
                "read as client -> server (destination = server)"))
    fields["direction"] = direction
    to_server = direction == "tx"
    dest_info = _address_dict(dest_raw, "server" if to_server else "client")
    src_info = _address_dict(src_raw, "client" if to_server else "server")
    fields["dest"] = dest_info
    fields["src"] = src_info
    if want:
        spans.append(_address_span(mk, pos, dest_raw, dest_info, "hdlc.address.dest",
                                   "Destination address", dir_note))
        spans.append(_address_span(mk, pos + dest_len, src_raw, src_info, "hdlc.address.src",
                                   "Source address", dir_note))
    server_len, client_len = (dest_len, src_len) if to_server else (src_len, dest_len)
    if server_len == 3 or client_len != 1:
        _check_address_sizes(findings, (dest_raw, dest_info, pos),
                             (src_raw, src_info, pos + dest_len))

    if want:
        ctrl_children = [
            mk(ctrl_pos, 1, "hdlc.control.type", "Frame type", ftype, _U_MEANING.get(ftype, "")),
            mk(ctrl_pos, 1, "hdlc.control.pf", "Poll/final bit", pf,
               ("poll" if to_server else "final") if pf else "clear"),
        ]
        if ns is not None:
            ctrl_children.append(mk(ctrl_pos, 1, "hdlc.control.ns", "N(S)", ns, "send sequence"))
        if nr is not None:
            ctrl_children.append(mk(ctrl_pos, 1, "hdlc.control.nr", "N(R)", nr,
                                    "receive sequence"))
        spans.append(mk(ctrl_pos, 1, "hdlc.control", "Control", ctrl,
                        f"{ftype}{' P/F' if pf else ''}", tuple(ctrl_children)))
    if ftype == "unknown" or ftype in ("REJ", "SREJ"):
        findings.append(_finding(
            "hdlc.control.unknown", _E, ctrl_pos, 1, "hdlc.control",
            f"control {ctrl:02X} is no frame type IEC 62056-46 uses", None, f"{ctrl:02X}"))

    after = ctrl_pos + 1
    if truncated:
        # Show what arrived; checksums cannot be checked.
        if after < content_end:
            spans.append(mk(after, content_end - after, "hdlc.unparsed",
                              "Bytes received so far"))
    elif rem < 2:
        findings.append(_finding(
            "hdlc.frame.short", _E, after, rem, "hdlc.fcs", "no room for the FCS", "2", str(rem)))
    elif rem == 2:
        _check_fcs(buf, fmt_pos, content_end, ctx)
    elif rem < 4:
        findings.append(_finding(
            "hdlc.frame.short", _E, after, rem, "hdlc.hcs",
            "bytes after the control field are neither an FCS nor HCS + info + FCS",
            "2 or >= 5", str(rem)))
        _check_fcs(buf, fmt_pos, content_end, ctx)
    else:
        hcs_found = buf[after] | (buf[after + 1] << 8)
        hcs_right = crc16_x25(buf[fmt_pos:after])
        if hcs_found == hcs_right:
            if want:
                spans.append(mk(after, 2, "hdlc.hcs", "Header check sequence",
                                hexs(buf[after : after + 2]), "right"))
        else:
            right = hexs(hcs_right.to_bytes(2, "little"))
            spans.append(mk(after, 2, "hdlc.hcs", "Header check sequence",
                              hexs(buf[after:after + 2]), f"wrong, should be {right}"))
            findings.append(_finding(
                "hdlc.hcs.mismatch", _E, after, 2, "hdlc.hcs",
                "header check sequence is wrong: a meter drops such a frame silently",
                right, hexs(buf[after:after + 2]), right))
        summary_tail = _info_spans(buf, info_pos, info_end, ftype, to_server, seg, ctx, fields)
        _check_fcs(buf, fmt_pos, content_end, ctx)

    if closing_present:
        spans.append(mk(content_end, 1, "hdlc.flag.end", "Closing flag", 0x7E))
    if has_info:
        fields["info_offset"] = info_pos
        fields["info_length"] = max(info_end - info_pos, 0)
    summary = _summary(ftype, ns, nr, pf, dest_info, src_info, seg, summary_tail, kind)
    apdu = fields.pop("_apdu", None)
    return ctx.frame(kind, offset, buf[offset:end], summary, fields,
                     apdu if isinstance(apdu, bytes) else None, given_direction)


def decode_address(
    buf: bytes, offset: int, role: str, limit: int | None = None
) -> tuple[dict[str, object] | None, int, list[Finding]]:
    """One HDLC address at ``offset`` read as ``role`` ("server" or "client").

    Returns the ``fields``-style dict (None when unterminated), the number of address bytes
    (0 when unterminated) and the findings about it. Never raises.
    """
    end = len(buf) if limit is None else min(limit, len(buf))
    if not 0 <= offset < end:
        return None, 0, [_finding("hdlc.address.unterminated", _E, min(max(offset, 0), len(buf)),
                                  0, "hdlc.address", "no address bytes")]
    length = _scan_address(buf, offset, end)
    if length < 0:
        return None, 0, [_finding(
            "hdlc.address.unterminated", _E, offset, min(4, end - offset), "hdlc.address",
            "no address byte with the low bit set (address end) within 4 bytes", None,
            hexs(buf[offset : min(offset + 4, end)]))]
    raw = bytes(buf[offset : offset + length])
    info = _address_dict(raw, role)
    findings: list[Finding] = []
    _check_address_sizes(findings, (raw, info, offset))
    return info, length, findings


def _check_address_sizes(
    findings: list[Finding], *ends: tuple[bytes, dict[str, object], int]
) -> None:
    for raw, info_d, apos in ends:
        if info_d["role"] == "server" and len(raw) == 3:
            findings.append(_finding(
                "hdlc.address.size3", _E, apos, 3, "hdlc.address",
                "3-byte server address: IEC 62056-46 allows 1, 2 or 4 bytes", "1, 2 or 4 bytes",
                "3 bytes"))
        elif info_d["role"] == "client" and len(raw) != 1:
            findings.append(_finding(
                "hdlc.address.client_size", _W, apos, len(raw), "hdlc.address",
                "client address should be 1 byte (SAP << 1 | 1)", "1 byte", f"{len(raw)} bytes"))


def _address_span(mk: Callable[..., Span], pos: int, raw: bytes, info: dict[str, object],
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


def _check_fcs(buf: bytes, fmt_pos: int, content_end: int, ctx: _Ctx) -> None:
    mk = ctx.mk
    fcs_pos = content_end - 2
    found = buf[fcs_pos] | (buf[fcs_pos + 1] << 8)
    right = crc16_x25(buf[fmt_pos:fcs_pos])
    if found == right:
        if ctx.want:
            ctx.spans.append(mk(fcs_pos, 2, "hdlc.fcs", "Frame check sequence",
                                hexs(buf[fcs_pos:content_end]), "right"))
        return
    found_hex = hexs(buf[fcs_pos:content_end])
    right_hex = hexs(right.to_bytes(2, "little"))
    ctx.spans.append(mk(fcs_pos, 2, "hdlc.fcs", "Frame check sequence", found_hex,
                          f"wrong, should be {right_hex}"))
    ctx.findings.append(_finding(
        "hdlc.fcs.mismatch", _E, fcs_pos, 2, "hdlc.fcs",
        "frame check sequence is wrong: a meter drops such a frame silently",
        right_hex, found_hex, right_hex))


def _info_spans(
    buf: bytes,
    info_pos: int,
    info_end: int,
    ftype: str,
    to_server: bool,
    segmented: bool,
    ctx: _Ctx,
    fields: dict[str, object],
) -> str:
    """Append the info span (with children) and return a summary tail."""
    mk = ctx.mk
    length = info_end - info_pos
    if length <= 0:
        ctx.spans.append(mk(info_pos, 0, "hdlc.info", "Information", None, "empty"))
        return ""
    children: list[Span] = []
    tail = ""
    if ftype in ("SNRM", "UA"):
        tail = _params_spans(buf, info_pos, info_end, ctx, fields, children)
    elif ftype == "FRMR":
        tail = _frmr_spans(buf, info_pos, info_end, ctx, children)
    elif ftype in ("I", "UI"):
        tail = _llc_spans(buf, info_pos, info_end, to_server, segmented, ctx, fields, children)
    else:
        ctx.findings.append(_finding(
            "hdlc.info.unexpected", _W, info_pos, length, "hdlc.info",
            f"{ftype} frames carry no information field", "no info", f"{length} bytes"))
    ctx.spans.append(mk(info_pos, length, "hdlc.info", "Information", None, f"{length} bytes",
                          tuple(children)))
    return tail


def _params_spans(
    buf: bytes, pos: int, end: int, ctx: _Ctx, fields: dict[str, object], children: list[Span]
) -> str:
    mk = ctx.mk
    findings = ctx.findings
    length = end - pos
    if length < 3:
        findings.append(_finding(
            "hdlc.params.length", _E, pos, length, "hdlc.params",
            "parameter negotiation field too short for format id, group id and group length",
            ">= 3 bytes", f"{length} bytes"))
        return ""
    fid, gid, glen = buf[pos], buf[pos + 1], buf[pos + 2]
    actual = length - 3
    want = ctx.want
    if want:
        children.append(mk(pos, 1, "hdlc.params.format_id", "Format identifier", fid,
                           "ISO/IEC 13239 general format" if fid == 0x81 else "unexpected"))
        children.append(mk(pos + 1, 1, "hdlc.params.group_id", "Group identifier", gid,
                           "HDLC parameter negotiation" if gid == 0x80 else "unexpected"))
        children.append(mk(pos + 2, 1, "hdlc.params.group_length", "Group length", glen,
                           f"{actual} bytes follow" if glen == actual
                           else f"says {glen}, but {actual} bytes follow"))
    if fid != PARAM_FORMAT_ID:
        findings.append(_finding("hdlc.params.format_id", _E, pos, 1, "hdlc.params.format_id",
                                 "format identifier of the parameter field is not 0x81",
                                 "81", f"{fid:02X}", "81"))
    if gid != PARAM_GROUP_ID:
        findings.append(_finding("hdlc.params.group_id", _E, pos + 1, 1, "hdlc.params.group_id",
                                 "group identifier of the parameter field is not 0x80",
                                 "80", f"{gid:02X}", "80"))
    if glen != actual:
        findings.append(_finding(
            "hdlc.params.group_length", _E, pos + 2, 1, "hdlc.params.group_length",
            f"group length says {glen} (0x{glen:02X}) but {actual} (0x{actual:02X}) bytes follow: "
            "strict meters drop this frame",
            f"{actual:02X}", f"{glen:02X}", f"{actual:02X}"))
    values: dict[str, int] = {}
    p = pos + 3
    while p < end:
        pid = buf[p]
        if p + 2 > end:
            findings.append(_finding("hdlc.params.length", _E, p, end - p, "hdlc.params",
                                     "parameter cut off before its length byte"))
            children.append(mk(p, end - p, "hdlc.params.unparsed", "Truncated parameter"))
            break
        plen = buf[p + 1]
        vend = p + 2 + plen
        name, label = _PARAM_NAMES.get(pid) or ("unknown", f"Parameter 0x{pid:02X}")
        if vend > end:
            findings.append(_finding(
                "hdlc.params.length", _E, p + 1, 1, "hdlc.params",
                f"parameter 0x{pid:02X} says {plen} value bytes but only {end - p - 2} remain",
                str(end - p - 2), str(plen)))
            children.append(mk(p, end - p, f"hdlc.params.{name}", label, None, "truncated"))
            break
        value = int.from_bytes(buf[p + 2 : vend], "big")
        meaning = ""
        if pid not in _PARAM_NAMES:
            findings.append(_finding("hdlc.params.unknown", _W, p, vend - p, "hdlc.params",
                                     f"unknown HDLC parameter id 0x{pid:02X}", "05..08",
                                     f"{pid:02X}"))
        elif plen == 0 or plen > 4:
            findings.append(_finding(
                "hdlc.params.length", _E, p + 1, 1, f"hdlc.params.{name}",
                f"{label} value is {plen} bytes; 1 to 4 expected", "1..4", str(plen)))
        else:
            values[name] = value
            meaning = _param_meaning(pid, value, plen, ctx, p)
        if want:
            children.append(mk(p, vend - p, f"hdlc.params.{name}", label, value, meaning, (
                mk(p, 1, "hdlc.params.id", "Parameter id", pid),
                mk(p + 1, 1, "hdlc.params.length", "Parameter length", plen),
                mk(p + 2, plen, "hdlc.params.value", "Value", value),
            )))
        p = vend
    got = {**_DEFAULT_PARAM_DICT, **values}
    got["defaults_used"] = [k for k in _PARAM_KEYS if k not in values]
    fields["params"] = got
    return (f"max info {got['max_info_tx']}/{got['max_info_rx']} "
            f"window {got['window_tx']}/{got['window_rx']}")


def _param_meaning(pid: int, value: int, plen: int, ctx: _Ctx, p: int) -> str:
    if pid in (PARAM_WINDOW_TX, PARAM_WINDOW_RX):
        if not 1 <= value <= 7:
            ctx.findings.append(_finding(
                "hdlc.params.value", _W, p + 2, plen, "hdlc.params.window",
                f"window size {value} outside 1..7 (modulo-8 sequence numbers)", "1..7",
                str(value)))
        return (f"{value} frame{'s' if value != 1 else ''}") if ctx.want else ""
    if not 32 <= value <= 2030:
        ctx.findings.append(_finding(
            "hdlc.params.value", _W, p + 2, plen, "hdlc.params.max_info",
            f"maximum information length {value} outside 32..2030", "32..2030", str(value)))
    return f"{value} bytes" if ctx.want else ""


def _frmr_spans(buf: bytes, pos: int, end: int, ctx: _Ctx, children: list[Span]) -> str:
    mk = ctx.mk
    length = end - pos
    if length != 3:
        ctx.findings.append(_finding(
            "hdlc.frmr.length", _W, pos, length, "hdlc.info.frmr",
            "FRMR information field should be 3 bytes (ISO/IEC 13239, modulo 8)", "3",
            str(length)))
    if length < 3:
        return ""
    rejected, second, reasons = buf[pos], buf[pos + 1], buf[pos + 2]
    rtype, _, _, _ = _control_info(rejected)
    why = [text for bit, text in _FRMR_REASONS if reasons & bit]
    children.append(mk(pos, 1, "hdlc.frmr.rejected_control", "Rejected control field",
                         rejected, f"a {rtype} frame"))
    children.append(mk(pos + 1, 1, "hdlc.frmr.state", "V(S), C/R, V(R)", second,
                         f"V(S)={(second >> 1) & 7} V(R)={(second >> 5) & 7}"
                         f"{' rejected frame was a response' if second & 0x10 else ''}"))
    children.append(mk(pos + 2, 1, "hdlc.frmr.reason", "Reason bits", reasons,
                         "; ".join(why) if why else "no reason bit set"))
    return f"rejected {rtype} ({'; '.join(why) if why else 'no reason'})"


def _llc_spans(
    buf: bytes,
    pos: int,
    end: int,
    to_server: bool,
    segmented: bool,
    ctx: _Ctx,
    fields: dict[str, object],
    children: list[Span],
) -> str:
    mk = ctx.mk
    if end - pos >= 3 and buf[pos] == 0xE6 and buf[pos + 1] in (0xE6, 0xE7):
        llc = buf[pos : pos + 3]
        fields["llc"] = _LLC_TEXT.get(llc) or hexs(llc)
        quality = llc[2]
        cmd = llc[1] == 0xE6
        if ctx.want:
            children.append(mk(pos, 3, "hdlc.info.llc", "LLC header", hexs(llc),
                               "client to server" if cmd else "server to client", (
                mk(pos, 1, "hdlc.llc.dsap", "Destination LSAP", llc[0]),
                mk(pos + 1, 1, "hdlc.llc.ssap", "Source LSAP", llc[1],
                   "command (E6)" if cmd else "response (E7)"),
                mk(pos + 2, 1, "hdlc.llc.quality", "LLC quality", quality),
            )))
        if quality != 0:
            ctx.findings.append(_finding("hdlc.llc.quality", _W, pos + 2, 1, "hdlc.llc.quality",
                                         "LLC quality byte should be 00", "00", f"{quality:02X}",
                                         "00"))
        apdu_pos = pos + 3
    else:
        apdu_pos = pos
        ctx.findings.append(_finding(
            "hdlc.llc.missing", _W, pos, min(3, end - pos), "hdlc.info.llc",
            "information field does not start with the LLC header (normal only for a "
            "continuation segment)", "E6 E6 00" if to_server else "E6 E7 00",
            hexs(buf[pos : min(pos + 3, end)])))
    alen = end - apdu_pos
    if alen > 0:
        children.append(mk(apdu_pos, alen, "hdlc.info.apdu",
                             "APDU segment" if segmented or apdu_pos == pos else "APDU",
                             None, f"{alen} bytes"))
        if not segmented and apdu_pos != pos:
            fields["_apdu"] = buf[apdu_pos:end]
    kind = "APDU segment" if segmented or apdu_pos == pos else "APDU"
    return f"{alen} bytes {kind}"


def _summary(
    ftype: str,
    ns: int | None,
    nr: int | None,
    pf: bool,
    dest: dict[str, object],
    src: dict[str, object],
    segmented: bool,
    tail: str,
    kind: FrameKind,
) -> str:
    if ftype == "I":
        head = f"I N(S)={ns} N(R)={nr}"
    elif nr is not None:
        head = f"{ftype} N(R)={nr}"
    else:
        head = ftype
    text = f"{head} {_describe_address(src)} -> {_describe_address(dest)}"
    if pf:
        text += " P" if dest["role"] == "server" else " F"
    if segmented:
        text += " segmented"
    if tail:
        text = f"{text}, {tail}"
    if kind is FrameKind.PARTIAL:
        text = f"partial {text}"
    return text


# --------------------------------------------------------------------------- repair


def repair_hdlc(frame: bytes) -> bytes:
    """The frame with its length, SNRM/UA group length, HCS and FCS made right.

    Keeps addresses, control and information bytes as they are (where the frame really ends is
    found as ``parse_hdlc`` finds it). Returns the input unchanged when it cannot be understood.
    """
    decoded = parse_hdlc(frame, lazy_spans=False)  # reads spans below: decode them once
    spans = {s.name: s for s in decoded.spans}
    dest, src, ctrl = spans.get("hdlc.address.dest"), spans.get("hdlc.address.src"), \
        spans.get("hdlc.control")
    if dest is None or src is None or ctrl is None or decoded.kind is not FrameKind.HDLC:
        return frame
    info = bytearray()
    info_offset = decoded.fields.get("info_offset")
    info_length = decoded.fields.get("info_length")
    if isinstance(info_offset, int) and isinstance(info_length, int):
        info += frame[info_offset : info_offset + info_length]
        if decoded.fields.get("frame_type") in ("SNRM", "UA") and len(info) >= 3 \
                and info[0] == PARAM_FORMAT_ID and info[1] == PARAM_GROUP_ID:
            info[2] = (len(info) - 3) & 0xFF
    try:
        return build_frame(
            dest=frame[dest.offset : dest.end], src=frame[src.offset : src.end],
            control=frame[ctrl.offset], info=bytes(info),
            segmented=bool(decoded.fields.get("segmented")),
        )
    except ValueError:
        return frame


# --------------------------------------------------------------------------- reassembly


@dataclass
class Reassembler:
    """Joins the info fields of segmented I-frames (format S bit set on all but the last).

    ``feed`` takes each decoded I-frame of one direction in arrival order and returns the whole
    APDU (LLC header stripped from the first segment) when the last segment arrives, else None.
    Out-of-order N(S) is reported in ``findings`` (code ``hdlc.segment.sequence``).
    """

    findings: list[Finding] = field(default_factory=list)
    _parts: list[bytes] = field(default_factory=list)
    _next_ns: int | None = None

    @property
    def pending(self) -> bool:
        return bool(self._parts)

    def reset(self) -> None:
        self._parts.clear()
        self._next_ns = None

    def feed(self, frame: DecodedFrame) -> bytes | None:
        f = frame.fields
        if f.get("frame_type") not in ("I", "UI"):
            return None
        ns = f.get("ns")
        if isinstance(ns, int) and self._next_ns is not None and ns != self._next_ns:
            self.findings.append(_finding(
                "hdlc.segment.sequence", _W, frame.offset, len(frame.data), "hdlc.control.ns",
                f"segment N(S)={ns} but {self._next_ns} was expected next",
                str(self._next_ns), str(ns)))
        if isinstance(ns, int):
            self._next_ns = (ns + 1) & 7
        info_offset, info_length = f.get("info_offset"), f.get("info_length")
        part = b""
        if isinstance(info_offset, int) and isinstance(info_length, int):
            rel = info_offset - frame.offset
            part = frame.data[rel : rel + info_length]
        starts_apdu = part[:2] in (b"\xe6\xe6", b"\xe6\xe7")
        if self._parts and starts_apdu:
            # An LLC header opens a new APDU: the previous one never got its last segment.
            self.findings.append(_finding(
                "hdlc.segment.incomplete", _W, frame.offset, len(frame.data), "hdlc.format",
                f"a new APDU started before the last segment of the previous one "
                f"({len(self._parts)} segment(s) dropped)", "last segment", "new APDU"))
            self._parts.clear()
        if starts_apdu:
            part = part[3:]
        self._parts.append(part)
        if f.get("segmented"):
            return None
        apdu = b"".join(self._parts)
        self._parts.clear()
        return apdu
