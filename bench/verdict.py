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

Serial and optical cases run over a pseudo-terminal against the simulated meter's line front
end, which makes bytes take their time on the wire (10 bits a character at the line's rate; a
pty alone moves them at once). Their lower bound counts every frame's bytes at the rate the
line had when it moved (the 300-baud sign-on costs real time), plus the round trips (the pty
has none: 0 s each) and the meter's reaction time before its optical identification (200 ms,
the minimum tr of IEC 62056-21). A rate sweep's silent rates are the diagnosis itself, like a
silent SNRM on TCP, and sit above the bound by design.

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
    link: str = "tcp"  # serial and optical run over a pty (simulate --pty)


CASES = (
    Case("healthy", "default"),
    Case("wrong address", "serial-derived", options={"serial_number": "12345678"}),
    Case("busy bridge", "default", ("bridge-busy",)),
    Case("wrong password", "default",
         options={"credentials": (parse_credential("mgmt=1:low:99999999"),)}),
    Case("wrapper-only", "default", ("wrapper-only=close",)),
    Case("serial 9600", "default", link="serial"),
    Case("serial 19200", "default", ("line-rate=19200",), link="serial"),
    Case("serial echo", "default", ("echo",), link="serial"),
    Case("optical", "default", link="optical"),
)
OPTICAL_REACTION = 0.2  # IEC 62056-21: minimum reaction time before the identification


def round_trips(session: Session) -> tuple[int, int]:
    """(frames we sent that ask for an answer, TCP connects)."""
    def asks(data: bytes, kind: str) -> bool:
        return kind == "wrapper" or (
            kind == "hdlc" and bool(parse_hdlc(data, 0, "tx").fields.get("poll_final"))
        )

    asking = sum(1 for f in session.frames if f.direction == "tx" and asks(f.data, f.kind))
    connects = sum(1 for c in session.connections if c.failed is None)
    return asking, connects


def line_bound(session: Session) -> tuple[float, float]:
    """(seconds the frames' bytes take at the line's rate when they moved, the meter's
    reaction times a client must wait): the serial lower bound without round trips."""
    changes = sorted((f.at, int(f.data.get("baud") or 0)) for f in session.findings
                     if f.code == "serial.line")
    wire = 0.0
    for frame in session.frames:
        if frame.kind == "echo":
            continue  # an echo moves while our own bytes do
        rate = next((b for at, b in reversed(changes) if at <= frame.at), 0) or 9600
        wire += len(frame.data) * 10 / rate
    reaction = OPTICAL_REACTION if session.target.link == "optical" else 0.0
    return wire, reaction


async def run_serial_case(case: Case, ledger_dir: Path) -> tuple[float, Session]:
    from dlmsdoctor.sim.optical import LineSettings

    line = LineSettings(optical=case.link == "optical")
    async with SimulatedMeter(case.profile, list(case.faults), port=None, serial_device="pty",
                              line=line) as meter:
        assert meter.serial_path is not None
        options = ProbeOptions(meter.serial_path, 0, link=case.link, framing="hdlc",
                               icmp=False, **case.options)  # type: ignore[arg-type]
        start = time.perf_counter()
        result = await probe_and_diagnose(
            options, ledger=LoginLedger(ledger_dir / "ledger.jsonl"), save=False
        )
        elapsed = time.perf_counter() - start
        assert meter.unreleased_associations() == [], case.name
    return elapsed, result.session


async def run_case(case: Case, latency: float, ledger_dir: Path) -> tuple[float, Session]:
    if case.link != "tcp":
        return await run_serial_case(case, ledger_dir)
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
        if case.link != "tcp":
            wire, reaction = line_bound(session)
            bound = wire + reaction  # a pty has no round-trip time: bytes at the rate only
            print(f"{case.name:<16}{verdict:<24}{asking:>7}{connects:>6}{bound:>9.2f}"
                  f"{wall:>8.2f}{wall / bound:>7.2f}{'':>11}  (bytes {wire:.2f} s at the "
                  f"line's rate + reaction {reaction:.1f} s)")
            continue
        print(f"{case.name:<16}{verdict:<24}{asking:>7}{connects:>6}{bound:>9.2f}"
              f"{wall:>8.2f}{wall / bound:>7.2f}{wall / max(asking * rtt, rtt):>11.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05, help="one way, seconds")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.latency))
