"""`dlmsdoctor open`: load a saved session or a capture, summarise it, export it."""

from __future__ import annotations

import click

from dlmsdoctor.cli.exit_codes import ExitCode
from dlmsdoctor.cli.report_cmd import emit_report, load_or_exit, pick_format
from dlmsdoctor.events import CloseHow
from dlmsdoctor.private_files import write_private
from dlmsdoctor.session import ConnectionRecord, Session, format_host_port

_EPILOG = """\b
Examples:
  dlmsdoctor open captures/seed-story.pcapng
  dlmsdoctor open tcpdump.pcap --port 3333 --report informe.html --lang es
  dlmsdoctor open session.json --capture for-vendor.pcapng
  dlmsdoctor open tcpdump.pcap --save session.json

\b
FILE is a session JSON saved by dlmsdoctor, a dlmsdoctor pcapng, or a pcap/pcapng with a DLMS TCP
stream. Exit codes: 0 done; 2 the file cannot be read; 64 an output cannot be written.
"""


MAX_CONNECTION_LINES = 50  # a poller's capture may hold tens of thousands
MAX_STEP_LINES = 50  # and as many rungs (after these, only the steps that did not go well)


def summary_lines(session: Session) -> list[str]:
    """What a technician wants to see first: target, outcome, connections, steps, causes."""
    from collections import Counter

    from dlmsdoctor.events import Direction

    target = session.target
    recorded = session.tool_version
    recorded = recorded if recorded.startswith("(") else f"(dlmsdoctor {recorded})"
    lines = [f"session {session.id} {recorded}",
             f"target  {format_host_port(target.host, target.port)}  started {session.started_at}"
             + (f"  lasted {session.duration:.3f} s" if session.duration is not None else "")]
    if session.diagnosis is not None:
        lines.append(f"status  {session.diagnosis.status}: {session.diagnosis.headline}")
    tx = sum(1 for f in session.frames if f.direction is Direction.TX)
    lines.append(f"frames  {len(session.frames)} ({tx} TX, {len(session.frames) - tx} RX) on "
                 f"{len(session.connections)} connection(s); {len(session.pings)} ping(s)")
    summarised = session.settings.get("capture_summary")
    if isinstance(summarised, dict):  # a large capture: what was counted, not kept
        from dlmsdoctor.output.capture_read import summary_text

        try:
            lines.append(f"summary {summary_text(summarised)}")
        except (KeyError, TypeError, ValueError, AttributeError):  # a hand-edited session
            lines.append("summary part of the capture was counted, not kept")
    counts = Counter(f.conn_id for f in session.frames)  # once: per connection was quadratic
    for conn in session.connections[:MAX_CONNECTION_LINES]:
        count = counts[conn.id]
        if session.kind == "tap":  # two TCP connections: the poller's and the tap's own
            from dlmsdoctor.tap.text import leg_lines

            listen = str(session.settings.get("listen") or "")
            lines.append(f"  conn {conn.id}  {count} frame(s)")
            lines += [f"    {line}" for line in leg_lines(
                conn, listen, format_host_port(target.host, target.port))]
            continue
        if session.kind == "capture" and conn.client:  # another client's, as captured
            lines.append(_captured_line(conn, count))
            continue
        how = conn.failed or (conn.close_how.value if conn.close_how else "open")
        who = " by peer" if conn.closed_by_peer else ""
        address = format_host_port(conn.host, conn.port)
        lines.append(f"  conn {conn.id}  {address}  {count} frame(s), "
                     f"closed: {how}{who}")
    if len(session.connections) > MAX_CONNECTION_LINES:
        lines.append(f"  ... and {len(session.connections) - MAX_CONNECTION_LINES} more "
                     "connection(s)")
    from dlmsdoctor.diagnosis.words import plain_error
    from dlmsdoctor.events import StepStatus

    shown = 0
    for number, step in enumerate(session.steps):  # a poller's capture: a rung per reading
        if number >= MAX_STEP_LINES and step.status is StepStatus.OK:
            continue  # every step that did not go well is still listed
        shown += 1
        lines.append(f"  step {step.id:<18} {step.status.value:<9} {plain_error(step.summary)}")
    if shown < len(session.steps):
        lines.append(f"  ... and {len(session.steps) - shown} more step(s) that went well")
    if session.diagnosis is not None:
        from dlmsdoctor.diagnosis import is_note

        faults = [c for c in session.diagnosis.causes if not is_note(c)]
        for rank, cause in enumerate(faults, start=1):
            lines.append(f"  cause {rank}  {cause.confidence:.0%}  {cause.code}: {cause.title}")
        for cause in session.diagnosis.causes:
            if is_note(cause):  # an observation, not a fault: never ranked among the causes
                lines.append(f"  note     {cause.code}: {cause.title}")
    return lines


