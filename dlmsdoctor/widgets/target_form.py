"""The target form: where the meter is and how to address it (one line per field)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select

from dlmsdoctor.config import TargetConfig
from dlmsdoctor.targets import link_of

FRAMINGS = [("auto", "auto"), ("HDLC", "hdlc"), ("wrapper (47)", "wrapper")]
ADDRESS_SIZES = [("auto", 0), ("1 byte", 1), ("2 bytes", 2), ("4 bytes", 4)]
# A serial line's rate: auto sweeps the common rates (the CLI's --baud auto).
BAUDS = [("auto", "auto")] + [
    (str(rate), str(rate)) for rate in (300, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
]
SERIAL_FORMATS = [(fmt, fmt) for fmt in ("8N1", "8E1", "8O1", "7E1", "8N2")]


@dataclass(frozen=True, slots=True)
class HostForm:
    """One way to write Host: ``shown`` as the help writes it, ``example`` a value the CLI's
    parser (``dlmsdoctor.targets``) takes, so its link is the parser's word, not ours."""

    shown: str
    example: str


# Every way to write a target, as `dlmsdoctor probe TARGET` takes it (dlmsdoctor.targets, the one
# parser). The help (F1), Host's placeholder, tooltip and empty-Host message are built from this
# table; tests/tui/test_host_forms.py reads targets.py and fails on a form that is not here.
HOST_FORMS = (
    HostForm("host:port", "192.0.2.10:4061"),
    HostForm("host", "meter-7.example"),
    HostForm("[v6]:port", "[2001:db8::7]:4061"),
    HostForm("/dev/ttyUSB0", "/dev/ttyUSB0"),
    HostForm("COM3", "COM3"),
    HostForm("serial:NAME", "serial:ttyS1"),
    HostForm("rfc2217://HOST:PORT", "rfc2217://192.0.2.20:7001"),
)
# The serial options of targets.options_for (the CLI's --baud, --serial-format, --optical) and
# the form's field for each; the optical head is a serial line with the Optical switch ticked.
SERIAL_FIELDS = (("baud", "Baud"), ("serial_format", "Format"), ("optical", "Optical"))
SAVED_TARGET = "a saved target's name"  # [targets.NAME] of the config (the CLI takes it too)


def cli_flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def host_link(form: HostForm) -> str:
    """tcp, serial or rfc2217, as the parser classifies the form's example."""
    return link_of(form.example)


# What each link means, in the help; {Baud} etc. name the form's fields, {--baud} the CLI's.
LINK_MEANINGS = {
    "tcp": "a meter or bridge over TCP (port 4059 when none is given)",
    "serial": "a serial line: {Baud} and {Format} ({--baud}, {--serial-format})",
    "optical": "an optical head: IEC 62056-21 mode E sign-on, then HDLC",
    "rfc2217": "a serial port behind an RFC 2217 bridge (ser2net)",
}


def _words(text: str) -> str:
    names = {label: label for _, label in SERIAL_FIELDS}
    names |= {cli_flag(option): cli_flag(option) for option, _ in SERIAL_FIELDS}
    return text.format(**names)


def _groups() -> dict[str, list[str]]:
    """link -> the forms the parser gives that link, in HOST_FORMS' order."""
    groups: dict[str, list[str]] = {}
    for form in HOST_FORMS:
        groups.setdefault(host_link(form), []).append(form.shown)
    return groups


def host_forms_line() -> str:
    """Every form in one sentence: the empty-Host message, Host's tooltip, the status line."""
    groups = _groups()
    fields = ", ".join(label for _, label in SERIAL_FIELDS)
    said = [", ".join(shown) + (f" (a serial line: {fields})" if link == "serial" else "")
            for link, shown in groups.items()]
    return f"Host takes {'; '.join(said)}; or {SAVED_TARGET} (F1: what each means)."


def host_placeholder() -> str:
    """Every form, one of each link first: the start is what a narrow field shows (80x24:
    "host:port, /dev/ttyUSB0, ")."""
    firsts = [shown[0] for shown in _groups().values()]
    return ", ".join(firsts + [f.shown for f in HOST_FORMS if f.shown not in firsts])


