"""The seed field report (../shared/seed/ESTADO_MEDIDOR_2.md), replayed for real: a meter whose
HDLC address derives from its serial number, on a serial line behind a real ser2net, while the
site's own poller (a gurux-dlms client) holds the bridge's only connection.

The report's team saw "socket closed", blamed a locked meter and asked for a power cycle. The
probe must say: the poller holds the bridge (not a lockout), and, once the poller is paused,
that the meter answers at the serial-derived address 1/6678, without spending a password.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlmsdoctor.cli.probe_cmd import ProbeExit, probe
from dlmsdoctor.sim.meter import MeterThread

pytestmark = pytest.mark.timeout(90)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("ser2net exited")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {port}")


@pytest.fixture
def bridged_meter(tmp_path: Path) -> Iterator[tuple[int, object]]:
    if shutil.which("ser2net") is None:
        pytest.skip("ser2net is not installed (apt-get install ser2net; .ci/run installs it)")
    device = tmp_path / "meter"
    port = _free_port()
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
    with MeterThread("serial-derived", port=None, serial_device=device) as meter:
        proc = subprocess.Popen(
            ["ser2net", "-n", "-d", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_listening(port, proc)
            time.sleep(0.3)  # let ser2net finish tearing down the probe connection
            yield port, meter
        finally:
            proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(3)


def test_seed_story_behind_a_real_ser2net(
    bridged_meter: tuple[int, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.sim.gurux_peer import GuruxPeer

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
    poller = GuruxPeer(port, logical=1, physical=6678, address_size=4)
    for _ in range(40):  # ser2net may still be closing the listening check's connection
        try:
            poller.connect()
            break
        except ConnectionError:
            poller.close()
            poller = GuruxPeer(port, logical=1, physical=6678, address_size=4)
            time.sleep(0.05)
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
    import json

    doc = json.loads(free.stdout)
    assert free.exit_code == 0, doc["diagnosis"]
    assert doc["diagnosis"]["causes"][0]["code"] == "hdlc.wrong_address"
    assert doc["profile"]["server_physical"] == 6678 and doc["profile"]["address_size"] == 4
    assert meter.failed_logins() == 0  # type: ignore[attr-defined]
    assert meter.open_associations() == []  # type: ignore[attr-defined]
