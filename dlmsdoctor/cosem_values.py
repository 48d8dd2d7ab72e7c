"""COSEM attribute values for people: A-XDR decoded by the codec, scaler and unit applied,
dates as dates, and the association's object list as entries with names.

Pure functions over bytes (no I/O): the object browser (``browse.py``) reads, this explains.
Units: DLMS UA Blue Book (IEC 62056-6-2) 4.3.2, enum ``unit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from dlmsdoctor.codec.axdr import DATA_TYPE_NAMES, DecodeContext, decode_data
from dlmsdoctor.codec.model import Finding, Span
from dlmsdoctor.codec.obis import class_name, dotted_obis, obis_name

UNITS: dict[int, str] = {
    1: "a", 2: "mo", 3: "wk", 4: "d", 5: "h", 6: "min", 7: "s", 8: "°", 9: "°C",
    10: "currency", 11: "m", 12: "m/s", 13: "m³", 14: "m³", 15: "m³/h", 16: "m³/h",
    17: "m³/d", 18: "m³/d", 19: "l", 20: "kg", 21: "N", 22: "Nm", 23: "Pa", 24: "bar",
    25: "J", 26: "J/h", 27: "W", 28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh",
    33: "A", 34: "C", 35: "V", 36: "V/m", 37: "F", 38: "Ω", 39: "Ωm²/m", 40: "Wb", 41: "T",
    42: "A/m", 43: "H", 44: "Hz", 45: "1/(Wh)", 46: "1/(varh)", 47: "1/(VAh)", 48: "V²h",
    49: "A²h", 50: "kg/s", 51: "S", 52: "K", 53: "1/(V²h)", 54: "1/(A²h)", 55: "1/m³",
    56: "%", 57: "Ah", 60: "Wh/m³", 61: "J/m³", 62: "Mol %", 63: "g/m³", 64: "Pa s",
    65: "J/kg", 66: "g/cm²", 67: "atm", 70: "dBm", 71: "dBµV", 72: "dB", 254: "other",
    255: "",
}

# Classes whose value attribute(s) take the scaler_unit of another attribute:
# class id -> ({value attributes}, scaler_unit attribute). Blue Book 4.3.2, 4.3.3, 4.3.4.
SCALED: dict[int, tuple[frozenset[int], int]] = {
    3: (frozenset({2}), 3),  # Register
    4: (frozenset({2}), 3),  # Extended register
    5: (frozenset({2, 3}), 4),  # Demand register: current and last average
}

# Attribute names of the common classes (Blue Book); attribute 1 is always logical_name.
ATTRIBUTE_NAMES: dict[int, dict[int, str]] = {
    1: {2: "value"},
    3: {2: "value", 3: "scaler_unit"},
    4: {2: "value", 3: "scaler_unit", 4: "status", 5: "capture_time"},
    5: {2: "current_average_value", 3: "last_average_value", 4: "scaler_unit", 5: "status",
        6: "capture_time", 7: "start_time_current", 8: "period", 9: "number_of_periods"},
    7: {2: "buffer", 3: "capture_objects", 4: "capture_period", 5: "sort_method",
        6: "sort_object", 7: "entries_in_use", 8: "profile_entries"},
    8: {2: "time", 3: "time_zone", 4: "status", 5: "daylight_savings_begin",
        6: "daylight_savings_end", 7: "daylight_savings_deviation",
        8: "daylight_savings_enabled", 9: "clock_base"},
    15: {2: "object_list", 3: "associated_partners_id", 4: "application_context_name",
         5: "xDLMS_context_info", 6: "authentication_mechanism_name", 7: "secret",
         8: "association_status", 9: "security_setup_reference"},
    23: {2: "comm_speed", 3: "window_size_transmit", 4: "window_size_receive",
         5: "max_info_field_length_transmit", 6: "max_info_field_length_receive",
         7: "inter_octet_time_out", 8: "inactivity_time_out", 9: "device_address"},
}

# Attributes whose value is a secret: never read from the browser (the meter should refuse).
SECRET_ATTRIBUTES = frozenset({(15, 7)})


def attribute_name(class_id: int, attribute: int) -> str:
    if attribute == 1:
        return "logical_name"
    return ATTRIBUTE_NAMES.get(class_id, {}).get(attribute, f"attribute {attribute}")


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """One object of the association's object list (class 15 attribute 2)."""

    class_id: int
    version: int
    obis: bytes
    attributes: tuple[tuple[int, int], ...] = ()  # (attribute, access mode) as listed

    @property
    def obis_text(self) -> str:
        return dotted_obis(self.obis)

    @property
    def name(self) -> str:
        return obis_name(self.obis)

    @property
    def class_name(self) -> str:
        return class_name(self.class_id)

    def attribute_ids(self) -> list[int]:
        listed = [a for a, _ in self.attributes]
        if listed:
            return listed
        return [1, *sorted(ATTRIBUTE_NAMES.get(self.class_id, {2: "value"}))]


