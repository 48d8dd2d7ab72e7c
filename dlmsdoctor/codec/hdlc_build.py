"""Build HDLC frames (flags, format, HCS and FCS computed): SNRM, UA, DISC, DM, FRMR, I, RR,
RNR, UI. Builders raise ValueError for values that do not fit the frame.
"""

from __future__ import annotations

from dlmsdoctor.codec.hdlc_address import (
    ServerAddress,
    encode_client_address,
    encode_server_address,
)
from dlmsdoctor.codec.hdlc_fields import (
    CTRL_DISC,
    CTRL_DM,
    CTRL_FRMR,
    CTRL_SNRM,
    CTRL_UA,
    CTRL_UI,
    FORMAT_TYPE_A,
    FRMR_INVALID_CONTROL,
    LLC_TO_CLIENT,
    LLC_TO_SERVER,
    MAX_LENGTH,
    PF_BIT,
    SEGMENT_BIT,
    crc16_x25,
)
from dlmsdoctor.codec.hdlc_params import HdlcParams


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
