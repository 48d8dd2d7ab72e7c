"""The default plan: the rungs in order, one login rung per credential set, release last."""

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
    plan: list[Probe] = [
        IcmpProbe(), TcpProbe(), DiscFirstProbe(), FramingProbe(), SnrmProbe(), AddressProbe(),
        PublicAssociationProbe(), IdentityProbe("cosem.identity", "assoc.public"),
    ]
    seen: set[str] = set()
    for cred in options.credentials:
        login = LoginProbe(cred)
        if login.id in seen:  # two sets with one name: keep step ids unique
            login.id = f"{login.id}#{len(seen) + 1}"
        seen.add(login.id)
        plan.append(login)
        plan.append(IdentityProbe(login.id.replace("assoc.login.", "cosem.read.", 1), login.id))
    plan.append(ReleaseProbe())
    return plan
