"""The serial port picker: the ports pyserial finds on this machine, each with its USB
description, so the technician picks the converter or optical head instead of guessing
``/dev/ttyUSB0`` from ``/dev/ttyUSB1``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option


@dataclass(frozen=True, slots=True)
class SerialPort:
    device: str
    description: str  # the USB product and maker as the system names them, or ""
    hwid: str  # e.g. "USB VID:PID=0403:6001 SER=A50285BI", or ""


def find_ports() -> tuple[list[SerialPort], str | None]:
    """The serial ports pyserial lists (sorted by device), and why none could be listed."""
    try:
        from serial.tools import list_ports  # lazily: pyserial costs start-up time
    except ImportError:
        return [], "pyserial is not installed: pip install pyserial"
    try:
        found = list_ports.comports()
    except OSError as exc:
        return [], f"the system would not list its serial ports: {exc}"
    ports = []
    for info in found:
        description = info.description if info.description not in (None, "n/a") else ""
        if description == info.device:
            description = ""
        hwid = info.hwid if info.hwid not in (None, "n/a") else ""
        ports.append(SerialPort(str(info.device), str(description or ""), str(hwid or "")))
    return sorted(ports, key=lambda p: p.device), None


def port_label(port: SerialPort) -> Text:
    text = Text(port.device, style="bold")
    if port.description:
        text.append(f"  {port.description}")
    if port.hwid:
        text.append(f"  {port.hwid}", style="dim")
    return text


class PortsScreen(ModalScreen[str | None]):
    """Enter picks a port (its device goes into Host); esc closes. Returns the device or None."""

    CSS_PATH = "ports.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self) -> None:
        super().__init__()
        self._ports, self._problem = find_ports()

    def compose(self) -> ComposeResult:
        with Vertical(id="ports-box", classes="modal-box"):
            yield Static("Serial ports: enter puts one in Host (esc closes)",
                         classes="modal-title")
            if self._ports:
                yield OptionList(
                    *(Option(port_label(p), id=f"port-{i}") for i, p in enumerate(self._ports)),
                    id="ports-list",
                )
            else:
                why = self._problem or ("none on this machine: plug the converter or optical "
                                        "head in, or type the device (/dev/ttyUSB0, COM3) or "
                                        "rfc2217://HOST:PORT in Host")
                yield Static(f"No serial port found: {why}.", id="ports-none")
            yield Button("Close", id="ports-close", variant="primary", compact=True)

    @on(OptionList.OptionSelected, "#ports-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if 0 <= event.option_index < len(self._ports):
            self.dismiss(self._ports[event.option_index].device)

    @on(Button.Pressed, "#ports-close")
    def action_close(self) -> None:
        self.dismiss(None)