def host_forms_help(indent: int) -> list[str]:
    """The help's lines on Host: the forms grouped by the link the parser gives them, each group
    followed by what it means; the optical head (a serial line with Optical ticked) after the
    serial forms."""
    pad, deeper = " " * indent, " " * (indent + 4)
    optical = dict(SERIAL_FIELDS)["optical"]
    lines: list[str] = []
    for link, shown in _groups().items():
        lines += [pad + ", ".join(shown), deeper + _words(LINK_MEANINGS[link])]
        if link == "serial":
            lines += [pad + f"the same with {optical} ticked ({cli_flag('optical')})",
                      deeper + _words(LINK_MEANINGS["optical"])]
    lines += [pad + SAVED_TARGET, deeper + "its [targets.NAME] in the config fills the form"]
    return lines


class FormError(ValueError):
    """A field the technician must fix; ``field_id`` names the input to focus."""

    def __init__(self, field_id: str, message: str) -> None:
        super().__init__(message)
        self.field_id = field_id


@dataclass(frozen=True, slots=True)
class TargetValues:
    host: str
    port: int
    framing: str
    server_address: str | None
    address_size: int | None
    serial_number: str | None
    credential: str | None
    icmp: bool = True
    # a serial target (Host is /dev/..., COM3, serial:NAME or rfc2217://HOST:PORT): port is 0
    link: str = "tcp"  # tcp, serial, rfc2217 or optical (a serial line with the optical head)
    baud: str = "auto"
    serial_format: str = "8N1"


