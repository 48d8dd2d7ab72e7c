"""The standard's APDUs and the HDLC/wrapper frames a test client (SAP 16) and a meter exchange.

Real bytes, built with the codec's builders (right HCS/FCS): the diagnosis stories
(tests/diagnosis/story.py) and the report's seed session (tests/output/seed_session.py) replay
the same frames.
"""

from __future__ import annotations

from dlmsdoctor.codec.hdlc import (
    HdlcParams,
    ServerAddress,
    build_disc,
    build_dm,
    build_frmr,
    build_i,
    build_snrm,
    build_ua,
)
from dlmsdoctor.codec.wrapper import build_wrapper

# Standard APDUs (Green Book examples).
PASSWORD = b"11111111"
AARQ_PUBLIC = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")
AARQ_LLS = (
    bytes.fromhex("6036A1090607608574050801018A0207808B0760857405080201AC0A8008")
    + PASSWORD
    + bytes.fromhex("BE10040E01000000065F1F0400007E1F04B0")
)
AARE_OK = bytes.fromhex(
    "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000181D02000007"
)
# result 1 (rejected-permanent), acse-service-user diagnostic 13 (authentication-failure)
AARE_AUTH_FAIL = bytes.fromhex("6117A109060760857405080101A203020101A305A10302010D")
# GET-Request-Normal / GET-Response-Normal of the serial number (0.0.96.1.0.255, attribute 2)
GET_SERIAL = bytes.fromhex("C001C100010000600100FF0200")
GET_SERIAL_RESPONSE = bytes.fromhex("C401C1000908") + b"12345678"
RLRQ = bytes.fromhex("6203800100")
RLRE = bytes.fromhex("6303800100")

CLIENT = 16
A11 = ServerAddress(1, 1, 2)
A117 = ServerAddress(1, 17, 2)
SERIAL_ADDR = ServerAddress(1, 6678, 4)  # 12345678 % 10000 + 1000
PARAMS = HdlcParams(max_info_tx=128, max_info_rx=128, window_tx=1, window_rx=1)


def snrm(addr: ServerAddress = A11) -> bytes:
    return build_snrm(addr, CLIENT, PARAMS, omit_defaults=False)


def ua(addr: ServerAddress = A11, params: HdlcParams = PARAMS) -> bytes:
    return build_ua(addr, CLIENT, params)


def dm(addr: ServerAddress = A11) -> bytes:
    return build_dm(addr, CLIENT)


def frmr(addr: ServerAddress = A11) -> bytes:
    return build_frmr(addr, CLIENT, 0x10)


def disc(addr: ServerAddress = A11) -> bytes:
    return build_disc(addr, CLIENT)


def i_tx(apdu: bytes, addr: ServerAddress = A11, ns: int = 0, nr: int = 0) -> bytes:
    return build_i(addr, CLIENT, to_server=True, ns=ns, nr=nr, info=apdu)


def i_rx(apdu: bytes, addr: ServerAddress = A11, ns: int = 0, nr: int = 1) -> bytes:
    return build_i(addr, CLIENT, to_server=False, ns=ns, nr=nr, info=apdu)


def wrap_tx(apdu: bytes) -> bytes:
    return build_wrapper(CLIENT, 1, apdu)


def wrap_rx(apdu: bytes) -> bytes:
    return build_wrapper(1, CLIENT, apdu)
