"""Field faults the simulated meter can show, parsed from ``--fault SPEC`` strings.

Each spec is ``NAME`` or ``NAME=VALUE``; several may be combined. ``FAULT_HELP`` lists them
with what the client sees on the wire (docs/simulator.md repeats it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

FAULT_HELP: dict[str, str] = {
    "wrapper-only[=close|silent]": "speaks only the wrapper; on HDLC bytes closes (default) or "
    "stays silent",
    "hdlc-only[=silent|close]": "speaks only HDLC; on wrapper bytes stays silent (default) or "
    "closes",
    "wrong-address=silent|close": "a frame for another address is ignored (silent, the HDLC "
    "rule) or the socket is closed",
    "lockout=N,T": "after N failed logins, locked for T seconds: every new connection is closed "
    "after its first frame and even the right password fails",
    "single-session=close|dm": "a second connection is closed after its first frame, or its "
    "frames are answered with DM",
    "dm-on-snrm": "SNRM is answered with DM",
    "frmr-too-long[=N]": "the UA advertises the negotiated max info length, but an I-frame "
    "whose information field exceeds N bytes (default 48: a public AARQ passes, an LLS one "
    "does not) gets FRMR, as meters with a smaller real buffer do",
    "delay=SECONDS": "every reply is sent SECONDS late",
    "ua-delay=SECONDS": "only the UA that answers an SNRM is sent SECONDS late (a slow link "
    "set-up); every other reply is prompt",
    "aare-delay=SECONDS": "only the AARE is sent SECONDS late (key derivation, a slow CPU); "
    "every other reply is prompt",
    "get-delay=SECONDS": "only GET answers are sent SECONDS late (a busy meter); every other "
    "reply is prompt",
    "rlre-delay=SECONDS": "only the RLRE is sent SECONDS late; every other reply is prompt",
    "latency=SECONDS": "one-way latency added in each direction (a round trip costs 2x)",
    "garbage-reply": "replies are replaced by bytes that are no frame",
    "bad-fcs": "replies carry a wrong FCS",
    "cut-reply": "the first reply is cut mid-frame and the socket closed",
    "stale-bytes": "bytes from an earlier session are delivered right after connect",
    "inactivity=SECONDS": "an idle connection is closed after SECONDS",
    "iec62056-21": "answers with an IEC 62056-21 identification text instead of HDLC",
    "echo": "every byte received is echoed back first (optical head, half-duplex RS-485)",
    "bridge-busy": "sends ser2net's 'Port already in use' text and closes",
    # serial line (simulate --pty): see dlmsdoctor/sim/optical.py
    "line-rate=BAUD": "serial: the meter's port runs at BAUD (a client at another rate is noise "
    "to it: its frames are lost)",
    "line-format=FMT": "serial: the meter's UART uses FMT (e.g. 8E1) while the client uses 8N1: "
    "it understands the client, but its answers arrive as garbage",
    "no-mode-e": "optical: the identification lacks \\2 (data readout only, no HDLC)",
    "optical-silent": "optical: the port never answers a sign-on",
    "mode-e-rate=BAUD": "optical: acknowledges the offered rate but switches to BAUD",
}


# per-service delay faults -> the service whose answer they delay
_SERVICE_DELAYS = {"ua-delay": "link", "aare-delay": "association", "get-delay": "get",
                   "rlre-delay": "release"}

# frmr-too-long: the information field a "small buffer" meter really takes. 48 lets the public
# AARQ (34 bytes with LLC) through and rejects an LLS AARQ (59), the field case.
DEFAULT_FRMR_LIMIT = 48


class FaultError(ValueError):
    """A fault spec that cannot be understood."""


@dataclass(frozen=True, slots=True)
class Faults:
    wrapper_only: str | None = None  # "close" | "silent"
    hdlc_only: str | None = None  # "silent" | "close"
    wrong_address: str = "silent"  # default HDLC behaviour; "close" is the fault
    lockout: tuple[int, float] | None = None
    single_session: str | None = None  # "close" | "dm"
    dm_on_snrm: bool = False
    frmr_too_long: bool = False
    frmr_limit: int = DEFAULT_FRMR_LIMIT  # with frmr_too_long: the longest info field taken
    delay: float = 0.0
    # per service: only the answer to that request is late (the first frame of it)
    service_delays: tuple[tuple[str, float], ...] = ()
    latency: float = 0.0
    garbage_reply: bool = False
    bad_fcs: bool = False
    cut_reply: bool = False
    stale_bytes: bool = False
    inactivity: float | None = None
    iec62056_21: bool = False
    echo: bool = False
    bridge_busy: bool = False
    line_rate: int | None = None
    line_format: str | None = None
    no_mode_e: bool = False
    optical_silent: bool = False
    mode_e_rate: int | None = None
    specs: tuple[str, ...] = ()

    def delay_for(self, service: str) -> float:
        """The extra delay of the answer to a ``service`` request (link, association, get,
        release); 0 for the others."""
        return dict(self.service_delays).get(service, 0.0)

    @property
    def forced_framing(self) -> str | None:
        if self.wrapper_only:
            return "wrapper"
        if self.hdlc_only:
            return "hdlc"
        return None


def _seconds(name: str, value: str | None) -> float:
    if value is None:
        raise FaultError(f"fault {name!r} needs a value in seconds, e.g. {name}=0.2")
    try:
        seconds = float(value)
    except ValueError:
        raise FaultError(f"fault {name!r}: {value!r} is not a number of seconds") from None
    if not 0 <= seconds <= 3600:
        raise FaultError(f"fault {name!r}: {seconds} s is out of range 0..3600")
    return seconds


def _choice(name: str, value: str | None, choices: tuple[str, ...]) -> str:
    if value is None:
        return choices[0]
    if value not in choices:
        allowed = ", ".join(choices)
        raise FaultError(f"fault {name!r}: value must be one of {allowed}, not {value!r}")
    return value


def parse_faults(specs: list[str] | tuple[str, ...]) -> Faults:
    """Combine fault specs into one ``Faults``; raises ``FaultError`` with a usable message."""
    faults = Faults(specs=tuple(specs))
    for spec in specs:
        name, _, raw = spec.strip().partition("=")
        value = raw.strip() or None if "=" in spec else None
        name = name.strip().lower()
        flag_faults = {
            "dm-on-snrm": "dm_on_snrm",
            "garbage-reply": "garbage_reply",
            "bad-fcs": "bad_fcs",
            "cut-reply": "cut_reply",
            "stale-bytes": "stale_bytes",
            "iec62056-21": "iec62056_21",
            "echo": "echo",
            "bridge-busy": "bridge_busy",
            "no-mode-e": "no_mode_e",
            "optical-silent": "optical_silent",
        }
        if name in flag_faults:
            if value is not None:
                raise FaultError(f"fault {name!r} takes no value")
            faults = replace(faults, **{flag_faults[name]: True})  # type: ignore[arg-type]
        elif name == "frmr-too-long":
            faults = replace(faults, frmr_too_long=True, frmr_limit=_frmr_limit(value))
        elif name == "wrapper-only":
            faults = replace(faults, wrapper_only=_choice(name, value, ("close", "silent")))
        elif name == "hdlc-only":
            faults = replace(faults, hdlc_only=_choice(name, value, ("silent", "close")))
        elif name == "wrong-address":
            faults = replace(faults, wrong_address=_choice(name, value, ("silent", "close")))
        elif name == "single-session":
            faults = replace(faults, single_session=_choice(name, value, ("close", "dm")))
        elif name == "lockout":
            faults = replace(faults, lockout=_lockout(value))
        elif name == "delay":
            faults = replace(faults, delay=_seconds(name, value))
        elif name in _SERVICE_DELAYS:
            delays = dict(faults.service_delays)
            delays[_SERVICE_DELAYS[name]] = _seconds(name, value)
            faults = replace(faults, service_delays=tuple(sorted(delays.items())))
        elif name == "latency":
            faults = replace(faults, latency=_seconds(name, value))
        elif name == "line-rate":
            faults = replace(faults, line_rate=_baud(name, value))
        elif name == "mode-e-rate":
            faults = replace(faults, mode_e_rate=_baud(name, value))
        elif name == "line-format":
            faults = replace(faults, line_format=_line_format(value))
        elif name == "inactivity":
            faults = replace(faults, inactivity=_seconds(name, value))
        else:
            known = ", ".join(sorted(k.split("[")[0].split("=")[0] for k in FAULT_HELP))
            raise FaultError(f"unknown fault {name!r}; known faults: {known}")
    if faults.wrapper_only and faults.hdlc_only:
        raise FaultError("faults 'wrapper-only' and 'hdlc-only' exclude each other")
    return faults


def _baud(name: str, value: str | None) -> int:
    if value is None or not value.isdigit() or not 50 <= int(value) <= 4_000_000:
        raise FaultError(f"fault {name!r} needs a rate in baud, e.g. {name}=19200")
    return int(value)


def _line_format(value: str | None) -> str:
    import re

    if value is None or not re.fullmatch(r"[5-8][NEOMSneoms](1|1\.5|2)", value):
        raise FaultError("fault 'line-format' needs DATA PARITY STOP, e.g. line-format=8E1")
    return value.upper()


def _frmr_limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_FRMR_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise FaultError(f"fault 'frmr-too-long': {value!r} is not a byte count") from None
    if not 1 <= limit <= 2030:
        raise FaultError("fault 'frmr-too-long': N must be 1..2030 bytes")
    return limit


def _lockout(value: str | None) -> tuple[int, float]:
    if value is None:
        raise FaultError(
            "fault 'lockout' needs N,T: N failed logins, T seconds locked (lockout=3,60)"
        )
    count_text, _, seconds_text = value.partition(",")
    try:
        count = int(count_text)
    except ValueError:
        raise FaultError(
            f"fault 'lockout': {count_text!r} is not a count of failed logins"
        ) from None
    if count < 1:
        raise FaultError("fault 'lockout': N must be at least 1")
    return count, _seconds("lockout", seconds_text or "60")
