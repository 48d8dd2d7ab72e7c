"""Release on every exit path (issue 10 item 4): whatever await a run is cancelled at, by the
cancel flag (Ctrl-C, SIGTERM, SIGHUP, a broken pipe) or by cancelling its task (the TUI), the
meter's own event log shows no association and no HDLC link left up.

The channel is wrapped to count its operations (connect, send, receive); run k is cancelled at
the k-th of them, for every k a full run has."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from dlmsdoctor.codec import hdlc as hd
from dlmsdoctor.config import parse_credential
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.ledger import MemoryLedger
from dlmsdoctor.link.clock import MonotonicClock
from dlmsdoctor.link.tcp import TcpChannelFactory

sim = pytest.importorskip("dlmsdoctor.sim.meter")

FAST: dict[str, Any] = {"icmp": False, "timeout": 0.4, "banner_window": 0.05,
                        "busy_retry_wait": 0.05, "release_timeout": 0.6,
                        "discovery_budget": 2, "discovery_pace": 0.0}


class CountingChannel:
    def __init__(self, inner: Any, counter: Counter) -> None:
        self._inner = inner
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def closed(self) -> Any:
        return self._inner.closed

    async def send(self, data: bytes) -> float:
        self._counter.tick(f"send {_request_kind(data)} {data[:12].hex()}")
        return float(await self._inner.send(data))

    async def receive(self, timeout: float) -> Any:
        self._counter.tick("receive")
        return await self._inner.receive(timeout)

    async def close(self) -> Any:
        return await self._inner.close()


class Counter:
    """A channel factory whose operations are counted; ``at``: the one that cancels the run."""

    def __init__(self, at: int | None, trigger: Callable[[], None]) -> None:
        self.inner = TcpChannelFactory(MonotonicClock())
        self.at = at
        self.trigger = trigger
        self.count = 0
        self.where = ""
        self.ops: list[str] = []

    def tick(self, what: str) -> None:
        self.count += 1
        self.ops.append(what)
        if self.count == self.at:
            self.where = what
            self.trigger()

    async def __call__(self, host: str, port: int, timeout: float, conn_id: int) -> Any:
        self.tick("connect")
        return CountingChannel(await self.inner(host, port, timeout, conn_id), self)


def links_left_up(events: list[dict[str, object]]) -> list[object]:
    """Connections that closed with an HDLC link up (a UA to an SNRM, no DISC after it)."""
    up: dict[object, bool] = {}
    last: dict[object, str | None] = {}
    left = []
    for e in events:
        conn = e.get("conn")
        if e["event"] in ("frame.received", "frame.sent"):
            data = bytes.fromhex(str(e["hex"]).replace("*", "0").replace(" ", ""))
            if not data.startswith(b"\x7e"):
                continue
            ftype = hd.parse_hdlc(data, 0, None).fields.get("frame_type")
            if e["event"] == "frame.received":
                last[conn] = str(ftype)
                if ftype == "DISC":
                    up[conn] = False
            elif ftype == "UA" and last.get(conn) == "SNRM":
                up[conn] = True
        elif e["event"] == "connection.closed" and up.get(conn):
            left.append(conn)
    return left


async def run_cancelled(profile: str, at: int | None, mode: str, faults: tuple[str, ...] = (),
                        **options: Any) -> tuple[Counter, list[str], list[object]]:
    """One run cancelled at operation ``at``; (counter, unreleased associations, links up)."""
    async with sim.SimulatedMeter(profile, faults) as meter:
        cancel = asyncio.Event()
        task: asyncio.Task[Any] | None = None

        def trigger() -> None:
            if mode == "flag":
                cancel.set()
            else:
                assert task is not None
                task.cancel()

        counter = Counter(at, trigger)
        creds = (parse_credential("mgmt=1:low:00000000"),)
        opts = ProbeOptions("127.0.0.1", meter.port, credentials=creds, **{**FAST, **options})
        task = asyncio.create_task(run_probe(opts, cancel=cancel, ledger=MemoryLedger(),
                                             channel_factory=counter))
        try:
            await task
        except asyncio.CancelledError:
            assert mode == "task"
        await asyncio.sleep(0.1)  # let the meter log the close
        dropped = [f"{e.get('conn')}:{e.get('how')}" for e in meter.unreleased_associations()]
        return counter, dropped, links_left_up(meter.events)


CASES = [
    # (profile, faults, options): an HDLC meter, a slow one (answers pending at the cancel,
    # some arriving during the release), and a wrapper meter (the wrapper AARQ of framing
    # detection pending)
    ("default", (), {}),
    ("default", ("delay=0.25",), {}),
    ("wrapper", (), {}),
    ("wrapper", ("delay=0.25",), {}),
]


def _request_kind(data: bytes) -> str:
    """SNRM, DISC, AARQ, GET, RLRQ... of a frame we send (HDLC or wrapper)."""
    names = {0x93: "SNRM", 0x53: "DISC", 0x60: "AARQ", 0x62: "RLRQ", 0xC0: "GET",
             0xC3: "ACTION"}
    if data[:2] == b"\x00\x01" and len(data) > 8:
        return names.get(data[8], "wrapper")
    parsed = hd.parse_hdlc(data, 0, "tx")
    ftype = str(parsed.fields.get("frame_type"))
    if ftype == "I" and parsed.apdu:
        return names.get(parsed.apdu[0], "I")
    return ftype


def _pending_points(ops: list[str]) -> list[int]:
    """The operations (1-based) right after a request went out, for the first request of each
    kind: a cancel there meets an SNRM, an AARQ (the wrapper one of framing detection
    too), a GET or an RLRQ still pending."""
    out = []
    seen: dict[str, int] = {}
    for k, (before, op) in enumerate(itertools.pairwise(ops), start=2):
        if before.startswith("send") and op == "receive":
            kind = before.split()[1]
            seen[kind] = seen.get(kind, 0) + 1
            if seen[kind] == 1:
                out.append(k)
    return out


async def _sweep(profile: str, faults: tuple[str, ...], options: dict[str, Any], mode: str,
                 step: int | None) -> list[str]:
    """Cancel at every ``step``-th operation, or (``step`` None) at each pending request."""
    full, dropped, links = await run_cancelled(profile, None, mode, faults, **options)
    assert dropped == [] and links == [], "an uncancelled run releases"
    points = (range(1, full.count + 1, step) if step is not None
              else _pending_points(full.ops))
    assert points
    bad = []
    for k in points:
        counter, dropped, links = await run_cancelled(profile, k, mode, faults, **options)
        if dropped or links:
            bad.append(f"{profile}{list(faults)} {mode} k={k} ({counter.where}): "
                       f"associations dropped {dropped}, links left up {links}")
    return bad


@pytest.mark.parametrize("mode", ["flag", "task"])
@pytest.mark.parametrize(("profile", "faults", "options"), CASES)
async def test_cancel_while_each_request_is_pending_leaves_nothing_open(
        profile: str, faults: tuple[str, ...], options: dict[str, Any], mode: str) -> None:
    assert await _sweep(profile, faults, options, mode, step=None) == []


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["flag", "task"])
@pytest.mark.parametrize(("profile", "faults", "options"), CASES)
async def test_cancel_at_every_await_leaves_nothing_open(
        profile: str, faults: tuple[str, ...], options: dict[str, Any], mode: str) -> None:
    assert await _sweep(profile, faults, options, mode, step=1) == []


# -- the CLI: a reader that goes away, and signals ---------------------------------------------

def _cli_env(tmp_path: Any) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.update(DLMSDOCTOR_DATA_DIR=str(tmp_path / "data"),
               DLMSDOCTOR_CONFIG_DIR=str(tmp_path / "config"), NO_COLOR="1")
    return env


def _probe_argv(port: int, *extra: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "dlmsdoctor", "probe", f"127.0.0.1:{port}", "--no-icmp",
            "--timeout", "0.5", "--cred", "mgmt=1:low:00000000", *extra]


def _released(meter: Any) -> None:
    import time

    time.sleep(0.3)
    assert meter.unreleased_associations() == []
    assert links_left_up(meter.events) == []


def test_jsonl_into_head_stops_quietly_and_releases(tmp_path: Any) -> None:
    """`probe --jsonl | head -n 30`: no traceback, exit 141 (a broken pipe), the meter released
    (the run is cut while an association is open: a delay keeps the ladder going)."""
    import subprocess

    with sim.MeterThread("default", ["delay=0.05"]) as meter:
        probe = subprocess.Popen(_probe_argv(meter.port, "--jsonl"), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=_cli_env(tmp_path))
        head = subprocess.Popen(["head", "-n", "30"], stdin=probe.stdout,
                                stdout=subprocess.PIPE)
        assert probe.stdout is not None
        probe.stdout.close()  # only head reads it now
        lines, _ = head.communicate(timeout=60)
        _, err = probe.communicate(timeout=60)
        assert len(lines.splitlines()) == 30
        assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()
        assert probe.returncode == 141, err.decode()
        assert any(e["event"] == "association.opened" for e in meter.events)
        _released(meter)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_signal_cancels_and_releases(tmp_path: Any, signame: str) -> None:
    """A signal while an association is open: the run stops, RLRQ and DISC go out, the exit
    code is 128 + the signal, as shells report it."""
    import json
    import signal
    import subprocess

    signum = getattr(signal, signame)
    with sim.MeterThread("default", ["delay=0.05"]) as meter:
        probe = subprocess.Popen(_probe_argv(meter.port, "--jsonl"), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=_cli_env(tmp_path))
        assert probe.stdout is not None
        seen = []
        for raw in probe.stdout:  # wait until the public association is up
            seen.append(json.loads(raw))
            if seen[-1].get("code") == "assoc.accepted":
                break
        probe.send_signal(signum)
        rest, err = probe.communicate(timeout=60)
        assert b"Traceback" not in err, err.decode()
        assert probe.returncode == 128 + signum, err.decode()
        finished = json.loads(rest.splitlines()[-1])
        assert finished["event"] == "run_finished" and finished["cancelled"] is True
        _released(meter)
