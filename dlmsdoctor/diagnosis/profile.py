"""The working connection profile: settings proven by an accepted association, in the forms the
common clients take (gurux example client arguments, a dlmsdoctor TOML target)."""

from __future__ import annotations

from typing import Any

from dlmsdoctor.codec.model import FrameKind
from dlmsdoctor.diagnosis.facts import TAG_AARE, SessionFacts
from dlmsdoctor.diagnosis.serial_facts import gurux_serial, line_args
from dlmsdoctor.session import ConnectionProfile

_GURUX_AUTH = {"none": "None", "low": "Low", "high": "High", "gmac": "HighGMAC"}


def build_profile(f: SessionFacts) -> ConnectionProfile | None:
    """From the first accepted association: framing, server address, client, authentication."""
    accepted = [x for x in f.logins if x.outcome == "accepted"]
    if not accepted:
        return None
    # the user's own credential sets first: that is what their poller will use
    login = next((x for x in accepted if x.mechanism != "none"), accepted[0])
    conn_id = _login_conn(f, login.step_id, login.at)
    conn = next((c for c in f.connections if c.id == conn_id), None)
    frames = conn.frames if conn is not None else f.frames
    target = f.session.target
    host = target.host
    port = conn.record.port if conn is not None and conn.record.port else target.port
    max_pdu = _max_pdu(f, login.step_id)
    aare = [x for x in frames if not x.tx and x.apdu_tag == TAG_AARE]
    if (aare and aare[0].kind == FrameKind.WRAPPER) or (
        not any(x.kind == FrameKind.HDLC for x in frames)
        and any(x.kind == FrameKind.WRAPPER for x in frames)
    ):
        wrapped = aare[0] if aare else next(x for x in frames if x.kind == FrameKind.WRAPPER)
        logical = 1
        if wrapped.wports is not None:  # the server's wPort: source of RX, destination of TX
            logical = wrapped.wports[1] if wrapped.tx else wrapped.wports[0]
        return ConnectionProfile(
            host=host,
            port=port,
            framing="wrapper",
            server_logical=logical,
            server_physical=None,
            address_size=0,  # the wrapper has wPorts, no HDLC address: 0 = not applicable
            client_sap=login.client_sap,
            authentication=login.mechanism,
            credential=login.credential,
            max_pdu_size=max_pdu,
        )
    ua = next((x for x in frames if not x.tx and x.hdlc_type == "UA" and x.server), None)
    if ua is None or ua.server is None:
        return None
    params = ua.params or {}
    return ConnectionProfile(
        host=host,
        port=port,
        framing="hdlc",
        server_logical=int(ua.server.get("logical") or 0),
        server_physical=ua.server.get("physical"),
        address_size=int(ua.server.get("size") or 1),
        client_sap=login.client_sap,
        authentication=login.mechanism,
        credential=login.credential,
        max_info_tx=_int(params.get("max_info_tx")),
        max_info_rx=_int(params.get("max_info_rx")),
        window_tx=_int(params.get("window_tx")),
        window_rx=_int(params.get("window_rx")),
        max_pdu_size=max_pdu,
    )


def _login_conn(f: SessionFacts, step_id: str, at: float) -> int | None:
    """The connection that carried this login's AARE.

    A step may span connections (framing detection closes on HDLC, then the wrapper answers on
    a new connection): the step's first frame is not the login's, its last AARE up to the
    login's time is."""
    step_frames = [x for x in f.frames if x.record.step_id == step_id]
    aares = [x for x in step_frames if not x.tx and x.apdu_tag == TAG_AARE]
    before = [x for x in aares if x.at <= at + 1e-6] or aares
    if before:
        return before[-1].record.conn_id
    return step_frames[-1].record.conn_id if step_frames else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _max_pdu(f: SessionFacts, step_id: str) -> int | None:
    for pf in f.findings("assoc.accepted"):
        if pf.step_id == step_id and _int(pf.data.get("max_pdu_size")) is not None:
            return _int(pf.data.get("max_pdu_size"))
    step = f.session.step(step_id)
    return _int(step.details.get("max_pdu_size")) if step is not None else None


def server_text(profile: ConnectionProfile) -> str:
    if profile.framing == "wrapper":
        return f"wrapper, server wPort {profile.server_logical}"
    return f"HDLC server {server_address(profile)} ({profile.address_size}-byte)"


