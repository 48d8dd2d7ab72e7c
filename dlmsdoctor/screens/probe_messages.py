"""Messages the probe worker posts to the Probe screen, and the screen posts to the app.

The worker only posts these; the handlers own all state (Textual's "attributes down, messages up").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual.message import Message

from dlmsdoctor.events import Event, FrameReceived, FrameSent
from dlmsdoctor.session import Session


class ProbeEventArrived(Message):
    """A step, connection, finding or login event: every one matters, none is collapsed."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class ProbeFramesArrived(Message):
    """The run has seen ``count`` frames, the first ``count`` of ``frames``.

    Cumulative, so a newer message can replace a queued older one: a burst of frames redraws
    once (toolong does the same with its scan progress). ``frames`` is the worker's own list,
    only ever appended to; handlers read ``frames[:count]`` and never change it.
    """

    def __init__(self, frames: Sequence[FrameSent | FrameReceived], count: int) -> None:
        super().__init__()
        self.frames = frames
        self.count = count

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ProbeFramesArrived)


class ProbeFinished(Message):
    """The engine returned its Session (also after a cancel: then ``session.cancelled``)."""

    def __init__(self, session: Session, saved: Path | None, save_error: str | None) -> None:
        super().__init__()
        self.session = session
        self.saved = saved  # where the session file was written (History lists it)
        self.save_error = save_error


class ProbeFailed(Message):
    """The run could not start or crashed: a bug or bad options, never the meter's fault."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class PreludeFinished(Message):
    """A preset's prelude (an earlier client's silent run) is done; the visible run starts."""


class LiveSessionStarted(Message):
    """Posted up to the app: show this (growing) session in the viewers."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session


class LiveFramesAdded(Message):
    """Posted up to the app: frames were appended to the live session."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LiveFramesAdded)


class RunCompleted(Message):
    """Posted up to the app: the run's final Session, diagnosed."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session


class StepFramesRequested(Message):
    """Posted up to the app: show the first frame of this rung (enter on a ladder row)."""

    def __init__(self, frame_index: int) -> None:
        super().__init__()
        self.frame_index = frame_index
