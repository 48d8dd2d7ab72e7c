"""Both legs of a relayed connection, as `dlmsdoctor open` shows them: the poller's (poller ->
tap) and the tap's own (tap -> meter), each with its addresses, when it opened and every close
on it: the far end's own, and the one the tap passed on from the other leg (FIN or RST), or the
tap's when it stopped. Real loopback sockets; the addresses are checked against what each end
saw (the meter side's accepted peer is the tap's own address)."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlmsdoctor.cli.main import cli
from dlmsdoctor.events import CloseHow
from dlmsdoctor.session import Session
from dlmsdoctor.tap.text import leg_lines, legs
from tests.tap.helpers import TapThread
from tests.tap.test_relay import Target, _recv_all, reset_through_tap


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))


def _open(session: Session, tmp_path: Path) -> str:
    path = tmp_path / "tap.json"
    path.write_text(session.dumps(), encoding="utf-8")
    result = CliRunner().invoke(cli, ["open", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _hp(peer: tuple[str, int]) -> str:
    return f"{peer[0]}:{peer[1]}"


def test_poller_closes_first_then_the_meter(tmp_path: Path) -> None:
    target = Target()
    with TapThread(target.port) as tap:
        client = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
        server = target.accept()
        poller_address, tap_address = _hp(client.getsockname()), _hp(server.getpeername())
        listen = f"127.0.0.1:{tap.port}"
        client.sendall(b"question")
        assert _recv_all(server, 8) == b"question"
        client.shutdown(socket.SHUT_WR)  # the poller's FIN ...
        assert server.recv(10) == b""  # ... passed on by the tap
        time.sleep(0.2)
        server.close()  # then the meter's FIN
        assert _recv_all(client, 10) == b""
        client.close()
        time.sleep(0.1)
        session = tap.stop()
    target.close()
    conn = session.connections[0]
    assert conn.client == poller_address and conn.relay_from == tap_address
    assert conn.close_how is CloseHow.FIN and conn.closed_by_peer is False
    assert conn.then_close_how is CloseHow.FIN
    assert conn.closed_at is not None and conn.then_closed_at is not None
    assert conn.then_closed_at > conn.closed_at  # the meter closed later
    poller, meter = legs(conn, str(session.settings["listen"]), f"127.0.0.1:{target.port}")
    assert (poller["from"], poller["to"]) == (poller_address, listen)
    assert (meter["from"], meter["to"]) == (tap_address, f"127.0.0.1:{target.port}")
    assert [(c["by"], c["how"], c.get("passed_on")) for c in poller["closes"]] == [
        ("poller", "fin", None), ("tap", "fin", "meter")]
    assert [(c["by"], c["how"], c.get("passed_on")) for c in meter["closes"]] == [
        ("tap", "fin", "poller"), ("meter", "fin", None)]
    assert meter["opened_at"] >= poller["opened_at"]
    text = _open(session, tmp_path)
    first, second = leg_lines(conn, str(session.settings["listen"]),
                              f"127.0.0.1:{target.port}")
    assert f"    {first}" in text and f"    {second}" in text
    assert first.startswith(f"poller leg  {poller_address} -> {listen}  accepted t+")
    assert second.startswith(f"meter leg   {tap_address} -> 127.0.0.1:{target.port}  "
                             "connected t+")
    assert f"the poller FIN t+{conn.closed_at:.3f} s" in first
    assert f"the tap FIN t+{conn.then_closed_at:.3f} s, passing on the meter side's" in first
    assert f"the tap FIN t+{conn.closed_at:.3f} s, passing on the poller's" in second
    assert f"the meter side FIN t+{conn.then_closed_at:.3f} s" in second


def test_a_reset_by_the_meter_is_passed_on_as_a_reset(tmp_path: Path) -> None:
    session, meter_port = reset_through_tap("meter")
    conn = session.connections[0]
    poller, meter = legs(conn, str(session.settings["listen"]), f"127.0.0.1:{meter_port}")
    assert [(c["by"], c["how"]) for c in meter["closes"]][:1] == [("meter", "rst")]
    assert [(c["by"], c["how"], c.get("passed_on")) for c in poller["closes"]][:1] == [
        ("tap", "rst", "meter")]
    text = _open(session, tmp_path)
    assert f"the meter side RST t+{conn.closed_at:.3f} s" in text
    assert "the tap RST" in text and "passing on the meter side's" in text


def test_a_connection_open_when_the_tap_stops_and_a_refused_target(tmp_path: Path) -> None:
    target = Target()
    holder = socket.socket()  # bound, not listening: a refused target for the tap below
    holder.bind(("127.0.0.1", 0))
    with TapThread(target.port) as tap:
        client = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
        server = target.accept()
        time.sleep(0.1)
        session = tap.stop()
    client.close()
    server.close()
    target.close()
    conn = session.connections[0]
    assert conn.close_how is CloseHow.LOCAL
    lines = leg_lines(conn, str(session.settings["listen"]), f"127.0.0.1:{target.port}")
    assert all(f"closed: the tap FIN t+{conn.closed_at:.3f} s, tap stopped" in x for x in lines)

    with TapThread(holder.getsockname()[1]) as tap:
        # on loopback the tap's RST may beat connect() itself
        with contextlib.suppress(ConnectionResetError), \
                socket.create_connection(("127.0.0.1", tap.port), timeout=3) as client:
            client.recv(10)
        time.sleep(0.1)
        refused = tap.stop()
    holder.close()
    text = _open(refused, tmp_path)
    conn = refused.connections[0]
    assert conn.failed == "refused" and conn.closed_at is not None
    assert f"closed: the tap RST t+{conn.closed_at:.3f} s, passing on the meter side's" in text
    assert "could not connect (refused)" in text


def test_the_json_document_has_both_legs() -> None:
    from dlmsdoctor.tap.text import tap_document

    target = Target()
    with TapThread(target.port) as tap:
        client = socket.create_connection(("127.0.0.1", tap.port), timeout=3)
        server = target.accept()
        client.close()
        assert server.recv(10) == b""
        server.close()
        time.sleep(0.1)
        session = tap.stop()
    target.close()
    doc = tap_document(session)
    assert [leg["leg"] for leg in doc["connections"][0]["legs"]] == ["poller", "meter"]
    assert doc["connections"][0]["legs"][1]["from"] == session.connections[0].relay_from
