"""The decode tree: a frame's spans as a tree, one node per named byte range."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from dlmsdoctor.codec.model import Finding, Span


def _value_text(span: Span, show_secrets: bool) -> str:
    if span.secret and not show_secrets:
        return "••••"
    value = span.value
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return value.hex(" ").upper()
    return str(value)


def span_label(span: Span, findings: tuple[Finding, ...], show_secrets: bool = False) -> Text:
    flagged = (
        any(f.offset < span.end and span.offset < f.offset + max(1, f.length) for f in findings)
        and not span.children
    )
    text = Text()
    if flagged:
        text.append("✗ ", style="bold red")
    text.append(span.label or span.name, style="bold")
    value = _value_text(span, show_secrets)
    if value:
        text.append(f" = {value}")
    if span.meaning:
        text.append(f"  {span.meaning}", style="dim")
    text.append(f"  [{span.offset}+{span.length}]", style="dim")
    return text


class DecodeTree(Tree[Span]):
    """Posts ``SpanSelected`` when the user moves onto a field."""

    DEFAULT_CSS = """
    DecodeTree { background: $surface; }
    """

    class SpanSelected(Message):
        def __init__(self, tree: DecodeTree, span: Span) -> None:
            super().__init__()
            self.tree = tree
            self.span = span

        @property
        def control(self) -> DecodeTree:
            return self.tree

    def __init__(self, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__("frame", name=name, id=id)
        self.show_root = False
        self.guide_depth = 2
        self._span_nodes: dict[tuple[int, int, str], TreeNode[Span]] = {}

    def show(self, spans: tuple[Span, ...], findings: tuple[Finding, ...]) -> None:
        self.clear()
        self._span_nodes.clear()
        for span in spans:
            self._add(self.root, span, findings)
        self.root.expand_all()
        self.move_cursor(None)

    def _add(self, parent: TreeNode[Span], span: Span, findings: tuple[Finding, ...]) -> None:
        label = span_label(span, findings)
        if span.children:
            node = parent.add(label, data=span, expand=True)
            for child in span.children:
                self._add(node, child, findings)
        else:
            node = parent.add_leaf(label, data=span)
        self._span_nodes[(span.offset, span.length, span.name)] = node

    def select_span(self, span: Span) -> None:
        """Move the cursor to the node of ``span`` (the screen found it from a byte offset)."""
        node = self._span_nodes.get((span.offset, span.length, span.name))
        if node is not None:
            self.move_cursor(node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Span]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(self.SpanSelected(self, event.node.data))
