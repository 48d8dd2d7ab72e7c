"""A real ser2net bridge in front of a simulated meter's pseudo-terminal, for tests and samples.

One TCP port on 127.0.0.1, one serial device, at most one client at a time and no kicking of the
holder: the setup field bridges run, so a second client gets ser2net's own 'Port already in use'.
ser2net opens the device only when a client connects, so the meter (which creates the device)
may start before or after the bridge.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.sim.gurux_peer import GuruxPeer

INSTALL_HINT = "ser2net is not installed (apt-get install ser2net; .ci/run installs it)"


def have_ser2net() -> bool:
    return shutil.which("ser2net") is not None


def skip_without_ser2net() -> None:
    import pytest

    if not have_ser2net():
        pytest.skip(INSTALL_HINT)


def free_port() -> int:
    """A loopback port nothing listens on now (ser2net takes its port from its config file)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate, and kill what does not go within 3 s."""
    proc.terminate()
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(3)


class Ser2net:
    """``with Ser2net(workdir, device) as bridge:`` listens on ``bridge.port`` until the block
    ends. Its log goes to a file in ``workdir`` (a pipe nobody reads could fill and stall it)."""

    def __init__(self, workdir: Path, device: Path) -> None:
        self.port = free_port()
        self.device = device
        self.config = workdir / "ser2net.yaml"
        self.log = workdir / "ser2net.log"
        self.config.write_text(
            "connection: &meter\n"
            f"    accepter: tcp,127.0.0.1,{self.port}\n"
            "    enable: on\n"
            "    options:\n"
            "      kickolduser: false\n"
            "      max-connections: 1\n"
            f"    connector: serialdev,{device},9600n81,local\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, settle: float = 0.0, timeout: float = 5.0) -> None:
        """Start ser2net and return once it accepts connections. The check opens (and closes)
        one connection; ``settle`` seconds give ser2net time to tear it down, or the next
        client may be told 'Port already in use'."""
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                ["ser2net", "-n", "-d", "-c", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            self._wait_listening(timeout)
        except BaseException:
            self.stop()
            raise
        time.sleep(settle)

    def _wait_listening(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ser2net exited: {self.log.read_text(errors='replace')!r}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"ser2net does not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> Ser2net:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def connected_peer(port: int, **peer_options: Any) -> GuruxPeer:
    """A gurux client associated through the bridge. ser2net may still be closing an earlier
    connection (it then answers 'Port already in use' and closes): retry for up to 2 s."""
    from tests.sim.gurux_peer import GuruxPeer

    for _ in range(40):
        peer = GuruxPeer(port, **peer_options)
        try:
            peer.connect()
            return peer
        except ConnectionError:
            peer.close()
            time.sleep(0.05)
    raise TimeoutError("the bridge stayed busy")
