"""GET, SET and ACTION requests and responses (Green Book 9.3.6 to 9.3.11), LN referencing."""

from __future__ import annotations

from dlmsdoctor.codec.apdu_common import finish, unparsed
from dlmsdoctor.codec.axdr import (
    DecodeContext,
    Fields,
    access_finding,
    decode_data,
    read_access_result,
    read_access_selection,
    read_block_sa,
    read_data_result,
    read_descriptor,
    read_invoke_id,
    read_list,
    read_octets,
    read_uint,
)
from dlmsdoctor.codec.model import Span
from dlmsdoctor.codec.obis import (
    ACTION_RESULTS,
)


def _header(
    ctx: DecodeContext,
    pos: int,
    end: int,
    name: str,
    label: str,
    apdu_type: str,
    fields: Fields,
) -> tuple[Span, Span | None, int]:
    """Tag and choice bytes of a GET/SET/ACTION APDU."""
    fields["apdu_type"] = apdu_type
    tag = ctx.span(pos, 1, name + ".tag", "APDU tag", ctx.buf[pos], label)
    if pos + 1 >= end:
        ctx.need(pos + 1, end, 1, "request/response type")
        return tag, None, end
    choice = ctx.span(pos + 1, 1, name + ".type", "Type", ctx.buf[pos + 1], apdu_type)
    return tag, choice, pos + 2


_GET_REQ = {1: "GET-Request-Normal", 2: "GET-Request-Next", 3: "GET-Request-With-List"}
_GET_RES = {1: "GET-Response-Normal", 2: "GET-Response-With-Datablock", 3: "GET-Response-With-List"}
_SET_REQ = {
    1: "SET-Request-Normal",
    2: "SET-Request-With-First-Datablock",
    3: "SET-Request-With-Datablock",
    4: "SET-Request-With-List",
    5: "SET-Request-With-List-And-First-Datablock",
}
_SET_RES = {
    1: "SET-Response-Normal",
    2: "SET-Response-Datablock",
    3: "SET-Response-Last-Datablock",
    4: "SET-Response-Last-Datablock-With-List",
    5: "SET-Response-With-List",
}
_ACT_REQ = {
    1: "ACTION-Request-Normal",
    2: "ACTION-Request-Next-Pblock",
    3: "ACTION-Request-With-List",
    4: "ACTION-Request-With-First-Pblock",
    5: "ACTION-Request-With-List-And-First-Pblock",
    6: "ACTION-Request-With-Pblock",
}
_ACT_RES = {
    1: "ACTION-Response-Normal",
    2: "ACTION-Response-With-Pblock",
    3: "ACTION-Response-With-List",
    4: "ACTION-Response-Next-Pblock",
}


def _service(
    ctx: DecodeContext,
    pos: int,
    end: int,
    fields: Fields,
    name: str,
    family: str,
    kinds: dict[int, str],
) -> tuple[list[Span], int, str | None, int]:
    """Shared start of GET/SET/ACTION: (spans so far, position, type name or None, choice)."""
    choice = ctx.buf[pos + 1] if pos + 1 < end else -1
    apdu_type = kinds.get(choice)
    if apdu_type is None:
        apdu_type = f"{family}-unknown"
        if choice >= 0:
            ctx.finding(
                "apdu.unknown_tag",
                pos + 1,
                1,
                "type",
                f"{family} type {choice} unknown",
                found=str(choice),
            )
    tag, ch, cur = _header(ctx, pos, end, name, family, apdu_type, fields)
    spans = [tag] if ch is None else [tag, ch]
    if ch is not None and choice in kinds:
        inv, cur = read_invoke_id(ctx, cur, end, fields, name)
        spans.append(inv)
        return spans, cur, apdu_type, choice
    return spans, cur, None, choice


