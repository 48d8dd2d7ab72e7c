"""The ladder's rung names are readable whole at 80 columns."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from dlmsdoctor.events import StepStatus
from dlmsdoctor.probes.address import AddressProbe
from dlmsdoctor.probes.framing import FramingProbe
from dlmsdoctor.probes.hdlc import DiscFirstProbe, SnrmProbe
from dlmsdoctor.probes.release import ReleaseProbe
from dlmsdoctor.session import StepRecord
from dlmsdoctor.widgets.ladder import Ladder, rung_name

TITLES = [
    (probe.id, probe.title)
    for probe in (DiscFirstProbe, FramingProbe, SnrmProbe, AddressProbe, ReleaseProbe)
] + [
    ("login.mgmt", "Login 'mgmt' (client 1, low)"),
    ("assoc.public", "Public association (client 16, no authentication)"),
]


class _LadderApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Ladder(id="ladder")


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("DISC first (clear a stale link)", "DISC first"),
        ("Framing (HDLC or wrapper)", "Framing"),
        ("Login 'mgmt' (client 1, low)", "Login 'mgmt'"),
        ("Server address discovery", "Server address discovery"),
    ],
)
def test_rung_name_drops_the_detail(title: str, name: str) -> None:
    assert rung_name(title) == name


async def test_every_rung_name_is_shown_whole_at_80x24() -> None:
    app = _LadderApp()
    async with app.run_test(size=(80, 24)) as pilot:
        ladder = app.query_one(Ladder)
        for step_id, title in TITLES:
            ladder.update_step(StepRecord(step_id, title, "link", status=StepStatus.OK))
        await pilot.pause()
        lines = [ladder.render_line(y).text for y in range(1, len(TITLES) + 1)]
        for (_, title), line in zip(TITLES, lines, strict=True):
            assert rung_name(title) in line, (title, line)
        assert "DISC first " in lines[0] and "Framing " in lines[1]


LONG = (
    "rejected: authentication failure: wrong password, or the wrong client SAP for this "
    "password"
)


@pytest.mark.parametrize("width", [80, 44])
async def test_a_long_result_wraps_whole(width: int) -> None:
    """At 80 columns (and a 44-column pane) the whole result is on screen, over more lines."""
    app = _LadderApp()
    async with app.run_test(size=(width, 24)) as pilot:
        ladder = app.query_one(Ladder)
        ladder.update_step(StepRecord("assoc.public", "Public association", "a", StepStatus.OK,
                                      summary="accepted"))
        ladder.update_step(StepRecord("assoc.login.mgmt", "Login 'mgmt' (client 1, low)", "a",
                                      StepStatus.FAILED, 1.0, 1.25, LONG))
        ladder.update_step(StepRecord("release", "Release", "release", StepStatus.CANCELLED,
                                      summary="cancelled, session released"))
        await pilot.pause()
        screen_text = " ".join(
            ladder.render_line(y).text.strip() for y in range(ladder.size.height)
        )
        words = iter(screen_text.split())
        for text in (LONG, "cancelled, session released"):
            # every word of the result, in order (wrapped lines interleave the other columns)
            assert all(word in words for word in text.split()), (text, screen_text)
        assert ladder.state_of("release") == "cancelled"
