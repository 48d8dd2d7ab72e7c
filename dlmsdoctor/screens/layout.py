"""Layout constants shared by the screens."""

from __future__ import annotations

# Screens get the class -narrow below 110 columns (80x24 laptops, split terminals) and -wide above.
BREAKPOINTS: list[tuple[int, str]] = [(0, "-narrow"), (110, "-wide")]
