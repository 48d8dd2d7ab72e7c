"""Wall time to the verdict against the simulated meter at a 100 ms round trip. Run by hand:

    .venv/bin/python bench/verdict.py [--runs 3] [--latency 0.05]

For a healthy meter and a few faulty ones (wrong address, busy bridge, wrong password,
wrapper-only) it runs the real ladder plus the diagnosis (``probe_and_diagnose``, default
options but no ICMP) against ``SimulatedMeter`` on loopback with ``latency=0.05`` (added on
each direction: a round trip costs 100 ms), and prints the median wall time next to the lower
bound: the round trips the run needed x RTT. Round trips are counted from the session: every
frame we sent that asks for an answer (SNRM, DISC, I-frames and RR with the P bit, wrapper
PDUs) plus every TCP connect. Target: within 1.3x of the bound on a healthy meter.
``data-only`` is the ratio to the frames' round trips alone (connects left out, as the
simulator's handshake costs no latency).

The bound ignores waits that are the diagnosis itself (a silent SNRM costs the probe wait, a
busy bridge the retry pause), so faulty meters sit far above it by design. The simulator adds
its latency to data, not to the TCP handshake, so a connect costs ~0 here while the bound
counts it as one RTT (as on a real link).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dlmsdoctor.codec.hdlc import parse_hdlc
from dlmsdoctor.config import parse_credential
from dlmsdoctor.engine import ProbeOptions
from dlmsdoctor.ledger import LoginLedger
from dlmsdoctor.run import probe_and_diagnose
from dlmsdoctor.session import Session
from dlmsdoctor.sim.meter import SimulatedMeter


@dataclass(frozen=True)
class Case:
    name: str
    profile: str
    faults: tuple[str, ...] = ()
    options: dict[str, object] = field(default_factory=dict)


CASES = (
    Case("healthy", "default"),
    Case("wrong address", "serial-derived", options={"serial_number": "12345678"}),
    Case("busy bridge", "default", ("bridge-busy",)),
    Case("wrong password", "default",
         options={"credentials": (parse_credential("mgmt=1:low:99999999"),)}),
    Case("wrapper-only", "default", ("wrapper-only=close",)),
)


def round_trips(session: Session) -> tuple[int, int]:
    """(frames we sent that ask for an answer, TCP connects)."""
    def asks(data: bytes, kind: str) -> bool:
        return kind == "wrapper" or (
            kind == "hdlc" and bool(parse_hdlc(data, 0, "tx").fields.get("poll_final"))
        )

    asking = sum(1 for f in session.frames if f.direction == "tx" and asks(f.data, f.kind))
    connects = sum(1 for c in session.connections if c.failed is None)
    return asking, connects


async def run_case(case: Case, latency: float, ledger_dir: Path) -> tuple[float, Session]:
    async with SimulatedMeter(case.profile, [*case.faults, f"latency={latency}"]) as meter:
        assert meter.port is not None
        options = ProbeOptions(
            "127.0.0.1", meter.port, icmp=False, **case.options  # type: ignore[arg-type]
        )
        start = time.perf_counter()
        result = await probe_and_diagnose(
            options, ledger=LoginLedger(ledger_dir / "ledger.jsonl"), save=False
        )
        elapsed = time.perf_counter() - start
        assert meter.unreleased_associations() == [], case.name  # the bench must be safe too
    return elapsed, result.session


async def main(runs: int, latency: float) -> None:
    rtt = 2 * latency
    print(f"RTT {rtt * 1000:.0f} ms, median of {runs} run(s), default options, no ICMP\n")
    print(f"{'case':<16}{'verdict':<24}{'frames':>7}{'conns':>6}{'bound s':>9}"
          f"{'wall s':>8}{'ratio':>7}{'data-only':>11}")
    for case in CASES:
        times: list[float] = []
        session: Session | None = None
        for i in range(runs):
            with tempfile.TemporaryDirectory() as tmp:  # a fresh login ledger per run
                elapsed, session = await run_case(case, latency, Path(tmp) / str(i))
            times.append(elapsed)
        assert session is not None and session.diagnosis is not None
        causes = session.diagnosis.causes
        verdict = causes[0].code if causes else "ok"
        asking, connects = round_trips(session)
        bound = (asking + connects) * rtt
        wall = statistics.median(times)
        print(f"{case.name:<16}{verdict:<24}{asking:>7}{connects:>6}{bound:>9.2f}"
              f"{wall:>8.2f}{wall / bound:>7.2f}{wall / max(asking * rtt, rtt):>11.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05, help="one way, seconds")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.latency))
