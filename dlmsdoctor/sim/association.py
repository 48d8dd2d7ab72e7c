"""The meter's application layer: AARQ/AARE, GET (normal and block transfer), ACTION for
HLS-GMAC, RLRQ/RLRE. Sans-I/O: ``handle(apdu)`` returns the reply APDU or None.

Lockout and login accounting live in ``MeterCore`` (shared by every connection of a meter);
this object holds one link's association.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass

from dlmsdoctor.gx import server as gx
from dlmsdoctor.sim.events import EventLog
from dlmsdoctor.sim.faults import Faults
from dlmsdoctor.sim.objects import AssociationView, CosemObject, build_objects
from dlmsdoctor.sim.profile import AUTH_HLS_GMAC, AUTH_LOW, AUTH_NONE, Profile

_CURRENT_ASSOCIATION = bytes([0, 0, 40, 0, 0, 255])


class MeterCore:
    """State shared by all connections of one meter: objects, logins, lockout, sessions."""

    def __init__(self, profile: Profile, faults: Faults, log: EventLog) -> None:
        self.profile = profile
        self.faults = faults
        self.log = log
        self.objects: list[CosemObject] = build_objects(profile)
        self.failed_in_a_row = 0
        self.locked_until = 0.0
        self.invocation_counter = 0x100
        self.active_connections: set[int] = set()
        self._next_conn = 1

    def new_connection_id(self) -> int:
        conn = self._next_conn
        self._next_conn += 1
        return conn

    @property
    def lockout_rule(self) -> tuple[int, float] | None:
        if self.faults.lockout is not None:
            return self.faults.lockout
        if self.profile.lockout_failed_logins > 0:
            return self.profile.lockout_failed_logins, self.profile.lockout_seconds
        return None

    def is_locked(self) -> bool:
        if self.locked_until and time.monotonic() >= self.locked_until:
            self.locked_until = 0.0
            self.failed_in_a_row = 0
            self.log.emit("lockout", state="unlocked", failed_logins=0, seconds=0)
        return self.locked_until > 0.0

    def login_failed(self) -> None:
        self.failed_in_a_row += 1
        rule = self.lockout_rule
        if rule is not None and not self.is_locked() and self.failed_in_a_row >= rule[0]:
            self.locked_until = time.monotonic() + rule[1]
            self.log.emit("lockout", state="locked", failed_logins=self.failed_in_a_row,
                          seconds=rule[1])
            # Log the unlock when it happens, not at the next login attempt (when a loop runs).
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_later(rule[1] + 0.01, self.is_locked)

    def login_succeeded(self) -> None:
        self.failed_in_a_row = 0

    def find(self, class_id: int, obis: bytes) -> tuple[CosemObject | None, bool]:
        """(object, class matches) for a GET/ACTION descriptor."""
        for obj in self.objects:
            if obj.obis == obis:
                return obj, obj.class_id == class_id
        return None, False


@dataclass
class _Pending:
    """A GET reply being sent in blocks (block transfer with GET)."""

    invoke_id: int
    data: bytes
    block_size: int
    next_block: int = 1
    sent: int = 0


class Association:
    """One client's association over one link (TCP connection or serial link session)."""

    def __init__(self, core: MeterCore, conn: int | None) -> None:
        self.core = core
        self.conn = conn
        self.client_sap: int | None = None
        self.open = False
        self.hls_pending = False
        self.mechanism = 0
        self.conformance = 0
        self.client_max_pdu = 0
        self._client_title: bytes | None = None
        self._ctos: bytes | None = None
        self._stoc: bytes | None = None
        self._pending: _Pending | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    def end(self, how: str, released: bool) -> None:
        """The link went away (DISC, SNRM, close): release or drop the association."""
        if self.open or self.hls_pending:
            event = "association.released" if released else "association.dropped"
            self.core.log.emit(event, self.conn, client_sap=self.client_sap, how=how)
        self.open = False
        self.hls_pending = False
        self._pending = None

    # ---- dispatch -------------------------------------------------------------------------

    def handle(self, apdu: bytes, client_sap: int) -> bytes | None:
        if not apdu:
            return None
        tag = apdu[0]
        if tag == gx.TAG_AARQ:
            return self._aarq(apdu, client_sap)
        if tag == gx.TAG_RLRQ:
            return self._rlrq()
        if not self.open and not (self.hls_pending and tag == gx.TAG_ACTION_REQUEST):
            # No association: never serve data (gurux's server does, a real meter does not).
            return gx.build_exception_response(1, 1)
        if tag == gx.TAG_GET_REQUEST:
            return self._get(apdu)
        if tag == gx.TAG_ACTION_REQUEST:
            return self._action(apdu)
        if tag == gx.TAG_SET_REQUEST and len(apdu) >= 3:
            return bytes([0xC5, 0x01, apdu[2], int(gx.DataAccessResult.READ_WRITE_DENIED)])
        return gx.build_exception_response(2, 2)

    # ---- AARQ ----------------------------------------------------------------------------

    def _aarq(self, apdu: bytes, client_sap: int) -> bytes:
        core, profile = self.core, self.core.profile
        if self.open or self.hls_pending:
            self.end("aarq", released=True)
        info = gx.decode_aarq(apdu)
        client = profile.client(client_sap)
        diagnostic = gx.AcseUserDiagnostic.NULL
        reason = ""
        count_as_failure = False
        wanted_context = 1 if profile.logical_name_referencing else 2
        if not info.well_formed:
            diagnostic, reason = gx.AcseUserDiagnostic.NO_REASON_GIVEN, info.problem
        elif info.application_context != wanted_context:
            diagnostic = gx.AcseUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED
            reason = f"application context {info.application_context} (meter uses {wanted_context})"
        elif client is None:
            diagnostic, reason = gx.AcseUserDiagnostic.NO_REASON_GIVEN, "unknown client SAP"
        elif client.mechanism != info.mechanism:
            if info.mechanism == 0:
                diagnostic = gx.AcseUserDiagnostic.AUTHENTICATION_REQUIRED
            else:
                diagnostic = gx.AcseUserDiagnostic.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED
            reason = f"client {client_sap} uses {client.auth}, got mechanism {info.mechanism}"
        elif client.auth != AUTH_NONE and core.is_locked():
            diagnostic, reason = gx.AcseUserDiagnostic.AUTHENTICATION_FAILURE, "locked out"
        elif client.auth == AUTH_LOW and info.secret != client.password:
            diagnostic, reason = gx.AcseUserDiagnostic.AUTHENTICATION_FAILURE, "wrong password"
            count_as_failure = True
        elif client.auth == AUTH_HLS_GMAC and (
            info.calling_ap_title is None or len(info.calling_ap_title) != 8 or not info.secret
        ):
            diagnostic = gx.AcseUserDiagnostic.CALLING_AP_TITLE_NOT_RECOGNIZED
            reason = "HLS-GMAC needs an 8-byte calling-AP-title and a challenge"
        negotiated = info.proposed_conformance & gx.SERVER_CONFORMANCE
        rejected = diagnostic != gx.AcseUserDiagnostic.NULL
        if rejected:
            if count_as_failure:
                core.login_failed()
            core.log.emit("login", self.conn, client_sap=client_sap, mechanism=info.mechanism,
                          outcome="rejected", diagnostic=int(diagnostic), reason=reason)
            return gx.build_aare(
                result=gx.AcseResult.REJECTED_PERMANENT,
                diagnostic=diagnostic,
                logical_name_referencing=profile.logical_name_referencing,
                mechanism=min(info.mechanism, 1),
                negotiated_conformance=negotiated,
                server_max_pdu=profile.max_pdu_size,
            )
        assert client is not None
        self.client_sap = client_sap
        self.mechanism = info.mechanism
        self.conformance = negotiated
        self.client_max_pdu = info.client_max_pdu or 0xFFFF
        if client.auth == AUTH_HLS_GMAC:
            self.hls_pending = True
            self._client_title = info.calling_ap_title
            self._ctos = info.secret
            self._stoc = os.urandom(16)
            core.log.emit("login", self.conn, client_sap=client_sap, mechanism=info.mechanism,
                          outcome="pending", diagnostic=14, reason="HLS pass 3/4 expected")
            return gx.build_aare(
                result=gx.AcseResult.ACCEPTED,
                diagnostic=gx.AcseUserDiagnostic.AUTHENTICATION_REQUIRED,
                logical_name_referencing=profile.logical_name_referencing,
                mechanism=info.mechanism,
                negotiated_conformance=negotiated,
                server_max_pdu=profile.max_pdu_size,
                server_system_title=profile.system_title,
                stoc_challenge=self._stoc,
            )
        if info.mechanism != 0:
            # Only a right password clears the failure count: a public (no authentication)
            # association proves nothing about the passwords a poller keeps getting wrong.
            core.login_succeeded()
        self.open = True
        core.log.emit("login", self.conn, client_sap=client_sap, mechanism=info.mechanism,
                      outcome="accepted", diagnostic=0, reason="")
        core.log.emit("association.opened", self.conn, client_sap=client_sap,
                      mechanism=info.mechanism)
        return gx.build_aare(
            result=gx.AcseResult.ACCEPTED,
            diagnostic=gx.AcseUserDiagnostic.NULL,
            logical_name_referencing=profile.logical_name_referencing,
            mechanism=info.mechanism,
            negotiated_conformance=negotiated,
            server_max_pdu=profile.max_pdu_size,
        )

    def _rlrq(self) -> bytes:
        self.end("rlrq", released=True)
        return gx.build_rlre(0)

    # ---- GET -----------------------------------------------------------------------------

    def _view(self) -> AssociationView:
        return AssociationView(
            client_sap=self.client_sap or 0,
            mechanism=self.mechanism,
            conformance=self.conformance,
            client_max_pdu=self.client_max_pdu,
            server_max_pdu=self.core.profile.max_pdu_size,
            server_sap=self.core.profile.server_logical,
            invocation_counter=self.core.invocation_counter,
        )

    def _get(self, apdu: bytes) -> bytes:
        request = gx.decode_get_request(apdu)
        if request is None:
            return gx.build_exception_response(2, 3)
        if request.kind == 2:
            return self._next_block(request)
        if request.kind != 1 or request.attribute is None:
            return gx.build_exception_response(2, 2)  # GET with list: not served
        self._pending = None
        ref = request.attribute
        obj, class_ok = self.core.find(ref.class_id, ref.obis)
        result: bytes | gx.DataAccessResult
        if obj is None:
            result = gx.DataAccessResult.OBJECT_UNDEFINED
        elif not class_ok:
            result = gx.DataAccessResult.OBJECT_CLASS_INCONSISTENT
        elif ref.attribute not in obj.attributes:
            result = gx.DataAccessResult.OBJECT_UNDEFINED
        else:
            value = obj.attributes[ref.attribute](self._view())
            result = value if isinstance(value, gx.DataAccessResult) else gx.encode_data(value)
        self.core.log.emit(
            "get", self.conn, class_id=ref.class_id, obis=ref.obis_text, attribute=ref.attribute,
            result="data" if isinstance(result, bytes) else result.name.lower(),
        )
        reply = gx.build_get_response_normal(request.invoke_id, result)
        limit = min(self.client_max_pdu, self.core.profile.max_pdu_size)
        if len(reply) <= limit or not isinstance(result, bytes):
            return reply
        if not self.conformance & gx.CONFORMANCE_BLOCK_TRANSFER_WITH_GET:
            return gx.build_get_response_normal(
                request.invoke_id, gx.DataAccessResult.OTHER_REASON
            )
        # Block header: C4 02 invoke last block(4) result raw-data length (up to 3 bytes).
        self._pending = _Pending(request.invoke_id, result, block_size=max(limit - 13, 16))
        return self._send_block()

    def _send_block(self) -> bytes:
        pending = self._pending
        assert pending is not None
        chunk = pending.data[pending.sent : pending.sent + pending.block_size]
        pending.sent += len(chunk)
        last = pending.sent >= len(pending.data)
        reply = gx.build_get_response_block(pending.invoke_id, pending.next_block, last, chunk)
        pending.next_block += 1
        if last:
            self._pending = None
        return reply

    def _next_block(self, request: gx.GetRequest) -> bytes:
        pending = self._pending
        if pending is None:
            return gx.build_get_response_block(
                request.invoke_id, request.block_number or 0, True,
                gx.DataAccessResult.NO_LONG_GET_IN_PROGRESS,
            )
        if request.block_number != pending.next_block - 1:
            self._pending = None
            return gx.build_get_response_block(
                request.invoke_id, request.block_number or 0, True,
                gx.DataAccessResult.DATA_BLOCK_UNAVAILABLE,
            )
        return self._send_block()

    # ---- ACTION (HLS pass 3/4) -------------------------------------------------------------

    def _action(self, apdu: bytes) -> bytes:
        request = gx.decode_action_request(apdu)
        if request is None:
            return gx.build_exception_response(2, 3)
        if not (self.hls_pending and request.obis == _CURRENT_ASSOCIATION and request.method == 1):
            if self.hls_pending:
                return gx.build_exception_response(1, 1)
            obj, _ = self.core.find(request.class_id, request.obis)
            # Methods are listed but not executed: read-write-denied (3) or object-undefined (4).
            return gx.build_action_response(request.invoke_id, 3 if obj is not None else 4)
        keys = self.core.profile.hls_keys
        reply = gx.octet_string_value(request.parameter or b"")
        ok = (
            keys is not None
            and reply is not None
            and self._client_title is not None
            and self._stoc is not None
            and gx.verify_hls_gmac(reply, self._client_title, keys.authentication_key,
                                   keys.block_cipher_key, self._stoc)
        )
        if not ok or keys is None or self._ctos is None:
            self.hls_pending = False
            self.core.login_failed()
            self.core.log.emit("login", self.conn, client_sap=self.client_sap,
                               mechanism=self.mechanism, outcome="rejected", diagnostic=13,
                               reason="HLS-GMAC reply does not verify")
            # read-write-denied: the association stays closed
            return gx.build_action_response(request.invoke_id, 3)
        self.hls_pending = False
        self.open = True
        self.core.login_succeeded()
        self.core.invocation_counter += 1
        answer = gx.hls_gmac_reply(
            self.core.profile.system_title, self.core.invocation_counter,
            keys.authentication_key, keys.block_cipher_key, self._ctos,
        )
        self.core.log.emit("login", self.conn, client_sap=self.client_sap,
                           mechanism=self.mechanism, outcome="accepted", diagnostic=0, reason="")
        self.core.log.emit("association.opened", self.conn, client_sap=self.client_sap,
                           mechanism=self.mechanism)
        return gx.build_action_response(
            request.invoke_id, 0, gx.encode_data(gx.CosemData("octet-string", answer))
        )
