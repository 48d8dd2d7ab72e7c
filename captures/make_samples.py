"""Make the curated sample sessions in this folder (session JSON + pcapng for each).

Most samples are real runs: the simulated meter (dlmsdoctor.sim) on 127.0.0.1 with one field
fault, probed by the real ladder exactly as `dlmsdoctor demo --scenario NAME` does, then diagnosed.
``seed-story`` is the hand-built fixture of the tests (tests/output/seed_session.py), labelled so.

    python captures/make_samples.py            # all
    python captures/make_samples.py healthy    # some
    python captures/make_samples.py --rediagnose [NAME...]   # keep the runs, today's verdict

Passwords are masked in both files: the raw AARQ bytes of a session hold the password, so the
frames are masked before the session JSON is written.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIMULATED = ("wrong-address", "busy-bridge", "wrapper-only", "wrong-password", "dm", "healthy")


async def _probe(name: str, ledger_dir: Path) -> object:
    from dlmsdoctor.cli.demo_cmd import SCENARIOS, demo_options
    from dlmsdoctor.ledger import LoginLedger
    from dlmsdoctor.run import probe_and_diagnose
    from dlmsdoctor.sim.meter import SimulatedMeter

    scenario = SCENARIOS[name]
    meter = SimulatedMeter(scenario.profile, list(scenario.faults), host="127.0.0.1", port=0)
    await meter.start()
    try:
        assert meter.port is not None  # a TCP meter (port=0 above), not a serial one
        options = demo_options(scenario, meter.port)
        result = await probe_and_diagnose(
            options, ledger=LoginLedger(ledger_dir / "ledger.jsonl"), save=False
        )
    finally:
        await meter.stop()
    return result.session


def _seed_story_ser2net(tmp: Path) -> object:
    """The seed story for real: the serial-derived meter on a pseudo-terminal behind a real
    ser2net whose only connection another client holds when the probe starts; that client lets
    go during the probe's busy retry, and the probe goes on to find the meter's address."""
    import socket
    import threading
    import time

    from dlmsdoctor.diagnosis import diagnose
    from dlmsdoctor.engine import ProbeOptions, run_probe
    from dlmsdoctor.ledger import MemoryLedger
    from dlmsdoctor.sim.meter import MeterThread
    from tests.helpers.ser2net import INSTALL_HINT, Ser2net, have_ser2net

    if not have_ser2net():
        raise SystemExit(f"seed-story-ser2net needs ser2net: {INSTALL_HINT}")
    bridge = Ser2net(tmp, tmp / "meter")
    with MeterThread("serial-derived", port=None, serial_device=bridge.device):
        bridge.start(settle=0.3)  # once ser2net has closed its listening check's connection
        try:
            holder = socket.create_connection(("127.0.0.1", bridge.port), timeout=1)
            time.sleep(0.5)  # the holder (the site's poller) has the bridge

            threading.Timer(0.6, holder.close).start()  # ... and lets go during our retry
            options = ProbeOptions("127.0.0.1", bridge.port, icmp=False, timeout=0.6,
                                   serial_number="12345678", busy_retry_wait=1.5)
            session = asyncio.run(run_probe(options, ledger=MemoryLedger()))
            session.diagnosis = diagnose(session)
            return session
        finally:
            bridge.stop()


def write_sample(name: str, session: object) -> None:
    from dlmsdoctor.output.capture import write_capture
    from dlmsdoctor.session import Session

    assert isinstance(session, Session)
    # A Session keeps raw frames, and an AARQ's raw bytes hold the password: mask them here
    # too, so that neither file of a sample carries a secret.
    from dlmsdoctor.output.report_frames import annotate

    for frame in session.frames:
        frame.data = annotate(frame).data
    (HERE / f"{name}.session.json").write_text(session.dumps() + "\n", encoding="utf-8")
    stats = write_capture(session, HERE / f"{name}.pcapng")
    causes = session.diagnosis.causes if session.diagnosis else []
    top = causes[0].code if causes else "-"
    status = session.diagnosis.status if session.diagnosis else "-"
    print(f"{name}: {len(session.frames)} frames, {stats.packets} packets, {status}, top {top}")


def rediagnose(names: list[str]) -> None:
    """Today's diagnosis over the recorded runs (same frames, times and ports): both files of
    each sample rewritten with the new verdict and the settled steps."""
    from dlmsdoctor.diagnosis import apply
    from dlmsdoctor.session import Session

    wanted = names or sorted(p.name.removesuffix(".session.json")
                             for p in HERE.glob("*.session.json"))
    for name in wanted:
        session = Session.loads((HERE / f"{name}.session.json").read_text(encoding="utf-8"))
        apply(session)
        write_sample(name, session)


def main(names: list[str]) -> None:
    sys.path.insert(0, str(HERE.parent))
    if names[:1] == ["--rediagnose"]:
        rediagnose(names[1:])
        return
    wanted = names or [*SIMULATED, "seed-story-ser2net", "seed-story"]
    for name in wanted:
        if name == "seed-story":
            from tests.output.seed_session import seed_session

            write_sample(name, seed_session())
            continue
        if name == "seed-story-ser2net":
            with tempfile.TemporaryDirectory() as tmp:
                write_sample(name, _seed_story_ser2net(Path(tmp)))
            continue
        with tempfile.TemporaryDirectory() as tmp:
            write_sample(name, asyncio.run(_probe(name, Path(tmp))))


if __name__ == "__main__":
    main(sys.argv[1:])
