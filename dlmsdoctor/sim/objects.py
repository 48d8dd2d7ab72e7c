"""The simulated meter's COSEM objects and how each attribute is read.

Values follow the Blue Book (IEC 62056-6-2) class definitions; each attribute is a function of
the live association so that e.g. the current association (0.0.40.0.0.255) tells the truth about
the client that reads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dlmsdoctor.gx.server import CosemData, DataAccessResult, array, structure
from dlmsdoctor.sim.profile import Profile


@dataclass(frozen=True, slots=True)
class AssociationView:
    """What attribute readers may know about the association that asks."""

    client_sap: int
    mechanism: int
    conformance: int
    client_max_pdu: int
    server_max_pdu: int
    server_sap: int
    invocation_counter: int


Reader = Callable[[AssociationView], CosemData | DataAccessResult]


@dataclass(frozen=True, slots=True)
class CosemObject:
    class_id: int
    version: int
    obis: bytes
    attributes: dict[int, Reader]
    methods: tuple[int, ...] = ()

    @property
    def obis_text(self) -> str:
        return ".".join(str(b) for b in self.obis)


def obis(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def _const(value: CosemData) -> Reader:
    return lambda _view: value


def _octets(data: bytes) -> CosemData:
    return CosemData("octet-string", data)


def _u8(v: int) -> CosemData:
    return CosemData("unsigned", v)


def _u16(v: int) -> CosemData:
    return CosemData("long-unsigned", v)


def _enum(v: int) -> CosemData:
    return CosemData("enum", v)


def _ln(code: bytes) -> Reader:
    return _const(_octets(code))


def clock_bytes(now: float | None = None, deviation_minutes: int = 0) -> bytes:
    """COSEM date-time (12 bytes, Blue Book 4.1.6.1) for UTC ``now``, deviation 0, status 0."""
    t = time.gmtime(time.time() if now is None else now)
    weekday = t.tm_wday + 1  # Monday = 1
    return (
        t.tm_year.to_bytes(2, "big")
        + bytes([t.tm_mon, t.tm_mday, weekday, t.tm_hour, t.tm_min, t.tm_sec, 0])
        + deviation_minutes.to_bytes(2, "big", signed=True)
        + b"\x00"
    )


# Units (Blue Book, enum unit): 30 Wh, 35 V, 255 count / no unit.
UNIT_WH = 30
UNIT_V = 35


def build_objects(profile: Profile) -> list[CosemObject]:
    o = profile.objects
    physical = profile.server_physical or 0
    ldn = obis("0.0.42.0.0.255")
    objs = [
        CosemObject(1, 0, ldn, {1: _ln(ldn), 2: _const(_octets(o.logical_device_name.encode()))}),
        _data(obis("0.0.96.1.0.255"), _octets((profile.serial_number or "").encode())),
        _data(obis("1.0.0.2.0.255"), _octets(o.firmware_id.encode())),
        _clock(obis("0.0.1.0.0.255")),
        _register(obis("1.0.1.8.0.255"), CosemData("double-long-unsigned", o.energy_wh),
                  o.energy_scaler, UNIT_WH),
        _register(obis("1.0.32.7.0.255"), CosemData("long-unsigned", o.voltage),
                  o.voltage_scaler, UNIT_V),
        _hdlc_setup(obis("0.0.22.0.0.255"), profile, physical),
        CosemObject(
            1, 0, obis("0.0.43.1.0.255"),
            {
                1: _ln(obis("0.0.43.1.0.255")),
                2: lambda view: CosemData("double-long-unsigned", view.invocation_counter),
            },
        ),
    ]
    objs.append(_current_association(objs))
    return objs


def _data(code: bytes, value: CosemData) -> CosemObject:
    return CosemObject(1, 0, code, {1: _ln(code), 2: _const(value)})


def _clock(code: bytes) -> CosemObject:
    return CosemObject(
        8, 0, code,
        {
            1: _ln(code),
            2: lambda _v: _octets(clock_bytes()),
            3: _const(CosemData("long", 0)),  # time_zone, minutes from UTC
            4: _const(_u8(0)),  # status
            5: _const(_octets(bytes.fromhex("FFFF03FE0702000000800000"))),  # DST begin
            6: _const(_octets(bytes.fromhex("FFFF0AFE0703000000800000"))),  # DST end
            7: _const(CosemData("integer", 60)),  # deviation
            8: _const(CosemData("boolean", False)),  # DST disabled
            9: _const(_enum(1)),  # clock base: internal crystal
        },
        methods=(1, 2, 3, 4, 5, 6),
    )


def _register(code: bytes, value: CosemData, scaler: int, unit: int) -> CosemObject:
    # The scaler is the int8 exponent itself; gurux's GXDLMSRegister server encoding gets it
    # wrong (1000 -> 2), which is why values are encoded here from plain data.
    scaler_unit = structure(CosemData("integer", scaler), _enum(unit))
    return CosemObject(3, 0, code, {1: _ln(code), 2: _const(value), 3: _const(scaler_unit)},
                       methods=(1,))


def _hdlc_setup(code: bytes, p: Profile, physical: int) -> CosemObject:
    # IEC HDLC setup, class 23 version 1: attribute 9 is the device (lower) address.
    return CosemObject(
        23, 1, code,
        {
            1: _ln(code),
            2: _const(_enum(5)),  # comm_speed 9600 baud
            3: _const(_u8(p.window_tx)),
            4: _const(_u8(p.window_rx)),
            5: _const(_u16(p.max_info_tx)),
            6: _const(_u16(p.max_info_rx)),
            7: _const(_u16(25)),  # inter_octet_time_out, ms
            8: _const(_u16(int(p.inactivity_timeout))),
            9: _const(_u16(physical)),
        },
    )


def _access_rights(obj: CosemObject) -> CosemData:
    attrs = array(*(
        structure(CosemData("integer", index), _enum(1), CosemData("null"))  # read-only
        for index in sorted(obj.attributes)
    ))
    methods = array(*(
        structure(CosemData("integer", index), _enum(0)) for index in obj.methods
    ))
    return structure(attrs, methods)


def _current_association(others: list[CosemObject]) -> CosemObject:
    code = obis("0.0.40.0.0.255")
    listed = list(others)  # a copy: the caller appends this object to its own list

    def object_list(_view: AssociationView) -> CosemData:
        entries = [*listed, self_obj]
        return array(*(
            structure(
                CosemData("long-unsigned", obj.class_id),
                _u8(obj.version),
                _octets(obj.obis),
                _access_rights(obj),
            )
            for obj in entries
        ))

    def partners(view: AssociationView) -> CosemData:
        return structure(CosemData("integer", view.client_sap), _u16(view.server_sap))

    def context_info(view: AssociationView) -> CosemData:
        return structure(
            CosemData("bit-string", f"{view.conformance:024b}"),
            _u16(view.client_max_pdu),
            _u16(view.server_max_pdu),
            _u8(6),
            CosemData("integer", 0),
            _octets(b""),
        )

    def mechanism(view: AssociationView) -> CosemData:
        return _octets(bytes.fromhex("608574050802") + bytes([view.mechanism]))

    self_obj = CosemObject(
        15, 1, code,
        {
            1: _ln(code),
            2: object_list,
            3: partners,
            4: _const(_octets(bytes.fromhex("60857405080101"))),
            5: context_info,
            6: mechanism,
            7: lambda _v: DataAccessResult.READ_WRITE_DENIED,  # the secret is never readable
            8: _const(_enum(2)),  # association_status: associated
            9: _const(_octets(bytes.fromhex("00002B0000FF"))),
        },
        methods=(1, 2),
    )
    return self_obj
