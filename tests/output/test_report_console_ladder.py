"""The console ladder (output/ladder.py): one truth per run on a terminal too. A link rung that a
later rung recovers turns "rcvd" in the live table; the verdict lists recovered rungs and notes
apart from the ranked causes."""

from __future__ import annotations

import io

from rich.console import Console

from dlmsdoctor.diagnosis import apply
from dlmsdoctor.events import StepFinished, StepStarted, StepStatus
from dlmsdoctor.output.ladder import LadderView, render_diagnosis
from tests.diagnosis.story import recovered_link_late_release


def test_the_live_table_marks_a_recovered_rung() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    view = LadderView(console, live=True)
    with view:
        for step_id, layer, status in (("framing.detect", "framing", StepStatus.FAILED),
                                       ("hdlc.snrm", "hdlc", StepStatus.FAILED),
                                       ("address.discover", "address", StepStatus.OK)):
            view.on_event(StepStarted(step_id, step_id, layer, 0.0))
            view.on_event(StepFinished(step_id, status, "x", 0.1))
    assert view.rows["framing.detect"].status is StepStatus.RECOVERED
    assert view.rows["hdlc.snrm"].status is StepStatus.RECOVERED
    assert "recovered by address.discover" in view.rows["hdlc.snrm"].summary


def test_the_verdict_lists_recovered_rungs_and_notes_apart() -> None:
    story = recovered_link_late_release()
    session = story.session
    apply(session)
    out = io.StringIO()
    render_diagnosis(Console(file=out, no_color=True, width=200), session)
    text = out.getvalue()
    recovered = text[text.index("Recovered by a later rung"):text.index("Verdict:")]
    assert "[rcvd] framing.detect" in recovered
    notes = text[text.index("Notes (observations, not faults):"):]
    assert "release.confirmed_late" in notes
    assert "release.confirmed_late" not in text[:text.index("Notes (observations")]
