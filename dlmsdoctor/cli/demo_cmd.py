"""`dlmsdoctor demo`: a simulated meter with a fault from the field, probed by the real ladder.

The meter runs in-process on 127.0.0.1 (a free port); the probe takes exactly the path of
`dlmsdoctor probe` (run.probe_and_diagnose). On a terminal the TUI opens on the Probe screen with
the run preset and started (`demo_app`); `--headless`, `--json` or a non-terminal (pipe, CI)
print the ladder and the diagnosis with the same output code as `probe`. Nothing is written to
the user's data or config dir either way: the session is not saved and the login ledger (and,
in the TUI, the config and sessions dirs) live in a temporary folder, so a demo never counts
against a real meter's login budget.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from dlmsdoctor.cli.demo_serial import line_options, meter_place
from dlmsdoctor.cli.exit_codes import ExitCode


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str  # what the field story is
    profile: str  # simulator profile
    faults: tuple[str, ...] = ()
    serial_number: str | None = None
    creds: tuple[str, ...] = ()
    expect: str = ""  # the cause code the diagnosis should put on top (tests check it)
    options: dict[str, Any] = field(default_factory=dict)
    # credential sets an earlier client used, one silent run each before the shown one (e.g. the
    # site's poller with an outdated password, for the lockout story)
    before: tuple[str, ...] = ()
    line: str = ""  # serial, optical: the meter on a pty, headless only (cli/demo_serial.py)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "wrong-address",
            "a meter whose HDLC address derives from its serial number (12345678 -> 1/6678, "
            "4-byte): clients using 1/1 get silence and conclude the meter is dead",
            "serial-derived",
            serial_number="12345678",
            expect="hdlc.wrong_address",
        ),
        Scenario(
            "busy-bridge",
            "a serial-to-TCP bridge whose only connection is held by the site's own poller: "
            "it answers 'Port already in use' and closes",
            "default",
            ("bridge-busy",),
            expect="bridge.busy",
        ),
        Scenario(
            "wrapper-only",
            "a meter that speaks only the TCP wrapper and closes the socket on HDLC",
            "default",
            ("wrapper-only=close",),
            expect="framing.wrapper_only",
        ),
        Scenario(
            "healthy", "a meter that works (HDLC 1/1, public client 16)", "default", expect=""
        ),
        Scenario("optical", "an optical head on the meter (IEC 62056-21 mode E sign-on at 300 "
                 "baud, then HDLC at 9600) on a pseudo-terminal", "default", line="optical"),
        Scenario(
            "wrong-password",
            "a management password that is wrong (client 1, LLS)",
            "default",
            creds=("mgmt=1:low:99999999",),
            expect="auth.wrong_password",
        ),
        Scenario(
            "lockout",
            "a meter that locks logins for 60 s after two wrong passwords: two earlier dlmsdoctor "
            "runs (not shown) tried outdated ones; now even the right password fails",
            "default",
            ("lockout=2,60",),
            creds=("mgmt=1:low:00000000",),
            # Two runs, one failed login each: one failure alone is, on the wire, the same as a
            # session held by another client, and the engine rightly does not call it a lockout.
            # Two outdated passwords: dlmsdoctor never sends one the meter refused already.
            before=("mgmt=1:low:11111111", "mgmt=1:low:22222222"),
            expect="auth.lockout",
        ),
        Scenario(
            "dm",
            "a meter that refuses the HDLC link with DM (another session holds it)",
            "default",
            ("dm-on-snrm",),
            expect="hdlc.dm",
        ),
        Scenario(
            "echo",
            "an optical head / RS-485 converter that echoes every byte",
            "default",
            ("echo",),
            expect="link.echo",
        ),
        Scenario(
            "iec62056-21",
            "a port that speaks IEC 62056-21 text instead of DLMS",
            "default",
            ("iec62056-21",),
            expect="meter.iec62056_21",
        ),
        Scenario(
            "stale-bytes",
            "a bridge delivering an earlier client's answers at connect",
            "default",
            ("stale-bytes",),
            expect="link.stale_bytes",
        ),
        Scenario(
            "bad-fcs",
            "replies with a wrong checksum (noise, wrong serial settings)",
            "default",
            ("bad-fcs",),
            expect="link.corrupt_replies",
        ),
        Scenario(
            "cut-reply",
            "a reply cut mid-frame, then the socket closed",
            "default",
            ("cut-reply",),
            expect="link.reply_cut",
        ),
        Scenario(
            "inactivity",
            "a meter that closes idle connections after 0.03 s",
            "default",
            ("inactivity=0.03",),
            expect="link.inactivity_timeout",
        ),
        Scenario(
            "slow",
            "a meter that answers after 0.8 s, with a 0.3 s client timeout",
            "default",
            ("delay=0.8",),
            expect="meter.late_replies",
        ),
    )
}
DEFAULT_SCENARIO = "wrong-address"

# Loopback answers in microseconds: short waits keep the demo to a few seconds.
DEMO_TIMEOUT = 0.3

# The engine names the option a user turns a rung off with; in the demo nobody typed it: the
# demo chose it, and says so.
DEMO_CHOICES = {
    "turned off (--no-icmp)": "turned off by the demo (a ping on loopback proves nothing)",
    "not asked (--disc-first)": "not sent: the demo does not send DISC first",
}


def demo_summary(summary: str) -> str:
    return DEMO_CHOICES.get(summary, summary)


def demo_options(scenario: Scenario, port: int) -> Any:
    from dlmsdoctor.config import parse_credential
    from dlmsdoctor.engine import ProbeOptions

    return ProbeOptions(
        host="127.0.0.1",
        port=port,
        serial_number=scenario.serial_number,
        credentials=tuple(parse_credential(c) for c in scenario.creds),
        icmp=False,  # loopback ping proves nothing and may need privileges
        timeout=DEMO_TIMEOUT,
        connect_timeout=2.0,
        banner_window=0.2,
        busy_retry_wait=0.3,
        release_timeout=0.5,
        **scenario.options,
    )


@click.command("demo")
@click.option(
    "--scenario",
    type=click.Choice(sorted(SCENARIOS)),
    default=DEFAULT_SCENARIO,
    show_default=True,
    help="Which field fault the simulated meter shows.",
)
@click.option(
    "--headless",
    is_flag=True,
    help="Print the ladder and diagnosis instead of opening the TUI (automatic when not on a "
    "terminal).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the probe's JSON document (implies --headless)."
)
@click.option("--list", "list_scenarios", is_flag=True, help="List the scenarios and exit.")
def demo(scenario: str, headless: bool, as_json: bool, list_scenarios: bool) -> None:
    """Probe a simulated meter with a fault from the field, to see the whole product at once."""
    if list_scenarios:
        for s in SCENARIOS.values():
            click.echo(f"{s.name:<15} {s.title}")
        return
    if not (headless or as_json or SCENARIOS[scenario].line) and _on_terminal():
        sys.exit(_run_tui(SCENARIOS[scenario]))
    from dlmsdoctor.cli.probe_cmd import Output
    from dlmsdoctor.ledger import LoginLedger
    from dlmsdoctor.sim.meter import SimulatedMeter

    chosen = SCENARIOS[scenario]
    meter = SimulatedMeter(chosen.profile, list(chosen.faults), host="127.0.0.1",
                           **meter_place(chosen.line))
    output = Output("json" if as_json else "human")
    intro = (
        f"dlmsdoctor demo, scenario {chosen.name}: {chosen.title}.\n"
        "The simulated meter runs on 127.0.0.1; the probe below is the real ladder.\n"
    )
    with tempfile.TemporaryDirectory(prefix="dlmsdoctor-demo-") as tmp:
        ledger = LoginLedger(Path(tmp) / "ledger.jsonl")
        try:
            session = _run_demo(meter, chosen, output, ledger, intro)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(ExitCode.INTERRUPTED)
    if not as_json:
        # this run's own failed logins; the earlier runs' apart (the verdict names them by the
        # login ledger: dlmsdoctor's own, "an earlier run")
        ours = sum(1 for x in session.logins if x.mechanism != "none" and x.outcome != "accepted")
        others = max(0, meter.failed_logins() - ours)
        line = (f"\nSimulated meter: {ours} failed login(s) caused by this run, "
                f"{len(meter.open_associations())} association(s) left open.")
        if others:
            line += (f" Before it, the earlier runs (not shown; in the login ledger) caused "
                     f"{others} failed login(s).")
        click.echo(line)
    if session.cancelled:
        sys.exit(ExitCode.INTERRUPTED)
    # A self-check, not a verdict on the simulated meter: the demo exits 0 when the diagnosis
    # names the scenario's fault, 70 (our bug) when it does not.
    causes = session.diagnosis.causes if session.diagnosis else []
    top = causes[0].code if causes else ""
    if top != chosen.expect:
        click.echo(
            f"dlmsdoctor demo: expected {chosen.expect or 'no cause'!r} on top, "
            f"got {top or 'no cause'!r}; please report this",
            err=True,
        )
        sys.exit(ExitCode.INTERNAL)


def demo_meter(scenario: Scenario) -> Any:
    """The scenario's simulated meter on 127.0.0.1, on its own thread (a ``MeterThread``: enter
    it to start the meter and get it, leave it to stop it)."""
    from dlmsdoctor.sim.meter import MeterThread

    return MeterThread(scenario.profile, list(scenario.faults), host="127.0.0.1", port=0)


def demo_banner(scenario: Scenario, port: int) -> str:
    # One line that fits 80 columns for every scenario name: the Probe screen's banner.
    return f"DEMO: simulated meter, scenario {scenario.name}, 127.0.0.1:{port}; nothing is saved"


def demo_app(scenario: Scenario, port: int, workdir: Path) -> Any:
    """The TUI for a demo (the command and the tests build it here): the Probe screen with the
    scenario's options preset and the run started on mount, the scenario's earlier client run
    first. Config, sessions and the login ledger live in ``workdir`` (a temporary folder)."""
    import asyncio

    from dlmsdoctor.app import PresetRun, create_app
    from dlmsdoctor.config import parse_credential
    from dlmsdoctor.ledger import LoginLedger

    options = demo_options(scenario, port)
    ledger = LoginLedger(workdir / "ledger.jsonl")

    async def earlier_client(cancel: asyncio.Event) -> None:
        await run_before(scenario, options, ledger, cancel)

    preset = PresetRun(
        options,
        ledger,
        banner=demo_banner(scenario, port),
        story=f"Scenario {scenario.name}: {scenario.title}. Watch the ladder; then F3 frames, "
        "F4 diagnosis; ctrl+q quits.",
        prelude=earlier_client if scenario.before else None,
        prelude_note="Before this run, earlier dlmsdoctor runs (not shown) log in with credential "
        f"set {', '.join(sorted({parse_credential(c).name for c in scenario.before}))}…",
        summary_words=demo_summary,
    )
    return create_app(
        start_screen="probe",
        sessions_dir=workdir / "sessions",
        config_path=workdir / "config" / "config.toml",
        preset=preset,
    )


def _on_terminal() -> bool:
    # A pipe, CI or a script gets the printed ladder: a full-screen app would hang it.
    return sys.stdin.isatty() and sys.stdout.isatty()


def _run_tui(scenario: Scenario) -> int:
    """Open the demo in the TUI; the meter stops after the app (and the engine's release)."""
    with (
        tempfile.TemporaryDirectory(prefix="dlmsdoctor-demo-") as tmp,
        demo_meter(scenario) as meter,
    ):
        app = demo_app(scenario, int(meter.port), Path(tmp))
        result = app.run()
    return int(result if result is not None else (app.return_code or 0))


async def run_before(scenario: Scenario, options: Any, ledger: Any, cancel: Any = None) -> None:
    """The scenario's earlier client (the site's poller), silent and unsaved: its failed logins
    count in ``ledger`` and on the meter, as in the field."""
    import dataclasses

    from dlmsdoctor.config import parse_credential
    from dlmsdoctor.run import probe_and_diagnose

    for credential in scenario.before:  # one earlier run per entry, as a poller retrying
        earlier = dataclasses.replace(options, credentials=(parse_credential(credential),))
        await probe_and_diagnose(earlier, ledger=ledger, cancel=cancel, save=False)


async def probe_scenario(
    meter: Any,
    scenario: Scenario,
    ledger: Any,
    *,
    output: Any = None,
    intro: str = "",
    cancel: Any = None,
) -> Any:
    """Probe a started simulated meter as the scenario says (the `probe` path); the Session.

    The demo's own choices read as the demo's (not as options the user typed), and the session
    keeps how many failed logins the earlier client caused (``demo_earlier_failed_logins``)."""
    import dataclasses

    from dlmsdoctor.events import Event, StepFinished
    from dlmsdoctor.run import probe_and_diagnose

    options = line_options(scenario.line, meter, demo_options(scenario, int(meter.port or 4059)))
    await run_before(scenario, options, ledger)  # the earlier client's attempt, not shown
    earlier = meter.failed_logins()  # the poller's failures: not this run's
    if output is not None:
        output.started({"host": options.host, "port": options.port}, intro)

    def on_event(event: Event) -> None:
        if isinstance(event, StepFinished) and event.summary in DEMO_CHOICES:
            event = dataclasses.replace(event, summary=demo_summary(event.summary))
        output.on_event(event)

    result = await probe_and_diagnose(
        options,
        on_event=on_event if output is not None else None,
        cancel=cancel,
        ledger=ledger,
        save=False,
    )
    session = result.session
    for step in session.steps:
        step.summary = demo_summary(step.summary)
    session.settings["demo_earlier_failed_logins"] = earlier
    return session


def _run_demo(meter: Any, scenario: Scenario, output: Any, ledger: Any, intro: str) -> Any:
    """Start the meter in the probe's event loop, probe it, stop it."""
    import asyncio

    from dlmsdoctor.cli.probe_cmd import cancel_on_sigint, exit_code_for

    async def main() -> Any:
        cancel = asyncio.Event()
        await meter.start()
        try:
            with cancel_on_sigint(cancel):
                return await probe_scenario(
                    meter, scenario, ledger, output=output, intro=intro, cancel=cancel
                )
        finally:
            await meter.stop()

    try:
        session = asyncio.run(main())
    finally:
        output.stop_live()
    output.finished(session, exit_code_for(session), None)
    return session