def server_address(profile: ConnectionProfile) -> str:
    """The HDLC server address as --server-address and the config take it: LOGICAL[/PHYSICAL]."""
    if profile.server_physical is None:
        return f"{profile.server_logical}"
    return f"{profile.server_logical}/{profile.server_physical}"


def gurux_args(profile: ConnectionProfile) -> str:
    """Arguments for Gurux's example clients (Gurux.DLMS.Client.Example.python and ports):
    -h host -p port -c client -s physical -l logical -a auth [-P password] [-i WRAPPER]."""
    parts = [f"-h {profile.host}", f"-p {profile.port}", f"-c {profile.client_sap}"]
    if profile.link != "tcp":  # a serial line: -S PORT:BAUD:8None1 (serial_facts.py)
        parts = [*gurux_serial(profile), f"-c {profile.client_sap}"]
    if profile.framing == "wrapper":
        parts += [f"-s {profile.server_logical}", "-i WRAPPER"]
    else:
        parts += [
            f"-s {profile.server_physical if profile.server_physical is not None else 1}",
            f"-l {profile.server_logical}",
        ]
    parts.append(f"-a {_GURUX_AUTH.get(profile.authentication, profile.authentication)}")
    if profile.authentication != "none":
        parts.append(f"-P <password of {profile.credential or 'this client'}>")
    return " ".join(parts)


def toml_snippet(profile: ConnectionProfile, name: str = "meter") -> str:
    """A dlmsdoctor config target that reproduces this profile, in the keys ``config.py`` reads
    (credential sets by name: their secrets stay in ``[credentials.NAME]``). A serial line,
    an optical head or an RFC 2217 bridge is written by ``config_write.target_table``: device
    (or the bridge's URL), the rate and format that answered, ``optical = true``."""
    if profile.link != "tcp":
        return _serial_snippet(profile, name)
    from dlmsdoctor.config import toml_key, toml_string

    lines = [
        f"[targets.{toml_key(name)}]",  # a name with a dot must not open a nested table
        f"host = {toml_string(profile.host)}",
        f"port = {profile.port}",
        f'framing = "{profile.framing}"',
    ]
    if profile.framing == "hdlc":
        lines += [f'server_address = "{server_address(profile)}"',
                  f"address_size = {profile.address_size}"]
    if profile.authentication != "none" and profile.credential:
        # the public client (16, no authentication) is always tried: only a set needs naming
        lines.append(f'credentials = ["{profile.credential}"]'
                     f"  # [credentials.{profile.credential}]: client_sap = {profile.client_sap},"
                     f' auth = "{profile.authentication}"')
    return "\n".join(lines) + "\n"


def _serial_snippet(profile: ConnectionProfile, name: str) -> str:
    from dlmsdoctor.config import TargetConfig
    from dlmsdoctor.config_write import target_table

    named = profile.authentication != "none" and profile.credential
    target = TargetConfig(
        name=name,
        host=profile.device or profile.host,
        port=0,
        server_address=server_address(profile),
        address_size=profile.address_size,
        credentials=(profile.credential,) if named and profile.credential else (),
        link=profile.link,
        baud=str(profile.baud) if profile.baud else None,
        # an optical head signs on at 7E1 and switches to 8N1 by the standard: no format
        serial_format=profile.format if profile.link != "optical" else None,
    )
    notes = {"credentials": f"[credentials.{profile.credential}]: client_sap = "
             f'{profile.client_sap}, auth = "{profile.authentication}"'} if named else {}
    return target_table(target, notes)


def profile_forms(profile: ConnectionProfile) -> dict[str, Any]:
    return {
        "summary": f"{server_text(profile)}, client {profile.client_sap}, "
        f"authentication {profile.authentication}",
        "gurux_args": gurux_args(profile),
        "toml": toml_snippet(profile),
        "dlmsdoctor_args": dlmsdoctor_args(profile),
    }


def dlmsdoctor_args(profile: ConnectionProfile) -> str:
    parts = [f"{profile.host}:{profile.port}", f"--framing {profile.framing}"]
    if profile.link != "tcp":
        parts = [profile.device or profile.host, *line_args(profile)]
    if profile.framing == "hdlc":
        parts += [f"--server-address {server_address(profile)}",
                  f"--address-size {profile.address_size}"]
    return "dlmsdoctor probe " + " ".join(parts)
