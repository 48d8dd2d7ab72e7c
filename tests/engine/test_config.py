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
    for bad in ("1", "x:low:1", "1:high:x", "1:low", "200:none", "=1:none", "1:gmac:zz"):
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
    ("[credentials.a]\nclient_sap = 1\nauth = \"none\"\n\n[credentials.b]\nclient_sap = 'x'\n", 5),
    ("[targets.t]\nhost = \"h\"\ncredentials = [\"nope\"]\n", 1),
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
