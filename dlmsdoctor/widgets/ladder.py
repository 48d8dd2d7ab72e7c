"""The probe ladder: one row per rung with its state, timing and one-line result."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from dlmsdoctor.events import StepStatus
from dlmsdoctor.output.i18n import step_title
from dlmsdoctor.session import StepRecord

STATE_MARK: dict[StepStatus, tuple[str, str]] = {
    StepStatus.PENDING: ("·", "dim"),
    StepStatus.RUNNING: ("▶", "bold cyan"),
    StepStatus.OK: ("✓", "bold green"),
    StepStatus.WARNING: ("!", "bold yellow"),
    StepStatus.FAILED: ("✗", "bold red"),
    StepStatus.SKIPPED: ("-", "dim"),
    StepStatus.UNAVAILABLE: ("?", "dim yellow"),
    StepStatus.ERROR: ("E", "bold magenta"),
    StepStatus.CANCELLED: ("⊘", "yellow"),
    # failed at the defaults, a later rung got through (diagnosis/steps.py settles it)
    StepStatus.RECOVERED: ("↻", "yellow"),
}


def state_text(status: StepStatus) -> Text:
    mark, style = STATE_MARK.get(status, ("?", ""))
    return Text(f"{mark} {status.value}", style=style)


def timing_text(step: StepRecord) -> str:
    if step.duration is not None:
        return f"{step.duration * 1000:.0f} ms" if step.duration < 10 else f"{step.duration:.1f} s"
    if step.started is not None:
        return f"@{step.started:.2f}s"
    return ""


RUNG_WIDTH = 24  # "Server address discovery"; a longer name is cut with an ellipsis


def rung_name(title: str) -> str:
    """The rung's name without its parenthesised detail: "DISC first (clear a stale link)" is
    "DISC first", "Login 'mgmt' (client 1, low)" is "Login 'mgmt'". The detail is in the
    rung's result and frames; the name has to stay readable beside them at 80 columns."""
    name = title.split(" (", 1)[0].strip() or title
    return name if len(name) <= RUNG_WIDTH else name[: RUNG_WIDTH - 1] + "…"


def rung_label(step: StepRecord) -> str:
    """One label per step, the reports' (``i18n.step_title``): "Reads with set 'mgmt'" beside
    "Identity reads", never the same title twice."""
    return rung_name(step_title(step.id, step.title or step.id, "en"))


# Below this width the ladder shows the state as its mark only (the colour and the result say
# the rest) and drops the timing column below NO_TIME_WIDTH: the result text matters most.
COMPACT_WIDTH = 90
NO_TIME_WIDTH = 56


class Ladder(DataTable[str | Text]):
    """Rows keyed by step id; the screen feeds it StepRecords as events arrive.

    The result column takes the width left over and wraps onto more lines, so every rung's
    result is read whole at 80 columns; the table is rebuilt when its width changes (a
    ladder is a dozen rows: rebuilding costs nothing next to a missing result).
    """

    DEFAULT_CSS = """
    Ladder { background: $surface; }
    Ladder:focus { border-left: outer $accent; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id, cursor_type="row", zebra_stripes=False)
        self._steps: dict[str, StepRecord] = {}
        self._layout: tuple[int, int, int, int] | None = None  # state, rung, time, result

    def on_mount(self) -> None:
        self._relayout()

    def on_resize(self) -> None:
        self._relayout()

    def _widths(self) -> tuple[int, int, int, int]:
        width = self.scrollable_content_region.width or self.size.width or 80
        compact = width < COMPACT_WIDTH
        state = 1 if compact else 11  # "↻ recovered", "⊘ cancelled" on one line
        rung = RUNG_WIDTH if width >= 64 else 16
        time = 0 if width < NO_TIME_WIDTH else 7
        columns = 4 if time else 3
        padding = 2 * self.cell_padding * columns
        result = max(12, width - state - rung - time - padding - 1)
        return state, rung, time, result

    def _relayout(self) -> None:
        widths = self._widths()
        if widths == self._layout and self.columns:
            return
        self._layout = widths
        self._rebuild()

    def _rebuild(self) -> None:
        assert self._layout is not None
        state, rung, time, result = self._layout
        row = self.cursor_row
        scroll_y = self.scroll_y  # a rebuild must not move what the technician is reading
        self.clear(columns=True)
        self.add_column("" if state == 1 else "state", key="state", width=state)
        self.add_column("rung", key="rung", width=rung)
        if time:
            self.add_column("time", key="time", width=time)
        self.add_column("result", key="result", width=result)
        for step in self._steps.values():
            self.add_row(*self._cells(step), key=step.id, height=None)
        if self.row_count:
            self.move_cursor(row=min(row, self.row_count - 1), scroll=False)
        self.call_after_refresh(self.scroll_to, y=scroll_y, animate=False)

    def _cells(self, step: StepRecord) -> tuple[str | Text, ...]:
        assert self._layout is not None
        state_width, rung_width, time, _ = self._layout
        state = state_text(step.status)
        if state_width == 1:
            state = Text(STATE_MARK.get(step.status, ("?", ""))[0], style=state.style)
        name = rung_label(step)
        if len(name) > rung_width:
            name = name[: rung_width - 1] + "…"
        cells: list[str | Text] = [state, Text(name)]
        if time:
            cells.append(Text(timing_text(step)))
        cells.append(Text(step.summary or "", overflow="fold"))
        return tuple(cells)

    def reset(self, steps: list[StepRecord] | None = None) -> None:
        self._steps = {}
        if self._layout is None:
            self._layout = self._widths()
        self._rebuild()
        self.call_after_refresh(self.scroll_to, y=0, animate=False)  # a new run: from the top
        for step in steps or []:
            self.update_step(step)

    def update_step(self, step: StepRecord) -> None:
        if self._layout is None:
            self._layout = self._widths()
        known = step.id in self._steps
        self._steps[step.id] = step
        if known and step.id in self.rows:
            # a new result may need more lines: rebuild (the cursor stays on its row)
            self._rebuild()
        else:
            self.add_row(*self._cells(step), key=step.id, height=None)

    def state_of(self, step_id: str) -> str:
        """The state word of a rung (tests and screen readers read this)."""
        step = self._steps.get(step_id)
        return step.status.value if step is not None else ""
