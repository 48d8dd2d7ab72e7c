"""Glue between the Probe screen's form and the engine: options in, live records out.

No textual here: this is plain data conversion, kept apart so it can be tested on its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dlmsdoctor import __version__
from dlmsdoctor.config import Credential, load_config
from dlmsdoctor.engine import ProbeOptions, default_plan
from dlmsdoctor.events import Direction, FrameReceived, FrameSent
from dlmsdoctor.ledger import FAILED_OUTCOMES, LedgerUnavailableError, LoginLedger, meter_key
from dlmsdoctor.session import FrameRecord, Session, StepRecord, Target
from dlmsdoctor.widgets.frame_decode import classify
from dlmsdoctor.widgets.target_form import TargetValues

# Awaited before a preset's visible run, given the run's cancel flag: an earlier client's silent
# attempt (the demo's lockout story).
Prelude = Callable[[asyncio.Event], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class PresetRun:
    """A run the Probe screen fills in and starts by itself (``dlmsdoctor demo``).

    While a preset is set, every run of the screen counts logins in ``ledger`` and is not saved,
    so a demo never writes to the user's data dir nor spends a real meter's login budget. The
    form's target fields still apply to later runs; timings and credentials come from
    ``options`` (its credential sets are offered in the form by name).
    """

    options: ProbeOptions
    ledger: LoginLedger
    banner: str  # one line: what is being shown (a simulated meter, which scenario)
    story: str  # the notification on start: the scenario's story and where to look next
    prelude: Prelude | None = None
    prelude_note: str = ""  # the status line while the prelude runs
    # A step's summary in the preset's words: the engine names the option a user turns a rung
    # off with ("turned off (--no-icmp)"); in the demo nobody typed it (cli/demo_cmd.py).
    summary_words: Callable[[str], str] | None = None

    def words(self, summary: str) -> str:
        return self.summary_words(summary) if self.summary_words is not None else summary


def build_options(
    values: TargetValues,
    config_path: Path | None,
    preset: PresetRun | None = None,
    kept: dict[str, Credential] | None = None,
) -> tuple[ProbeOptions, int]:
    """The engine's ProbeOptions for this form, and the failed logins this meter has left.

    With a preset the form's target is laid over the preset's options and its ledger counts.
    Raises ValueError (ConfigError and OptionsError are ones) with a message for the technician.
    """
    server = (
        ProbeOptions.parse_server_address(values.server_address) if values.server_address else None
    )
    base = preset.options if preset is not None else ProbeOptions(host=values.host,
                                                                  link=values.link)
    options = dataclasses.replace(
        base,
        host=values.host,
        port=values.port,
        link=values.link,  # a serial line's settings, as `probe /dev/ttyUSB0 --baud` sets them
        baud=values.baud,
        serial_format=values.serial_format,
        framing=values.framing,
        server_address=server,
        address_size=values.address_size,
        serial_number=values.serial_number,
        credentials=_credentials(values.credential, config_path, preset, kept or {}),
        icmp=values.icmp,
    )
    return options, logins_left(options, preset.ledger if preset else LoginLedger())


def _credentials(
    name: str | None,
    config_path: Path | None,
    preset: PresetRun | None,
    kept: dict[str, Credential],
) -> tuple[Credential, ...]:
    if not name:
        return ()
    if name in kept:  # a set kept for this TUI session only
        return (kept[name],)
    if preset is not None:
        preset_ones = tuple(c for c in preset.options.credentials if c.name == name)
        if preset_ones:
            return preset_ones
    return (load_config(config_path).credential(name),)


def session_values(session: Session) -> TargetValues:
    """The form's fields that probe ``session``'s target again, its working profile first."""
    target = session.target
    profile = session.diagnosis.profile if session.diagnosis else None
    if target.link != "tcp":  # the same line again: the rate that answered (optical: sign on)
        found = profile is not None and profile.baud and target.link != "optical"
        return TargetValues(
            host=target.device or target.host,
            port=0,
            framing="hdlc",
            server_address=target.server_address,
            address_size=target.address_size,
            serial_number=target.serial_number,
            credential=None,
            icmp=False,
            link=target.link,
            baud=str(profile.baud) if found and profile is not None else (target.baud or "auto"),
            serial_format=target.serial_format or "8N1",
        )
    if profile is not None:
        server = str(profile.server_logical) + (
            f"/{profile.server_physical}" if profile.server_physical is not None else ""
        )
        return TargetValues(
            host=profile.host,
            port=profile.port,
            framing=profile.framing,
            server_address=server if profile.framing == "hdlc" else None,
            address_size=profile.address_size if profile.framing == "hdlc" else None,
            serial_number=target.serial_number,
            credential=profile.credential if profile.authentication != "none" else None,
            icmp=True,
        )
    return TargetValues(
        host=target.host,
        port=target.port,
        framing=target.framing,
        server_address=target.server_address,
        address_size=target.address_size,
        serial_number=target.serial_number,
        credential=None,
    )


def preset_values(preset: PresetRun) -> TargetValues:
    """The form's fields for a preset's options (what the technician sees filled in)."""
    options = preset.options
    first = options.credentials[0].name if options.credentials else None
    return TargetValues(
        host=options.host,
        port=options.port,
        framing=options.framing,
        server_address=None if options.server_address is None else str(options.server_address),
        address_size=options.address_size,
        serial_number=options.serial_number,
        credential=first,
        icmp=options.icmp,
    )


# ``logins_left`` when the ledger cannot be read: the engine sends no password at all (unless
# --ignore-ledger-errors), and the status line says why.
LEDGER_UNUSABLE = -1


def logins_left(options: ProbeOptions, ledger: LoginLedger) -> int:
    """Failed logins the next run may spend on this meter, counted as the engine's budget
    (``login_budget.py``) counts them: at most ``run_max_failures`` in the run, and the meter's
    ``ledger_max_failures`` in the window less what earlier runs spent. ``LEDGER_UNUSABLE``
    when the ledger cannot be read (the engine then sends no password)."""
    per_run = max(0, options.run_max_failures)
    first = options.first_server()
    meter = meter_key(options.host, options.port, first.logical, first.physical)
    try:
        spent = len(ledger.recent_failures(meter, options.ledger_window))
    except LedgerUnavailableError:
        return per_run if options.ignore_ledger_errors else LEDGER_UNUSABLE
    return max(0, min(per_run, options.ledger_max_failures - spent))


def logins_left_text(left: int) -> str:
    """The status line's words for ``logins_left``."""
    if left == LEDGER_UNUSABLE:
        return "login ledger unusable: no password is sent"
    return f"failed logins left {left}"


