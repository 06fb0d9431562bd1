"""Fixtures of the bad-input tests (their helpers are in tests/helpers/cli.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)
