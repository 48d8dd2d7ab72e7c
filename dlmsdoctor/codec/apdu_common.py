"""How every APDU decoder ends: the APDU's own span, or a raw body when its type is unknown."""

from __future__ import annotations

from collections.abc import Callable

from dlmsdoctor.codec.axdr import DecodeContext, Fields
from dlmsdoctor.codec.model import Span

# A decoder of one APDU: (context, position, end, fields, span name) -> (span, next, summary).
Handler = Callable[[DecodeContext, int, int, Fields, str], tuple[Span, int, str]]


def finish(
    ctx: DecodeContext,
    pos: int,
    cur: int,
    end: int,
    name: str,
    label: str,
    spans: list[Span],
    summary: str,
) -> tuple[Span, int, str]:
    return ctx.span(pos, cur - pos, name, label, None, summary, tuple(spans)), cur, summary


def unparsed(
    ctx: DecodeContext, pos: int, cur: int, end: int, name: str, label: str, spans: list[Span]
) -> tuple[Span, int, str]:
    if cur < end:
        spans.append(ctx.raw(cur, end, name + ".body", "Body"))
    return finish(ctx, pos, end, end, name, label, spans, f"{label} (type not decoded)")
