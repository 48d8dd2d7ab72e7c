"""Layout constants shared by the screens."""

from __future__ import annotations

# Screens get the class -narrow below 110 columns (80x24 laptops, split terminals) and -wide above.
BREAKPOINTS: list[tuple[int, str]] = [(0, "-narrow"), (110, "-wide")]

# The Frames screen stacks its panes below 150 columns: side by side, the 16-byte hex view (75
# columns) leaves a 120-column terminal's frame list 40 columns, too few for its summaries.
FRAMES_BREAKPOINTS: list[tuple[int, str]] = [(0, "-narrow"), (150, "-wide")]

# Screens get -short below 30 lines (80x24): forms drop the blank line between fields.
SHORT_BREAKPOINTS: list[tuple[int, str]] = [(0, "-short"), (30, "-tall")]
