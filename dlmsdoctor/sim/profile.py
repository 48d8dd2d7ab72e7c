"""Meter profiles: what a simulated meter is (addresses, clients, limits, object values).

A profile is a TOML file; the built-in ones live in ``dlmsdoctor/sim/profiles/``. Loading
validates everything up front and raises ``ProfileError`` with a message a user can act on.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

AUTH_NONE = "none"
AUTH_LOW = "low"
AUTH_HLS_GMAC = "hls-gmac"
_AUTHS = (AUTH_NONE, AUTH_LOW, AUTH_HLS_GMAC)
MECHANISM_OF_AUTH = {AUTH_NONE: 0, AUTH_LOW: 1, AUTH_HLS_GMAC: 5}

# Physical-address rules met in the field (docs/DOMAIN.md section 2).
DERIVE_SN_MOD = "sn-mod-10000-plus-1000"  # gurux-dlms's default formula
DERIVE_LAST4 = "last-4-digits"
_DERIVATIONS = (DERIVE_SN_MOD, DERIVE_LAST4)


class ProfileError(ValueError):
    """A profile file or name that cannot be used, with the reason."""


@dataclass(frozen=True, slots=True)
class ClientSpec:
    sap: int
    auth: str = AUTH_NONE
    password: bytes | None = field(default=None, repr=False)  # LLS secret

    @property
    def mechanism(self) -> int:
        return MECHANISM_OF_AUTH[self.auth]


@dataclass(frozen=True, slots=True)
class HlsKeys:
    """Security suite 0 keys shared with HLS-GMAC clients (secrets: never logged)."""

    block_cipher_key: bytes = field(repr=False)
    authentication_key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ObjectValues:
    logical_device_name: str = "DLD0000012345678"
    firmware_id: str = "DLD-SIM 1.0.0"
    energy_wh: int = 1234567
    energy_scaler: int = 0
    voltage: int = 2305
    voltage_scaler: int = -1


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str = ""
    framing: str = "hdlc"  # "hdlc" | "wrapper"
    server_logical: int = 1
    server_physical_configured: int | None = 1
    address_size: int = 2
    serial_number: str | None = None
    physical_from_serial: str | None = None
    system_title: bytes = bytes.fromhex("444C4400BC614E00")
    max_info_tx: int = 128
    max_info_rx: int = 128
    window_tx: int = 1
    window_rx: int = 1
    inactivity_timeout: float = 120.0
    logical_name_referencing: bool = True
    max_pdu_size: int = 1024
    lockout_failed_logins: int = 0  # 0: never locks
    lockout_seconds: float = 60.0
    clients: tuple[ClientSpec, ...] = (ClientSpec(16),)
    hls_keys: HlsKeys | None = None
    objects: ObjectValues = ObjectValues()

    @property
    def server_physical(self) -> int | None:
        """The HDLC lower address, derived from the serial number when the profile says so."""
        if self.physical_from_serial and self.serial_number:
            return derive_physical(self.serial_number, self.physical_from_serial)
        return self.server_physical_configured

    def client(self, sap: int) -> ClientSpec | None:
        return next((c for c in self.clients if c.sap == sap), None)

    def with_changes(self, **changes: object) -> Profile:
        return replace(self, **changes)  # type: ignore[arg-type]

    def describe_address(self) -> str:
        if self.framing == "wrapper":
            return f"wrapper, logical device {self.server_logical}"
        if self.address_size == 1:
            return f"hdlc, server {self.server_logical}, 1-byte"
        server = f"{self.server_logical}/{self.server_physical}"
        return f"hdlc, server {server}, {self.address_size}-byte"


def derive_physical(serial_number: str, rule: str) -> int:
    digits = "".join(ch for ch in serial_number if ch.isdigit())
    if not digits:
        raise ProfileError(f"serial number {serial_number!r} has no digits to derive an address")
    if rule == DERIVE_SN_MOD:
        return int(digits) % 10000 + 1000
    if rule == DERIVE_LAST4:
        return int(digits[-4:])
    raise ProfileError(f"unknown physical address rule {rule!r} (use one of {_DERIVATIONS})")


def builtin_names() -> list[str]:
    folder = resources.files("dlmsdoctor.sim") / "profiles"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_profile(name_or_path: str) -> Profile:
    """A built-in profile by name, or a TOML file by path."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"cannot read profile {name_or_path}: {exc.strerror}") from None
        return parse_profile(text, source=str(path))
    if name_or_path not in builtin_names():
        raise ProfileError(
            f"no profile named {name_or_path!r}; built-in profiles: {', '.join(builtin_names())}"
        )
    resource = resources.files("dlmsdoctor.sim") / "profiles" / f"{name_or_path}.toml"
    return parse_profile(resource.read_text(encoding="utf-8"), source=name_or_path)


def parse_profile(text: str, source: str = "<profile>") -> Profile:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nested array or inline table
        raise ProfileError(f"{source}: arrays or tables nested too deeply") from None
    try:
        profile = _from_doc(doc)
    except ProfileError as exc:
        raise ProfileError(f"{source}: {exc}") from None
    except (TypeError, ValueError, KeyError) as exc:
        raise ProfileError(f"{source}: bad value: {exc}") from None
    try:
        _validate(profile)
    except ProfileError as exc:
        raise ProfileError(f"{source}: {exc}") from None
    return profile


def _table(doc: dict[str, object], key: str) -> dict[str, object]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ProfileError(f"[{key}] must be a table")
    return value


def _int(table: dict[str, object], key: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f"{key} must be an integer, not {value!r}")
    return value


def _num(table: dict[str, object], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"{key} must be a number, not {value!r}")
    return float(value)