def _attribute_list(
    ctx: DecodeContext, pos: int, end: int, name: str
) -> tuple[Span, int, int]:
    """SEQUENCE OF attribute descriptor + access selection (the *-With-List requests)."""

    def item(p: int, i: int) -> tuple[Span, int]:
        d, p, _ = read_descriptor(ctx, p, end, None, f"{name}.item{i}")
        s, p = read_access_selection(ctx, p, end, f"{name}.item{i}.access_selection")
        return ctx.span(
            d.offset - ctx.base,
            p - (d.offset - ctx.base),
            f"{name}.item{i}",
            f"Item {i}",
            None,
            d.meaning,
            (d, s),
        ), p

    return read_list(ctx, pos, end, name + ".items", "Attributes", item)


def _data_list(
    ctx: DecodeContext, pos: int, end: int, name: str, label: str, item_name: str, item_label: str
) -> tuple[Span, int]:
    """SEQUENCE OF Data (SET values, ACTION parameters): items ``{item_name}{i}``."""

    def value(p: int, i: int) -> tuple[Span, int]:
        s, p, _ = decode_data(ctx, p, end, f"{item_name}{i}", f"{item_label} {i}")
        return s, p

    lst, cur, _ = read_list(ctx, pos, end, name, label, value)
    return lst, cur


def _block_number(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str, spans: list[Span]
) -> tuple[int, int | None]:
    """Unsigned32 block number: shown, and kept in ``fields["block_number"]``."""
    num, cur, bn = read_uint(ctx, pos, end, 4, name + ".block_number", "Block number")
    fields["block_number"] = bn
    spans.append(num)
    return cur, bn