class TargetForm(VerticalScroll):
    """One field a row in a narrow pane; the screen's CSS lays them two a row at 80 columns.

    Host comes first (the screen focuses it) and takes what the CLI takes: ``HOST``,
    ``HOST:PORT``, ``[IPv6]:PORT``, the name of a target in the config, or a serial line
    (``/dev/ttyUSB0``, ``COM3``, ``serial:NAME``, ``rfc2217://HOST:PORT``). A serial Host hides
    Port, Framing and Ping (HDLC on the line, nothing to ping) and shows Baud, Format and the
    optical switch; "Find ports" lists the serial ports pyserial finds.
    """

    DEFAULT_CSS = """
    TargetForm { height: auto; max-height: 100%; layout: grid; grid-size: 1; grid-rows: 1;
                 grid-gutter: 1 0; }
    TargetForm > Horizontal { height: 1; }
    TargetForm Label { width: 12; color: $text-muted; }
    TargetForm Input, TargetForm Select { width: 1fr; }
    TargetForm .serial-only { display: none; }
    TargetForm.-serial .serial-only { display: block; }
    TargetForm.-serial .tcp-only { display: none; }
    """

    class PortsRequested(Message):
        """The technician asked for the serial ports list (the screen opens the picker)."""

    def __init__(
        self,
        *,
        host: str = "",
        port: int = 4059,
        credentials: list[str] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._host = host
        self._port = port
        self._credentials = credentials or []
        self._targets: dict[str, TargetConfig] = {}

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label("Host")
            host = Input(self._host, placeholder=host_placeholder(), id="host", compact=True)
            host.tooltip = Text(host_forms_line())  # plain: "[v6]" is not markup
            yield host
        with Horizontal(classes="tcp-only"):
            yield Label("Port")
            yield Input(str(self._port), id="port", type="integer", compact=True)
        with Horizontal(classes="serial-only"):
            yield Label("Baud")
            yield Select(BAUDS, value="auto", allow_blank=False, id="baud", compact=True)
        with Horizontal(classes="serial-only"):
            yield Label("Format")
            yield Select(SERIAL_FORMATS, value="8N1", allow_blank=False, id="serial-format",
                         compact=True)
        with Horizontal(classes="serial-only"):
            yield Label("Optical")
            yield Checkbox("IEC mode E head", False, id="optical", compact=True)
        with Horizontal(classes="tcp-only"):
            yield Label("Framing")
            yield Select(FRAMINGS, value="auto", allow_blank=False, id="framing", compact=True)
        with Horizontal():
            yield Label("Server addr")
            yield Input(placeholder="1/17 (blank: try)", id="server-address", compact=True)
        with Horizontal():
            yield Label("Addr size")
            yield Select(ADDRESS_SIZES, value=0, allow_blank=False, id="address-size", compact=True)
        with Horizontal():
            yield Label("Serial no.")
            yield Input(placeholder="optional", id="serial", compact=True)
        with Horizontal():
            yield Label("Credentials")
            yield Select(
                [(name, name) for name in self._credentials],
                prompt="public (16, none)",
                id="credential",
                compact=True,
            )
        with Horizontal(classes="tcp-only"):
            yield Label("Ping first")
            yield Checkbox("ICMP echo", True, id="icmp", compact=True)
        with Horizontal():
            yield Label("Saved")
            yield Select[str]([], prompt="saved targets (config)", id="saved-target", compact=True)
        with Horizontal():
            yield Label("Serial port")
            yield Button("Find ports…", id="find-ports", compact=True)

    @on(Input.Changed, "#host")
    def _host_changed(self, event: Input.Changed) -> None:
        target = self._targets.get(event.value.strip())
        host = target.host if target is not None else event.value
        self.set_class(bool(host.strip()) and link_of(host) != "tcp", "-serial")

    @on(Button.Pressed, "#find-ports")
    def _find_ports(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.PortsRequested())

    def set_device(self, device: str) -> None:
        """A port picked in the list: Host names it (a bare name becomes ``serial:NAME``)."""
        if link_of(device) == "tcp":
            device = f"serial:{device}"
        self.query_one("#host", Input).value = device

    def set_targets(
        self, targets: dict[str, TargetConfig], last_results: dict[str, str] | None = None
    ) -> None:
        """Saved targets from the config, each labelled with its last result from History."""
        self._targets = dict(targets)
        results = last_results or {}
        options = []
        for name, target in sorted(targets.items()):
            last = results.get(f"{target.host}:{target.port}")
            options.append((f"{name} ({last})" if last else name, name))
        self.query_one("#saved-target", Select).set_options(options)

    @on(Select.Changed, "#saved-target")
    def _saved_target_chosen(self, event: Select.Changed) -> None:
        target = self._targets.get(str(event.value))
        if target is not None:
            self.fill_target(target)

    def fill_target(self, target: TargetConfig) -> None:
        """Fill the fields from a config target (chosen in Saved, or typed in Host)."""
        self.query_one("#host", Input).value = target.host
        if target.link != "tcp":  # a serial line: its rate, format and head, as saved
            self._choose("#baud", BAUDS, target.baud or "auto")
            self._choose("#serial-format", SERIAL_FORMATS, target.serial_format or "8N1")
            self.query_one("#optical", Checkbox).value = target.optical
        else:
            self.query_one("#port", Input).value = str(target.port)
        self.query_one("#framing", Select).value = target.framing or "auto"
        self.query_one("#server-address", Input).value = target.server_address or ""
        self.query_one("#address-size", Select).value = target.address_size or 0
        self.query_one("#serial", Input).value = target.serial_number or ""
        credential = self.query_one("#credential", Select)
        if target.credentials and target.credentials[0] in self._credentials:
            credential.value = target.credentials[0]
        else:
            credential.clear()

    def _choose(self, select_id: str, choices: list[tuple[str, str]], value: str) -> None:
        # a saved rate or format the list lacks (600, 7O1) is offered, never replaced
        select = self.query_one(select_id, Select)
        if value not in dict(choices).values():
            select.set_options([*choices, (value, value)])
        select.value = value

    def set_values(self, values: TargetValues) -> None:
        """Fill every field (a preset run: the demo shows what it probes)."""
        self.query_one("#host", Input).value = values.host
        if values.port:  # a serial line has none: Port keeps its TCP value
            self.query_one("#port", Input).value = str(values.port)
        self.query_one("#framing", Select).value = values.framing
        self.query_one("#server-address", Input).value = values.server_address or ""
        self.query_one("#address-size", Select).value = values.address_size or 0
        self.query_one("#serial", Input).value = values.serial_number or ""
        credential = self.query_one("#credential", Select)
        if values.credential in self._credentials:
            credential.value = values.credential
        else:
            credential.clear()
        self.query_one("#icmp", Checkbox).value = values.icmp
        if values.link != "tcp":  # a rate or format the lists lack: the sweep finds it
            bauds, formats = dict(BAUDS).values(), dict(SERIAL_FORMATS).values()
            baud = values.baud if values.baud in bauds else "auto"
            fmt = values.serial_format if values.serial_format in formats else "8N1"
            self.query_one("#baud", Select).value = baud
            self.query_one("#serial-format", Select).value = fmt
            self.query_one("#optical", Checkbox).value = values.link == "optical"

    def set_credentials(self, names: list[str], selected: str | None = None) -> None:
        self._credentials = list(names)
        select = self.query_one("#credential", Select)
        select.set_options([(name, name) for name in names])
        if selected in names:
            select.value = selected

    def values(self) -> TargetValues:
        """The form's values, checked; raises FormError naming the field to fix.

        A port typed in Host (``127.0.0.1:4061``, ``[::1]:4061``) wins over the Port field and
        is moved there; a config target's name fills the form from the config."""
        host_input = self.query_one("#host", Input)
        host = host_input.value.strip()
        if not host:
            raise FormError("host", f"Host is empty. {host_forms_line()}")
        target = self._targets.get(host)
        if target is not None:
            self.fill_target(target)
            host = target.host
        if link_of(host) != "tcp":
            return self._serial_values(host)
        if target is None:
            from dlmsdoctor.engine import OptionsError, parse_host_port

            try:
                split_host, split_port = parse_host_port(host, default_port=0)
            except OptionsError as exc:
                raise FormError("host", str(exc)) from None
            if split_port:
                self.query_one("#port", Input).value = str(split_port)
            if split_host != host:
                host_input.value = host = split_host
        port_text = self.query_one("#port", Input).value.strip()
        try:
            port = int(port_text)
        except ValueError:
            port = -1
        if not 0 < port < 65536:
            raise FormError("port", f"Port must be 1..65535, not {port_text!r}.")
        server = self.query_one("#server-address", Input).value.strip() or None
        size = self.query_one("#address-size", Select).value
        credential = self.query_one("#credential", Select).value
        return TargetValues(
            host=host,
            port=port,
            framing=str(self.query_one("#framing", Select).value),
            server_address=server,
            address_size=int(size) if isinstance(size, int) and size else None,
            serial_number=self.query_one("#serial", Input).value.strip() or None,
            credential=credential if isinstance(credential, str) else None,
            icmp=self.query_one("#icmp", Checkbox).value,
        )

    def _serial_values(self, host: str) -> TargetValues:
        """A serial Host: checked as the CLI checks ``probe /dev/ttyUSB0 --baud ...``."""
        from dlmsdoctor.engine import OptionsError
        from dlmsdoctor.targets import options_for

        baud = str(self.query_one("#baud", Select).value)
        fmt = str(self.query_one("#serial-format", Select).value)
        optical = self.query_one("#optical", Checkbox).value
        try:  # the optical head signs on at 7E1 and switches to 8N1: the format is the standard's
            options = options_for(host, baud=baud, serial_format=None if optical else fmt,
                                  optical=optical)
        except OptionsError as exc:
            raise FormError("host", str(exc)) from None
        server = self.query_one("#server-address", Input).value.strip() or None
        size = self.query_one("#address-size", Select).value
        credential = self.query_one("#credential", Select).value
        return TargetValues(
            host=options.host,
            port=0,
            framing="hdlc",
            server_address=server,
            address_size=int(size) if isinstance(size, int) and size else None,
            serial_number=self.query_one("#serial", Input).value.strip() or None,
            credential=credential if isinstance(credential, str) else None,
            icmp=False,
            link=options.link,
            baud=options.baud,
            serial_format=options.serial_format,
        )
