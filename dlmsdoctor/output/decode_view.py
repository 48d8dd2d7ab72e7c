"""The annotated, human view of `dlmsdoctor decode`: every byte explained, every finding shown.

Rendered with rich; on a pipe or with NO_COLOR the same text comes out without colour codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.control import strip_control_codes
from rich.text import Text

from dlmsdoctor.codec.decode import DLMS_KINDS, DecodeTally, FrameDecode, InputProblem
from dlmsdoctor.codec.model import Finding, FrameKind, Severity, Span
from dlmsdoctor.codec.secrets import secret_offsets
from dlmsdoctor.output.decode_json import MASK, masked_hex

_MAX_INLINE_BYTES = 12
_ICON = {Severity.ERROR: "✗", Severity.WARNING: "!", Severity.INFO: "i"}
_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_DIRECTION = {"tx": "TX →", "rx": "RX ←", None: "  · "}


@dataclass(frozen=True, slots=True)
class _Row:
    off: str
    shown: str
    secret: bool
    field: str
    depth: int
    meaning: str


def _span_rows(
    rows: list[_Row],
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
    elif not meaning:
        meaning = span.value_text(raw)
    rows.append(
        _Row(f"{span.offset:04X}", shown, span.secret, "  " * depth + span.label, depth, meaning)
    )
    for child in span.children:
        _span_rows(rows, child, depth + 1, data, base, secret, show_secrets)


def _table(rows: list[_Row], header: bool) -> list[Text]:
    """The field table as padded lines: a rich Table per frame cost ~10 ms, this ~0.1 ms."""
    if not rows:
        return []
    w_off = max(3, *(len(r.off) for r in rows))
    w_bytes = max(5, *(len(r.shown) for r in rows))
    w_field = max(5, *(len(r.field) for r in rows))
    lines = []
    if header:
        head = f"{'off':<{w_off}} {'bytes':<{w_bytes}} {'field':<{w_field}} meaning"
        lines.append(Text(head, style="dim"))
    for r in rows:
        line = Text(f"{r.off:<{w_off}} ", style="dim")
        line.append(f"{r.shown:<{w_bytes}} ", style="magenta" if r.secret else "")
        style = "bold" if r.depth == 0 else ""
        if r.meaning:  # no padding after the last column
            line.append(f"{r.field:<{w_field}}", style=style).append(" " + r.meaning)
        else:
            line.append(r.field, style=style)
        lines.append(line)
    return lines


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


def _mark(fd: FrameDecode) -> Text:
    if not fd.is_dlms:
        # text, a bridge's message or garbage is never "valid": it is not a frame at all
        style = "bold red" if not fd.valid or fd.frame.kind is FrameKind.GARBAGE else "yellow"
        return Text("· not DLMS", style=style)
    return Text("✓ valid", style="green") if fd.valid else Text("✗ invalid", style="bold red")


def _head(fd: FrameDecode) -> Text:
    head = Text(f"Frame {fd.index + 1}  {_DIRECTION.get(fd.direction, '  · ')}  ", style="bold")
    head.append(f"{fd.frame.kind.value}  ", style="bold blue")
    head.append(f"{len(fd.frame.data)} bytes  ")
    head.append_text(_mark(fd))
    return head


def _finding_lines(fd: FrameDecode) -> list[Text]:
    findings = fd.findings
    if not findings:
        return []  # and the span trees, built only when read, are never built
    spans = fd.all_spans + fd.apdu_spans_if_separate
    return [_finding_text(finding, spans) for finding in findings]


def frame_lines(fd: FrameDecode, show_secrets: bool = False) -> list[Text]:
    """The full view of one frame: head, summary, hex, field table, findings, corrected frame."""
    frame = fd.frame
    secret = frozenset() if show_secrets else secret_offsets(fd.all_spans)
    lines = [
        _head(fd),
        Text(f"  {fd.summary}"),
        Text("  " + masked_hex(frame.data, frame.offset, secret)),
    ]
    rows: list[_Row] = []
    for span in frame.spans:
        _span_rows(rows, span, 0, frame.data, frame.offset, secret, show_secrets)
    lines += _table(rows, header=True)
    if fd.apdu is not None and fd.apdu_spans_if_separate:
        lines.append(
            Text(
                "  APDU reassembled from frames "
                f"{', '.join(str(i + 1) for i in fd.reassembled_from)}"
                f" ({fd.apdu_type}):",
                style="bold",
            )
        )
        data = fd.apdu_data or b""  # offsets are relative to the reassembled APDU
        apdu_secret = frozenset() if show_secrets else secret_offsets(fd.apdu_spans_if_separate)
        rows = []
        for span in fd.apdu_spans_if_separate:
            _span_rows(rows, span, 0, data, 0, apdu_secret, show_secrets)
        lines += _table(rows, header=False)
    lines += _finding_lines(fd)
    if fd.repaired is not None:
        lines.append(
            Text("  corrected frame: ", style="bold green").append(
                masked_hex(fd.repaired, frame.offset, secret), style="green"
            )
        )
    lines.append(Text(""))
    return lines


def brief_lines(fd: FrameDecode, show_secrets: bool = False) -> list[Text]:
    """One line per frame (number, direction, kind, size, mark, summary), then its findings."""
    del show_secrets  # the summary and findings hold no secret bytes
    line = _head(fd)
    line.append(f"  {fd.summary}")
    return [line, *_finding_lines(fd)]


def problem_line(problem: InputProblem) -> Text:
    return Text(f"! line {problem.line}: {problem.message}", style="yellow")


def summary_line(tally: DecodeTally) -> Text:
    """'N DLMS frame(s)[, M other chunk(s) (text/garbage)]' and then whether all is well."""
    text = f"{tally.dlms} DLMS frame(s)"
    if tally.other:
        text += f", {tally.other} other chunk(s) (text/garbage)"
    bad = []
    if tally.frames_with_errors:
        bad.append(f"{tally.frames_with_errors} with errors")
    if tally.garbage:
        bad.append(f"{tally.garbage} garbage")  # an error too: see DecodeTally
    if bad:
        return Text(f"{text}, {', '.join(bad)}.", style="bold red")
    if not tally.dlms:
        return Text(f"{text}: no DLMS frame in the input.", style="bold red")
    if tally.other:
        return Text(f"{text}; the DLMS frames are all valid.", style="yellow")
    return Text(f"{text}, all valid.", style="bold green")


class LinePrinter:
    """Prints lines of Text. On a pipe or without colour it writes the plain text straight to
    the file: rich's rendering costs more than the decode itself on a large log."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._plain = console.color_system is None
        # Plain lines for a file or pipe are gathered up to 8 KiB (what a buffered stdout holds
        # anyway) and written at once; to a terminal each goes out as it comes.
        self._pending: list[str] = []
        self._size = 0
        self._batch = self._plain and not _isatty(console.file)

    @property
    def plain(self) -> bool:
        """Lines go out as plain text (no colour): ``write`` may be given a str."""
        return self._plain

    def print(self, lines: list[Text]) -> None:
        if not lines:
            return
        if self._plain:
            self.write("\n".join(line.plain for line in lines))
        else:
            self._console.print(Text("\n").join(lines), highlight=False, soft_wrap=False)

    def write(self, text: str) -> None:
        """Plain text lines (``plain`` only), without the final newline."""
        if not self._batch:
            self._console.file.write(text + "\n")
            return
        self._pending.append(text)
        self._size += len(text) + 1
        if self._size >= 8192:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._console.file.write("\n".join(self._pending) + "\n")
            self._pending.clear()
            self._size = 0


def _isatty(file: object) -> bool:
    isatty = getattr(file, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # closed
        return False


def brief_plain(fd: FrameDecode) -> str | None:
    """``brief_lines(fd)`` as plain text, for a frame with no findings (one line; the text
    rich's Text would hold, control codes stripped the same way); None for any other frame."""
    frame = fd.frame
    apdu = fd.apdu
    if frame.findings or (apdu is not None and apdu.findings):
        return None
    mark = "✓ valid" if frame.kind in DLMS_KINDS else "· not DLMS"
    return strip_control_codes(
        f"Frame {fd.index + 1}  {_DIRECTION.get(fd.direction, '  · ')}  {frame.kind.value}  "
        f"{len(frame.data)} bytes  {mark}  {fd.summary}"
    )
