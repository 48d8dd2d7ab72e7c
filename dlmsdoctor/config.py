"""The user's TOML config: named credential sets and named targets.

::

    [credentials.mgmt]
    client_sap = 1
    auth = "low"            # none | low | gmac
    password = "00000000"

    [targets.meter2]
    host = "192.168.1.135"
    port = 3333
    server_address = "1/17"
    credentials = ["mgmt"]

    [targets.meter-a]           # a serial line (RS-485, RS-232): device instead of host
    device = "/dev/ttyUSB0"     # or "COM3", "serial:NAME"
    baud = 9600                 # or "auto" (the default: 9600 first, then the common rates)
    serial_format = "8N1"
    # optical = true            # an optical head (IEC 62056-21 mode E)

    [targets.bridge]            # a serial port behind an RFC 2217 bridge (ser2net)
    host = "rfc2217://192.0.2.7:7001"

The file lives in the platformdirs config dir (``DLMSDOCTOR_CONFIG_DIR`` overrides). Reading never
creates it; writing creates it with mode 0600 because it holds passwords. A broken file gives a
``ConfigError`` naming the file and line, never a traceback. Secrets never appear in ``repr``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dlmsdoctor import paths, target_rules

AUTH_MECHANISMS = ("none", "low", "gmac")
_AUTH_WORDS = "none, low or gmac"
_MASK = "********"


class ConfigError(ValueError):
    """A config file or a ``--cred`` value that cannot be used; the message says where and why."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        line: int | None = None,
        key: str | None = None,
    ):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.key = key  # the table key at fault, so that the line can point at it


@dataclass(frozen=True)
class Credential:
    """One credential set: a client SAP and how it authenticates.

    ``password`` is the LLS secret; ``system_title``/``block_cipher_key``/``authentication_key``
    (hex) serve HLS-GMAC. ``repr`` masks every secret so logs and tracebacks never leak one.
    """

    name: str
    client_sap: int
    auth: str = "none"
    password: str | None = field(default=None, repr=False)
    system_title: str | None = None
    block_cipher_key: str | None = field(default=None, repr=False)
    authentication_key: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        secret = _MASK if (self.password or self.block_cipher_key) else None
        return (
            f"Credential(name={self.name!r}, client_sap={self.client_sap}, auth={self.auth!r}, "
            f"secret={secret!r})"
        )

    __str__ = __repr__

    def describe(self) -> dict[str, object]:
        """What a Session or a report may show: no secret."""
        return {"name": self.name, "client_sap": self.client_sap, "auth": self.auth}


def parse_credential(text: str) -> Credential:
    """Parse the CLI form ``[NAME=]SAP:AUTH[:SECRET]``.

    For ``gmac`` the secret is ``BLOCK_KEY_HEX,AUTH_KEY_HEX[,SYSTEM_TITLE_HEX]``. The secret may
    itself contain ``:`` (everything after the second colon is the secret).
    """
    name = ""
    body = text.strip()
    if "=" in body.split(":", 1)[0]:
        name, body = body.split("=", 1)
        name = name.strip()
        if not name:
            raise ConfigError(f"empty credential name in {_mask_cli(text)!r}")
    parts = body.split(":", 2)
    if len(parts) < 2:
        raise ConfigError(
            f"credential {_mask_cli(text)!r} is not [NAME=]SAP:AUTH[:SECRET] (e.g. 1:low:00000000)"
        )
    sap = _parse_sap(parts[0])
    auth = parts[1].strip().lower()
    secret = parts[2] if len(parts) == 3 else None
    if auth not in AUTH_MECHANISMS:
        # never echo the value: "1:SuperSecret99" puts the password where AUTH goes
        raise ConfigError(f"AUTH must be {_AUTH_WORDS} (as in [NAME=]SAP:AUTH[:SECRET], e.g. "
                          "1:low:PASSWORD)")
    return _build(name or f"{sap}-{auth}", sap, auth, secret)


def _mask_cli(text: str) -> str:
    parts = text.split(":", 2)
    return ":".join(parts[:2]) + (":" + _MASK if len(parts) == 3 else "")


def _parse_sap(text: str) -> int:
    try:
        sap = int(text.strip(), 0)
    except ValueError:
        raise ConfigError(f"client SAP {text!r} is not a number") from None
    if not 0 <= sap <= 0x7F:
        raise ConfigError(f"client SAP {sap} is out of range 0..127")
    return sap


