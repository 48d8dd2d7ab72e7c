"""Ciphered APDUs (Green Book 9.2.7): the security header is shown, the payload is not decrypted."""

from __future__ import annotations

from dlmsdoctor.codec.apdu_common import finish
from dlmsdoctor.codec.axdr import (
    DecodeContext,
    Fields,
    clamp,
    read_length,
    read_octets,
    read_uint,
)
from dlmsdoctor.codec.ber import flag_id
from dlmsdoctor.codec.model import Span, hexs
from dlmsdoctor.codec.obis import (
    CIPHER_TAGS,
)


def _security_header(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[list[Span], int]:
    """Security control byte + invocation counter (Green Book 9.2.7.2.4)."""
    out: list[Span] = []
    if not ctx.need(pos, end, 1, "security control"):
        return out, end
    sc = ctx.buf[pos]
    bits = {
        "suite": sc & 0x0F,
        "authentication": bool(sc & 0x10),
        "encryption": bool(sc & 0x20),
        "broadcast_key": bool(sc & 0x40),
        "compression": bool(sc & 0x80),
    }
    fields["security_control"] = bits
    meaning = (
        f"suite {sc & 0x0F}, {'A' if sc & 0x10 else '-'}{'E' if sc & 0x20 else '-'}, "
        f"{'broadcast' if sc & 0x40 else 'unicast'} key"
        f"{', compressed' if sc & 0x80 else ''}"
    )
    out.append(ctx.span(pos, 1, name + ".security_control", "Security control", sc, meaning))
    ic, cur, counter = read_uint(
        ctx, pos + 1, end, 4, name + ".invocation_counter", "Invocation counter"
    )
    fields["invocation_counter"] = counter
    out.append(ic)
    fields["ciphered_payload_length"] = max(0, end - cur)
    if cur < end:
        out.append(
            ctx.span(
                cur,
                end - cur,
                name + ".payload",
                "Ciphered payload",
                None,
                f"ciphered payload ({end - cur} bytes)",
            )
        )
    return out, end


def ciphered(
    ctx: DecodeContext, pos: int, end: int, fields: Fields, name: str
) -> tuple[Span, int, str]:
    tag = ctx.buf[pos]
    cname = CIPHER_TAGS[tag]
    fields["apdu_type"] = "ciphered"
    fields["cipher"] = cname
    spans = [ctx.span(pos, 1, name + ".tag", "APDU tag", tag, cname)]
    cur = pos + 1
    if tag in (0xDB, 0xDC):
        st, cur, title = read_octets(ctx, cur, end, name + ".system_title", "System title")
        flag = flag_id(title)
        fields["system_title"] = title.hex().upper()
        if flag:
            st = ctx.span(
                st.offset - ctx.base,
                st.length,
                st.name,
                st.label,
                title,
                f"{hexs(title)} (manufacturer {flag})",
            )
        spans.append(st)
    elif tag == 0xDD:
        for key, label in (
            ("transaction_id", "Transaction id"),
            ("originator_system_title", "Originator system title"),
            ("recipient_system_title", "Recipient system title"),
            ("date_time", "Date-time"),
            ("other_information", "Other information"),
        ):
            s, cur, data = read_octets(ctx, cur, end, f"{name}.{key}", label)
            spans.append(s)
            if key.endswith("system_title"):
                fields[key] = data.hex().upper()
        if cur < end and ctx.buf[cur] != 0:
            spans.append(
                ctx.raw(
                    cur,
                    end,
                    name + ".key_info",
                    "Key info and content",
                    "key info present: not decoded",
                )
            )
            summary = f"{cname} (key info, {end - cur} bytes)"
            return finish(ctx, pos, end, end, name, cname, spans, summary)
        if cur < end:
            spans.append(ctx.span(cur, 1, name + ".key_info", "Key info", None, "absent"))
            cur += 1
    got = read_length(ctx, cur, end, "ciphered content")
    if got is not None:
        n, lsize = got
        stop = clamp(ctx, cur, lsize, cur + lsize, n, end, "ciphered content")
        header, _ = _security_header(ctx, cur + lsize, stop, fields, name)
        spans.append(
            ctx.span(
                cur,
                stop - cur,
                name + ".content",
                "Ciphered content",
                None,
                f"{stop - cur - lsize} bytes",
                tuple(header),
            )
        )
        cur = stop
    payload = fields.get("ciphered_payload_length", 0)
    summary = f"{cname}, IC {fields.get('invocation_counter')}, ciphered payload ({payload} bytes)"
    return finish(ctx, pos, cur, end, name, cname, spans, summary)
