"""Figures said for people, whatever a (damaged) session file holds."""

from __future__ import annotations

import math

from dlmsdoctor.diagnosis.words import duration


def test_duration_of_ordinary_and_damaged_values() -> None:
    assert duration(0.034) == "34 ms"
    assert duration(1.25, "es") == "1,25 s"
    assert duration(math.inf) == "∞ s"  # a fuzzed settings value crashed the report
    assert duration(-math.inf) == "-"
    assert duration(math.nan) == "-"
