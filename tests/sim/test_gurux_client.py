"""A gurux-dlms client reads every object of the good profiles, over HDLC and the wrapper.

The client here is gurux-dlms's GXDLMSClient on a plain socket, not dlmsdoctor's codec or probes:
it validates the simulated meter independently, so a bug shared by both sides of dlmsdoctor
cannot hide.
"""

from __future__ import annotations

import time

import pytest
from gurux_dlms import GXDLMSClient, GXDLMSException, GXDLMSExceptionResponse
from gurux_dlms.enums import Authentication, ObjectType
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSHdlcSetup,
    GXDLMSRegister,
)

from dlmsdoctor.sim.meter import MeterThread
from dlmsdoctor.sim.profile import load_profile
from tests.sim.gurux_peer import GuruxPeer

HDLC_PROFILES = ["default", "serial-derived", "serial-last4"]


def _peer(meter, **kwargs) -> GuruxPeer:  # type: ignore[no-untyped-def]
    p = meter.profile
    return GuruxPeer(
        meter.port,
        wrapper=p.framing == "wrapper",
        logical=p.server_logical,
        physical=p.server_physical or 0,
        address_size=p.address_size,
        **kwargs,
    )


def _read_every_attribute(peer: GuruxPeer, meter) -> dict[tuple[str, int], object]:  # type: ignore[no-untyped-def]
    """GET of each attribute of each object in the meter's list, decoded by gurux objects."""
    values: dict[tuple[str, int], object] = {}
    for obj in meter.core.objects:
        gx_obj = GXDLMSClient.createObject(ObjectType(obj.class_id))
        gx_obj.logicalName = obj.obis_text
        gx_obj.version = obj.version
        for attribute in sorted(obj.attributes):
            if obj.class_id == 15 and attribute == 7:
                continue  # the secret: checked apart
            values[(obj.obis_text, attribute)] = peer.read(gx_obj, attribute)
    return values


@pytest.mark.parametrize("name", HDLC_PROFILES)
def test_public_client_reads_every_object_over_hdlc(name: str) -> None:
    with MeterThread(name) as meter:
        with _peer(meter) as peer:
            peer.connect()
            values = _read_every_attribute(peer, meter)
            peer.release()
        assert len(values) >= 40
        assert meter.failed_logins() == 0
        assert meter.open_associations() == []
        assert meter.unreleased_associations() == []
        released = meter.log.of("association.released")
        assert [e["how"] for e in released] == ["rlrq"]
        gets = meter.log.of("get")
        assert all(e["result"] == "data" for e in gets)


@pytest.mark.parametrize("name", ["default", "serial-derived"])
def test_values_decode_as_the_profile_says(name: str) -> None:
    profile = load_profile(name)
    with MeterThread(profile) as meter, _peer(meter) as peer:
        peer.connect()
        ldn = GXDLMSData("0.0.42.0.0.255")
        peer.read(ldn, 2)
        assert bytes(ldn.value) == profile.objects.logical_device_name.encode()
        assert bytes(ldn.value)[:3].isalpha()  # FLAG manufacturer id first
        serial = GXDLMSData("0.0.96.1.0.255")
        peer.read(serial, 2)
        assert bytes(serial.value).decode() == profile.serial_number
        energy = GXDLMSRegister("1.0.1.8.0.255")
        peer.read(energy, 3)
        peer.read(energy, 2)
        assert energy.value == profile.objects.energy_wh
        assert energy.scaler == 1 and energy.unit == 30
        voltage = GXDLMSRegister("1.0.32.7.0.255")
        peer.read(voltage, 3)
        peer.read(voltage, 2)
        assert voltage.scaler == pytest.approx(0.1) and voltage.unit == 35
        assert voltage.value == pytest.approx(230.5)  # gurux applies the scaler
        clock = GXDLMSClock("0.0.1.0.0.255")
        peer.read(clock, 2)
        assert abs(clock.time.value.timestamp() - time.time()) < 5
        setup = GXDLMSHdlcSetup("0.0.22.0.0.255")
        for attribute in (8, 9):
            peer.read(setup, attribute)
        assert setup.inactivityTimeout == int(profile.inactivity_timeout)
        assert setup.deviceAddress == profile.server_physical
        assoc = GXDLMSAssociationLogicalName("0.0.40.0.0.255")
        peer.read(assoc, 2)
        listed = [(o.objectType, o.logicalName) for o in assoc.objectList]
        assert (ObjectType.IEC_HDLC_SETUP, "0.0.22.0.0.255") in listed
        assert sorted(listed) == sorted((ObjectType(o.class_id), o.obis_text)
                                        for o in meter.core.objects)
        peer.read(assoc, 3)
        assert assoc.clientSAP == 16 and assoc.serverSAP == 1
        with pytest.raises(GXDLMSException):
            peer.read(assoc, 7)  # the secret is never readable
        peer.release()


