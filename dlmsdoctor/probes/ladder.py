"""The default plan: the rungs in order, one login rung per credential set, release last.

On a serial line (``ProbeOptions.link`` serial, optical, rfc2217) the network rungs (ICMP, TCP,
framing detection) give way to the line rungs: ``serial.line`` (open, rate sweep) and, for an
optical head, ``optical.mode_e`` (the IEC 62056-21 handshake); the HDLC rungs then need the last
line rung where they need ``tcp.connect`` on TCP. A serial line carries HDLC only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlmsdoctor.probes.address import AddressProbe
from dlmsdoctor.probes.association import LoginProbe, PublicAssociationProbe
from dlmsdoctor.probes.base import Probe
from dlmsdoctor.probes.cosem import IdentityProbe
from dlmsdoctor.probes.framing import FramingProbe
from dlmsdoctor.probes.hdlc import DiscFirstProbe, SnrmProbe
from dlmsdoctor.probes.icmp import IcmpProbe
from dlmsdoctor.probes.release import ReleaseProbe
from dlmsdoctor.probes.tcp import TcpProbe

if TYPE_CHECKING:
    from dlmsdoctor.engine import ProbeOptions


def build_plan(options: ProbeOptions) -> list[Probe]:
    if options.link != "tcp":
        return serial_plan(options)
    plan: list[Probe] = [
        IcmpProbe(), TcpProbe(), DiscFirstProbe(), FramingProbe(), SnrmProbe(), AddressProbe(),
        PublicAssociationProbe(), IdentityProbe("cosem.identity", "assoc.public"),
    ]
    return plan + _logins(options) + [ReleaseProbe()]


def _logins(options: ProbeOptions) -> list[Probe]:
    plan: list[Probe] = []
    seen: set[str] = set()
    for cred in options.credentials:
        login = LoginProbe(cred)
        if login.id in seen:  # two sets with one name: keep step ids unique
            login.id = f"{login.id}#{len(seen) + 1}"
        seen.add(login.id)
        plan.append(login)
        plan.append(IdentityProbe(login.id.replace("assoc.login.", "cosem.read.", 1), login.id))
    return plan


def serial_plan(options: ProbeOptions) -> list[Probe]:
    from dlmsdoctor.probes.optical import OpticalModeEProbe
    from dlmsdoctor.probes.serial import SerialLineProbe

    line: list[Probe] = [SerialLineProbe()]
    if options.link == "optical":
        line.append(OpticalModeEProbe())
    last = line[-1].id
    rest: list[Probe] = [
        DiscFirstProbe(), SnrmProbe(), AddressProbe(), PublicAssociationProbe(),
        IdentityProbe("cosem.identity", "assoc.public"), *_logins(options),
    ]
    for probe in rest:
        probe.requires = tuple(last if r == "tcp.connect" else r for r in probe.requires)
    return line + rest + [ReleaseProbe()]
