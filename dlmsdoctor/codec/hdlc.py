"""HDLC frames as DLMS/COSEM uses them (IEC 62056-46, ISO/IEC 13239): build, parse, lint, repair.

This module is the public face of the HDLC codec; the code lives by feature in ``hdlc_address``
(server/client addresses), ``hdlc_params`` (SNRM/UA parameters), ``hdlc_fields`` (field values,
CRC), ``hdlc_build`` (builders), ``hdlc_parse`` + ``hdlc_info`` (parser and lint),
``hdlc_repair`` and ``hdlc_reassembly``. Import from here.

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

from dlmsdoctor.codec.hdlc_address import (
    ServerAddress,
    decode_address,
    encode_client_address,
    encode_server_address,
)
from dlmsdoctor.codec.hdlc_build import (
    build_disc,
    build_dm,
    build_frame,
    build_frmr,
    build_i,
    build_rnr,
    build_rr,
    build_snrm,
    build_ua,
    build_ui,
)
from dlmsdoctor.codec.hdlc_fields import (
    CTRL_DISC,
    CTRL_DM,
    CTRL_FRMR,
    CTRL_SNRM,
    CTRL_UA,
    CTRL_UI,
    FLAG,
    FORMAT_TYPE_A,
    FRMR_INFO_NOT_PERMITTED,
    FRMR_INFO_TOO_LONG,
    FRMR_INVALID_CONTROL,
    FRMR_INVALID_NR,
    LLC_TO_CLIENT,
    LLC_TO_SERVER,
    MAX_LENGTH,
    PARAM_FORMAT_ID,
    PARAM_GROUP_ID,
    PARAM_MAX_INFO_RX,
    PARAM_MAX_INFO_TX,
    PARAM_WINDOW_RX,
    PARAM_WINDOW_TX,
    PF_BIT,
    SEGMENT_BIT,
    crc16_x25,
)
from dlmsdoctor.codec.hdlc_params import HdlcParams, parse_params
from dlmsdoctor.codec.hdlc_parse import _span, frame_extent, parse_hdlc
from dlmsdoctor.codec.hdlc_reassembly import Reassembler
from dlmsdoctor.codec.hdlc_repair import repair_hdlc

# The model types were importable from here before the split; keep them so.
from dlmsdoctor.codec.model import DecodedFrame, Finding, FrameKind, Severity, Span, hexs

__all__ = [
    "CTRL_DISC",
    "CTRL_DM",
    "CTRL_FRMR",
    "CTRL_SNRM",
    "CTRL_UA",
    "CTRL_UI",
    "FLAG",
    "FORMAT_TYPE_A",
    "FRMR_INFO_NOT_PERMITTED",
    "FRMR_INFO_TOO_LONG",
    "FRMR_INVALID_CONTROL",
    "FRMR_INVALID_NR",
    "LLC_TO_CLIENT",
    "LLC_TO_SERVER",
    "MAX_LENGTH",
    "PARAM_FORMAT_ID",
    "PARAM_GROUP_ID",
    "PARAM_MAX_INFO_RX",
    "PARAM_MAX_INFO_TX",
    "PARAM_WINDOW_RX",
    "PARAM_WINDOW_TX",
    "PF_BIT",
    "SEGMENT_BIT",
    "DecodedFrame",
    "Finding",
    "FrameKind",
    "HdlcParams",
    "Reassembler",
    "ServerAddress",
    "Severity",
    "Span",
    "_span",  # tests build spans the way the parser does
    "build_disc",
    "build_dm",
    "build_frame",
    "build_frmr",
    "build_i",
    "build_rnr",
    "build_rr",
    "build_snrm",
    "build_ua",
    "build_ui",
    "crc16_x25",
    "decode_address",
    "encode_client_address",
    "encode_server_address",
    "frame_extent",
    "hexs",
    "parse_hdlc",
    "parse_params",
    "repair_hdlc",
]