def test_lls_client_logs_in_and_releases() -> None:
    with MeterThread("default") as meter:
        with _peer(meter, client_sap=32, authentication=Authentication.LOW,
                   password="87654321") as peer:
            peer.connect()
            ldn = GXDLMSData("0.0.42.0.0.255")
            peer.read(ldn, 2)
            peer.release()
        logins = meter.log.of("login")
        assert [(e["client_sap"], e["mechanism"], e["outcome"]) for e in logins] == [
            (32, 1, "accepted")
        ]
        assert meter.failed_logins() == 0
        assert meter.open_associations() == []
        assert "87654321" not in repr(meter.events)
        assert "38 37 36 35 34 33 32 31" not in repr(meter.events)
        aarq = meter.log.of("frame.received")[1]
        assert "AC 0A 80 08 ** ** ** ** ** ** ** **" in str(aarq["hex"])


def test_wrong_lls_password_is_rejected_with_diagnostic_13() -> None:
    with MeterThread("default") as meter:
        with _peer(meter, client_sap=1, authentication=Authentication.LOW,
                   password="wrong") as peer, pytest.raises(GXDLMSException) as info:
            peer.connect()
        assert info.value.diagnostic == 13
        assert meter.failed_logins() == 1
        assert meter.open_associations() == []


@pytest.mark.parametrize("sap,auth,password", [
    (16, Authentication.NONE, None),
    (1, Authentication.LOW, "00000000"),
])
def test_wrapper_profile_reads_every_object(sap: int, auth: int, password: str | None) -> None:
    with MeterThread("wrapper") as meter:
        with _peer(meter, client_sap=sap, authentication=auth, password=password) as peer:
            peer.connect()
            values = _read_every_attribute(peer, meter)
            peer.release()
        assert len(values) >= 40
        assert meter.open_associations() == []
        assert [e["how"] for e in meter.log.of("association.released")] == ["rlrq"]


HLS_KEYS = (
    bytes.fromhex("4758583132333435"),  # the client's system title
    bytes.fromhex("000102030405060708090A0B0C0D0E0F"),
    bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"),
)


def test_hls_gmac_client_authenticates_both_ways_and_reads() -> None:
    """gurux's client checks the meter's f(CtoS) in parseApplicationAssociationResponse: a
    wrong GMAC on the meter side would raise there."""
    with MeterThread("hls") as meter:
        with _peer(meter, client_sap=1, authentication=Authentication.HIGH_GMAC,
                   hls_keys=HLS_KEYS) as peer:
            peer.connect()
            ldn = GXDLMSData("0.0.42.0.0.255")
            peer.read(ldn, 2)
            peer.release()
        outcomes = [(e["outcome"], e["diagnostic"]) for e in meter.log.of("login")]
        assert outcomes == [("pending", 14), ("accepted", 0)]
        assert meter.open_associations() == []
        assert meter.failed_logins() == 0


def test_hls_gmac_with_a_wrong_key_fails_and_counts() -> None:
    wrong = (HLS_KEYS[0], HLS_KEYS[1], bytes(16))
    with MeterThread("hls") as meter:
        with _peer(meter, client_sap=1, authentication=Authentication.HIGH_GMAC,
                   hls_keys=wrong) as peer:
            with pytest.raises(GXDLMSException):
                peer.connect()
            with pytest.raises(GXDLMSExceptionResponse) as info:
                peer.read(GXDLMSData("0.0.42.0.0.255"), 2)  # nothing is served
            assert "Service not allowed" in str(info.value)
        assert meter.failed_logins() == 1
        assert meter.open_associations() == []


@pytest.mark.parametrize("sap,auth,password,diagnostic", [
    (32, Authentication.NONE, None, 14),  # LLS client without authentication: required
    (16, Authentication.LOW, "x", 11),  # public client with a mechanism it does not use
    (99, Authentication.NONE, None, 1),  # unknown client SAP
])
def test_rejections_that_are_not_password_failures(
    sap: int, auth: int, password: str | None, diagnostic: int
) -> None:
    with MeterThread("default") as meter:
        with _peer(meter, client_sap=sap, authentication=auth, password=password) as peer, \
                pytest.raises(GXDLMSException) as info:
            peer.connect()
        assert info.value.diagnostic == diagnostic
        assert (meter.rejected_logins(), meter.failed_logins()) == (1, 0)


def test_sn_referencing_client_is_told_the_context_is_not_supported() -> None:
    with MeterThread("default") as meter, _peer(meter) as peer:
        peer.client.useLogicalNameReferencing = False
        with pytest.raises(GXDLMSException) as info:
            peer.connect()
        assert info.value.diagnostic == 2
        assert (meter.rejected_logins(), meter.failed_logins()) == (1, 0)
