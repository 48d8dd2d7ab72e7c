"""The annotated, human view of `dlmsdoctor decode`: every byte explained, every finding shown.

Rendered with rich; on a pipe or with NO_COLOR the same text comes out without colour codes.
"""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from dlmsdoctor.codec.decode import DecodeResult, FrameDecode
from dlmsdoctor.codec.model import Finding, Severity, Span
from dlmsdoctor.codec.secrets import secret_offsets
from dlmsdoctor.output.decode_json import MASK, masked_hex

_MAX_INLINE_BYTES = 12
_ICON = {Severity.ERROR: "✗", Severity.WARNING: "!", Severity.INFO: "i"}
_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_DIRECTION = {"tx": "TX →", "rx": "RX ←", None: "  · "}


def _span_rows(
    table: Table,
    span: Span,
    depth: int,
    data: bytes,
    base: int,
    secret: frozenset[int],
    show_secrets: bool,
) -> None:
    rel = span.offset - base
    raw = data[rel : rel + span.length] if 0 <= rel <= len(data) else b""
    if span.children and span.length > _MAX_INLINE_BYTES:
        shown = f"({span.length} bytes)"
    else:
        shown = masked_hex(raw[:_MAX_INLINE_BYTES], span.offset, secret)
        if span.length > _MAX_INLINE_BYTES:
            shown += f" … (+{span.length - _MAX_INLINE_BYTES})"
    meaning = span.meaning
    if span.secret and not show_secrets:
        meaning = f"{MASK} (secret; --show-secrets to reveal)"
    elif not meaning and span.value is not None and not span.children and _value_adds(span, raw):
        meaning = str(span.value)
    table.add_row(
        f"{span.offset:04X}",
        Text(shown, style="magenta" if span.secret else ""),
        Text("  " * depth + span.label, style="bold" if depth == 0 else ""),
        meaning,
    )
    for child in span.children:
        _span_rows(table, child, depth + 1, data, base, secret, show_secrets)


def _value_adds(span: Span, raw: bytes) -> bool:
    """Whether printing the decoded value tells more than the bytes already do."""
    value = span.value
    if isinstance(value, bytes | bytearray):
        return False
    # a flag or a one-byte tag: the hex says it all
    return not (isinstance(value, int) and len(raw) == 1 and value == raw[0])


def field_label(finding: Finding, spans: tuple[Span, ...]) -> str | None:
    """What a person reads for the finding's field: the label of its span, else the field name
    unless it only repeats the code."""
    by_name: str | None = None
    for top in spans:
        for span in top.walk():
            if span.name == finding.field:
                if span.offset == finding.offset:
                    return span.label
                by_name = by_name or span.label
    if by_name is not None:
        return by_name
    return finding.field if finding.field and finding.field != finding.code else None


def _finding_text(finding: Finding, spans: tuple[Span, ...] = ()) -> Text:
    # Offsets in hex, as in the table's "off" column, so that a finding points at a row.
    text = Text(f"  {_ICON[finding.severity]} ", style=_STYLE[finding.severity])
    text.append(f"{finding.code}", style=_STYLE[finding.severity])
    label = field_label(finding, spans)
    text.append(f" at {finding.offset:04X}")
    if label:
        text.append(f" ({label})")
    text.append(f": {finding.message}")
    details = []
    if finding.expected is not None:
        details.append(f"expected {finding.expected}")
    if finding.found is not None:
        details.append(f"found {finding.found}")
    if finding.corrected is not None:
        details.append(f"correct value {finding.corrected}")
    if details:
        text.append(" [" + "; ".join(details) + "]", style="dim")
    return text


def render_frame(fd: FrameDecode, show_secrets: bool = False) -> RenderableType:
    frame = fd.frame
    secret = frozenset() if show_secrets else secret_offsets(fd.all_spans)
    mark = Text("✓ valid", style="green") if fd.valid else Text("✗ invalid", style="bold red")
    head = Text(f"Frame {fd.index + 1}  {_DIRECTION.get(fd.direction, '  · ')}  ", style="bold")
    head.append(f"{frame.kind.value}  ", style="bold blue")
    head.append(f"{len(frame.data)} bytes  ")
    head.append_text(mark)
    head.append(f"\n  {fd.summary}")
    parts: list[RenderableType] = [head, Text("  " + masked_hex(frame.data, frame.offset, secret))]

    table = Table(box=None, pad_edge=False, show_header=True, header_style="dim", padding=(0, 1))
    table.add_column("off", style="dim", no_wrap=True)
    table.add_column("bytes", no_wrap=True)
    table.add_column("field", no_wrap=True)
    table.add_column("meaning")
    for span in frame.spans:
        _span_rows(table, span, 0, frame.data, frame.offset, secret, show_secrets)
    if frame.spans:
        parts.append(table)
    if fd.apdu is not None and fd.apdu_spans_if_separate:
        parts.append(
            Text(
                "  APDU reassembled from frames "
                f"{', '.join(str(i + 1) for i in fd.reassembled_from)}"
                f" ({fd.apdu_type}):",
                style="bold",
            )
        )
        apdu_table = Table(box=None, pad_edge=False, show_header=False, padding=(0, 1))
        for _ in range(4):
            apdu_table.add_column()
        data = fd.apdu_data or b""  # offsets are relative to the reassembled APDU
        apdu_secret = frozenset() if show_secrets else secret_offsets(fd.apdu_spans_if_separate)
        for span in fd.apdu_spans_if_separate:
            _span_rows(apdu_table, span, 0, data, 0, apdu_secret, show_secrets)
        parts.append(apdu_table)
    for finding in fd.findings:
        parts.append(_finding_text(finding, fd.all_spans + fd.apdu_spans_if_separate))
    if fd.repaired is not None:
        parts.append(
            Text("  corrected frame: ", style="bold green").append(
                masked_hex(fd.repaired, frame.offset, secret), style="green"
            )
        )
    return Group(*parts)


def render_result(console: Console, result: DecodeResult, show_secrets: bool = False) -> None:
    for problem in result.problems:
        console.print(
            Text(f"! line {problem.line}: {problem.message}", style="yellow"), highlight=False
        )
    for fd in result.frames:
        console.print(render_frame(fd, show_secrets), highlight=False)
        console.print()
    errors = sum(1 for fd in result.frames if not fd.valid)
    total = len(result.frames)
    if errors:
        console.print(
            Text(f"{total} frame(s), {errors} with errors.", style="bold red"), highlight=False
        )
    else:
        console.print(Text(f"{total} frame(s), all valid.", style="bold green"), highlight=False)
