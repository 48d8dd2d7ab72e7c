"""Cross-check against gurux-dlms 1.0.203: our builders give gurux's bytes, our parse agrees with
gurux's GXDLMSTranslator, and gurux's client accepts frames we build.

gurux is imported directly here (tests may; the package may not outside dlmsdoctor/gx/).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from gurux_dlms import (
    GXByteBuffer,
    GXDLMSClient,
    GXDLMSTranslator,
    GXReplyData,
)
from gurux_dlms.enums import (
    Authentication,
    InterfaceType,
    RequestTypes,
    TranslatorOutputType,
)
from gurux_dlms.objects import GXDLMSData

from dlmsdoctor.codec.hdlc import (
    FRMR_INVALID_CONTROL,
    HdlcParams,
    ServerAddress,
    build_disc,
    build_dm,
    build_frmr,
    build_i,
    build_rnr,
    build_rr,
    build_snrm,
    build_ua,
    parse_hdlc,
)
from dlmsdoctor.codec.model import DecodedFrame
from dlmsdoctor.codec.wrapper import build_wrapper, parse_wrapper

VALID = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "hdlc_valid.json").read_text()
)["vectors"]

SERVERS = [ServerAddress(1), ServerAddress(1, 17, 2), ServerAddress(1, 1234, 4),
           ServerAddress(16, 32, 2), ServerAddress(0x3FFF, 0x3FFF, 4)]
AARE = bytes.fromhex("6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000"
                     "501F01F40007")


def _client(server: ServerAddress, sap: int = 16,
            interface: Any = InterfaceType.HDLC) -> GXDLMSClient:
    physical = server.physical or 0
    if server.size == 1:
        address = server.logical
    else:
        address = GXDLMSClient.getServerAddress(server.logical, physical, server.size)
    client = GXDLMSClient(True, sap, address, Authentication.NONE, None, interface)
    client.serverAddressSize = server.size
    return client


def _translate(frame: bytes) -> str:
    translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    with contextlib.redirect_stdout(io.StringIO()):  # gurux prints debug noise
        xml: str = translator.messageToXml(GXByteBuffer(frame))
    return xml


def _xml_value(xml: str, tag: str) -> str | None:
    match = re.search(rf'<{tag} Value="([0-9A-Fa-f]+)"', xml)
    return match.group(1) if match else None


def _gurux_address(addr: dict[str, Any]) -> int:
    """Our address dict as the single number gurux shows (upper << 7 or << 14 | lower)."""
    if addr["role"] == "client":
        return int(addr["sap"])
    if addr["physical"] is None:
        return int(addr["logical"])
    shift = 7 if addr["size"] == 2 else 14
    return int(addr["logical"]) << shift | int(addr["physical"])


def _agree_with_translator(frame: DecodedFrame, raw: bytes) -> None:
    xml = _translate(raw)
    assert xml.startswith("<HDLC"), xml
    dest, src = frame.fields["dest"], frame.fields["src"]
    assert isinstance(dest, dict) and isinstance(src, dict)
    assert int(_xml_value(xml, "TargetAddress") or "-1", 16) == _gurux_address(dest)
    assert int(_xml_value(xml, "SourceAddress") or "-1", 16) == _gurux_address(src)
    control = next(s for s in frame.spans if s.name == "hdlc.control").value
    assert int(_xml_value(xml, "FrameType") or "-1", 16) == control
    params = frame.fields.get("params")
    if isinstance(params, dict) and not params["defaults_used"]:
        for ours, theirs in (("max_info_tx", "MaxInfoTX"), ("max_info_rx", "MaxInfoRX"),
                             ("window_tx", "WindowSizeTX"), ("window_rx", "WindowSizeRX")):
            match = re.search(rf'<{theirs} Value="(\d+)"', xml)
            assert match and int(match.group(1)) == params[ours], theirs


# --------------------------------------------------------------------------- builders == gurux


@pytest.mark.parametrize("server", SERVERS, ids=lambda s: f"{s.logical}-{s.physical}-{s.size}")
def test_snrm_disc_rr_aarq_match_gurux(server: ServerAddress) -> None:
    client = _client(server)
    assert build_snrm(server, 16) == bytes(client.snrmRequest())
    (aarq,) = client.aarqRequest()
    ours = parse_hdlc(bytes(aarq))
    assert ours.valid and ours.apdu is not None
    assert build_i(server, 16, to_server=True, ns=0, nr=0, info=ours.apdu) == bytes(aarq)
    rr = bytes(client.receiverReady(RequestTypes.FRAME))
    assert build_rr(server, 16, to_server=True, nr=parse_hdlc(rr).fields["nr"]) == rr  # type: ignore[arg-type]
    assert build_disc(server, 16) == bytes(client.disconnectRequest(True))


@pytest.mark.parametrize("params", [HdlcParams(200, 1024, 7, 1), HdlcParams(2030, 128, 1, 7),
                                    HdlcParams(128, 256, 1, 1), HdlcParams()])
def test_snrm_with_parameters_matches_gurux(params: HdlcParams) -> None:
    server = ServerAddress(1, 17, 2)
    client = _client(server)
    settings = client.hdlcSettings
    settings.maxInfoTX, settings.maxInfoRX = params.max_info_tx, params.max_info_rx
    settings.windowSizeTX, settings.windowSizeRX = params.window_tx, params.window_rx
    assert build_snrm(server, 16, params) == bytes(client.snrmRequest())


def test_session_i_frames_match_gurux() -> None:
    """SNRM, UA (ours, accepted by gurux), AARQ, AARE (ours, accepted), GET, DISC."""
    server = ServerAddress(1)
    client = _client(server)
    client.snrmRequest()
    ua = parse_hdlc(build_ua(server, 16, HdlcParams(256, 256, 1, 1)))
    info_offset, info_length = ua.fields["info_offset"], ua.fields["info_length"]
    assert isinstance(info_offset, int) and isinstance(info_length, int)
    client.parseUAResponse(GXByteBuffer(ua.data[info_offset : info_offset + info_length]))
    assert client.hdlcSettings.maxInfoTX == 256 and client.hdlcSettings.maxInfoRX == 256
    (aarq,) = client.aarqRequest()
    assert parse_hdlc(bytes(aarq)).fields["ns"] == 0
    aare = build_i(server, 16, to_server=False, ns=0, nr=1, info=AARE)
    reply = GXReplyData()
    assert client.getData(GXByteBuffer(aare), reply)
    client.parseAareResponse(reply.data)
    (get,) = client.read(GXDLMSData("0.0.42.0.0.255"), 2)
    ours = parse_hdlc(bytes(get))
    assert (ours.fields["ns"], ours.fields["nr"]) == (1, 1)
    assert ours.apdu is not None
    assert build_i(server, 16, to_server=True, ns=1, nr=1, info=ours.apdu) == bytes(get)
    assert build_disc(server, 16) == bytes(client.disconnectRequest())


def test_wrapper_matches_gurux() -> None:
    client = _client(ServerAddress(1), 16, InterfaceType.WRAPPER)
    (aarq,) = client.aarqRequest()
    ours = parse_wrapper(bytes(aarq))
    assert ours.valid and ours.apdu is not None
    assert (ours.fields["src_wport"], ours.fields["dst_wport"]) == (16, 1)
    assert build_wrapper(16, 1, ours.apdu) == bytes(aarq)
    xml = _translate(build_wrapper(1, 16, AARE))
    assert xml.startswith("<WRAPPER") and "AssociationResponse" in xml


# --------------------------------------------------------------------------- parse == translator


@pytest.mark.parametrize(
    "vec", [v for v in VALID if not v["expect"].get("segmented") and "iskra" not in v["name"]],
    ids=lambda v: v["name"])
def test_parse_agrees_with_translator(vec: dict[str, Any]) -> None:
    raw = bytes.fromhex(vec["hex"].replace(" ", ""))
    _agree_with_translator(parse_hdlc(raw, direction=vec.get("direction")), raw)


@pytest.mark.parametrize("server", SERVERS, ids=lambda s: f"{s.logical}-{s.physical}-{s.size}")
def test_built_frames_agree_with_translator(server: ServerAddress) -> None:
    frames = [
        (build_ua(server, 16, HdlcParams(512, 256, 1, 1)), None),
        (build_dm(server, 16), None),
        (build_frmr(server, 16, 0x32, FRMR_INVALID_CONTROL), None),
        (build_rnr(server, 16, to_server=False, nr=4), "rx"),
        (build_rr(server, 1, to_server=False, nr=7), "rx"),
        (build_i(server, 32, to_server=False, ns=3, nr=5, info=AARE), None),
    ]
    for raw, direction in frames:
        frame = parse_hdlc(raw, direction=direction)
        assert frame.valid, frame.findings
        _agree_with_translator(frame, raw)
