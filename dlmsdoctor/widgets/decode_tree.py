"""The decode tree: a frame's spans as a tree, one node per named byte range.

A node reads like a row of `dlmsdoctor decode`: the field, what it means, then its bytes. The
decoded value is shown only when the meaning is empty and the value tells more than the bytes
(a tag byte 0x7E is not made clearer by "126"). Secret bytes stay masked.
"""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from dlmsdoctor.codec.model import Finding, Span

MAX_INLINE_BYTES = 8  # a longer field shows its first bytes; its children show the rest
MASK = "••••"


def secret_offsets(spans: tuple[Span, ...]) -> frozenset[int]:
    """Offsets of every secret byte (a password under an AARQ), to mask in any span's bytes."""
    return frozenset(
        offset
        for root in spans
        for span in root.walk()
        if span.secret
        for offset in range(span.offset, span.end)
    )


def span_bytes(span: Span, data: bytes, secret: frozenset[int]) -> str:
    """The span's bytes in hex, secret ones as ``**``; a long field shows its first bytes."""
    if span.children and span.length > MAX_INLINE_BYTES:
        return ""  # its children show them, field by field
    raw = data[span.offset : span.offset + min(span.length, MAX_INLINE_BYTES)]
    shown = " ".join(
        "**" if span.offset + i in secret else f"{b:02X}" for i, b in enumerate(raw)
    )
    if span.length > MAX_INLINE_BYTES:
        shown += f" …+{span.length - MAX_INLINE_BYTES}"
    return shown


def span_meaning(span: Span, data: bytes, show_secrets: bool = False) -> str:
    if span.secret and not show_secrets:
        return f"{MASK} (secret)"
    if span.meaning:
        return span.meaning
    return span.value_text(data[span.offset : span.end])


def span_label(
    span: Span,
    findings: tuple[Finding, ...],
    data: bytes = b"",
    secret: frozenset[int] = frozenset(),
    show_secrets: bool = False,
) -> Text:
    flagged = (
        any(f.offset < span.end and span.offset < f.offset + max(1, f.length) for f in findings)
        and not span.children
    )
    text = Text()
    if flagged:
        text.append("✗ ", style="bold red")
    text.append(span.label or span.name, style="bold")
    meaning = span_meaning(span, data, show_secrets)
    if meaning:
        text.append(f"  {meaning}")
    shown = span_bytes(span, data, frozenset() if show_secrets else secret)
    if shown:
        text.append(f"  {shown}", style="dim")
    return text


class DecodeTree(Tree[Span]):
    """Posts ``SpanSelected`` when the user moves onto a field."""

    DEFAULT_CSS = """
    DecodeTree { background: $surface; }
    """

    class SpanSelected(Message):
        """``in_frame`` is False for a field of a reassembled APDU: its offsets are within that
        APDU, not the frame's bytes."""

        def __init__(self, tree: DecodeTree, span: Span, in_frame: bool = True) -> None:
            super().__init__()
            self.tree = tree
            self.span = span
            self.in_frame = in_frame

        @property
        def control(self) -> DecodeTree:
            return self.tree

    def __init__(self, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__("frame", name=name, id=id)
        self.show_root = False
        self.guide_depth = 2
        self._span_nodes: dict[tuple[int, int, str], TreeNode[Span]] = {}
        self._apdu_nodes: set[int] = set()  # node ids under the reassembled APDU
        self.builds = 0  # how many times the tree was rebuilt (the debounce is tested on it)

    def show(
        self,
        spans: tuple[Span, ...],
        findings: tuple[Finding, ...],
        data: bytes = b"",
        *,
        apdu: tuple[str, tuple[Span, ...], bytes] | None = None,
        masked: tuple[tuple[int, int], ...] = (),
    ) -> None:
        """The frame's spans over ``data``; ``apdu`` = (title, spans, bytes) of an APDU
        reassembled from this and earlier segments, shown under its own node; ``masked``:
        (offset, length) of secret bytes the frame's own spans do not mark (a segment's share
        of a password)."""
        self.builds += 1
        self.clear()
        self._span_nodes.clear()
        self._apdu_nodes.clear()
        secret = secret_offsets(spans) | {o for at, n in masked for o in range(at, at + n)}
        for span in spans:
            self._add(self.root, span, findings, data, secret, None)
        if apdu is not None:
            title, apdu_spans, apdu_data = apdu
            top = self.root.add(Text(title, style="bold"), expand=True)
            apdu_secret = secret_offsets(apdu_spans)
            for span in apdu_spans:
                self._add(top, span, (), apdu_data, apdu_secret, self._apdu_nodes)
        self.root.expand_all()
        self.move_cursor(None)

    def _add(
        self,
        parent: TreeNode[Span],
        span: Span,
        findings: tuple[Finding, ...],
        data: bytes,
        secret: frozenset[int],
        apdu_nodes: set[int] | None,
    ) -> None:
        label = span_label(span, findings, data, secret)
        if span.children:
            node = parent.add(label, data=span, expand=True)
            for child in span.children:
                self._add(node, child, findings, data, secret, apdu_nodes)
        else:
            node = parent.add_leaf(label, data=span)
        if apdu_nodes is None:
            self._span_nodes[(span.offset, span.length, span.name)] = node
        else:
            apdu_nodes.add(node.id)

    def select_span(self, span: Span) -> None:
        """Move the cursor to the node of ``span`` (the screen found it from a byte offset)."""
        node = self._span_nodes.get((span.offset, span.length, span.name))
        if node is not None:
            self.move_cursor(node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Span]) -> None:
        event.stop()
        if event.node.data is not None:
            in_frame = event.node.id not in self._apdu_nodes
            self.post_message(self.SpanSelected(self, event.node.data, in_frame))
