"""Glue between the Probe screen's form and the engine: options in, live records out.

No textual here: this is plain data conversion, kept apart so it can be tested on its own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from dlmsdoctor import __version__
from dlmsdoctor.config import Credential, load_config
from dlmsdoctor.engine import ProbeOptions, default_plan
from dlmsdoctor.events import Direction, FrameReceived, FrameSent
from dlmsdoctor.ledger import FAILED_OUTCOMES, LoginLedger, meter_key
from dlmsdoctor.session import FrameRecord, Session, StepRecord, Target
from dlmsdoctor.widgets.frame_decode import classify
from dlmsdoctor.widgets.target_form import TargetValues


def build_options(values: TargetValues, config_path: Path | None) -> tuple[ProbeOptions, int]:
    """The engine's ProbeOptions for this form, and the failed logins this meter has left.

    Raises ValueError (ConfigError and OptionsError are ones) with a message for the technician.
    """
    credentials: tuple[Credential, ...] = ()
    if values.credential:
        credentials = (load_config(config_path).credential(values.credential),)
    server = (
        ProbeOptions.parse_server_address(values.server_address) if values.server_address else None
    )
    options = ProbeOptions(
        host=values.host,
        port=values.port,
        framing=values.framing,
        server_address=server,
        address_size=values.address_size,
        serial_number=values.serial_number,
        credentials=credentials,
        icmp=values.icmp,
    )
    return options, logins_left(options, LoginLedger())


def logins_left(options: ProbeOptions, ledger: LoginLedger) -> int:
    """Failed logins the lockout guard still allows on this meter (the ledger spans runs)."""
    first = options.first_server()
    meter = meter_key(options.host, options.port, first.logical, first.physical)
    spent = len(ledger.recent_failures(meter, options.ledger_window))
    return max(0, options.ledger_max_failures - spent)


def login_failed(mechanism: str, outcome: str) -> bool:
    """Whether a LoginAttempted event spends budget (the ledger's own rule)."""
    return mechanism != "none" and outcome in FAILED_OUTCOMES


def planned_steps(options: ProbeOptions) -> list[StepRecord]:
    """The rungs the engine will walk, all pending: the ladder shows the whole plan at once."""
    return [StepRecord(p.id, p.title, p.layer) for p in default_plan(options)]


def new_session(values: TargetValues) -> Session:
    """The live record the viewers show while the engine runs; replaced by the engine's own."""
    return Session(
        id=f"live-{uuid.uuid4().hex[:8]}",
        tool_version=__version__,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        target=Target(
            host=values.host,
            port=values.port,
            framing=values.framing,
            server_address=values.server_address,
            address_size=values.address_size,
            serial_number=values.serial_number,
        ),
    )


def live_frame(index: int, event: FrameSent | FrameReceived) -> FrameRecord:
    direction = Direction.TX if isinstance(event, FrameSent) else Direction.RX
    kind, summary, findings = classify(event.data, direction.value)
    return FrameRecord(
        index=index,
        conn_id=event.conn_id,
        direction=direction,
        at=event.at,
        data=event.data,
        step_id=event.step_id,
        kind=kind,
        summary=summary,
        findings=findings,
    )
