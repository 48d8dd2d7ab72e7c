"""Every cause the tap's rules can give is in docs/tap.md and has its Spanish words, and every
finding code the analysis raises has a rule (a capture of another client is judged by them too)."""

from __future__ import annotations

import re
from pathlib import Path

from dlmsdoctor.output.i18n_tap import CAUSE_ES_TAP
from dlmsdoctor.tap.rules import RULES

ROOT = Path(__file__).resolve().parents[2]


def test_every_rule_is_documented_and_said_in_spanish() -> None:
    doc = (ROOT / "docs" / "tap.md").read_text(encoding="utf-8")
    assert [code for code in RULES if f"`{code}`" not in doc] == []
    assert set(CAUSE_ES_TAP) == set(RULES)


def test_every_code_the_analysis_raises_has_a_rule() -> None:
    source = (ROOT / "dlmsdoctor" / "tap" / "analysis.py").read_text(encoding="utf-8")
    raised = set(re.findall(r'raise_\(\s*"(tap\.[a-z_.]+)"', source))
    assert len(raised) > 15 and raised <= set(RULES), raised - set(RULES)
    # and the one named from the codec's finding: tap.poller.{_malformed_name(code)}
    assert "_malformed_name(f.code)" in source
    for name in ("malformed", "address_size3", "address"):
        assert f"tap.poller.{name}" in RULES
