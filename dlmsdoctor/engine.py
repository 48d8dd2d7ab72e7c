"""The engine: run the probe ladder against one meter, safely, and return the Session.

``run_probe`` is the one core function every face calls (CLI ``probe``/``demo``, the TUI). It
forwards every event to ``on_event`` as it happens and to the recorder that builds the Session;
it turns a probe's unexpected exception into an ERROR step plus an ``engine.exception`` finding
and skips what depended on it; it enforces the login budget and the lockout guard (through
``LoginBudget``); and it ALWAYS runs the release rung (RLRQ, DISC, TCP close), on errors and on
cancellation too. See docs/probes.md for the step ids and finding codes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dlmsdoctor.codec.hdlc import ServerAddress
from dlmsdoctor.codec.model import Severity
from dlmsdoctor.config import Credential, host_problem
from dlmsdoctor.events import Event, FindingRaised, StepFinished, StepStarted, StepStatus
from dlmsdoctor.ledger import LoginLedger, meter_key
from dlmsdoctor.link.channel import ChannelFactory
from dlmsdoctor.link.clock import Clock, MonotonicClock
from dlmsdoctor.login_budget import LoginBudget
from dlmsdoctor.probes.base import OnEvent, Probe, ProbeContext, RunStopped
from dlmsdoctor.recorder import Recorder
from dlmsdoctor.session import Session

DEFAULT_PORT = 4059
FRAMINGS = ("auto", "hdlc", "wrapper")
LINKS = ("tcp", "serial", "optical", "rfc2217")


MAX_WAIT = 86_400.0  # longest wait a user may ask for (a day): beyond it, or NaN, is a typo


class OptionsError(ValueError):
    """A target, address or option value that cannot be used (message in plain words)."""


@dataclass(frozen=True)
class ServerAddressOption:
    """``--server-address LOGICAL/PHYSICAL`` (physical optional: ``1`` is a 1-byte address)."""

    logical: int
    physical: int | None = None

    def __str__(self) -> str:
        return str(self.logical) if self.physical is None else f"{self.logical}/{self.physical}"


# bits per part of an HDLC server address by its size (IEC 62056-46): 1 byte holds the
# logical address alone, 2 bytes 7+7 bits, 4 bytes 14+14 bits
_PART_MAX = {1: 0x7F, 2: 0x7F, 4: 0x3FFF}
_PART_BITS = {1: "7 bits", 2: "7+7 bits", 4: "14+14 bits"}


def check_server_address(address: ServerAddressOption, size: int | None) -> None:
    """Reject an address its size cannot hold (1/200 in one byte silently became "server 1"):
    every face (CLI, TUI form, config targets) builds ProbeOptions, so the check lives here."""
    logical, physical = address.logical, address.physical
    if size is None:  # the engine's own choice: 1 byte without a physical part, else 2 or 4
        size = 1 if physical is None else (2 if logical < 128 and physical < 128 else 4)
        given = "(1 byte when no physical part is given)" if size == 1 else ""
    else:
        given = f"with address size {size}"
    if size not in _PART_MAX:
        return  # reported by the address-size check
    if size == 1 and physical is not None:
        raise OptionsError(
            f"server address {address} {given}: a 1-byte address holds only the logical address "
            "(0..127), no physical part; use address size 2 (7+7 bits, each 0..127) or 4 "
            "(14+14 bits, each 0..16383)"
        )
    top = _PART_MAX[size]
    too_big = [v for v in (logical, physical) if v is not None and v > top]
    if too_big:
        hint = "; use address size 4 (14+14 bits, each 0..16383)" if size < 4 else ""
        raise OptionsError(
            f"server address {address} {given}: {too_big[0]} does not fit a {size}-byte "
            f"address ({_PART_BITS[size]}: each part 0..{top}){hint}".replace("  ", " ")
        )


@dataclass(frozen=True)
class ProbeOptions:
    host: str
    port: int = DEFAULT_PORT
    framing: str = "auto"  # auto, hdlc, wrapper
    server_address: ServerAddressOption | None = None  # None: discover, starting with 1/1
    address_size: int | None = None  # 1, 2, 4; None: 2 when a physical part is given, else 1
    serial_number: str | None = None
    credentials: tuple[Credential, ...] = ()
    icmp: bool = True
    icmp_count: int = 3
    public: bool = True  # try the public client 16 without authentication
    connect_timeout: float = 10.0  # GPRS: a modem may need seconds to answer a SYN
    timeout: float = 5.0  # reply timeout; scaled up to 4 x RTT on slow links
    banner_window: float = 0.5  # listen for unasked bytes after connect
    disc_first: bool = False
    max_failed_logins: int = 1  # per credential set per run
    # per meter per window, across runs: 2 stays below the lowest lockout threshold seen in
    # the field (3 failures), so dlmsdoctor alone never locks a meter
    ledger_max_failures: int = 2
    run_max_failures: int = 1  # per run, across all credential sets
    ledger_window: float = 900.0
    discovery_budget: int = 16
    discovery_pace: float = 0.2  # pause between discovery attempts (each also waits `timeout`)
    # wait per discovery SNRM; None: max(4 x rtt, min(timeout, 2 s)). A meter that answers
    # does so within a few round trips; 16 addresses x 5 s would be a long wait for silence.
    discovery_timeout: float | None = None
    busy_retry_wait: float = 1.0
    release_timeout: float = 2.0  # per release frame; bounded even when cancelled
    # Serial and optical links (issue 11): ``host`` is then the device (/dev/ttyUSB0, COM3,
    # rfc2217://h:p) and ``port`` is unused. ``baud``: "auto" or a rate; ``serial_format``: 8N1...
    link: str = "tcp"
    baud: str = "auto"
    serial_format: str = "8N1"
    # Send a secret the ledger says this meter already refused (authentication-failure).
    retry_rejected: bool = False
    # Log in even when the login ledger cannot be read or written (its failures go unrecorded).
    ignore_ledger_errors: bool = False

    def __post_init__(self) -> None:
        if self.link not in LINKS:
            raise OptionsError(f"link must be one of {', '.join(LINKS)}")
        if self.framing not in FRAMINGS:
            raise OptionsError(f"framing must be one of {', '.join(FRAMINGS)}")
        if self.address_size not in (None, 1, 2, 4):
            raise OptionsError("address size must be 1, 2 or 4")
        if self.link == "tcp" and not 0 < self.port < 65536:
            raise OptionsError(f"port {self.port} is out of range 1..65535")
        if self.link == "tcp" and (problem := host_problem(self.host)):
            raise OptionsError(problem)  # said before connecting, not a codec error after
        if not (0 < self.timeout <= MAX_WAIT and 0 < self.connect_timeout <= MAX_WAIT):
            # "not (...)" also catches NaN, which every comparison fails
            raise OptionsError(f"timeouts must be more than 0 and at most {MAX_WAIT:.0f} s")
        if self.server_address is not None:
            check_server_address(self.server_address, self.address_size)

    # -- parsing the CLI forms ----------------------------------------------------------------
    @classmethod
    def parse_target(cls, text: str, **kwargs: object) -> ProbeOptions:
        """``HOST[:PORT]``; IPv6 in brackets (``[::1]:4059``); a bare IPv6 address has no port."""
        host, port = parse_host_port(text)
        return cls(host=host, port=port, **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def parse_server_address(text: str) -> ServerAddressOption:
        match = re.fullmatch(r"\s*(\d+|0x[0-9a-fA-F]+)\s*(?:/\s*(\d+|0x[0-9a-fA-F]+)\s*)?", text)
        if not match:
            raise OptionsError(f"server address {text!r} is not LOGICAL/PHYSICAL (e.g. 1/17)")
        logical = int(match.group(1), 0)
        physical = int(match.group(2), 0) if match.group(2) else None
        if not 0 <= logical <= 0x3FFF or (physical is not None and not 0 <= physical <= 0x3FFF):
            raise OptionsError("server address parts must be 0..16383")
        return ServerAddressOption(logical, physical)

    def first_server(self) -> ServerAddress:
        """The address the ladder starts with: the user's, else 1/1 (2-byte, the common form)."""
        given = self.server_address
        if given is None:
            return (
                ServerAddress(1, 1, self.address_size or 2)
                if self.address_size != 1
                else ServerAddress(1, None, 1)
            )
        size = self.address_size or (
            1
            if given.physical is None
            else (2 if given.logical < 128 and given.physical < 128 else 4)
        )
        if size == 1:
            return ServerAddress(given.logical, None, 1)
        return ServerAddress(given.logical, given.physical or 0, size)

    def describe(self) -> dict[str, object]:
        """The settings a Session keeps: everything but secrets."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["credentials"] = [c.describe() for c in self.credentials]
        out["server_address"] = None if self.server_address is None else str(self.server_address)
        return out


def parse_host_port(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    text = text.strip()
    if not text:
        raise OptionsError("empty target; give HOST or HOST:PORT")
    port_text: str | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise OptionsError(f"target {text!r}: missing ']' after the IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise OptionsError(f"target {text!r}: expected :PORT after ']'")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text  # a name, IPv4, or a bare IPv6 address
    if not host:
        raise OptionsError(f"target {text!r}: empty host")
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise OptionsError(f"target {text!r}: port must be 1..65535")
    return host, int(port_text)


@dataclass
class _Run:
    """Bookkeeping of one run: what each step ended with."""

    status: dict[str, StepStatus] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)


def default_plan(options: ProbeOptions) -> list[Probe]:
    from dlmsdoctor.probes.ladder import build_plan

    return build_plan(options)


async def run_probe(
    options: ProbeOptions,
    *,
    on_event: OnEvent | None = None,
    cancel: asyncio.Event | None = None,
    ledger: LoginLedger | None = None,
    clock: Clock | None = None,
    channel_factory: ChannelFactory | None = None,
    plan: Sequence[Probe] | None = None,
) -> Session:
    """Run the ladder; return the Session (``diagnosis`` left None for the diagnosis layer)."""
    clock = clock or MonotonicClock()
    cancel = cancel or asyncio.Event()
    ledger = ledger if ledger is not None else LoginLedger()
    if channel_factory is None and options.link != "tcp":
        from dlmsdoctor.link.serial import SerialChannelFactory  # issue 11: serial, optical

        channel_factory = SerialChannelFactory(clock, options)
    if channel_factory is None:
        from dlmsdoctor.link.tcp import TcpChannelFactory

        channel_factory = TcpChannelFactory(clock)
    first = options.first_server()
    recorder = Recorder(options)
    budget = LoginBudget(
        ledger,
        meter_key(options.host, options.port, first.logical, first.physical),
        per_set=options.max_failed_logins,
        max_failures=options.ledger_max_failures,
        window=options.ledger_window,
        per_run=options.run_max_failures,
        run_id=recorder.session.id,  # the ledger tells this run's failures from earlier ones
        retry_rejected=options.retry_rejected,
        ignore_ledger_errors=options.ignore_ledger_errors,
    )
    run = _Run()
    pending: list[asyncio.Future[None]] = []

    def emit(event: Event) -> None:
        if isinstance(event, StepStarted):
            run.started.add(event.step_id)
        elif isinstance(event, StepFinished):
            run.status[event.step_id] = event.status
            ctx.step_status[event.step_id] = event.status
        shown = recorder.add(event)  # secrets masked: faces never see them either
        if on_event is not None:
            result = on_event(shown)
            if inspect.isawaitable(result):
                pending.append(asyncio.ensure_future(result))

    ctx = ProbeContext(
        options,
        clock=clock,
        channel_factory=channel_factory,
        emit=emit,
        cancel=cancel,
        budget=budget,
    )
    if options.framing != "auto":
        ctx.facts.framing = options.framing
        if options.framing == "wrapper":
            ctx.facts.server = first
    probes = list(plan) if plan is not None else default_plan(options)
    release = [p for p in probes if p.layer == "release"]
    ladder = [p for p in probes if p.layer != "release"]
    try:
        for probe in ladder:
            if ctx.facts.stop_reason is not None or cancel.is_set():
                reason = ctx.facts.stop_reason or "cancelled"
                _skip(ctx, emit, probe, f"run stopped: {reason}", reason)
                continue
            failed_req = [
                r
                for r in probe.requires
                if run.status.get(r) not in (StepStatus.OK, StepStatus.WARNING)
            ]
            if failed_req:
                _skip(ctx, emit, probe, f"needs {', '.join(failed_req)}", "prerequisite")
                continue
            why = probe.skip_reason(ctx)
            if why is not None:
                _skip(ctx, emit, probe, why, "not-applicable")
                continue
            await _run_one(ctx, emit, run, probe)
    finally:
        # Release on every path: errors, the cancel flag, the task cancelled (once or again
        # while releasing). Each frame's wait is bounded by release_timeout.
        await _release(ctx, emit, run, release)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    _flush_deferred(ctx, emit)
    if cancel.is_set() and ctx.facts.stop_reason is None:
        ctx.facts.stop_reason = "cancelled"
    return recorder.finish(ctx.facts, clock.now())


def _flush_deferred(ctx: ProbeContext, emit: Emit) -> None:
    """The no-answer findings whose request never got its answer, not even late (during a
    later wait, the release, or at the start of another connection): said now, with the time
    and step they belong to. An AARQ whose AARE came late is slow, never unanswered."""
    for _index, finding in sorted(ctx.deferred.items()):
        emit(finding)
    ctx.deferred.clear()


Emit = Callable[[Event], None]


async def _release(ctx: ProbeContext, emit: Emit, run: _Run, release: list[Probe]) -> None:
    """Run the release rung to its end, shielded from cancellation: a cancel that comes while
    it runs (a second Ctrl-C, the TUI closing) is re-raised only after the meter is released,
    or the next client (the user's own poller) is locked out until the inactivity timeout."""

    async def release_all() -> None:
        for probe in release:
            await _run_one(ctx, emit, run, probe)

    task = asyncio.ensure_future(release_all())
    interrupted = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                break
            interrupted = True
            ctx.cancel.set()
    if interrupted:
        raise asyncio.CancelledError
    if not task.cancelled():
        task.result()


def _skip(ctx: ProbeContext, emit: Emit, probe: Probe, why: str, reason: str) -> None:
    emit(StepStarted(probe.id, probe.title, probe.layer, ctx.now()))
    status = StepStatus.CANCELLED if reason == "cancelled" else StepStatus.SKIPPED
    emit(StepFinished(probe.id, status, why, ctx.now(), {"reason": reason}))


async def _run_one(ctx: ProbeContext, emit: Emit, run: _Run, probe: Probe) -> None:
    open_steps: list[str] = []
    try:
        async for event in probe.run(ctx):
            if isinstance(event, StepStarted):
                open_steps.append(event.step_id)
            elif isinstance(event, StepFinished) and event.step_id in open_steps:
                open_steps.remove(event.step_id)
            emit(event)
    except RunStopped as stop:
        if ctx.facts.stop_reason is None:
            ctx.facts.stop_reason = stop.reason
        status = StepStatus.CANCELLED if stop.reason == "cancelled" else StepStatus.FAILED
        if stop.reason == "cancelled":
            emit(
                FindingRaised(
                    probe.id,
                    "engine.cancelled",
                    Severity.INFO,
                    "The run was cancelled; the release rung still runs.",
                    ctx.now(),
                )
            )
        for step_id in open_steps:
            emit(
                StepFinished(
                    step_id, status, f"stopped: {stop.reason}", ctx.now(), {"reason": stop.reason}
                )
            )
    except asyncio.CancelledError:
        for step_id in open_steps:
            emit(
                StepFinished(
                    step_id, StepStatus.CANCELLED, "cancelled", ctx.now(), {"reason": "cancelled"}
                )
            )
        ctx.cancel.set()
        raise
    except Exception as exc:  # a bug of ours: recorded, never blamed on the meter
        text = f"{type(exc).__name__}: {exc}"
        step_id = open_steps[-1] if open_steps else probe.id
        if not open_steps:
            emit(StepStarted(probe.id, probe.title, probe.layer, ctx.now()))
            open_steps.append(probe.id)
        emit(
            FindingRaised(
                step_id,
                "engine.exception",
                Severity.ERROR,
                f"dlmsdoctor failed in {step_id} ({text}); this is a bug in "
                "dlmsdoctor, not a fault of the meter.",
                ctx.now(),
                data={"exception": text, "step": step_id},
            )
        )
        for open_id in open_steps:
            emit(
                StepFinished(
                    open_id,
                    StepStatus.ERROR,
                    f"internal error: {text}",
                    ctx.now(),
                    {"exception": text},
                )
            )
