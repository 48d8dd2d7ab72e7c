"""Run the real ladder over a pseudo-terminal against the simulated meter's serial side."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlmsdoctor.engine import ProbeOptions
from dlmsdoctor.ledger import LoginLedger
from dlmsdoctor.run import probe_and_diagnose
from dlmsdoctor.session import Session
from dlmsdoctor.sim.meter import SimulatedMeter
from dlmsdoctor.sim.optical import LineSettings


@dataclass
class Run:
    session: Session
    meter: SimulatedMeter

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.session.findings]

    def finding(self, code: str) -> Any:
        return next(f for f in self.session.findings if f.code == code)

    @property
    def causes(self) -> list[str]:
        assert self.session.diagnosis is not None
        return [c.code for c in self.session.diagnosis.causes]

    def cause(self, code: str) -> Any:
        assert self.session.diagnosis is not None
        return next(c for c in self.session.diagnosis.causes if c.code == code)

    def step(self, step_id: str) -> Any:
        return self.session.step(step_id)

    def tx(self) -> list[bytes]:
        return [f.data for f in self.session.frames if f.direction.value == "tx"]

    def rx(self) -> list[bytes]:
        return [f.data for f in self.session.frames if f.direction.value == "rx"]


@contextlib.asynccontextmanager
async def pty_meter(faults: Sequence[str] = (), *, optical: bool = False, rate: int = 9600,
                    profile: str = "default", device: Path | None = None
                    ) -> AsyncIterator[SimulatedMeter]:
    line = LineSettings(rate=rate, optical=optical)
    async with SimulatedMeter(profile, list(faults), port=None,
                              serial_device=str(device) if device else "pty",
                              line=line) as meter:
        yield meter


async def probe(meter: SimulatedMeter, tmp_path: Path, *, link: str = "serial",
                target: str | None = None, **options: Any) -> Run:
    opts = ProbeOptions(target or str(meter.serial_path), 0, link=link, icmp=False,
                        framing="hdlc", **options)
    result = await probe_and_diagnose(opts, ledger=LoginLedger(tmp_path / "ledger.jsonl"),
                                      save=False)
    return Run(result.session, meter)
