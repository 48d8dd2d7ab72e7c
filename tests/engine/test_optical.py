"""The optical head: IEC 62056-21 mode E (Annex E) byte for byte, then the HDLC ladder; the
port that stays silent, the meter without mode E, the one that switches to another rate, and
the release that leaves the meter back at 300 baud for the next sign-on."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlmsdoctor.codec.hdlc import parse_hdlc
from dlmsdoctor.link.serial_line import LineFormat, byte_time
from dlmsdoctor.probes.optical import mode_e_ack, parse_identification, signon_request
from tests.engine.pty_meter import probe, pty_meter

# The messages of IEC 62056-21 (clause 6.3 and Annex E), written out by hand from the standard's
# message formats: request "/ ? [address] ! CR LF"; identification "/ XXX Z \W ident CR LF";
# acknowledgement/option select "ACK V Z Y CR LF" with V '2' (HDLC protocol procedure) and
# Y '2' (binary mode).
SIGNON = bytes([0x2F, 0x3F, 0x21, 0x0D, 0x0A])
SIGNON_ADDRESSED = b"/?" + b"12345678" + b"!" + bytes([0x0D, 0x0A])
ACK_9600 = bytes([0x06, 0x32, 0x35, 0x32, 0x0D, 0x0A])
IDENT_MODE_E = b"/ISk5\\2MT382-1000\r\n"  # an Iskraemeco-style identification with \2
IDENT_MODE_C = b"/ISk5MT174-0001\r\n"


def test_the_handshake_messages_are_the_standards() -> None:
    assert signon_request() == SIGNON
    assert signon_request("12345678") == SIGNON_ADDRESSED
    assert mode_e_ack("5") == ACK_9600
    assert mode_e_ack("6") == bytes([0x06, 0x32, 0x36, 0x32, 0x0D, 0x0A])
    with pytest.raises(ValueError):
        mode_e_ack("A")  # a mode B character: not for mode E
    with pytest.raises(ValueError):
        signon_request("12/34")


def test_identifications_are_parsed_for_mode_e_and_rate() -> None:
    e = parse_identification(b"\x00" + IDENT_MODE_E)
    assert e is not None and e["manufacturer"] == "ISk" and e["baud"] == 9600
    assert e["mode_e"] is True and e["ident"] == "MT382-1000" and e["offset"] == 1
    c = parse_identification(IDENT_MODE_C)
    assert c is not None and c["mode_e"] is False
    assert parse_identification(b"\x13\x88garbage\r\n") is None


async def test_mode_e_handshake_byte_for_byte_then_the_hdlc_ladder(tmp_path: Path) -> None:
    async with pty_meter(optical=True) as meter:
        run = await probe(meter, tmp_path, link="optical")
        assert meter.front_end is not None and meter.front_end.iec_mode  # back at 300 after DISC
    tx, rx = run.tx(), run.rx()
    assert tx[0] == SIGNON
    assert rx[0] == b"/DLD5\\2SIM-METER\r\n"
    assert tx[1] == ACK_9600
    assert parse_hdlc(tx[2], 0, "tx").fields["frame_type"] == "SNRM"
    step = run.step("optical.mode_e")
    assert step.status.value == "ok" and step.details["baud"] == 9600
    assert step.details["identification"] == "/DLD5\\2SIM-METER"
    assert run.step("assoc.public").status.value == "ok"
    assert run.session.identity["optical_identification"] == "/DLD5\\2SIM-METER"
    lines = [(f.data["baud"], f.data["format"]) for f in run.session.findings
             if f.code == "serial.line"]
    assert lines == [(300, "7E1"), (9600, "8N1")]
    # a 300-baud sign-on costs real time: request + identification + ack on the wire
    at300 = byte_time(len(SIGNON) + len(rx[0]) + len(ACK_9600), 300, LineFormat.parse("7E1"))
    assert step.duration is not None and step.duration >= at300
    diag = run.session.diagnosis
    assert diag is not None and diag.profile is not None
    assert (diag.profile.link, diag.profile.mode, diag.profile.baud) == ("optical", "E", 9600)
    assert diag.profile.identification == "/DLD5\\2SIM-METER"
    assert "meter.iec62056_21" not in run.causes  # the handshake is not a foreign protocol
    assert meter.unreleased_associations() == []


async def test_the_release_leaves_the_meter_at_300_for_the_next_sign_on(tmp_path: Path) -> None:
    async with pty_meter(optical=True) as meter:
        first = await probe(meter, tmp_path, link="optical")
        second = await probe(meter, tmp_path, link="optical")
        assert meter.front_end is not None and meter.front_end.signons == 2
    assert [e["reason"] for e in meter.log.of("optical.iec_mode")] == ["disc", "disc"]
    for run in (first, second):
        assert run.step("assoc.public").status.value == "ok"


async def test_the_serial_number_addresses_the_sign_on(tmp_path: Path) -> None:
    async with pty_meter(optical=True) as meter:
        run = await probe(meter, tmp_path, link="optical", serial_number="12345678")
    assert run.tx()[0] == SIGNON_ADDRESSED
    assert run.step("optical.mode_e").status.value == "ok"


async def test_no_identification_is_said_with_the_head_advice(tmp_path: Path) -> None:
    async with pty_meter(["optical-silent", "echo"], optical=True) as meter:
        run = await probe(meter, tmp_path, link="optical", timeout=0.5)
    assert run.step("optical.mode_e").status.value == "failed"
    assert run.step("hdlc.snrm").status.value == "skipped"
    cause = run.cause("optical.no_identification")
    assert run.causes[0] == "optical.no_identification"
    assert "head echoed" in cause.explanation and "cable pointing down" in cause.actions[0].text
    assert run.tx() == [SIGNON]  # nothing but the sign-on was sent


async def test_an_identification_without_mode_e_is_data_readout_only(tmp_path: Path) -> None:
    async with pty_meter(["no-mode-e"], optical=True) as meter:
        run = await probe(meter, tmp_path, link="optical")
    assert run.rx()[0] == b"/DLD5SIM-METER\r\n"
    assert run.causes[0] == "optical.no_mode_e"
    assert run.cause("optical.no_mode_e").whose == "meter"
    assert run.tx() == [SIGNON]  # no acknowledgement, no HDLC


async def test_a_meter_that_switches_to_another_rate_is_named(tmp_path: Path) -> None:
    async with pty_meter(["mode-e-rate=4800"], optical=True) as meter:
        run = await probe(meter, tmp_path, link="optical", timeout=0.4, discovery_budget=1,
                          discovery_pace=0.0)
    assert run.step("optical.mode_e").status.value == "ok"
    cause = run.cause("optical.no_hdlc")
    assert "--baud 9600 or --baud 4800" in cause.actions[0].text
    assert meter.log.of("bytes.garbled")[0]["meter_rate"] == 4800


def test_the_demo_has_an_optical_scenario() -> None:
    from click.testing import CliRunner

    from dlmsdoctor.cli.demo_cmd import demo

    result = CliRunner().invoke(demo, ["--scenario", "optical", "--headless"])
    assert result.exit_code == 0, result.output
    assert "optical.mode_e" in result.output and "mode E, HDLC at 9600 8N1" in result.output
    assert "-S /dev/pts/" in result.output and "-i HdlcWithModeE" in result.output
    assert "RLRQ/RLRE, DISC/UA, line closed" in result.output


async def test_ctrl_c_during_the_sign_on_ends_at_once_and_releases(tmp_path: Path) -> None:
    import asyncio

    from dlmsdoctor.engine import ProbeOptions
    from dlmsdoctor.ledger import LoginLedger
    from dlmsdoctor.run import probe_and_diagnose

    async with pty_meter(["optical-silent"], optical=True) as meter:
        cancel = asyncio.Event()
        options = ProbeOptions(str(meter.serial_path), 0, link="optical", icmp=False,
                               timeout=20.0)
        loop = asyncio.get_running_loop()
        loop.call_later(0.5, cancel.set)
        start = loop.time()
        result = await probe_and_diagnose(options, cancel=cancel, save=False,
                                          ledger=LoginLedger(tmp_path / "ledger.jsonl"))
        assert loop.time() - start < 3.0  # not the 20 s identification wait
    session = result.session
    assert session.cancelled
    assert session.step("optical.mode_e").status.value == "cancelled"
    assert session.step("release").status.value == "ok"
    assert session.connections[0].close_how is not None  # the line was closed


async def test_ctrl_c_after_the_association_still_releases_on_the_line(tmp_path: Path) -> None:
    import asyncio

    from dlmsdoctor.engine import ProbeOptions, run_probe
    from dlmsdoctor.events import StepFinished
    from dlmsdoctor.ledger import LoginLedger

    async with pty_meter() as meter:
        cancel = asyncio.Event()

        def on_event(event: object) -> None:
            if isinstance(event, StepFinished) and event.step_id == "assoc.public":
                cancel.set()  # Ctrl-C right after the association opened

        options = ProbeOptions(str(meter.serial_path), 0, link="serial", icmp=False)
        session = await run_probe(options, on_event=on_event, cancel=cancel,
                                  ledger=LoginLedger(tmp_path / "ledger.jsonl"))
        assert meter.unreleased_associations() == []
        assert [e["how"] for e in meter.log.of("association.released")] == ["rlrq"]
    assert session.step("cosem.identity").status.value == "cancelled"
    assert session.step("release").summary.startswith("RLRQ/RLRE, DISC/UA, line closed")


async def test_an_optical_capture_carries_the_sign_on_then_hdlc(tmp_path: Path) -> None:
    from dlmsdoctor.output.capture import write_capture
    from dlmsdoctor.output.capture_read import read_capture

    async with pty_meter(optical=True) as meter:
        run = await probe(meter, tmp_path, link="optical")
    path = tmp_path / "optical.pcapng"
    write_capture(run.session, path)
    back = read_capture(path)
    assert [f.data for f in back.frames][:3] == [SIGNON, b"/DLD5\\2SIM-METER\r\n", ACK_9600]
    header = path.read_bytes()[:20000].decode("latin-1")
    assert "an optical head (IEC 62056-21 mode E)" in header
    assert "300 7E1 (opened for the optical sign-on); 9600 8N1 (mode E" in header