def _hex(value: object, key: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise ProfileError(f"{key} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ProfileError(f"{key} is not hex: {value!r}") from None
    if size is not None and len(raw) != size:
        raise ProfileError(f"{key} must be {size} bytes, got {len(raw)}")
    return raw


def _from_doc(doc: dict[str, object]) -> Profile:
    server = _table(doc, "server")
    hdlc = _table(doc, "hdlc")
    assoc = _table(doc, "association")
    lockout = _table(doc, "lockout")
    objects = _table(doc, "objects")
    security = _table(doc, "security")
    clients_raw = doc.get("clients", [{"sap": 16, "auth": "none"}])
    if not isinstance(clients_raw, list) or not clients_raw:
        raise ProfileError("[[clients]] must list at least one client")
    clients = []
    for entry in clients_raw:
        if not isinstance(entry, dict):
            raise ProfileError("each [[clients]] entry must be a table")
        auth = str(entry.get("auth", AUTH_NONE))
        password = entry.get("password")
        clients.append(
            ClientSpec(
                sap=_int(entry, "sap", 16),
                auth=auth,
                password=password.encode() if isinstance(password, str) else None,
            )
        )
    keys = None
    if security:
        keys = HlsKeys(
            block_cipher_key=_hex(security.get("block_cipher_key"), "block_cipher_key", 16),
            authentication_key=_hex(security.get("authentication_key"), "authentication_key", 16),
        )
    physical = (_int(server, "physical", 1) if "physical" in server
                else None if "physical_from_serial" in server else 1)
    serial = server.get("serial_number")
    rule = server.get("physical_from_serial")
    defaults = ObjectValues()
    return Profile(
        name=str(doc.get("name", "custom")),
        description=str(doc.get("description", "")),
        framing=str(doc.get("framing", "hdlc")),
        server_logical=_int(server, "logical", 1),
        server_physical_configured=physical if isinstance(physical, int) else None,
        address_size=_int(server, "address_size", 2),
        serial_number=str(serial) if serial is not None else None,
        physical_from_serial=str(rule) if rule else None,
        system_title=_hex(server.get("system_title", "444C4400BC614E00"), "system_title", 8),
        max_info_tx=_int(hdlc, "max_info_tx", 128),
        max_info_rx=_int(hdlc, "max_info_rx", 128),
        window_tx=_int(hdlc, "window_tx", 1),
        window_rx=_int(hdlc, "window_rx", 1),
        inactivity_timeout=_num(hdlc, "inactivity_timeout", 120.0),
        logical_name_referencing=bool(assoc.get("logical_name_referencing", True)),
        max_pdu_size=_int(assoc, "max_pdu_size", 1024),
        lockout_failed_logins=_int(lockout, "failed_logins", 0),
        lockout_seconds=_num(lockout, "seconds", 60.0),
        clients=tuple(clients),
        hls_keys=keys,
        objects=ObjectValues(
            logical_device_name=str(
                objects.get("logical_device_name", defaults.logical_device_name)
            ),
            firmware_id=str(objects.get("firmware_id", defaults.firmware_id)),
            energy_wh=_int(objects, "energy_wh", defaults.energy_wh),
            energy_scaler=_int(objects, "energy_scaler", defaults.energy_scaler),
            voltage=_int(objects, "voltage", defaults.voltage),
            voltage_scaler=_int(objects, "voltage_scaler", defaults.voltage_scaler),
        ),
    )


def _validate(p: Profile) -> None:
    if p.framing not in ("hdlc", "wrapper"):
        raise ProfileError(f"framing must be 'hdlc' or 'wrapper', not {p.framing!r}")
    if p.address_size not in (1, 2, 4):
        raise ProfileError(f"address_size must be 1, 2 or 4, not {p.address_size}")
    if p.physical_from_serial and p.physical_from_serial not in _DERIVATIONS:
        raise ProfileError(
            f"physical_from_serial must be one of {', '.join(_DERIVATIONS)}, "
            f"not {p.physical_from_serial!r}"
        )
    if p.physical_from_serial and not p.serial_number:
        raise ProfileError("physical_from_serial needs a serial_number")
    upper_max, lower_max = {1: (0x7F, 0), 2: (0x7F, 0x7F), 4: (0x3FFF, 0x3FFF)}[p.address_size]
    if not 0 <= p.server_logical <= upper_max:
        raise ProfileError(
            f"logical address {p.server_logical} does not fit {p.address_size} bytes"
        )
    physical = p.server_physical
    if p.address_size > 1 and (physical is None or not 0 <= physical <= lower_max):
        raise ProfileError(
            f"physical address {physical} does not fit a {p.address_size}-byte server address "
            f"(max {lower_max})"
        )
    for client in p.clients:
        if client.auth not in _AUTHS:
            raise ProfileError(f"client {client.sap}: auth must be one of {', '.join(_AUTHS)}")
        if not 0 < client.sap <= 0x7F:
            raise ProfileError(f"client SAP {client.sap} out of range 1..127")
        if client.auth == AUTH_LOW and not client.password:
            raise ProfileError(f"client {client.sap}: auth 'low' needs a password")
        if client.auth == AUTH_HLS_GMAC and p.hls_keys is None:
            raise ProfileError(f"client {client.sap}: auth 'hls-gmac' needs a [security] table")
    for name, value in (("max_info_tx", p.max_info_tx), ("max_info_rx", p.max_info_rx)):
        if not 32 <= value <= 2030:
            raise ProfileError(f"{name} must be 32..2030, not {value}")
    if not 1 <= p.window_tx <= 7 or not 1 <= p.window_rx <= 7:
        raise ProfileError("window sizes must be 1..7")
    if len(p.objects.logical_device_name) < 3:
        raise ProfileError("logical_device_name must start with a 3-letter FLAG id")
