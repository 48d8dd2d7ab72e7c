"""COSEM identity reads once associated: logical device name (and its FLAG manufacturer id),
serial number, active firmware, clock, HDLC inactivity timeout (0.0.22.0.0.255 attribute 8).

Each value is read once per run, with the first association that may read it; a denied read is
a warning, not a failure (the public client often may not read everything).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from dlmsdoctor.codec.apdu import decode_apdu
from dlmsdoctor.codec.axdr import format_datetime
from dlmsdoctor.codec.model import Severity
from dlmsdoctor.events import Event, StepStatus
from dlmsdoctor.probes import apdus, wire
from dlmsdoctor.probes.base import Probe, ProbeContext


def _text(value: object) -> object:
    if isinstance(value, bytes):
        if value and all(32 <= b < 127 for b in value):
            return value.decode("ascii")
        return value.hex(" ").upper()
    return value


def _normalise(key: str, value: object) -> object:
    if key == "clock" and isinstance(value, bytes) and len(value) == 12:
        return format_datetime(value) or value.hex(" ").upper()
    return _text(value)


async def read_identity(ctx: ProbeContext, step_id: str) -> tuple[int, int, list[str]]:
    """Read what is not known yet; (read, denied, problems)."""
    facts = ctx.facts
    sap = facts.associated_sap
    assert sap is not None
    read = denied = 0
    problems: list[str] = []
    for invoke, attr in enumerate(apdus.IDENTITY_READS, start=1):
        if attr.key in facts.identity:
            continue
        ctx.check_cancel()
        wait = ctx.service_wait("get")
        got = await wire.exchange_apdu(ctx, step_id, apdus.build_get_request(attr, invoke), sap,
                                       wait, patience=ctx.patience(wait))
        if got.apdu is not None and got.answer_late and got.delay is not None:
            problems.append(f"{attr.key}: answered slowly ({got.delay:.2f} s, the wait was "
                            f"{wait:.2f} s)")
        if got.apdu is None:
            problems.append(f"{attr.key}: no answer")
            if got.reply.closed is not None or got.reply.frame is None:
                break  # the link is gone or silent: do not wait once per attribute
            continue
        fields = decode_apdu(got.apdu).fields
        result = fields.get("access_result")
        if result == "success" and fields.get("value") is not None:
            value = _normalise(attr.key, fields["value"])
            facts.identity[attr.key] = value
            if attr.key == "logical_device_name" and isinstance(value, str) and len(value) >= 3:
                facts.identity["manufacturer"] = value[:3]
            if attr.key == "hdlc_inactivity_timeout" and isinstance(value, int):
                ctx.emit(
                    ctx.finding(
                        step_id,
                        "cosem.inactivity_timeout",
                        Severity.INFO,
                        f"the meter drops an idle HDLC link after {value} s",
                        tuple(got.frames),
                        seconds=value,
                    )
                )
            read += 1
        else:
            denied += 1
            text = str(result if result not in (None, "success") else
                       "value not decodable" if result else
                       fields.get("apdu_type", "unexpected answer"))
            ctx.emit(
                ctx.finding(
                    step_id,
                    "cosem.read_failed",
                    Severity.WARNING,
                    f"{attr.obis_text} attribute {attr.attribute}: {text}",
                    tuple(got.frames),
                    obis=attr.obis_text,
                    attribute=attr.attribute,
                    result=text,
                )
            )
    if read and facts.associated_name:
        facts.identity.setdefault("read_with", facts.associated_name)
    return read, denied, problems


class IdentityProbe(Probe):
    layer = "cosem"

    def __init__(self, step_id: str = "cosem.identity", after: str = "assoc.public") -> None:
        self.id = step_id
        self.title = "Identity reads"
        self.requires = (after,)

    def skip_reason(self, ctx: ProbeContext) -> str | None:
        if ctx.facts.associated_sap is None:
            return "no open association"
        if all(a.key in ctx.facts.identity for a in apdus.IDENTITY_READS):
            return "everything already read"
        return None

    async def run(self, ctx: ProbeContext) -> AsyncIterator[Event]:
        yield ctx.started(self.id, self.title, self.layer)
        read, denied, problems = await read_identity(ctx, self.id)
        ident = ctx.facts.identity
        shown = {
            k: ident[k]
            for k in (
                "logical_device_name",
                "serial_number",
                "firmware",
                "clock",
                "hdlc_inactivity_timeout",
            )
            if k in ident
        }
        summary = ", ".join(f"{k}={v}" for k, v in shown.items()) or "nothing readable"
        if problems:
            yield ctx.finished(
                self.id,
                StepStatus.FAILED if not read else StepStatus.WARNING,
                f"{summary}; {'; '.join(problems)}",
                **shown,
            )
        elif denied:
            yield ctx.finished(
                self.id,
                StepStatus.WARNING if read else StepStatus.FAILED,
                f"{summary}; {denied} read(s) denied",
                **shown,
            )
        else:
            yield ctx.finished(self.id, StepStatus.OK, summary, **shown)
