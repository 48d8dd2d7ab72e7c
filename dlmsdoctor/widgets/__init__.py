"""Reusable Textual widgets of the TUI: frame list, hex view, decode tree, ladder, forms."""
