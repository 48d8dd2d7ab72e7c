"""The meter's link layers, sans-I/O: bytes in, frames out.

``HdlcServerLink`` is the HDLC secondary station of IEC 62056-46: NDM -> NRM on SNRM/UA, I-frame
sequence numbers N(S)/N(R), RR, DISC/UA, DM when disconnected, FRMR, and segmentation of replies
longer than the negotiated max info length (one segment per RR, as a window of 1 allows).
``WrapperServerLink`` is the TCP wrapper of IEC 62056-47. Both hand APDUs to an ``Association``
and use dlmsdoctor's own codec to parse and build frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlmsdoctor.codec import hdlc
from dlmsdoctor.codec.hdlc import HdlcParams, ServerAddress
from dlmsdoctor.codec.model import DecodedFrame
from dlmsdoctor.codec.wrapper import WRAPPER_VERSION, build_wrapper, parse_wrapper, wrapper_extent
from dlmsdoctor.sim.association import Association, MeterCore


@dataclass
class LinkOutput:
    """What the meter does about one received frame."""

    decode: str  # one-line decode of what was received
    frames: list[bytes] = field(default_factory=list)  # replies, in order
    close: str | None = None  # close the connection, with this reason
    note: str = ""  # why nothing was sent, when nothing was
    # what the frames answer: link (UA to SNRM), association, get, release, action, "" other;
    # the per-service delay faults pick their reply by it
    service: str = ""


# APDU tag of a request -> the service it asks for
_SERVICE_OF_TAG = {0x60: "association", 0xC0: "get", 0x62: "release", 0xC3: "action",
                   0xC1: "set"}


def service_of(apdu: bytes) -> str:
    return _SERVICE_OF_TAG.get(apdu[0], "") if apdu else ""


def split_hdlc(buf: bytearray) -> tuple[list[bytes], bytes]:
    """Take complete HDLC frames off the front of ``buf`` (mutated); return (frames, skipped
    bytes that were no frame). Incomplete frames stay in ``buf`` for the next read."""
    frames: list[bytes] = []
    skipped = bytearray()
    while buf:
        if buf[0] != hdlc.FLAG:
            skipped.append(buf.pop(0))
            continue
        if len(buf) >= 2 and buf[1] == hdlc.FLAG:  # shared or doubled flag
            buf.pop(0)
            continue
        if len(buf) < 3:
            break
        if buf[1] & 0xF0 != 0xA0:
            skipped.append(buf.pop(0))
            continue
        end = hdlc.frame_extent(buf, 0)
        if end is None:
            length = ((buf[1] & 0x07) << 8) | buf[2]
            if length < 7:
                skipped.append(buf.pop(0))
                continue
            break  # wait for the rest
        frames.append(bytes(buf[:end]))
        del buf[:end]
    return frames, bytes(skipped)


def looks_like_wrapper(buf: bytes | bytearray) -> bool:
    return len(buf) >= 2 and buf[0] == 0x00 and buf[1] == 0x01


def looks_like_hdlc(buf: bytes | bytearray) -> bool:
    return len(buf) >= 2 and buf[0] == hdlc.FLAG and buf[1] & 0xF0 == 0xA0


class HdlcServerLink:
    """One HDLC link (a TCP connection, or the serial line) of the simulated meter."""

    def __init__(
        self,
        core: MeterCore,
        conn: int | None,
        *,
        refuse_with_dm: bool = False,
    ) -> None:
        p = core.profile
        self.core = core
        self.conn = conn
        physical = p.server_physical if p.address_size > 1 else None
        self.address = ServerAddress(p.server_logical, physical, p.address_size)
        self.refuse_with_dm = refuse_with_dm
        self.connected = False
        self.client_sap = 0
        self.vs = 0
        self.vr = 0
        self.max_info_tx = p.max_info_tx  # meter -> client, after negotiation
        self.max_info_rx = p.max_info_rx  # client -> meter
        self.window_tx = 1
        self.association = Association(core, conn)
        self._reassembler = hdlc.Reassembler()
        self._segments: list[bytes] = []
        self._last_reply: list[bytes] = []

    # ---- helpers ----------------------------------------------------------------------------

    def _for_me(self, frame: DecodedFrame) -> bool:
        dest = frame.fields.get("dest")
        if not isinstance(dest, dict):
            return False
        a = self.address
        return bool(
            dest.get("size") == a.size
            and dest.get("logical") == a.logical
            and dest.get("physical") == a.physical
        )

    def _dm(self, sap: int) -> bytes:
        return hdlc.build_dm(self.address, sap)

    def disconnect(self, how: str, released: bool) -> None:
        if self.connected:
            self.association.end(how, released)
        self.connected = False
        self._segments.clear()
        self._reassembler.reset()

    # ---- the state machine ------------------------------------------------------------------

    def on_frame(self, raw: bytes) -> LinkOutput:
        frame = hdlc.parse_hdlc(raw, 0, "tx")
        out = LinkOutput(frame.summary)
        if not frame.valid:
            codes = ", ".join(f.code for f in frame.findings if f.severity == "error")
            out.note = f"invalid frame dropped ({codes})"  # HDLC: a bad frame is ignored
            return out
        if not self._for_me(frame):
            if self.core.faults.wrong_address == "close":
                out.close = "fault:wrong-address"
            out.note = f"not addressed to {self.address.describe()}"
            return out
        src = frame.fields.get("src")
        sap = src.get("sap") if isinstance(src, dict) else None
        if not isinstance(sap, int):
            out.note = "no client address"
            return out
        kind = frame.fields.get("frame_type")
        if self.refuse_with_dm:
            out.frames.append(self._dm(sap))
            out.note = "single session taken: DM"
            return out
        if kind == "SNRM":
            self._snrm(raw, frame, sap, out)
        elif kind == "DISC":
            if self.connected:
                self.disconnect("disc", released=True)
                out.frames.append(hdlc.build_frame(
                    dest=hdlc.encode_client_address(sap),
                    src=hdlc.encode_server_address(self.address),
                    control=hdlc.CTRL_UA | hdlc.PF_BIT,
                ))
            else:
                out.frames.append(self._dm(sap))
        elif not self.connected or sap != self.client_sap:
            if frame.fields.get("poll_final"):
                out.frames.append(self._dm(sap))  # not connected: DM (IEC 62056-46 6.4.4.4)
        elif kind == "I":
            self._i_frame(raw, frame, sap, out)
        elif kind == "RR":
            self._rr(frame, sap, out)
        elif kind in ("RNR", "UI"):
            out.note = f"{kind} ignored"
        else:
            out.frames.append(hdlc.build_frmr(
                self.address, sap, _control_of(frame, raw), hdlc.FRMR_INVALID_CONTROL,
                vs=self.vs, vr=self.vr,
            ))
        return out

    def _snrm(self, raw: bytes, frame: DecodedFrame, sap: int, out: LinkOutput) -> None:
        if self.core.faults.dm_on_snrm:
            out.frames.append(self._dm(sap))
            out.note = "fault: DM on SNRM"
            return
        if self.connected:
            self.disconnect("snrm", released=True)
        params = frame.fields.get("params")
        proposed = HdlcParams()
        if isinstance(params, dict):
            proposed = HdlcParams(
                int(params.get("max_info_tx", 128)), int(params.get("max_info_rx", 128)),
                int(params.get("window_tx", 1)), int(params.get("window_rx", 1)),
            )
        p = self.core.profile
        # The client's TX is the meter's RX: each side takes the smaller of the two proposals.
        # A proposal below 32 is outside IEC 62056-46's range: 32 keeps segmentation finite.
        self.max_info_tx = max(32, min(p.max_info_tx, proposed.max_info_rx))
        self.max_info_rx = max(32, min(p.max_info_rx, proposed.max_info_tx))
        window_tx = max(1, min(p.window_tx, proposed.window_rx))
        window_rx = max(1, min(p.window_rx, proposed.window_tx))
        self.window_tx = window_tx
        self.connected = True
        self.client_sap = sap
        self.vs = self.vr = 0
        self._segments.clear()
        self._reassembler.reset()
        self.association = Association(self.core, self.conn)
        ua = hdlc.build_ua(
            self.address, sap, HdlcParams(self.max_info_tx, self.max_info_rx, window_tx, window_rx)
        )
        out.frames.append(ua)
        out.service = "link"

    def _i_frame(self, raw: bytes, frame: DecodedFrame, sap: int, out: LinkOutput) -> None:
        info_length = frame.fields.get("info_length")
        faults = self.core.faults
        # frmr-too-long: the UA advertised max_info_rx, the real buffer may be smaller (the
        # field case: a client that trusts the UA gets FRMR on its long AARQ)
        limit = min(self.max_info_rx, faults.frmr_limit) if faults.frmr_too_long else (
            self.max_info_rx)
        if isinstance(info_length, int) and info_length > limit:
            if faults.frmr_too_long:
                out.frames.append(hdlc.build_frmr(
                    self.address, sap, _control_of(frame, raw), hdlc.FRMR_INFO_TOO_LONG,
                    vs=self.vs, vr=self.vr,
                ))
                out.note = f"fault: FRMR, information field {info_length} > {limit}"
            else:
                out.note = f"information field {info_length} > max {self.max_info_rx}: ignored"
            return
        ns = frame.fields.get("ns")
        if ns != self.vr:
            if isinstance(ns, int) and ns == (self.vr - 1) & 7 and self._last_reply:
                out.frames.extend(self._last_reply)  # the client missed our answer: repeat it
                out.note = "repeated I-frame: last reply sent again"
            else:
                out.frames.append(hdlc.build_rr(self.address, sap, to_server=False, nr=self.vr))
                out.note = f"N(S)={ns} out of sequence, expected {self.vr}"
            return
        self.vr = (self.vr + 1) & 7
        apdu = self._reassembler.feed(frame)
        if apdu is None:  # more segments to come: acknowledge this one
            out.frames.append(hdlc.build_rr(self.address, sap, to_server=False, nr=self.vr))
            return
        reply = self.association.handle(apdu, sap)
        if reply is None:
            out.frames.append(hdlc.build_rr(self.address, sap, to_server=False, nr=self.vr))
            return
        self._queue(reply, sap)
        out.frames.extend(self._next_window(sap))
        out.service = service_of(apdu)
        self._last_reply = list(out.frames)

    def _next_window(self, sap: int) -> list[bytes]:
        """Up to ``window_tx`` segments; the P/F bit only on the last (ISO/IEC 13239: the
        client acknowledges the window with one RR)."""
        frames: list[bytes] = []
        while self._segments and len(frames) < self.window_tx:
            frames.append(self._next_segment(sap, final=len(frames) + 1 == self.window_tx
                                             or len(self._segments) == 1))
        return frames

    def _queue(self, apdu: bytes, sap: int) -> None:
        info = hdlc.LLC_TO_CLIENT + apdu
        size = self.max_info_tx
        self._segments = [info[i : i + size] for i in range(0, len(info), size)]

    def _next_segment(self, sap: int, final: bool = True) -> bytes:
        chunk = self._segments.pop(0)
        frame = hdlc.build_i(
            self.address, sap, to_server=False, ns=self.vs, nr=self.vr, info=chunk,
            segmented=bool(self._segments), llc=False, final=final,
        )
        self.vs = (self.vs + 1) & 7
        return frame

    def _rr(self, frame: DecodedFrame, sap: int, out: LinkOutput) -> None:
        if self._segments:
            out.frames.extend(self._next_window(sap))
            self._last_reply = list(out.frames)
        elif frame.fields.get("poll_final"):
            out.frames.append(hdlc.build_rr(self.address, sap, to_server=False, nr=self.vr))


def _control_of(frame: DecodedFrame, raw: bytes) -> int:
    """The control byte of a parsed frame: right after the two addresses."""
    dest = frame.fields.get("dest")
    src = frame.fields.get("src")
    dsize = dest.get("size") if isinstance(dest, dict) else 1
    ssize = src.get("size") if isinstance(src, dict) else 1
    pos = 3 + (dsize if isinstance(dsize, int) else 1) + (ssize if isinstance(ssize, int) else 1)
    return raw[pos] if pos < len(raw) else 0


class WrapperServerLink:
    """The TCP wrapper: one PDU in, one PDU out; no link state besides the association."""

    def __init__(self, core: MeterCore, conn: int | None) -> None:
        self.core = core
        self.conn = conn
        self.association = Association(core, conn)

    def split(self, buf: bytearray) -> list[bytes]:
        """Complete wrapper PDUs off the front of ``buf`` (mutated)."""
        pdus = []
        while looks_like_wrapper(buf):
            end = wrapper_extent(buf, 0)
            if end is None:
                break
            pdus.append(bytes(buf[:end]))
            del buf[:end]
        return pdus

    def on_pdu(self, raw: bytes) -> LinkOutput:
        pdu = parse_wrapper(raw)
        out = LinkOutput(pdu.summary)
        version = pdu.fields.get("version")
        src, dst = pdu.fields.get("src_wport"), pdu.fields.get("dst_wport")
        if version != WRAPPER_VERSION or not isinstance(src, int) or not isinstance(dst, int):
            out.note = "not a wrapper PDU"
            return out
        if dst != self.core.profile.server_logical:
            if self.core.faults.wrong_address == "close":
                out.close = "fault:wrong-address"
            out.note = f"wPort {dst} is not logical device {self.core.profile.server_logical}"
            return out
        reply = self.association.handle(raw[8:], src)
        if reply is not None:
            out.frames.append(build_wrapper(dst, src, reply))
            out.service = service_of(raw[8:])
        return out

    def disconnect(self, how: str, released: bool) -> None:
        self.association.end(how, released)
