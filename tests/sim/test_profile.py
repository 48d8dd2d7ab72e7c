"""Profiles: the built-ins load, derivation rules, and errors a user can act on."""

from __future__ import annotations

import pytest

from dlmsdoctor.sim.profile import (
    DERIVE_LAST4,
    DERIVE_SN_MOD,
    ProfileError,
    builtin_names,
    derive_physical,
    load_profile,
    parse_profile,
)


def test_builtins() -> None:
    assert {"default", "serial-derived", "serial-last4", "wrapper", "hls"} <= set(builtin_names())
    default = load_profile("default")
    assert (default.framing, default.server_logical, default.server_physical,
            default.address_size) == ("hdlc", 1, 1, 2)
    assert [(c.sap, c.auth) for c in default.clients] == [(16, "none"), (1, "low"), (32, "low")]
    assert load_profile("serial-derived").server_physical == 6678
    assert load_profile("serial-last4").server_physical == 5678
    assert load_profile("wrapper").framing == "wrapper"
    assert load_profile("hls").hls_keys is not None
    assert "00000000" not in repr(default)  # passwords stay out of reprs


def test_derivation_rules() -> None:
    assert derive_physical("12345678", DERIVE_SN_MOD) == 6678
    assert derive_physical("SN-0012345678", DERIVE_LAST4) == 5678
    with pytest.raises(ProfileError):
        derive_physical("ABC", DERIVE_LAST4)


@pytest.mark.parametrize("text,message", [
    ("framing = 'udp'", "framing must be"),
    ("[server]\naddress_size = 3", "address_size must be 1, 2 or 4"),
    ("[server]\nphysical = 200\naddress_size = 2", "does not fit a 2-byte"),
    ("[server]\nphysical_from_serial = 'last-4-digits'\nserial_number = '123456'\n"
     "address_size = 2", "does not fit a 2-byte"),
    ("[[clients]]\nsap = 1\nauth = 'low'", "needs a password"),
    ("[[clients]]\nsap = 1\nauth = 'hls-gmac'", "needs a [security] table"),
    ("[[clients]]\nsap = 1\nauth = 'hls'", "auth must be one of"),
    ("[hdlc]\nmax_info_tx = 10", "max_info_tx must be 32..2030"),
    ("[hdlc]\nwindow_tx = 'one'", "window_tx must be an integer"),
    ("[security]\nblock_cipher_key = '00'\nauthentication_key = '00'", "must be 16 bytes"),
    ("name = ", "not valid TOML"),
])
def test_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, source="my.toml")
    assert message in str(info.value) and str(info.value).startswith("my.toml: ")


def test_minimal_file_gets_defaults(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "mine.toml"
    path.write_text("name = 'mine'\n[server]\nlogical = 17\nphysical = 5000\naddress_size = 4\n")
    profile = load_profile(str(path))
    assert (profile.name, profile.server_logical, profile.server_physical) == ("mine", 17, 5000)
    assert profile.describe_address() == "hdlc, server 17/5000, 4-byte"
