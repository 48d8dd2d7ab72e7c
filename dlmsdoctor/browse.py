"""The object browser's session: associate the way the engine does, read the object list, GET any
attribute the technician picks, release on every path.

It IS an engine run (``engine.run_probe``) with a plan of the usual rungs (TCP, framing, SNRM,
the public association or one credential set's login) followed by ``BrowseProbe``, which holds
the association open and serves reads until the browser closes, then the usual release rung.
So the login budget, the ledger (and its lock), the recorder and the release rules are the
engine's own: no login path here skips them, and every read is frames of the run's Session.

GET only: the browser cannot send SET or ACTION (no builder for them exists here). Long values
come in blocks (GET-Response-With-Datablock, GET-Request-Next until the last block); a request
longer than the PDU size the meter negotiated is never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.codec.axdr import DecodeContext, read_length
from dlmsdoctor.codec.obis import DATA_ACCESS_RESULTS, dotted_obis
from dlmsdoctor.config import Credential
from dlmsdoctor.cosem_values import (
    SCALED,
    SECRET_ATTRIBUTES,
    DecodedValue,
    ObjectEntry,
    attribute_name,
    decode_value,
    explain,
    object_list,
    scaler_unit,
)
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.events import Event, StepStatus
from dlmsdoctor.ledger import LoginLedger
from dlmsdoctor.link.channel import ChannelFactory
from dlmsdoctor.probes import apdus, wire
from dlmsdoctor.probes.association import report_late
from dlmsdoctor.probes.base import Probe, ProbeContext
from dlmsdoctor.session import ConnectionProfile, Session, StepRecord

OBJECT_LIST_OBIS = bytes((0, 0, 40, 0, 0, 255))
SESSION_KIND = "browse"  # Session.kind of a browsing session
READ_STEP = "browse.get."  # each read is a step browse.get.1, browse.get.2, ...
MAX_BLOCKS = 4096  # a meter that never says "last block" must not hold the browser forever


class BrowseError(Exception):
    """The browser cannot do what was asked (not open, closed, a bad request)."""


@dataclass(frozen=True, slots=True)
class ReadResult:
    """One GET: the attribute's Data bytes (all blocks joined) or why there is none."""

    class_id: int
    obis: bytes
    attribute: int
    data: bytes | None = None
    error: str = ""  # an access result (read-write-denied), "no answer", "link closed"...
    frames: tuple[int, ...] = ()
    blocks: int = 0  # 0: a normal response; n: the value came in n blocks
    decoded: DecodedValue | None = None
    text: str = ""  # the value explained (scaled, dated) or the error

    @property
    def ok(self) -> bool:
        return self.data is not None

    @property
    def label(self) -> str:
        return f"{dotted_obis(self.obis)} {attribute_name(self.class_id, self.attribute)}"


@dataclass
class _Request:
    class_id: int
    obis: bytes
    attribute: int
    done: asyncio.Future[ReadResult]
    scale: tuple[int, int] | None = None  # a register's scaler_unit, read before its value


@dataclass
class OpenResult:
    ok: bool
    reason: str = ""  # why not: the association step's result, or the run's stop reason
    objects: list[ObjectEntry] = field(default_factory=list)
    object_list: ReadResult | None = None
    max_pdu_size: int | None = None


def options_for(
    profile: ConnectionProfile,
    credential: Credential | None = None,
    base: ProbeOptions | None = None,
) -> ProbeOptions:
    """Probe options that go straight to a working profile: no ping, no discovery. A serial
    profile opens its line again at the rate and format that answered (an optical head signs
    on again), as ``dlmsdoctor probe DEVICE --baud RATE`` would."""
    server = ProbeOptions.parse_server_address(
        f"{profile.server_logical}"
        + (f"/{profile.server_physical}" if profile.server_physical is not None else "")
    )
    if base is None and profile.link != "tcp":
        from dlmsdoctor.targets import options_for as target_options

        optical = profile.link == "optical"
        base = target_options(profile.device or profile.host,
                              baud=str(profile.baud) if profile.baud else None,
                              serial_format=None if optical else profile.format,
                              optical=optical)
    base = base or ProbeOptions(host=profile.host)
    return dataclasses.replace(
        base,
        host=base.host if profile.link != "tcp" else profile.host,
        port=profile.port,
        framing=profile.framing if profile.framing in ("hdlc", "wrapper") else "auto",
        server_address=server,
        address_size=profile.address_size or None,
        credentials=(credential,) if credential is not None else (),
        public=credential is None,
        icmp=False,
    )


