"""The ladder through a real ser2net bridge (the meter on a pseudo-terminal behind it).

Behind a bridge closing TCP does not end the meter's session: the probe must RLRQ and DISC.
A second client gets ser2net's own 'Port already in use' text: the probe retries once, then
reports the busy bridge and spends nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlmsdoctor.config import parse_credential
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.events import StepStatus
from dlmsdoctor.ledger import MemoryLedger

pytestmark = pytest.mark.skipif(shutil.which("ser2net") is None, reason="ser2net not installed")
sim = pytest.importorskip("dlmsdoctor.sim.meter")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = _free_port()
    device = tmp_path / "meter"
    config = tmp_path / "ser2net.yaml"
    config.write_text(
        "connection: &meter\n"
        f"    accepter: tcp,127.0.0.1,{port}\n"
        "    enable: on\n"
        "    options:\n"
        "      kickolduser: false\n"
        "      max-connections: 1\n"
        f"    connector: serialdev,{device},9600n81,local\n"
    )
    yield port, device
    # the process is started by the test once the device exists (ser2net opens it on connect)


async def _start(config_dir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["ser2net", "-n", "-d", "-c", str(config_dir / "ser2net.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("ser2net exited")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await asyncio.sleep(0.3)  # let ser2net finish closing that probe connection
            return proc
        except OSError:
            await asyncio.sleep(0.02)
    raise TimeoutError("ser2net did not listen")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(3)


async def test_probe_through_ser2net_then_busy_when_held(bridge: tuple[int, Path],
                                                         tmp_path: Path) -> None:
    port, device = bridge
    async with sim.SimulatedMeter("default", port=None, serial_device=device) as meter:
        proc = await _start(tmp_path, port)
        try:
            opts = ProbeOptions("127.0.0.1", port, icmp=False, timeout=1.5, busy_retry_wait=0.5,
                                credentials=(parse_credential("mgmt=1:low:00000000"),))
            session = await run_probe(opts, ledger=MemoryLedger())
            steps = {s.id: s.status for s in session.steps}
            assert steps["assoc.public"] is StepStatus.OK, session.step("assoc.public")
            assert steps["assoc.login.mgmt"] is StepStatus.OK
            assert steps["release"] is StepStatus.OK
            assert session.identity.get("serial_number") == "12345678"
            await asyncio.sleep(0.2)
            assert meter.open_associations() == []  # RLRQ and DISC reached the meter

            # Right after our own close the bridge may still be tearing down: one retry.
            again = await run_probe(dataclasses.replace(opts, credentials=()),
                                    ledger=MemoryLedger())
            assert {s.id: s.status for s in again.steps}["cosem.identity"] is StepStatus.OK
            assert "target.busy" not in [f.code for f in again.findings]

            # Another client (the user's poller) holds the bridge's only connection.
            _, holder = await asyncio.open_connection("127.0.0.1", port)
            try:
                await asyncio.sleep(0.2)
                held = await run_probe(ProbeOptions("127.0.0.1", port, icmp=False,
                                                    busy_retry_wait=0.3), ledger=MemoryLedger())
            finally:
                holder.close()
            codes = [f.code for f in held.findings]
            assert "bridge.busy" in codes and "target.busy" in codes
            busy = next(f for f in held.findings if f.code == "bridge.busy")
            assert busy.data["after_retry"] is True
            assert "already in use" in str(busy.data["text"])
            assert [f for f in held.frames if f.direction == "tx"] == []
        finally:
            _stop(proc)
