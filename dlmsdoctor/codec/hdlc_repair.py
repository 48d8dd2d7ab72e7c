"""Repair an HDLC frame: right length, SNRM/UA group length, HCS and FCS."""

from __future__ import annotations

from dlmsdoctor.codec.hdlc_build import build_frame
from dlmsdoctor.codec.hdlc_fields import PARAM_FORMAT_ID, PARAM_GROUP_ID
from dlmsdoctor.codec.hdlc_parse import parse_hdlc
from dlmsdoctor.codec.model import FrameKind


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
