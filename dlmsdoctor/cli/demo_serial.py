"""The demo's serial scenarios (issue 11): the simulated meter on a pseudo-terminal instead of
127.0.0.1, and the probe's options pointed at it. ``demo_cmd`` calls these two helpers."""

from __future__ import annotations

import dataclasses
from typing import Any


def meter_place(line: str) -> dict[str, Any]:
    """Where the scenario's meter serves: TCP on a free port, or a pty (``serial``, ``optical``)
    whose meter reads the client's rate and, for ``optical``, answers the mode E sign-on."""
    if not line:
        return {"port": 0}
    from dlmsdoctor.sim.optical import LineSettings

    return {"port": None, "serial_device": "pty", "line": LineSettings(optical=line == "optical")}


def line_options(line: str, meter: Any, options: Any) -> Any:
    """The demo's options aimed at the meter's pty (the same engine as ``probe /dev/pts/N``)."""
    if not line:
        return options
    return dataclasses.replace(options, host=str(meter.serial_path), port=0, link=line,
                               framing="hdlc", connect_timeout=options.connect_timeout)
