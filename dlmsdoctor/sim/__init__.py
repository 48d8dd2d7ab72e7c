"""The simulated DLMS/COSEM meter: a test and training peer (docs/simulator.md).

Never imported by the core. gurux-dlms is reached only through ``dlmsdoctor.gx.server``, and
only when an APDU is encoded, so importing this package stays light.
"""

from __future__ import annotations

from dlmsdoctor.sim.faults import FaultError, Faults, parse_faults
from dlmsdoctor.sim.meter import MeterThread, SimulatedMeter
from dlmsdoctor.sim.profile import Profile, ProfileError, builtin_names, load_profile

__all__ = [
    "FaultError",
    "Faults",
    "MeterThread",
    "Profile",
    "ProfileError",
    "SimulatedMeter",
    "builtin_names",
    "load_profile",
    "parse_faults",
]
