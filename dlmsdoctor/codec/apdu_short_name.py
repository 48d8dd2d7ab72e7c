"""Short-name services (IEC 62056-53, Green Book 9.6): Read, Write and their responses."""

from __future__ import annotations

from dlmsdoctor.codec.apdu_common import finish
from dlmsdoctor.codec.axdr import (
    DecodeContext,
    Fields,
    decode_data,
    read_access_result,
    read_block_sa,
    read_list,
    read_uint,
)
from dlmsdoctor.codec.model import Span


def sn_service(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    """Short-name services (IEC 62056-53 / Green Book 9.6): Read, Write, their responses;
    UnconfirmedWrite and InformationReport are named and shown raw."""
    tag_byte = ctx.buf[pos]
    label = SN_NAMES[tag_byte]
    fields["apdu_type"] = label
    spans = [ctx.span(pos, 1, name + ".tag", "APDU tag", tag_byte, label)]
    cur = pos + 1
    if tag_byte in (0x05, 0x06):  # ReadRequest, WriteRequest
        lst, cur, n = read_list(
            ctx,
            cur,
            end,
            name + ".variables",
            "Variables",
            lambda p, i: _sn_variable(ctx, p, end, fields, f"{name}.var{i}"),
        )
        spans.append(lst)
        summary = f"{label} {n} variables"
        if n == 1 and "short_name" in fields:
            summary = f"{label} 0x{fields['short_name']:04X}"
        if tag_byte == 0x06:

            def value(p: int, i: int) -> tuple[Span, int]:
                s, p, v = decode_data(ctx, p, end, f"{name}.value{i}", f"Value {i}")
                fields.setdefault("value", v)
                return s, p

            vals, cur, _ = read_list(ctx, cur, end, name + ".values", "Values", value)
            spans.append(vals)
    elif tag_byte in (0x0C, 0x0D):  # ReadResponse, WriteResponse
        item = _sn_read_result if tag_byte == 0x0C else _sn_write_result
        lst, cur, n = read_list(
            ctx,
            cur,
            end,
            name + ".results",
            "Results",
            lambda p, i: item(ctx, p, end, fields, f"{name}.result{i}"),
        )
        spans.append(lst)
        summary = f"{label} {n} results"
        if n == 1 and len(lst.children) > 1:
            summary = f"{label} {lst.children[1].meaning[:60]}"
    else:
        if cur < end:
            spans.append(ctx.raw(cur, end, name + ".body", "Body"))
        cur = end
        summary = f"{label} ({end - pos} bytes)"
    return finish(ctx, pos, cur, end, name, label, spans, summary)


SN_NAMES = {
    0x05: "ReadRequest",
    0x0C: "ReadResponse",
    0x06: "WriteRequest",
    0x0D: "WriteResponse",
    0x16: "UnconfirmedWriteRequest",
    0x18: "InformationReportRequest",
}


_SN_ACCESS = {
    2: "variable-name",
    4: "parameterized-access",
    5: "block-number-access",
    6: "read-data-block-access",
    7: "write-data-block-access",
}


def _sn_variable(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int]:
    """Variable-Access-Specification CHOICE."""
    choice = ctx.buf[pos]
    kind = _SN_ACCESS.get(choice)
    if kind is None:
        ctx.finding(
            "apdu.axdr.choice",
            pos,
            1,
            "variable-access-specification",
            f"variable access choice {choice} unknown",
            found=str(choice),
        )
        return ctx.raw(pos, end, name, "Variable", "unknown choice"), end
    parts = [ctx.span(pos, 1, name + ".choice", "Access kind", choice, kind)]
    cur = pos + 1
    if choice in (2, 4, 5):
        label = "Block number" if choice == 5 else "Short name"
        sn, cur, value = read_uint(ctx, cur, end, 2, name + ".short_name", label)
        if value is not None:
            sn = ctx.span(cur - 2, 2, sn.name, sn.label, value, f"0x{value:04X}")
            if choice != 5:
                fields.setdefault("short_name", value)
        parts.append(sn)
        if choice == 4:
            sel, cur, _ = read_uint(ctx, cur, end, 1, name + ".selector", "Selector")
            par, cur, _ = decode_data(ctx, cur, end, name + ".parameters", "Parameters")
            parts += (sel, par)
    else:
        blk, cur = (
            read_block_sa(ctx, cur, end, fields, name + ".block")
            if choice == 7
            else read_block_sa(ctx, cur, end, fields, name + ".block", number_size=2)
        )
        parts.append(blk)
    return ctx.span(
        pos, cur - pos, name, "Variable", None, parts[-1].meaning or kind, tuple(parts)
    ), cur


def _sn_read_result(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int]:
    """Read-Response item CHOICE: [0] data, [1] data-access-error, [2] block, [3] block no."""
    choice = ctx.buf[pos]
    if choice == 0:
        data, cur, value = decode_data(ctx, pos + 1, end, name + ".data", "Data")
        fields.setdefault("value", value)
        fields.setdefault("access_result", "success")
        return ctx.span(pos, cur - pos, name, "Result", None, data.meaning, (data,)), cur
    if choice == 1:
        return _sn_access_error(ctx, pos, end, fields, name)
    if choice == 2:
        blk, cur = read_block_sa(ctx, pos + 1, end, fields, name + ".block", number_size=2)
        return ctx.span(pos, cur - pos, name, "Result", None, blk.meaning, (blk,)), cur
    if choice == 3:
        return _sn_block_number(ctx, pos, end, name)
    return _sn_unknown_result(ctx, pos, end, name, "read-response")


def _sn_write_result(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int]:
    """Write-Response item CHOICE: [0] success, [1] data-access-error, [2] block number."""
    choice = ctx.buf[pos]
    if choice == 0:
        fields.setdefault("access_result", "success")
        return ctx.span(pos, 1, name, "Result", 0, "success"), pos + 1
    if choice == 1:
        return _sn_access_error(ctx, pos, end, fields, name)
    if choice == 2:
        return _sn_block_number(ctx, pos, end, name)
    return _sn_unknown_result(ctx, pos, end, name, "write-response")


def _sn_access_error(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int]:
    """Result choice [1] data-access-error, shared by Read- and Write-Response."""
    res, cur, code = read_access_result(ctx, pos + 1, end, name + ".error", "Data access error")
    fields.setdefault("access_result", res.meaning)
    return ctx.span(pos, cur - pos, name, "Result", code, res.meaning, (res,)), cur


def _sn_block_number(ctx: DecodeContext, pos: int, end: int, name: str) -> tuple[Span, int]:
    """Result choice block-number (Unsigned16), shared by Read- and Write-Response."""
    num, cur, bn = read_uint(ctx, pos + 1, end, 2, name + ".block_number", "Block number")
    return ctx.span(pos, cur - pos, name, "Result", bn, f"block {bn}", (num,)), cur


def _sn_unknown_result(
    ctx: DecodeContext, pos: int, end: int, name: str, field: str
) -> tuple[Span, int]:
    choice = ctx.buf[pos]
    ctx.finding(
        "apdu.axdr.choice",
        pos,
        1,
        field,
        f"result choice {choice} unknown",
        found=str(choice),
    )
    return ctx.raw(pos, end, name, "Result", "unknown choice"), end
