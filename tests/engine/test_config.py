from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dlmsdoctor import paths
from dlmsdoctor.config import (
    ConfigError,
    Credential,
    load_config,
    parse_config,
    parse_credential,
    save_credential,
)


def test_parse_cli_credentials() -> None:
    c = parse_credential("mgmt=1:low:00000000")
    assert (c.name, c.client_sap, c.auth, c.password) == ("mgmt", 1, "low", "00000000")
    c = parse_credential("16:none")
    assert (c.name, c.client_sap, c.auth, c.password) == ("16-none", 16, "none", None)
    c = parse_credential("x=32:low:pa:ss")  # a secret may hold colons
    assert c.password == "pa:ss"
    keys = "000102030405060708090A0B0C0D0E0F,D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
    c = parse_credential(f"g=1:gmac:{keys}")
    assert c.auth == "gmac" and c.block_cipher_key and c.authentication_key
    for bad in ("1", "x:low:1", "1:high:x", "1:low", "200:none", "=1:none", "1:gmac:zz",
                "1:none:extra"):
        with pytest.raises(ConfigError):
            parse_credential(bad)


def test_repr_masks_secrets() -> None:
    c = Credential("m", 1, "low", password="hunter2")
    assert "hunter2" not in repr(c) and "hunter2" not in str(c) and "****" in repr(c)
    with pytest.raises(ConfigError) as info:
        parse_credential("1:bogus:hunter2")
    assert "hunter2" not in str(info.value)


def test_config_file_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "cfg"))
    assert load_config().credentials == {}
    assert not (tmp_path / "cfg").exists()  # reading never creates
    path = save_credential(parse_credential("mgmt=1:low:00000000"))
    assert path == paths.config_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with path.open("a") as out:
        out.write('\n[targets.m2]\nhost = "192.0.2.7"\nport = 3333\ncredentials = ["mgmt"]\n'
                  'server_address = "1/17"\n')
    cfg = load_config()
    assert cfg.credential("mgmt").password == "00000000"
    assert cfg.targets["m2"].port == 3333 and cfg.targets["m2"].credentials == ("mgmt",)
    with pytest.raises(ConfigError):
        save_credential(parse_credential("mgmt=1:low:x"))


@pytest.mark.parametrize(("text", "line"), [
    ("[credentials.a]\nclient_sap = 1\nauth = \n", 3),
    ("[credentials.a]\nclient_sap = 1\nauth = \"none\"\n\n[credentials.b]\nclient_sap = 'x'\n", 6),
    ("[targets.t]\nhost = \"h\"\ncredentials = [\"nope\"]\n", 3),
    ("[targets.t]\nport = 3333\n\nhost = 5\n", 4),  # QA defect 6: the key's line
    ("[targets.t]\nhost = \"h\"\nclient_sap = 1\n", 3),  # unknown keys are errors
    ("[credentials.a]\nclient_sap = 1\nauth = \"low\"\npasword = \"x\"\n", 4),
    ("[other]\nx = 1\n", 1),
])
def test_config_errors_name_the_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/x/config.toml"))
    assert info.value.line == line
    assert f"line {line}" in str(info.value) and "/x/config.toml" in str(info.value)


def test_paths_honour_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))
    assert paths.ledger_file() == tmp_path / "data" / "ledger.jsonl"
    assert paths.sessions_dir() == tmp_path / "data" / "sessions"
    assert not (tmp_path / "data").exists()


def test_a_named_config_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    """QA defect 6: --config /nonexist.toml was silently an empty config."""
    missing = tmp_path / "nonexist.toml"
    assert load_config(missing).credentials == {}  # the default location may be absent
    with pytest.raises(ConfigError) as info:
        load_config(missing, required=True)
    assert "no such config file" in str(info.value) and str(missing) in str(info.value)


def test_secrets_in_a_file_others_can_read_give_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[credentials.m]\nclient_sap = 1\nauth = "low"\npassword = "x"\n')
    os.chmod(path, 0o644)
    warnings = load_config(path).warnings
    assert len(warnings) == 1 and "0644" in warnings[0] and "chmod 600" in warnings[0]
    assert "x\"" not in warnings[0]
    os.chmod(path, 0o600)
    assert load_config(path).warnings == ()
    path.write_text('[targets.t]\nhost = "h"\n')  # no secret: no warning whatever the mode
    os.chmod(path, 0o644)
    assert load_config(path).warnings == ()


@pytest.mark.parametrize("auth", ["none", "low"])
def test_the_printed_profile_snippet_loads_back_as_the_same_target(auth: str) -> None:
    """QA defect 6: the [targets.meter] the probe prints used keys the reader ignored."""
    from dlmsdoctor.diagnosis.profile import toml_snippet
    from dlmsdoctor.session import ConnectionProfile

    profile = ConnectionProfile(
        host="10.0.0.5", port=3333, framing="hdlc", server_logical=1, server_physical=6678,
        address_size=4, client_sap=1 if auth == "low" else 16, authentication=auth,
        credential="mgmt" if auth == "low" else "public",
    )
    text = toml_snippet(profile)
    if auth == "low":  # the set itself lives in the user's config, with its secret
        text = '[credentials.mgmt]\nclient_sap = 1\nauth = "low"\npassword = "p"\n\n' + text
    target = parse_config(text).targets["meter"]
    assert (target.host, target.port, target.framing) == ("10.0.0.5", 3333, "hdlc")
    assert (target.server_address, target.address_size) == ("1/6678", 4)
    assert target.credentials == (("mgmt",) if auth == "low" else ())
    wrapper = ConnectionProfile(
        host="10.0.0.5", port=4059, framing="wrapper", server_logical=1, server_physical=None,
        address_size=0, client_sap=16, authentication="none", credential="public",
    )
    target = parse_config(toml_snippet(wrapper)).targets["meter"]
    assert (target.framing, target.server_address, target.address_size) == ("wrapper", None, None)
    # a name with a dot (the TUI's name dialog allows one) stays one table, not a nested one
    dotted = parse_config(toml_snippet(wrapper, "site.7")).targets["site.7"]
    assert (dotted.host, dotted.port) == ("10.0.0.5", 4059)
