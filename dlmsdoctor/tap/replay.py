"""A recorded client's traffic judged as the tap judges a relayed poller.

A capture that dlmsdoctor did not write (tcpdump, Wireshark) always shows another client: the
user's poller, a head-end, GXDLMSDirector. Its frames are not dlmsdoctor's, so the probe's rules
(our AARQ, the login budget, the ladder's rungs) do not apply; the tap's do. ``judge_as_poller``
replays the session's connections, frames and closes, in the order they happened, through the
tap's own pipeline (``core.Tap`` without its relay: the same decode, the same ``TapAnalyzer``, the
same records with ``answers`` and ``late``) and leaves a session the tap's rules diagnose
(``rules.diagnose``): ``tap.*`` findings, ``settings["tap"]`` counts, no steps, no logins.

What a capture cannot tell is not invented: a connection whose close the capture did not hold
ends when its last frame was seen (or at the end of the capture).
"""

from __future__ import annotations

from dataclasses import dataclass

from dlmsdoctor.events import CloseHow, Direction
from dlmsdoctor.session import ConnectionRecord, Session

# What the replay does at one moment, in this order when moments are equal: a connection
# opens (or fails) before its bytes, a gap before the bytes after it, bytes before a close, a
# close before the end.
_OPEN, _GAP, _DATA, _CLOSE, _END = range(5)


@dataclass(frozen=True, slots=True)
class _Step:
    at: float
    what: int
    order: int  # frame index, or connection id: a stable order within the same moment
    conn: int
    side: str = ""
    data: bytes = b""
    how: CloseHow | None = None


def _client(conn: ConnectionRecord) -> str:
    if conn.client:
        return conn.client
    return f"client:{conn.local_port}" if conn.local_port else "client"


def _steps(session: Session) -> list[_Step]:
    """Every event of the recorded traffic, in time order."""
    from dlmsdoctor.tap.relay import METER, POLLER

    steps: list[_Step] = []
    last_at: dict[int, float] = {}
    seen: dict[int, int] = {}
    cut, head = _cut_connections(session)
    for frame in sorted(session.frames, key=lambda f: (f.at, f.index)):
        side = POLLER if frame.direction is Direction.TX else METER
        count = seen[frame.conn_id] = seen.get(frame.conn_id, 0) + 1
        if frame.conn_id in cut and count == head + 1:  # the first frame after the cut
            steps.append(_Step(frame.at, _GAP, frame.index, frame.conn_id))
        steps.append(_Step(frame.at, _DATA, frame.index, frame.conn_id, side, frame.data))
        last_at[frame.conn_id] = max(frame.at, last_at.get(frame.conn_id, frame.at))
    end_of_capture = max([session.duration or 0.0, *last_at.values()])
    for conn in session.connections:
        if conn.failed:
            at = conn.closed_at if conn.closed_at is not None else (conn.opened_at or 0.0)
            steps.append(_Step(at, _OPEN, conn.id, conn.id))
            continue
        opened = conn.opened_at if conn.opened_at is not None else last_at.get(conn.id, 0.0)
        steps.append(_Step(opened, _OPEN, conn.id, conn.id))
        end = max(last_at.get(conn.id, opened), opened)
        if conn.close_how is not None and conn.closed_at is not None:
            side = METER if conn.closed_by_peer else POLLER
            how = CloseHow.RST if conn.close_how is CloseHow.RST else CloseHow.FIN
            steps.append(_Step(conn.closed_at, _CLOSE, conn.id, conn.id, side, how=how))
            end = max(end, conn.closed_at)
            if conn.then_closed_at is not None:  # the other side closed too
                other = POLLER if side == METER else METER
                how = CloseHow.RST if conn.then_close_how is CloseHow.RST else CloseHow.FIN
                steps.append(_Step(conn.then_closed_at, _CLOSE, conn.id, conn.id, other,
                                   how=how))
                end = max(end, conn.then_closed_at)
        else:
            end = end_of_capture  # still open when the capture ended
        steps.append(_Step(end, _END, conn.id, conn.id))
    steps.sort(key=lambda s: (s.at, s.what, s.order))
    return steps


def _cut_connections(session: Session) -> tuple[set[int], int]:
    """The connections a large capture kept only the ends of, and how many frames it kept
    from their start (``capture_read``'s summary): the replay tells the analysis where the
    middle is missing, so that sequence numbers and waiting requests are not judged across it."""
    summary = session.settings.get("capture_summary")
    caps = summary.get("caps") if isinstance(summary, dict) else None
    first = caps.get("frames_per_connection") if isinstance(caps, dict) else None
    if not isinstance(first, list) or not first or not isinstance(first[0], int):
        return set(), 0
    return {c.id for c in session.connections if c.bytes_dropped}, first[0]


def judge_as_poller(session: Session) -> Session:
    """Replace the session's frames, findings and counts with the tap's reading of them (in
    place; returns the session). The session's connections and kind stay as they are."""
    from dlmsdoctor.tap.core import Tap, TapOptions

    target = session.target
    options = TapOptions("", 0, target.host, target.port,
                         keep_frames=max(len(session.frames), 1) + 16,
                         show_secrets=True)  # the capture's bytes as they are; faces mask
    tap = Tap(options, vantage="capture")
    connections = {c.id: c for c in session.connections}
    for step in _steps(session):
        conn = connections.get(step.conn)
        if step.what == _OPEN and conn is not None:
            if conn.failed:
                elapsed = conn.connect_time or 0.0
                tap.failed(conn.id, _client(conn), step.at, conn.failed,
                           _failure(conn), elapsed)
            else:
                tap.opened(conn.id, _client(conn), step.at, conn.connect_time or 0.0,
                           (conn.host, conn.port))
        elif step.what == _GAP:
            tap.gap(step.conn, step.at)
        elif step.what == _DATA:
            tap.data(step.conn, step.side, step.at, step.data)
        elif step.what == _CLOSE and step.how is not None:
            tap.closed(step.conn, step.side, step.at, step.how)
        elif step.what == _END:
            tap.ended(step.conn, step.at)
    judged = tap.finish("capture", at=session.duration or 0.0)
    session.frames = judged.frames
    session.findings = [f for f in session.findings if not f.code.startswith("tap.")]
    session.findings += judged.findings
    session.steps, session.logins, session.identity = [], [], judged.identity
    summary = dict(judged.settings.get("tap", {}))
    summary.pop("connections_kept", None)
    session.settings["tap"] = summary
    session.diagnosis = None  # load_and_diagnose judges it with today's rules
    return session


def _failure(conn: ConnectionRecord) -> str:
    """The failed connect in the words of ``tap.target.unreachable``'s message."""
    if conn.failed == "refused":
        return "the SYN was answered with a reset (RST): refused"
    if conn.failed == "timeout":
        return "the SYN got no answer"
    return conn.note or str(conn.failed)
