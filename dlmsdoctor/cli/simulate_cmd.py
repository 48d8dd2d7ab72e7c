"""``dlmsdoctor simulate``: run a simulated DLMS/COSEM meter until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import textwrap

import click

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.sim.faults import FAULT_HELP, FaultError, parse_faults
from dlmsdoctor.sim.profile import ProfileError, builtin_names, load_profile


class SimulateError(click.ClickException):
    exit_code = ExitCode.USAGE


def _fault_list() -> str:
    lines = []
    for name, text in FAULT_HELP.items():
        lines.append(f"  {name}")
        lines.extend(textwrap.wrap(text, 74, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


@click.command(
    "simulate",
    epilog="\b\nFaults (repeat --fault to combine):\n" + _fault_list(),
)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; loopback unless you name another one.")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="TCP port (0: any free port).  [default: 4059, none with --serial-device]")
@click.option("--framing", type=click.Choice(["hdlc", "wrapper"]), default=None,
              help="Override the profile's framing.")
@click.option("--serial-device", "serial_device", default=None, metavar="PATH",
              help="Also serve HDLC on a serial device; a path that does not exist is created "
                   "as a link to a new pseudo-terminal (for ser2net), 'pty' just makes one.")
@click.option("--pty", "use_pty", is_flag=True,
              help="Serve a serial line on a new pseudo-terminal and print its path; the meter "
                   "reads the client's rate from it (a client at another rate gets nothing) "
                   "and bytes take their time on the wire.")
@click.option("--line-rate", type=int, default=9600, show_default=True, metavar="BAUD",
              help="With --pty: the meter's serial rate (with --optical: the highest rate it "
                   "offers in mode E).")
@click.option("--optical", is_flag=True,
              help="With --pty: an optical port (IEC 62056-21 mode E: sign-on at 300 baud, "
                   "then HDLC at the agreed rate).")
@click.option("--profile", "profile_name", default="default", show_default=True,
              metavar="NAME|FILE",
              help=f"Built-in profile ({', '.join(builtin_names())}) or a TOML file.")
@click.option("--fault", "fault_specs", multiple=True, metavar="SPEC", help="Switch a fault on.")
@click.option("--events", "events_path", default=None, metavar="PATH",
              help="Append the meter's event log to PATH as JSON lines.")
def simulate(
    host: str,
    port: int | None,
    framing: str | None,
    serial_device: str | None,
    use_pty: bool,
    line_rate: int,
    optical: bool,
    profile_name: str,
    fault_specs: tuple[str, ...],
    events_path: str | None,
) -> None:
    """Run a simulated DLMS/COSEM meter (a test and training peer) until Ctrl-C."""
    try:
        profile = load_profile(profile_name)
        faults = parse_faults(list(fault_specs))
    except (ProfileError, FaultError) as exc:
        raise SimulateError(str(exc)) from None
    if optical and not use_pty:
        raise SimulateError("--optical needs --pty (an optical port is a serial line)")
    if use_pty and serial_device is not None:
        raise SimulateError("--pty and --serial-device exclude each other")
    if port is None and serial_device is None and not use_pty:
        port = 4059
    from dlmsdoctor.config import host_problem

    if serial_device is None and (problem := host_problem(host)):
        raise SimulateError(f"--host: {problem}")  # the resolver's codec error, in words
    from dlmsdoctor.sim.meter import SimulatedMeter
    from dlmsdoctor.sim.optical import BAUD_OF_CHAR, LineSettings

    line = None
    if use_pty:
        if line_rate not in BAUD_OF_CHAR.values():
            raise SimulateError(f"--line-rate {line_rate}: use one of "
                                f"{', '.join(map(str, BAUD_OF_CHAR.values()))}")
        serial_device = "pty"
        line = LineSettings(rate=line_rate, optical=optical)
    try:
        meter = SimulatedMeter(profile, faults, host=host, port=port, framing=framing,
                               events_path=events_path, serial_device=serial_device, line=line)
    except OSError as exc:
        raise SimulateError(f"cannot open the event log {events_path}: {exc.strerror}") from None
    try:
        asyncio.run(_serve(meter))
    except OSError as exc:
        raise SimulateError(f"cannot listen: {exc.strerror or exc}") from None


def _line_banner(path: str, line: object, faults: object) -> str:
    from dlmsdoctor.sim.faults import Faults
    from dlmsdoctor.sim.optical import LineSettings

    assert isinstance(line, LineSettings) and isinstance(faults, Faults)
    rate = faults.line_rate or line.rate
    if line.optical:
        what = f"optical port (IEC 62056-21 mode E): sign-on at 300 baud, HDLC at {rate} 8N1"
        probe = f"dlmsdoctor probe {path} --optical"
    else:
        what = f"serial line at {rate} 8N1"
        probe = f"dlmsdoctor probe {path}"
    return f"pty: {path} ({what}); try: {probe}"


async def _serve(meter: object) -> None:
    from dlmsdoctor.sim.meter import SimulatedMeter

    assert isinstance(meter, SimulatedMeter)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await meter.start()
    try:
        click.echo(meter.banner())
        if meter.line is not None and meter.serial_path:
            click.echo(_line_banner(meter.serial_path, meter.line, meter.faults))
        sys.stdout.flush()
        await stop.wait()
    finally:
        await meter.stop()
    click.echo("stopped", err=True)
