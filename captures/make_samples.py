"""Make the curated sample sessions in this folder (session JSON + pcapng for each).

Most samples are real runs: the simulated meter (dlmsdoctor.sim) on 127.0.0.1 with one field
fault, probed by the real ladder exactly as `dlmsdoctor demo --scenario NAME` does, then diagnosed.
``seed-story`` is the hand-built fixture of the tests (tests/output/seed_session.py), labelled so.

    python captures/make_samples.py            # all
    python captures/make_samples.py healthy    # some

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
        options = demo_options(scenario, int(meter.port))
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
    import shutil
    import socket
    import subprocess
    import threading
    import time

    from dlmsdoctor.diagnosis import diagnose
    from dlmsdoctor.engine import ProbeOptions, run_probe
    from dlmsdoctor.ledger import MemoryLedger
    from dlmsdoctor.sim.meter import MeterThread

    if shutil.which("ser2net") is None:
        raise SystemExit("seed-story-ser2net needs ser2net (apt-get install ser2net)")
    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = int(probe_port.getsockname()[1])
    device = tmp / "meter"
    config = tmp / "ser2net.yaml"
    config.write_text(
        "connection: &meter\n"
        f"    accepter: tcp,127.0.0.1,{port}\n"
        "    enable: on\n"
        "    options:\n"
        "      kickolduser: false\n"
        "      max-connections: 1\n"
        f"    connector: serialdev,{device},9600n81,local\n"
    )
    with MeterThread("serial-derived", port=None, serial_device=device):
        bridge = subprocess.Popen(["ser2net", "-n", "-d", "-c", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            holder = None
            for _ in range(200):
                try:
                    holder = socket.create_connection(("127.0.0.1", port), timeout=1)
                    break
                except OSError:
                    time.sleep(0.025)
            assert holder is not None, "ser2net did not listen"
            time.sleep(0.5)  # the holder (the site's poller) has the bridge

            threading.Timer(0.6, holder.close).start()  # ... and lets go during our retry
            options = ProbeOptions("127.0.0.1", port, icmp=False, timeout=0.6,
                                   serial_number="12345678", busy_retry_wait=1.5)
            session = asyncio.run(run_probe(options, ledger=MemoryLedger()))
            session.diagnosis = diagnose(session)
            return session
        finally:
            bridge.terminate()
            bridge.wait(5)


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


def main(names: list[str]) -> None:
    sys.path.insert(0, str(HERE.parent))
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