def get_request(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    spans, cur, kind, choice = _service(ctx, pos, end, fields, name, "GET-Request", _GET_REQ)
    if kind is None:
        return unparsed(ctx, pos, cur, end, name, "GET-Request", spans)
    iid = fields.get("invoke_id")
    if choice == 1:
        desc, cur, text = read_descriptor(ctx, cur, end, fields, name + ".descriptor")
        sel, cur = read_access_selection(ctx, cur, end, name + ".access_selection")
        spans += (desc, sel)
        summary = f"{kind} #{iid} {text}"
    elif choice == 2:
        cur, bn = _block_number(ctx, cur, end, fields, name, spans)
        summary = f"{kind} #{iid} block {bn}"
    else:
        lst, cur, n = _attribute_list(ctx, cur, end, name)
        spans.append(lst)
        fields["count"] = n
        summary = f"{kind} #{iid} {n} attributes"
    return finish(ctx, pos, cur, end, name, "GET-Request", spans, summary)


def get_response(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    spans, cur, kind, choice = _service(ctx, pos, end, fields, name, "GET-Response", _GET_RES)
    if kind is None:
        return unparsed(ctx, pos, cur, end, name, "GET-Response", spans)
    iid = fields.get("invoke_id")
    if choice == 1:
        res, cur, text = read_data_result(ctx, cur, end, fields, name + ".result")
        spans.append(res)
        summary = f"{kind} #{iid} {text}"
    elif choice == 2:
        start = cur
        last, cur, lb = read_uint(ctx, cur, end, 1, name + ".last_block", "Last block")
        num, cur, bn = read_uint(ctx, cur, end, 4, name + ".block_number", "Block number")
        parts = [last, num]
        fields["last_block"] = bool(lb)
        fields["block_number"] = bn
        if ctx.need(cur, end, 1, "block result"):
            if ctx.buf[cur] == 0:
                raw, cur2, data = read_octets(ctx, cur + 1, end, name + ".raw_data", "Raw data")
                parts.append(
                    ctx.span(
                        cur,
                        cur2 - cur,
                        name + ".result",
                        "Result",
                        None,
                        f"raw data, {len(data)} bytes",
                        (raw,),
                    )
                )
                detail = f"{len(data)} bytes"
                cur = cur2
            else:
                res, cur2, _ = read_access_result(
                    ctx, cur + 1, end, name + ".access_result", "Data access result"
                )
                fields["access_result"] = res.meaning
                parts.append(
                    ctx.span(cur, cur2 - cur, name + ".result", "Result", None, res.meaning, (res,))
                )
                detail = res.meaning
                cur = cur2
        else:
            detail = "truncated"
        spans.append(
            ctx.span(
                start,
                cur - start,
                name + ".block",
                "Data block",
                None,
                f"block {bn}{' (last)' if lb else ''}",
                tuple(parts),
            )
        )
        summary = f"{kind} #{iid} block {bn}{' last' if lb else ''}: {detail}"
    else:

        def item(p: int, i: int) -> tuple[Span, int]:
            s, p, _ = read_data_result(ctx, p, end, None, f"{name}.result{i}")
            return s, p

        lst, cur, n = read_list(ctx, cur, end, name + ".results", "Results", item)
        spans.append(lst)
        fields["count"] = n
        summary = f"{kind} #{iid} {n} results"
    return finish(ctx, pos, cur, end, name, "GET-Response", spans, summary)


def set_request(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    spans, cur, kind, choice = _service(ctx, pos, end, fields, name, "SET-Request", _SET_REQ)
    if kind is None:
        return unparsed(ctx, pos, cur, end, name, "SET-Request", spans)
    iid = fields.get("invoke_id")
    summary = f"{kind} #{iid}"
    if choice in (1, 2):
        desc, cur, text = read_descriptor(ctx, cur, end, fields, name + ".descriptor")
        sel, cur = read_access_selection(ctx, cur, end, name + ".access_selection")
        spans += (desc, sel)
        summary += " " + text
        if choice == 1:
            val, cur, value = decode_data(ctx, cur, end, name + ".value", "Value")
            fields["value"] = value
            spans.append(val)
            summary += " = " + val.meaning[:60]
        else:
            blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
            spans.append(blk)
    elif choice == 3:
        blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
        spans.append(blk)
        summary += " " + blk.meaning
    else:
        lst, cur, n = _attribute_list(ctx, cur, end, name)
        spans.append(lst)
        fields["count"] = n
        if choice == 4:
            vals, cur = _data_list(
                ctx, cur, end, name + ".values", "Values", name + ".value", "Value"
            )
            spans.append(vals)
        else:
            blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
            spans.append(blk)
        summary += f" {n} attributes"
    return finish(ctx, pos, cur, end, name, "SET-Request", spans, summary)


def set_response(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    spans, cur, kind, choice = _service(ctx, pos, end, fields, name, "SET-Response", _SET_RES)
    if kind is None:
        return unparsed(ctx, pos, cur, end, name, "SET-Response", spans)
    iid = fields.get("invoke_id")
    summary = f"{kind} #{iid}"
    if choice in (1, 3):
        res, cur, _ = read_access_result(ctx, cur, end, name + ".result", "Data access result")
        fields["access_result"] = res.meaning
        spans.append(res)
        summary += " " + res.meaning
    if choice in (4, 5):

        def item(p: int, i: int) -> tuple[Span, int]:
            s, p, _ = read_access_result(ctx, p, end, f"{name}.result{i}", f"Result {i}")
            return s, p

        lst, cur, n = read_list(ctx, cur, end, name + ".results", "Results", item)
        spans.append(lst)
        summary += f" {n} results"
    if choice in (2, 3, 4):
        cur, bn = _block_number(ctx, cur, end, fields, name, spans)
        summary += f" block {bn}"
    return finish(ctx, pos, cur, end, name, "SET-Response", spans, summary)


def action_request(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    spans, cur, kind, choice = _service(ctx, pos, end, fields, name, "ACTION-Request", _ACT_REQ)
    if kind is None:
        return unparsed(ctx, pos, cur, end, name, "ACTION-Request", spans)
    iid = fields.get("invoke_id")
    summary = f"{kind} #{iid}"
    if choice in (1, 4):
        desc, cur, text = read_descriptor(ctx, cur, end, fields, name + ".descriptor", method=True)
        spans.append(desc)
        summary += " " + text
        if choice == 1:
            par, cur = _optional_data(
                ctx,
                cur,
                end,
                fields,
                name + ".parameters",
                "Method invocation parameters",
                secret=_is_hls_reply(fields),
            )
            spans.append(par)
        else:
            blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
            spans.append(blk)
    elif choice in (2,):
        cur, bn = _block_number(ctx, cur, end, fields, name, spans)
        summary += f" block {bn}"
    elif choice == 6:
        blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
        spans.append(blk)
        summary += " " + blk.meaning
    else:

        def item(p: int, i: int) -> tuple[Span, int]:
            d, p, _ = read_descriptor(ctx, p, end, None, f"{name}.item{i}", method=True)
            return d, p

        lst, cur, n = read_list(ctx, cur, end, name + ".items", "Methods", item)
        spans.append(lst)
        if choice == 3:
            params = name + ".parameters"
            vals, cur = _data_list(ctx, cur, end, params, "Parameters", params, "Parameters")
            spans.append(vals)
        else:
            blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
            spans.append(blk)
        summary += f" {n} methods"
    return finish(ctx, pos, cur, end, name, "ACTION-Request", spans, summary)


def _is_hls_reply(fields: Fields) -> bool:
    """Association LN method 1 (reply_to_HLS_authentication) carries f(StoC): keep it masked."""
    return fields.get("class_id") in (12, 15) and fields.get("method") == 1


def _optional_data(
    ctx: DecodeContext,
    pos: int,
    end: int,
    fields: Fields,
    name: str,
    label: str,
    secret: bool = False,
) -> tuple[Span, int]:
    if not ctx.need(pos, end, 1, label):
        return ctx.span(pos, 0, name, label), end
    if ctx.buf[pos] == 0:
        return ctx.span(pos, 1, name, label, None, "absent"), pos + 1
    data, cur, value = decode_data(ctx, pos + 1, end, name + ".data", "Data")
    if secret and not ctx.show_secrets:
        data = ctx.span(
            data.offset - ctx.base, data.length, data.name, data.label, None, "", secret=True
        )
    else:
        fields["value"] = value
    return ctx.span(pos, cur - pos, name, label, None, data.meaning, (data,)), cur


def action_response(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    spans, cur, kind, choice = _service(ctx, pos, end, fields, name, "ACTION-Response", _ACT_RES)
    if kind is None:
        return unparsed(ctx, pos, cur, end, name, "ACTION-Response", spans)
    iid = fields.get("invoke_id")
    summary = f"{kind} #{iid}"

    def with_data(p: int, i: int, f: Fields | None) -> tuple[Span, int]:
        start = p
        res, p, code = read_uint(
            ctx, p, end, 1, f"{name}.result{i}", "Action result", ACTION_RESULTS
        )
        access_finding(ctx, start, code, res.meaning)
        parts = [res]
        if f is not None:
            f["action_result"] = res.meaning
        if p < end and ctx.buf[p] == 1:
            data, p2, text = read_data_result(ctx, p + 1, end, f, f"{name}.return{i}")
            parts.append(
                ctx.span(
                    p,
                    p2 - p,
                    f"{name}.return_parameters{i}",
                    "Return parameters",
                    None,
                    text,
                    (data,),
                )
            )
            p = p2
        elif ctx.need(p, end, 1, "return parameters"):
            parts.append(
                ctx.span(p, 1, f"{name}.return_parameters{i}", "Return parameters", None, "absent")
            )
            p += 1
        return ctx.span(
            start,
            p - start,
            f"{name}.response{i}",
            "Action response",
            None,
            res.meaning,
            tuple(parts),
        ), p

    if choice == 1:
        resp, cur = with_data(cur, 0, fields)
        spans.append(resp)
        summary += " " + resp.meaning
    elif choice == 2:
        blk, cur = read_block_sa(ctx, cur, end, fields, name + ".block")
        spans.append(blk)
        summary += " " + blk.meaning
    elif choice == 3:
        lst, cur, n = read_list(
            ctx, cur, end, name + ".results", "Results", lambda p, i: with_data(p, i, None)
        )
        spans.append(lst)
        summary += f" {n} results"
    else:
        cur, bn = _block_number(ctx, cur, end, fields, name, spans)
        summary += f" block {bn}"
    return finish(ctx, pos, cur, end, name, "ACTION-Response", spans, summary)
