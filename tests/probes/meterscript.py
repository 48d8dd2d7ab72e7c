"""Helpers to script a meter's side of a conversation, with real frames from the codec."""

from __future__ import annotations

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.codec.wrapper import build_wrapper
from dlmsdoctor.link.scripted import Deliver, Expect, Step

S11 = hd.ServerAddress(1, 1, 2)
# AAREs as a meter sends them (LN context, InitiateResponse max PDU 239, Green Book 9.4 layout)
AARE_OK = bytes.fromhex(
    "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000101D00EF0007"
)
AARE_AUTH_FAILURE = bytes.fromhex(
    "6129A109060760857405080101A203020101A305A10302010DBE10040E0800065F1F040000101D00EF0007"
)
RLRE = bytes.fromhex("6300")


def get_denied(invoke: int) -> bytes:
    return bytes((0xC4, 0x01, 0xC0 | invoke, 0x01, 0x03))


def get_string(invoke: int, text: str) -> bytes:
    raw = text.encode()
    return bytes((0xC4, 0x01, 0xC0 | invoke, 0x00, 0x0A, len(raw))) + raw


def is_snrm(server: hd.ServerAddress, sap: int = 16):  # type: ignore[no-untyped-def]
    want = hd.build_snrm(server, sap, hd.HdlcParams(), omit_defaults=False)
    return lambda data: data == want


class HdlcMeter:
    """Builds the meter's replies with correct N(S)/N(R)."""

    def __init__(self, server: hd.ServerAddress = S11, sap: int = 16) -> None:
        self.server, self.sap, self.ns, self.nr = server, sap, 0, 0

    def ua(self) -> bytes:
        self.ns = self.nr = 0
        return hd.build_ua(self.server, self.sap, hd.HdlcParams())

    def i(self, apdu: bytes) -> bytes:
        self.nr = (self.nr + 1) % 8
        frame = hd.build_i(self.server, self.sap, to_server=False, ns=self.ns, nr=self.nr,
                           info=apdu)
        self.ns = (self.ns + 1) % 8
        return frame

    def exchange(self, apdu: bytes, delay: float = 0.01) -> list[Step]:
        return [Expect(), Deliver(self.i(apdu), delay)]


def healthy_public(meter: HdlcMeter) -> list[Step]:
    """SNRM/UA, AARE accepted, 5 identity GETs (name, then 4 denied), RLRE, DISC/UA."""
    steps: list[Step] = [Expect(match=is_snrm(meter.server)), Deliver(meter.ua(), 0.01)]
    steps += meter.exchange(AARE_OK)
    steps += meter.exchange(get_string(1, "ABC0001"))
    for invoke in range(2, 6):
        steps += meter.exchange(get_denied(invoke))
    steps += meter.exchange(RLRE)
    steps += [Expect(hd.build_disc(meter.server, meter.sap)), Deliver(meter.ua(), 0.01)]
    return steps


def wrapper(apdu: bytes) -> bytes:
    return build_wrapper(1, 16, apdu)
