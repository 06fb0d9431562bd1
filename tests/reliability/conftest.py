"""Shared fixtures for the reliability tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def profile_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir()
    return folder