def login_failed(mechanism: str, outcome: str) -> bool:
    """Whether a LoginAttempted event spends budget (the ledger's own rule)."""
    return mechanism != "none" and outcome in FAILED_OUTCOMES


def planned_steps(options: ProbeOptions) -> list[StepRecord]:
    """The rungs the engine will walk, all pending: the ladder shows the whole plan at once."""
    return [StepRecord(p.id, p.title, p.layer) for p in default_plan(options)]


def new_session(values: TargetValues, kind: str = "probe") -> Session:
    """The live record the viewers show while the engine runs; replaced by the engine's own.
    ``kind``: the Session.kind the run will have ("browse" for the object browser)."""
    return Session(
        id=f"live-{uuid.uuid4().hex[:8]}",
        tool_version=__version__,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        kind=kind,
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


def target_snippet(
    name: str, values: TargetValues, session: Session | None, store: object = None
) -> tuple[str, str]:
    """The ``[targets.NAME]`` table for the form's target, and a note for the technician.

    The working profile of ``session`` (the last run, when it probed this host:port) wins over
    the form: it is what was proven to work. A credential set kept for the session only is
    not named (the config could not load a target naming a set it does not hold)."""
    from dlmsdoctor.diagnosis.profile import toml_snippet

    kept = getattr(store, "kept", {}) or {}
    profile = session.diagnosis.profile if session and session.diagnosis else None
    note = ""
    if profile is not None and (profile.host, profile.port) == (values.host, values.port):
        snippet = toml_snippet(profile, name)
        credential = profile.credential if profile.authentication != "none" else None
        note = "With the working profile of the last run."
    elif values.link != "tcp":  # a serial line, an optical head, an RFC 2217 bridge
        from dlmsdoctor.config import TargetConfig
        from dlmsdoctor.config_write import target_table

        credential = values.credential
        snippet = target_table(TargetConfig(
            name, values.host, 0, server_address=values.server_address,
            address_size=values.address_size, serial_number=values.serial_number,
            credentials=(credential,) if credential and credential not in kept else (),
            link=values.link, baud=values.baud,
            serial_format=None if values.link == "optical" else values.serial_format))
        note = "From the form (no run of this target yet)."
    else:
        from dlmsdoctor.config import toml_key, toml_string

        # quoted where needed: a name with a dot would open a nested table
        lines = [f"[targets.{toml_key(name)}]", f"host = {toml_string(values.host)}",
                 f"port = {values.port}"]
        if values.framing != "auto":
            lines.append(f'framing = "{values.framing}"')
        if values.server_address:
            lines.append(f'server_address = "{values.server_address}"')
        if values.address_size:
            lines.append(f"address_size = {values.address_size}")
        if values.serial_number:
            lines.append(f'serial_number = "{values.serial_number}"')
        credential = values.credential
        if credential and credential not in kept:
            lines.append(f'credentials = ["{credential}"]')
        snippet = "\n".join(lines) + "\n"
        note = "From the form (no run of this target yet)."
    if credential and credential in kept:
        snippet = "\n".join(
            line for line in snippet.splitlines() if not line.startswith("credentials")
        ) + "\n"
        note += f" Credential set {credential!r} is kept for this session only: not named."
    return snippet, note