def _build(name: str, sap: int, auth: str, secret: str | None) -> Credential:
    if auth not in AUTH_MECHANISMS:  # not echoed: it may be a password typed in the wrong place
        raise ConfigError(f"credential {name!r}: auth must be {_AUTH_WORDS}", key="auth")
    if auth == "none":
        if secret:  # "1:none:extra" must not silently drop what the user meant as a secret
            raise ConfigError(f"credential {name!r}: auth none takes no password or key "
                              "(use low or gmac)")
        return Credential(name, sap, "none")
    if auth == "low":
        if not secret:
            raise ConfigError(f"credential {name!r}: auth low needs a password")
        return Credential(name, sap, "low", password=secret)
    keys = [k.strip() for k in (secret or "").split(",")]
    if len(keys) < 2 or not all(_is_hex(k) for k in keys):
        raise ConfigError(
            f"credential {name!r}: auth gmac needs BLOCK_KEY_HEX,AUTH_KEY_HEX[,SYSTEM_TITLE_HEX]"
        )
    return Credential(
        name, sap, "gmac", block_cipher_key=keys[0], authentication_key=keys[1],
        system_title=keys[2] if len(keys) > 2 else None,
    )


def _is_hex(text: str) -> bool:
    return bool(re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", text))


# every key a [targets.NAME] table may hold (anything else is a mistake, said so); a serial
# line has device (or host = "rfc2217://HOST:PORT") and the line keys, no port
TARGET_KEYS = ("host", "port", "device", "baud", "serial_format", "optical", "framing",
               "server_address", "address_size", "serial_number", "credentials")


@dataclass(frozen=True)
class TargetConfig:
    """One ``[targets.NAME]``. ``host`` is what ``dlmsdoctor probe`` takes as its target: a
    TCP host (with ``port``), a serial device (``/dev/ttyUSB0``, ``COM3``, ``serial:NAME``: the
    ``device`` key) or ``rfc2217://HOST:PORT``; ``port`` is 0 for the serial forms, as in
    ProbeOptions. ``link`` is tcp, serial, optical or rfc2217; ``baud`` ("auto" or a rate) and
    ``serial_format`` (``8N1``) are None when the file leaves them to the defaults."""

    name: str
    host: str
    port: int = 4059
    framing: str | None = None
    server_address: str | None = None
    address_size: int | None = None
    serial_number: str | None = None
    credentials: tuple[str, ...] = ()
    link: str = "tcp"
    baud: str | None = None
    serial_format: str | None = None

    @property
    def device(self) -> str | None:
        """The serial device the ``device`` key names (None for TCP and RFC 2217 bridges)."""
        return self.host if target_rules.link_of(self.host) == "serial" else None

    @property
    def optical(self) -> bool:
        return self.link == "optical"


@dataclass(frozen=True)
class Config:
    credentials: dict[str, Credential] = field(default_factory=dict)
    targets: dict[str, TargetConfig] = field(default_factory=dict)
    path: Path | None = None
    # things the user should know but that do not stop a run (a file holding secrets that
    # others can read): the faces print them on stderr / in the status bar
    warnings: tuple[str, ...] = ()

    def credential(self, name: str) -> Credential:
        try:
            return self.credentials[name]
        except KeyError:
            known = ", ".join(sorted(self.credentials)) or "none defined"
            raise ConfigError(
                f"no credential set named {name!r} ({known})", path=self.path
            ) from None


def load_config(path: Path | None = None, *, required: bool = False) -> Config:
    """Read the config; a missing file is an empty config (and is not created), unless
    ``required`` (the user named the file: a typo must not silently mean "no config")."""
    path = path or paths.config_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError("no such config file", path=path) from None
        return Config(path=path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from None
    config = parse_config(text, path)
    warning = _permission_warning(path, config)
    if warning:
        config = dataclasses.replace(config, warnings=(*config.warnings, warning))
    return config


def _permission_warning(path: Path, config: Config) -> str | None:
    """Like ssh with a private key: a file holding secrets must be readable by its owner only."""
    holds_secret = any(c.password or c.block_cipher_key or c.authentication_key
                       for c in config.credentials.values())
    if not holds_secret or os.name != "posix":
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if mode & 0o077 == 0:
        return None
    return (f"{path} holds passwords or keys but its mode is {mode:04o} (readable by others): "
            f"run `chmod 600 {path}`")


def parse_config(text: str, path: Path | None = None) -> Config:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            f"not valid TOML: {exc}", path=path, line=int(match.group(1)) if match else None
        ) from None
    except RecursionError:  # tomllib recurses per nested array or inline table
        raise ConfigError("arrays or tables nested too deeply (a config needs two levels)",
                          path=path) from None
    creds: dict[str, Credential] = {}
    targets: dict[str, TargetConfig] = {}
    for key in doc:
        if key not in ("credentials", "targets"):
            raise ConfigError(
                f"unknown section [{key}] (expected [credentials.NAME] or [targets.NAME])",
                path=path, line=_line_of(text, key),
            )
    for name, table in _tables(doc, "credentials", text, path).items():
        try:
            creds[name] = _credential_from_table(name, table)
        except ConfigError as exc:
            line = _line_of_key(text, f"credentials.{name}", exc.key)
            raise ConfigError(str(exc), path=path, line=line) from None
    for name, table in _tables(doc, "targets", text, path).items():
        try:
            targets[name] = _target_from_table(name, table, creds)
        except ConfigError as exc:
            line = _line_of_key(text, f"targets.{name}", exc.key)
            raise ConfigError(str(exc), path=path, line=line) from None
    return Config(creds, targets, path)


def _tables(doc: dict[str, object], key: str, text: str, path: Path | None) -> dict[str, dict]:
    section = doc.get(key, {})
    if not isinstance(section, dict) or not all(isinstance(v, dict) for v in section.values()):
        raise ConfigError(f"[{key}] must hold tables like [{key}.NAME]", path=path,
                          line=_line_of(text, key))
    return section


def _line_of(text: str, header: str) -> int | None:
    """Line number of ``[header]`` (or the first mention of it) to point the user at."""
    pattern = re.compile(r"^[ \t]*\[[ \t]*" + re.escape(header) + r"[ \t]*\]", re.MULTILINE)
    match = pattern.search(text) or re.search(re.escape(header), text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _line_of_key(text: str, header: str, key: str | None) -> int | None:
    """The line of ``key = ...`` inside ``[header]`` (the header's line when not found)."""
    start = _line_of(text, header)
    if start is None or key is None:
        return start
    lines = text.splitlines()
    for number in range(start, len(lines)):  # the lines after the header (0-based start)
        stripped = lines[number].strip()
        if stripped.startswith("["):
            break
        if re.match(re.escape(key) + r"[ \t]*=", stripped):
            return number + 1
    return start


def _credential_from_table(name: str, table: dict[str, object]) -> Credential:
    allowed = {"client_sap", "auth", "password", "system_title", "block_cipher_key",
               "authentication_key"}
    unknown = set(table) - allowed
    if unknown:
        first = sorted(unknown)[0]
        raise ConfigError(f"credential {name!r}: unknown key(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(allowed))})", key=first)
    sap = table.get("client_sap")
    if not isinstance(sap, int) or isinstance(sap, bool):
        raise ConfigError(f"credential {name!r}: client_sap must be an integer", key="client_sap")
    try:
        _parse_sap(str(sap))
    except ConfigError as exc:
        raise ConfigError(str(exc), key="client_sap") from None
    auth = table.get("auth", "none")
    if not isinstance(auth, str):
        raise ConfigError(f"credential {name!r}: auth must be a string", key="auth")
    for key in ("password", "system_title", "block_cipher_key", "authentication_key"):
        if key in table and not isinstance(table[key], str):
            raise ConfigError(f"credential {name!r}: {key} must be a string (quote it)", key=key)
    if auth == "gmac":
        secret = ",".join(
            str(table.get(k, "")) for k in ("block_cipher_key", "authentication_key")
        ) + ("," + str(table["system_title"]) if "system_title" in table else "")
        return _build(name, sap, auth, secret)
    password = table.get("password")
    return _build(name, sap, auth.lower(), password if isinstance(password, str) else None)


_SERVER_ADDRESS = re.compile(r"\s*(?:\d+|0x[0-9a-fA-F]+)\s*(?:/\s*(?:\d+|0x[0-9a-fA-F]+)\s*)?")


def host_problem(host: str) -> str | None:
    """What makes ``host`` unusable as a TCP host (an IP address or a DNS name), or None.

    The resolver refuses a label over 63 characters or an empty one (``a..b``) with a Python
    codec message; say it in words before anything connects."""
    import ipaddress

    text = host.strip()
    if not text:
        return "the host is empty"
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
        return None
    except ValueError:
        pass
    if any(ch.isspace() or ord(ch) < 32 for ch in text) or "/" in text:
        return f"host {_short(text)} is not an IP address or a DNS name"
    name = text[:-1] if text.endswith(".") else text
    if len(name) > 253:
        return f"host name of {len(name)} characters (a DNS name has at most 253)"
    for label in name.split("."):
        if not label:
            return f"host {_short(text)} has an empty part between dots"
        if len(label) > 63:
            return (f"host {_short(text)}: the part {_short(label)} has {len(label)} characters "
                    "(a DNS name's parts between dots have at most 63)")
    try:
        name.encode("idna")
    except UnicodeError:
        return f"host {_short(text)} is not a valid DNS name"
    return None


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _target_from_table(
    name: str, table: dict[str, object], creds: dict[str, Credential]
) -> TargetConfig:
    unknown = set(table) - set(TARGET_KEYS)
    if unknown:
        first = sorted(unknown)[0]
        hint = (" (credential sets go in credentials = [\"NAME\"], defined in "
                "[credentials.NAME])" if unknown & {"client_sap", "authentication", "credential",
                                                     "auth", "password"} else "")
        if unknown & {"baudrate", "rate", "speed", "format", "parity", "serial", "port_name",
                      "tty"}:
            hint = (' (a serial line: device = "/dev/ttyUSB0", baud = 9600, '
                    'serial_format = "8N1", optical = true)')
        raise ConfigError(f"target {name!r}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(TARGET_KEYS)}{hint}", key=first)
    host, port, link = _target_where(name, table)
    baud, serial_format = table.get("baud"), table.get("serial_format")
    if "baud" in table and (isinstance(baud, bool) or not isinstance(baud, str | int)):
        raise ConfigError(f'target {name!r}: baud must be "auto" or a rate such as 9600',
                          key="baud")
    if "serial_format" in table and not isinstance(serial_format, str):
        raise ConfigError(f'target {name!r}: serial_format must be a quoted string such as '
                          '"8N1"', key="serial_format")
    optical = table.get("optical", False)
    if not isinstance(optical, bool):
        raise ConfigError(f"target {name!r}: optical must be true or false", key="optical")
    cred_names = table.get("credentials", [])
    if not isinstance(cred_names, list) or not all(isinstance(c, str) for c in cred_names):
        raise ConfigError(f"target {name!r}: credentials must be a list of names",
                          key="credentials")
    for cred in cred_names:
        if cred not in creds:
            raise ConfigError(f"target {name!r}: unknown credential set {cred!r}",
                              key="credentials")
    size = table.get("address_size")
    if size is not None and (isinstance(size, bool) or size not in (1, 2, 4)):
        raise ConfigError(f"target {name!r}: address_size must be 1, 2 or 4", key="address_size")
    framing = table.get("framing")
    if framing is not None and (not isinstance(framing, str)
                                or framing not in ("auto", "hdlc", "wrapper")):
        raise ConfigError(f"target {name!r}: framing must be auto, hdlc or wrapper",
                          key="framing")
    for key in ("server_address", "serial_number"):
        value = table.get(key)
        if key in table and (isinstance(value, bool) or not isinstance(value, str | int)):
            raise ConfigError(f"target {name!r}: {key} must be a string", key=key)
    if "server_address" in table and not _SERVER_ADDRESS.fullmatch(
            str(table["server_address"])):
        raise ConfigError(f"target {name!r}: server_address must be LOGICAL/PHYSICAL (e.g. "
                          '"1/17") or LOGICAL, each 0..16383', key="server_address")
    # the line settings, checked by the rules the command line's --baud, --serial-format,
    # --optical and --framing follow (target_rules.py): one parser, two spellings
    line_baud = None if baud is None else str(baud)
    line_format = serial_format if isinstance(serial_format, str) else None
    try:
        if link == "tcp":
            target_rules.check_not_serial(host, baud=baud, serial_format=serial_format,
                                          optical=optical, spelling=target_rules.CONFIG)
        else:
            line = target_rules.check_line(host, baud=line_baud, serial_format=line_format,
                                           optical=optical, spelling=target_rules.CONFIG)
            host, link = line.device, line.link
            line_baud = line.baud if baud is not None else None
            line_format = line.serial_format if serial_format is not None else None
        target_rules.check_framing(link, framing if isinstance(framing, str) else None,
                                   target_rules.CONFIG)
    except target_rules.LineError as exc:
        key = exc.setting
        if key == "target":
            key = "device" if "device" in table else "host"
        raise ConfigError(f"target {name!r}: {exc}", key=key) from None

    def opt_str(key: str) -> str | None:
        value = table.get(key)
        return None if value is None else str(value)

    return TargetConfig(
        name, host, port, opt_str("framing"), opt_str("server_address"),
        size if isinstance(size, int) else None, opt_str("serial_number"), tuple(cred_names),
        link=link, baud=line_baud, serial_format=line_format,
    )


def _target_where(name: str, table: dict[str, object]) -> tuple[str, int, str]:
    """host (or device), port and link of a target table: a TCP host and port, a serial
    device, or an RFC 2217 bridge; ``host`` and ``device`` together is refused, saying which
    to keep."""
    host, device = table.get("host"), table.get("device")
    if "host" in table and "device" in table:
        raise ConfigError(
            f"target {name!r}: host and device are both given, and a target is one of them: "
            f"keep device = {_quoted(device)} for a serial line (or an optical head) and "
            f"delete host, or keep host = {_quoted(host)} for a TCP meter or an "
            "rfc2217:// bridge and delete device", key="device")
    if "device" in table:
        if not isinstance(device, str) or not device.strip():
            raise ConfigError(f"target {name!r}: device must be a quoted serial device, e.g. "
                              '"/dev/ttyUSB0", "COM3" or "serial:NAME"', key="device")
        link = target_rules.link_of(device)
        if link == "rfc2217":
            raise ConfigError(f"target {name!r}: an RFC 2217 bridge is a host: write host = "
                              f"{_quoted(device)} instead of device", key="device")
        if link == "tcp":
            raise ConfigError(
                f"target {name!r}: device {_short(device)} is not a serial device: write a "
                f'path ("/dev/{device.strip()}"), "COM3" or "serial:{device.strip()}"; a TCP '
                "meter goes in host", key="device")
        _no_port(name, table, "a serial line has none")
        return device.strip(), 0, "serial"
    if not isinstance(host, str) or not host:
        raise ConfigError(f"target {name!r}: host is required (a quoted string), or device "
                          'for a serial line (device = "/dev/ttyUSB0")', key="host")
    link = target_rules.link_of(host)
    if link == "serial":
        raise ConfigError(f"target {name!r}: host {_short(host)} is a serial line: write "
                          f"device = {_quoted(host)} instead of host", key="host")
    if link == "rfc2217":
        _no_port(name, table, "the bridge's port is in the URL (rfc2217://HOST:PORT)")
        return host.strip(), 0, "rfc2217"
    problem = host_problem(host)
    if problem:
        raise ConfigError(f"target {name!r}: {problem}", key="host")
    port = table.get("port", 4059)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ConfigError(f"target {name!r}: port must be 1..65535", key="port")
    return host, port, "tcp"


def _quoted(value: object) -> str:
    """A value as the TOML line the user should write holds it (double quotes)."""
    text = str(value).strip()
    text = text if len(text) <= 40 else text[:39] + "…"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _no_port(name: str, table: dict[str, object], why: str) -> None:
    if "port" in table:
        raise ConfigError(f"target {name!r}: port is for a TCP host; {why}", key="port")


def save_credential(cred: Credential, path: Path | None = None) -> Path:
    """Append a credential set to the config file, creating it with mode 0600."""
    path = path or paths.config_file()
    existing = load_config(path)
    if cred.name in existing.credentials:
        raise ConfigError(f"credential set {cred.name!r} already exists", path=path)
    lines = [f"\n[credentials.{toml_key(cred.name)}]", f"client_sap = {cred.client_sap}",
             f'auth = "{cred.auth}"']
    for key in ("password", "system_title", "block_cipher_key", "authentication_key"):
        value = getattr(cred, key)
        if value is not None:
            lines.append(f"{key} = {toml_string(value)}")
    paths.ensure_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def toml_key(name: str) -> str:
    """A table name as TOML takes it: bare when it can be (``meter-a``), else quoted (a ``.``
    in a bare key would open a nested table)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else toml_string(name)


def toml_string(value: str) -> str:
    """A TOML basic string; control characters escaped, which TOML forbids raw."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = re.sub(r"[\x00-\x08\x0a-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}",
                     escaped)
    return f'"{escaped}"'
