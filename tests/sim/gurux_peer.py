"""A gurux-dlms client driven over a real socket: the independent check of the simulated meter.

It uses only gurux-dlms (not dlmsdoctor's codec or probes), so a bug shared by the meter and
dlmsdoctor's client side cannot hide.
"""

from __future__ import annotations

import socket
from typing import Any

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXDLMSException, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.secure import GXDLMSSecureClient


class GuruxPeer:
    def __init__(
        self,
        port: int,
        *,
        client_sap: int = 16,
        authentication: int = Authentication.NONE,
        password: str | None = None,
        wrapper: bool = False,
        logical: int = 1,
        physical: int = 1,
        address_size: int = 2,
        timeout: float = 3.0,
        hls_keys: tuple[bytes, bytes, bytes] | None = None,
    ) -> None:
        """``hls_keys``: (client system title, block cipher key, authentication key) for
        HLS-GMAC; the APDUs themselves stay unciphered (security NONE)."""
        if wrapper or address_size == 1:
            server = logical
        else:
            server = GXDLMSClient.getServerAddress(logical, physical, address_size)
        kind = GXDLMSSecureClient if hls_keys else GXDLMSClient
        self.client = kind(
            True, client_sap, server, authentication, password,
            InterfaceType.WRAPPER if wrapper else InterfaceType.HDLC,
        )
        if hls_keys:
            cipher = self.client.ciphering
            cipher.systemTitle, cipher.blockCipherKey, cipher.authenticationKey = hls_keys
            cipher.security = Security.NONE
        if not wrapper:
            self.client.serverAddressSize = address_size
        self.wrapper = wrapper
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.received = bytearray()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> GuruxPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _packet(self, data: Any, reply: GXReplyData) -> None:
        if data is not None:
            self.sock.sendall(bytes(data))
        buff = GXByteBuffer()
        while not self.client.getData(buff, reply, None):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("meter closed the connection")
            self.received += chunk
            buff.set(chunk)

    def exchange(self, frames: Any) -> GXReplyData:
        if frames is None:
            return GXReplyData()
        if not isinstance(frames, list):
            frames = [frames]
        reply = GXReplyData()
        for frame in frames:
            reply.clear()
            self._packet(frame, reply)
            while reply.isMoreData():
                self._packet(self.client.receiverReady(reply), reply)
            if reply.error:
                # as gurux's own GXDLMSReader does: a Data-Access-Result becomes an exception
                raise GXDLMSException(reply.error)
        return reply

    def connect(self) -> None:
        if not self.wrapper:
            reply = self.exchange(self.client.snrmRequest())
            self.client.parseUAResponse(reply.data)
        reply = self.exchange(self.client.aarqRequest())
        self.client.parseAareResponse(reply.data)
        if self.client.getIsAuthenticationRequired():
            reply = self.exchange(self.client.getApplicationAssociationRequest())
            self.client.parseApplicationAssociationResponse(reply.data)

    def read(self, obj: Any, attribute: int) -> Any:
        reply = self.exchange(self.client.read(obj, attribute))
        self.client.updateValue(obj, attribute, reply.value)
        return reply.value

    def release(self) -> None:
        self.exchange(self.client.releaseRequest())
        if not self.wrapper:
            self.exchange(self.client.disconnectRequest())