def _captured_line(conn: ConnectionRecord, count: int) -> str:
    """A captured connection of another client: its ends, when it opened, who closed it and
    how (the client is the poller: a capture dlmsdoctor did not write is never its own)."""
    address = format_host_port(conn.host, conn.port)
    text = f"  conn {conn.id}  poller {conn.client} -> {address}  {count} frame(s)"
    if conn.failed:
        return text + f", could not connect ({conn.failed})"
    if conn.opened_at is not None:
        text += f", connected t+{conn.opened_at:.3f} s"
        if conn.connect_time is not None:
            text += f" in {conn.connect_time * 1000:.1f} ms"
    closes = []
    if conn.close_how is not None and conn.closed_at is not None:
        first = "the meter side" if conn.closed_by_peer else "the poller"
        how = "RST" if conn.close_how is CloseHow.RST else "FIN"
        closes.append(f"{first} {how} t+{conn.closed_at:.3f} s")
        if conn.then_closed_at is not None and conn.then_close_how is not None:
            other = "the poller" if conn.closed_by_peer else "the meter side"
            closes.append(f"{other} {conn.then_close_how.value.upper()} "
                          f"t+{conn.then_closed_at:.3f} s")
    return text + ", closed: " + ("; ".join(closes) or "still open when the capture ended")


@click.command(epilog=_EPILOG)
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--port", type=int, default=None,
              help="For a foreign capture: the meter's TCP port (default: found from the SYN).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Write a report here ('-' for standard output).")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default=None,
              help="Report format (default: from --report's extension, else md).")
@click.option("--lang", type=click.Choice(["en", "es"]), default="en", show_default=True)
@click.option("--capture", "capture_path", type=click.Path(dir_okay=False), default=None,
              help="Write the session as a pcapng for Wireshark.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False), default=None,
              help="Save the session as JSON (e.g. one read from a tcpdump capture).")
@click.option("--show-secrets", is_flag=True,
              help="Show passwords and keys in clear in the report and the capture.")
@click.pass_context
def open_(ctx: click.Context, path: str, port: int | None, report_path: str | None,
          fmt: str | None, lang: str, capture_path: str | None, save_path: str | None,
          show_secrets: bool) -> None:
    """Load a saved session or a capture and summarise it (or export it)."""
    session = load_or_exit(ctx, path, port)
    if capture_path:
        from dlmsdoctor.output.capture import CaptureWriteError, write_capture

        try:
            stats = write_capture(session, capture_path, show_secrets)
        except CaptureWriteError as exc:
            click.echo(f"dlmsdoctor: {exc}", err=True)
            ctx.exit(ExitCode.USAGE)
        click.echo(f"capture written to {capture_path} ({stats.packets} packets)", err=True)
    if save_path:
        try:
            write_private(save_path, session.dumps() + "\n")
        except OSError as exc:
            click.echo(f"dlmsdoctor: cannot write {save_path}: {exc.strerror or exc}", err=True)
            ctx.exit(ExitCode.USAGE)
        click.echo(f"session saved to {save_path}", err=True)
    if report_path:
        emit_report(ctx, session, report_path, pick_format(fmt, report_path), lang, show_secrets)
        if report_path == "-":
            return
    if report_path != "-":
        click.echo("\n".join(summary_lines(session)))


open_cmd = open_
