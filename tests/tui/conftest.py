from __future__ import annotations

from pathlib import Path

import pytest

from dlmsdoctor.app import DoctorApp, create_app
from tests.tui.fixtures import story_session


@pytest.fixture(autouse=True)
def hermetic_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Config, ledger and sessions under tmp: the TUI never touches the real data dir in tests."""
    monkeypatch.setenv("DLMSDOCTOR_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DLMSDOCTOR_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
def story_app(tmp_path: Path) -> DoctorApp:
    return create_app(story_session(), sessions_dir=tmp_path / "data" / "sessions")
