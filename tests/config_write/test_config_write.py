"""Config edits from the TUI: one table rewritten, the rest kept, the file 0600 and loadable."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlmsdoctor.config import ConfigError, load_config, parse_credential
from dlmsdoctor.config_write import remove_credential, replace_credential, save_target

CONFIG = """# my meters
[credentials.mgmt]
client_sap = 1
auth = "low"
password = "11111111"

[credentials.reader]  # the read-only client
client_sap = 32
auth = "low"
password = "22222222"

[targets.sub1]
host = "192.0.2.10"
credentials = ["mgmt"]
"""


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    path.chmod(0o644)
    return path


def test_replace_keeps_other_lines_and_makes_the_file_private(tmp_path: Path) -> None:
    path = _file(tmp_path)
    replace_credential(parse_credential("reader=48:low:33333333"), path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# my meters\n")  # comments stay
    assert "22222222" not in text and "33333333" in text
    config = load_config(path)
    assert config.credentials["reader"].client_sap == 48
    assert config.credentials["mgmt"].password == "11111111"
    assert path.stat().st_mode & 0o777 == 0o600


def test_remove_refuses_a_set_a_target_uses(tmp_path: Path) -> None:
    path = _file(tmp_path)
    with pytest.raises(ConfigError, match="used by target"):
        remove_credential("mgmt", path)
    assert remove_credential("reader", path)
    assert not remove_credential("reader", path)
    assert set(load_config(path).credentials) == {"mgmt"}
    assert load_config(path).targets["sub1"].credentials == ("mgmt",)


def test_save_target_replaces_and_never_leaves_a_broken_file(tmp_path: Path) -> None:
    path = _file(tmp_path)
    save_target("sub1", '[targets.sub1]\nhost = "192.0.2.11"\nport = 4061\n', path)
    save_target("sub2", '[targets.sub2]\nhost = "192.0.2.12"\n', path)
    targets = load_config(path).targets
    assert (targets["sub1"].host, targets["sub1"].port) == ("192.0.2.11", 4061)
    assert targets["sub2"].host == "192.0.2.12"
    before = path.read_text(encoding="utf-8")
    with pytest.raises(ConfigError):  # a credential set the config does not hold
        save_target("sub3", '[targets.sub3]\nhost = "h"\ncredentials = ["nobody"]\n', path)
    assert path.read_text(encoding="utf-8") == before
    with pytest.raises(ConfigError):
        save_target("bad name", "[targets.x]\n", path)