class BrowseProbe(Probe):
    """Holds the association open and serves reads from the browser until told to stop."""

    id = "browse"
    title = "Object browser (GET only)"
    layer = "cosem"

    def __init__(self, after: str, queue: asyncio.Queue[_Request | None],
                 on_ready: Callable[[ProbeContext], None]) -> None:
        self.requires = (after,)
        self._queue = queue
        self._on_ready = on_ready

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        return None if ctx.facts.associated_sap is not None else "no open association"

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        self._on_ready(ctx)
        reads = failed = 0
        stop = "closed by the user"
        while True:
            request = await self._next(ctx)
            if request is None:
                if ctx.cancel.is_set():
                    stop = "cancelled"
                break
            reads += 1
            step_id = f"{READ_STEP}{reads}"
            title = (f"GET {dotted_obis(request.obis)} class {request.class_id} attribute "
                     f"{request.attribute}")
            yield ctx.started(step_id, title, "cosem")
            try:
                result = await get_attribute(ctx, step_id, request.class_id, request.obis,
                                             request.attribute, 1 + reads % 15, request.scale)
            except BaseException as exc:
                if not request.done.done():
                    request.done.set_exception(BrowseError(str(exc) or type(exc).__name__))
                raise
            if not request.done.done():
                request.done.set_result(result)
            if result.ok:
                yield ctx.finished(step_id, StepStatus.OK, _summary(result),
                                   blocks=result.blocks, length=len(result.data or b""))
            else:
                failed += 1
                yield ctx.finished(step_id, StepStatus.WARNING,  # which object, and why
                                   f"{result.label}: {result.error}", error=result.error)
            if wire.peer_closed(ctx):
                stop = "the meter closed the connection"
                break
        yield ctx.finished(self.id, StepStatus.OK if not failed else StepStatus.WARNING,
                           f"{reads} read(s), {failed} refused or unanswered; {stop}",
                           reads=reads, failed=failed)

    async def _next(self, ctx: ProbeContext) -> _Request | None:
        getter = asyncio.ensure_future(self._queue.get())
        cancelled = asyncio.ensure_future(ctx.cancel.wait())
        try:
            await asyncio.wait({getter, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
        if getter.done():
            return getter.result()
        getter.cancel()
        return None


def _summary(result: ReadResult) -> str:
    text = result.text or (result.decoded.text if result.decoded else "")
    if (result.class_id, result.attribute) == (15, 2) and result.decoded is not None:
        text = f"{len(object_list(result.decoded))} objects"  # the tree shows them
    if len(text) > 120:
        text = text[:119] + "…"
    blocks = f" ({result.blocks} blocks)" if result.blocks else ""
    return f"{result.label} = {text}{blocks}"


def _dar(code: int) -> str:
    return DATA_ACCESS_RESULTS.get(code, f"data-access-result {code}")


def _raw_block(apdu: bytes) -> tuple[int, bool, bytes | None, str]:
    """(block number, last, raw data or None, error) of a GET-Response-With-Datablock."""
    if len(apdu) < 9:
        return 0, True, None, "a truncated data block"
    last = apdu[3] != 0
    number = int.from_bytes(apdu[4:8], "big")
    if apdu[8] != 0:
        code = apdu[9] if len(apdu) > 9 else -1
        return number, True, None, _dar(code)
    ctx = DecodeContext(apdu, 0, False)
    got = read_length(ctx, 9, len(apdu), "raw data")
    if got is None:
        return number, True, None, "a data block with a bad length"
    size, lsize = got
    start = 9 + lsize
    if start + size > len(apdu):
        return number, True, None, f"a data block of {size} bytes with {len(apdu) - start} present"
    return number, last, apdu[start : start + size], ""


async def get_attribute(
    ctx: ProbeContext, step_id: str, class_id: int, obis: bytes, attribute: int,
    invoke_id: int = 1, scale: tuple[int, int] | None = None,
) -> ReadResult:
    """GET one attribute on the open association, following data blocks to the last one."""
    sap = ctx.facts.associated_sap
    base = ReadResult(class_id, obis, attribute)
    if sap is None:
        return dataclasses.replace(base, error="no open association", text="no open association")
    if (class_id, attribute) in SECRET_ATTRIBUTES:
        return dataclasses.replace(base, error="a secret: not read", text="a secret: not read")
    request = apdus.build_get_request(
        apdus.CosemAttribute("browse", class_id, obis, attribute), invoke_id)
    limit = ctx.facts.max_pdu_size
    if limit is not None and len(request) > limit:
        why = f"the request ({len(request)} bytes) exceeds the meter's max PDU size {limit}"
        return dataclasses.replace(base, error=why, text=why)
    frames: list[int] = []
    data = bytearray()
    blocks = 0
    expected_block = 1
    while True:
        ctx.check_cancel()
        got = await wire.exchange_apdu(ctx, step_id, request, sap)
        frames += [i for i in got.frames if i not in frames]
        report_late(ctx, step_id, got.late)
        apdu = got.apdu
        if apdu is None:
            why = "the link closed" if got.reply.closed is not None else "no answer"
            return dataclasses.replace(base, error=why, text=why, frames=tuple(frames))
        if apdu[:1] != b"\xc4":
            fields = decode_apdu(apdu).fields
            why = str(fields.get("apdu_type") or "an unexpected answer")
            detail = fields.get("state_error") or fields.get("service_error")
            if detail:
                why += f": {detail}"
            return dataclasses.replace(base, error=why, text=why, frames=tuple(frames))
        if len(apdu) < 4 or (apdu[2] & 0x0F) != (invoke_id & 0x0F):
            why = "an answer with another invoke-id"
            return dataclasses.replace(base, error=why, text=why, frames=tuple(frames))
        if apdu[1] == 1:  # GET-Response-Normal
            if apdu[3] != 0:
                why = _dar(apdu[4] if len(apdu) > 4 else -1)
                return dataclasses.replace(base, error=why, text=why, frames=tuple(frames))
            data += apdu[4:]
            break
        if apdu[1] != 2:
            why = "an unexpected GET-Response choice"
            return dataclasses.replace(base, error=why, text=why, frames=tuple(frames))
        number, last, chunk, why = _raw_block(apdu)
        if chunk is None:
            return dataclasses.replace(base, error=why, text=why, frames=tuple(frames),
                                       blocks=blocks)
        if number != expected_block:
            why = f"block {number} came where block {expected_block} was due"
            return dataclasses.replace(base, error=why, text=why, frames=tuple(frames),
                                       blocks=blocks)
        data += chunk
        blocks += 1
        if last:
            break
        if blocks >= MAX_BLOCKS:
            why = f"more than {MAX_BLOCKS} blocks: stopped"
            return dataclasses.replace(base, error=why, text=why, frames=tuple(frames),
                                       blocks=blocks)
        # GET-Request-Next: acknowledge this block, ask for the following one.
        request = bytes((0xC0, 0x02, 0xC0 | (invoke_id & 0x0F))) + number.to_bytes(4, "big")
        expected_block = number + 1
    decoded = decode_value(bytes(data))
    return dataclasses.replace(base, data=bytes(data), frames=tuple(frames), blocks=blocks,
                               decoded=decoded, text=explain(class_id, attribute, decoded, scale))


class BrowseSession:
    """One browsing session: ``open``, any number of ``read``, then ``close`` (always).

    ``on_event`` sees every engine event (frames included) as the TUI's probe run does.
    """

    def __init__(
        self,
        options: ProbeOptions,
        *,
        ledger: LoginLedger | None = None,
        on_event: Callable[[Event], None] | None = None,
        channel_factory: ChannelFactory | None = None,
    ) -> None:
        self.options = options
        self._ledger = ledger
        self._on_event = on_event
        self._channel_factory = channel_factory
        self._queue: asyncio.Queue[_Request | None] = asyncio.Queue()
        self._cancel = asyncio.Event()
        self._ready: asyncio.Future[ProbeContext] | None = None
        self._task: asyncio.Task[Session] | None = None
        self._ctx: ProbeContext | None = None
        self._scalers: dict[tuple[int, bytes], tuple[int, int] | None] = {}
        self.session: Session | None = None  # the run's record, once closed
        self.objects: list[ObjectEntry] = []

    @property
    def is_open(self) -> bool:
        return self._ctx is not None and self._task is not None and not self._task.done()

    @property
    def max_pdu_size(self) -> int | None:
        return self._ctx.facts.max_pdu_size if self._ctx is not None else None

    def plan(self, browse: BrowseProbe) -> list[Probe]:
        from dlmsdoctor.probes.cosem import IdentityProbe
        from dlmsdoctor.probes.icmp import IcmpProbe
        from dlmsdoctor.probes.ladder import build_plan
        from dlmsdoctor.probes.release import ReleaseProbe

        rungs = [p for p in build_plan(self.options)
                 if not isinstance(p, IcmpProbe | IdentityProbe | ReleaseProbe)]
        return [*rungs, browse, ReleaseProbe()]

    def _association_step(self) -> str:
        creds = self.options.credentials
        return f"assoc.login.{creds[0].name}" if creds else "assoc.public"

    async def open(self) -> OpenResult:
        """Associate and read the object list; on failure the run is over (and released)."""
        if self._task is not None:
            raise BrowseError("this browser session was opened already")
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[ProbeContext] = loop.create_future()
        self._ready = ready

        def on_ready(ctx: ProbeContext) -> None:
            if not ready.done():
                ready.set_result(ctx)

        probe = BrowseProbe(self._association_step(), self._queue, on_ready)
        self._task = asyncio.ensure_future(self._run(probe))
        waits: set[asyncio.Future[Any]] = {ready, self._task}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            session = await self._finish()
            return OpenResult(False, _why_not(session, self._association_step()))
        self._ctx = ready.result()
        listing = await self.read(15, OBJECT_LIST_OBIS, 2)
        self.objects = object_list(listing.decoded) if listing.decoded else []
        return OpenResult(True, listing.error, list(self.objects), listing, self.max_pdu_size)

    async def _run(self, probe: BrowseProbe) -> Session:
        """The engine's run, recorded as a browsing session (kind "browse"): History, the
        report and the capture then say the technician read objects, not that a probe ran."""
        session = await run_probe(
            self.options, on_event=self._on_event, cancel=self._cancel, ledger=self._ledger,
            channel_factory=self._channel_factory, plan=self.plan(probe))
        session.kind = SESSION_KIND
        return session

    async def read(self, class_id: int, obis: bytes, attribute: int) -> ReadResult:
        """GET one attribute; a value with a scaler (register) gets it read once and applied."""
        scaled = SCALED.get(class_id)
        if scaled is not None and attribute in scaled[0] and (class_id, obis) not in self._scalers:
            pair = await self._raw_read(class_id, obis, scaled[1])
            self._scalers[(class_id, obis)] = (
                scaler_unit(pair.decoded.value) if pair.decoded is not None else None)
        return await self._raw_read(class_id, obis, attribute, self._scalers.get((class_id, obis)))

    async def _raw_read(self, class_id: int, obis: bytes, attribute: int,
                        scale: tuple[int, int] | None = None) -> ReadResult:
        if not self.is_open:
            raise BrowseError("the browser is not connected (closed, or the association ended)")
        done: asyncio.Future[ReadResult] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(class_id, obis, attribute, done, scale))
        assert self._task is not None
        waits: set[asyncio.Future[Any]] = {done, self._task}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if not done.done():
            raise BrowseError("the session ended before the read was answered")
        return done.result()

    async def close(self) -> Session:
        """Stop browsing: the release rung runs (RLRQ, DISC, TCP close); the run's Session."""
        if self._task is None:
            raise BrowseError("nothing to close: the browser never opened")
        if not self._task.done():
            await self._queue.put(None)
        return await self._finish()

    async def cancel(self) -> Session | None:
        """Like ``close`` from anywhere (quit): the engine releases on its cancel path too."""
        if self._task is None:
            return None
        self._cancel.set()
        return await self._finish()

    async def _finish(self) -> Session:
        assert self._task is not None
        try:
            self.session = await asyncio.shield(self._task)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                self.session = await self._task
            raise
        self._ctx = None
        return self.session


def reads_of(session: Session) -> list[StepRecord]:
    """The reads of a browsing session in the order they were made (the object list first):
    their steps, each with the value (or why there is none) as its summary."""
    return [step for step in session.steps if step.id.startswith(READ_STEP)]


def _why_not(session: Session, assoc_step: str) -> str:
    step = session.step(assoc_step)
    if step is not None and step.status is not StepStatus.OK and step.summary:
        return f"{step.title}: {step.summary}"
    for record in session.steps:
        if record.status in (StepStatus.FAILED, StepStatus.ERROR) and record.summary:
            return f"{record.title}: {record.summary}"
    reason = session.settings.get("stopped_reason")
    return f"no association ({reason})" if reason else "no association"