@dataclass(frozen=True, slots=True)
class DecodedValue:
    """An attribute's Data decoded: the python value, its text, and the codec's span tree."""

    value: object
    text: str
    span: Span | None
    findings: tuple[Finding, ...] = ()
    type_name: str = ""


def decode_value(data: bytes) -> DecodedValue:
    """A-XDR ``Data`` bytes as the codec reads them; never raises on bad bytes."""
    if not data:
        return DecodedValue(None, "(no data)", None)
    ctx = DecodeContext(data, 0, False)
    span, _, value = decode_data(ctx, 0, len(data), "value", "Value")
    type_name = DATA_TYPE_NAMES.get(data[0], f"type {data[0]}")
    return DecodedValue(value, plain_text(value), span, tuple(ctx.findings), type_name)


def plain_text(value: object) -> str:
    """A decoded value in one line: lists in brackets, bytes in hex, text as it is."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.hex(" ").upper() if value else "(empty)"
    if isinstance(value, list):
        return "[" + ", ".join(plain_text(v) for v in value) + "]"
    return str(value)


def scaler_unit(value: object) -> tuple[int, int] | None:
    """The (scaler, unit) of a scaler_unit structure, None when it is not one."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int)
        and isinstance(value[1], int)
        and not isinstance(value[0], bool)
    ):
        return value[0], value[1]
    return None


def unit_name(unit: int) -> str:
    return UNITS.get(unit, f"unit {unit}")


def scaled_text(value: object, scaler: int, unit: int) -> str | None:
    """``1234.567 kWh``-style text: value x 10^scaler with its unit; None for a non-number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        number: Decimal | float = value * (10.0**scaler)
    else:
        number = Decimal(value).scaleb(scaler)
        if scaler >= 0:
            number = number.quantize(Decimal(1))
    name = unit_name(unit)
    return f"{number} {name}".strip()


def scaler_text(pair: tuple[int, int]) -> str:
    scaler, unit = pair
    return f"scaler {scaler} (x10^{scaler}), unit {unit_name(unit) or 'none'} ({unit})"


def explain(
    class_id: int, attribute: int, decoded: DecodedValue, scale: tuple[int, int] | None = None
) -> str:
    """The line a technician reads for one attribute: scaled, dated, or plain."""
    if attribute == 1 and isinstance(decoded.value, bytes) and len(decoded.value) == 6:
        return dotted_obis(decoded.value)
    scaled_attrs = SCALED.get(class_id)
    if scaled_attrs is not None and attribute == scaled_attrs[1]:
        pair = scaler_unit(decoded.value)
        if pair is not None:
            return scaler_text(pair)
    if scaled_attrs is not None and attribute in scaled_attrs[0] and scale is not None:
        text = scaled_text(decoded.value, *scale)
        if text is not None:
            return f"{text}  (raw {decoded.text}, scaler {scale[0]})"
    return decoded.text


def object_list(decoded: DecodedValue) -> list[ObjectEntry]:
    """Entries of an object_list value: array of {class_id, version, logical_name, rights}."""
    out: list[ObjectEntry] = []
    if not isinstance(decoded.value, list):
        return out
    for item in decoded.value:
        if not isinstance(item, list) or len(item) < 3:
            continue
        class_id, version, name = item[0], item[1], item[2]
        if isinstance(name, str):  # printable bytes were shown as text by the codec
            name = name.encode("latin-1")
        if not isinstance(class_id, int) or not isinstance(name, bytes) or len(name) != 6:
            continue
        rights: list[tuple[int, int]] = []
        access = item[3] if len(item) > 3 else None
        if isinstance(access, list) and access and isinstance(access[0], list):
            for attr in access[0]:
                if isinstance(attr, list) and len(attr) >= 2:
                    index, mode = attr[0], attr[1]
                    if isinstance(index, int) and isinstance(mode, int):
                        rights.append((index, mode))
        out.append(
            ObjectEntry(class_id, version if isinstance(version, int) else 0, name, tuple(rights))
        )
    return out


# attribute_access_mode (Blue Book 4.4.3): 4..6 are the authenticated variants.
ACCESS_MODES = {0: "no access", 1: "read", 2: "write", 3: "read-write", 4: "read (auth)",
                5: "write (auth)", 6: "read-write (auth)"}


def readable(entry: ObjectEntry, attribute: int) -> bool:
    """Whether the object list grants read access (an unlisted attribute: try it)."""
    if (entry.class_id, attribute) in SECRET_ATTRIBUTES:
        return False
    modes = dict(entry.attributes)
    mode = modes.get(attribute)
    return mode is None or mode in (1, 3, 4, 6)
