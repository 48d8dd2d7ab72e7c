"""The simulated meter's event log: everything it received and decided, as JSON lines.

Event names (``event`` key), each with ``t`` (UNIX time, float) and ``conn`` (connection id, or
None for meter-wide events):

- ``meter.started`` / ``meter.stopped``: ``address``, ``profile``, ``faults``.
- ``connection.opened``: ``peer``. ``connection.closed``: ``how`` = ``fin`` (peer closed),
  ``rst`` (peer reset), ``meter`` (meter closed: ``reason`` says why, e.g. ``fault:lockout``,
  ``inactivity``, ``stop``).
- ``frame.received`` / ``frame.sent``: ``hex``, ``decode`` (one line), ``framing``.
- ``bytes.sent``: raw bytes that are not a frame (stale bytes, echo, busy text, garbage).
- ``login``: ``client_sap``, ``mechanism``, ``outcome`` (accepted / rejected / pending),
  ``diagnostic`` (AARE acse-service-user value), ``reason``. Never the password.
- ``lockout``: ``state`` (locked / unlocked), ``failed_logins``, ``seconds``.
- ``association.opened``: ``client_sap``, ``mechanism``. ``association.released``: ``how`` =
  ``rlrq`` | ``disc`` | ``snrm`` | ``aarq`` (re-association). ``association.dropped``: the
  connection or link ended without a release (``how`` = ``close`` | ``inactivity``).
- ``get``: ``obis``, ``class_id``, ``attribute``, ``result``.
- Serial line only: ``link.reset`` (inactivity) and ``close.skipped`` (a closing fault on a line
  that cannot be closed: ``reason``).
- ``frame.ignored`` / ``frame.note`` (``note``: why nothing, or what, was sent),
  ``bytes.ignored`` (bytes that were no frame of this meter's framing).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO


class EventLog:
    """An in-memory list of event dicts, mirrored to a JSON-lines file when a path is given."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.events: list[dict[str, object]] = []
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            self._file = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def emit(self, event: str, conn: int | None = None, **fields: object) -> dict[str, object]:
        record: dict[str, object] = {"t": round(time.time(), 6), "event": event, "conn": conn}
        record.update(fields)
        with self._lock:
            self.events.append(record)
            if self._file is not None:
                self._file.write(json.dumps(record, default=str) + "\n")
                self._file.flush()
        return record

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    # ---- questions tests ask -------------------------------------------------------------

    def of(self, event: str) -> list[dict[str, object]]:
        with self._lock:
            return [e for e in self.events if e["event"] == event]

    def failed_logins(self) -> int:
        """Logins refused for authentication-failure (diagnostic 13): wrong LLS password, an
        HLS reply that does not verify, or any authenticated try while locked out. These are
        what a login budget counts; a wrong context or mechanism is not a password failure."""
        return sum(1 for e in self.of("login")
                   if e.get("outcome") == "rejected" and e.get("diagnostic") == 13)

    def rejected_logins(self) -> int:
        """Every refused AARQ or HLS pass 3, whatever the reason."""
        return sum(1 for e in self.of("login") if e.get("outcome") == "rejected")

    def open_associations(self) -> list[int]:
        """Connection ids whose association is open right now."""
        state: dict[object, int] = {}
        for e in self.events:
            if e["event"] == "association.opened":
                state[e["conn"]] = state.get(e["conn"], 0) + 1
            elif e["event"] in ("association.released", "association.dropped"):
                state[e["conn"]] = state.get(e["conn"], 0) - 1
        return [int(c) for c, n in state.items() if n > 0 and isinstance(c, int)]

    def unreleased_associations(self) -> list[dict[str, object]]:
        """Associations that ended without RLRQ or DISC: the client left them for the meter's
        inactivity timeout or the TCP close to clean up."""
        return self.of("association.dropped")

    def closes(self) -> list[dict[str, object]]:
        return self.of("connection.closed")
