from __future__ import annotations

import pytest

from dlmsdoctor.codec.hdlc import ServerAddress
from dlmsdoctor.engine import OptionsError, ProbeOptions, ServerAddressOption, parse_host_port


@pytest.mark.parametrize(("text", "host", "port"), [
    ("10.0.0.5", "10.0.0.5", 4059),
    ("10.0.0.5:3333", "10.0.0.5", 3333),
    ("meter.example:1", "meter.example", 1),
    ("[::1]:4059", "::1", 4059),
    ("[fe80::1]", "fe80::1", 4059),
    ("::1", "::1", 4059),
])
def test_parse_target(text: str, host: str, port: int) -> None:
    assert parse_host_port(text) == (host, port)
    options = ProbeOptions.parse_target(text, framing="hdlc")
    assert (options.host, options.port, options.framing) == (host, port, "hdlc")


@pytest.mark.parametrize("text", ["", "host:", "host:99999", "[::1", "[::1]x", "h:abc"])
def test_bad_targets(text: str) -> None:
    with pytest.raises(OptionsError):
        parse_host_port(text)


def test_server_address_forms() -> None:
    assert ProbeOptions.parse_server_address("1/17") == ServerAddressOption(1, 17)
    assert ProbeOptions.parse_server_address("1") == ServerAddressOption(1, None)
    with pytest.raises(OptionsError):
        ProbeOptions.parse_server_address("1/x")
    o = ProbeOptions("h", server_address=ServerAddressOption(1, 17))
    assert o.first_server() == ServerAddress(1, 17, 2)
    o = ProbeOptions("h", server_address=ServerAddressOption(1, 5678))
    assert o.first_server() == ServerAddress(1, 5678, 4)
    o = ProbeOptions("h", server_address=ServerAddressOption(1, 17), address_size=4)
    assert o.first_server() == ServerAddress(1, 17, 4)
    assert ProbeOptions("h").first_server() == ServerAddress(1, 1, 2)
    assert ProbeOptions("h", address_size=1).first_server() == ServerAddress(1, None, 1)


def test_invalid_options_rejected() -> None:
    with pytest.raises(OptionsError):
        ProbeOptions("h", framing="serial")
    with pytest.raises(OptionsError):
        ProbeOptions("h", address_size=3)


def test_describe_has_no_secrets() -> None:
    from dlmsdoctor.config import parse_credential

    o = ProbeOptions("h", credentials=(parse_credential("m=1:low:s3cret"),))
    assert "s3cret" not in repr(o.describe())
    assert "s3cret" not in repr(o)


@pytest.mark.parametrize(
    ("address", "size", "message"),
    [
        ("1/200", 1, "1-byte address holds only the logical"),
        ("1/17", 1, "1-byte address holds only the logical"),
        ("1/200", 2, r"2-byte address \(7\+7 bits"),
        ("200", None, r"1-byte address \(7 bits"),
    ],
)
def test_an_address_its_size_cannot_hold_is_refused_for_every_face(
    address: str, size: int | None, message: str
) -> None:
    # The TUI form builds ProbeOptions directly: the check must live here, not in the CLI.
    with pytest.raises(OptionsError, match=message):
        ProbeOptions(
            "127.0.0.1", server_address=ProbeOptions.parse_server_address(address),
            address_size=size,
        )


def test_addresses_that_fit_are_kept() -> None:
    options = ProbeOptions(
        "127.0.0.1", server_address=ProbeOptions.parse_server_address("1/200"), address_size=4
    )
    assert options.first_server().physical == 200
    auto = ProbeOptions("127.0.0.1", server_address=ProbeOptions.parse_server_address("1/200"))
    assert auto.first_server().size == 4
