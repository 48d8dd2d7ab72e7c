"""Other xDLMS APDUs: exception-response, data and event notifications, general block
transfer, and the APDUs shown raw by name.
"""

from __future__ import annotations

from dlmsdoctor.codec.apdu_common import finish
from dlmsdoctor.codec.axdr import (
    DecodeContext,
    Fields,
    decode_data,
    octet_value,
    read_descriptor,
    read_octets,
    read_uint,
)
from dlmsdoctor.codec.model import Severity, Span
from dlmsdoctor.codec.obis import (
    EXCEPTION_SERVICE_ERRORS,
    EXCEPTION_STATE_ERRORS,
)


def exception_response(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    """Exception-Response (Green Book 9.3.5): state-error, service-error [, counter]."""
    fields["apdu_type"] = "ExceptionResponse"
    tag = ctx.span(pos, 1, name + ".tag", "APDU tag", 0xD8, "exception-response")
    st, cur, state = read_uint(
        ctx, pos + 1, end, 1, name + ".state_error", "State error", EXCEPTION_STATE_ERRORS
    )
    se, cur, service = read_uint(
        ctx, cur, end, 1, name + ".service_error", "Service error", EXCEPTION_SERVICE_ERRORS
    )
    spans = [tag, st, se]
    fields["state_error"] = st.meaning
    fields["service_error"] = se.meaning
    summary = f"ExceptionResponse {st.meaning}, {se.meaning}"
    if service == 6:
        ic, cur, counter = read_uint(
            ctx, cur, end, 4, name + ".invocation_counter", "Expected invocation counter"
        )
        fields["invocation_counter"] = counter
        spans.append(ic)
        summary += f" (meter expects {counter})"
    ctx.finding(
        "apdu.exception",
        pos,
        cur - pos,
        "exception-response",
        summary,
        severity=Severity.WARNING,
        found=f"{state}/{service}",
    )
    return finish(ctx, pos, cur, end, name, "Exception-Response", spans, summary)


def tagged_datetime(ctx: DecodeContext, pos: int) -> None:
    """The finding for a Data-Notification date-time sent as 09 0C + 12 bytes."""
    ctx.finding(
        "apdu.notification.tagged_datetime",
        pos,
        1,
        "date-time",
        "date-time sent as a tagged octet-string (09 0C ...), a known meter "
        "variant; the standard has an untagged OCTET STRING",
        severity=Severity.INFO,
        expected="0C",
        found="09 0C",
    )


def data_notification(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    """Data-Notification (Green Book 9.3.7): long invoke id, date-time, body."""
    fields["apdu_type"] = "DataNotification"
    tag = ctx.span(pos, 1, name + ".tag", "APDU tag", 0x0F, "data-notification")
    inv, cur, lid = read_uint(
        ctx, pos + 1, end, 4, name + ".long_invoke_id", "Long invoke id and priority"
    )
    fields["long_invoke_id"] = None if lid is None else lid & 0xFFFFFF
    if lid is not None:
        # Long-Invoke-Id-And-Priority: bits 0-23 id, 28 break-on-error, 29 self-descriptive,
        # 30 confirmed, 31 high priority (Green Book 9.3.8).
        inv = ctx.span(
            pos + 1,
            4,
            inv.name,
            inv.label,
            lid,
            f"invoke id {lid & 0xFFFFFF}, "
            f"{'confirmed' if lid & (1 << 30) else 'unconfirmed'}, "
            f"{'high' if lid & (1 << 31) else 'normal'} priority"
            f"{', self-descriptive' if lid & (1 << 29) else ''}",
        )
    spans = [tag, inv]
    buf = ctx.buf
    if cur + 1 < end and buf[cur] == 0x09 and buf[cur + 1] == 0x0C:
        # Norwegian HAN meters (Kaifa MA304 and others) send the date-time as a tagged Data
        # octet-string, 09 0C + 12 bytes; the standard has a bare OCTET STRING (0C + 12).
        # A bare length of 9 fits no date/time form, so this reading is unambiguous.
        tagged_datetime(ctx, cur)
        spans.append(
            ctx.span(
                cur, 1, name + ".date_time_type", "Data type (meter variant)", 0x09, "octet-string"
            )
        )
        cur += 1
    dt, cur, raw = read_octets(ctx, cur, end, name + ".date_time", "Date-time")
    if raw:
        value, meaning = octet_value(raw)
        dt = ctx.span(dt.offset - ctx.base, dt.length, dt.name, dt.label, value, meaning)
    body, cur, value = decode_data(ctx, cur, end, name + ".body", "Notification body")
    fields["value"] = value
    summary = f"DataNotification id {fields['long_invoke_id']}: {body.meaning[:60]}"
    spans += (dt, body)
    return finish(ctx, pos, cur, end, name, "Data-Notification", spans, summary)


def event_notification(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    fields["apdu_type"] = "EventNotificationRequest"
    tag = ctx.span(pos, 1, name + ".tag", "APDU tag", 0xC2, "event-notification-request")
    spans = [tag]
    cur = pos + 1
    if ctx.need(cur, end, 1, "time"):
        if ctx.buf[cur]:
            t, cur2, raw = read_octets(ctx, cur + 1, end, name + ".time", "Time")
            spans.append(
                ctx.span(
                    cur, cur2 - cur, name + ".time_present", "Time", None, octet_value(raw)[1], (t,)
                )
            )
            cur = cur2
        else:
            spans.append(ctx.span(cur, 1, name + ".time_present", "Time", None, "absent"))
            cur += 1
    desc, cur, text = read_descriptor(ctx, cur, end, fields, name + ".descriptor")
    val, cur, value = decode_data(ctx, cur, end, name + ".value", "Value")
    fields["value"] = value
    spans += (desc, val)
    summary = f"EventNotification {text} = {val.meaning[:60]}"
    return finish(ctx, pos, cur, end, name, "Event-Notification", spans, summary)


def general_block_transfer(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    """General-Block-Transfer (Green Book 9.3.13): control, numbers, block data."""
    fields["apdu_type"] = "GeneralBlockTransfer"
    tag = ctx.span(pos, 1, name + ".tag", "APDU tag", 0xE0, "general-block-transfer")
    ctl, cur, control = read_uint(ctx, pos + 1, end, 1, name + ".control", "Block control")
    if control is not None:
        ctl = ctx.span(
            pos + 1,
            1,
            ctl.name,
            ctl.label,
            control,
            f"last={bool(control & 0x80)} streaming={bool(control & 0x40)} window={control & 0x3F}",
        )
    num, cur, bn = read_uint(ctx, cur, end, 2, name + ".block_number", "Block number")
    ack, cur, _ = read_uint(ctx, cur, end, 2, name + ".block_number_ack", "Block number ack")
    data, cur, raw = read_octets(ctx, cur, end, name + ".block_data", "Block data")
    fields["block_number"] = bn
    summary = f"GeneralBlockTransfer block {bn}, {len(raw)} bytes"
    return finish(
        ctx, pos, cur, end, name, "General-Block-Transfer", [tag, ctl, num, ack, data], summary
    )


# Known APDUs this decoder names but shows raw (rare on the meters dlmsdoctor meets).
RAW_NAMES = {
    0xD9: "AccessRequest",
    0xDA: "AccessResponse",
    0xDF: "GeneralSigning",
}


def named_raw(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    label = RAW_NAMES[ctx.buf[pos]]
    fields["apdu_type"] = label
    spans = [ctx.span(pos, 1, name + ".tag", "APDU tag", ctx.buf[pos], label)]
    if pos + 1 < end:
        spans.append(ctx.raw(pos + 1, end, name + ".body", "Body", "not decoded"))
    return finish(ctx, pos, end, end, name, label, spans, f"{label} ({end - pos} bytes)")
