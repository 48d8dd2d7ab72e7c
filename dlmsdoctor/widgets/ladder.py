"""The probe ladder: one row per rung with its state, timing and one-line result."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from dlmsdoctor.events import StepStatus
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


class Ladder(DataTable[str | Text]):
    """Rows keyed by step id; the screen feeds it StepRecords as events arrive."""

    DEFAULT_CSS = """
    Ladder { background: $surface; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id, cursor_type="row", zebra_stripes=False)
        self._columns_ready = False

    def on_mount(self) -> None:
        self._ensure_columns()

    def _ensure_columns(self) -> None:
        if not self._columns_ready:
            self.add_column("state", key="state", width=9)
            self.add_column("rung", key="rung", width=RUNG_WIDTH)
            self.add_column("time", key="time", width=7)
            self.add_column("result", key="result")
            self._columns_ready = True

    def reset(self, steps: list[StepRecord] | None = None) -> None:
        self._ensure_columns()
        self.clear()
        for step in steps or []:
            self.update_step(step)

    def update_step(self, step: StepRecord) -> None:
        self._ensure_columns()
        cells: tuple[str | Text, ...] = (
            state_text(step.status),
            rung_name(step.title or step.id),
            timing_text(step),
            step.summary,
        )
        if step.id in self.rows:
            for key, value in zip(("state", "rung", "time", "result"), cells, strict=True):
                self.update_cell(step.id, key, value)
        else:
            self.add_row(*cells, key=step.id)

    def state_of(self, step_id: str) -> str:
        """The state word shown for a rung (tests and screen readers read this)."""
        cell = self.get_cell(step_id, "state")
        return str(cell).split(" ", 1)[-1]
