"""The ladder through a real ser2net bridge (the meter on a pseudo-terminal behind it).

Behind a bridge closing TCP does not end the meter's session: the probe must RLRQ and DISC.
A second client gets ser2net's own 'Port already in use' text: the probe retries once, then
reports the busy bridge and spends nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from dlmsdoctor.config import parse_credential
from dlmsdoctor.engine import ProbeOptions, run_probe
from dlmsdoctor.events import StepStatus
from dlmsdoctor.ledger import MemoryLedger
from tests.helpers.ser2net import INSTALL_HINT, Ser2net, have_ser2net

pytestmark = pytest.mark.skipif(not have_ser2net(), reason=INSTALL_HINT)
sim = pytest.importorskip("dlmsdoctor.sim.meter")


@pytest.fixture
def bridge(tmp_path: Path) -> Ser2net:
    """Not started: ser2net is started by the test once the meter has made the device."""
    return Ser2net(tmp_path, tmp_path / "meter")


async def test_probe_through_ser2net_then_busy_when_held(bridge: Ser2net) -> None:
    port = bridge.port
    async with sim.SimulatedMeter("default", port=None, serial_device=bridge.device) as meter:
        # in a thread: the meter serves the device on this loop meanwhile
        await asyncio.to_thread(bridge.start, 0.3)
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
            bridge.stop()
