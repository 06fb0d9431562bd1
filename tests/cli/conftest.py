"""Fixtures of the CLI tests; the helpers they use live in tests/helpers/cli_runs.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli_runs import two_group_scenario


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    return two_group_scenario(tmp_path)
