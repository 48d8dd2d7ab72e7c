"""A raw-socket client for fault tests: sends exact bytes and reports what came back and how.

Requests are built with dlmsdoctor's HDLC/wrapper builders and gurux-dlms's APDU encoder (the
meter itself is validated against gurux in test_gurux_client.py).
"""

from __future__ import annotations

import socket
import time

from gurux_dlms import GXDLMSClient
from gurux_dlms.enums import Authentication, InterfaceType

from dlmsdoctor.codec import hdlc
from dlmsdoctor.codec.hdlc import ServerAddress

SERVER = ServerAddress(1, 1, 2)


def aarq(client_sap: int = 16, password: str | None = None) -> bytes:
    """An AARQ APDU from gurux's client (no authentication, or LLS with ``password``)."""
    auth = Authentication.LOW if password else Authentication.NONE
    client = GXDLMSClient(True, client_sap, 1, auth, password, InterfaceType.WRAPPER)
    return bytes(client.aarqRequest()[0])[8:]


def snrm(server: ServerAddress = SERVER, client_sap: int = 16) -> bytes:
    return hdlc.build_snrm(server, client_sap)


def i_frame(apdu: bytes, ns: int, nr: int, server: ServerAddress = SERVER,
            client_sap: int = 16) -> bytes:
    return hdlc.build_i(server, client_sap, to_server=True, ns=ns, nr=nr, info=apdu)


class RawClient:
    def __init__(self, port: int, timeout: float = 2.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.received = bytearray()
        self.closed = False

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_for(self, seconds: float) -> bytes:
        """Everything that arrives within ``seconds`` (stops early at a close)."""
        got = bytearray()
        deadline = time.monotonic() + seconds
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                break
            except ConnectionResetError:
                self.closed = True
                break
            if not chunk:
                self.closed = True
                break
            got += chunk
        self.received += got
        return bytes(got)

    def frame(self, timeout: float = 2.0) -> bytes:
        """One complete HDLC frame (leading non-frame bytes are kept in ``received``)."""
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            start = buf.find(b"\x7e")
            if start >= 0:
                end = hdlc.frame_extent(buf, start)
                if end is not None:
                    self.received += buf
                    return bytes(buf[start:end])
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise TimeoutError(f"no complete frame; got {bytes(buf).hex(' ')}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(4096)
            if not chunk:
                self.closed = True
                raise ConnectionError(f"closed; got {bytes(buf).hex(' ')}")
            buf += chunk

    def exchange(self, data: bytes, timeout: float = 2.0) -> bytes:
        self.send(data)
        return self.frame(timeout)

    def wait_closed(self, timeout: float = 2.0) -> bool:
        self.read_for(timeout)
        return self.closed
