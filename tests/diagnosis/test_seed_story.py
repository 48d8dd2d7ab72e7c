"""The seed field report (../shared/seed/ESTADO_MEDIDOR_2.md), replayed for real: a meter whose
HDLC address derives from its serial number, on a serial line behind a real ser2net, while the
site's own poller (a gurux-dlms client) holds the bridge's only connection.

The report's team saw "socket closed", blamed a locked meter and asked for a power cycle. The
probe must say: the poller holds the bridge (not a lockout), and, once the poller is paused,
that the meter answers at the serial-derived address 1/6678, without spending a password.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlmsdoctor.cli.probe_cmd import ProbeExit, probe
from dlmsdoctor.sim.meter import MeterThread, SimulatedMeter
from tests.helpers.ser2net import Ser2net, connected_peer, skip_without_ser2net

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def bridged_meter(tmp_path: Path) -> Iterator[tuple[int, SimulatedMeter]]:
    skip_without_ser2net()
    bridge = Ser2net(tmp_path, tmp_path / "meter")
    with MeterThread("serial-derived", port=None, serial_device=bridge.device) as meter:
        bridge.start(settle=0.3)
        try:
            yield bridge.port, meter
        finally:
            bridge.stop()


def test_seed_story_behind_a_real_ser2net(
    bridged_meter: tuple[int, SimulatedMeter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NO_COLOR", "1")
    port, meter = bridged_meter
    args = [
        f"127.0.0.1:{port}",
        "--no-icmp",
        "--timeout",
        "0.5",
        "--serial-number",
        "12345678",
        "--cred",
        "user2=16:none",
        "--no-save",
    ]
    poller = connected_peer(port, logical=1, physical=6678, address_size=4)
    try:
        held = CliRunner().invoke(probe, args, catch_exceptions=False)
    finally:
        poller.release()
        poller.close()
    assert held.exit_code == ProbeExit.TCP, held.stdout
    assert "Another client holds the bridge's only connection" in held.stdout
    assert "Do not power-cycle the meter or conclude it is locked" in held.stdout

    time.sleep(0.5)  # the poller paused; ser2net frees its port
    free = CliRunner().invoke(probe, [*args, "--json"], catch_exceptions=False)
    doc = json.loads(free.stdout)
    assert free.exit_code == 0, doc["diagnosis"]
    assert doc["diagnosis"]["causes"][0]["code"] == "hdlc.wrong_address"
    assert doc["profile"]["server_physical"] == 6678 and doc["profile"]["address_size"] == 4
    assert meter.failed_logins() == 0
    assert meter.open_associations() == []
